//! Attribute comparison: both sides are brought to one canonical form
//! (`normalise`, as the mapping files say) and then compared structurally.

use std::collections::BTreeSet;

use driftline_pipeline::AttributeDiff;
use serde_json::{Map, Value};

use super::normalise::{Ctx, apply, canonical, get_path, map_strings};
use super::projection::{Members, member, top_level};
use crate::mappings::{Compare, Mapping};

fn normalise(c: &Compare, v: Option<Value>, observed_side: bool, ctx: &Ctx) -> Value {
    let mut v = v.unwrap_or(Value::Null);
    if observed_side && !c.values.is_empty() {
        v = map_strings(v, &|s| {
            c.values.get(s).cloned().unwrap_or_else(|| s.to_string())
        });
    }
    for n in &c.normalisers {
        v = apply(n, v, ctx);
    }
    let mut v = canonical(&v);
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
        let (first, rest) = match path.split_once('.') {
            Some((f, r)) => (f, Some(r)),
            None => (path, None),
        };
        let v: Value = serde_json::from_str(member(&self.top, first)?.get()).ok()?;
        match rest {
            None => Some(v),
            Some(r) => get_path(&v, r).cloned(),
        }
    }
}

/// The observed side of a configuration item.
pub struct ObservedSide<'a> {
    pub configuration: Doc<'a>,
    pub supplementary: Doc<'a>,
    pub tags: Value,
    pub resource_name: Option<&'a str>,
    pub arn: Option<&'a str>,
}

impl ObservedSide<'_> {
    fn get(&self, path: &str) -> Option<Value> {
        let (root, rest) = match path.split_once('.') {
            Some((r, rest)) => (r, Some(rest)),
            None => (path, None),
        };
        match (root, rest) {
            ("configuration", Some(p)) => self.configuration.get(p),
            ("supplementaryConfiguration", Some(p)) => self.supplementary.get(p),
            ("tags", None) => Some(self.tags.clone()),
            ("tags", Some(p)) => get_path(&self.tags, p).cloned(),
            ("resourceName", _) => self.resource_name.map(|s| Value::String(s.into())),
            ("arn", _) => self.arn.map(|s| Value::String(s.into())),
            _ => None,
        }
    }
}

/// Tag keys the cloud adds by itself and code never declares.
fn is_aws_managed_tag(k: &str) -> bool {
    k.starts_with("aws:")
}

/// Every differing compared path between declared attributes and an
/// observed item, for one mapping.
pub fn diff(
    m: &Mapping,
    declared: &Doc,
    observed: &ObservedSide,
    resource_id: &str,
) -> Vec<AttributeDiff> {
    let ctx = Ctx { resource_id };
    let mut out = Vec::new();
    for c in &m.compares {
        let d = normalise(c, declared.get(&c.terraform), false, &ctx);
        let o = normalise(c, observed.get(&c.observed), true, &ctx);
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
        diff_tags(m, declared, &observed.tags, &mut out);
    }
    out
}

fn diff_tags(m: &Mapping, declared: &Doc, observed: &Value, out: &mut Vec<AttributeDiff>) {
    let empty = Map::new();
    let dtags = m
        .tag_attributes
        .iter()
        .filter_map(|a| match declared.get(a) {
            Some(Value::Object(t)) if !t.is_empty() => Some(t),
            _ => None,
        })
        .next()
        .unwrap_or_default();
    let otags = observed.as_object().unwrap_or(&empty);
    let keys: BTreeSet<&String> = dtags
        .keys()
        .chain(otags.keys())
        .filter(|k| !is_aws_managed_tag(k))
        .collect();
    for k in keys {
        let d = dtags.get(k.as_str()).map(canonical).unwrap_or(Value::Null);
        let o = otags.get(k).map(canonical).unwrap_or(Value::Null);
        if d != o {
            out.push(AttributeDiff {
                path: format!("tags.{k}"),
                observed_path: format!("tags.{k}"),
                declared: d,
                observed: o,
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
        let same = observed(
            r#"{"VisibilityTimeout": "30"}"#,
            serde_json::json!({"team": "core", "aws:cloudformation:stack-name": "x"}),
        );
        assert!(diff(queue, &declared, &same, "https://sqs/q").is_empty());
        let edited = observed(
            r#"{"VisibilityTimeout": 60}"#,
            serde_json::json!({"team": "web"}),
        );
        let paths: Vec<String> = diff(queue, &declared, &edited, "https://sqs/q")
            .into_iter()
            .map(|d| d.path)
            .collect();
        assert_eq!(paths, ["visibility_timeout_seconds", "tags.team"]);
    }
}
