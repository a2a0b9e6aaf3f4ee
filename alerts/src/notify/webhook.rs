//! Generic webhook in Alertmanager's webhook format (version 4), so
//! receivers written for Alertmanager work unchanged.

use serde::Serialize;
use serde_json::value::RawValue;

use super::{Delivery, Links, Message, Notifier, alert_url, post_json, rfc3339, to_message};
use crate::engine::{AlertState, Notification, NotifiedAlert};
use crate::labels::{LabelSet, Labels};

pub struct Webhook {
    url: String,
    max_alerts: usize,
    http: reqwest::blocking::Client,
}

impl Webhook {
    pub fn new(url: &str, max_alerts: usize) -> Self {
        Self {
            url: url.to_string(),
            max_alerts,
            http: super::http_client(),
        }
    }
}

/// Labels every set shares.
fn common<'a>(mut sets: impl Iterator<Item = &'a LabelSet>) -> Labels {
    let Some(first) = sets.next() else {
        return Labels::new();
    };
    let mut acc: Vec<(&str, &str)> = first.iter().collect();
    for set in sets {
        if acc.is_empty() {
            break;
        }
        acc.retain(|(k, v)| set.get(k) == Some(*v));
    }
    acc.into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Alertmanager's webhook body (version 4), borrowed from the notification.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    version: &'static str,
    group_key: &'a str,
    truncated_alerts: usize,
    status: &'static str,
    receiver: &'a str,
    group_labels: &'a Labels,
    common_labels: Labels,
    common_annotations: Labels,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    alerts: Vec<AlertBody<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertBody<'a> {
    status: &'static str,
    labels: &'a LabelSet,
    annotations: &'a LabelSet,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
    fingerprint: &'a str,
}

fn alert_body<'a>(a: &'a NotifiedAlert, links: &Links) -> AlertBody<'a> {
    let resolved = a.state == AlertState::Resolved;
    AlertBody {
        status: if resolved { "resolved" } else { "firing" },
        labels: &a.content.labels,
        annotations: &a.content.annotations,
        starts_at: rfc3339(a.starts_at_ms),
        ends_at: match (resolved, a.ends_at_ms) {
            (true, Some(e)) => rfc3339(e),
            _ => "0001-01-01T00:00:00Z".to_string(),
        },
        generator_url: alert_url(links, a.fingerprint()),
        fingerprint: a.fingerprint(),
    }
}

/// The Alertmanager webhook body for a notification.
pub fn message(n: &Notification, links: &Links, max_alerts: usize) -> Message {
    let firing = n.alerts.iter().any(|a| a.state != AlertState::Resolved);
    let shown = if max_alerts > 0 {
        &n.alerts[..n.alerts.len().min(max_alerts)]
    } else {
        &n.alerts[..]
    };
    to_message(&Body {
        version: "4",
        group_key: &n.group_key,
        truncated_alerts: n.alerts.len() - shown.len(),
        status: if firing { "firing" } else { "resolved" },
        receiver: &n.receiver,
        group_labels: &n.group_labels,
        common_labels: common(n.alerts.iter().map(|a| &a.content.labels)),
        common_annotations: common(n.alerts.iter().map(|a| &a.content.annotations)),
        external_url: &links.external_url,
        alerts: shown.iter().map(|a| alert_body(a, links)).collect(),
    })
}

impl Notifier for Webhook {
    fn render(&self, n: &Notification, links: &Links) -> Vec<Message> {
        vec![message(n, links, self.max_alerts)]
    }

    fn deliver(&self, m: &RawValue) -> Delivery {
        post_json(&self.http, &self.url, m.get().to_string(), None)
    }
}
