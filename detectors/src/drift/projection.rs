//! What the drift comparison reads of a record, and nothing else. A
//! one-shot scan holds every record until the join, so it keeps of each
//! only the top-level attributes its type's mapping compares (and the
//! tags, which a finding carries): a resource's dozens of attributes shrink
//! to a handful before the record is stored, and the diff reads the same
//! values it would have read from the whole document.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

use driftline_pipeline::kept_keys::Keys;
use driftline_pipeline::{DeclaredResource, KeptKeys, ObservedResource, Record, ResourceMode};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::mappings::Mappings;

/// Top-level keys kept, per type.
#[derive(Debug, Default)]
pub struct DriftProjection {
    /// The keys kept of each document, by type (what loaders that cut as
    /// they read are handed too).
    kept: KeptKeys,
    /// Terraform type → `(a, b)`: tag attributes read in this order, the
    /// first non-empty one counting, and `a` read by nothing else. `a` is
    /// dropped where it is written exactly as `b`, since the comparison then
    /// reads the same tags through `b`: `tags_all` repeats `tags` wherever
    /// no provider default tags apply, and was a quarter of what a scan
    /// held. Every mapped Terraform type has an entry.
    same_as_next: HashMap<String, Vec<(String, String)>>,
}

fn first_segment(path: &str) -> &str {
    path.split('.').next().unwrap_or(path)
}

impl DriftProjection {
    pub fn new(mappings: &Mappings) -> Self {
        let mut p = Self::default();
        let mut compared: HashMap<&str, HashSet<&str>> = HashMap::new();
        for m in mappings.iter() {
            let (tf, config) = (m.terraform_type.as_str(), m.config_type.as_str());
            p.same_as_next.entry(tf.to_string()).or_default();
            // `tags` also for a finding on a resource that is gone.
            p.kept.keep_attribute(tf, "tags");
            for a in &m.tag_attributes {
                p.kept.keep_attribute(tf, first_segment(a));
            }
            for c in &m.compares {
                p.kept.keep_attribute(tf, first_segment(&c.terraform));
                compared
                    .entry(tf)
                    .or_default()
                    .insert(first_segment(&c.terraform));
                if let Some(rest) = c.observed.strip_prefix("configuration.") {
                    p.kept.keep_configuration(config, first_segment(rest));
                }
                if let Some(rest) = c.observed.strip_prefix("supplementaryConfiguration.") {
                    p.kept.keep_supplementary(config, first_segment(rest));
                }
            }
        }
        for m in mappings.iter() {
            let read_otherwise = |a: &str| {
                a == "tags"
                    || a.contains('.')
                    || compared
                        .get(m.terraform_type.as_str())
                        .is_some_and(|c| c.contains(a))
            };
            let Some(pairs) = p.same_as_next.get_mut(&m.terraform_type) else {
                continue;
            };
            for pair in m.tag_attributes.windows(2) {
                if !read_otherwise(&pair[0]) && !pair[1].contains('.') {
                    pairs.push((pair[0].clone(), pair[1].clone()));
                }
            }
        }
        p
    }

    /// What of snapshots' documents the comparison reads, for a loader
    /// that cuts them as it reads (`KeptKeys`).
    pub fn kept_keys(&self) -> &KeptKeys {
        &self.kept
    }

    /// Drops what the comparison does not read from a snapshot record.
    pub fn apply(&self, record: &mut Record) {
        match record {
            Record::Declared(d) => self.declared(d),
            Record::Observed(o) => self.observed(o),
            _ => {}
        }
    }

    fn declared(&self, d: &mut DeclaredResource) {
        let Some((keep, same_as_next)) = self.declared_cut(d) else {
            // Never compared: only counted.
            d.attributes = "{}".into();
            return;
        };
        // The loader wrote this text; should it not parse, it stays whole.
        if let Ok(kept) = keep_keys(&d.attributes, keep, same_as_next) {
            d.attributes = kept;
        }
        d.sensitive_paths = Vec::new();
    }

    /// The same cut on the attributes as a tree, which a loader hands over
    /// before it writes them as `d`'s text (`ComparisonCut`).
    pub(super) fn declared_tree(&self, d: &mut DeclaredResource, attributes: &mut Value) {
        let Some((keep, same_as_next)) = self.declared_cut(d) else {
            *attributes = Value::Object(Map::new());
            return;
        };
        if let Value::Object(m) = attributes {
            m.retain(|k, _| keep.contains(k));
            for (a, b) in same_as_next {
                if m.get(a).is_some_and(|v| Some(v) == m.get(b)) {
                    m.remove(a);
                }
            }
        }
        d.sensitive_paths = Vec::new();
    }

    /// The keys kept of a declared resource's attributes, and the tag
    /// attributes left out where written as the next; none where it is
    /// never compared (only counted).
    fn declared_cut(&self, d: &DeclaredResource) -> Option<(Keys<'_>, &[(String, String)])> {
        if d.mode != ResourceMode::Managed || d.type_id.is_empty() {
            return None;
        }
        let same_as_next = self.same_as_next.get(&d.tf_type)?;
        Some((self.kept.attributes(&d.tf_type), same_as_next))
    }

    fn observed(&self, o: &mut ObservedResource) {
        let retain = |v: &mut Value, keep: Keys| {
            if let Value::Object(m) = v {
                m.retain(|k, _| keep.contains(k));
            }
        };
        retain(
            &mut o.configuration,
            self.kept.configuration(&o.resource_type),
        );
        retain(
            &mut o.supplementary_configuration,
            self.kept.supplementary(&o.resource_type),
        );
        o.relationships = Value::Null;
    }
}

