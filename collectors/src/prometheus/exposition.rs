//! The Prometheus text exposition format (0.0.4) and OpenMetrics 1.0 text,
//! read line by line into samples. Written here, not taken from a crate:
//! the one crate that reads both formats is LGPL-3.0, and `prometheus-parse`
//! silently skips lines it cannot read and splits label values on commas.
//! A line that does not parse is an error naming the line; Prometheus fails
//! the whole scrape on one, and so does driftline.
//!
//! The two formats differ where Prometheus's parsers differ: OpenMetrics
//! timestamps are seconds (text: milliseconds), OpenMetrics must end with
//! `# EOF` and may carry exemplars (`… # {trace_id="…"} 1`), which are not
//! stored. `_created` series are samples like any other, as Prometheus 2.42
//! ingests them.

/// Which format a body is, from the response's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    pub fn of_content_type(content_type: &str) -> Format {
        if content_type
            .to_ascii_lowercase()
            .starts_with("application/openmetrics-text")
        {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    pub name: String,
    /// As written, in order (not yet sorted or checked for repeats).
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the epoch, when the line carries one.
    pub timestamp_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ExpositionError {
    pub line: usize,
    pub reason: String,
}

/// Every sample in `body`.
pub fn parse(body: &str, format: Format) -> Result<Vec<ParsedSample>, ExpositionError> {
    let mut out = Vec::new();
    let mut eof = false;
    for (i, raw) in body.lines().enumerate() {
        let line_no = i + 1;
        let err = |reason: String| ExpositionError {
            line: line_no,
            reason,
        };
        let line = raw.trim_end_matches('\r');
        if eof {
            if format == Format::OpenMetrics && !line.is_empty() {
                return Err(err("content after # EOF".into()));
            }
            continue;
        }
        if format == Format::Text {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            out.push(sample(t, format).map_err(err)?);
            continue;
        }
        if line == "# EOF" {
            eof = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let kind = rest.split(' ').next().unwrap_or("");
            if !matches!(kind, "HELP" | "TYPE" | "UNIT") {
                return Err(err(format!("unknown descriptor {kind:?}")));
            }
            continue;
        }
        if line.is_empty() {
            return Err(err("empty line".into()));
        }
        out.push(sample(line, format).map_err(err)?);
    }
    if format == Format::OpenMetrics && !eof {
        return Err(ExpositionError {
            line: body.lines().count(),
            reason: "OpenMetrics data does not end with # EOF".into(),
        });
    }
    Ok(out)
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn name(&mut self, what: &str) -> Result<&'a str, String> {
        let start = self.at;
        if !self.peek().is_some_and(is_name_start) {
            return Err(format!("expected a {what} at column {}", start + 1));
        }
        while self.peek().is_some_and(is_name_char) {
            self.at += 1;
        }
        // Only ASCII was consumed, so this is a char boundary.
        Ok(std::str::from_utf8(&self.s[start..self.at]).unwrap_or_default())
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!(
                "expected '{}' at column {}",
                c as char,
                self.at + 1
            ))
        }
    }

    /// A quoted label value with `\\`, `\"` and `\n` escapes.
    fn quoted(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut v = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated label value".into()),
                Some(b'"') => {
                    self.at += 1;
                    break;
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b'n') => v.push(b'\n'),
                        Some(b'\\') => v.push(b'\\'),
                        Some(b'"') => v.push(b'"'),
                        other => {
                            return Err(format!(
                                "invalid escape \\{} in a label value",
                                other.map(|c| c as char).unwrap_or(' ')
                            ));
                        }
                    }
                    self.at += 1;
                }
                Some(c) => {
                    v.push(c);
                    self.at += 1;
                }
            }
        }
        String::from_utf8(v).map_err(|_| "label value is not UTF-8".into())
    }

    fn labels(&mut self) -> Result<Vec<(String, String)>, String> {
        let mut labels = Vec::new();
        self.expect(b'{')?;
        loop {
            self.spaces();
            if self.peek() == Some(b'}') {
                self.at += 1;
                return Ok(labels);
            }
            let name = self.name("label name")?.to_string();
            self.spaces();
            self.expect(b'=')?;
            self.spaces();
            let value = self.quoted()?;
            labels.push((name, value));
            self.spaces();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected ',' or '}}' at column {}", self.at + 1)),
            }
        }
    }

    fn token(&mut self) -> &'a str {
        let start = self.at;
        while self.peek().is_some_and(|c| c != b' ' && c != b'\t') {
            self.at += 1;
        }
        std::str::from_utf8(&self.s[start..self.at]).unwrap_or("")
    }
}

