//! An item read with only the kept keys of its documents (`KeptKeys`): the
//! rest of its configuration is skipped as it is read, never built as a
//! tree. What is kept reads exactly as a whole item would.

use driftline_pipeline::kept_keys::Keys;
use driftline_pipeline::{KeptKeys, TypeTable};
use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::item::{Field, Item, Key, KeySeed};
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
    /// The keys kept of `document` in `item`, whose type is `resource_type`.
    fn keys(&self, document: Field, resource_type: &str, item: &Item) -> DocumentKeys<'_> {
        let t = self.types.canonical_config_type(resource_type);
        // An item that has its own tags (any but null) is never read for
        // them elsewhere: a configuration's list of tags was a fifth of
        // what an EC2 item kept, to be dropped unread.
        let own_tags = item.get(Field::Tags).is_some_and(|t| !t.is_null());
        let read = |r| if own_tags { &[][..] } else { r };
        match document {
            Field::Configuration => {
                DocumentKeys(self.kept.configuration(t), read(CONFIGURATION_READ))
            }
            _ => DocumentKeys(self.kept.supplementary(t), read(SUPPLEMENTARY_READ)),
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

/// One element of a `configurationItems` array, as read.
pub(super) enum Read {
    /// An object, its keys sorted into an item's slots.
    Item(Box<Item>),
    /// Anything else, as the value it is (for `shapes::find`).
    Other(Value),
}

/// Reads one element of a `configurationItems` array: an object straight
/// into an `Item`, its documents cut when there is a cut (`None`: kept
/// whole, relationships too).
pub(super) struct Element<'a>(pub(super) Option<ItemCut<'a>>);

impl<'de> DeserializeSeed<'de> for Element<'_> {
    type Value = Read;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Read, D::Error> {
        d.deserialize_any(self)
    }
}

/// The visitor methods of every kind but an object, as `Read::Other`.
macro_rules! other_value {
    ($($name:ident($($arg:ident: $t:ty)?)),*) => {$(
        fn $name<E: de::Error>(self $(, $arg: $t)?) -> Result<Read, E> {
            AnyValue.$name($($arg)?).map(Read::Other)
        }
    )*};
}

/// `serde_json::Value`'s own visitor, for the kinds that are not objects.
struct AnyValue;

impl<'de> Visitor<'de> for AnyValue {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    any_other_value!();
}

impl<'de> Visitor<'de> for Element<'_> {
    type Value = Read;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a configuration item")
    }

    other_value!(
        visit_bool(b: bool),
        visit_i64(n: i64),
        visit_u64(n: u64),
        visit_f64(n: f64),
        visit_str(s: &str),
        visit_string(s: String),
        visit_unit()
    );

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Read, A::Error> {
        AnyValue.visit_seq(seq).map(Read::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Read, A::Error> {
        let mut item = Item::default();
        let Some(cut) = self.0 else {
            while let Some(key) = map.next_key_seed(KeySeed)? {
                item.insert_named(key, map.next_value()?);
            }
            return Ok(Read::Item(Box::new(item)));
        };
        // Documents read before the item's type, as written, until it is known.
        let mut held: Vec<(Field, Box<RawValue>)> = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let document = match key {
                Key::Field(Field::Relationships) => {
                    // The comparison never reads them.
                    map.next_value::<IgnoredAny>()?;
                    item.take(Field::Relationships);
                    continue;
                }
                Key::Field(f @ (Field::Configuration | Field::Supplementary)) => f,
                key => {
                    item.insert_named(key, map.next_value()?);
                    continue;
                }
            };
            held.retain(|(f, _)| *f != document);
            match resource_type(&item) {
                Some(t) => {
                    let v = map.next_value_seed(cut.keys(document, t, &item).seed())?;
                    item.set(document, v);
                }
                None => {
                    item.take(document);
                    held.push((document, map.next_value()?));
                }
            }
        }
        for (document, raw) in held {
            let text = &mut serde_json::Deserializer::from_str(raw.get());
            let v = match resource_type(&item) {
                Some(t) => cut.keys(document, t, &item).seed().deserialize(text),
                // Without a type, `normalise` tells it from the whole document.
                None => Value::deserialize(text),
            };
            item.set(document, v.map_err(de::Error::custom)?);
        }
        Ok(Read::Item(Box::new(item)))
    }
}

fn resource_type(item: &Item) -> Option<&str> {
    item.get(Field::ResourceType).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(text: &str) -> Value {
        let mut kept = KeptKeys::default();
        kept.keep_configuration("AWS::S3::Bucket", "name");
        kept.keep_supplementary("AWS::S3::Bucket", "BucketPolicy");
        let types = crate::s3_bucket_types();
        let cut = ItemCut {
            kept: &kept,
            types: &types,
        };
        as_value(Element(Some(cut)).deserialize(&mut serde_json::Deserializer::from_str(text)))
    }

    fn as_value(read: Result<Read, serde_json::Error>) -> Value {
        match read.unwrap() {
            Read::Item(item) => Value::Object((*item).into()),
            Read::Other(v) => v,
        }
    }

    #[test]
    fn without_a_cut_an_item_is_read_whole() {
        let text = r#"{"version":"1.3","resourceType":"AWS::S3::Bucket","configuration":{"name":"b","owner":{"id":"x"}},"relationships":[{"x":1}],"Type":"t"}"#;
        let read =
            as_value(Element(None).deserialize(&mut serde_json::Deserializer::from_str(text)));
        assert_eq!(read, serde_json::from_str::<Value>(text).unwrap());
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
    fn an_item_with_its_own_tags_keeps_none_of_its_documents_tags() {
        let conf = r#"{"name":"b","tags":[{"key":"k","value":"v"}]}"#;
        let supp =
            r#"{"BucketPolicy":{"policyText":"{}"},"BucketTaggingConfiguration":{"tagSets":[]}}"#;
        let before = cut(&format!(
            r#"{{"resourceType":"AWS::S3::Bucket","tags":{{"k":"v"}},"configuration":{conf},"supplementaryConfiguration":{supp}}}"#
        ));
        assert_eq!(before["configuration"], serde_json::json!({"name": "b"}));
        assert_eq!(
            before["supplementaryConfiguration"],
            serde_json::json!({"BucketPolicy": {"policyText": "{}"}})
        );
        // Tags written after a document read at once, or null: its tags are
        // kept. A document held until the type is known is cut knowing all.
        for (text, kept) in [
            (
                format!(
                    r#"{{"resourceType":"AWS::S3::Bucket","configuration":{conf},"tags":{{"k":"v"}}}}"#
                ),
                true,
            ),
            (
                format!(
                    r#"{{"resourceType":"AWS::S3::Bucket","tags":null,"configuration":{conf}}}"#
                ),
                true,
            ),
            (
                format!(
                    r#"{{"configuration":{conf},"tags":{{"k":"v"}},"resourceType":"AWS::S3::Bucket"}}"#
                ),
                false,
            ),
        ] {
            assert_eq!(
                cut(&text)["configuration"].get("tags").is_some(),
                kept,
                "{text}"
            );
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
