//! An item read with only the kept keys of its documents (`KeptKeys`): the
//! rest of its configuration is skipped as it is read, never built as a
//! tree. What is kept reads exactly as a whole item would.

use driftline_pipeline::kept_keys::Keys;
use driftline_pipeline::{KeptKeys, TypeTable};
use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::kept_object::{KeptObject, any_other_value};

/// How items are cut: the keys kept, and the type table that spells an
/// item's type as the keys are kept.
#[derive(Clone, Copy)]
pub(super) struct ItemCut<'a> {
    pub(super) kept: &'a KeptKeys,
    pub(super) types: &'a TypeTable,
}

/// Keys `normalise` reads besides the compared ones: an item without its
/// own tags takes them from its configuration, or from S3's tagging.
const CONFIGURATION_READ: &[&str] = &["tags", "Tags"];
const SUPPLEMENTARY_READ: &[&str] = &["BucketTaggingConfiguration"];

impl ItemCut<'_> {
    /// The keys kept of `document` in an item of `resource_type`.
    fn keys(&self, document: &str, resource_type: &str) -> DocumentKeys<'_> {
        let t = self.types.canonical_config_type(resource_type);
        match document {
            "configuration" => DocumentKeys(self.kept.configuration(t), CONFIGURATION_READ),
            _ => DocumentKeys(self.kept.supplementary(t), SUPPLEMENTARY_READ),
        }
    }
}

/// The keys kept of one document: the compared ones and those `normalise`
/// reads.
#[derive(Clone, Copy)]
struct DocumentKeys<'a>(Keys<'a>, &'static [&'static str]);

impl DocumentKeys<'_> {
    fn contains(&self, key: &str) -> bool {
        self.0.contains(key) || self.1.contains(&key)
    }

    /// The document read with only these keys.
    fn seed(self) -> KeptObject<impl Fn(&str) -> bool> {
        KeptObject(move |k: &str| self.contains(k))
    }
}

/// The documents cut, as `normalise` takes them from the item.
const DOCUMENTS: &[&str] = &["configuration", "supplementaryConfiguration"];

/// One element of a `configurationItems` array: an item object with its
/// documents cut, anything else as the `Value` it is (for `shapes::find`).
pub(super) struct Element<'a>(pub(super) ItemCut<'a>);

impl<'de> DeserializeSeed<'de> for Element<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Element<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a configuration item")
    }

    any_other_value!();

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut item = Map::new();
        // Documents read before the item's type, as written, until it is known.
        let mut held: Vec<(String, Box<RawValue>)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "relationships" {
                // The comparison never reads them.
                map.next_value::<IgnoredAny>()?;
                item.remove(&key);
                continue;
            }
            if !DOCUMENTS.contains(&key.as_str()) {
                let v: Value = map.next_value()?;
                item.insert(key, v);
                continue;
            }
            held.retain(|(k, _)| *k != key);
            match resource_type(&item) {
                Some(t) => {
                    let v = map.next_value_seed(self.0.keys(&key, t).seed())?;
                    item.insert(key, v);
                }
                None => {
                    item.remove(&key);
                    held.push((key, map.next_value()?));
                }
            }
        }
        for (key, raw) in held {
            let text = &mut serde_json::Deserializer::from_str(raw.get());
            let v = match resource_type(&item) {
                Some(t) => self.0.keys(&key, t).seed().deserialize(text),
                // Without a type, `normalise` tells it from the whole document.
                None => Value::deserialize(text),
            };
            item.insert(key, v.map_err(de::Error::custom)?);
        }
        Ok(Value::Object(item))
    }
}

fn resource_type(item: &Map<String, Value>) -> Option<&str> {
    item.get("resourceType").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftline_pipeline::TypeIdentity;

    fn cut(text: &str) -> Value {
        let mut kept = KeptKeys::default();
        kept.keep_configuration("AWS::S3::Bucket", "name");
        kept.keep_supplementary("AWS::S3::Bucket", "BucketPolicy");
        let types = TypeTable::new([TypeIdentity {
            tf_type: "aws_s3_bucket".into(),
            config_type: "AWS::S3::Bucket".into(),
            id_attribute: "bucket".into(),
            global: false,
        }]);
        let cut = ItemCut {
            kept: &kept,
            types: &types,
        };
        Element(cut)
            .deserialize(&mut serde_json::Deserializer::from_str(text))
            .unwrap()
    }

    #[test]
    fn an_item_keeps_only_its_kept_and_read_keys_whatever_the_order() {
        let conf = r#"{"name":"b","owner":{"id":"x"},"tags":[{"key":"k","value":"v"}]}"#;
        let supp = r#"{"BucketPolicy":{"policyText":"{}"},"BucketLoggingConfiguration":{},"BucketTaggingConfiguration":{"tagSets":[]}}"#;
        let want = serde_json::json!({
            "name": "b", "tags": [{"key": "k", "value": "v"}],
        });
        let want_supp = serde_json::json!({
            "BucketPolicy": {"policyText": "{}"}, "BucketTaggingConfiguration": {"tagSets": []},
        });
        // The type before the documents, and after them (held as written).
        for text in [
            format!(
                r#"{{"resourceType":"AWS::S3::Bucket","configuration":{conf},"supplementaryConfiguration":{supp},"relationships":[{{"x":1}}]}}"#
            ),
            format!(
                r#"{{"configuration":{conf},"relationships":[],"supplementaryConfiguration":{supp},"resourceType":"aws::s3::bucket"}}"#
            ),
        ] {
            let item = cut(&text);
            assert_eq!(item["configuration"], want, "{text}");
            assert_eq!(item["supplementaryConfiguration"], want_supp, "{text}");
            assert!(item.get("relationships").is_none(), "{text}");
        }
    }

    #[test]
    fn what_cannot_be_cut_is_read_whole() {
        // No type: the whole document, for `normalise` to tell it from.
        let item = cut(r#"{"configuration":{"name":"b","owner":{"id":"x"}}}"#);
        assert_eq!(item["configuration"]["owner"]["id"], "x");
        // A configuration written as a JSON string stays the string.
        let item = cut(r#"{"resourceType":"AWS::S3::Bucket","configuration":"{\"owner\":1}"}"#);
        assert_eq!(item["configuration"], "{\"owner\":1}");
        // A type nobody compares keeps only what `normalise` reads.
        let item = cut(
            r#"{"resourceType":"AWS::EC2::VPC","configuration":{"cidrBlock":"10.0.0.0/16","tags":[]}}"#,
        );
        assert_eq!(item["configuration"], serde_json::json!({"tags": []}));
        // Anything else is the value it is.
        assert_eq!(cut(r#""text""#), Value::String("text".into()));
        assert_eq!(cut("[1,null]"), serde_json::json!([1, null]));
    }
}
