//! One element of a format 4 state's `resources`, read whole or with only
//! the kept attributes of its instances (a scan's `ComparisonCut`): the
//! rest of each instance's attributes is then skipped as it is read, never
//! built as a tree. Terraform writes a resource's `type` before its
//! `instances`; a resource written otherwise is read whole, and cut after
//! (`declare`).

use std::collections::BTreeMap;

use driftline_pipeline::{KeptKeys, TypeTable};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::kept_object::KeptObject;

#[derive(Deserialize)]
pub(super) struct ResourceV4 {
    pub(super) module: Option<String>,
    pub(super) mode: String,
    #[serde(rename = "type")]
    pub(super) tf_type: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) provider: String,
    #[serde(default)]
    pub(super) instances: Vec<InstanceV4>,
}

#[derive(Deserialize)]
pub(super) struct InstanceV4 {
    pub(super) index_key: Option<Value>,
    pub(super) status: Option<String>,
    pub(super) deposed: Option<String>,
    pub(super) attributes: Option<Value>,
    /// Set where `attributes` was read cut (`Instance`).
    #[serde(skip)]
    pub(super) attributes_cut: bool,
    pub(super) attributes_flat: Option<BTreeMap<String, Value>>,
    pub(super) sensitive_attributes: Option<Value>,
    pub(super) identity: Option<Value>,
}

/// The attributes `declare` and `resolve_identity` (`super`) read,
/// besides the type's id attribute.
const IDENTITY_READ: &[&str] = &["id", "arn", "owner_id", "region", "availability_zone"];

/// Which attributes an instance keeps: what the comparison reads, and what
/// tells the instance's identity.
#[derive(Clone, Copy)]
pub(super) struct AttributeCut<'a> {
    pub(super) kept: &'a KeptKeys,
    pub(super) types: &'a TypeTable,
}

impl<'a> AttributeCut<'a> {
    /// Whether an instance of `tf_type` keeps an attribute.
    pub(super) fn keeps(self, tf_type: &str) -> impl Fn(&str) -> bool + Copy + use<'a> {
        let compared = self.kept.attributes(tf_type);
        let id_attribute = self
            .types
            .by_tf_type(tf_type)
            .map(|t| t.id_attribute.as_str());
        move |key: &str| {
            compared.contains(key) || IDENTITY_READ.contains(&key) || Some(key) == id_attribute
        }
    }
}

/// One element of `resources`: with a cut, its instances' attributes keep
/// only what the cut keeps once its type is known.
#[derive(Clone, Copy)]
pub(super) struct Resource<'a>(pub(super) Option<AttributeCut<'a>>);

impl<'de> DeserializeSeed<'de> for Resource<'_> {
    type Value = ResourceV4;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ResourceV4, D::Error> {
        match self.0 {
            Some(cut) => d.deserialize_struct("ResourceV4", RESOURCE_FIELDS, CutResource(cut)),
            None => ResourceV4::deserialize(d),
        }
    }
}

const RESOURCE_FIELDS: &[&str] = &["module", "mode", "type", "name", "provider", "instances"];

#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum ResourceField {
    Module,
    Mode,
    Type,
    Name,
    Provider,
    Instances,
    #[serde(other)]
    Other,
}

/// Reads a resource object as `ResourceV4`'s derived reader does (the
/// same errors, written by the same calls), cutting the instances. (The
/// derived reader would also take a resource or instance written as an
/// array of its fields in order; no state is written so.)
struct CutResource<'a>(AttributeCut<'a>);

/// Reads a field once, as a derived reader does: a second one is refused
/// before its value is read.
fn once<T, E: de::Error>(
    slot: &mut Option<T>,
    field: &'static str,
    read: impl FnOnce() -> Result<T, E>,
) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(field));
    }
    *slot = Some(read()?);
    Ok(())
}

