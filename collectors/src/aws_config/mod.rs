//! Observed state from AWS Config: configuration items, change
//! notifications (SNS / EventBridge / Config rule events), history and
//! snapshot files, batch-get and select outputs — read from files, from the
//! live API (`live`), or pushed to the notification endpoint
//! (`notifications`). Every path ends in the one loader, `normalise`.

pub mod api;
mod cut;
mod document;
pub mod inbox;
mod item;
mod items;
pub mod live;
pub mod notifications;
mod recording;
mod shapes;
mod time;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use driftline_pipeline::identity::region_of_zone;
use driftline_pipeline::model::UNKNOWN;
use driftline_pipeline::{
    Arn, ComparisonCut, ConfigStatus, KeptKeys, ObservedResource, Record, RecordSink, Topic,
    TypeTable, resource_key, type_id,
};
use serde_json::{Map, Value};

use crate::chunks::stream_files;
use crate::file_read::{Elements, SourceFile, with_deserializer};
use crate::{CollectReport, Collector, ProgressFn, SourceError};
use document::DocumentError;
use item::Field;
use shapes::{Found, Skip};

pub use time::to_epoch_ms;

#[derive(Debug, Clone)]
pub struct AwsConfigFileConfig {
    pub files: Vec<PathBuf>,
    pub types: Arc<TypeTable>,
    /// What of the items' documents to keep, for the one comparison this
    /// feeds; all of them when unset.
    pub cut: Option<Arc<dyn ComparisonCut>>,
}

/// One file after loading.
#[derive(Debug, Default)]
pub struct LoadedItems {
    pub items: Vec<ObservedResource>,
    /// Items in the file that could not be used, each with its reason.
    pub item_errors: Vec<String>,
    /// Set when the whole file is not an item source (a schema file).
    pub skipped: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AwsConfigError {
    #[error("{path}: cannot read: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: invalid JSON at line {line}, column {column}: {reason}")]
    Json {
        path: String,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Shape { path: String, reason: String },
}

impl From<AwsConfigError> for SourceError {
    fn from(e: AwsConfigError) -> Self {
        match e {
            AwsConfigError::Read { path, reason } | AwsConfigError::Shape { path, reason } => {
                SourceError {
                    source: path,
                    reason,
                }
            }
            AwsConfigError::Json {
                path,
                line,
                column,
                reason,
            } => SourceError {
                source: path,
                reason: format!("invalid JSON at line {line}, column {column}: {reason}"),
            },
        }
    }
}

/// True for files a directory scan should pick up.
pub fn is_item_file(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "json") && p.file_name().is_none_or(|n| n != "package.json")
}

/// Reads one item file, all of it or nothing.
pub fn load_file(path: &Path, types: &TypeTable) -> Result<LoadedItems, AwsConfigError> {
    let mut items = Vec::new();
    let read = read_file(path, types, None, &mut |o| items.push(o))?;
    Ok(LoadedItems::new(items, read))
}

/// Reads the items in a document held in memory.
pub fn load_bytes(
    bytes: &[u8],
    source: &str,
    types: &TypeTable,
) -> Result<LoadedItems, AwsConfigError> {
    let mut items = Vec::new();
    let read = read_with(
        &mut serde_json::Deserializer::from_slice(bytes),
        Elements::InStream,
        source,
        types,
        None,
        &mut |o| items.push(o),
    )?;
    Ok(LoadedItems::new(items, read))
}

/// What reading a document said besides its items.
#[derive(Debug, Default)]
pub struct ItemsRead {
    /// Items in the file that could not be used, each with its reason.
    pub item_errors: Vec<String>,
    /// Set when the whole file is not an item source (a schema file).
    pub skipped: Option<String>,
}

impl LoadedItems {
    fn new(mut items: Vec<ObservedResource>, read: ItemsRead) -> Self {
        if read.skipped.is_some() {
            items.clear();
        }
        Self {
            items,
            item_errors: read.item_errors,
            skipped: read.skipped,
        }
    }
}

/// Reads one item file as a stream: each item goes to `emit` as soon as it
/// is decoded; the file is held whole only within the loaders' shared
/// budget (`file_read`). On an error part way, the items before it were
/// already emitted. With `kept`, an item's documents keep only those keys.
pub fn read_file(
    path: &Path,
    types: &TypeTable,
    kept: Option<&KeptKeys>,
    emit: &mut dyn FnMut(ObservedResource),
) -> Result<ItemsRead, AwsConfigError> {
    let source = path.display().to_string();
    let file = SourceFile::open(path).map_err(|e| AwsConfigError::Read {
        path: source.clone(),
        reason: e.to_string(),
    })?;
    with_deserializer!(file, |de, elements| read_with(
        de, elements, &source, types, kept, emit
    ))
}

fn read_with<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    elements: Elements,
    source: &str,
    types: &TypeTable,
    kept: Option<&KeptKeys>,
    emit: &mut dyn FnMut(ObservedResource),
) -> Result<ItemsRead, AwsConfigError> {
    let mut read = ItemsRead::default();
    let mut found = 0usize;
    let cut = kept.map(|kept| cut::ItemCut { kept, types });
    let skip = document::read(de, elements, cut, &mut |f| {
        match normalise(f, source, types) {
            Ok(item) => emit(item),
            Err(e) => read.item_errors.push(format!("item {found}: {e}")),
        }
        found += 1;
    })
    .map_err(|e| match e {
        DocumentError::Json(e) if e.is_io() => AwsConfigError::Read {
            path: source.to_string(),
            reason: e.to_string(),
        },
        DocumentError::Json(e) => AwsConfigError::Json {
            path: source.to_string(),
            line: e.line(),
            column: e.column(),
            reason: e.to_string(),
        },
        DocumentError::Shape(reason) => AwsConfigError::Shape {
            path: source.to_string(),
            reason,
        },
    })?;
    match skip {
        Some(Skip::Schema) => {
            read.skipped =
                Some("a resource property schema (documentation, not a configuration item)".into());
        }
        Some(Skip::NoItem(why)) if found == 0 => read.skipped = Some(why),
        _ => {}
    }
    Ok(read)
}

