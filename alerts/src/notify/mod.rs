//! The `Notifier` door: how one kind of receiver integration turns a
//! notification into messages (`render`, pure, so messages can wait in the
//! durable outbox) and how it sends one (`deliver`). Secrets (routing keys,
//! Slack URLs) live only inside a notifier, never in a message.

mod pagerduty;
mod slack;
mod webhook;

use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::engine::Notification;

pub use pagerduty::PagerDuty;
pub use slack::Slack;
pub use webhook::{Webhook, message as webhook_message};

/// Links every message carries.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// Base URL of this driftline (`/api/alerts/{fingerprint}`).
    pub external_url: String,
    pub dashboard_url: Option<String>,
}

/// What happened to one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Delivered,
    /// Try again later (429, 5xx, network): after `after` when the peer said so.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// The peer refused the message for good (400): dead-letter it.
    Reject {
        reason: String,
    },
}

/// A rendered message: JSON text, written once when the notification is
/// rendered, kept as is in the outbox and sent as is.
pub type Message = Box<RawValue>;

pub trait Notifier: Send + Sync {
    /// The messages for one notification, in the order they must arrive.
    fn render(&self, n: &Notification, links: &Links) -> Vec<Message>;
    /// Sends one rendered message.
    fn deliver(&self, message: &RawValue) -> Delivery;
}

/// Serialises a message. Our message types hold strings, numbers and JSON
/// values only, which always serialise.
fn to_message(m: &impl Serialize) -> Message {
    serde_json::value::to_raw_value(m).expect("a message serialises")
}

/// The `dedup_key` of a PagerDuty event (for dead letters and errors).
pub fn dedup_key_of(message: &RawValue) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Keyed {
        dedup_key: Option<String>,
    }
    serde_json::from_str::<Keyed>(message.get()).ok()?.dedup_key
}

/// `2024-05-01T12:00:00.000Z`.
fn rfc3339(ms: i64) -> String {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(i64, String)>> = const { std::cell::RefCell::new(None) };
    }
    // The alerts of one flush mostly share their times: each is formatted once.
    LAST.with_borrow_mut(|last| match last {
        Some((at, text)) if *at == ms => text.clone(),
        _ => last
            .insert((ms, driftline_pipeline::format_epoch_ms(ms)))
            .1
            .clone(),
    })
}

fn alert_url(links: &Links, fingerprint: &str) -> String {
    let base = links.external_url.trim_end_matches('/');
    let mut url = String::with_capacity(base.len() + 12 + fingerprint.len());
    url.push_str(base);
    url.push_str("/api/alerts/");
    url.push_str(fingerprint);
    url
}

/// POSTs JSON and classifies the answer as PagerDuty documents it (and as
/// any webhook receiver reasonably means it): 2xx delivered; 429, 408 and
/// 5xx retried (honouring `Retry-After`); other answers rejected with the
/// peer's own words. `secret` is scrubbed from anything reported.
fn post_json(
    client: &reqwest::blocking::Client,
    url: &str,
    body: String,
    secret: Option<&str>,
) -> Delivery {
    let scrub = |s: String| match secret {
        Some(k) if !k.is_empty() => s.replace(k, "<redacted>"),
        _ => s,
    };
    let resp = match client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
    {
        Ok(r) => r,
        Err(e) => {
            return Delivery::Retry {
                after: None,
                reason: scrub(format!("{}: {}", redact_url(url), without_url(&e))),
            };
        }
    };
    let status = resp.status();
    if status.is_success() {
        return Delivery::Delivered;
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let text = resp.text().unwrap_or_default();
    let text: String = text.chars().take(2000).collect();
    let reason = scrub(format!("HTTP {}: {}", status.as_u16(), text.trim()));
    if status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error() {
        Delivery::Retry {
            after: retry_after,
            reason,
        }
    } else {
        Delivery::Reject { reason }
    }
}

/// `Retry-After`: seconds or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(s) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let when = httpdate::parse_http_date(v.trim()).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A URL with its path cut (Slack webhook URLs carry the secret in the path).
fn redact_url(url: &str) -> String {
    match url.find("://").map(|i| i + 3) {
        Some(start) => match url[start..].find('/') {
            Some(p) => format!("{}/…", &url[..start + p]),
            None => url.to_string(),
        },
        None => "<url>".into(),
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), &redact_url(u.as_str()));
    }
    s
}

/// Cuts text to at most `max` characters, marking the cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// The shared HTTP client (one for the whole process's outbound calls).
pub use driftline_pipeline::http_client;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_urls() {
        for ms in [0, 0, 1_500, 0, 1_500] {
            assert_eq!(rfc3339(ms), driftline_pipeline::format_epoch_ms(ms));
        }
        let links = Links {
            external_url: "http://d:9464/".into(),
            dashboard_url: None,
        };
        assert_eq!(alert_url(&links, "ab12"), "http://d:9464/api/alerts/ab12");
    }

    #[test]
    fn retry_after_and_redaction() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }
}
