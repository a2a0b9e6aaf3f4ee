//! Change notifications pushed to driftline: AWS Config's
//! `ConfigurationItemChangeNotification` and
//! `OversizedConfigurationItemChangeNotification`, delivered by SNS (HTTP/S
//! subscription, with its confirmation handshake) or by EventBridge (an API
//! destination), in every envelope `shapes` knows. An oversized
//! notification carries only a summary; it is completed with one
//! `BatchGetResourceConfig` call when the live collector is configured.
//!
//! SNS message signatures are not verified: guard the endpoint with
//! `token_env` (SNS and EventBridge both can send it in the URL) and
//! `topic_arns`, and keep it off the public internet.

use std::sync::Arc;

use driftline_pipeline::{Record, RecordSink, Topic, TypeTable};
use serde_json::Value;

use super::api::NotificationSettings;
use super::live::AwsConfigApiCollector;
use crate::SourceError;

/// What became of one delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    /// An SNS subscription was confirmed (its SubscribeURL fetched).
    Confirmed { topic: String },
    /// Items published onto the config topic.
    Published(usize),
    /// A message that carries no item (scheduled notifications, an
    /// unsubscribe confirmation…).
    Ignored(String),
}

#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// The message is not one driftline can read (also dead-lettered).
    #[error("{0}")]
    Invalid(String),
    /// A topic or SubscribeURL driftline was not told to trust.
    #[error("{0}")]
    Refused(String),
    /// The bus or the confirmation call failed: the sender should retry.
    #[error("{0}")]
    Unavailable(String),
}

/// Receives notifications and publishes their items.
pub struct NotificationReceiver {
    settings: NotificationSettings,
    types: Arc<TypeTable>,
    completer: Option<Arc<AwsConfigApiCollector>>,
    http: reqwest::blocking::Client,
}

impl NotificationReceiver {
    pub fn new(
        settings: NotificationSettings,
        types: Arc<TypeTable>,
        completer: Option<Arc<AwsConfigApiCollector>>,
    ) -> Self {
        Self {
            settings,
            types,
            completer,
            http: driftline_pipeline::http_client(),
        }
    }

    /// The token a sender must present, if one is configured.
    pub fn token(&self) -> Option<String> {
        self.settings
            .token_env
            .as_deref()
            .and_then(|v| std::env::var(v).ok())
            .filter(|t| !t.is_empty())
    }