/// `load_bytes` for a document already parsed (a notification's envelope).
pub fn load_value(
    v: Value,
    source: &str,
    types: &TypeTable,
) -> Result<LoadedItems, AwsConfigError> {
    let mut found = Vec::new();
    let skip = shapes::find(v, &mut found, "$").map_err(|reason| AwsConfigError::Shape {
        path: source.to_string(),
        reason,
    })?;
    let mut out = LoadedItems::default();
    match skip {
        Some(Skip::Schema) => {
            out.skipped =
                Some("a resource property schema (documentation, not a configuration item)".into());
            return Ok(out);
        }
        Some(Skip::NoItem(why)) if found.is_empty() => {
            out.skipped = Some(why);
            return Ok(out);
        }
        _ => {}
    }
    for (i, f) in found.into_iter().enumerate() {
        match normalise(f, source, types) {
            Ok(item) => out.items.push(item),
            Err(e) => out.item_errors.push(format!("item {i}: {e}")),
        }
    }
    Ok(out)
}

/// A JSON object, or a JSON string holding one; anything else is kept as is.
fn decode_json_string(v: Value, field: &str) -> Result<Value, String> {
    match v {
        Value::String(s) => {
            let t = s.trim_start();
            // Deleted items carry the JSON text `null`.
            if t == "null" {
                Ok(Value::Object(Map::new()))
            } else if t.starts_with('{') || t.starts_with('[') {
                serde_json::from_str(&s)
                    .map_err(|e| format!("{field} is a string that is not valid JSON: {e}"))
            } else if t.is_empty() {
                Ok(Value::Object(Map::new()))
            } else {
                Err(format!("{field} is a string that is not JSON"))
            }
        }
        Value::Null => Ok(Value::Object(Map::new())),
        v => Ok(v),
    }
}

/// Tags arrive as a map, as `[{"key": k, "value": v}]`, or as null.
pub fn tags_to_map(v: &Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m.clone(),
        Value::Array(list) => list
            .iter()
            .filter_map(|t| {
                let k = t.get("key").or_else(|| t.get("Key"))?.as_str()?;
                let v = t
                    .get("value")
                    .or_else(|| t.get("Value"))
                    .cloned()
                    .unwrap_or(Value::Null);
                Some((k.to_string(), v))
            })
            .collect(),
        _ => Map::new(),
    }
}

/// S3 buckets carry their tags in a supplementary document, which is all a
/// BatchGetResourceConfig item has of them.
fn bucket_tags(supplementary: &Value) -> Option<Map<String, Value>> {
    let sets = supplementary
        .get("BucketTaggingConfiguration")?
        .get("tagSets")?
        .as_array()?;
    let mut tags = Map::new();
    for set in sets {
        tags.extend(tags_to_map(set.get("tags")?));
    }
    Some(tags)
}

