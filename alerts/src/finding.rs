//! Findings as alerts: the labels on-call routes and silences by, the
//! annotations a page shows, and the details (diff, remediation) it carries.

use std::collections::BTreeMap;

use driftline_pipeline::{Finding, FindingClass, FindingEvent, FindingEventKind};
use serde_json::json;

use crate::engine::AlertInput;
use crate::labels::Labels;

/// `drift` + `changed` → `DriftChanged`; a class that already names its
/// detector stands alone (`source` + `source_unavailable` →
/// `SourceUnavailable`).
pub fn alert_name(detector: &str, class: &str) -> String {
    let mut s = String::new();
    let named = class
        .strip_prefix(detector)
        .is_some_and(|rest| rest.starts_with('_'));
    let parts: &[&str] = if named { &[class] } else { &[detector, class] };
    for part in parts {
        for word in part.split(['_', '-']) {
            let mut cs = word.chars();
            if let Some(c) = cs.next() {
                s.extend(c.to_uppercase());
                s.push_str(cs.as_str());
            }
        }
    }
    s
}

/// Severity when no rule sets one: a declared resource that is gone is an
/// error; an edited or unmanaged one a warning.
fn default_severity(class: FindingClass) -> &'static str {
    match class {
        FindingClass::Missing | FindingClass::SourceUnavailable | FindingClass::SloBurn => "error",
        FindingClass::Changed | FindingClass::Unmanaged | FindingClass::Policy => "warning",
    }
}

/// The labels of a finding. `tag_labels` names the resource tags copied
/// in (matched without case; the label is the lower-case name).
pub fn labels_of(f: &Finding, tag_labels: &[String]) -> Labels {
    if let Some(burn) = &f.slo {
        return slo_labels(f, burn);
    }
    let mut l: Labels = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            l.insert(k.to_string(), v.to_string());
        }
    };
    // A rule's finding is named for its rule: `required_tags` → `PolicyRequiredTags`.
    let rule = f
        .source
        .as_deref()
        .and_then(|s| s.strip_prefix("rule:"))
        .filter(|_| f.class == FindingClass::Policy);
    match rule {
        Some(rule) => {
            put("alertname", &alert_name("policy", rule));
            put("rule", rule);
        }
        None => put("alertname", &alert_name(&f.detector, f.class.as_str())),
    }
    put("detector", &f.detector);
    put("class", f.class.as_str());
    put("severity", default_severity(f.class));
    put("resource_key", &f.resource_key);
    put("resource_type", &f.resource_type);
    put("resource_id", &f.resource_id);
    put("account", &f.account);
    put("region", &f.region);
    if let Some(a) = &f.address {
        put("address", a);
    }
    if let Some(t) = &f.tf_type {
        put("tf_type", t);
    }
    if f.class == FindingClass::SourceUnavailable {
        put("source", f.source.as_deref().unwrap_or_default());
        put("reason", f.reason.as_deref().unwrap_or_default());
    }
    for want in tag_labels {
        if let Some((_, v)) = f.tags.iter().find(|(k, _)| k.eq_ignore_ascii_case(want)) {
            put(&want.to_ascii_lowercase(), v);
        }
    }
    l
}

/// An SLO burn's labels: its spec's alert name and labels, the split's
/// labels, and `slo`, `service` and `severity` (page or ticket, which the
/// built-in inhibition pairs on `slo`).
fn slo_labels(f: &Finding, burn: &driftline_pipeline::SloBurn) -> Labels {
    let mut l: Labels = burn.labels.clone();
    l.insert("alertname".into(), burn.alert_name.clone());
    l.insert("detector".into(), f.detector.clone());
    l.insert("class".into(), f.class.as_str().into());
    l.insert("slo".into(), burn.id.clone());
    l.insert("service".into(), burn.service.clone());
    l.insert("severity".into(), burn.severity.clone());
    l.retain(|_, v| !v.is_empty());
    l
}

