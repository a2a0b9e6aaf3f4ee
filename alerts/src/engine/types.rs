//! What the engine takes and gives: alerts, their states, integrations,
//! notifications, and the state changes it persists.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::labels::Labels;
use crate::silence::Silence;

/// One observation of an alert condition: open (`firing`) or gone.
#[derive(Debug, Clone)]
pub struct AlertInput {
    pub fingerprint: String,
    pub labels: Labels,
    pub annotations: Labels,
    /// Free-form details carried to the receivers (diff, remediation, cause).
    pub details: Value,
    pub firing: bool,
    /// When the source saw it (ms). Older than what the engine already
    /// applied for this fingerprint = a replay, ignored.
    pub at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Open, waiting out its rule's `for`.
    Pending,
    Firing,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub fingerprint: String,
    pub labels: Labels,
    pub annotations: Labels,
    pub details: Value,
    pub state: AlertState,
    /// When the condition opened (pending since).
    pub active_since_ms: i64,
    /// When it started firing.
    pub starts_at_ms: i64,
    pub ends_at_ms: Option<i64>,
    /// Newest input applied (replay guard).
    pub last_event_ms: i64,
    pub for_ms: i64,
    /// Firing/resolved transitions inside the flap window.
    #[serde(default)]
    pub flips: Vec<i64>,
    #[serde(default)]
    pub flapping: bool,
    /// A flapping alert whose condition cleared at this time: its resolve
    /// waits until it has stayed clear for the flap window.
    #[serde(default)]
    pub clear_since_ms: Option<i64>,
    /// Resolved and every group has notified it: only kept as a replay guard.
    #[serde(default)]
    pub done: bool,
    /// Per-alert integrations (PagerDuty) holding an open trigger for it.
    #[serde(default)]
    pub paged: BTreeSet<String>,
    /// Of those, the ones told it is acknowledged (silenced after paging).
    #[serde(default)]
    pub acked: BTreeSet<String>,
}

/// What a receiver integration was last told about a group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NflogEntry {
    pub firing: BTreeSet<String>,
    pub resolved: BTreeSet<String>,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationKind {
    PagerDuty,
    Webhook,
    Slack,
}

/// One way a receiver is told (Alertmanager's "integration").
#[derive(Debug, Clone)]
pub struct Integration {
    /// `{receiver}/{kind}/{index}`: the notification log and outbox key.
    pub id: String,
    pub kind: IntegrationKind,
    pub index: usize,
    pub send_resolved: bool,
}

/// `{receiver}/{kind}/{index}`, e.g. `oncall/pagerduty/0`.
pub fn integration_id(receiver: &str, kind: &str, index: usize) -> String {
    format!("{receiver}/{kind}/{index}")
}

impl Integration {
    /// PagerDuty gets one event per alert (dedup_key = fingerprint); the
    /// others get one message per group.
    pub fn per_alert(&self) -> bool {
        self.kind == IntegrationKind::PagerDuty
    }
}

/// A notification for one integration of one receiver about one group.
#[derive(Debug, Clone)]
pub struct Notification {
    pub receiver: String,
    pub integration: Integration,
    pub group_key: String,
    pub group_labels: Labels,
    /// Firing and resolved alerts, sorted by labels (shared by the
    /// integrations of one flush: a big group is not copied per receiver).
    pub alerts: std::sync::Arc<Vec<Alert>>,
    /// Per-alert integrations: the alerts to trigger and to resolve.
    pub trigger: Vec<String>,
    pub resolve: Vec<String>,
    /// Per-alert integrations: paged alerts someone silenced since.
    pub acknowledge: Vec<String>,
    pub at_ms: i64,
}

/// A change the caller must make durable (see `state`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum StateChange {
    Alert(Box<Alert>),
    ForgetAlert { fingerprint: String },
    Nflog { key: String, entry: NflogEntry },
    Silence(Silence),
}
