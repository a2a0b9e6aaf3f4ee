//! The collectors' metrics, on the process registry.

use std::sync::LazyLock;

use driftline_pipeline::metrics::{counter, gauge};
use prometheus::{IntCounterVec, IntGaugeVec};

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
});

pub fn metrics() -> &'static Metrics {
    &METRICS
}
