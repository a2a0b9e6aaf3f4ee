//! FOCUS `Tags`: a JSON object of tag keys to values. Real exports bend
//! it: `NULL` for none, keys with stray spaces, a valueless tag written
//! as `true` (or `null`), numbers, and Azure's object without its braces.

use serde_json::{Map, Value};

/// The tags of one row, keys trimmed, every value as text (a valueless tag
/// is `"true"`; a secret-looking one hashed), sorted by key; `Err` names
/// what is wrong.
pub fn parse_tags(text: &str) -> Result<Vec<(String, String)>, String> {
    let t = text.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("null") {
        return Ok(Vec::new());
    }
    let object: Map<String, Value> = match serde_json::from_str(t) {
        Ok(Value::Object(m)) => m,
        Ok(other) => {
            return Err(format!(
                "Tags: a JSON object was expected, not {}",
                crate::json_kind(&other)
            ));
        }
        // `"env": "prod", "team": "a"`: the object without its braces.
        Err(e) => match serde_json::from_str::<Value>(&format!("{{{t}}}")) {
            Ok(Value::Object(m)) if !t.starts_with('{') => m,
            _ => return Err(format!("Tags: not a JSON object: {e}")),
        },
    };
    let mut tags: Vec<(String, String)> = Vec::with_capacity(object.len());
    for (k, v) in object {
        let key = k.trim().to_string();
        if key.is_empty() {
            continue;
        }
        let value = match v {
            Value::Null | Value::Bool(true) => "true".to_string(),
            Value::String(s) => s,
            Value::Bool(false) => "false".to_string(),
            Value::Number(n) => n.to_string(),
            other => other.to_string(),
        };
        // A tag named like a secret (`api_token`) keeps its key, not its value.
        let value = crate::secrets::mask(&key, value);
        // Two keys equal once trimmed: the last in key order wins.
        match tags.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => tags.push((key, value)),
        }
    }
    tags.sort();
    Ok(tags)
}

/// The cleaned tags as the `Tags` column holds them.
pub fn tags_json(tags: &[(String, String)]) -> String {
    let m: Map<String, Value> = tags
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Value::Object(m).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_what_real_exports_write() {
        assert_eq!(parse_tags("NULL").unwrap(), []);
        assert_eq!(parse_tags("").unwrap(), []);
        assert_eq!(
            parse_tags(
                r#"{" team ": "payments", "env":"prod", "backup": true, "tier": 2, "legacy": null}"#
            )
            .unwrap(),
            [
                ("backup".into(), "true".into()),
                ("env".into(), "prod".into()),
                ("legacy".into(), "true".into()),
                ("team".into(), "payments".into()),
                ("tier".into(), "2".into()),
            ]
        );
        assert_eq!(
            parse_tags(r#""env": "prod", "team": "a""#).unwrap(),
            [("env".into(), "prod".into()), ("team".into(), "a".into())]
        );
        assert_eq!(
            parse_tags(r#"{"team": "a", "team ": "b"}"#).unwrap(),
            [("team".into(), "b".into())]
        );
        let e = parse_tags("[1,2]").unwrap_err();
        assert!(e.contains("an array"), "{e}");
        assert!(parse_tags("{not json").is_err());
    }

    #[test]
    fn a_tag_named_like_a_secret_keeps_its_key_not_its_value() {
        let tags = parse_tags(r#"{"api_token": "t0k3n", "team": "payments"}"#).unwrap();
        assert_eq!(tags[0].0, "api_token");
        assert!(tags[0].1.starts_with("sha256:"), "{tags:?}");
        assert_eq!(tags[1], ("team".into(), "payments".into()));
    }
}
