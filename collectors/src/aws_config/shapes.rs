//! Finding the configuration items inside whatever AWS Config wrote: bare
//! items, arrays, history and snapshot files, batch-get outputs, select
//! outputs, SNS and EventBridge envelopes, Config rule events, oversized
//! and delivery-failed summaries, recorded boto3 responses.

use serde_json::{Map, Value};

use super::item::Item;

/// One thing found in a document.
pub enum Found {
    /// A full configuration item (keys as AWS wrote them).
    Item(Item),
    /// A row of `select-resource-config`: only the selected columns.
    SelectRow(Item),
    /// An oversized or delivery-failed notification's item summary.
    Summary(Item),
}

/// What a document turned out to be, beyond its items.
pub enum Skip {
    /// A per-type property schema: documentation, not an item.
    Schema,
    /// A message that carries no item (e.g. a scheduled notification).
    NoItem(String),
}

pub fn find(v: Value, out: &mut Vec<Found>, path: &str) -> Result<Option<Skip>, String> {
    match v {
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                if let Some(Skip::Schema) = find(item, out, &format!("{path}[{i}]"))? {
                    return Ok(Some(Skip::Schema));
                }
            }
            Ok(None)
        }
        Value::String(s) => {
            let inner: Value = serde_json::from_str(&s)
                .map_err(|e| format!("{path}: a JSON string that does not decode: {e}"))?;
            find(inner, out, path)
        }
        Value::Object(m) => find_in_object(m, out, path),
        other => Err(format!(
            "{path}: expected an object, found {}",
            crate::json_kind(&other)
        )),
    }
}

fn is_schema(m: &Map<String, Value>) -> bool {
    !m.is_empty()
        && m.keys().any(|k| k.starts_with("configuration."))
        && m.values().all(Value::is_string)
}

/// The key of the envelope that wraps this object's item, outermost first.
pub fn wrapping_envelope(m: &Map<String, Value>) -> Option<&'static str> {
    ["Message", "detail", "invokingEvent", "data"]
        .into_iter()
        .find(|key| {
            m.contains_key(*key)
                && match *key {
                    "Message" => {
                        m.contains_key("TopicArn")
                            || m.get("Type").and_then(Value::as_str) == Some("Notification")
                    }
                    "detail" => m.contains_key("detail-type"),
                    "data" => m.contains_key("status_code"),
                    _ => true,
                }
        })
}

pub fn find_in_object(
    mut m: Map<String, Value>,
    out: &mut Vec<Found>,
    path: &str,
) -> Result<Option<Skip>, String> {
    if is_schema(&m) {
        return Ok(Some(Skip::Schema));
    }
    if let Some(key) = wrapping_envelope(&m)
        && let Some(inner) = m.remove(key)
    {
        return find(inner, out, &format!("{path}.{key}"));
    }
    for key in ["configurationItems", "baseConfigurationItems"] {
        if let Some(items) = m.remove(key) {
            let before = out.len();
            find(items, out, &format!("{path}.{key}"))?;
            return Ok(if out.len() == before {
                Some(Skip::NoItem(format!("{key} is empty")))
            } else {
                None
            });
        }
    }
    if let Some(Value::Array(rows)) = m.remove("Results") {
        for (i, row) in rows.into_iter().enumerate() {
            let row = match row {
                Value::String(s) => serde_json::from_str(&s).map_err(|e| {
                    format!("{path}.Results[{i}]: a JSON string that does not decode: {e}")
                })?,
                v => v,
            };
            match row {
                Value::Object(r) => out.push(Found::SelectRow(r.into())),
                other => {
                    return Err(format!(
                        "{path}.Results[{i}]: expected an object, found {}",
                        crate::json_kind(&other)
                    ));
                }
            }
        }
        return Ok(None);
    }
    if let Some(item) = m.remove("configurationItem") {
        // The 2014 notification format wraps the item in a list.
        return find(item, out, &format!("{path}.configurationItem"));
    }
    if let Some(Value::Object(summary)) = m.remove("configurationItemSummary") {
        out.push(Found::Summary(summary.into()));
        return Ok(None);
    }
    if m.contains_key("resourceType")
        || m.contains_key("resourceId")
        || m.contains_key("configuration")
    {
        out.push(Found::Item(m.into()));
        return Ok(None);
    }
    if let Some(t) = m.get("messageType").and_then(Value::as_str) {
        return Ok(Some(Skip::NoItem(format!(
            "{t} carries no configuration item"
        ))));
    }
    let mut keys: Vec<&str> = m.keys().map(String::as_str).take(6).collect();
    keys.sort();
    Err(format!(
        "{path}: no configuration item here (keys: {}); expected an item, a notification or a history file",
        keys.join(", ")
    ))
}
