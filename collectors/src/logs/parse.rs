//! One log line → one `LogRecord`: JSON lines, logfmt, or plain text read
//! by a regex with named groups. The same fields are looked for in all
//! three: a timestamp (`time`, `timestamp`, `ts`, `@timestamp`), a level
//! (`level`, `severity`, `lvl`), a message (`msg`, `message`, `body`) and a
//! service (`service`, `service.name`); everything else is an attribute,
//! its value hashed when its name looks secret.

use driftline_pipeline::telemetry::{LogRecord, severity_number};
use regex::Regex;

use crate::secrets::{mask, mask_text};

const TIME_FIELDS: &[&str] = &["time", "timestamp", "ts", "@timestamp", "t"];
const LEVEL_FIELDS: &[&str] = &["level", "severity", "lvl", "severity_text", "loglevel"];
const BODY_FIELDS: &[&str] = &["msg", "message", "body", "log"];
const SERVICE_FIELDS: &[&str] = &["service", "service.name", "service_name"];

/// How a file's lines are written.
#[derive(Debug, Clone)]
pub enum LineFormat {
    Json,
    Logfmt,
    /// Named groups become fields; a line that does not match is refused.
    Regex(Regex),
}

/// A timestamp field: RFC 3339 text, or epoch seconds / milliseconds /
/// nanoseconds as a number (told apart by size).
fn parse_time(text: &str) -> Option<i64> {
    if let Some(ms) = driftline_pipeline::parse_iso8601_ms(text) {
        return Some(ms);
    }
    let n: f64 = text.trim().parse().ok()?;
    Some(if n > 1e17 {
        (n / 1e6) as i64
    } else if n > 1e11 {
        n as i64
    } else {
        (n * 1000.0) as i64
    })
}

/// Builds the record from (field, value) pairs in line order.
fn record(fields: Vec<(String, String)>, service: &str, observed_ms: i64) -> LogRecord {
    let mut r = LogRecord {
        timestamp_ms: observed_ms,
        observed_ms,
        service_name: service.to_string(),
        ..Default::default()
    };
    let mut have_time = false;
    let mut have_body = false;
    let mut have_service = false;
    for (k, v) in fields {
        let key = k.as_str();
        if !have_time && TIME_FIELDS.contains(&key) {
            if let Some(ms) = parse_time(&v) {
                r.timestamp_ms = ms;
                have_time = true;
                continue;
            }
        } else if r.severity_text.is_empty() && LEVEL_FIELDS.contains(&key) {
            r.severity_number = severity_number(&v);
            r.severity_text = v;
            continue;
        } else if !have_body && BODY_FIELDS.contains(&key) {
            r.body = mask_text(v);
            have_body = true;
            continue;
        } else if !have_service && SERVICE_FIELDS.contains(&key) {
            have_service = true;
            if service.is_empty() {
                r.service_name = v;
            }
            continue;
        } else if key == "trace_id" || key == "traceId" {
            r.trace_id = v.to_ascii_lowercase();
            continue;
        } else if key == "span_id" || key == "spanId" {
            r.span_id = v.to_ascii_lowercase();
            continue;
        }
        let v = mask_text(mask(key, v));
        r.attributes.push((k, v));
    }
    r
}

/// One line, or why it is not a record of this format.
pub fn parse_line(
    line: &str,
    format: &LineFormat,
    service: &str,
    observed_ms: i64,
) -> Result<LogRecord, String> {
    let fields = match format {
        LineFormat::Json => {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
            let serde_json::Value::Object(map) = v else {
                return Err(format!(
                    "a JSON line must be an object, not {}",
                    crate::json_kind(&v)
                ));
            };
            map.into_iter()
                .map(|(k, v)| {
                    let text = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, text)
                })
                .collect()
        }
        LineFormat::Logfmt => {
            let pairs = logfmt(line)?;
            if pairs.is_empty() {
                return Err("no key=value pairs".into());
            }
            pairs
        }
        LineFormat::Regex(re) => {
            let caps = re
                .captures(line)
                .ok_or_else(|| format!("does not match the pattern {}", re.as_str()))?;
            let mut fields: Vec<(String, String)> = re
                .capture_names()
                .flatten()
                .filter_map(|n| {
                    caps.name(n)
                        .map(|m| (n.to_string(), m.as_str().to_string()))
                })
                .collect();
            if !fields
                .iter()
                .any(|(k, _)| BODY_FIELDS.contains(&k.as_str()))
            {
                fields.push(("body".into(), line.to_string()));
            }
            fields
        }
    };
    Ok(record(fields, service, observed_ms))
}

/// `key=value key2="quoted \"value\""` pairs. A bare key is `key=true`.
fn logfmt(line: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = line.char_indices().peekable();
    loop {
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut end = line.len();
        while let Some(&(i, c)) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                end = i;
                break;
            }
            chars.next();
        }
        let key = line[start..end].to_string();
        if key.is_empty() {
            return Err(format!("a value without a key at column {}", start + 1));
        }
        if chars.peek().map(|(_, c)| *c) != Some('=') {
            out.push((key, "true".into()));
            continue;
        }
        chars.next();
        let mut value = String::new();
        if chars.peek().map(|(_, c)| *c) == Some('"') {
            chars.next();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, 't')) => value.push('\t'),
                        Some((_, other)) => value.push(other),
                        None => break,
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!("unterminated quoted value of {key:?}"));
            }
        } else {
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_give_time_level_body_service_and_attributes() {
        let r = parse_line(
            r#"{"ts":"2026-12-03T10:00:00.250Z","level":"warn","msg":"slow","service":"api","user":"ann","password":"p","n":3}"#,
            &LineFormat::Json,
            "",
            1,
        )
        .unwrap();
        assert_eq!(r.timestamp_ms, 1_796_292_000_250);
        assert_eq!((r.severity_text.as_str(), r.severity_number), ("warn", 13));
        assert_eq!((r.body.as_str(), r.service_name.as_str()), ("slow", "api"));
        let attr = |k: &str| r.attributes.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(attr("user"), "ann");
        assert!(attr("password").starts_with("sha256:"));
        assert_eq!(attr("n"), "3");
        assert!(
            parse_line("[1]", &LineFormat::Json, "", 1)
                .unwrap_err()
                .contains("object")
        );
        assert!(
            parse_line("{", &LineFormat::Json, "", 1)
                .unwrap_err()
                .starts_with("not JSON")
        );
    }

    #[test]
    fn logfmt_and_regex_lines() {
        let r = parse_line(
            r#"time=1764756000 level=error msg="disk \"full\"" path=/var retry"#,
            &LineFormat::Logfmt,
            "svc",
            1,
        )
        .unwrap();
        assert_eq!(r.timestamp_ms, 1_764_756_000_000);
        assert_eq!(r.body, "disk \"full\"");
        assert_eq!(r.service_name, "svc");
        assert_eq!(
            r.attributes,
            vec![
                ("path".into(), "/var".into()),
                ("retry".into(), "true".into())
            ]
        );
        assert!(parse_line("a=\"open", &LineFormat::Logfmt, "", 1).is_err());
        let re = Regex::new(r"^(?P<level>[A-Z]+) (?P<msg>.*)$").unwrap();
        let r = parse_line("ERROR it broke", &LineFormat::Regex(re.clone()), "", 7).unwrap();
        assert_eq!(
            (r.severity_number, r.body.as_str(), r.timestamp_ms),
            (17, "it broke", 7)
        );
        assert!(
            parse_line("lowercase", &LineFormat::Regex(re), "", 1)
                .unwrap_err()
                .contains("does not match")
        );
    }
}
