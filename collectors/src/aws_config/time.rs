//! Capture times come as ISO 8601 strings (with `T` or a space, with or
//! without fractions and offsets; read by `driftline_pipeline::time`),
//! epoch seconds (int or float), epoch milliseconds, or boto3 recordings'
//! `{"__class__": "datetime", ...}`.

use serde_json::Value;

/// Milliseconds since the epoch, or `None` when the value is not a time.
pub fn to_epoch_ms(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => {
            let f = n.as_f64()?;
            // Anything past year 33658 in seconds is really milliseconds.
            Some(if f.abs() >= 1e12 {
                f as i64
            } else {
                (f * 1000.0).round() as i64
            })
        }
        Value::String(s) => {
            let t = s.trim();
            if let Ok(f) = t.parse::<f64>() {
                return to_epoch_ms(&serde_json::json!(f));
            }
            driftline_pipeline::parse_iso8601_ms(t)
        }
        Value::Object(m) if m.get("__class__").and_then(Value::as_str) == Some("datetime") => {
            let g = |k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(0) as u32;
            let year = m.get("year").and_then(Value::as_i64)? as i32;
            driftline_pipeline::time::civil_ms(
                (year, g("month"), g("day")),
                (g("hour"), g("minute"), g("second")),
                g("microsecond"),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_shape() {
        let t = 1_549_956_556_288;
        assert_eq!(to_epoch_ms(&json!("2019-02-12T07:29:16.288Z")), Some(t));
        assert_eq!(
            to_epoch_ms(&json!("2019-02-12 07:29:16.288+00:00")),
            Some(t)
        );
        assert_eq!(to_epoch_ms(&json!("2019-02-12T08:29:16.288+0100")), Some(t));
        assert_eq!(to_epoch_ms(&json!(1_549_956_556.288)), Some(t));
        assert_eq!(to_epoch_ms(&json!(t)), Some(t));
        assert_eq!(
            to_epoch_ms(
                &json!({"__class__": "datetime", "year": 2019, "month": 2, "day": 12,
                "hour": 7, "minute": 29, "second": 16, "microsecond": 288_000})
            ),
            Some(t)
        );
        assert_eq!(to_epoch_ms(&json!("1970-01-01")), Some(0));
        assert_eq!(to_epoch_ms(&json!("yesterday")), None);
    }
}
