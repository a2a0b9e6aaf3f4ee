//! PagerDuty Events API v2, as PagerDuty documents it: one `trigger` per
//! alert when it starts firing, one `acknowledge` when someone silences it
//! after it paged, and one `resolve` when it recovers, all
//! with `dedup_key` = the alert fingerprint (≤ 255 characters);
//! `payload.summary` ≤ 1024 characters; severity one of critical, error,
//! warning, info; the whole event under 512 KB. The routing key is added
//! at send time only.

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Delivery, Links, Message, Notifier, alert_url, cut, post_json, rfc3339, to_message};
use crate::engine::{Notification, NotifiedAlert};
use crate::labels::LabelSet;

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
fn severity(labels: &LabelSet) -> &'static str {
    match labels.get("severity") {
        Some("critical") | Some("page") => "critical",
        Some("error") => "error",
        Some("info") => "info",
        _ => "warning",
    }
}

/// The fingerprint's first 255 characters.
fn dedup_key(fp: &str) -> &str {
    if fp.len() <= DEDUP_MAX {
        // No more characters than bytes.
        return fp;
    }
    match fp.char_indices().nth(DEDUP_MAX) {
        Some((end, _)) => &fp[..end],
        None => fp,
    }
}

/// An event as PagerDuty's Events API v2 documents it, borrowed from the
/// alert and serialised straight to text: a million triggers are a million
/// strings, not a million JSON trees.
#[derive(Serialize)]
struct Event<'a> {
    event_action: &'static str,
    dedup_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Payload<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<Link<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_url: Option<&'a str>,
}

#[derive(Serialize)]
struct Payload<'a> {
    summary: Cow<'a, str>,
    source: &'a str,
    severity: &'static str,
    timestamp: String,
    component: &'a str,
    group: Cow<'a, str>,
    class: &'a str,
    custom_details: Details<'a>,
}

#[derive(Serialize)]
struct Link<'a> {
    href: Cow<'a, str>,
    text: &'static str,
}

/// `custom_details`: labels, annotations, group key and firing time, then
/// the alert's own details (diff, cause, remediation), which win a clash.
struct Details<'a> {
    alert: &'a NotifiedAlert,
    group_key: &'a str,
    /// The diff made the event too big: say so instead of sending it.
    diff_elided: bool,
}

