//! The record model (DESIGN §3). Every record names its resource by the
//! resource key `aws/{account}/{region}/{ResourceType}/{resourceId}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Placeholder for an account or region a source could not tell us.
pub const UNKNOWN: &str = "-";

/// `aws/{account}/{region}/{ResourceType}/{resourceId}`.
pub fn resource_key(account: &str, region: &str, resource_type: &str, resource_id: &str) -> String {
    let mut k = String::with_capacity(
        8 + account.len() + region.len() + resource_type.len() + resource_id.len(),
    );
    k.push_str("aws/");
    k.push_str(if account.is_empty() { UNKNOWN } else { account });
    k.push('/');
    k.push_str(if region.is_empty() { UNKNOWN } else { region });
    k.push('/');
    k.push_str(resource_type);
    k.push('/');
    k.push_str(resource_id);
    k
}

/// `{ResourceType}/{resourceId}`: the part of the key both sides always know.
/// Declared resources often lack an account (an S3 bucket ARN has none), so
/// the drift join matches on this and then checks account and region where
/// both sides know them.
pub fn type_id(resource_type: &str, resource_id: &str) -> String {
    let mut k = String::with_capacity(resource_type.len() + resource_id.len() + 1);
    k.push_str(resource_type);
    k.push('/');
    k.push_str(resource_id);
    k
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceMode {
    Managed,
    Data,
}

impl ResourceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceMode::Managed => "managed",
            ResourceMode::Data => "data",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceStatus {
    Ready,
    Tainted,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Ready => "ready",
            InstanceStatus::Tainted => "tainted",
        }
    }
}

/// One resource instance as infrastructure code declares it (a Terraform
/// state instance object). Secret values are already replaced by salted
/// hashes when a record of this type exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeclaredResource {
    /// Resource key when the type maps to an AWS Config type, else empty.
    pub resource_key: String,
    /// `{ConfigType}/{resourceId}` when mapped, else empty.
    pub type_id: String,
    pub account: String,
    pub region: String,
    /// Terraform address, e.g. `module.net.aws_subnet.private[1]`.
    pub address: String,
    pub mode: ResourceMode,
    /// Terraform type, e.g. `aws_security_group`.
    pub tf_type: String,
    pub provider: String,
    pub id: Option<String>,
    pub index_key: Option<Value>,
    pub status: InstanceStatus,
    /// Deposed key when this object is deposed (awaiting destroy).
    pub deposed: Option<String>,
    /// Attributes as compact JSON text (an object). Kept as text, not a
    /// tree: a million trees do not fit in memory, and detectors only look
    /// at the few attributes a mapping compares.
    #[serde(with = "json_text")]
    pub attributes: String,
    /// Attribute paths whose values were replaced by a salted hash.
    pub sensitive_paths: Vec<String>,
    /// Where the state came from (file path, s3://…, http://…).
    pub source: String,
    pub serial: u64,
    pub lineage: String,
    /// Milliseconds since the epoch when the state was read.
    pub observed_at: i64,
    /// Set only in a one-shot scan, by a loader that cut `attributes` for
    /// the comparison as it read them (`ComparisonCut`). Per process:
    /// never encoded.
    #[serde(skip)]
    pub cut: Option<CutForComparison>,
}

/// A declared resource a loader cut for the comparison: its attributes
/// hold only what the comparison reads, and this is the digest of its
/// compared values (`None` where no mapping compares it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutForComparison {
    pub compared_digest: Option<u64>,
}

/// (De)serialises a `String` holding JSON text as that JSON, so records
/// stay readable (`"attributes": {...}`, not an escaped string).
mod json_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::value::RawValue;

    pub fn serialize<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(text.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(Box::<RawValue>::deserialize(d)?.get().to_string())
    }
}

/// AWS Config `configurationItemStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigStatus {
    #[serde(rename = "OK")]
    Ok,
    ResourceDiscovered,
    ResourceNotRecorded,
    ResourceDeleted,
    ResourceDeletedNotRecorded,
}

impl ConfigStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigStatus::Ok => "OK",
            ConfigStatus::ResourceDiscovered => "ResourceDiscovered",
            ConfigStatus::ResourceNotRecorded => "ResourceNotRecorded",
            ConfigStatus::ResourceDeleted => "ResourceDeleted",
            ConfigStatus::ResourceDeletedNotRecorded => "ResourceDeletedNotRecorded",
        }
    }

    /// Parses the status strings AWS Config has used over the years.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "OK" | "Ok" | "ok" => ConfigStatus::Ok,
            "ResourceDiscovered" => ConfigStatus::ResourceDiscovered,
            "ResourceNotRecorded" => ConfigStatus::ResourceNotRecorded,
            "ResourceDeleted" | "Deleted" => ConfigStatus::ResourceDeleted,
            "ResourceDeletedNotRecorded" => ConfigStatus::ResourceDeletedNotRecorded,
            _ => return None,
        })
    }

    pub fn is_deleted(self) -> bool {
        matches!(
            self,
            ConfigStatus::ResourceDeleted | ConfigStatus::ResourceDeletedNotRecorded
        )
    }
}

