//! PagerDuty Events API v2, as PagerDuty documents it: one `trigger` per
//! alert when it starts firing, one `acknowledge` when someone silences it
//! after it paged, and one `resolve` when it recovers, all
//! with `dedup_key` = the alert fingerprint (≤ 255 characters);
//! `payload.summary` ≤ 1024 characters; severity one of critical, error,
//! warning, info; the whole event under 512 KB. The routing key is added
//! at send time only.

use serde_json::{Value, json};

use super::{Delivery, Links, Notifier, alert_url, cut, post_json, rfc3339};
use crate::engine::{Alert, Notification};

const SUMMARY_MAX: usize = 1024;
const DEDUP_MAX: usize = 255;
const EVENT_MAX_BYTES: usize = 512 * 1024;

pub struct PagerDuty {
    url: String,
    routing_key: String,
    client_name: String,
    http: reqwest::blocking::Client,
}

impl std::fmt::Debug for PagerDuty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagerDuty")
            .field("url", &self.url)
            .field("routing_key", &"<redacted>")
            .finish()
    }
}

impl PagerDuty {
    pub fn new(url: &str, routing_key: String, client_name: &str) -> Self {
        Self {
            url: url.to_string(),
            routing_key,
            client_name: client_name.to_string(),
            http: super::http_client(),
        }
    }
}

/// Our severity label → PagerDuty's four values.
fn severity(a: &Alert) -> &'static str {
    match a.labels.get("severity").map(String::as_str) {
        Some("critical") | Some("page") => "critical",
        Some("error") => "error",
        Some("info") => "info",
        _ => "warning",
    }
}

fn dedup_key(fp: &str) -> String {
    fp.chars().take(DEDUP_MAX).collect()
}

/// The trigger event for an alert (without `routing_key`).
pub fn trigger_event(a: &Alert, n: &Notification, links: &Links, client: &str) -> Value {
    let l = |k: &str| a.labels.get(k).cloned().unwrap_or_default();
    let summary = a
        .annotations
        .get("summary")
        .cloned()
        .unwrap_or_else(|| l("alertname"));
    let source = [l("resource_key"), l("instance"), l("job")]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "driftline".into());
    let group = [
        l("service"),
        l("team"),
        format!("{}/{}", l("account"), l("region")),
    ]
    .into_iter()
    .find(|s| !s.is_empty() && s != "/")
    .unwrap_or_else(|| "driftline".into());
    let mut details = json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "group_key": n.group_key,
        "firing_since": rfc3339(a.starts_at_ms),
    });
    if let Value::Object(extra) = &a.details {
        for (k, v) in extra {
            if !v.is_null() {
                details[k] = v.clone();
            }
        }
    }
    let mut links_out = vec![json!({"href": alert_url(links, a), "text": "Alert in driftline"})];
    if let Some(d) = &links.dashboard_url {
        links_out.push(json!({"href": d, "text": "Dashboard"}));
    }
    let mut event = json!({
        "event_action": "trigger",
        "dedup_key": dedup_key(&a.fingerprint),
        "payload": {
            "summary": cut(&summary, SUMMARY_MAX),
            "source": source,
            "severity": severity(a),
            "timestamp": rfc3339(a.starts_at_ms),
            "component": l("resource_type"),
            "group": group,
            "class": l("alertname"),
            "custom_details": details,
        },
        "links": links_out,
        "client": client,
        "client_url": links.external_url,
    });
    // Stay under PagerDuty's 512 KB: a huge diff is the only thing that grows.
    if serde_json::to_vec(&event).map(|v| v.len()).unwrap_or(0) > EVENT_MAX_BYTES - 1024 {
        event["payload"]["custom_details"]["diff"] =
            json!("diff too large for PagerDuty; see the alert in driftline");
    }
    event
}

impl Notifier for PagerDuty {
    fn render(&self, n: &Notification, links: &Links) -> Vec<Value> {
        let by_fp: std::collections::HashMap<&str, &Alert> = n
            .alerts
            .iter()
            .map(|a| (a.fingerprint.as_str(), a))
            .collect();
        let mut out = Vec::with_capacity(n.trigger.len() + n.resolve.len());
        for fp in &n.resolve {
            out.push(json!({
                "event_action": "resolve",
                "dedup_key": dedup_key(fp),
            }));
        }
        for fp in &n.acknowledge {
            out.push(json!({
                "event_action": "acknowledge",
                "dedup_key": dedup_key(fp),
            }));
        }
        for fp in &n.trigger {
            if let Some(a) = by_fp.get(fp.as_str()) {
                out.push(trigger_event(a, n, links, &self.client_name));
            }
        }
        out
    }

    fn deliver(&self, message: &Value) -> Delivery {
        let mut body = message.clone();
        body["routing_key"] = Value::String(self.routing_key.clone());
        // PagerDuty answers 202; anything 2xx is accepted.
        post_json(&self.http, &self.url, &body, Some(&self.routing_key))
    }
}
