//! OpenSLO v1 documents as written: every field the specification
//! names, unknown ones refused (`deny_unknown_fields`). `super` reads
//! them into SLOs.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::slo::spec) struct Doc {
    #[serde(rename = "apiVersion")]
    pub(super) api_version: String,
    pub(super) kind: String,
    pub(super) metadata: Metadata,
    pub(super) spec: serde_norway::Value,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Metadata {
    pub(super) name: String,
    #[serde(default)]
    pub(super) display_name: Option<String>,
    #[serde(default)]
    pub(super) labels: Option<serde_norway::Value>,
    #[serde(default)]
    pub(super) annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SloSpec {
    #[serde(default)]
    pub(super) description: String,
    pub(super) service: String,
    #[serde(default)]
    pub(super) indicator: Option<Inline>,
    #[serde(default)]
    pub(super) indicator_ref: Option<String>,
    pub(super) time_window: Vec<TimeWindow>,
    pub(super) budgeting_method: String,
    pub(super) objectives: Vec<Objective>,
    #[serde(default)]
    pub(super) alert_policies: Vec<PolicyEntry>,
}

/// An object written inline: its metadata and spec.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Inline {
    #[serde(default)]
    pub(super) kind: Option<String>,
    pub(super) metadata: Metadata,
    pub(super) spec: serde_norway::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct TimeWindow {
    pub(super) duration: String,
    #[serde(default)]
    pub(super) is_rolling: bool,
    #[serde(default)]
    pub(super) calendar: Option<serde_norway::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Objective {
    #[serde(default)]
    pub(super) display_name: Option<String>,
    #[serde(default)]
    pub(super) target: Option<f64>,
    #[serde(default)]
    pub(super) target_percent: Option<f64>,
    #[serde(default)]
    pub(super) time_slice_target: Option<f64>,
    #[serde(default)]
    pub(super) time_slice_window: Option<String>,
    #[serde(default)]
    pub(super) indicator: Option<Inline>,
    #[serde(default)]
    pub(super) indicator_ref: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PolicyEntry {
    #[serde(default)]
    pub(super) alert_policy_ref: Option<String>,
    #[serde(default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) metadata: Option<Metadata>,
    #[serde(default)]
    pub(super) spec: Option<serde_norway::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SliSpec {
    #[serde(default)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) threshold_metric: Option<serde_norway::Value>,
    #[serde(default)]
    pub(super) ratio_metric: Option<RatioMetric>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RatioMetric {
    #[serde(default)]
    pub(super) counter: bool,
    #[serde(default)]
    pub(super) good: Option<MetricRef>,
    #[serde(default)]
    pub(super) bad: Option<MetricRef>,
    #[serde(default)]
    pub(super) total: Option<MetricRef>,
    #[serde(default)]
    pub(super) raw_type: Option<String>,
    #[serde(default)]
    pub(super) raw: Option<serde_norway::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct MetricRef {
    pub(super) metric_source: MetricSource,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct MetricSource {
    #[serde(default)]
    pub(super) metric_source_ref: Option<String>,
    #[serde(default, rename = "type")]
    pub(super) source_type: Option<String>,
    pub(super) spec: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PolicySpec {
    #[serde(default)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) alert_when_no_data: bool,
    #[serde(default)]
    pub(super) alert_when_resolved: bool,
    #[serde(default)]
    pub(super) alert_when_breaching: bool,
    pub(super) conditions: Vec<ConditionEntry>,
    #[serde(default)]
    pub(super) notification_targets: Vec<serde_norway::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ConditionEntry {
    #[serde(default)]
    pub(super) condition_ref: Option<String>,
    #[serde(default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) metadata: Option<Metadata>,
    #[serde(default)]
    pub(super) spec: Option<serde_norway::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ConditionSpec {
    #[serde(default)]
    pub(super) description: String,
    pub(super) severity: String,
    pub(super) condition: Condition,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Condition {
    pub(super) kind: String,
    pub(super) op: String,
    pub(super) threshold: f64,
    pub(super) lookback_window: String,
    #[serde(default)]
    pub(super) alert_after: Option<String>,
}