/// A float as Go's `strconv.ParseFloat` reads the formats' values.
pub fn parse_value(t: &str) -> Option<f64> {
    match t.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "+inf" | "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => t.parse::<f64>().ok(),
    }
}

fn sample(line: &str, format: Format) -> Result<ParsedSample, String> {
    let mut c = Cursor {
        s: line.as_bytes(),
        at: 0,
    };
    let name = c.name("metric name")?.to_string();
    let labels = if c.peek() == Some(b'{') {
        c.labels()?
    } else {
        Vec::new()
    };
    if !matches!(c.peek(), Some(b' ' | b'\t')) {
        return Err(format!("expected a space before the value of {name}"));
    }
    c.spaces();
    let v = c.token();
    let value = parse_value(v).ok_or_else(|| format!("invalid value {v:?} for {name}"))?;
    c.spaces();
    let mut timestamp_ms = None;
    if c.peek().is_some_and(|b| b != b'#') {
        let t = c.token();
        timestamp_ms = Some(match format {
            Format::Text => t
                .parse::<i64>()
                .map_err(|_| format!("invalid timestamp {t:?} for {name}"))?,
            Format::OpenMetrics => {
                let secs = parse_value(t)
                    .filter(|s| s.is_finite())
                    .ok_or_else(|| format!("invalid timestamp {t:?} for {name}"))?;
                (secs * 1000.0).round() as i64
            }
        });
        c.spaces();
    }
    match c.peek() {
        None => {}
        // An exemplar: checked for shape, not kept.
        Some(b'#') if format == Format::OpenMetrics => {
            c.at += 1;
            c.spaces();
            c.labels()?;
        }
        Some(_) => {
            return Err(format!(
                "unexpected text at column {} after the sample of {name}",
                c.at + 1
            ));
        }
    }
    Ok(ParsedSample {
        name,
        labels,
        value,
        timestamp_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_lines_parse_with_escapes_and_timestamps() {
        let body = "# HELP http_requests_total The total.\n\
                    # TYPE http_requests_total counter\n\
                    http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
                    msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
                    metric_without_timestamp_and_labels 12.47\n\
                    something_weird{problem=\"division by zero\"} +Inf -3982045\n\
                    trailing{a=\"1\",} NaN\n\
                    commas{v=\"a,b\"} 1\n";
        let s = parse(body, Format::Text).unwrap();
        assert_eq!(s.len(), 6);
        assert_eq!(s[0].labels[0], ("method".into(), "post".into()));
        assert_eq!(s[0].timestamp_ms, Some(1395066363000));
        assert_eq!(s[1].labels[0].1, "C:\\DIR\\FILE.TXT");
        assert_eq!(s[1].labels[1].1, "Cannot find file:\n\"FILE.TXT\"");
        assert_eq!(s[3].value, f64::INFINITY);
        assert_eq!(s[3].timestamp_ms, Some(-3982045));
        assert!(s[4].value.is_nan());
        assert_eq!(s[5].labels[0].1, "a,b");
    }

    #[test]
    fn openmetrics_needs_eof_and_uses_seconds() {
        let body = "# TYPE a counter\n# UNIT a seconds\na_total 1 1520879607.789 # {trace_id=\"x\"} 1\na_created 1520430000.123\n# EOF\n";
        let s = parse(body, Format::OpenMetrics).unwrap();
        assert_eq!(s[0].timestamp_ms, Some(1520879607789));
        assert_eq!(s[1].name, "a_created");
        let e = parse("a 1\n", Format::OpenMetrics).unwrap_err();
        assert!(e.reason.contains("# EOF"), "{e}");
        let e = parse("a 1\n# EOF\nb 2\n", Format::OpenMetrics).unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn a_bad_line_names_its_number_and_reason() {
        let e = parse("ok 1\nbad{a=\"1\" 2\n", Format::Text).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("expected ','"), "{e}");
        let e = parse("x notanumber\n", Format::Text).unwrap_err();
        assert!(e.to_string().starts_with("line 1: invalid value"), "{e}");
        assert!(parse("9bad 1\n", Format::Text).is_err());
        assert!(parse("x{a=\"unterminated} 1\n", Format::Text).is_err());
    }
}