/// A finding event as an engine input.
pub fn input_of(e: &FindingEvent, at_ms: i64, tag_labels: &[String]) -> AlertInput {
    let f = &e.finding;
    let mut annotations = Labels::new();
    annotations.insert("summary".into(), f.summary.clone());
    if let Some(r) = f.remediation.first() {
        annotations.insert("remediation".into(), r.command.clone());
    }
    if let Some(s) = &f.source {
        annotations.insert("source".into(), s.clone());
    }
    if let Some(burn) = &f.slo {
        annotations.extend(burn.annotations.clone());
        for (w, b) in &burn.burn_rates {
            annotations.insert(format!("burn_rate_{w}"), format!("{b:.2}"));
        }
        if let Some(c) = burn.probable_cause.first() {
            annotations.insert(
                "probable_cause".into(),
                format!(
                    "{} ({}, {})",
                    c.summary,
                    c.address.as_deref().unwrap_or(&c.resource_key),
                    c.at
                ),
            );
        }
    }
    let details = match &f.slo {
        Some(burn) => json!({
            "slo": burn.id,
            "objective": burn.objective,
            "burn_rates": burn.burn_rates,
            "probable_cause": burn.probable_cause,
        }),
        None => json!({
            "diff": f.diffs,
            "remediation": f.remediation,
            "resource_key": f.resource_key,
            "address": f.address,
            "tags": f.tags,
        }),
    };
    AlertInput {
        fingerprint: f.fingerprint.clone(),
        labels: labels_of(f, tag_labels),
        annotations,
        details,
        firing: e.event != FindingEventKind::Resolved,
        at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(alert_name("drift", "changed"), "DriftChanged");
        assert_eq!(alert_name("slo_burn", "page"), "SloBurnPage");
        assert_eq!(
            alert_name("source", "source_unavailable"),
            "SourceUnavailable"
        );
    }

    #[test]
    fn an_slo_burn_is_labelled_for_routing_and_inhibition() {
        let f = Finding::slo_burn(
            "slo/shop-availability/page/".into(),
            "shop SLO availability burns".into(),
            driftline_pipeline::SloBurn {
                id: "shop-availability".into(),
                name: "availability".into(),
                service: "shop".into(),
                severity: "page".into(),
                alert_name: "ShopAvailability".into(),
                objective: 99.0,
                labels: BTreeMap::from([("route".into(), "/a".into())]),
                annotations: BTreeMap::from([("runbook".into(), "https://x".into())]),
                burn_rates: BTreeMap::from([("5m".into(), 40.0)]),
                probable_cause: vec![driftline_pipeline::ProbableCause {
                    at: "2026-12-03T10:00:00.000Z".into(),
                    event: "new".into(),
                    class: "changed".into(),
                    resource_key: "aws/1/eu-west-1/AWS::EC2::SecurityGroup/sg-1".into(),
                    resource_type: "AWS::EC2::SecurityGroup".into(),
                    resource_id: "sg-1".into(),
                    address: Some("aws_security_group.web".into()),
                    summary: "ingress changed".into(),
                    diffs: Vec::new(),
                    changes: Vec::new(),
                }],
            },
        );
        let ev = FindingEvent::new(FindingEventKind::New, 0, f);
        let input = input_of(&ev, 0, &[]);
        assert_eq!(input.labels["alertname"], "ShopAvailability");
        assert_eq!(input.labels["slo"], "shop-availability");
        assert_eq!(input.labels["severity"], "page");
        assert_eq!(input.labels["service"], "shop");
        assert_eq!(input.labels["route"], "/a");
        assert_eq!(input.annotations["burn_rate_5m"], "40.00");
        assert_eq!(input.annotations["runbook"], "https://x");
        assert_eq!(
            input.annotations["probable_cause"],
            "ingress changed (aws_security_group.web, 2026-12-03T10:00:00.000Z)"
        );
        assert_eq!(input.details["probable_cause"][0]["resource_id"], "sg-1");
        assert!(input.firing);
    }
}
