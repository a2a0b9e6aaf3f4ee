//! Generic webhook in Alertmanager's webhook format (version 4), so
//! receivers written for Alertmanager work unchanged.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Delivery, Links, Notifier, alert_url, post_json, rfc3339};
use crate::engine::{Alert, AlertState, Notification};
use crate::labels::Labels;

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

/// Labels every alert shares.
fn common(maps: impl Iterator<Item = Labels>) -> Labels {
    let mut iter = maps;
    let Some(mut acc) = iter.next() else {
        return BTreeMap::new();
    };
    for m in iter {
        acc.retain(|k, v| m.get(k) == Some(v));
    }
    acc
}

fn alert_json(a: &Alert, links: &Links) -> Value {
    let resolved = a.state == AlertState::Resolved;
    json!({
        "status": if resolved { "resolved" } else { "firing" },
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": rfc3339(a.starts_at_ms),
        "endsAt": match (resolved, a.ends_at_ms) {
            (true, Some(e)) => rfc3339(e),
            _ => "0001-01-01T00:00:00Z".to_string(),
        },
        "generatorURL": alert_url(links, a),
        "fingerprint": a.fingerprint,
    })
}

/// The Alertmanager webhook body for a notification.
pub fn message(n: &Notification, links: &Links, max_alerts: usize) -> Value {
    let firing = n.alerts.iter().any(|a| a.state != AlertState::Resolved);
    let shown: Vec<&Alert> = if max_alerts > 0 {
        n.alerts.iter().take(max_alerts).collect()
    } else {
        n.alerts.iter().collect()
    };
    json!({
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": n.alerts.len() - shown.len(),
        "status": if firing { "firing" } else { "resolved" },
        "receiver": n.receiver,
        "groupLabels": n.group_labels,
        "commonLabels": common(n.alerts.iter().map(|a| a.labels.clone())),
        "commonAnnotations": common(n.alerts.iter().map(|a| a.annotations.clone())),
        "externalURL": links.external_url,
        "alerts": shown.iter().map(|a| alert_json(a, links)).collect::<Vec<_>>(),
    })
}

impl Notifier for Webhook {
    fn render(&self, n: &Notification, links: &Links) -> Vec<Value> {
        vec![message(n, links, self.max_alerts)]
    }

    fn deliver(&self, m: &Value) -> Delivery {
        post_json(&self.http, &self.url, m, None)
    }
}
