//! The SLO stage in virtual time: burns published and resolved once, the
//! windows read back after a restart, clock steps.

use std::sync::atomic::{AtomicI64, Ordering};

use driftline_pipeline::codec::{decode_finding_event, encode_metrics};
use driftline_pipeline::telemetry::MetricBatch;
use driftline_pipeline::telemetry::prompb::{Label, Sample, TimeSeries};

use super::*;
use crate::slo::spec;

static NOW: AtomicI64 = AtomicI64::new(0);
fn now() -> i64 {
    NOW.load(Ordering::Relaxed)
}

const MIN: i64 = 60_000;

fn set() -> SloSet {
    spec::load_test_spec(
        "shop.yaml",
        r#"version: "prometheus/v1"
service: shop
slos:
  - name: availability
    objective: 99
    sli:
      events:
        error_query: sum(rate(req_total{code="500"}[{{.window}}]))
        total_query: sum(rate(req_total[{{.window}}]))
    alerting:
      name: ShopAvailability
      labels:
        team: shop
      page_alert:
        labels:
          routing_key: shop-oncall
      ticket_alert:
        disable: true
"#,
    )
}

/// Minutes `from..to` of 60 requests a minute, `failing` of them 500s.
fn minutes(from: i64, to: i64, failing: f64, counts: &mut (f64, f64)) -> Vec<Message> {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for m in from..to {
        counts.0 += 60.0 - failing;
        counts.1 += failing;
        ok.push(Sample {
            value: counts.0,
            timestamp: m * MIN,
        });
        bad.push(Sample {
            value: counts.1,
            timestamp: m * MIN,
        });
    }
    let series = |code: &str, samples| TimeSeries {
        labels: vec![
            Label::new("__name__", "req_total"),
            Label::new("code", code),
            Label::new("job", "shop"),
        ],
        samples,
        ..Default::default()
    };
    // Also a metric no SLO reads: not kept.
    let other = TimeSeries {
        labels: vec![Label::new("__name__", "unrelated")],
        samples: vec![Sample {
            value: 1.0,
            timestamp: from * MIN,
        }],
        ..Default::default()
    };
    let batch = MetricBatch {
        source: "test".into(),
        series: vec![series("200", ok), series("500", bad), other],
    };
    encode_metrics(&batch)
        .into_iter()
        .enumerate()
        .map(|(i, m)| Message {
            topic: m.topic,
            partition: 0,
            offset: i as i64,
            key: Some(m.key),
            payload: m.payload.map(Into::into),
            replay: false,
        })
        .collect()
}

fn events(out: Vec<OutMessage>) -> Vec<FindingEvent> {
    out.iter()
        .map(|m| decode_finding_event(m.payload.as_deref().unwrap()).unwrap())
        .collect()
}

#[test]
fn a_burn_is_published_once_and_resolved_once() {
    let mut stage = SloStage::new(&set(), "g".into(), MIN)
        .unwrap()
        .with_clock(now);
    let mut counts = (0.0, 0.0);
    // An hour within budget.
    assert!(stage.take(minutes(0, 61, 0.0, &mut counts)).is_empty());
    NOW.store(60 * MIN + 5_000, Ordering::Relaxed);
    assert!(events(stage.flush(true).unwrap().unwrap()).is_empty());
    assert_eq!(stage.series.len(), 2, "only the SLO's metric is kept");
    // Twenty minutes at 40 % errors: the 5m and 1h windows both pass
    // 14.4 × 1 %.
    stage.take(minutes(61, 81, 24.0, &mut counts));
    NOW.store(80 * MIN + 5_000, Ordering::Relaxed);
    let ev = events(stage.flush(true).unwrap().unwrap());
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].event, FindingEventKind::New);
    let burn = ev[0].finding.slo.as_ref().unwrap();
    assert_eq!(
        (burn.severity.as_str(), burn.alert_name.as_str()),
        ("page", "ShopAvailability")
    );
    assert_eq!(burn.labels["team"], "shop");
    assert_eq!(burn.labels["routing_key"], "shop-oncall");
    assert!(burn.burn_rates["5m"] > 14.4, "{burn:?}");
    // Within the same step nothing more; the next step, still firing,
    // publishes nothing new.
    assert!(events(stage.flush(true).unwrap().unwrap()).is_empty());
    stage.take(minutes(81, 82, 24.0, &mut counts));
    NOW.store(81 * MIN + 5_000, Ordering::Relaxed);
    assert!(events(stage.flush(true).unwrap().unwrap()).is_empty());
    // Recovery: clean traffic until the slow pair's 30m window drops
    // below 6 × 1 % as well.
    stage.take(minutes(82, 116, 0.0, &mut counts));
    NOW.store(115 * MIN + 5_000, Ordering::Relaxed);
    let ev = events(stage.flush(true).unwrap().unwrap());
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].event, FindingEventKind::Resolved);
    assert_eq!(ev[0].finding.class, FindingClass::SloBurn);
}

