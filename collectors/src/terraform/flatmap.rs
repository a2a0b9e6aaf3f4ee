//! Terraform 0.11 and older ("flatmap") attributes: every value is a string
//! and nested values are spelled out as dotted keys with counts, e.g.
//! `tags.% = 2`, `tags.Name = web`, `ingress.# = 1`,
//! `ingress.2541437006.from_port = 22`. This turns them back into JSON.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Rebuilds nested lists and maps from a flatmap.
pub fn unflatten<'a>(flat: impl IntoIterator<Item = (&'a str, &'a str)>) -> Map<String, Value> {
    let sorted: BTreeMap<&str, &str> = flat.into_iter().collect();
    object_at(&sorted, "")
}

/// Keys that start with `prefix` (which is empty or ends with a dot).
fn under<'m, 'a>(
    m: &'m BTreeMap<&'a str, &'a str>,
    prefix: &'m str,
) -> impl Iterator<Item = (&'a str, &'a str)> + 'm {
    m.range::<str, _>((
        std::ops::Bound::Included(prefix),
        std::ops::Bound::Unbounded,
    ))
    .take_while(move |(k, _)| k.starts_with(prefix))
    .map(|(k, v)| (*k, *v))
}

/// An object whose attribute names never contain dots.
fn object_at(m: &BTreeMap<&str, &str>, prefix: &str) -> Map<String, Value> {
    let mut names: Vec<&str> = Vec::new();
    for (k, _) in under(m, prefix) {
        let rest = &k[prefix.len()..];
        let name = rest.split('.').next().unwrap_or(rest);
        if names.last() != Some(&name) && !names.contains(&name) {
            names.push(name);
        }
    }
    let mut out = Map::new();
    for name in names {
        let full = format!("{prefix}{name}");
        out.insert(name.to_string(), value_at(m, &full));
    }
    out
}

fn value_at(m: &BTreeMap<&str, &str>, full: &str) -> Value {
    if m.contains_key(format!("{full}.#").as_str()) {
        return list_at(m, full);
    }
    if m.contains_key(format!("{full}.%").as_str()) {
        return map_at(m, full);
    }
    if let Some(v) = m.get(full) {
        return Value::String((*v).to_string());
    }
    // A nested block written without its count (seen in hand-edited states).
    let prefix = format!("{full}.");
    if under(m, &prefix).next().is_some() {
        return Value::Object(object_at(m, &prefix));
    }
    Value::Null
}

/// Lists (`.0`, `.1`, …) and sets (`.<hash>`): elements in index order, set
/// elements in hash order so the result is deterministic.
fn list_at(m: &BTreeMap<&str, &str>, full: &str) -> Value {
    let prefix = format!("{full}.");
    let mut elems: Vec<&str> = Vec::new();
    for (k, _) in under(m, &prefix) {
        let seg = k[prefix.len()..].split('.').next().unwrap_or("");
        if seg == "#" || seg.is_empty() {
            continue;
        }
        if !elems.contains(&seg) {
            elems.push(seg);
        }
    }
    elems.sort_by_key(|s| (s.parse::<u64>().unwrap_or(u64::MAX), s.to_string()));
    Value::Array(
        elems
            .into_iter()
            .map(|e| value_at(m, &format!("{prefix}{e}")))
            .collect(),
    )
}

/// Maps: the whole remainder of the key is the map key (tag keys such as
/// `kubernetes.io/cluster/x` contain dots).
fn map_at(m: &BTreeMap<&str, &str>, full: &str) -> Value {
    let prefix = format!("{full}.");
    let mut out = Map::new();
    for (k, v) in under(m, &prefix) {
        let rest = &k[prefix.len()..];
        if rest == "%" {
            continue;
        }
        out.insert(rest.to_string(), Value::String(v.to_string()));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rebuilds_lists_maps_and_sets() {
        let flat = [
            ("id", "sg-1"),
            ("tags.%", "2"),
            ("tags.Name", "web"),
            ("tags.kubernetes.io/cluster/x", "owned"),
            ("ingress.#", "1"),
            ("ingress.2541437006.from_port", "22"),
            ("ingress.2541437006.cidr_blocks.#", "2"),
            ("ingress.2541437006.cidr_blocks.0", "10.0.0.0/8"),
            ("ingress.2541437006.cidr_blocks.1", "0.0.0.0/0"),
            ("list.#", "11"),
            ("list.10", "k"),
            ("list.2", "c"),
            ("empty.#", "0"),
        ];
        let v = Value::Object(unflatten(flat));
        assert_eq!(
            v,
            json!({
                "id": "sg-1",
                "tags": {"Name": "web", "kubernetes.io/cluster/x": "owned"},
                "ingress": [{"from_port": "22", "cidr_blocks": ["10.0.0.0/8", "0.0.0.0/0"]}],
                "list": ["c", "k"],
                "empty": []
            })
        );
    }
}