impl<'de> Visitor<'de> for CutResource<'_> {
    type Value = ResourceV4;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("struct ResourceV4")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ResourceV4, A::Error> {
        let (mut module, mut mode, mut tf_type, mut name) = (None, None, None, None);
        let (mut provider, mut instances) = (None, None);
        while let Some(field) = map.next_key::<ResourceField>()? {
            match field {
                ResourceField::Module => once(&mut module, "module", || map.next_value())?,
                ResourceField::Mode => once(&mut mode, "mode", || map.next_value())?,
                ResourceField::Type => once(&mut tf_type, "type", || map.next_value::<String>())?,
                ResourceField::Name => once(&mut name, "name", || map.next_value())?,
                ResourceField::Provider => once(&mut provider, "provider", || map.next_value())?,
                ResourceField::Instances => once(&mut instances, "instances", || match &tf_type {
                    Some(t) => map.next_value_seed(Instances(self.0.keeps(t))),
                    None => map.next_value(),
                })?,
                ResourceField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ResourceV4 {
            module: module.flatten(),
            mode: mode.ok_or_else(|| de::Error::missing_field("mode"))?,
            tf_type: tf_type.ok_or_else(|| de::Error::missing_field("type"))?,
            name: name.ok_or_else(|| de::Error::missing_field("name"))?,
            provider: provider.unwrap_or_default(),
            instances: instances.unwrap_or_default(),
        })
    }
}

/// `instances`, each instance's attributes cut by `F`.
struct Instances<F>(F);

impl<'de, F: Fn(&str) -> bool + Copy> DeserializeSeed<'de> for Instances<F> {
    type Value = Vec<InstanceV4>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: Fn(&str) -> bool + Copy> Visitor<'de> for Instances<F> {
    type Value = Vec<InstanceV4>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(i) = seq.next_element_seed(Instance(self.0))? {
            out.push(i);
        }
        Ok(out)
    }
}

const INSTANCE_FIELDS: &[&str] = &[
    "index_key",
    "status",
    "deposed",
    "attributes",
    "attributes_flat",
    "sensitive_attributes",
    "identity",
];

#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum InstanceField {
    IndexKey,
    Status,
    Deposed,
    Attributes,
    AttributesFlat,
    SensitiveAttributes,
    Identity,
    #[serde(other)]
    Other,
}

/// One instance, read as `InstanceV4`'s derived reader does, its
/// attributes cut by `F`.
struct Instance<F>(F);

impl<'de, F: Fn(&str) -> bool + Copy> DeserializeSeed<'de> for Instance<F> {
    type Value = InstanceV4;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<InstanceV4, D::Error> {
        d.deserialize_struct("InstanceV4", INSTANCE_FIELDS, self)
    }
}

