//! A configuration item as `normalise` reads it: the fields it reads in a
//! fixed slot each, the rest kept by name. A snapshot's items are read
//! straight into it (`cut::Element`); a map found whole (`shapes`) is
//! sorted into it. It was a `Map` before: a million items each built,
//! searched and dropped a tree of fifteen keys, a tenth of a scan.

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};
use serde_json::{Map, Value};

/// The fields `normalise` reads, under every name AWS Config writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    ResourceType,
    ResourceId,
    Arn,
    ArnUpper,
    AccountId,
    AwsAccountId,
    AwsRegion,
    AvailabilityZone,
    /// The misspelling some AWS Config history files carry.
    AvailibilityZone,
    Status,
    CaptureTime,
    StateId,
    StateIdUpper,
    Tags,
    ResourceName,
    Relationships,
    Configuration,
    Supplementary,
}

const FIELDS: usize = 18;

/// Each field's name as written, in `Field`'s order.
const NAMES: [&str; FIELDS] = [
    "resourceType",
    "resourceId",
    "arn",
    "ARN",
    "accountId",
    "awsAccountId",
    "awsRegion",
    "availabilityZone",
    "availibilityZone",
    "configurationItemStatus",
    "configurationItemCaptureTime",
    "configurationStateId",
    "configurationStateID",
    "tags",
    "resourceName",
    "relationships",
    "configuration",
    "supplementaryConfiguration",
];

const ALL: [Field; FIELDS] = [
    Field::ResourceType,
    Field::ResourceId,
    Field::Arn,
    Field::ArnUpper,
    Field::AccountId,
    Field::AwsAccountId,
    Field::AwsRegion,
    Field::AvailabilityZone,
    Field::AvailibilityZone,
    Field::Status,
    Field::CaptureTime,
    Field::StateId,
    Field::StateIdUpper,
    Field::Tags,
    Field::ResourceName,
    Field::Relationships,
    Field::Configuration,
    Field::Supplementary,
];

impl Field {
    /// The field `name` names. A `match`, not a search of `NAMES`: every
    /// key of a million items passes through here.
    pub fn named(name: &str) -> Option<Field> {
        Some(match name {
            "resourceType" => Field::ResourceType,
            "resourceId" => Field::ResourceId,
            "arn" => Field::Arn,
            "ARN" => Field::ArnUpper,
            "accountId" => Field::AccountId,
            "awsAccountId" => Field::AwsAccountId,
            "awsRegion" => Field::AwsRegion,
            "availabilityZone" => Field::AvailabilityZone,
            "availibilityZone" => Field::AvailibilityZone,
            "configurationItemStatus" => Field::Status,
            "configurationItemCaptureTime" => Field::CaptureTime,
            "configurationStateId" => Field::StateId,
            "configurationStateID" => Field::StateIdUpper,
            "tags" => Field::Tags,
            "resourceName" => Field::ResourceName,
            "relationships" => Field::Relationships,
            "configuration" => Field::Configuration,
            "supplementaryConfiguration" => Field::Supplementary,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        NAMES[self as usize]
    }
}

/// One item: its read fields in slots, every other key as written.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Item {
    fields: [Option<Value>; FIELDS],
    other: Vec<(String, Value)>,
}

impl Item {
    pub fn get(&self, f: Field) -> Option<&Value> {
        self.fields[f as usize].as_ref()
    }

    pub fn take(&mut self, f: Field) -> Option<Value> {
        self.fields[f as usize].take()
    }

    pub fn set(&mut self, f: Field, v: Value) {
        self.fields[f as usize] = Some(v);
    }

    /// Sets a key by name; a later one of the same name wins, as in a map.
    pub fn insert(&mut self, key: String, v: Value) {
        match Field::named(&key) {
            Some(f) => self.set(f, v),
            None => self.other.push((key, v)),
        }
    }

    /// Sets a key whose name was told already.
    pub fn insert_named(&mut self, key: Key, v: Value) {
        match key {
            Key::Field(f) => self.set(f, v),
            Key::Other(k) => self.other.push((k, v)),
        }
    }

    /// The text of the first of `fields` written as a string, unless it is
    /// empty.
    pub fn text(&self, fields: &[Field]) -> Option<&str> {
        fields
            .iter()
            .find_map(|f| self.get(*f).and_then(Value::as_str))
            .filter(|s| !s.is_empty())
    }

