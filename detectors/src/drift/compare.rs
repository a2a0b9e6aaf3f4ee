//! Attribute comparison: both sides are brought to one canonical form
//! (`normalise`, as the mapping files say) and then compared structurally.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use driftline_pipeline::AttributeDiff;
use serde_json::{Map, Value};

use super::normalise::{
    Ctx, apply, apply_in_place, canonical, canonically_null, first_segment, get_path, map_strings,
};
use super::projection::{Members, member, top_level};
use crate::mappings::{Compare, Mapping};

/// Whether a compared path's value on this side is only made canonical:
/// no normaliser, no mapped values.
pub(super) fn only_canonical(c: &Compare, observed_side: bool) -> bool {
    c.normalisers.is_empty() && (!observed_side || c.values.is_empty())
}

pub(super) fn normalise(
    c: &Compare,
    v: Option<Cow<'_, Value>>,
    observed_side: bool,
    ctx: &Ctx,
) -> Value {
    let mapped = observed_side && !c.values.is_empty();
    let mut v = if only_canonical(c, observed_side) {
        // Most compared paths are only made canonical: read in place, not
        // copied first.
        canonical(v.as_deref().unwrap_or(&Value::Null))
    } else {
        let mut normalisers = c.normalisers.iter();
        // A first normaliser that reads its value in place (a security
        // group's rules) spares copying it.
        let mut v = match (mapped, c.normalisers.first(), &v) {
            (false, Some(n), Some(borrowed))
                if let Some(read) = apply_in_place(n, borrowed, ctx) =>
            {
                normalisers.next();
                read
            }
            _ => v.map(Cow::into_owned).unwrap_or(Value::Null),
        };
        if mapped {
            v = map_strings(v, &|s| {
                c.values.get(s).cloned().unwrap_or_else(|| s.to_string())
            });
        }
        for n in normalisers {
            v = apply(n, v, ctx);
        }
        canonical(&v)
    };
    if v.is_null()
        && let Some(d) = &c.default
    {
        v = canonical(d);
    }
    v
}

/// A JSON object whose top level is indexed but not parsed: a row holds
/// dozens of attributes and a mapping compares a handful, so only those
/// are turned into values. The members stay a list borrowed from the text:
/// a projected document has a few, and a lookup scans them faster than a
/// map of owned keys is built.
#[derive(Default)]
pub struct Doc<'a> {
    top: Members<'a>,
}

impl<'a> Doc<'a> {
    /// Anything but an object (e.g. `null`) reads as an empty document.
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        if !text.trim_start().starts_with('{') {
            return Ok(Doc::default());
        }
        Ok(Doc {
            top: top_level(text, None)?,
        })
    }

    /// The value at a dotted path (of a key written twice, the last).
    pub fn get(&self, path: &str) -> Option<Value> {
        Lookup::get(self, path).map(Cow::into_owned)
    }
}

/// A document a side's compared paths are read from: a `Doc` where the
/// document is text (the join's), a `Value` where it is already a tree (a
/// record being loaded).
pub trait Lookup {
    /// The value at a dotted path; numeric segments index lists. Borrowed
    /// where the document is a tree.
    fn get(&self, path: &str) -> Option<Cow<'_, Value>>;
}

impl<T: Lookup> Lookup for &T {
    fn get(&self, path: &str) -> Option<Cow<'_, Value>> {
        (**self).get(path)
    }
}

impl Lookup for Value {
    fn get(&self, path: &str) -> Option<Cow<'_, Value>> {
        get_path(self, path).map(Cow::Borrowed)
    }
}

impl Lookup for Doc<'_> {
    fn get(&self, path: &str) -> Option<Cow<'_, Value>> {
        let (first, rest) = first_segment(path);
        let v: Value = serde_json::from_str(member(&self.top, first)?.get()).ok()?;
        match rest {
            None => Some(Cow::Owned(v)),
            Some(r) => get_path(&v, r).cloned().map(Cow::Owned),
        }
    }
}

/// The observed side of a configuration item, its documents read as `L`.
pub struct ObservedSide<'a, L> {
    pub configuration: L,
    pub supplementary: L,
    pub tags: &'a Value,
    pub resource_name: Option<&'a str>,
    pub arn: Option<&'a str>,
}

impl<L: Lookup> ObservedSide<'_, L> {
    pub(super) fn get(&self, path: &str) -> Option<Cow<'_, Value>> {
        match first_segment(path) {
            ("configuration", Some(p)) => self.configuration.get(p),
            ("supplementaryConfiguration", Some(p)) => self.supplementary.get(p),
            ("tags", None) => Some(Cow::Borrowed(self.tags)),
            ("tags", Some(p)) => get_path(self.tags, p).map(Cow::Borrowed),
            ("resourceName", _) => self.resource_name.map(|s| Cow::Owned(s.into())),
            ("arn", _) => self.arn.map(|s| Cow::Owned(s.into())),
            _ => None,
        }
    }
}

/// Tag keys the cloud adds by itself and code never declares.
fn is_aws_managed_tag(k: &str) -> bool {
    k.starts_with("aws:")
}