#[test]
fn a_clock_stepped_back_does_not_stop_the_evaluation_until_it_catches_up() {
    static CLOCK: AtomicI64 = AtomicI64::new(0);
    let mut stage = SloStage::new(&set(), "g".into(), MIN)
        .unwrap()
        .with_clock(|| CLOCK.load(Ordering::Relaxed));
    let mut counts = (0.0, 0.0);
    // The clock read two hours ahead, then is stepped back.
    CLOCK.store(180 * MIN, Ordering::Relaxed);
    assert!(events(stage.flush(true).unwrap().unwrap()).is_empty());
    CLOCK.store(60 * MIN + 5_000, Ordering::Relaxed);
    stage.take(minutes(0, 61, 0.0, &mut counts));
    assert!(events(stage.flush(true).unwrap().unwrap()).is_empty());
    stage.take(minutes(61, 81, 24.0, &mut counts));
    CLOCK.store(80 * MIN + 5_000, Ordering::Relaxed);
    let ev = events(stage.flush(true).unwrap().unwrap());
    assert_eq!(
        ev.len(),
        1,
        "the burn is published now, not once the clock passes 3 h: {ev:?}"
    );
}

#[test]
fn a_restart_reads_its_windows_back_from_the_store() {
    use driftline_pipeline::telemetry::prompb::WriteRequest;
    use driftline_pipeline::telemetry::tables::{METRIC_SAMPLES, MetricRows};
    // What an earlier run stored: an hour clean, twenty minutes at 40 %.
    let dir = tempfile::tempdir().unwrap();
    let store: std::sync::Arc<dyn driftline_pipeline::Store> =
        std::sync::Arc::new(driftline_pipeline::store::ParquetStore::open(dir.path()).unwrap());
    let mut counts = (0.0, 0.0);
    let mut rows = MetricRows::default();
    for (from, to, failing) in [(0, 61, 0.0), (61, 81, 24.0)] {
        for m in minutes(from, to, failing, &mut counts) {
            let req: WriteRequest = decode_metrics(m.payload.as_deref().unwrap()).unwrap();
            rows.push_request("remote_write", &req);
        }
    }
    store
        .append(METRIC_SAMPLES, &rows.finish().unwrap())
        .unwrap();
    static LATER: AtomicI64 = AtomicI64::new(80 * MIN + 5_000);
    let mut stage = SloStage::new(&set(), "g".into(), MIN)
        .unwrap()
        .with_clock(|| LATER.load(Ordering::Relaxed))
        .with_history(History {
            store,
            tag: "service".into(),
            lookback_ms: 3_600_000,
        });
    stage.caught_up().unwrap();
    assert_eq!(stage.series.len(), 2, "the SLO's two series, nothing else");
    let ev = events(stage.flush(true).unwrap().unwrap());
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].event, FindingEventKind::New);
}

#[test]
fn a_burn_open_before_a_restart_resolves_after_it_and_is_not_paged_again() {
    use driftline_pipeline::schema::finding_events_batch;
    let dir = tempfile::tempdir().unwrap();
    let store: std::sync::Arc<dyn driftline_pipeline::Store> =
        std::sync::Arc::new(driftline_pipeline::store::ParquetStore::open(dir.path()).unwrap());
    // The burn an earlier run published (and the store kept).
    let mut before = SloStage::new(&set(), "g".into(), MIN).unwrap();
    let mut counts = (0.0, 0.0);
    before.take(minutes(0, 61, 0.0, &mut counts));
    before.take(minutes(61, 81, 24.0, &mut counts));
    let burning = before.decide(80 * MIN).unwrap();
    assert_eq!(burning.len(), 1);
    store
        .append("finding_events", &finding_events_batch(&burning).unwrap())
        .unwrap();
    let history = || History {
        store: store.clone(),
        tag: "service".into(),
        lookback_ms: 3_600_000,
    };
    // A restart while it still burns (the samples came back from the
    // stream here): nothing new is published.
    let mut after = SloStage::new(&set(), "g".into(), MIN)
        .unwrap()
        .with_clock(|| 81 * MIN + 5_000)
        .with_history(history());
    after.caught_up().unwrap();
    assert_eq!(after.open.len(), 1, "the open burn is read back");
    let mut replay = (0.0, 0.0);
    after.take(minutes(0, 61, 0.0, &mut replay));
    after.take(minutes(61, 82, 24.0, &mut replay));
    assert!(events(after.flush(true).unwrap().unwrap()).is_empty());
    // A restart that finds it over resolves it.
    let mut later = SloStage::new(&set(), "g".into(), MIN)
        .unwrap()
        .with_clock(|| 300 * MIN)
        .with_history(history());
    later.caught_up().unwrap();
    let ev = events(later.flush(true).unwrap().unwrap());
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].event, FindingEventKind::Resolved);
    assert_eq!(ev[0].finding.fingerprint, burning[0].finding.fingerprint);
}
