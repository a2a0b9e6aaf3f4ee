//! Declared-vs-observed drift (DESIGN §4): a full outer join of the latest
//! declared and observed snapshots in DataFusion SQL, a UDF that diffs the
//! compared attributes per the type's mapping file, and IaC coverage.

mod batcher;
pub mod compare;
mod coverage;
mod digest;
mod docs;
pub mod driftignore;
mod inputs;
pub mod normalise;
mod one_batch;
mod projection;
pub mod remediation;
pub mod render;
pub mod scopes;
pub mod stage;
pub mod stream;
mod udf;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use driftline_pipeline::{
    AttributeDiff, Coverage, DRIFT_DETECTOR, Finding, FindingClass, fingerprint, join_key,
};
use futures::StreamExt;
use serde::Serialize;

use crate::mappings::Mappings;
use crate::{Detector, DetectorError};
use coverage::CoverageTally;
pub use driftignore::DriftIgnore;
pub use inputs::{DriftInputs, register_snapshots, register_tables};
pub use projection::DriftProjection;
pub use scopes::{SourceStatuses, Unobserved, UnobservedScope};

/// What a drift run found, and what it could not compare.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DriftReport {
    pub findings: Vec<Finding>,
    pub coverage: Vec<Coverage>,
    pub summary: DriftSummary,
    /// Scopes a source could not read: nothing in them is called drift.
    pub unobserved: Vec<UnobservedScope>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DriftSummary {
    pub declared_instances: usize,
    pub declared_data_sources: usize,
    pub observed_items: usize,
    pub compared: usize,
    pub changed: usize,
    pub missing: usize,
    pub unmanaged: usize,
    pub ignored: usize,
    /// Declared Terraform types with no AWS Config counterpart (or no id):
    /// reported here, never as missing.
    pub not_comparable: BTreeMap<String, usize>,
    /// Observed Config types no mapping covers: not reported as unmanaged.
    pub unmapped_observed: BTreeMap<String, usize>,
    /// Declared resources without an observed item whose scope is not
    /// observed: not called missing.
    pub unobserved: usize,
    /// Observed resources not called unmanaged because a state could not be read.
    pub unmanaged_withheld: usize,
    /// Coverage rows left out because their scope is not fully read.
    pub coverage_excluded: usize,
    /// What was withheld, by scope (reported as `DriftReport::unobserved`).
    #[serde(skip)]
    pub withheld: BTreeMap<Unobserved, usize>,
}

const DELETED: &str = "('ResourceDeleted', 'ResourceDeletedNotRecorded')";
/// Items that say the resource exists and what it looks like.
const PRESENT: &str = "('OK', 'ResourceDiscovered')";

/// The join: one row per declared instance and/or observed item. Declared
/// rows often lack an account (S3 ARNs name none): they match on type and
/// id, and on account and region wherever both sides know them.
fn pairs_sql() -> String {
    // Text whether the table holds it so or as a dictionary (a scan's).
    let text = |c: &str| format!("arrow_cast({c}, 'Utf8')");
    let (d_account, d_region, d_source) = (text("d.account"), text("d.region"), text("d.source"));
    let (o_account, o_region, o_source) = (text("o.account"), text("o.region"), text("o.source"));
    let (tf_type, resource_type, status) =
        (text("d.tf_type"), text("o.resource_type"), text("o.status"));
    // A side's type id stands for its row: null where the row has no such
    // side. The resource key is written (`join_key`) for findings only.
    format!(
        "SELECT *,
            CASE
              WHEN d_address IS NULL THEN CASE WHEN status IN {PRESENT} THEN 'unmanaged' END
              WHEN d_deposed THEN NULL
              WHEN o_type_id IS NULL OR status IN {DELETED} THEN 'missing'
              WHEN status = 'ResourceNotRecorded' THEN 'unobserved'
              WHEN diffs IS NOT NULL AND diffs <> '[]' THEN 'changed'
            END AS class
         FROM (
           SELECT d.address AS d_address, {tf_type} AS tf_type, d.id AS d_id, d.type_id AS d_type_id,
                  {d_account} AS d_account, {d_region} AS d_region, {d_source} AS d_source,
                  d.deposed AS d_deposed,
                  o.type_id AS o_type_id, {resource_type} AS resource_type, o.resource_id,
                  o.resource_name, o.arn,
                  {o_account} AS o_account, {o_region} AS o_region, {status} AS status,
                  {o_source} AS o_source,
                  o.tags AS o_tags,
                  CASE WHEN o.type_id IS NULL THEN drift_declared_tags(d.attributes_ref) END AS d_gone_tags,
                  CASE WHEN d.address IS NOT NULL AND o.type_id IS NOT NULL AND NOT d.deposed
                            AND NOT o.summary_only AND {status} IN ('OK', 'ResourceDiscovered')
                       THEN drift_diff({tf_type}, d.attributes_ref, o.resource_id, o.configuration_ref,
                                       o.tags, o.resource_name, o.arn,
                                       d.compared_digest, o.compared_digest)
                  END AS diffs
           FROM declared d
           FULL OUTER JOIN observed o
             ON d.type_id = o.type_id
            AND (d.account = '-' OR o.account = '-' OR d.account = o.account)
            AND (d.region = '-' OR o.region = '-' OR d.region = o.region)
         ) j"
    )
}

