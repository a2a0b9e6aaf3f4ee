//! Renders a drift report: a table for people, JSON for scripts, SARIF
//! 2.1.0 for code-scanning UIs.

use std::fmt::Display;
use std::io::Write;

use driftline_pipeline::{Finding, FindingClass, SourceSide, text};
use serde::Serialize;
use serde_json::{Value, json};

use super::DriftReport;

fn short(v: &Value) -> String {
    let s = match v {
        Value::Null => "(absent)".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(59).collect::<String>())
    } else {
        s
    }
}

fn name(f: &Finding) -> String {
    f.address
        .clone()
        .unwrap_or_else(|| format!("{} {}", f.resource_type, f.resource_id))
}

/// For people: findings, what could not be read, IaC coverage, the summary
/// and the first remediation of each finding.
pub fn write_table(out: &mut impl Write, r: &DriftReport) -> std::io::Result<()> {
    if r.findings.is_empty() && r.unobserved.is_empty() {
        writeln!(out, "No drift.")?;
    } else if r.findings.is_empty() {
        writeln!(out, "No drift in what could be read.")?;
    } else {
        let mut rows = Vec::new();
        for f in &r.findings {
            match f.class {
                FindingClass::Changed => {
                    for (i, d) in f.diffs.iter().enumerate() {
                        rows.push(vec![
                            if i == 0 {
                                "changed".into()
                            } else {
                                String::new()
                            },
                            if i == 0 { name(f) } else { String::new() },
                            format!(
                                "{}: {} → {}",
                                d.path,
                                short(&d.declared),
                                short(&d.observed)
                            ),
                        ]);
                    }
                }
                FindingClass::Missing => rows.push(vec![
                    "missing".into(),
                    name(f),
                    format!("{} not found in the cloud", f.resource_id),
                ]),
                FindingClass::Unmanaged => rows.push(vec![
                    "unmanaged".into(),
                    name(f),
                    format!("adopt as {}", f.tf_type.as_deref().unwrap_or("?")),
                ]),
                FindingClass::SourceUnavailable => rows.push(vec![
                    "source_unavailable".into(),
                    f.resource_id.clone(),
                    f.reason.clone().unwrap_or_default(),
                ]),
                FindingClass::Policy => {
                    rows.push(vec!["policy".into(), name(f), f.summary.clone()])
                }
                FindingClass::SloBurn => {
                    rows.push(vec!["slo_burn".into(), name(f), f.summary.clone()])
                }
            }
        }
        text::write_table(out, &["CLASS", "RESOURCE", "DETAIL"], &rows)?;
    }
    writeln!(out)?;
    if !r.unobserved.is_empty() {
        writeln!(
            out,
            "Not observed (unknown is not drift: nothing here is reported missing, changed or unmanaged)"
        )?;
        let rows: Vec<Vec<String>> = r
            .unobserved
            .iter()
            .map(|u| {
                vec![
                    u.scope.side.as_str().into(),
                    u.scope.source.clone(),
                    u.scope.account.clone(),
                    u.scope.region.clone(),
                    u.scope.resource_type.clone().unwrap_or_else(|| "*".into()),
                    u.affected.to_string(),
                    u.scope.reason.clone(),
                ]
            })
            .collect();
        text::write_table(
            out,
            &[
                "SIDE", "SOURCE", "ACCOUNT", "REGION", "TYPE", "AFFECTED", "REASON",
            ],
            &rows,
        )?;
        writeln!(out)?;
    }
    let cov: Vec<Vec<String>> = r
        .coverage
        .iter()
        .map(|c| {
            vec![
                c.account.clone(),
                c.region.clone(),
                c.resource_type.clone(),
                c.managed.to_string(),
                c.unmanaged.to_string(),
                format!("{:.0}%", c.coverage * 100.0),
            ]
        })
        .collect();
    if !cov.is_empty() {
        writeln!(out, "IaC coverage")?;
        text::write_table(
            out,
            &[
                "ACCOUNT",
                "REGION",
                "TYPE",
                "MANAGED",
                "UNMANAGED",
                "COVERAGE",
            ],
            &cov,
        )?;
        writeln!(out)?;
    }
    let s = &r.summary;
    writeln!(
        out,
        "{} changed, {} missing, {} unmanaged ({} compared, {} ignored); {} declared instances, {} observed items",
        s.changed,
        s.missing,
        s.unmanaged,
        s.compared,
        s.ignored,
        s.declared_instances,
        s.observed_items
    )?;
    if s.unobserved > 0 || s.unmanaged_withheld > 0 {
        writeln!(
            out,
            "{} declared instances not found but not called missing, and {} observed items not called unmanaged: their scope could not be read",
            s.unobserved, s.unmanaged_withheld
        )?;
    }
    if s.coverage_excluded > 0 {
        writeln!(
            out,
            "IaC coverage leaves out {} account/region/type rows whose scope could not be read",
            s.coverage_excluded
        )?;
    }
    let not_comparable: usize = s.not_comparable.values().sum();
    if not_comparable > 0 {
        writeln!(
            out,
            "{not_comparable} declared instances of {} types have no AWS Config counterpart (not comparable, not missing)",
            s.not_comparable.len()
        )?;
    }
    if !r.findings.is_empty() {
        writeln!(
            out,
            "\nRemediation (first suggestion per finding; --output json has all):"
        )?;
        for f in r.findings.iter().take(20) {
            if let Some(rem) = f.remediation.first() {
                writeln!(
                    out,
                    "  {}  [{}] {}",
                    name(f),
                    rem.action,
                    rem.command.replace('\n', " ")
                )?;
            }
        }
        if r.findings.len() > 20 {
            writeln!(out, "  … and {} more", r.findings.len() - 20)?;
        }
    }
    Ok(())
}