/// One configuration item as the cloud reports it (AWS Config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedResource {
    pub resource_key: String,
    pub type_id: String,
    pub account: String,
    pub region: String,
    pub resource_type: String,
    pub resource_id: String,
    pub resource_name: Option<String>,
    pub arn: Option<String>,
    pub status: ConfigStatus,
    /// Milliseconds since the epoch (configurationItemCaptureTime).
    pub captured_at: Option<i64>,
    pub configuration_state_id: Option<String>,
    /// Always an object after parsing (a JSON-string configuration is decoded).
    pub configuration: Value,
    pub supplementary_configuration: Value,
    /// Tag map (AWS Config reports it as a map, a key/value list, or null).
    pub tags: Value,
    pub relationships: Value,
    /// True when only a summary was delivered (oversized notifications): the
    /// resource is known to exist but its attributes are not.
    pub summary_only: bool,
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingClass {
    Changed,
    Missing,
    Unmanaged,
    /// A source cannot read its scope (no recorder, access denied, an
    /// unreadable file): one finding per source, not one per resource.
    #[serde(rename = "source_unavailable")]
    SourceUnavailable,
    /// A policy or tagging rule (`detectors/rules/*.sql`) matched.
    Policy,
    /// An SLO burns its error budget too fast (`detectors/src/slo/`).
    #[serde(rename = "slo_burn")]
    SloBurn,
}

impl FindingClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingClass::Changed => "changed",
            FindingClass::Missing => "missing",
            FindingClass::Unmanaged => "unmanaged",
            FindingClass::SourceUnavailable => "source_unavailable",
            FindingClass::Policy => "policy",
            FindingClass::SloBurn => "slo_burn",
        }
    }
}

/// One differing attribute path, with both sides after normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeDiff {
    /// Terraform attribute path (e.g. `ingress`, `tags.Owner`).
    pub path: String,
    /// Where the observed value lives in the configuration item.
    pub observed_path: String,
    pub declared: Value,
    pub observed: Value,
}

/// What a person can do about a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remediation {
    /// `revert`, `accept` or `adopt`.
    pub action: String,
    pub description: String,
    /// A command or a code snippet to run or paste.
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable identity of the problem (see `fingerprint`): the alert
    /// dedup key later on.
    pub fingerprint: String,
    pub detector: String,
    pub class: FindingClass,
    pub resource_key: String,
    pub resource_type: String,
    pub resource_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tf_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub account: String,
    pub region: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub diffs: Vec<AttributeDiff>,
    pub summary: String,
    pub remediation: Vec<Remediation>,
    /// The resource's tags (observed; declared when the resource is gone):
    /// alerts take owner/team/service/env labels from them.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty", default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Why a source is unavailable (`source_unavailable` only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// The burn (`slo_burn` only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub slo: Option<SloBurn>,
}

impl Finding {
    /// An SLO alert's finding: no resource, account or region of its own;
    /// identified by `key` (the SLO, the severity and the split).
    pub fn slo_burn(key: String, summary: String, burn: SloBurn) -> Self {
        Finding {
            fingerprint: fingerprint("slo", &key, FindingClass::SloBurn, ""),
            detector: "slo".into(),
            class: FindingClass::SloBurn,
            resource_key: key,
            resource_type: "SLO".into(),
            resource_id: burn.id.clone(),
            tf_type: None,
            address: None,
            source: None,
            account: String::new(),
            region: String::new(),
            diffs: Vec::new(),
            summary,
            remediation: Vec::new(),
            tags: std::collections::BTreeMap::new(),
            reason: None,
            slo: Some(burn),
        }
    }
}

/// What an `slo_burn` finding says: which SLO, how urgent, how fast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloBurn {
    /// `{service}-{name}`.
    pub id: String,
    pub name: String,
    pub service: String,
    /// `page` or `ticket`.
    pub severity: String,
    /// The spec's alert name (Sloth's `alerting.name`).
    pub alert_name: String,
    pub objective: f64,
    /// The split's labels and the spec's alert labels.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// Error ratio over budget, per window (`5m` → 16.2).
    pub burn_rates: std::collections::BTreeMap<String, f64>,
    /// Drift on the service's resources in the lookback before the burn
    /// began, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probable_cause: Vec<ProbableCause>,
}

