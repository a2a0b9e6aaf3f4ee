//! The detectors' metrics, on the process registry.

use std::sync::LazyLock;

use driftline_pipeline::metrics::{counter, gauge};
use prometheus::{IntCounterVec, IntGaugeVec};

pub struct Metrics {
    /// Open findings, by detector and class.
    pub findings_open: IntGaugeVec,
    /// Finding events emitted, by class and event.
    pub finding_events: IntCounterVec,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    findings_open: gauge(
        "driftline_findings_open",
        "Findings currently open.",
        &["detector", "class"],
    ),
    finding_events: counter(
        "driftline_finding_events_total",
        "Finding events emitted.",
        &["class", "event"],
    ),
});

pub fn metrics() -> &'static Metrics {
    &METRICS
}