/// The order findings are reported in: by class, resource and address, and
/// by the file that declared them, so that one address in two states (a
/// copy of a state beside it) reads in the same order on every scan,
/// whichever file was read first.
fn report_order(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    (a.class, &a.resource_key, &a.address, &a.source).cmp(&(
        b.class,
        &b.resource_key,
        &b.address,
        &b.source,
    ))
}

/// The drift detector. Expects tables `declared` and `observed` and their
/// functions, as `register_tables` or `register_snapshots` leave them.
pub struct DriftDetector {
    mappings: Arc<Mappings>,
    ignore: DriftIgnore,
    /// What the sources could read; findings in scopes they could not are
    /// withheld. `None`: the caller has already set those aside (the
    /// streaming detector freezes them).
    statuses: Option<Arc<SourceStatuses>>,
}

impl DriftDetector {
    pub fn new(mappings: Arc<Mappings>, ignore: DriftIgnore) -> Self {
        Self {
            mappings,
            ignore,
            statuses: None,
        }
    }

    pub fn with_statuses(mut self, statuses: Arc<SourceStatuses>) -> Self {
        self.statuses = Some(statuses);
        self
    }

    /// Runs the join, classifies, computes coverage, applies `.driftignore`.
    pub async fn run(
        &self,
        ctx: &SessionContext,
        mut summary: DriftSummary,
    ) -> Result<DriftReport, DetectorError> {
        // The join streams by: only findings come back to Rust as values;
        // the rest is counted batch by batch, never held.
        let mut pairs = ctx.sql(&pairs_sql()).await?.execute_stream().await?;
        let mut findings = Vec::new();
        let mut coverage = CoverageTally::default();
        while let Some(b) = pairs.next().await {
            let b = b?;
            let (address, o_type_id) =
                (b.column_by_name("d_address"), b.column_by_name("o_type_id"));
            if let (Some(a), Some(o)) = (address, o_type_id) {
                summary.compared += (0..b.num_rows())
                    .filter(|&i| a.is_valid(i) && o.is_valid(i))
                    .count();
            }
            coverage.add(&b)?;
            self.findings_from(&b, &mut findings, &mut summary)?;
        }
        for (scope, n) in &summary.withheld {
            match scope.side {
                driftline_pipeline::SourceSide::Observed => summary.unobserved += n,
                driftline_pipeline::SourceSide::Declared => summary.unmanaged_withheld += n,
            }
        }
        findings.sort_by(report_order);
        let mut coverage = coverage.finish();
        let mut unobserved = Vec::new();
        if let Some(st) = &self.statuses {
            // Coverage counts only what every source could read.
            let before = coverage.len();
            if st.declared_unread().is_some() {
                coverage.clear();
            } else {
                coverage.retain(|c| {
                    st.unobserved(&c.account, &c.region, &c.resource_type)
                        .is_none()
                });
            }
            summary.coverage_excluded = before - coverage.len();
            unobserved = st.report(&summary.withheld);
        }
        Ok(DriftReport {
            findings,
            coverage,
            summary,
            unobserved,
        })
    }