/// For scripts: the whole report, with the inputs that could not be read.
pub fn write_json<E: Serialize>(
    out: &mut impl Write,
    r: &DriftReport,
    errors: &[E],
) -> std::io::Result<()> {
    let doc = json!({
        "findings": r.findings,
        "coverage": r.coverage,
        "summary": r.summary,
        "unobserved": r.unobserved,
        "errors": errors,
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)?;
    Ok(())
}

fn rule(class: FindingClass) -> (&'static str, &'static str, &'static str) {
    match class {
        FindingClass::Changed => (
            "drift/changed",
            "error",
            "A resource's configuration differs from what Terraform declares",
        ),
        FindingClass::Missing => (
            "drift/missing",
            "error",
            "A resource Terraform declares does not exist",
        ),
        FindingClass::Unmanaged => (
            "drift/unmanaged",
            "warning",
            "A resource exists that no Terraform state manages",
        ),
        FindingClass::SourceUnavailable => (
            "source/unobserved",
            "warning",
            "A scope could not be read, so nothing in it was compared",
        ),
        FindingClass::Policy => (
            "policy/rule",
            "warning",
            "A policy or tagging rule matched the resource",
        ),
        FindingClass::SloBurn => (
            "slo/burn",
            "error",
            "A service burns its error budget too fast",
        ),
    }
}

/// SARIF 2.1.0: one result per finding, located at the state file (or the
/// configuration item file for unmanaged resources).
pub fn write_sarif<E: Display>(
    out: &mut impl Write,
    r: &DriftReport,
    errors: &[E],
) -> std::io::Result<()> {
    let classes = [
        FindingClass::Changed,
        FindingClass::Missing,
        FindingClass::Unmanaged,
        FindingClass::SourceUnavailable,
    ];
    let rules: Vec<Value> = classes
        .iter()
        .map(|c| {
            let (id, level, text) = rule(*c);
            json!({
                "id": id, "name": c.as_str(), "shortDescription": {"text": text},
                "defaultConfiguration": {"level": level},
                "helpUri": "https://developer.hashicorp.com/terraform/tutorials/state/resource-drift"
            })
        })
        .collect();
    let results: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let (id, level, _) = rule(f.class);
            let idx = classes.iter().position(|c| *c == f.class).unwrap_or(0);
            let uri = f.source.clone().unwrap_or_else(|| "terraform.tfstate".into());
            json!({
                "ruleId": id,
                "ruleIndex": idx,
                "level": level,
                "message": {"text": f.summary},
                "locations": [{
                    "physicalLocation": {"artifactLocation": {"uri": uri}},
                    "logicalLocations": [{"name": name(f), "fullyQualifiedName": f.resource_key, "kind": "resource"}]
                }],
                "partialFingerprints": {"driftlineFingerprint/v1": f.fingerprint},
                "properties": {"diffs": f.diffs, "remediation": f.remediation, "resourceType": f.resource_type}
            })
        })
        .chain(r.unobserved.iter().map(|u| {
            let class = FindingClass::SourceUnavailable;
            let (id, level, _) = rule(class);
            let idx = classes.iter().position(|c| *c == class).unwrap_or(0);
            let what = match u.scope.side {
                SourceSide::Observed => "declared resources not called missing",
                SourceSide::Declared => "observed resources not called unmanaged",
            };
            let scope = [
                u.scope.account.as_str(),
                u.scope.region.as_str(),
                u.scope.resource_type.as_deref().unwrap_or("*"),
            ]
            .join("/");
            json!({
                "ruleId": id,
                "ruleIndex": idx,
                "level": level,
                "message": {"text": format!("{}: {}; {} {what}", u.scope.source, u.scope.reason, u.affected)},
                "locations": [{
                    "physicalLocation": {"artifactLocation": {"uri": u.scope.source}},
                    "logicalLocations": [{"name": scope, "kind": "scope"}]
                }],
                "properties": {"side": u.scope.side, "account": u.scope.account, "region": u.scope.region,
                               "resourceType": u.scope.resource_type, "affected": u.affected,
                               "reason": u.scope.reason, "status": u.status}
            })
        }))
        .collect();
    let notifications: Vec<Value> = errors
        .iter()
        .map(|e| json!({"level": "error", "message": {"text": e.to_string()}}))
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "driftline",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/driftline",
                "rules": rules
            }},
            "results": results,
            "invocations": [{
                "executionSuccessful": errors.is_empty(),
                "toolExecutionNotifications": notifications
            }]
        }]
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)?;
    Ok(())
}
