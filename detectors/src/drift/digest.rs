//! The compared values' digest: what lets the join skip the diff of a pair
//! that does not differ.
//!
//! Most pairs the join meets are equal (an estate drifts by a few percent),
//! yet the diff reads both documents of every pair. So each row's compared
//! values are normalised once, as its record is loaded and while the
//! loaders keep every core busy, and hashed: a pair whose two digests are
//! equal has no difference, and only the others are diffed in full.
//!
//! The digest is injective up to the hash: the mapping, the resource id a
//! normaliser reads, each compared value and the compared tags are written
//! with their kinds and lengths. The hash is seeded at random once per
//! process (foldhash's quality hasher, as hash tables use against crafted
//! keys) and never leaves it, so nobody who writes a configuration can aim
//! a changed value at the declared one's digest to hide it.

use std::borrow::Cow;
use std::hash::{BuildHasher, Hash, Hasher};

use driftline_pipeline::{DeclaredResource, ObservedResource};
use foldhash::quality::RandomState;
use serde_json::{Map, Value};

use super::compare::{
    Doc, Lookup, ObservedSide, compared_tag_values, declared_tags, normalise, only_canonical,
};
use super::normalise::{Ctx, canonically_null, number_text, numeric_text};
use crate::mappings::{Compare, Mapping, Mappings};

/// Digests of declared and observed rows, comparable with each other
/// within one process. An observed item is digested by the mapping its
/// type is adopted as; where the declared side names another one of its
/// type, the digests differ and the pair is diffed in full.
#[derive(Debug)]
pub(super) struct Digester {
    mappings: Mappings,
    key: RandomState,
}

impl Digester {
    pub(super) fn new(mappings: &Mappings) -> Self {
        Self {
            mappings: mappings.clone(),
            key: RandomState::default(),
        }
    }

    /// The digest of a declared resource's compared values; none where it
    /// has no mapping, or no id where the comparison reads one.
    pub(super) fn declared(&self, d: &DeclaredResource) -> Option<u64> {
        self.mappings.by_tf_type(&d.tf_type)?;
        self.declared_in(d, &Doc::parse(&d.attributes).ok()?)
    }

    /// As `declared`, with the attributes read from `attributes` (a loader's
    /// tree, before it writes `d`'s text).
    pub(super) fn declared_in(
        &self,
        d: &DeclaredResource,
        attributes: &impl Lookup,
    ) -> Option<u64> {
        let m = self.mappings.by_tf_type(&d.tf_type)?;
        // The diff reads the observed item's id; the digest reads the
        // declared one and writes it, so equal digests mean equal ids.
        let id = match m.reads_resource_id() {
            true => Some(d.id.as_deref()?),
            false => None,
        };
        let ctx = Ctx {
            resource_id: id.unwrap_or_default(),
        };
        let mut h = self.start(m, id);
        for c in &m.compares {
            write_compared(c, attributes.get(&c.terraform), false, &ctx, &mut h);
        }
        if m.compare_tags {
            write_tags(&declared_tags(m, attributes), &mut h);
        }
        Some(h.finish())
    }

    /// The digest of an observed item's compared values, by the mapping its
    /// type is adopted as; none where it has none.
    pub(super) fn observed(&self, o: &ObservedResource) -> Option<u64> {
        let m = self.mappings.by_config_type(&o.resource_type)?;
        let side = ObservedSide {
            configuration: &o.configuration,
            supplementary: &o.supplementary_configuration,
            tags: &o.tags,
            resource_name: o.resource_name.as_deref(),
            arn: o.arn.as_deref(),
        };
        let ctx = Ctx {
            resource_id: &o.resource_id,
        };
        let mut h = self.start(m, m.reads_resource_id().then_some(&*o.resource_id));
        for c in &m.compares {
            write_compared(c, side.get(&c.observed), true, &ctx, &mut h);
        }
        if m.compare_tags {
            let empty = Map::new();
            write_tags(o.tags.as_object().unwrap_or(&empty), &mut h);
        }
        Some(h.finish())
    }

    fn start(&self, m: &Mapping, id: Option<&str>) -> impl Hasher + use<> {
        let mut h = self.key.build_hasher();
        m.terraform_type.hash(&mut h);
        id.hash(&mut h);
        h
    }
}

/// Writes `v` so that two values write the same only if they are equal.
fn write_value(v: &Value, h: &mut impl Hasher) {
    match v {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => {
            h.write_u8(1);
            b.hash(h);
        }
        Value::Number(n) => {
            h.write_u8(2);
            n.to_string().hash(h);
        }
        Value::String(s) => {
            h.write_u8(3);
            s.hash(h);
        }
        Value::Array(items) => {
            h.write_u8(4);
            h.write_usize(items.len());
            for x in items {
                write_value(x, h);
            }
        }
        Value::Object(m) => {
            h.write_u8(5);
            h.write_usize(m.len());
            for (k, x) in m {
                k.hash(h);
                write_value(x, h);
            }
        }
    }
}

/// Writes a compared path's value as `normalise` makes it. One only made
/// canonical is written in place: copying each compared value to hash it
/// was a fifth of the digests.
fn write_compared(
    c: &Compare,
    v: Option<Cow<'_, Value>>,
    observed_side: bool,
    ctx: &Ctx,
    h: &mut impl Hasher,
) {
    if !only_canonical(c, observed_side) {
        return write_value(&normalise(c, v, observed_side, ctx), h);
    }
    let v = v.as_deref().unwrap_or(&Value::Null);
    match &c.default {
        Some(d) if canonically_null(v) => write_canonical(d, h),
        _ => write_canonical(v, h),
    }
}