/// The same projection on documents kept as JSON text (the streaming
/// detector's decoded rows). Text that is not an object is kept whole, as
/// the record projection leaves a non-object value alone.
impl DriftProjection {
    /// A managed resource's `attributes`, for its Terraform type.
    pub(super) fn attributes_text(&self, tf_type: &str, text: &str) -> Option<String> {
        let same_as_next = self.same_as_next.get(tf_type)?;
        keep_keys(text, self.kept.attributes(tf_type), same_as_next).ok()
    }

    /// An item's `configuration`, for its AWS Config type.
    pub(super) fn configuration_text(&self, resource_type: &str, text: &str) -> Option<String> {
        keep_keys(text, self.kept.configuration(resource_type), &[]).ok()
    }

    /// An item's `supplementaryConfiguration`, for its AWS Config type.
    pub(super) fn supplementary_text(&self, resource_type: &str, text: &str) -> Option<String> {
        keep_keys(text, self.kept.supplementary(resource_type), &[]).ok()
    }
}

/// The object `text` with only the top-level keys in `keep`, as compact
/// JSON text; the kept values are copied as written. Of each pair in
/// `same_as_next`, the first is left out where both are written alike.
fn keep_keys(
    text: &str,
    keep: Keys,
    same_as_next: &[(String, String)],
) -> Result<String, serde_json::Error> {
    let mut kept = top_level(text, Some(keep))?;
    for (a, b) in same_as_next {
        let written = |k: &str| member(&kept, k).map(RawValue::get);
        if written(a).is_some_and(|t| Some(t) == written(b)) {
            kept.retain(|(m, _)| m != a);
        }
    }
    let mut out = String::with_capacity(
        kept.iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum::<usize>()
            + 2,
    );
    out.push('{');
    for (i, (k, v)) in kept.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(k.as_ref())?);
        out.push(':');
        out.push_str(v.get());
    }
    out.push('}');
    Ok(out)
}

/// An object's top-level members, in document order, with their values
/// as written (not parsed); only those in `keep` when given.
pub(super) type Members<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// The value of member `key`; of a key written twice, the last, as when
/// the object is read into a map.
pub(super) fn member<'a>(members: &Members<'a>, key: &str) -> Option<&'a RawValue> {
    members
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v)
}

/// Reads the top level of the object `text` (see `Members`).
pub(super) fn top_level<'a>(
    text: &'a str,
    keep: Option<Keys>,
) -> Result<Members<'a>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let members = de.deserialize_map(TopLevel(keep))?;
    de.end()?;
    Ok(members)
}

struct TopLevel<'k>(Option<Keys<'k>>);

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an attributes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = Vec::new();
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            if self.0.is_none_or(|keep| keep.contains(k.as_ref())) {
                kept.push((k, map.next_value::<&RawValue>()?));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(kept)
    }
}

/// A key borrowed from the text unless it holds escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::super::compare::{Doc, ObservedSide, diff};
    use super::*;

    #[test]
    fn keeps_only_compared_keys_and_tags_with_values_as_written() {
        let mut keep = KeptKeys::default();
        for k in ["a", "tags", "k\"q"] {
            keep.keep_attribute("t", k);
        }
        let kept = keep_keys(
            r#"{"a":[1,{"x":"y"}],"b":{"big":"doc"},"tags":{"t":"1"},"k\"q":null}"#,
            keep.attributes("t"),
            &[],
        )
        .unwrap();
        assert_eq!(kept, r#"{"a":[1,{"x":"y"}],"tags":{"t":"1"},"k\"q":null}"#);
    }

    #[test]
    fn tags_all_written_as_tags_is_left_out_and_the_diff_reads_the_same() {
        let mappings = Mappings::builtin().unwrap();
        let p = DriftProjection::new(&mappings);
        let sg = mappings.by_tf_type("aws_security_group").unwrap();
        let cut = |text: &str| p.attributes_text("aws_security_group", text).unwrap();
        let same = r#"{"name":"web","tags":{"team":"a"},"tags_all":{"team":"a"},"arn":"x"}"#;
        assert_eq!(cut(same), r#"{"name":"web","tags":{"team":"a"}}"#);
        // Provider default tags make them differ: both stay.
        let defaults = r#"{"name":"web","tags":{"team":"a"},"tags_all":{"team":"a","env":"prod"}}"#;
        assert_eq!(
            cut(defaults),
            r#"{"name":"web","tags":{"team":"a"},"tags_all":{"team":"a","env":"prod"}}"#
        );
        // What the comparison reads is unchanged either way.
        let tags = serde_json::json!({"team": "b"});
        let observed = ObservedSide {
            configuration: Doc::parse(r#"{"groupName":"web"}"#).unwrap(),
            supplementary: Doc::default(),
            tags: &tags,
            resource_name: None,
            arn: None,
        };
        for text in [same, defaults] {
            let whole = Doc::parse(text).unwrap();
            let projected = cut(text);
            let kept = Doc::parse(&projected).unwrap();
            let paths = |d: &Doc| {
                diff(sg, d, &observed, "sg-1")
                    .into_iter()
                    .map(|d| (d.path, d.declared, d.observed))
                    .collect::<Vec<_>>()
            };
            assert_eq!(paths(&whole), paths(&kept), "{text}");
        }
    }

    #[test]
    fn every_mapped_path_survives_the_projection() {
        let mappings = Mappings::builtin().unwrap();
        let p = DriftProjection::new(&mappings);
        let sg = mappings.by_tf_type("aws_security_group").unwrap();
        let keys = p.kept.attributes("aws_security_group");
        for c in &sg.compares {
            assert!(
                keys.contains(first_segment(&c.terraform)),
                "{}",
                c.terraform
            );
        }
        assert!(
            p.kept
                .configuration("AWS::EC2::SecurityGroup")
                .contains("ipPermissions")
        );
    }
}
