//! What the engine takes and gives: alerts, their states, integrations,
//! notifications, and the state changes it persists.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::labels::{LabelSet, Labels};
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

/// What an alert says: its identity, labels and the details receivers
/// show. Shared, read-only, by the engine and every notification about the
/// alert: a flush of a million alerts copies pointers, not label sets.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertContent {
    pub fingerprint: Arc<str>,
    pub labels: LabelSet,
    pub annotations: LabelSet,
    pub details: Value,
}

impl AlertContent {
    /// `input`'s content, under the engine's copy of its fingerprint.
    pub fn new(fingerprint: Arc<str>, input: AlertInput) -> Self {
        Self {
            fingerprint,
            labels: input.labels.into(),
            annotations: input.annotations.into(),
            details: input.details,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Kept flat in the state log, as before the content was shared.
    #[serde(flatten)]
    pub content: Arc<AlertContent>,
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
    pub paged: IntegrationSet,
    /// Of those, the ones told it is acknowledged (silenced after paging).
    #[serde(default)]
    pub acked: IntegrationSet,
    /// Keys of the aggregation groups it is in: the engine's bookkeeping,
    /// formed again on restore.
    #[serde(skip)]
    pub groups: Vec<Arc<str>>,
}

impl Alert {
    pub fn fingerprint(&self) -> &Arc<str> {
        &self.content.fingerprint
    }

    pub fn labels(&self) -> &LabelSet {
        &self.content.labels
    }

    /// The alert as a notification tells it now.
    pub fn notified(&self) -> NotifiedAlert {
        NotifiedAlert {
            content: self.content.clone(),
            state: self.state,
            starts_at_ms: self.starts_at_ms,
            ends_at_ms: self.ends_at_ms,
        }
    }
}

/// An alert in a notification: the shared content and the state it was in
/// when its group flushed (the engine's copy moves on).
#[derive(Debug, Clone, PartialEq)]
pub struct NotifiedAlert {
    pub content: Arc<AlertContent>,
    pub state: AlertState,
    pub starts_at_ms: i64,
    pub ends_at_ms: Option<i64>,
}

impl NotifiedAlert {
    pub fn fingerprint(&self) -> &str {
        &self.content.fingerprint
    }

    pub fn labels(&self) -> &LabelSet {
        &self.content.labels
    }
}

/// Integration ids (`{receiver}/{kind}/{index}`), sorted. An alert pages
/// through one or two: a vector, where a `BTreeSet` would allocate a
/// 200-byte node per alert. Serialised as the list it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IntegrationSet(Vec<Arc<str>>);

impl IntegrationSet {
    pub fn contains(&self, id: &str) -> bool {
        self.0.iter().any(|i| &**i == id)
    }

    pub fn insert(&mut self, id: &Arc<str>) {
        if let Err(at) = self.0.binary_search(id) {
            self.0.insert(at, id.clone());
        }
    }

    pub fn remove(&mut self, id: &str) {
        self.0.retain(|i| &**i != id);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|i| &**i)
    }
}

/// What a receiver integration was last told about a group: the alerts as
/// 64-bit hashes of their fingerprints, sorted, as Alertmanager's
/// notification log keeps them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NflogEntry {
    #[serde(deserialize_with = "fingerprint_hashes")]
    pub firing: Vec<u64>,
    #[serde(deserialize_with = "fingerprint_hashes")]
    pub resolved: Vec<u64>,
    pub at_ms: i64,
}

/// The notification log's name for an alert.
pub fn fingerprint_hash(fingerprint: &str) -> u64 {
    xxhash_rust::xxh64::xxh64(fingerprint.as_bytes(), 0)
}