    /// Handles one delivery. Blocking (the confirmation and completion
    /// calls): run it off the async workers.
    pub fn handle(&self, body: &[u8], out: &dyn RecordSink) -> Result<Handled, NotificationError> {
        let source = "aws-config notification";
        let envelope: Value = serde_json::from_slice(body).map_err(|e| {
            self.dead_letter(
                out,
                format!(
                    "invalid JSON at line {}, column {}: {e}",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        if !envelope.is_object() {
            return Err(self.dead_letter(
                out,
                "not a notification: the body is not a JSON object".into(),
            ));
        }
        let kind = envelope.get("Type").and_then(Value::as_str).unwrap_or("");
        if let Some(topic) = envelope.get("TopicArn").and_then(Value::as_str) {
            if !self.settings.topic_arns.is_empty()
                && !self
                    .settings
                    .topic_arns
                    .iter()
                    .any(|t| glob_matches(t, topic))
            {
                return Err(NotificationError::Refused(format!(
                    "SNS topic {topic} is not in aws_config.notifications.topic_arns"
                )));
            }
            match kind {
                "SubscriptionConfirmation" => return self.confirm(&envelope, topic),
                "UnsubscribeConfirmation" => {
                    return Ok(Handled::Ignored(format!("unsubscribed from {topic}")));
                }
                _ => {}
            }
        }
        let loaded = super::load_value(envelope, source, &self.types)
            .map_err(|e| self.dead_letter(out, e.to_string()))?;
        if let Some(reason) = loaded.item_errors.first() {
            return Err(self.dead_letter(out, reason.clone()));
        }
        if loaded.items.is_empty() {
            return Ok(Handled::Ignored(
                loaded
                    .skipped
                    .unwrap_or_else(|| "no configuration item in the message".into()),
            ));
        }
        let mut records = Vec::with_capacity(loaded.items.len());
        for item in loaded.items {
            let item = match (&self.completer, item.summary_only) {
                (Some(api), true) => {
                    match api.complete(&item.region, &item.resource_type, &item.resource_id) {
                        Ok(Some(full)) => full,
                        Ok(None) => item,
                        Err(e) => {
                            // The summary still says the resource changed;
                            // the next inventory pass fills it in.
                            tracing::warn!(error = %e, key = %item.resource_key, "cannot complete an oversized notification");
                            item
                        }
                    }
                }
                _ => item,
            };
            records.push(Record::Observed(Box::new(item)));
        }
        let n = records.len();
        out.publish(Topic::Config, records)
            .map_err(|e| NotificationError::Unavailable(format!("cannot publish: {e}")))?;
        Ok(Handled::Published(n))
    }

    fn dead_letter(&self, out: &dyn RecordSink, reason: String) -> NotificationError {
        crate::publish_dead_letters(
            out,
            &[SourceError {
                source: "aws-config notification".into(),
                reason: reason.clone(),
            }],
        );
        NotificationError::Invalid(reason)
    }

    fn confirm(&self, envelope: &Value, topic: &str) -> Result<Handled, NotificationError> {
        let url = envelope
            .get("SubscribeURL")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                NotificationError::Invalid("SubscriptionConfirmation without SubscribeURL".into())
            })?;
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| NotificationError::Invalid(format!("SubscribeURL: {e}")))?;
        let host = parsed.host_str().unwrap_or_default();
        let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
        if !(parsed.scheme() == "https" || (loopback && parsed.scheme() == "http"))
            || !self
                .settings
                .subscribe_url_hosts
                .iter()
                .any(|p| host_matches(p, host))
        {
            return Err(NotificationError::Refused(format!(
                "SubscribeURL host {host} is not in aws_config.notifications.subscribe_url_hosts"
            )));
        }
        let resp = self
            .http
            .get(parsed)
            .send()
            .map_err(|e| NotificationError::Unavailable(format!("confirming {topic}: {e}")))?;
        if !resp.status().is_success() {
            return Err(NotificationError::Unavailable(format!(
                "confirming {topic}: SNS answered {}",
                resp.status()
            )));
        }
        tracing::info!(topic, "SNS subscription confirmed");
        Ok(Handled::Confirmed {
            topic: topic.to_string(),
        })
    }
}

/// `sns.*.amazonaws.com` matches `sns.eu-west-1.amazonaws.com`: `*` is one
/// DNS label, never a dot.
fn host_matches(pattern: &str, host: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let h: Vec<&str> = host.split('.').collect();
    p.len() == h.len()
        && p.iter()
            .zip(&h)
            .all(|(p, h)| *p == "*" || p.eq_ignore_ascii_case(h))
}

/// `*` matches any run of characters (ARNs have no other wildcard).
fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(p);
        }
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_hosts_match_one_label() {
        assert!(host_matches(
            "sns.*.amazonaws.com",
            "sns.eu-west-1.amazonaws.com"
        ));
        assert!(!host_matches(
            "sns.*.amazonaws.com",
            "sns.evil.example.amazonaws.com"
        ));
        assert!(!host_matches(
            "sns.*.amazonaws.com",
            "sns.x.amazonaws.com.evil.io"
        ));
        assert!(host_matches("127.0.0.1", "127.0.0.1"));
    }

    #[test]
    fn topic_patterns() {
        let p = "arn:aws:sns:*:123456789012:*";
        assert!(glob_matches(
            p,
            "arn:aws:sns:us-east-2:123456789012:config-topic"
        ));
        assert!(!glob_matches(
            p,
            "arn:aws:sns:us-east-2:999999999999:config-topic"
        ));
        assert!(glob_matches(
            "arn:aws:sns:eu-west-1:1:t",
            "arn:aws:sns:eu-west-1:1:t"
        ));
        assert!(!glob_matches(
            "arn:aws:sns:eu-west-1:1:t",
            "arn:aws:sns:eu-west-1:1:tt"
        ));
    }
}