impl<'de, F: Fn(&str) -> bool + Copy> Visitor<'de> for Instance<F> {
    type Value = InstanceV4;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("struct InstanceV4")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<InstanceV4, A::Error> {
        let (mut index_key, mut status, mut deposed) = (None, None, None);
        let (mut attributes, mut attributes_flat) = (None, None);
        let (mut sensitive_attributes, mut identity) = (None, None);
        while let Some(field) = map.next_key::<InstanceField>()? {
            match field {
                InstanceField::IndexKey => once(&mut index_key, "index_key", || map.next_value())?,
                InstanceField::Status => once(&mut status, "status", || map.next_value())?,
                InstanceField::Deposed => once(&mut deposed, "deposed", || map.next_value())?,
                InstanceField::Attributes => once(&mut attributes, "attributes", || {
                    // `null` reads as absent, as an `Option` does.
                    let v = map.next_value_seed(KeptObject(self.0))?;
                    Ok(Some(v).filter(|v| !v.is_null()))
                })?,
                InstanceField::AttributesFlat => {
                    once(&mut attributes_flat, "attributes_flat", || {
                        map.next_value::<Option<BTreeMap<String, Value>>>()
                    })?
                }
                InstanceField::SensitiveAttributes => {
                    once(&mut sensitive_attributes, "sensitive_attributes", || {
                        map.next_value()
                    })?
                }
                InstanceField::Identity => once(&mut identity, "identity", || map.next_value())?,
                InstanceField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(InstanceV4 {
            index_key: index_key.flatten(),
            status: status.flatten(),
            deposed: deposed.flatten(),
            attributes: attributes.flatten(),
            attributes_cut: true,
            attributes_flat: attributes_flat.flatten(),
            sensitive_attributes: sensitive_attributes.flatten(),
            identity: identity.flatten(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resource read with `while_reading`, its instances' attributes cut
    /// after as `declare` cuts them, in a form to compare; or the error.
    fn read(
        text: &str,
        while_reading: Option<AttributeCut>,
        after: AttributeCut,
    ) -> Result<String, String> {
        let r = Resource(while_reading)
            .deserialize(&mut serde_json::Deserializer::from_str(text))
            .map_err(|e| e.to_string())?;
        let keeps = after.keeps(&r.tf_type);
        let instances: Vec<Value> = r
            .instances
            .into_iter()
            .map(|i| {
                let mut attributes = i.attributes;
                if let Some(Value::Object(m)) = &mut attributes {
                    m.retain(|k, _| keeps(k));
                }
                let flat = i.attributes_flat.map(|f| f.into_iter().collect::<Vec<_>>());
                serde_json::json!([
                    i.index_key,
                    i.status,
                    i.deposed,
                    attributes,
                    flat,
                    i.sensitive_attributes,
                    i.identity
                ])
            })
            .collect();
        Ok(format!(
            "{:?} {} {} {} {} {instances:?}",
            r.module, r.mode, r.tf_type, r.name, r.provider
        ))
    }

    #[test]
    fn a_resource_cut_while_read_reads_as_one_cut_after_errors_included() {
        let mut kept = KeptKeys::default();
        kept.keep_attribute("aws_s3_bucket", "tags");
        let types = crate::s3_bucket_types();
        let cut = AttributeCut {
            kept: &kept,
            types: &types,
        };
        let bucket = r#"{"bucket":"b","id":"b","acl":{"x":[1]},"tags":{"t":"1"},"arn":"a","tags":{"t":"2"}}"#;
        let texts = [
            // Terraform's order, and the type after the instances.
            format!(
                r#"{{"module":"module.m","mode":"managed","type":"aws_s3_bucket","name":"b","provider":"p","instances":[{{"schema_version":0,"attributes":{bucket},"sensitive_attributes":[],"index_key":"k"}},{{"attributes":null,"attributes_flat":{{"id":"x"}},"status":"tainted"}}]}}"#
            ),
            format!(
                r#"{{"instances":[{{"attributes":{bucket}}}],"mode":"managed","type":"aws_s3_bucket","name":"b"}}"#
            ),
            // A type nothing compares keeps what tells its identity.
            r#"{"mode":"data","type":"aws_vpc","name":"v","instances":[{"attributes":{"id":"v","cidr_block":"10.0.0.0/16"}},{"attributes":"text"}]}"#.into(),
            r#"{"mode":"managed","type":"t","name":"n","module":null}"#.into(),
            // Errors: duplicate, missing and mistyped fields.
            r#"{"mode":"managed","type":"t","type":"u","name":"n"}"#.into(),
            r#"{"mode":"managed","type":"t","name":"n","instances":[{"attributes":{},"attributes":{}}]}"#.into(),
            r#"{"type":"t","name":"n","instances":[]}"#.into(),
            r#"{"mode":"managed","type":"t","name":"n","instances":null}"#.into(),
            r#"{"mode":"managed","type":"t","name":"n","instances":[{"status":7}]}"#.into(),
            r#"{"mode":"managed","type":"t","name":"n","instances":[{"attributes":{"id":}}]}"#.into(),
        ];
        let mut errors = 0;
        for text in &texts {
            let whole = read(text, None, cut);
            errors += usize::from(whole.is_err());
            assert_eq!(read(text, Some(cut), cut), whole, "{text}");
        }
        assert_eq!(errors, 6);
        // An instance written as an array of its fields, which the derived
        // reader would take in order, is refused: no state is written so.
        let array = r#"{"mode":"managed","type":"t","name":"n","instances":[["k"]]}"#;
        let e = read(array, Some(cut), cut).unwrap_err();
        assert!(e.contains("expected struct InstanceV4"), "{e}");
        // What the cut leaves.
        let read = read(&texts[0], Some(cut), cut).unwrap();
        assert!(
            read.contains(r#""tags": Object {"t": String("2")}"#),
            "{read}"
        );
        assert!(!read.contains("acl"), "{read}");
    }
}