/// Select outputs leave `resourceType` out when it was not selected: tell
/// it from the configuration's own fields.
fn infer_type(conf: &Value, resource_id: Option<&str>) -> Option<(&'static str, Option<String>)> {
    let has = |k: &str| conf.get(k).is_some();
    let s = |k: &str| conf.get(k).and_then(Value::as_str).map(str::to_string);
    if has("ipPermissions") || has("ipPermissionsEgress") {
        return Some(("AWS::EC2::SecurityGroup", s("groupId")));
    }
    if has("keyManager") || has("keyState") {
        return Some(("AWS::KMS::Key", s("keyId")));
    }
    if has("dbclusterArn") || has("dBClusterArn") || has("dbClusterArn") {
        return Some(("AWS::RDS::DBCluster", s("dbClusterResourceId")));
    }
    if has("RepositoryPolicyText") || has("ImageScanningConfiguration") {
        return Some(("AWS::ECR::Repository", s("RepositoryName")));
    }
    let arn = Arn::parse(resource_id?)?;
    match arn.service {
        "sns" => Some(("AWS::SNS::Topic", None)),
        "sqs" => Some(("AWS::SQS::Queue", None)),
        "elasticloadbalancing" => Some(("AWS::ElasticLoadBalancingV2::LoadBalancer", None)),
        _ => None,
    }
}

pub(crate) fn normalise(
    found: Found,
    source: &str,
    types: &TypeTable,
) -> Result<ObservedResource, String> {
    let (mut m, select, summary_only) = match found {
        Found::Item(m) => (m, false, false),
        Found::SelectRow(m) => (m, true, false),
        Found::Summary(m) => (m, false, true),
    };
    let mut configuration = decode_json_string(
        m.take(Field::Configuration).unwrap_or(Value::Null),
        "configuration",
    )?;
    let mut supplementary = decode_json_string(
        m.take(Field::Supplementary).unwrap_or(Value::Null),
        "supplementaryConfiguration",
    )?;
    // Supplementary values are often JSON documents written as strings
    // (AccessControlList, BucketPolicy.policyText stays a string on purpose:
    // it is compared as a policy by the detector).
    if let Value::Object(sm) = &mut supplementary {
        for (_, v) in sm.iter_mut() {
            if v.as_str().is_some_and(|s| s.trim_start().starts_with('{'))
                && let Ok(decoded) = serde_json::from_str::<Value>(v.as_str().unwrap_or_default())
            {
                *v = decoded;
            }
        }
    }
    // Secret-looking values (a Lambda function's `DB_PASSWORD` variable)
    // are hashed with the salt the Terraform loader uses, so they still
    // compare and are never kept.
    for document in [&mut configuration, &mut supplementary] {
        crate::secrets::hash_secret_values(document, crate::secrets::Salt::process());
    }
    let mut resource_id = m.take_text(&[Field::ResourceId]);
    let raw_type = m.text(&[Field::ResourceType]);
    let resource_type =
        match raw_type {
            Some(t) => types.canonical_config_type(t).to_string(),
            None => match infer_type(&configuration, resource_id.as_deref()) {
                Some((t, id)) => {
                    if resource_id.is_none() {
                        resource_id = id;
                    }
                    t.to_string()
                }
                None if select => return Err(
                    "select row without resourceType, and its type cannot be told from its columns"
                        .into(),
                ),
                None => return Err("no resourceType".into()),
            },
        };
    let resource_id = resource_id.ok_or("no resourceId")?;
    let arn = m.take_text(&[Field::Arn, Field::ArnUpper]);
    let parsed_arn = arn.as_deref().and_then(Arn::parse);
    let account = m
        .text(&[Field::AccountId, Field::AwsAccountId])
        .or(parsed_arn
            .as_ref()
            .map(|a| a.account)
            .filter(|a| a.bytes().all(|b| b.is_ascii_digit()) && !a.is_empty()))
        .unwrap_or(UNKNOWN)
        .to_string();
    let zone = m.text(&[Field::AvailabilityZone, Field::AvailibilityZone]);
    let region = m
        .text(&[Field::AwsRegion])
        .or(zone.and_then(region_of_zone))
        .or(parsed_arn
            .as_ref()
            .map(|a| a.region)
            .and_then(|r| region_of_zone(r).or(Some(r)))
            .filter(|r| !r.is_empty()))
        .unwrap_or(UNKNOWN)
        .to_string();
    let status = match m.text(&[Field::Status]) {
        Some(s) => ConfigStatus::parse(s)
            .ok_or_else(|| format!("configurationItemStatus {s:?} is not a known status"))?,
        None => ConfigStatus::Ok,
    };
    let captured_at = m.get(Field::CaptureTime).and_then(to_epoch_ms);
    let state_id = [Field::StateId, Field::StateIdUpper]
        .iter()
        .find_map(|f| match m.take(*f) {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        });
    let tags = match m.take(Field::Tags) {
        Some(Value::Object(t)) => t,
        Some(t) if !t.is_null() => tags_to_map(&t),
        _ => configuration
            .get("tags")
            .or_else(|| configuration.get("Tags"))
            .map(tags_to_map)
            .or_else(|| bucket_tags(&supplementary))
            .unwrap_or_default(),
    };
    Ok(ObservedResource {
        type_id: type_id(&resource_type, &resource_id),
        resource_key: resource_key(&account, &region, &resource_type, &resource_id),
        account,
        region,
        resource_name: m.take_text(&[Field::ResourceName]),
        arn,
        status,
        captured_at,
        configuration_state_id: state_id,
        configuration: if configuration.is_object() {
            configuration
        } else {
            Value::Object(Map::new())
        },
        supplementary_configuration: supplementary,
        tags: Value::Object(tags),
        relationships: m
            .take(Field::Relationships)
            .unwrap_or(Value::Array(Vec::new())),
        summary_only,
        resource_type,
        resource_id,
        source: source.to_string(),
    })
}