/// Writes `canonical(v)` as `write_value` would, without building it.
fn write_canonical(v: &Value, h: &mut impl Hasher) {
    match v {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => {
            h.write_u8(3);
            (if *b { "true" } else { "false" }).hash(h);
        }
        Value::Number(n) => {
            h.write_u8(3);
            number_text(n).hash(h);
        }
        Value::String(s) if s.is_empty() => h.write_u8(0),
        Value::String(s) => {
            h.write_u8(3);
            match numeric_text(s) {
                Some(t) => t.hash(h),
                None => s.hash(h),
            }
        }
        Value::Array(items) => {
            let kept = || items.iter().filter(|x| !canonically_null(x));
            match kept().count() {
                0 => h.write_u8(0),
                n => {
                    h.write_u8(4);
                    h.write_usize(n);
                    kept().for_each(|x| write_canonical(x, h));
                }
            }
        }
        Value::Object(m) => {
            let kept = || m.iter().filter(|(_, x)| !canonically_null(x));
            match kept().count() {
                0 => h.write_u8(0),
                n => {
                    h.write_u8(5);
                    h.write_usize(n);
                    for (k, x) in kept() {
                        k.hash(h);
                        write_canonical(x, h);
                    }
                }
            }
        }
    }
}

fn write_tags(tags: &Map<String, Value>, h: &mut impl Hasher) {
    let mut n = 0usize;
    for (k, v) in compared_tag_values(tags) {
        k.hash(h);
        write_canonical(v, h);
        n += 1;
    }
    h.write_usize(n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::stream::tests as rows;
    use serde_json::json;

    fn declared(tf_type: &str, id: &str, attributes: Value) -> DeclaredResource {
        DeclaredResource {
            tf_type: tf_type.into(),
            id: Some(id.into()),
            attributes: attributes.to_string(),
            ..rows::declared(0)
        }
    }

    fn observed(
        config_type: &str,
        id: &str,
        configuration: Value,
        tags: Value,
    ) -> ObservedResource {
        ObservedResource {
            resource_type: config_type.into(),
            resource_id: id.into(),
            configuration,
            tags,
            ..rows::observed(0)
        }
    }

    #[test]
    fn equal_digests_where_the_diff_finds_nothing_and_unequal_where_it_finds_a_change() {
        let mappings = Mappings::builtin().unwrap();
        let digests = Digester::new(&mappings);
        let queue = |timeout: Value, team: &str| {
            declared(
                "aws_sqs_queue",
                "https://sqs/q",
                json!({"visibility_timeout_seconds": timeout, "tags": {"team": team}}),
            )
        };
        let item = observed(
            "AWS::SQS::Queue",
            "https://sqs/q",
            json!({"VisibilityTimeout": "30"}),
            json!({"team": "core", "aws:cloudformation:stack-name": "x", "empty": ""}),
        );
        let o = digests.observed(&item).unwrap();
        // "30" and 30 are one value; tags AWS adds, or empty, are no drift.
        assert_eq!(digests.declared(&queue(json!(30), "core")), Some(o));
        assert_ne!(digests.declared(&queue(json!(60), "core")), Some(o));
        assert_ne!(digests.declared(&queue(json!(30), "web")), Some(o));
    }

    #[test]
    fn a_rule_naming_the_group_itself_digests_alike_only_for_that_group() {
        let mappings = Mappings::builtin().unwrap();
        let digests = Digester::new(&mappings);
        let sg = |id: &str| {
            declared(
                "aws_security_group",
                id,
                json!({"ingress": [{"protocol": "tcp", "from_port": 443, "to_port": 443, "self": true}]}),
            )
        };
        let item = observed(
            "AWS::EC2::SecurityGroup",
            "sg-1",
            json!({"ipPermissions": [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443,
                    "userIdGroupPairs": [{"groupId": "sg-1"}]}]}),
            json!({}),
        );
        let o = digests.observed(&item).unwrap();
        assert_eq!(digests.declared(&sg("sg-1")), Some(o));
        assert_ne!(digests.declared(&sg("sg-2")), Some(o));
    }

    #[test]
    fn no_digest_without_a_mapping_and_none_alike_across_mappings() {
        let mappings = Mappings::builtin().unwrap();
        let digests = Digester::new(&mappings);
        assert_eq!(
            digests.declared(&declared("aws_unknown", "x", json!({}))),
            None
        );
        let item = observed("AWS::Unknown::Thing", "x", json!({}), json!({}));
        assert_eq!(digests.observed(&item), None);
        let queue = declared("aws_sqs_queue", "x", json!({}));
        let topic = declared("aws_sns_topic", "x", json!({}));
        assert_ne!(digests.declared(&queue), digests.declared(&topic));
    }

    #[test]
    fn a_value_written_in_place_writes_as_its_canonical_copy() {
        use crate::drift::normalise::canonical;
        let values = [
            json!(null),
            json!(""),
            json!(true),
            json!(false),
            json!(8),
            json!(-2.5),
            json!(1e300),
            json!("8.0"),
            json!("-"),
            json!("10.0.0.0/8"),
            json!([]),
            json!(["", null, [], {}]),
            json!(["a", "", 1, [null, "b"]]),
            json!({}),
            json!({"a": "", "b": null, "c": [""]}),
            json!({"a": {"x": ""}, "b": 3, "c": ["1.50", {"d": false}]}),
        ];
        for v in values {
            let (mut a, mut b) = (
                std::hash::DefaultHasher::new(),
                std::hash::DefaultHasher::new(),
            );
            write_canonical(&v, &mut a);
            write_value(&canonical(&v), &mut b);
            assert_eq!(a.finish(), b.finish(), "{v}");
            assert_eq!(canonically_null(&v), canonical(&v).is_null(), "{v}");
        }
    }
}