impl Serialize for Details<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let content = &self.alert.content;
        let extra = match &content.details {
            Value::Object(m) => Some(m),
            _ => None,
        };
        let own = |k: &str| extra.and_then(|m| m.get(k)).is_some_and(|v| !v.is_null());
        let mut map = s.serialize_map(None)?;
        if !own("labels") {
            map.serialize_entry("labels", &content.labels)?;
        }
        if !own("annotations") {
            map.serialize_entry("annotations", &content.annotations)?;
        }
        if !own("group_key") {
            map.serialize_entry("group_key", self.group_key)?;
        }
        if !own("firing_since") {
            map.serialize_entry("firing_since", &rfc3339(self.alert.starts_at_ms))?;
        }
        for (k, v) in extra.into_iter().flatten().filter(|(_, v)| !v.is_null()) {
            if k == "diff" && self.diff_elided {
                map.serialize_entry(
                    k,
                    "diff too large for PagerDuty; see the alert in driftline",
                )?;
            } else {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

/// The labels a trigger event reads, found in one pass over the set (""
/// when absent).
#[derive(Default)]
struct Named<'a> {
    alertname: &'a str,
    resource_key: &'a str,
    resource_type: &'a str,
    instance: &'a str,
    job: &'a str,
    service: &'a str,
    team: &'a str,
    account: &'a str,
    region: &'a str,
}

impl<'a> Named<'a> {
    fn of(labels: &'a LabelSet) -> Self {
        let mut l = Self::default();
        for (name, value) in labels.iter() {
            let slot = match name {
                "alertname" => &mut l.alertname,
                "resource_key" => &mut l.resource_key,
                "resource_type" => &mut l.resource_type,
                "instance" => &mut l.instance,
                "job" => &mut l.job,
                "service" => &mut l.service,
                "team" => &mut l.team,
                "account" => &mut l.account,
                "region" => &mut l.region,
                _ => continue,
            };
            *slot = value;
        }
        l
    }
}

/// The trigger event for an alert (without `routing_key`).
pub fn trigger_event(a: &NotifiedAlert, n: &Notification, links: &Links, client: &str) -> Message {
    let labels = a.labels();
    let l = Named::of(labels);
    let summary = match a.content.annotations.get("summary") {
        Some(s) => s,
        None => l.alertname,
    };
    let source = [l.resource_key, l.instance, l.job]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or("driftline");
    let group: Cow<str> = match [l.service, l.team].into_iter().find(|s| !s.is_empty()) {
        Some(g) => g.into(),
        None if !l.account.is_empty() || !l.region.is_empty() => {
            format!("{}/{}", l.account, l.region).into()
        }
        None => "driftline".into(),
    };
    let mut links_out = vec![Link {
        href: alert_url(links, a.fingerprint()).into(),
        text: "Alert in driftline",
    }];
    if let Some(d) = &links.dashboard_url {
        links_out.push(Link {
            href: d.as_str().into(),
            text: "Dashboard",
        });
    }
    let mut event = Event {
        event_action: "trigger",
        dedup_key: dedup_key(a.fingerprint()),
        payload: Some(Payload {
            summary: if summary.chars().count() > SUMMARY_MAX {
                cut(summary, SUMMARY_MAX).into()
            } else {
                summary.into()
            },
            source,
            severity: severity(labels),
            timestamp: rfc3339(a.starts_at_ms),
            component: l.resource_type,
            group,
            class: l.alertname,
            custom_details: Details {
                alert: a,
                group_key: &n.group_key,
                diff_elided: false,
            },
        }),
        links: links_out,
        client: Some(client),
        client_url: Some(&links.external_url),
    };
    let text = to_message(&event);
    // Stay under PagerDuty's 512 KB: a huge diff is the only thing that grows.
    if text.get().len() <= EVENT_MAX_BYTES - 1024 {
        return text;
    }
    if let Some(p) = &mut event.payload {
        p.custom_details.diff_elided = true;
    }
    to_message(&event)
}

/// A `resolve` or `acknowledge` event: the action and the dedup key.
fn follow_up(action: &'static str, fp: &str) -> Message {
    to_message(&Event {
        event_action: action,
        dedup_key: dedup_key(fp),
        payload: None,
        links: Vec::new(),
        client: None,
        client_url: None,
    })
}

/// `message` with the routing key as its first member: the only place the
/// key is ever written, at send time.
fn with_routing_key(message: &RawValue, routing_key: &str) -> Option<String> {
    let rest = message.get().trim_start().strip_prefix('{')?;
    let key = serde_json::to_string(routing_key).ok()?;
    let comma = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    Some(format!("{{\"routing_key\":{key}{comma}{rest}"))
}

impl Notifier for PagerDuty {
    fn render(&self, n: &Notification, links: &Links) -> Vec<Message> {
        let alert = |i: &u32| &n.alerts[*i as usize];
        let mut out = Vec::with_capacity(n.trigger.len() + n.resolve.len() + n.acknowledge.len());
        out.extend(
            n.resolve
                .iter()
                .map(|i| follow_up("resolve", alert(i).fingerprint())),
        );
        out.extend(
            n.acknowledge
                .iter()
                .map(|i| follow_up("acknowledge", alert(i).fingerprint())),
        );
        out.extend(
            n.trigger
                .iter()
                .map(|i| trigger_event(alert(i), n, links, &self.client_name)),
        );
        out
    }

    fn deliver(&self, message: &RawValue) -> Delivery {
        let Some(body) = with_routing_key(message, &self.routing_key) else {
            return Delivery::Reject {
                reason: "not a JSON object: no PagerDuty event".into(),
            };
        };
        // PagerDuty answers 202; anything 2xx is accepted.
        post_json(&self.http, &self.url, body, Some(&self.routing_key))
    }
}