/// One change that may have caused an SLO burn on one of the service's
/// resources: a drift finding event, or a new version of its observed
/// configuration (drift or not: a change applied through Terraform is
/// still a change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbableCause {
    /// RFC 3339, when the drift or the new configuration was seen.
    pub at: String,
    /// `new` or `changed`.
    pub event: String,
    /// A drift class (`changed`, `missing`, `unmanaged`), or
    /// `configuration_change` for a new observed version.
    pub class: String,
    pub resource_key: String,
    pub resource_type: String,
    pub resource_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub summary: String,
    /// Which paths, declared vs observed (drift).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<AttributeDiff>,
    /// Which paths of the observed configuration changed, before and
    /// after (`configuration_change`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ConfigurationChange>,
}

/// One path of an observed configuration that changed between versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigurationChange {
    pub path: String,
    /// `null` when the path is new.
    pub before: Value,
    /// `null` when the path is gone.
    pub after: Value,
}

/// What happened to a finding in a streaming run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingEventKind {
    /// First seen (or seen again after it resolved).
    New,
    /// Still open, but what it says changed (another attribute drifted).
    Changed,
    /// Gone: drift reverted, accepted, or the resource reconciled.
    Resolved,
}

impl FindingEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingEventKind::New => "new",
            FindingEventKind::Changed => "changed",
            FindingEventKind::Resolved => "resolved",
        }
    }
}

/// Version of the JSON records on the bus; readers reject other versions.
pub const SCHEMA_VERSION: u32 = 1;

/// A finding event on `driftline.findings` and in `--findings-out`: the
/// fields of a `scan` finding plus the event and when it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingEvent {
    pub v: u32,
    pub event: FindingEventKind,
    /// RFC 3339, UTC, milliseconds.
    pub timestamp: String,
    #[serde(flatten)]
    pub finding: Finding,
}

impl FindingEvent {
    pub fn new(event: FindingEventKind, at_ms: i64, finding: Finding) -> Self {
        Self {
            v: SCHEMA_VERSION,
            event,
            timestamp: crate::time::format_epoch_ms(at_ms),
            finding,
        }
    }
}

/// The account, region and `{ResourceType}/{resourceId}` of a resource key
/// (`aws/{account}/{region}/{type id}`), or `None` for keys of another
/// shape. `join_key` puts them back together.
pub fn split_key(key: &str) -> Option<(&str, &str, &str)> {
    let (account, rest) = key.strip_prefix("aws/")?.split_once('/')?;
    let (region, type_id) = rest.split_once('/')?;
    (!type_id.is_empty()).then_some((account, region, type_id))
}

/// Writes the key `split_key` took apart into `out` (cleared first).
pub fn join_key(out: &mut String, account: &str, region: &str, type_id: &str) {
    out.clear();
    for part in ["aws/", account, "/", region, "/", type_id] {
        out.push_str(part);
    }
}

/// The `{ResourceType}/{resourceId}` part of a resource key (after
/// `aws/{account}/{region}/`), or `None` for keys of another shape.
pub fn type_id_of_key(key: &str) -> Option<&str> {
    split_key(key).map(|(_, _, type_id)| type_id)
}

/// IaC coverage for one (account, region, type): managed / (managed + unmanaged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub account: String,
    pub region: String,
    pub resource_type: String,
    pub managed: u64,
    pub unmanaged: u64,
    pub coverage: f64,
}

/// The `detector` of declared-vs-observed findings (changed, missing,
/// unmanaged).
pub const DRIFT_DETECTOR: &str = "drift";

/// Stable hash of (detector, resource key, class, path): the same problem
/// on the same resource always has the same fingerprint.
pub fn fingerprint(detector: &str, resource_key: &str, class: FindingClass, path: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [detector, resource_key, class.as_str(), path] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_splits_and_joins_back() {
        let key = resource_key("1", "eu-west-1", "AWS::SQS::Queue", "https://sqs/q");
        let (account, region, type_id) = split_key(&key).unwrap();
        assert_eq!(
            (account, region, type_id),
            ("1", "eu-west-1", "AWS::SQS::Queue/https://sqs/q")
        );
        assert_eq!(type_id_of_key(&key), Some(type_id));
        let mut back = String::from("left over");
        join_key(&mut back, account, region, type_id);
        assert_eq!(back, key);
        for other in [
            "source-status/x",
            "aws/1/eu-west-1/",
            "aws/1",
            "gcp/1/r/T/x",
        ] {
            assert_eq!(split_key(other), None, "{other}");
        }
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        let a = fingerprint("drift", "aws/1/r/T/x", FindingClass::Changed, "");
        assert_eq!(
            a,
            fingerprint("drift", "aws/1/r/T/x", FindingClass::Changed, "")
        );
        assert_ne!(
            a,
            fingerprint("drift", "aws/1/r/T/x", FindingClass::Missing, "")
        );
        assert_eq!(a.len(), 32);
    }
}
