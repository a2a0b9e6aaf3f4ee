//! OpenSLO v1 (`apiVersion: openslo/v1`): `SLO`, `SLI`, `Service`,
//! `AlertPolicy` and `AlertCondition` objects, in any files of one load,
//! with `indicatorRef`, `alertPolicyRef` and `conditionRef` resolved by
//! name once every document is read.
//!
//! What driftline evaluates: a `ratioMetric` (good/total or bad/total)
//! whose metric sources are Prometheus queries, `budgetingMethod:
//! Occurrences`, one rolling `timeWindow`. Timeslices and calendar windows
//! are refused with the reason. A query either carries `{{.window}}`
//! (Sloth's convention) or is a plain selector: counters become
//! `sum(rate(q[window]))`, other metrics `sum(sum_over_time(q[window]))`.
//! A `burnrate` alert condition alerts when both its `lookbackWindow` and
//! a twelfth of it (the SRE workbook's short window) burn above its
//! threshold; a condition's `severity` is `page` (also `critical`) or
//! `ticket` (also `warning`).

use std::collections::BTreeMap;

mod docs;

pub(in crate::slo::spec) use docs::Doc;
use docs::*;

use super::{Alert, Alerting, BurnPair, Severity, Sli, Slo, WINDOW_VAR};
use crate::slo::promql::Query;

/// A problem: the path in the document, and why.
pub(super) type Problem = (String, String);

/// One object of a load, as written, with where it came from.
pub(super) struct Object {
    pub file: String,
    pub doc: String,
    kind: String,
    name: String,
    spec: serde_norway::Value,
}

impl Object {
    pub(super) fn name(&self) -> &str {
        &self.name
    }
}

impl Doc {
    pub(super) fn into_object(self, file: &str, doc: &str) -> Result<Object, Problem> {
        if self.api_version != "openslo/v1" {
            return Err((
                "apiVersion".into(),
                format!("{:?}: driftline reads openslo/v1", self.api_version),
            ));
        }
        if !matches!(
            self.kind.as_str(),
            "SLO"
                | "SLI"
                | "Service"
                | "AlertPolicy"
                | "AlertCondition"
                | "AlertNotificationTarget"
                | "DataSource"
        ) {
            return Err((
                "kind".into(),
                format!("{:?} is not an OpenSLO v1 kind", self.kind),
            ));
        }
        if self.metadata.name.is_empty() {
            return Err(("metadata.name".into(), "is required".into()));
        }
        let _ = (
            &self.metadata.display_name,
            &self.metadata.labels,
            &self.metadata.annotations,
        );
        Ok(Object {
            file: file.into(),
            doc: doc.into(),
            kind: self.kind,
            name: self.metadata.name,
            spec: self.spec,
        })
    }
}

fn typed<T: serde::de::DeserializeOwned>(at: &str, v: &serde_norway::Value) -> Result<T, Problem> {
    serde_norway::from_value(v.clone()).map_err(|e| {
        let msg = e.to_string();
        match msg.split_once(": ") {
            Some((p, r)) if !p.contains(' ') => (format!("{at}.{p}"), r.to_string()),
            _ => (at.to_string(), msg),
        }
    })
}

fn duration_ms(at: &str, text: &str) -> Result<i64, Problem> {
    let d = driftline_pipeline::time::parse_duration(text).map_err(|e| (at.to_string(), e))?;
    if d.is_zero() {
        return Err((at.into(), "must be longer than zero".into()));
    }
    Ok(d.as_millis() as i64)
}

/// A metric's query, windowed.
fn query(at: &str, m: &MetricRef, counter: bool) -> Result<String, Problem> {
    let src = &m.metric_source;
    if src.metric_source_ref.is_some() && src.source_type.is_none() {
        return Err((
            format!("{at}.metricSource.metricSourceRef"),
            "data sources by reference are not supported; give type: Prometheus".into(),
        ));
    }
    let kind = src.source_type.as_deref().unwrap_or("");
    if !kind.eq_ignore_ascii_case("prometheus") {
        return Err((
            format!("{at}.metricSource.type"),
            format!("{kind:?}: driftline evaluates Prometheus metric sources"),
        ));
    }
    let Some(q) = src.spec.get("query") else {
        return Err((
            format!("{at}.metricSource.spec.query"),
            "is required".into(),
        ));
    };
    if let Some(extra) = src.spec.keys().find(|k| *k != "query") {
        return Err((
            format!("{at}.metricSource.spec.{extra}"),
            "unknown field".into(),
        ));
    }
    let windowed = if q.contains(WINDOW_VAR) {
        q.clone()
    } else {
        let parsed = promql_parser::parser::parse(q)
            .map_err(|e| (format!("{at}.metricSource.spec.query"), e))?;
        if !matches!(parsed, promql_parser::parser::Expr::VectorSelector(_)) {
            return Err((
                format!("{at}.metricSource.spec.query"),
                format!(
                    "use {WINDOW_VAR} in the query, or give a plain selector driftline can window"
                ),
            ));
        }
        if counter {
            format!("sum(rate({q}[{WINDOW_VAR}]))")
        } else {
            format!("sum(sum_over_time({q}[{WINDOW_VAR}]))")
        }
    };
    Query::parse(&windowed.replace(WINDOW_VAR, "5m")).map_err(|e| {
        (
            format!("{at}.metricSource.spec.query"),
            format!("not a query driftline can evaluate: {e}"),
        )
    })?;
    Ok(windowed)
}

