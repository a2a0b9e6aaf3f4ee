//! The `[alerts]` section of driftline.toml. Names follow Alertmanager's
//! configuration (route, receivers, inhibit_rules, group_wait, …) so an
//! existing Alertmanager config translates line by line.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::AlertError;
use crate::labels::{Matcher, duration};

/// PagerDuty's Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    pub route: RouteConfig,
    pub receivers: Vec<ReceiverConfig>,
    pub inhibit_rules: Vec<InhibitRule>,
    /// Per detector/class settings: `for`, severity, labels.
    pub rules: Vec<AlertRule>,
    pub flap: FlapConfig,
    /// Resource tags copied into alert labels (tag names compared without
    /// case; the label is the lower-case name).
    pub tag_labels: Vec<String>,
    /// How long a resolved alert is remembered, so a replay of old finding
    /// events does not page again.
    #[serde(with = "duration")]
    pub resolved_retention: Duration,
    /// Base URL of this driftline (links in pages).
    pub external_url: String,
    /// Dashboard linked from every page.
    pub dashboard_url: Option<String>,
    pub remediation: Vec<HookConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            route: RouteConfig::default(),
            receivers: Vec::new(),
            inhibit_rules: default_inhibit_rules(),
            rules: Vec::new(),
            flap: FlapConfig::default(),
            tag_labels: ["owner", "team", "service", "env"]
                .map(String::from)
                .to_vec(),
            resolved_retention: Duration::from_secs(7 * 86_400),
            external_url: "http://127.0.0.1:9464".into(),
            dashboard_url: None,
            remediation: Vec::new(),
        }
    }
}

