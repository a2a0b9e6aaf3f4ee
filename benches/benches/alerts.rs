//! Micro-benchmarks of the alert engine's hot paths on 10 000 alerts:
//! firing then resolving them through grouping to notifications, and
//! rendering one group's PagerDuty trigger events.
//!
//! cargo bench -p driftline-benches --features alerts --bench alerts

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use driftline_alerts::engine::{AlertEngine, AlertInput, IntegrationKind};
use driftline_alerts::labels::Labels;
use driftline_alerts::notify::{Links, Notifier, PagerDuty};
use driftline_alerts::{AlertsConfig, Notification};
use driftline_benches::alerts::{config, labels};

const N: usize = 10_000;
const TEAMS: usize = 10;

fn input(i: usize, firing: bool, at_ms: i64) -> AlertInput {
    AlertInput {
        fingerprint: format!("{i:032x}"),
        labels: labels(i, TEAMS),
        annotations: Labels::new(),
        details: serde_json::Value::Null,
        firing,
        at_ms,
    }
}

/// Every alert fires, then resolves; the notifications of both flushes.
fn fire_and_resolve(cfg: &AlertsConfig) -> Vec<Notification> {
    let mut engine = AlertEngine::new(cfg);
    for i in 0..N {
        engine.ingest(input(i, true, 1), 0);
    }
    let mut out = engine.tick(1_000);
    for i in 0..N {
        engine.ingest(input(i, false, 2), 2_000);
    }
    out.extend(engine.tick(6_000));
    out
}

fn bench(c: &mut Criterion) {
    let cfg = config();
    let mut group = c.benchmark_group("alerts");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("fire_and_resolve", |b| {
        b.iter(|| fire_and_resolve(&cfg).len())
    });
    let notifications = fire_and_resolve(&cfg);
    let paging = notifications
        .iter()
        .find(|n| n.integration.kind == IntegrationKind::PagerDuty && !n.trigger.is_empty())
        .expect("a PagerDuty notification with triggers");
    let pd = PagerDuty::new("http://127.0.0.1:1/", "x".repeat(32), "driftline");
    let links = Links {
        external_url: "http://127.0.0.1:9464".into(),
        dashboard_url: None,
    };
    group.throughput(Throughput::Elements(paging.trigger.len() as u64));
    group.bench_function("pagerduty_render_group", |b| {
        b.iter(|| pd.render(paging, &links).len())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