fn sli(at: &str, spec: &serde_norway::Value) -> Result<Sli, Problem> {
    let s: SliSpec = typed(at, spec)?;
    let _ = s.description;
    if s.threshold_metric.is_some() {
        return Err((
            format!("{at}.thresholdMetric"),
            "threshold metrics are not supported; use ratioMetric".into(),
        ));
    }
    let Some(r) = s.ratio_metric else {
        return Err((format!("{at}.ratioMetric"), "is required".into()));
    };
    if r.raw.is_some() || r.raw_type.is_some() {
        return Err((
            format!("{at}.ratioMetric.raw"),
            "raw ratios are not supported; give good or bad, and total".into(),
        ));
    }
    let at = format!("{at}.ratioMetric");
    let Some(total) = &r.total else {
        return Err((format!("{at}.total"), "is required".into()));
    };
    let total = query(&format!("{at}.total"), total, r.counter)?;
    match (&r.good, &r.bad) {
        (Some(_), Some(_)) => Err((at, "give good or bad, not both".into())),
        (None, None) => Err((at, "needs good or bad".into())),
        (None, Some(bad)) => Ok(Sli::Events {
            error: query(&format!("{at}.bad"), bad, r.counter)?,
            total,
        }),
        (Some(good), None) => {
            let good = query(&format!("{at}.good"), good, r.counter)?;
            Ok(Sli::Good { good, total })
        }
    }
}

fn severity(at: &str, s: &str) -> Result<Severity, Problem> {
    match s.to_ascii_lowercase().as_str() {
        "page" | "critical" => Ok(Severity::Page),
        "ticket" | "warning" => Ok(Severity::Ticket),
        other => Err((
            at.into(),
            format!("{other:?}: expected page (critical) or ticket (warning)"),
        )),
    }
}

fn condition(at: &str, spec: &serde_norway::Value) -> Result<BurnPair, Problem> {
    let c: ConditionSpec = typed(at, spec)?;
    let _ = (&c.description, &c.condition.alert_after);
    if c.condition.kind != "burnrate" {
        return Err((
            format!("{at}.condition.kind"),
            format!(
                "{:?}: driftline evaluates burnrate conditions",
                c.condition.kind
            ),
        ));
    }
    if !matches!(c.condition.op.as_str(), "gt" | "gte") {
        return Err((
            format!("{at}.condition.op"),
            format!(
                "{:?}: a burn-rate alert fires above its threshold (gt)",
                c.condition.op
            ),
        ));
    }
    if c.condition.threshold.is_nan() || c.condition.threshold <= 0.0 {
        return Err((
            format!("{at}.condition.threshold"),
            "must be above zero".into(),
        ));
    }
    let long_ms = duration_ms(
        &format!("{at}.condition.lookbackWindow"),
        &c.condition.lookback_window,
    )?;
    Ok(BurnPair {
        severity: severity(&format!("{at}.severity"), &c.severity)?,
        short_ms: (long_ms / 12).max(60_000),
        long_ms,
        factor: c.condition.threshold,
    })
}

/// Resolves every OpenSLO object of a load into SLOs; each problem names
/// its file and path.
pub(super) fn resolve(objects: &[Object]) -> Vec<Result<Slo, (String, String, String)>> {
    let find = |kind: &str, name: &str| objects.iter().find(|o| o.kind == kind && o.name == name);
    let mut out = Vec::new();
    for o in objects.iter().filter(|o| o.kind == "SLO") {
        let fail = |(path, reason): Problem| (o.file.clone(), format!("{}{path}", o.doc), reason);
        out.push(slo(o, &find).map_err(fail));
    }
    // Services, SLIs, policies and conditions are read even when no SLO
    // uses them, so a broken one is reported.
    for o in objects {
        let checked = match o.kind.as_str() {
            "SLI" => sli("spec", &o.spec).map(drop),
            "AlertCondition" => condition("spec", &o.spec).map(drop),
            "AlertPolicy" => typed::<PolicySpec>("spec", &o.spec).map(drop),
            _ => Ok(()),
        };
        if let Err((path, reason)) = checked {
            out.push(Err((o.file.clone(), format!("{}{path}", o.doc), reason)));
        }
    }
    out
}

/// An object given by name (`{field}: name`) or written inline: its spec.
fn referred<'a>(
    find: &dyn Fn(&str, &str) -> Option<&'a Object>,
    kind: &str,
    at: &str,
    field: &str,
    by_name: &Option<String>,
    inline: &Option<serde_norway::Value>,
) -> Result<serde_norway::Value, Problem> {
    match (by_name, inline) {
        (Some(name), None) => find(kind, name)
            .map(|o| o.spec.clone())
            .ok_or_else(|| (format!("{at}.{field}"), format!("no {kind} named {name:?}"))),
        (None, Some(spec)) => Ok(spec.clone()),
        _ => Err((at.to_string(), format!("give {field} or an inline {kind}"))),
    }
}