/// A missing resource inhibits the other findings on it; an SLO page
/// inhibits the ticket for the same SLO.
fn default_inhibit_rules() -> Vec<InhibitRule> {
    let m = |s: &str| Matcher::parse(s).expect("valid built-in matcher");
    vec![
        InhibitRule {
            source_matchers: vec![m(r#"class="missing""#)],
            target_matchers: vec![m(r#"class=~"changed|unmanaged""#)],
            equal: vec!["resource_key".into()],
        },
        InhibitRule {
            source_matchers: vec![m(r#"severity="page""#)],
            target_matchers: vec![m(r#"severity="ticket""#)],
            equal: vec!["slo".into()],
        },
    ]
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub receiver: Option<String>,
    /// Labels to group by; `["..."]` groups by every label.
    pub group_by: Option<Vec<String>>,
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    #[serde(default, with = "duration::option")]
    pub group_wait: Option<Duration>,
    #[serde(default, with = "duration::option")]
    pub group_interval: Option<Duration>,
    #[serde(default, with = "duration::option")]
    pub repeat_interval: Option<Duration>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

impl Default for RouteConfig {
    fn default() -> Self {
        Self {
            receiver: Some("default".into()),
            group_by: Some(vec!["alertname".into()]),
            matchers: Vec::new(),
            continue_: false,
            group_wait: None,
            group_interval: None,
            repeat_interval: None,
            routes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    pub name: String,
    #[serde(default)]
    pub pagerduty_configs: Vec<PagerDutyConfig>,
    #[serde(default)]
    pub webhook_configs: Vec<WebhookConfig>,
    #[serde(default)]
    pub slack_configs: Vec<SlackConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// Name of the environment variable holding the routing key. The key
    /// itself never appears in the config file, logs, the outbox or errors.
    pub routing_key_env: String,
    #[serde(default = "pagerduty_url")]
    pub url: String,
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default = "client")]
    pub client: String,
}

fn pagerduty_url() -> String {
    PAGERDUTY_EVENTS_URL.into()
}
fn yes() -> bool {
    true
}
fn client() -> String {
    "driftline".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// At most this many alerts per message (0 = all), as Alertmanager.
    #[serde(default)]
    pub max_alerts: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Environment variable holding the incoming-webhook URL (a secret).
    pub url_env: String,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub send_resolved: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    pub source_matchers: Vec<Matcher>,
    pub target_matchers: Vec<Matcher>,
    #[serde(default)]
    pub equal: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Which alerts this rule applies to (e.g. `detector="drift"`, `class="changed"`).
    pub matchers: Vec<Matcher>,
    /// How long a finding must stay open before it fires.
    #[serde(default, rename = "for", with = "duration")]
    pub for_: Duration,
    /// Overrides the severity label (critical, error, warning, info; or page/ticket).
    #[serde(default)]
    pub severity: Option<String>,
}

/// An alert that flips between firing and resolved more than
/// `max_transitions` times within `window` is flapping: it stays firing,
/// and its resolve is sent only once it has stayed clear for `window`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlapConfig {
    #[serde(with = "duration")]
    pub window: Duration,
    pub max_transitions: usize,
}

impl Default for FlapConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(600),
            max_transitions: 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HookKind {
    Command,
    Webhook,
    Terraform,
}

/// A remediation hook: proposed (dry run) when a matching alert fires, run
/// for real after approval — or at once when `allow` is set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    pub name: String,
    pub matchers: Vec<Matcher>,
    pub kind: HookKind,
    /// `command`: argv; `{fingerprint}`, `{resource_key}`, `{address}`,
    /// `{resource_id}` are filled in from the alert.
    #[serde(default)]
    pub command: Vec<String>,
    /// `webhook`: where to POST the proposal.
    #[serde(default)]
    pub url: Option<String>,
    /// `terraform`: the working directory with the configuration.
    #[serde(default)]
    pub workdir: Option<String>,
    /// `terraform`: the binary to run.
    #[serde(default = "terraform")]
    pub terraform: String,
    /// Run without approval.
    #[serde(default)]
    pub allow: bool,
    #[serde(default = "hook_timeout", with = "duration")]
    pub timeout: Duration,
}

fn terraform() -> String {
    "terraform".into()
}
fn hook_timeout() -> Duration {
    Duration::from_secs(600)
}

impl AlertsConfig {
    /// The quick-start receiver (`run --pagerduty-routing-key-env`): every
    /// alert pages PagerDuty, with the routing key read from `var`. Added to
    /// the root route's receiver, or as the root receiver when there is none.
    pub fn page_pagerduty(&mut self, var: String, url: String) {
        let pd = PagerDutyConfig {
            routing_key_env: var,
            url,
            send_resolved: true,
            client: "driftline".into(),
        };
        let root = self
            .route
            .receiver
            .clone()
            .unwrap_or_else(|| "default".into());
        match self.receivers.iter_mut().find(|r| r.name == root) {
            Some(r) => r.pagerduty_configs.push(pd),
            None => self.receivers.push(ReceiverConfig {
                name: root,
                pagerduty_configs: vec![pd],
                ..Default::default()
            }),
        }
    }

    /// Checks what serde cannot: names that must exist, URLs, secrets present.
    pub fn validate(&self) -> Result<(), AlertError> {
        let bad = |key: &str, reason: String| AlertError::Config {
            key: key.to_string(),
            reason,
        };
        let mut names = std::collections::HashSet::new();
        for (i, r) in self.receivers.iter().enumerate() {
            if !names.insert(r.name.as_str()) {
                return Err(bad(
                    &format!("alerts.receivers[{i}].name"),
                    format!("receiver {:?} is defined twice", r.name),
                ));
            }
            for (j, p) in r.pagerduty_configs.iter().enumerate() {
                let key = format!("alerts.receivers[{i}].pagerduty_configs[{j}]");
                if !(p.url.starts_with("http://") || p.url.starts_with("https://")) {
                    return Err(bad(&format!("{key}.url"), "must be an http(s) URL".into()));
                }
                if p.routing_key_env.is_empty() {
                    return Err(bad(
                        &format!("{key}.routing_key_env"),
                        "name the environment variable that holds the routing key".into(),
                    ));
                }
            }
            for (j, w) in r.webhook_configs.iter().enumerate() {
                if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                    return Err(bad(
                        &format!("alerts.receivers[{i}].webhook_configs[{j}].url"),
                        "must be an http(s) URL".into(),
                    ));
                }
            }
        }
        fn walk(
            r: &RouteConfig,
            path: &str,
            names: &std::collections::HashSet<&str>,
        ) -> Result<(), AlertError> {
            if let Some(rcv) = &r.receiver
                && !names.contains(rcv.as_str())
                && rcv != "default"
            {
                return Err(AlertError::Config {
                    key: format!("{path}.receiver"),
                    reason: format!("no receiver named {rcv:?} in alerts.receivers"),
                });
            }
            for (i, c) in r.routes.iter().enumerate() {
                walk(c, &format!("{path}.routes[{i}]"), names)?;
            }
            Ok(())
        }
        walk(&self.route, "alerts.route", &names)?;
        for (i, h) in self.remediation.iter().enumerate() {
            let key = format!("alerts.remediation[{i}]");
            match h.kind {
                HookKind::Command if h.command.is_empty() => {
                    return Err(bad(
                        &format!("{key}.command"),
                        "a command hook needs argv".into(),
                    ));
                }
                HookKind::Webhook if h.url.is_none() => {
                    return Err(bad(
                        &format!("{key}.url"),
                        "a webhook hook needs a url".into(),
                    ));
                }
                HookKind::Terraform if h.workdir.is_none() => {
                    return Err(bad(
                        &format!("{key}.workdir"),
                        "a terraform hook needs the working directory".into(),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}
