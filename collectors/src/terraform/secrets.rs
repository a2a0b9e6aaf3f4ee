//! Secret values never leave the loader: values Terraform marks sensitive
//! and values under attribute names that look secret are replaced by a
//! salted SHA-256, so drift on them is still visible and the value is not.

use serde_json::Value;

pub use crate::secrets::Salt;
use crate::secrets::{hash_secret_names, is_hash, push_seg};

/// Hashes, in place, every value under a secret-looking name and every path
/// in `sensitive` (Terraform's `sensitive_attributes`). Returns the paths
/// that were replaced, dotted (`master_password`, `ingress.0.secret`).
pub fn redact(attrs: &mut Value, sensitive: Option<&Value>, salt: &Salt) -> Vec<String> {
    let mut replaced = Vec::new();
    if let Some(Value::Array(paths)) = sensitive {
        for path in paths {
            if let Some(steps) = path_steps(path) {
                redact_path(attrs, &steps, salt, &mut String::new(), &mut replaced);
            }
        }
    }
    hash_secret_names(attrs, salt, &mut String::new(), &mut replaced);
    replaced.sort();
    replaced.dedup();
    replaced
}

enum Step {
    Attr(String),
    Index(Value),
}

/// Terraform writes a path as `[{"type":"get_attr","value":"x"},
/// {"type":"index","value":{"value":0,"type":"number"}}]`.
fn path_steps(path: &Value) -> Option<Vec<Step>> {
    let steps = path.as_array()?;
    steps
        .iter()
        .map(|s| {
            let kind = s.get("type")?.as_str()?;
            let value = s.get("value")?;
            match kind {
                "get_attr" => Some(Step::Attr(value.as_str()?.to_string())),
                "index" => Some(Step::Index(value.get("value").unwrap_or(value).clone())),
                _ => None,
            }
        })
        .collect()
}

fn redact_path(
    v: &mut Value,
    steps: &[Step],
    salt: &Salt,
    path: &mut String,
    out: &mut Vec<String>,
) {
    let Some((first, rest)) = steps.split_first() else {
        // The whole value at this path is sensitive: hash every leaf below.
        hash_all(v, salt, path, out);
        return;
    };
    let child = match (first, v) {
        (Step::Attr(name), Value::Object(m)) => m.get_mut(name).map(|c| (name.clone(), c)),
        (Step::Index(Value::Number(n)), Value::Array(a)) => {
            let i = n.as_u64().unwrap_or(u64::MAX) as usize;
            a.get_mut(i).map(|c| (i.to_string(), c))
        }
        (Step::Index(Value::String(k)), Value::Object(m)) => m.get_mut(k).map(|c| (k.clone(), c)),
        _ => None,
    };
    if let Some((seg, c)) = child {
        let len = push_seg(path, &seg);
        redact_path(c, rest, salt, path, out);
        path.truncate(len);
    }
}

fn hash_all(v: &mut Value, salt: &Salt, path: &mut String, out: &mut Vec<String>) {
    match v {
        Value::Null => {}
        Value::Object(m) => {
            for (k, c) in m.iter_mut() {
                let len = push_seg(path, k);
                hash_all(c, salt, path, out);
                path.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter_mut().enumerate() {
                let len = push_seg(path, &i.to_string());
                hash_all(c, salt, path, out);
                path.truncate(len);
            }
        }
        leaf => {
            if !is_hash(leaf) {
                *leaf = salt.hash(leaf);
            }
            out.push(path.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hashes_marked_and_secret_looking_values() {
        let salt = Salt::new("s");
        let mut v = json!({
            "master_password": "hunter2",
            "password_reset_required": true,
            "kms_key_id": "k",
            "value": "from-ssm",
            "nested": [{"client_secret": "abc", "name": "n"}],
            "secret_arn": "arn:aws:secretsmanager:x"
        });
        let sens = json!([[{"type": "get_attr", "value": "value"}]]);
        let paths = redact(&mut v, Some(&sens), &salt);
        assert_eq!(
            paths,
            vec!["master_password", "nested.0.client_secret", "value"]
        );
        let text = v.to_string();
        for secret in ["hunter2", "from-ssm", "\"abc\""] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(v["password_reset_required"], json!(true));
        assert_eq!(v["secret_arn"], json!("arn:aws:secretsmanager:x"));
        // Same salt, same value → same hash; drift on secrets stays visible.
        assert_eq!(v["master_password"], salt.hash(&json!("hunter2")));
        assert_ne!(v["master_password"], Salt::new("t").hash(&json!("hunter2")));
    }

    #[test]
    fn index_steps_and_whole_subtrees() {
        let salt = Salt::new("s");
        let mut v = json!({"list": ["a", "b"], "block": {"x": "1", "y": ["2"]}});
        let sens = json!([
            [{"type": "get_attr", "value": "list"}, {"type": "index", "value": {"value": 1, "type": "number"}}],
            [{"type": "get_attr", "value": "block"}]
        ]);
        let paths = redact(&mut v, Some(&sens), &salt);
        assert_eq!(paths, vec!["block.x", "block.y.0", "list.1"]);
        assert_eq!(v["list"][0], json!("a"));
        assert!(!v.to_string().contains("\"b\""));
    }
}
