//! The demo's SLO story: checkout's availability SLO
//! (`examples/slo/checkout.yaml`) watched by the real SLO detector over
//! three hours of simulated traffic. Forty minutes ago the security group
//! in front of checkout was changed outside Terraform (the scan's drift);
//! five minutes later checkout starts failing 8 % of its requests. The
//! detector pages, and the page carries that change as its probable cause.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use anyhow::Context;
use driftline_detectors::slo::spec;
use driftline_detectors::slo::stage::{History, SloStage};
use driftline_pipeline::bus::Message;
use driftline_pipeline::codec::{decode_finding_event, encode_metrics};
use driftline_pipeline::stage::Stage;
use driftline_pipeline::store::{ParquetStore, Store};
use driftline_pipeline::telemetry::MetricBatch;
use driftline_pipeline::telemetry::prompb::{Label, Sample, TimeSeries};
use driftline_pipeline::time::format_epoch_ms;
use driftline_pipeline::{Finding, FindingEvent, FindingEventKind, now_ms};

const SPEC: &str = include_str!("../../examples/slo/checkout.yaml");
const MIN: i64 = 60_000;
const PER_MIN: f64 = 1200.0;
/// The resource whose change the story is about.
const CHANGED: &str = "aws_security_group.web";

/// The simulated clock the detector reads.
static CLOCK: AtomicI64 = AtomicI64::new(0);

fn clock() -> i64 {
    CLOCK.load(Ordering::Relaxed)
}

/// One minute of checkout's request counters.
fn minute(at: i64, counts: (f64, f64)) -> Vec<Message> {
    let series = |code: &str, value: f64| TimeSeries {
        labels: vec![
            Label::new("__name__", "http_requests_total"),
            Label::new("code", code),
            Label::new("job", "checkout"),
        ],
        samples: vec![Sample {
            value,
            timestamp: at,
        }],
        ..Default::default()
    };
    let batch = MetricBatch {
        source: "demo".into(),
        series: vec![series("200", counts.0), series("500", counts.1)],
    };
    encode_metrics(&batch)
        .into_iter()
        .map(|m| Message {
            topic: m.topic,
            partition: 0,
            offset: 0,
            key: Some(m.key),
            payload: m.payload.map(Into::into),
            replay: false,
        })
        .collect()
}

/// The story's lines: the page and its probable cause, then how it ended.
pub fn story(findings: &[Finding]) -> anyhow::Result<Vec<String>> {
    let dir = std::env::temp_dir().join(format!("driftline-demo-slo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).context("demo: scratch directory")?;
    let lines = story_in(&dir, findings);
    let _ = std::fs::remove_dir_all(&dir);
    lines
}

fn story_in(dir: &std::path::Path, findings: &[Finding]) -> anyhow::Result<Vec<String>> {
    let spec_file = dir.join("checkout.yaml");
    std::fs::write(&spec_file, SPEC)?;
    let set = spec::load(&[spec_file]).map_err(|e| {
        anyhow::anyhow!(
            "demo SLO spec: {}",
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let end = now_ms().div_euclid(MIN) * MIN;
    let start = end - 180 * MIN;
    let changed_at = end - 40 * MIN;
    let failing_from = end - 35 * MIN;

    // The scan's drift, as the detectors would have stored it: the
    // security group's change forty minutes ago, the rest two days ago.
    let store: Arc<dyn Store> = Arc::new(ParquetStore::open(dir.join("store"))?);
    let events: Vec<FindingEvent> = findings
        .iter()
        .map(|f| {
            let at = if f.address.as_deref() == Some(CHANGED) {
                changed_at
            } else {
                end - 2 * 24 * 60 * MIN
            };
            FindingEvent::new(FindingEventKind::New, at, f.clone())
        })
        .collect();
    store.append(
        "finding_events",
        &driftline_pipeline::schema::finding_events_batch(&events)?,
    )?;

    let mut stage = SloStage::new(&set, "demo".into(), MIN)?
        .with_history(History {
            store,
            tag: "service".into(),
            lookback_ms: 60 * MIN,
        })
        .with_clock(clock);
    let mut counts = (0.0, 0.0);
    let mut out = Vec::new();
    // A little past the end, so the last minute is decided.
    for at in (start..=end).step_by(MIN as usize) {
        let errors = if at >= failing_from { 96.0 } else { 1.0 };
        counts = (counts.0 + PER_MIN - errors, counts.1 + errors);
        if let Some((_, reason)) = stage.take(minute(at, counts)).first() {
            anyhow::bail!("demo samples refused: {reason}");
        }
        CLOCK.store(at + 5_000, Ordering::Relaxed);
        for m in stage.flush(false)?.unwrap_or_default() {
            let payload = m.payload.as_deref().unwrap_or_default();
            out.push(decode_finding_event(payload).map_err(anyhow::Error::msg)?);
        }
    }
    Ok(render(&out, end, changed_at, failing_from))
}

fn hhmm(ms: i64) -> String {
    format_epoch_ms(ms)
        .get(11..16)
        .unwrap_or_default()
        .to_string()
}

fn render(events: &[FindingEvent], end: i64, changed_at: i64, failing_from: i64) -> Vec<String> {
    let mut lines = vec![format!(
        "SLOs (examples/slo/checkout.yaml; simulated traffic {}–{} UTC: {CHANGED} changed at {}, checkout fails 8 % of requests from {})",
        hhmm(end - 180 * MIN),
        hhmm(end),
        hhmm(changed_at),
        hhmm(failing_from),
    )];
    let new: Vec<&FindingEvent> = events
        .iter()
        .filter(|e| e.event == FindingEventKind::New)
        .collect();
    if new.is_empty() {
        lines.push("  no SLO alert fired".into());
    }
    for e in new {
        let Some(burn) = &e.finding.slo else { continue };
        lines.push(format!(
            "  {} {} at {} UTC: {}",
            burn.severity.to_uppercase(),
            burn.alert_name,
            e.timestamp.get(11..16).unwrap_or_default(),
            e.finding.summary
        ));
        if burn.severity != "page" {
            lines
                .push("    (the alert engine holds a ticket back while the same SLO pages)".into());
            continue;
        }
        if burn.probable_cause.is_empty() {
            lines.push("    no drift on checkout's resources in the hour before".into());
        } else {
            lines.push("    probable cause (drift on resources tagged service=checkout in the hour before, newest first):".into());
        }
        for c in &burn.probable_cause {
            lines.push(format!(
                "      {} UTC  {}: {}",
                c.at.get(11..16).unwrap_or_default(),
                c.class,
                c.summary
            ));
            for d in &c.diffs {
                lines.push(format!(
                    "        {}: declared {} → observed {}",
                    d.path, d.declared, d.observed
                ));
            }
        }
    }
    lines.push("  run it for real: `driftline run --slo examples/slo …` (README \"SLOs\")".into());
    lines
}
