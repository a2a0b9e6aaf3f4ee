//! The process's Prometheus metrics, named by Prometheus conventions
//! (`driftline_` prefix, base units, `_total` counters). One registry for
//! the whole process; `/metrics` renders it.

use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    /// Messages consumed, by topic.
    pub records_in: IntCounterVec,
    /// Messages produced (acknowledged), by topic.
    pub records_out: IntCounterVec,
    /// Messages between a group's position and the partition's end.
    pub consumer_lag: IntGaugeVec,
    /// Time to process one polled batch, by stage.
    pub batch_seconds: HistogramVec,
    /// Records sent to `driftline.dlq`, by the topic or collector they came from.
    pub dead_letters: IntCounterVec,
    /// Open findings, by detector and class.
    pub findings_open: IntGaugeVec,
    /// Finding events emitted, by class and event.
    pub finding_events: IntCounterVec,
    /// Source files read by the watching collectors, by collector and outcome.
    pub files_read: IntCounterVec,
    /// Alerts by state (pending, firing, resolved-not-yet-notified).
    pub alerts: IntGaugeVec,
    /// Notification deliveries, by integration and outcome
    /// (delivered, retried, dead_letter).
    pub notifications: IntCounterVec,
    /// Messages waiting in the durable outbox, by integration.
    pub outbox_messages: IntGaugeVec,
    /// Remediation hook actions, by hook and action (proposed, approved, run).
    pub remediations: IntCounterVec,
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

fn register<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    // Names are fixed and distinct, so registration cannot collide.
    let _ = r.register(Box::new(c.clone()));
    c
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(
                &r,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            register(
                &r,
                IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let build = gauge(
            "driftline_build_info",
            "Always 1; labels carry the version.",
            &["version"],
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Self {
            records_in: counter(
                "driftline_bus_records_in_total",
                "Messages consumed from the bus.",
                &["topic"],
            ),
            records_out: counter(
                "driftline_bus_records_out_total",
                "Messages produced to the bus and acknowledged.",
                &["topic"],
            ),
            consumer_lag: gauge(
                "driftline_consumer_lag_records",
                "Messages between the consumer group's position and the end of the partition.",
                &["group", "topic", "partition"],
            ),
            batch_seconds: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "driftline_batch_duration_seconds",
                        "Time to process one polled batch, from poll to commit.",
                    )
                    .buckets(vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ]),
                    &["stage"],
                )
                .expect("valid metric"),
            ),
            dead_letters: counter(
                "driftline_dead_letters_total",
                "Records rejected to the dead-letter topic.",
                &["source"],
            ),
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
            files_read: counter(
                "driftline_collector_files_read_total",
                "Source files read by watching collectors.",
                &["collector", "outcome"],
            ),
            alerts: gauge("driftline_alerts", "Alerts by state.", &["state"]),
            notifications: counter(
                "driftline_notifications_total",
                "Notification delivery attempts, by integration and outcome.",
                &["integration", "outcome"],
            ),
            outbox_messages: gauge(
                "driftline_outbox_messages",
                "Notifications waiting in the durable outbox.",
                &["integration"],
            ),
            remediations: counter(
                "driftline_remediation_actions_total",
                "Remediation hook actions, by hook and action.",
                &["hook", "action"],
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
            registry: r,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}