    /// `text`, taken out of the item rather than copied.
    pub fn take_text(&mut self, fields: &[Field]) -> Option<String> {
        let f = fields
            .iter()
            .find(|f| self.get(**f).is_some_and(Value::is_string))?;
        match self.take(*f) {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    /// Whether a key `shapes` reads is among the others: the object may be
    /// an envelope, a list of items or a schema rather than an item.
    pub fn has_shape_keys(&self) -> bool {
        self.other
            .iter()
            .any(|(k, _)| SHAPE_KEYS.contains(&k.as_str()) || k.starts_with("configuration."))
    }

    /// Whether the item names its type, its id or its configuration, which
    /// makes an object an item (`shapes::find_in_object`).
    pub fn names_a_resource(&self) -> bool {
        [Field::ResourceType, Field::ResourceId, Field::Configuration]
            .iter()
            .any(|f| self.get(*f).is_some())
    }
}

/// Keys other than an item's own that `shapes` tells a document's kind by.
const SHAPE_KEYS: &[&str] = &[
    "Message",
    "TopicArn",
    "Type",
    "detail",
    "detail-type",
    "invokingEvent",
    "data",
    "status_code",
    "configurationItems",
    "baseConfigurationItems",
    "Results",
    "configurationItem",
    "configurationItemSummary",
    "messageType",
];

impl From<Map<String, Value>> for Item {
    fn from(m: Map<String, Value>) -> Self {
        let mut item = Item::default();
        for (k, v) in m {
            item.insert(k, v);
        }
        item
    }
}

impl From<Item> for Map<String, Value> {
    fn from(item: Item) -> Self {
        let named = ALL
            .iter()
            .zip(item.fields)
            .filter_map(|(f, v)| Some((f.name().to_string(), v?)));
        named.chain(item.other).collect()
    }
}

/// A key of an item object, told from its text without copying it when it
/// names a field.
pub enum Key {
    Field(Field),
    Other(String),
}

/// Reads a `Key`.
pub struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
        Ok(match Field::named(s) {
            Some(f) => Key::Field(f),
            None => Key::Other(s.to_string()),
        })
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Key, E> {
        Ok(match Field::named(&s) {
            Some(f) => Key::Field(f),
            None => Key::Other(s),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_named_once_in_its_own_slot() {
        for (i, f) in ALL.iter().enumerate() {
            assert_eq!(*f as usize, i);
            assert_eq!(Field::named(f.name()), Some(*f));
        }
        let mut names = NAMES.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FIELDS);
    }

    #[test]
    fn an_item_reads_and_writes_back_as_the_map_it_came_from() {
        let m = serde_json::json!({
            "resourceType": "AWS::S3::Bucket", "ARN": "arn:x", "version": "1.3",
            "configuration": {"a": 1}, "configuration.b": "string",
        });
        let Value::Object(m) = m else { unreachable!() };
        let item = Item::from(m.clone());
        assert!(item.other.iter().any(|(k, v)| k == "version" && v == "1.3"));
        assert_eq!(item.text(&[Field::Arn, Field::ArnUpper]), Some("arn:x"));
        assert!(item.has_shape_keys() && item.names_a_resource());
        assert_eq!(Map::from(item), m);
    }

    #[test]
    fn text_is_the_first_string_field_and_nothing_when_it_is_empty() {
        let mut item = Item::default();
        item.set(Field::Arn, Value::from(""));
        item.set(Field::ArnUpper, Value::from("arn:x"));
        // The first field written as a string decides, even when empty.
        assert_eq!(item.text(&[Field::Arn, Field::ArnUpper]), None);
        assert_eq!(item.take_text(&[Field::Arn, Field::ArnUpper]), None);
        item.set(Field::StateId, Value::from(3));
        item.set(Field::StateIdUpper, Value::from("s"));
        assert_eq!(item.text(&[Field::StateId, Field::StateIdUpper]), Some("s"));
        assert_eq!(
            item.take_text(&[Field::StateId, Field::StateIdUpper]),
            Some("s".into())
        );
        assert!(item.get(Field::StateIdUpper).is_none());
    }
}
