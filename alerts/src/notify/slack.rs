//! Slack incoming webhooks: one message per group notification. The
//! webhook URL is the secret (it carries the token), kept out of messages.

use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::{Delivery, Links, Message, Notifier, alert_url, cut, post_json, to_message};
use crate::engine::{AlertState, Notification};

pub struct Slack {
    url: String,
    channel: Option<String>,
    http: reqwest::blocking::Client,
}

impl Slack {
    pub fn new(url: String, channel: Option<String>) -> Self {
        Self {
            url,
            channel,
            http: super::http_client(),
        }
    }
}

/// The Slack message for a notification.
pub fn message(n: &Notification, links: &Links, channel: Option<&str>) -> Value {
    let firing = n
        .alerts
        .iter()
        .filter(|a| a.state != AlertState::Resolved)
        .count();
    let resolved = n.alerts.len() - firing;
    let title = match n.group_labels.get("alertname") {
        Some(name) => format!("{name}: {firing} firing, {resolved} resolved"),
        None => format!("driftline: {firing} firing, {resolved} resolved"),
    };
    let mut lines = vec![format!("*{title}*")];
    for a in n.alerts.iter().take(20) {
        let mark = if a.state == AlertState::Resolved {
            ":white_check_mark:"
        } else {
            ":rotating_light:"
        };
        let annotations = &a.content.annotations;
        let summary = annotations.get("summary").unwrap_or_default();
        let fp = a.fingerprint();
        lines.push(format!(
            "{mark} <{}|{}> {}",
            alert_url(links, fp),
            fp.get(..12).unwrap_or(fp),
            cut(summary, 300)
        ));
        if let Some(r) = annotations.get("remediation") {
            lines.push(format!("    fix: `{}`", cut(r, 200)));
        }
    }
    if n.alerts.len() > 20 {
        lines.push(format!("… and {} more", n.alerts.len() - 20));
    }
    let mut m = json!({ "text": lines.join("\n") });
    if let Some(c) = channel {
        m["channel"] = json!(c);
    }
    m
}

impl Notifier for Slack {
    fn render(&self, n: &Notification, links: &Links) -> Vec<Message> {
        vec![to_message(&message(n, links, self.channel.as_deref()))]
    }

    fn deliver(&self, m: &RawValue) -> Delivery {
        post_json(&self.http, &self.url, m.get().to_string(), Some(&self.url))
    }
}