fn slo<'a>(o: &Object, find: &dyn Fn(&str, &str) -> Option<&'a Object>) -> Result<Slo, Problem> {
    let s: SloSpec = typed("spec", &o.spec)?;
    if s.budgeting_method != "Occurrences" {
        return Err((
            "spec.budgetingMethod".into(),
            format!(
                "{:?} is not supported: driftline budgets Occurrences (events), not time slices",
                s.budgeting_method
            ),
        ));
    }
    let [window] = s.time_window.as_slice() else {
        return Err((
            "spec.timeWindow".into(),
            "give exactly one time window".into(),
        ));
    };
    if !window.is_rolling || window.calendar.is_some() {
        return Err((
            "spec.timeWindow[0]".into(),
            "calendar windows are not supported; use a rolling window (isRolling: true)".into(),
        ));
    }
    let period_ms = duration_ms("spec.timeWindow[0].duration", &window.duration)?;
    let [objective] = s.objectives.as_slice() else {
        return Err((
            "spec.objectives".into(),
            "give exactly one objective".into(),
        ));
    };
    if objective.time_slice_target.is_some() || objective.time_slice_window.is_some() {
        return Err((
            "spec.objectives[0].timeSliceTarget".into(),
            "time slices are not supported".into(),
        ));
    }
    let target = match (objective.target, objective.target_percent) {
        (Some(t), None) => t * 100.0,
        (None, Some(p)) => p,
        _ => {
            return Err((
                "spec.objectives[0].target".into(),
                "give target (0-1) or targetPercent".into(),
            ));
        }
    };
    if !(target > 0.0 && target <= 100.0) {
        return Err((
            "spec.objectives[0].target".into(),
            format!("{target}% is not in (0, 100]"),
        ));
    }
    let _ = &objective.display_name;
    // The indicator: on the objective, else on the SLO; inline or by name.
    let (inline, by_name, at) =
        if objective.indicator.is_some() || objective.indicator_ref.is_some() {
            (
                &objective.indicator,
                &objective.indicator_ref,
                "spec.objectives[0]",
            )
        } else {
            (&s.indicator, &s.indicator_ref, "spec")
        };
    let sli = match (inline, by_name) {
        (Some(i), None) => {
            if i.kind.as_deref().is_some_and(|k| k != "SLI") {
                return Err((format!("{at}.indicator.kind"), "must be SLI".into()));
            }
            let _ = &i.metadata;
            sli(&format!("{at}.indicator.spec"), &i.spec)?
        }
        (None, Some(name)) => {
            let Some(found) = find("SLI", name) else {
                return Err((
                    format!("{at}.indicatorRef"),
                    format!("no SLI named {name:?} in the specs loaded"),
                ));
            };
            sli(&format!("{at}.indicatorRef({name})"), &found.spec)?
        }
        _ => {
            return Err((
                format!("{at}.indicator"),
                "give indicator or indicatorRef".into(),
            ));
        }
    };
    if find("Service", &s.service).is_none() && s.service.is_empty() {
        return Err(("spec.service".into(), "is required".into()));
    }
    let mut conditions = Vec::new();
    for (i, p) in s.alert_policies.iter().enumerate() {
        let at = format!("spec.alertPolicies[{i}]");
        let policy_spec = referred(
            find,
            "AlertPolicy",
            &at,
            "alertPolicyRef",
            &p.alert_policy_ref,
            &p.spec,
        )?;
        let _ = (&p.kind, &p.metadata);
        let policy: PolicySpec = typed(&at, &policy_spec)?;
        let _ = (
            &policy.description,
            policy.alert_when_no_data,
            policy.alert_when_resolved,
            policy.alert_when_breaching,
            &policy.notification_targets,
        );
        for (j, c) in policy.conditions.iter().enumerate() {
            let at = format!("{at}.conditions[{j}]");
            let spec = referred(
                find,
                "AlertCondition",
                &at,
                "conditionRef",
                &c.condition_ref,
                &c.spec,
            )?;
            let _ = (&c.kind, &c.metadata);
            conditions.push(condition(&at, &spec)?);
        }
    }
    let alert = || {
        Some(Alert {
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        })
    };
    let has =
        |sev| conditions.is_empty() || conditions.iter().any(|c: &BurnPair| c.severity == sev);
    Ok(Slo {
        id: format!("{}-{}", s.service, o.name),
        service: s.service.clone(),
        name: o.name.clone(),
        description: s.description,
        objective: target,
        sli,
        labels: BTreeMap::new(),
        alerting: Alerting {
            name: o.name.clone(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            page: if has(Severity::Page) { alert() } else { None },
            ticket: if has(Severity::Ticket) { alert() } else { None },
        },
        period_ms: Some(period_ms),
        conditions,
        group_by: Vec::new(),
        min_events: 0.0,
        resources: Vec::new(),
    })
}