    fn findings_from(
        &self,
        b: &RecordBatch,
        out: &mut Vec<Finding>,
        summary: &mut DriftSummary,
    ) -> Result<(), DetectorError> {
        let col = |name: &str| -> Result<&arrow::array::StringArray, DetectorError> {
            b.column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| {
                    DetectorError::Internal(format!("the join has no text column {name}"))
                })
        };
        let get = |a: &arrow::array::StringArray, i: usize| {
            (!a.is_null(i)).then(|| a.value(i).to_string())
        };
        let (address, tf_type, d_id, d_type_id) = (
            col("d_address")?,
            col("tf_type")?,
            col("d_id")?,
            col("d_type_id")?,
        );
        let (d_account, d_region, d_source) =
            (col("d_account")?, col("d_region")?, col("d_source")?);
        let (o_type_id, rtype, rid, rname, arn) = (
            col("o_type_id")?,
            col("resource_type")?,
            col("resource_id")?,
            col("resource_name")?,
            col("arn")?,
        );
        let (o_account, o_region, o_source) =
            (col("o_account")?, col("o_region")?, col("o_source")?);
        let (diffs, class) = (col("diffs")?, col("class")?);
        let (o_tags, d_gone) = (col("o_tags")?, col("d_gone_tags")?);
        for i in 0..b.num_rows() {
            let Some(class) = get(class, i) else { continue };
            let class = match class.as_str() {
                "changed" => FindingClass::Changed,
                "missing" => FindingClass::Missing,
                "unobserved" => {
                    // AWS Config says it does not record this resource:
                    // withheld, in its scope's outage if there is one.
                    if let Some(st) = &self.statuses {
                        let (acc, reg, typ) = (
                            get(o_account, i).unwrap_or_default(),
                            get(o_region, i).unwrap_or_default(),
                            get(rtype, i).unwrap_or_default(),
                        );
                        let u = st
                            .unobserved(&acc, &reg, &typ)
                            .unwrap_or_else(|| Unobserved {
                                side: driftline_pipeline::SourceSide::Observed,
                                source: get(o_source, i).unwrap_or_default(),
                                account: acc,
                                region: reg,
                                reason: format!("type {typ} not recorded (ResourceNotRecorded)"),
                                resource_type: Some(typ),
                            });
                        *summary.withheld.entry(u).or_default() += 1;
                    }
                    continue;
                }
                _ => FindingClass::Unmanaged,
            };
            let address = get(address, i);
            let observed_type = get(rtype, i);
            let (tf_type, mapping) = match get(tf_type, i) {
                Some(t) => (t.clone(), self.mappings.by_tf_type(&t).cloned()),
                None => {
                    let m = observed_type
                        .as_deref()
                        .and_then(|t| self.mappings.by_config_type(t))
                        .cloned();
                    (
                        m.as_ref()
                            .map(|m| m.terraform_type.clone())
                            .unwrap_or_default(),
                        m,
                    )
                }
            };
            let Some(mapping) = mapping else { continue };
            let resource_id = get(rid, i).unwrap_or_else(|| {
                get(d_type_id, i)
                    .and_then(|t| t.split_once('/').map(|(_, id)| id.to_string()))
                    .unwrap_or_default()
            });
            // The id driftctl-style ignore rules and `terraform import` use.
            let tf_id = match (get(d_id, i), mapping.import_id.as_str()) {
                (Some(id), _) => id,
                (None, "resource_name") => get(rname, i).unwrap_or_else(|| resource_id.clone()),
                (None, "arn") => get(arn, i).unwrap_or_else(|| resource_id.clone()),
                (None, _) => resource_id.clone(),
            };
            if self
                .ignore
                .ignores_resource(&tf_type, &tf_id, address.as_deref())
            {
                summary.ignored += 1;
                continue;
            }
            let mut diff_list: Vec<AttributeDiff> = match get(diffs, i) {
                Some(text) if class == FindingClass::Changed => serde_json::from_str(&text)
                    .map_err(|e| {
                        DetectorError::Internal(format!("drift_diff returned bad JSON: {e}"))
                    })?,
                _ => Vec::new(),
            };
            if class == FindingClass::Changed {
                diff_list.retain(|d| !self.ignore.ignores_attribute(&tf_type, &tf_id, &d.path));
                if diff_list.is_empty() {
                    summary.ignored += 1;
                    continue;
                }
            }
            let resource_type = observed_type.unwrap_or_else(|| mapping.config_type.clone());
            // The observed side's key when there is one: its account and
            // region are known where the declared side's may not be.
            let mut resource_key = String::new();
            if o_type_id.is_valid(i) {
                join_key(
                    &mut resource_key,
                    o_account.value(i),
                    o_region.value(i),
                    o_type_id.value(i),
                );
            } else if d_type_id.is_valid(i) {
                join_key(
                    &mut resource_key,
                    d_account.value(i),
                    d_region.value(i),
                    d_type_id.value(i),
                );
            }
            let account = get(o_account, i)
                .or_else(|| get(d_account, i))
                .unwrap_or_default();
            let region = get(o_region, i)
                .or_else(|| get(d_region, i))
                .unwrap_or_default();
            // Unknown is not drift. An item that was read is evidence (of a
            // change, or of a deletion); the absence of one is evidence only
            // where the scope was read completely, and an item no state
            // declares is unmanaged only once every state was read.
            if let Some(st) = &self.statuses {
                let unknown = match class {
                    FindingClass::Missing if o_type_id.is_null(i) => st.unobserved(
                        &get(d_account, i).unwrap_or_default(),
                        &get(d_region, i).unwrap_or_default(),
                        &mapping.config_type,
                    ),
                    FindingClass::Unmanaged => st.declared_unread(),
                    _ => None,
                };
                if let Some(u) = unknown {
                    *summary.withheld.entry(u).or_default() += 1;
                    continue;
                }
            }
            let (summary_text, remediation) = match class {
                FindingClass::Changed => {
                    summary.changed += 1;
                    let a = address.clone().unwrap_or_default();
                    let paths: Vec<String> = diff_list.iter().map(|d| d.path.clone()).collect();
                    (
                        format!(
                            "{a} ({resource_id}) changed outside Terraform: {}",
                            paths.join(", ")
                        ),
                        remediation::for_changed(&a, &paths),
                    )
                }
                FindingClass::Missing => {
                    summary.missing += 1;
                    let a = address.clone().unwrap_or_default();
                    (
                        format!("{a} ({resource_id}) is declared but does not exist"),
                        remediation::for_missing(&a),
                    )
                }
                // The join classifies nothing as a source outage.
                FindingClass::Unmanaged
                | FindingClass::SourceUnavailable
                | FindingClass::Policy
                | FindingClass::SloBurn => {
                    summary.unmanaged += 1;
                    (
                        format!("{resource_type} {tf_id} exists but no Terraform state manages it"),
                        remediation::for_unmanaged(&tf_type, &tf_id),
                    )
                }
            };
            out.push(Finding {
                fingerprint: fingerprint(DRIFT_DETECTOR, &resource_key, class, ""),
                detector: DRIFT_DETECTOR.into(),
                class,
                resource_key,
                resource_type,
                resource_id,
                tf_type: Some(tf_type),
                source: get(d_source, i).or_else(|| get(o_source, i)),
                address,
                account,
                region,
                diffs: diff_list,
                summary: summary_text,
                remediation,
                tags: tags_of(get(o_tags, i), get(d_gone, i)),
                reason: None,
                slo: None,
            });
        }
        Ok(())
    }
}

/// Tags as a flat map: the observed ones, else (resource gone) the declared
/// `tags` attribute. Values that are not text are skipped.
fn tags_of(
    observed: Option<String>,
    declared: Option<String>,
) -> std::collections::BTreeMap<String, String> {
    match observed
        .or(declared)
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    {
        Some(serde_json::Value::Object(m)) => m
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
            .collect(),
        _ => Default::default(),
    }
}

impl Detector for DriftDetector {
    fn name(&self) -> &'static str {
        "drift"
    }

    async fn detect(&self, ctx: &SessionContext) -> Result<Vec<Finding>, DetectorError> {
        Ok(self.run(ctx, DriftSummary::default()).await?.findings)
    }
}
