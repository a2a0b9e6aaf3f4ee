//! Label sets and the matchers that select them, in Alertmanager's syntax
//! (`team="payments"`, `class=~"changed|missing"`, `env!="dev"`), so routes,
//! silences and inhibition rules read the same as in an Alertmanager config.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::AlertError;

mod set;
pub use set::{LabelSet, Pairs};

/// Labels of one alert, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// What matchers read: a label's value by name. Both the `Labels` map
/// (configuration, input) and the compact `LabelSet` (held alerts) answer.
pub trait LabelLookup {
    fn label(&self, name: &str) -> Option<&str>;
}

impl LabelLookup for Labels {
    fn label(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// `{a="1", b="2"}`: Prometheus' rendering of a label set (Go `%q` quoting),
/// which Alertmanager uses in group keys.
pub fn render(labels: &Labels) -> String {
    let mut s = String::new();
    render_pairs(&mut s, labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    s
}

/// `render` of name-sorted pairs, appended to `out`.
pub fn render_pairs<'a>(out: &mut String, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
    out.push('{');
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push('=');
        quote(out, v);
    }
    out.push('}');
}

fn quote(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Stable identity of a label set (for alerts that arrive without one).
pub fn fingerprint(labels: &Labels) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (k, v) in labels {
        h.update(k.as_bytes());
        h.update([0xff]);
        h.update(v.as_bytes());
        h.update([0xff]);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MatchOp {
    Eq,
    NotEq,
    Regex,
    NotRegex,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::NotEq => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher. A regex is anchored at both ends, as in Alertmanager.
#[derive(Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        (&self.name, self.op, &self.value) == (&o.name, o.op, &o.value)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = String::new();
        quote(&mut v, &self.value);
        write!(f, "{}{}{}", self.name, self.op.as_str(), v)
    }
}

impl Matcher {
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, AlertError> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(AlertError::Matcher {
                text: format!("{name}{}{value}", op.as_str()),
                reason: "a label name is letters, digits and underscores".into(),
            });
        }
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$")).map_err(|e| AlertError::Matcher {
                    text: format!("{name}{}\"{value}\"", op.as_str()),
                    reason: format!("bad regular expression: {e}"),
                })?,
            ),
            _ => None,
        };
        Ok(Self {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// Parses `name="value"`, `name=~"re"`, `name!=value`, `name!~"re"`.
    pub fn parse(text: &str) -> Result<Self, AlertError> {
        let t = text.trim();
        let bad = |reason: &str| AlertError::Matcher {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let i = t
            .find(['=', '!'])
            .ok_or_else(|| bad("expected name=\"value\" (or !=, =~, !~)"))?;
        let name = t[..i].trim();
        let rest = &t[i..];
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            (MatchOp::Regex, v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (MatchOp::NotEq, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (MatchOp::Eq, v)
        } else {
            return Err(bad("expected =, !=, =~ or !~ after the label name"));
        };
        let value = value.trim();
        let value = match value.strip_prefix('"') {
            Some(v) => unquote(
                v.strip_suffix('"')
                    .ok_or_else(|| bad("unterminated quote"))?,
            ),
            None => value.to_string(),
        };
        Self::new(name, op, &value)
    }

    pub fn matches(&self, labels: &(impl LabelLookup + ?Sized)) -> bool {
        let v = labels.label(&self.name).unwrap_or("");
        match self.op {
            MatchOp::Eq => v == self.value,
            MatchOp::NotEq => v != self.value,
            MatchOp::Regex => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

fn unquote(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses `{a="b", c=~"d"}` or `a="b",c=~"d"` (commas inside quotes kept).
pub fn parse_matchers(text: &str) -> Result<Vec<Matcher>, AlertError> {
    let t = text.trim();
    let t = t
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(t);
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in t.char_indices() {
        match c {
            '\\' if quoted => escaped = !escaped,
            '"' if !escaped => quoted = !quoted,
            ',' if !quoted => {
                if !t[start..i].trim().is_empty() {
                    out.push(Matcher::parse(&t[start..i])?);
                }
                start = i + 1;
            }
            _ => escaped = false,
        }
        if c != '\\' {
            escaped = false;
        }
    }
    if !t[start..].trim().is_empty() {
        out.push(Matcher::parse(&t[start..])?);
    }
    Ok(out)
}

/// True when every matcher matches.
pub fn all_match(matchers: &[Matcher], labels: &(impl LabelLookup + ?Sized)) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// `{a="b",c=~"d"}`: Alertmanager's rendering of a matcher list (route keys).
pub fn render_matchers(matchers: &[Matcher]) -> String {
    let parts: Vec<String> = matchers.iter().map(ToString::to_string).collect();
    format!("{{{}}}", parts.join(","))
}

impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Matcher::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Durations as Prometheus writes them: `30s`, `5m`, `1h30m`, `2d`, `500ms`.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub use driftline_pipeline::time::parse_duration as parse;

    pub fn format(d: Duration) -> String {
        let ms = d.as_millis() as u64;
        if ms == 0 {
            return "0s".into();
        }
        let mut out = String::new();
        let mut rest = ms;
        for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
            if rest >= size {
                out.push_str(&format!("{}{unit}", rest / size));
                rest %= size;
            }
        }
        out
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }

    /// For `Option<Duration>` fields.
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| super::parse(&s).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

/// A label set from pairs, for tests.
#[cfg(test)]
pub(crate) fn of_pairs(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::of_pairs as l;

    #[test]
    fn parses_and_matches() {
        let ms =
            parse_matchers(r#"{team="pay,ments", class=~"changed|missing", env!="dev"}"#).unwrap();
        assert_eq!(ms.len(), 3);
        assert_eq!(ms[0].value, "pay,ments");
        let a = l(&[("team", "pay,ments"), ("class", "missing"), ("env", "prod")]);
        assert!(all_match(&ms, &a));
        let b = l(&[
            ("team", "pay,ments"),
            ("class", "changedx"),
            ("env", "prod"),
        ]);
        assert!(!all_match(&ms, &b), "regex is anchored");
        assert_eq!(ms[1].to_string(), r#"class=~"changed|missing""#);
        assert!(Matcher::parse("team").is_err());
        assert!(Matcher::parse(r#"x=~"(""#).is_err());
        // An absent label is the empty string, as in Alertmanager.
        assert!(
            Matcher::parse(r#"owner="""#)
                .unwrap()
                .matches(&Labels::new())
        );
    }

    #[test]
    fn renders_like_prometheus() {
        assert_eq!(
            render(&l(&[("b", "2"), ("a", "x\"y")])),
            r#"{a="x\"y", b="2"}"#
        );
    }

    #[test]
    fn durations() {
        assert_eq!(duration::parse("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(duration::parse("500ms").unwrap().as_millis(), 500);
        assert!(duration::parse("5 minutes").is_err());
        assert_eq!(
            duration::format(std::time::Duration::from_secs(5400)),
            "1h30m"
        );
    }
}
