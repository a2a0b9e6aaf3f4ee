//! The alerts' metrics, on the process registry.

use std::sync::LazyLock;

use driftline_pipeline::metrics::{counter, gauge};
use prometheus::{IntCounterVec, IntGaugeVec};

pub struct Metrics {
    /// Alerts by state (pending, firing, resolved-not-yet-notified).
    pub alerts: IntGaugeVec,
    /// Notification deliveries, by integration and outcome
    /// (delivered, retried, dead_letter).
    pub notifications: IntCounterVec,
    /// Messages waiting in the durable outbox, by integration.
    pub outbox_messages: IntGaugeVec,
    /// Remediation hook actions, by hook and action (proposed, approved, run).
    pub remediations: IntCounterVec,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
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
});

pub fn metrics() -> &'static Metrics {
    &METRICS
}
