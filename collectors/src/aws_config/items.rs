//! AWS Config items from the SDK's types into the JSON shape AWS Config
//! writes (so one loader reads API answers and delivered files alike), and
//! what decides that an item changed.

use std::collections::HashMap;

use aws_sdk_config::primitives::DateTime;
use aws_sdk_config::types::{BaseConfigurationItem, ConfigurationItem};
use serde_json::{Map, Value, json};

pub(super) fn item_name(m: &Map<String, Value>) -> String {
    let g = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
    format!("{}/{}", g("resourceType"), g("resourceId"))
}

/// What decides "changed": everything but the bookkeeping fields that
/// change on every read (state id, MD5) in some implementations.
pub(super) fn content_hash(m: &Map<String, Value>) -> u64 {
    let content: Vec<Option<&Value>> = [
        "configuration",
        "supplementaryConfiguration",
        "configurationItemStatus",
        "tags",
        "relationships",
        "arn",
        "resourceName",
    ]
    .iter()
    .map(|k| m.get(*k))
    .collect();
    crate::content_hash(&content)
}

fn epoch(t: Option<&DateTime>) -> Value {
    t.and_then(|d| d.to_millis().ok())
        .map(|ms| json!(ms as f64 / 1000.0))
        .unwrap_or(Value::Null)
}

/// The fields BatchGet and history items share, in the JSON shape AWS
/// Config writes, so the one loader (`normalise`) reads both. (The SDK's two
/// item types have the same accessors but no common trait.)
macro_rules! common_item_json {
    ($i:expr) => {{
        let i = $i;
        let mut m = Map::new();
        for (k, v) in [
            ("version", i.version()),
            ("accountId", i.account_id()),
            ("configurationStateId", i.configuration_state_id()),
            ("arn", i.arn()),
            ("resourceType", i.resource_type().map(|t| t.as_str())),
            ("resourceId", i.resource_id()),
            ("resourceName", i.resource_name()),
            ("awsRegion", i.aws_region()),
            ("availabilityZone", i.availability_zone()),
            ("configuration", i.configuration()),
            (
                "configurationItemStatus",
                i.configuration_item_status().map(|s| s.as_str()),
            ),
        ] {
            if let Some(v) = v {
                m.insert(k.to_string(), Value::String(v.to_string()));
            }
        }
        m.insert(
            "configurationItemCaptureTime".into(),
            epoch(i.configuration_item_capture_time()),
        );
        m.insert(
            "resourceCreationTime".into(),
            epoch(i.resource_creation_time()),
        );
        if let Some(s) = i.supplementary_configuration() {
            m.insert("supplementaryConfiguration".into(), sorted_map(s));
        }
        m
    }};
}

fn sorted_map(m: &HashMap<String, String>) -> Value {
    json!(m.iter().collect::<std::collections::BTreeMap<_, _>>())
}

pub(super) fn base_item_json(i: &BaseConfigurationItem) -> Map<String, Value> {
    common_item_json!(i)
}

/// A history item: the full one, with tags and relationships too.
pub(super) fn history_item_json(i: &ConfigurationItem) -> Map<String, Value> {
    let mut m = common_item_json!(i);
    if let Some(tags) = i.tags() {
        m.insert("tags".into(), sorted_map(tags));
    }
    let rels: Vec<Value> = i
        .relationships()
        .iter()
        .map(|r| {
            json!({
                "resourceType": r.resource_type().map(|t| t.as_str()),
                "resourceId": r.resource_id(),
                "resourceName": r.resource_name(),
                "name": r.relationship_name(),
            })
        })
        .collect();
    m.insert("relationships".into(), Value::Array(rels));
    m
}