/// Each compared path's value on the declared side, normalised, in the
/// mapping's order.
pub(super) fn declared_values<'m>(
    m: &'m Mapping,
    declared: &'m impl Lookup,
    ctx: &'m Ctx,
) -> impl Iterator<Item = Value> + 'm {
    m.compares
        .iter()
        .map(move |c| normalise(c, declared.get(&c.terraform), false, ctx))
}

/// Each compared path's value on the observed side, as `declared_values`.
pub(super) fn observed_values<'m, L: Lookup>(
    m: &'m Mapping,
    observed: &'m ObservedSide<L>,
    ctx: &'m Ctx,
) -> impl Iterator<Item = Value> + 'm {
    m.compares
        .iter()
        .map(move |c| normalise(c, observed.get(&c.observed), true, ctx))
}

/// Every differing compared path between declared attributes and an
/// observed item, for one mapping.
pub fn diff<L: Lookup>(
    m: &Mapping,
    declared: &impl Lookup,
    observed: &ObservedSide<L>,
    resource_id: &str,
) -> Vec<AttributeDiff> {
    let ctx = Ctx { resource_id };
    let mut out = Vec::new();
    let pairs = declared_values(m, declared, &ctx).zip(observed_values(m, observed, &ctx));
    for (c, (d, o)) in m.compares.iter().zip(pairs) {
        if d != o {
            out.push(AttributeDiff {
                path: c.terraform.clone(),
                observed_path: c.observed.clone(),
                declared: d,
                observed: o,
            });
        }
    }
    if m.compare_tags {
        diff_tags(m, declared, observed.tags, &mut out);
    }
    out
}

/// The declared tags the comparison reads: the first of the mapping's tag
/// attributes that is a non-empty object.
pub(super) fn declared_tags<'d>(
    m: &Mapping,
    declared: &'d impl Lookup,
) -> Cow<'d, Map<String, Value>> {
    m.tag_attributes
        .iter()
        .find_map(|a| match declared.get(a)? {
            Cow::Borrowed(Value::Object(t)) if !t.is_empty() => Some(Cow::Borrowed(t)),
            Cow::Owned(Value::Object(t)) if !t.is_empty() => Some(Cow::Owned(t)),
            _ => None,
        })
        .unwrap_or_default()
}

/// The tags a side is compared by: its canonical values by key, without
/// the tags the cloud adds by itself and without absent values (a tag
/// missing on one side and empty on the other is no difference).
pub(super) fn compared_tags(tags: &Map<String, Value>) -> impl Iterator<Item = (&str, Value)> {
    compared_tag_values(tags).map(|(k, v)| (k, canonical(v)))
}

/// `compared_tags` before their values are made canonical.
pub(super) fn compared_tag_values(
    tags: &Map<String, Value>,
) -> impl Iterator<Item = (&str, &Value)> {
    tags.iter()
        .filter(|(k, v)| !is_aws_managed_tag(k) && !canonically_null(v))
        .map(|(k, v)| (k.as_str(), v))
}

fn diff_tags(m: &Mapping, declared: &impl Lookup, observed: &Value, out: &mut Vec<AttributeDiff>) {
    let empty = Map::new();
    let dtags = declared_tags(m, declared);
    let d: BTreeMap<&str, Value> = compared_tags(&dtags).collect();
    let o: BTreeMap<&str, Value> = compared_tags(observed.as_object().unwrap_or(&empty)).collect();
    let keys: BTreeSet<&str> = d.keys().chain(o.keys()).copied().collect();
    for k in keys {
        let (dv, ov) = (d.get(k), o.get(k));
        if dv != ov {
            out.push(AttributeDiff {
                path: format!("tags.{k}"),
                observed_path: format!("tags.{k}"),
                declared: dv.cloned().unwrap_or(Value::Null),
                observed: ov.cloned().unwrap_or(Value::Null),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mappings::Mappings;

    #[test]
    fn diffs_compared_paths_and_tags_but_not_aws_managed_tags() {
        let mappings = Mappings::builtin().unwrap();
        let queue = mappings.by_tf_type("aws_sqs_queue").unwrap();
        let declared = Doc::parse(
            r#"{"url": "https://sqs/q", "visibility_timeout_seconds": 30, "tags": {"team": "core"}}"#,
        )
        .unwrap();
        let observed = |configuration, tags| ObservedSide {
            configuration: Doc::parse(configuration).unwrap(),
            supplementary: Doc::parse("{}").unwrap(),
            tags,
            resource_name: Some("q"),
            arn: None,
        };
        // "30" and 30 are one value; a tag AWS adds by itself is no drift.
        let (core, web) = (
            serde_json::json!({"team": "core", "aws:cloudformation:stack-name": "x"}),
            serde_json::json!({"team": "web"}),
        );
        let same = observed(r#"{"VisibilityTimeout": "30"}"#, &core);
        assert!(diff(queue, &declared, &same, "https://sqs/q").is_empty());
        let edited = observed(r#"{"VisibilityTimeout": 60}"#, &web);
        let paths: Vec<String> = diff(queue, &declared, &edited, "https://sqs/q")
            .into_iter()
            .map(|d| d.path)
            .collect();
        assert_eq!(paths, ["visibility_timeout_seconds", "tags.team"]);
    }
}