/// Publishes every configuration item in the configured files.
pub struct AwsConfigFileCollector {
    cfg: AwsConfigFileConfig,
}

impl AwsConfigFileCollector {
    pub fn new(cfg: AwsConfigFileConfig) -> Self {
        Self { cfg }
    }
}

impl Collector for AwsConfigFileCollector {
    fn name(&self) -> &'static str {
        "aws_config"
    }

    fn size_hint(&self) -> Option<u64> {
        Some(crate::total_size(&self.cfg.files))
    }

    /// Read once: a one-shot command's pass, every file on every core.
    fn interval(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    fn poll_once(&mut self, out: &dyn RecordSink, progress: ProgressFn<'_>) -> CollectReport {
        let mut report = CollectReport::default();
        let mut unreadable = Vec::new();
        let reads = stream_files(
            &self.cfg.files,
            out,
            Topic::Config,
            progress,
            &mut report,
            |path, chunks| {
                let kept = self.cfg.cut.as_ref().map(|c| c.kept_keys());
                read_file(path, &self.cfg.types, kept, &mut |o| {
                    chunks.push(Record::Observed(Box::new(o)))
                })
            },
        );
        for (path, read) in self.cfg.files.iter().zip(reads) {
            let source = path.display().to_string();
            match read {
                Ok(read) => {
                    if let Some(why) = read.skipped {
                        report.notes.push(format!("{source}: skipped: {why}"));
                    }
                    report
                        .errors
                        .extend(read.item_errors.into_iter().map(|reason| SourceError {
                            source: source.clone(),
                            reason,
                        }));
                }
                Err(e) => {
                    let e: SourceError = e.into();
                    unreadable.push(e.clone());
                    report.errors.push(e)
                }
            }
        }
        // A file with one bad item is still read; only unreadable ones are down.
        crate::publish_file_statuses(
            out,
            driftline_pipeline::SourceSide::Observed,
            &self.cfg.files,
            &unreadable,
        );
        crate::publish_dead_letters(out, &report.errors);
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_configuration_values_are_hashed() {
        let item = br#"{"configurationItems":[{"resourceType":"AWS::Lambda::Function",
            "resourceId":"f","awsRegion":"eu-west-1","accountId":"123456789012",
            "configuration":{"functionName":"f","environment":{"variables":
                {"DB_PASSWORD":"hunter2","STAGE":"prod"}},
                "secretArn":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:s"},
            "supplementaryConfiguration":{"Settings":"{\"clientSecret\":\"abc123\"}"}}]}"#;
        let loaded = load_bytes(item, "items.json", &TypeTable::default()).unwrap();
        let o = &loaded.items[0];
        let text = format!("{} {}", o.configuration, o.supplementary_configuration);
        for secret in ["hunter2", "abc123"] {
            assert!(!text.contains(secret), "{secret} kept: {text}");
        }
        let variables = &o.configuration["environment"]["variables"];
        assert_eq!(
            variables["DB_PASSWORD"],
            crate::secrets::Salt::process().hash(&Value::from("hunter2")),
            "hashed as the Terraform loader hashes, so the two still compare"
        );
        assert_eq!(variables["STAGE"], "prod");
        assert!(
            o.configuration["secretArn"]
                .as_str()
                .unwrap()
                .starts_with("arn:")
        );
    }
}
