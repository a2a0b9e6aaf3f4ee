//! Capture times come as ISO 8601 strings (with `T` or a space, with or
//! without fractions and offsets), epoch seconds (int or float), epoch
//! milliseconds, or boto3 recordings' `{"__class__": "datetime", ...}`.

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
            parse_iso(t)
        }
        Value::Object(m) if m.get("__class__").and_then(Value::as_str) == Some("datetime") => {
            let g = |k: &str| m.get(k).and_then(Value::as_i64).unwrap_or(0);
            let days = days_from_civil(g("year"), g("month"), g("day"));
            let secs = days * 86_400 + g("hour") * 3600 + g("minute") * 60 + g("second");
            Some(secs * 1000 + g("microsecond") / 1000)
        }
        _ => None,
    }
}

/// Howard Hinnant's days-from-civil.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn num(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `2019-02-12T07:29:16.288Z`, `2014-02-27T21:43:53.0885+0000`,
/// `2016-10-06 16:46:13+00:00`, `2020-01-01`.
fn parse_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(&s[0..4])?, num(&s[5..7])?, num(&s[8..10])?);
    let days = days_from_civil(y, mo, d);
    if b.len() == 10 {
        return Some(days * 86_400_000);
    }
    if !(b[10] == b'T' || b[10] == b' ') || b.len() < 19 {
        return None;
    }
    let (h, mi, se) = (num(&s[11..13])?, num(&s[14..16])?, num(&s[17..19])?);
    let mut rest = &s[19..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let f = &frac[..digits];
        let mut scaled = f.chars().take(3).collect::<String>();
        while scaled.len() < 3 {
            scaled.push('0');
        }
        ms = num(&scaled).unwrap_or(0);
        rest = &frac[digits..];
    }
    let offset_s = match rest {
        "" | "Z" | "z" => 0,
        o if o.starts_with(['+', '-']) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let digits: String = o[1..].chars().filter(char::is_ascii_digit).collect();
            if digits.len() != 4 {
                return None;
            }
            sign * (num(&digits[..2])? * 3600 + num(&digits[2..])? * 60)
        }
        _ => return None,
    };
    Some((days * 86_400 + h * 3600 + mi * 60 + se - offset_s) * 1000 + ms)
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
