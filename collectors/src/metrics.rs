//! The collectors' metrics, on the process registry.

use std::sync::LazyLock;

use driftline_pipeline::metrics::{counter, gauge, histogram};
use prometheus::{HistogramVec, IntCounterVec, IntGaugeVec};

pub struct Metrics {
    /// Source files read by the watching collectors, by collector and outcome.
    pub files_read: IntCounterVec,
    /// Cloud API calls the collectors made, by API, operation, region and
    /// outcome (ok, throttled, error): what a scan costs in API quota.
    pub cloud_api_calls: IntCounterVec,
    /// Time collectors waited for their client-side request budget.
    pub cloud_api_budget_wait: IntCounterVec,
    /// State sources read (S3 objects, HTTP backends), by backend and outcome
    /// (read, unchanged, error).
    pub state_reads: IntCounterVec,
    /// 1 while a source reads its scope, 0 while it cannot (by source,
    /// account, region; `-` is any).
    pub source_up: IntGaugeVec,
    /// Seconds since a source's last successful read, set while it is down
    /// and has one (its data is kept, stale).
    pub source_stale_seconds: IntGaugeVec,
    /// Metric samples accepted onto the bus, by source (remote_write,
    /// otlp, scrape).
    pub samples_in: IntCounterVec,
    /// Log records accepted onto the bus, by source (file, otlp).
    pub log_records_in: IntCounterVec,
    /// Samples, records or requests refused, by source and reason.
    pub ingest_rejected: IntCounterVec,
    /// Accepted telemetry that did not reach the bus. Must stay 0: a
    /// receiver answers only after the bus has the data.
    pub ingest_dropped: IntCounterVec,
    /// How long each scrape took, by job.
    pub scrape_seconds: HistogramVec,
    /// 1 when a target's last scrape succeeded.
    pub scrape_up: IntGaugeVec,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    files_read: counter(
        "driftline_collector_files_read_total",
        "Source files read by watching collectors.",
        &["collector", "outcome"],
    ),
    cloud_api_calls: counter(
        "driftline_cloud_api_calls_total",
        "Cloud API calls made by collectors.",
        &["api", "operation", "region", "outcome"],
    ),
    cloud_api_budget_wait: counter(
        "driftline_cloud_api_budget_wait_milliseconds_total",
        "Time collectors waited for their client-side API request budget.",
        &["api", "region"],
    ),
    state_reads: counter(
        "driftline_state_reads_total",
        "Remote Terraform state reads, by backend and outcome.",
        &["backend", "outcome"],
    ),
    source_up: gauge(
        "driftline_source_up",
        "1 while a source reads its scope completely, 0 while it cannot.",
        &["source", "account", "region"],
    ),
    source_stale_seconds: gauge(
        "driftline_source_stale_seconds",
        "Age of a down source's last good reading, which is kept meanwhile.",
        &["source", "account", "region"],
    ),
    samples_in: counter(
        "driftline_ingest_samples_total",
        "Metric samples accepted onto the bus, by source.",
        &["source"],
    ),
    log_records_in: counter(
        "driftline_ingest_log_records_total",
        "Log records accepted onto the bus, by source.",
        &["source"],
    ),
    ingest_rejected: counter(
        "driftline_ingest_rejected_total",
        "Telemetry refused, by source and reason (invalid, unsupported, busy, unauthorized).",
        &["source", "reason"],
    ),
    ingest_dropped: counter(
        "driftline_ingest_dropped_total",
        "Accepted telemetry that never reached the bus (must stay 0).",
        &["source"],
    ),
    scrape_seconds: histogram(
        "driftline_scrape_duration_seconds",
        "Time each Prometheus scrape took, by job.",
        &["job"],
        vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ],
    ),
    scrape_up: gauge(
        "driftline_scrape_target_up",
        "1 when a scrape target's last scrape succeeded, else 0.",
        &["job", "instance"],
    ),
});

/// Where telemetry comes in, as the ingest counters' `source` label.
pub const INGEST_SOURCES: [&str; 4] = ["remote_write", "otlp", "scrape", "file"];

pub fn metrics() -> &'static Metrics {
    static ZEROED: std::sync::Once = std::sync::Once::new();
    ZEROED.call_once(|| {
        // Shown at 0 from the start, so "dropped must stay 0" is a series a
        // dashboard can alert on rather than an absence.
        for source in INGEST_SOURCES {
            METRICS.ingest_dropped.with_label_values(&[source]);
        }
    });
    &METRICS
}
