//! Sloth's `prometheus/v1` spec (and its Kubernetes form, the
//! `PrometheusServiceLevel` resource), read as Sloth reads it: unknown
//! fields refused, `{{.window}}` required in every SLI query, objectives
//! in (0, 100]. SLI and SLO plugins are named and refused: their code
//! lives in Sloth.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Alert, Alerting, Sli, Slo, WINDOW_VAR};
use crate::slo::promql::Query;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Spec {
    #[serde(default)]
    version: Option<String>,
    service: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    slo_plugins: Option<Plugins>,
    #[serde(default)]
    slos: Vec<SloDoc>,
}

/// `kind: PrometheusServiceLevel`: the same spec under `spec`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Resource {
    #[serde(rename = "apiVersion")]
    _api_version: String,
    #[serde(rename = "kind")]
    _kind: String,
    #[serde(default, rename = "metadata")]
    _metadata: Option<serde_norway::Value>,
    spec: Spec,
}

impl Resource {
    pub(super) fn spec(self) -> Spec {
        self.spec
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Plugins {
    #[serde(default, rename = "overridePrevious")]
    _override_previous: bool,
    #[serde(default)]
    chain: Vec<PluginRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginRef {
    id: String,
    #[serde(default, rename = "config")]
    _config: Option<serde_norway::Value>,
    #[serde(default, rename = "priority")]
    _priority: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SloDoc {
    name: String,
    #[serde(default)]
    description: String,
    objective: f64,
    #[serde(default)]
    plugins: Option<Plugins>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    sli: SliDoc,
    alerting: AlertingDoc,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SliDoc {
    #[serde(default)]
    raw: Option<RawDoc>,
    #[serde(default)]
    events: Option<EventsDoc>,
    #[serde(default)]
    plugin: Option<SliPluginDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDoc {
    error_ratio_query: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsDoc {
    error_query: String,
    total_query: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SliPluginDoc {
    id: String,
    #[serde(default, rename = "options")]
    _options: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertingDoc {
    #[serde(default)]
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    page_alert: AlertDoc,
    #[serde(default)]
    ticket_alert: AlertDoc,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AlertDoc {
    #[serde(default)]
    disable: bool,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Sloth's SLO names: what its recording rules can carry as a label.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A query with `{{.window}}`, checked by parsing it at a 5-minute window.
fn check_query(path: &str, text: &str) -> Result<(), (String, String)> {
    if !text.contains(WINDOW_VAR) {
        return Err((path.into(), format!("the query must use {WINDOW_VAR}")));
    }
    Query::parse(&text.replace(WINDOW_VAR, "5m"))
        .map(drop)
        .map_err(|e| {
            (
                path.into(),
                format!("not a query driftline can evaluate: {e}"),
            )
        })
}

fn refuse_plugins(path: &str, p: &Option<Plugins>) -> Result<(), (String, String)> {
    match p.as_ref().and_then(|p| p.chain.first()) {
        Some(first) => Err((
            format!("{path}.chain[0].id"),
            format!(
                "SLO plugin {:?} is not supported: Sloth plugins run inside Sloth",
                first.id
            ),
        )),
        None => Ok(()),
    }
}

impl Spec {
    /// The SLOs, checked; or the path of the first problem and why.
    pub(super) fn resolve(self, prefix: &str) -> Result<Vec<Slo>, (String, String)> {
        if let Some(v) = &self.version
            && v != "prometheus/v1"
        {
            return Err((
                format!("{prefix}version"),
                format!("{v:?} is not a Sloth spec version; expected \"prometheus/v1\""),
            ));
        }
        if !valid_name(&self.service) {
            return Err((
                format!("{prefix}service"),
                "must be a non-empty name of letters, digits, '-', '_' or '.'".into(),
            ));
        }
        refuse_plugins(&format!("{prefix}slo_plugins"), &self.slo_plugins)?;
        if self.slos.is_empty() {
            return Err((
                format!("{prefix}slos"),
                "a spec needs at least one SLO".into(),
            ));
        }
        let mut out = Vec::new();
        for (i, s) in self.slos.into_iter().enumerate() {
            let at = format!("{prefix}slos[{i}]");
            if !valid_name(&s.name) {
                return Err((
                    format!("{at}.name"),
                    "must be a non-empty name of letters, digits, '-', '_' or '.'".into(),
                ));
            }
            if out.iter().any(|o: &Slo| o.name == s.name) {
                return Err((format!("{at}.name"), format!("{:?} appears twice", s.name)));
            }
            if !(s.objective > 0.0 && s.objective <= 100.0) {
                return Err((
                    format!("{at}.objective"),
                    format!("{} is not a percentage in (0, 100]", s.objective),
                ));
            }
            refuse_plugins(&format!("{at}.plugins"), &s.plugins)?;
            let sli = match (s.sli.raw, s.sli.events, s.sli.plugin) {
                (_, _, Some(p)) => {
                    return Err((
                        format!("{at}.sli.plugin.id"),
                        format!(
                            "SLI plugin {:?} is not supported: Sloth plugins run inside Sloth",
                            p.id
                        ),
                    ));
                }
                (Some(r), None, None) => {
                    check_query(
                        &format!("{at}.sli.raw.error_ratio_query"),
                        &r.error_ratio_query,
                    )?;
                    Sli::Raw {
                        error_ratio: r.error_ratio_query,
                    }
                }
                (None, Some(e), None) => {
                    check_query(&format!("{at}.sli.events.error_query"), &e.error_query)?;
                    check_query(&format!("{at}.sli.events.total_query"), &e.total_query)?;
                    Sli::Events {
                        error: e.error_query,
                        total: e.total_query,
                    }
                }
                (Some(_), Some(_), None) => {
                    return Err((
                        format!("{at}.sli"),
                        "use one of raw and events, not both".into(),
                    ));
                }
                (None, None, None) => {
                    return Err((format!("{at}.sli"), "needs raw, events or plugin".into()));
                }
            };
            let a = s.alerting;
            let alert = |d: AlertDoc| {
                (!d.disable).then_some(Alert {
                    labels: d.labels,
                    annotations: d.annotations,
                })
            };
            let (page, ticket) = (alert(a.page_alert), alert(a.ticket_alert));
            if (page.is_some() || ticket.is_some()) && a.name.is_empty() {
                return Err((format!("{at}.alerting.name"), "is required".into()));
            }
            let mut labels = self.labels.clone();
            labels.extend(s.labels);
            out.push(Slo {
                id: format!("{}-{}", self.service, s.name),
                service: self.service.clone(),
                name: s.name,
                description: s.description,
                objective: s.objective,
                sli,
                labels,
                alerting: Alerting {
                    name: a.name,
                    labels: a.labels,
                    annotations: a.annotations,
                    page,
                    ticket,
                },
                period_ms: None,
                conditions: Vec::new(),
                group_by: Vec::new(),
                min_events: 0.0,
                resources: Vec::new(),
            });
        }
        Ok(out)
    }
}