/// Hashes, or the fingerprints a state log written before hashing holds.
fn fingerprint_hashes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Hash(u64),
        Fingerprint(String),
    }
    let mut out: Vec<u64> = Vec::<Entry>::deserialize(d)?
        .into_iter()
        .map(|e| match e {
            Entry::Hash(h) => h,
            Entry::Fingerprint(f) => fingerprint_hash(&f),
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    Ok(out)
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
    pub id: Arc<str>,
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
    pub receiver: Arc<str>,
    pub integration: Integration,
    pub group_key: Arc<str>,
    pub group_labels: Arc<Labels>,
    /// Firing and resolved alerts, sorted by labels (shared by the
    /// integrations of one flush: a big group is not copied per receiver).
    pub alerts: Arc<[NotifiedAlert]>,
    /// Per-alert integrations: the alerts to trigger and to resolve, as
    /// indexes into `alerts`.
    pub trigger: Vec<u32>,
    pub resolve: Vec<u32>,
    /// Per-alert integrations: paged alerts someone silenced since.
    pub acknowledge: Vec<u32>,
    pub at_ms: i64,
}

impl Notification {
    /// The alerts `trigger`, `resolve` or `acknowledge` point at.
    pub fn pick<'a>(&'a self, indexes: &'a [u32]) -> impl Iterator<Item = &'a NotifiedAlert> + 'a {
        indexes.iter().map(|i| &self.alerts[*i as usize])
    }
}

/// A change the caller must make durable (see `state`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum StateChange {
    Alert(Box<Alert>),
    ForgetAlert { fingerprint: Arc<str> },
    Nflog { key: String, entry: NflogEntry },
    Silence(Silence),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_is_kept_flat_in_the_state_log_and_reads_back_whole() {
        let labels = crate::labels::of_pairs(&[("team", "core"), ("alertname", "DriftChanged")]);
        let input = AlertInput {
            fingerprint: "fp1".into(),
            labels,
            annotations: Labels::new(),
            details: serde_json::json!({"diff": "x"}),
            firing: true,
            at_ms: 1,
        };
        let mut paged = IntegrationSet::default();
        paged.insert(&Arc::from("oncall/pagerduty/0"));
        let a = Alert {
            content: Arc::new(AlertContent::new("fp1".into(), input)),
            state: AlertState::Firing,
            active_since_ms: 1,
            starts_at_ms: 2,
            ends_at_ms: None,
            last_event_ms: 1,
            for_ms: 0,
            flips: vec![2],
            flapping: false,
            clear_since_ms: None,
            done: false,
            paged,
            acked: IntegrationSet::default(),
            groups: Vec::new(),
        };
        let text = serde_json::to_value(&a).unwrap();
        assert_eq!(text["fingerprint"], "fp1");
        assert_eq!(text["labels"]["team"], "core");
        assert_eq!(text["details"]["diff"], "x");
        assert_eq!(text["paged"], serde_json::json!(["oncall/pagerduty/0"]));
        let back: Alert = serde_json::from_value(text).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn the_notification_log_reads_fingerprints_written_before_hashing() {
        let old: NflogEntry =
            serde_json::from_str(r#"{"firing":["b","a","a"],"resolved":[],"at_ms":7}"#).unwrap();
        let mut want = vec![fingerprint_hash("a"), fingerprint_hash("b")];
        want.sort_unstable();
        assert_eq!(old.firing, want);
        let again: NflogEntry =
            serde_json::from_str(&serde_json::to_string(&old).unwrap()).unwrap();
        assert_eq!(again, old);
    }

    #[test]
    fn integration_sets_stay_sorted_and_unique() {
        let mut s = IntegrationSet::default();
        for id in ["b/pagerduty/0", "a/pagerduty/0", "b/pagerduty/0"] {
            s.insert(&Arc::from(id));
        }
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            ["a/pagerduty/0", "b/pagerduty/0"]
        );
        s.remove("a/pagerduty/0");
        assert!(!s.contains("a/pagerduty/0") && s.contains("b/pagerduty/0"));
        s.remove("b/pagerduty/0");
        assert!(s.is_empty());
    }
}
