//! Normalisers: what the mapping files name (`case`, `cidr`, `set`,
//! `iam_policy`, `ip_permissions`, …) to bring a Terraform attribute and an
//! AWS Config field to one canonical form before they are compared.
//!
//! Canonical form: scalars become strings (`80`, `"80"` and `80.0` are one
//! value; so are `true` and `"true"`), and null, `""`, `[]` and `{}` are all
//! "absent" — the provider and AWS Config disagree on those all the time.

mod security_group;

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use security_group::ip_permissions;

#[derive(Debug, Clone, PartialEq)]
pub enum Normaliser {
    /// Lower-case strings.
    Case,
    /// `10.0.0.1/24` → `10.0.0.0/24`; IPv6 lower-cased.
    Cidr,
    /// Order does not matter.
    Set,
    /// A JSON document that may be written as a string.
    Json,
    /// IAM policy document: JSON, maybe URL-encoded; statement order and
    /// single-vs-list spellings do not matter.
    IamPolicy,
    /// Security group rules of either side as a set of
    /// `protocol:from-to:source` atoms.
    IpPermissions,
    /// A list of objects → the list of one field of each (`pluck:groupId`).
    Pluck(String),
    /// `"a,b"` → `["a", "b"]`.
    SplitComma,
    /// IAM `policyVersionList` → the default version's document.
    DefaultPolicyVersion,
    /// An ARN → its last path or colon segment (the name).
    ArnName,
    /// Take the first element of a list (`[x]` ↔ `x`).
    First,
}

impl Normaliser {
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "case" => Normaliser::Case,
            "cidr" => Normaliser::Cidr,
            "set" => Normaliser::Set,
            "json" => Normaliser::Json,
            "iam_policy" => Normaliser::IamPolicy,
            "ip_permissions" => Normaliser::IpPermissions,
            "split_comma" => Normaliser::SplitComma,
            "default_policy_version" => Normaliser::DefaultPolicyVersion,
            "arn_name" => Normaliser::ArnName,
            "first" => Normaliser::First,
            p if p.starts_with("pluck:") && p.len() > 6 => Normaliser::Pluck(p[6..].to_string()),
            other => {
                return Err(format!(
                    "unknown normaliser {other:?}; known: case, cidr, set, json, iam_policy, ip_permissions, \
                     pluck:FIELD, split_comma, default_policy_version, arn_name, first"
                ));
            }
        })
    }
}

impl Normaliser {
    /// Whether it reads `Ctx`: the compared digests (`digest.rs`) write
    /// the id of the rows of a mapping that has such a normaliser.
    pub(crate) fn reads_resource_id(&self) -> bool {
        matches!(self, Normaliser::IpPermissions)
    }
}

/// Context a normaliser may need: the resource's own id (a security group
/// rule with `self = true` names the group itself). A normaliser that
/// reads it says so (`Normaliser::reads_resource_id`).
pub struct Ctx<'a> {
    pub resource_id: &'a str,
}

/// Follows a dotted path; numeric segments index lists.
pub fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    let mut rest = Some(path);
    while let Some(p) = rest {
        let (seg, next) = first_segment(p);
        rest = next;
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// A dotted path's first segment and the rest. A scan of the bytes: every
/// compared value of every row is looked up by its path, and `split`'s
/// searcher cost more than the scan of a short path.
pub(super) fn first_segment(path: &str) -> (&str, Option<&str>) {
    match path.bytes().position(|b| b == b'.') {
        Some(i) => (&path[..i], Some(&path[i + 1..])),
        None => (path, None),
    }
}

/// Scalars to canonical strings, empties to null, recursively.
pub fn canonical(v: &Value) -> Value {
    match v {
        Value::Null => Value::Null,
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Number(n) => Value::String(number_text(n)),
        Value::String(s) if s.is_empty() => Value::Null,
        Value::String(s) => Value::String(numeric_text(s).unwrap_or_else(|| s.clone())),
        Value::Array(a) => {
            let items: Vec<Value> = a.iter().map(canonical).filter(|x| !x.is_null()).collect();
            if items.is_empty() {
                Value::Null
            } else {
                Value::Array(items)
            }
        }
        Value::Object(m) => {
            let items: Map<String, Value> = m
                .iter()
                .map(|(k, v)| (k.clone(), canonical(v)))
                .filter(|(_, v)| !v.is_null())
                .collect();
            if items.is_empty() {
                Value::Null
            } else {
                Value::Object(items)
            }
        }
    }
}

/// The canonical text of a string that writes a number (`"8.0"` is
/// `"8"`); none for any other string.
pub(super) fn numeric_text(s: &str) -> Option<String> {
    // The bytes first: most strings are not numbers, and parsing each as a
    // float was a percent of a scan.
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return None;
    }
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(float_text)
}

/// Whether `canonical(v)` is null, without building it.
pub(super) fn canonically_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.iter().all(canonically_null),
        Value::Object(m) => m.values().all(canonically_null),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

pub(super) fn number_text(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        float_text(n.as_f64().unwrap_or_default())
    }
}

fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

fn sorted_set(items: Vec<Value>) -> Value {
    let mut seen: Vec<(String, Value)> = items.into_iter().map(|v| (v.to_string(), v)).collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    seen.dedup_by(|a, b| a.0 == b.0);
    if seen.is_empty() {
        Value::Null
    } else {
        Value::Array(seen.into_iter().map(|(_, v)| v).collect())
    }
}

pub(super) fn map_strings(v: Value, f: &impl Fn(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| map_strings(x, f)).collect()),
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, x)| (k, map_strings(x, f))).collect())
        }
        other => other,
    }
}

pub fn cidr(s: &str) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let Some((addr, len)) = s.trim().split_once('/') else {
        return s.trim().to_ascii_lowercase();
    };
    let (Ok(ip), Ok(prefix)) = (addr.parse::<IpAddr>(), len.parse::<u32>()) else {
        return s.trim().to_ascii_lowercase();
    };
    // The network address: host bits cleared (a shift by the full width is 0).
    let network = match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX
                .checked_shl(32u32.saturating_sub(prefix))
                .unwrap_or(0);
            // Written by hand: `format!` of an address was most of what a
            // security group's rules cost to normalise.
            return v4_network_text(Ipv4Addr::from(u32::from(v4) & mask), prefix);
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(128u32.saturating_sub(prefix))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    };
    format!("{network}/{prefix}")
}

/// `a.b.c.d/prefix`, as `format!("{network}/{prefix}")` writes it.
fn v4_network_text(network: std::net::Ipv4Addr, prefix: u32) -> String {
    let mut out = String::with_capacity(18);
    for (i, octet) in network.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_decimal(&mut out, u32::from(octet));
    }
    out.push('/');
    push_decimal(&mut out, prefix);
    out
}

fn push_decimal(out: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// A JSON document written as a (maybe URL-encoded) string, or already parsed.
fn decode_document(v: &Value) -> Value {
    match v {
        Value::String(s) => {
            let t = s.trim();
            let decoded = if t.starts_with('%') || t.contains("%22") || t.contains("%7B") {
                percent_decode_str(t).decode_utf8_lossy().into_owned()
            } else {
                t.to_string()
            };
            serde_json::from_str(&decoded).unwrap_or(Value::String(decoded))
        }
        other => other.clone(),
    }
}

/// Policies: every single-or-list field becomes a sorted list, statements
/// a sorted set, empty Sids dropped.
fn iam_policy(v: &Value) -> Value {
    let doc = decode_document(v);
    let Value::Object(mut m) = doc else {
        return canonical(&doc);
    };
    let statements = match m.remove("Statement") {
        Some(Value::Array(a)) => a,
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    let statements: Vec<Value> = statements
        .into_iter()
        .map(|s| listify(canonical(&s)))
        .collect();
    m.insert("Statement".into(), sorted_set(statements));
    canonical(&Value::Object(m))
}

/// Inside a statement: single strings → one-element sorted lists.
fn listify(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, x)| {
                    let x = match x {
                        Value::String(s) if k != "Effect" && k != "Sid" && k != "Version" => {
                            Value::Array(vec![Value::String(s)])
                        }
                        Value::Array(a) => sorted_set(a.into_iter().map(listify).collect()),
                        other => listify(other),
                    };
                    (k, x)
                })
                .collect(),
        ),
        other => other,
    }
}

/// `apply` for a normaliser that reads its value in place; none for the
/// others.
pub(super) fn apply_in_place(n: &Normaliser, v: &Value, ctx: &Ctx) -> Option<Value> {
    match n {
        Normaliser::IpPermissions => Some(ip_permissions(v, ctx)),
        _ => None,
    }
}

pub(super) fn apply(n: &Normaliser, v: Value, ctx: &Ctx) -> Value {
    match n {
        Normaliser::Case => map_strings(v, &|s| s.to_ascii_lowercase()),
        Normaliser::Cidr => map_strings(v, &cidr),
        Normaliser::Set => match v {
            Value::Array(a) => {
                sorted_set(a.iter().map(canonical).filter(|x| !x.is_null()).collect())
            }
            other => other,
        },
        Normaliser::Json => canonical(&decode_document(&v)),
        Normaliser::IamPolicy => iam_policy(&v),
        Normaliser::IpPermissions => ip_permissions(&v, ctx),
        Normaliser::Pluck(field) => match v {
            // Only the observed side holds objects; plain values pass through.
            Value::Array(a) => Value::Array(
                a.into_iter()
                    .filter_map(|x| {
                        if x.is_object() {
                            x.get(field).cloned()
                        } else {
                            Some(x)
                        }
                    })
                    .collect(),
            ),
            other => other,
        },
        Normaliser::SplitComma => match v {
            Value::String(s) => Value::Array(
                s.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(|x| Value::String(x.into()))
                    .collect(),
            ),
            other => other,
        },
        Normaliser::DefaultPolicyVersion => match v {
            Value::Array(a) => a
                .iter()
                .find(|x| {
                    canonical(x.get("isDefaultVersion").unwrap_or(&Value::Null))
                        == Value::String("true".into())
                })
                .or(a.first())
                .and_then(|x| x.get("document"))
                .cloned()
                .unwrap_or(Value::Null),
            other => other,
        },
        Normaliser::ArnName => map_strings(v, &|s| {
            if s.starts_with("arn:") {
                s.rsplit(['/', ':']).next().unwrap_or(s).to_string()
            } else {
                s.to_string()
            }
        }),
        Normaliser::First => match v {
            Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
            other => other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_and_empties() {
        assert_eq!(canonical(&json!(80)), canonical(&json!("80")));
        assert_eq!(canonical(&json!(8.0)), canonical(&json!("8")));
        assert_eq!(canonical(&json!(true)), canonical(&json!("true")));
        assert_eq!(canonical(&json!("")), canonical(&json!([])));
        assert_eq!(canonical(&json!({})), Value::Null);
        assert_ne!(canonical(&json!("a")), canonical(&json!("b")));
    }

    #[test]
    fn a_network_is_written_as_format_writes_it() {
        for (ip, prefix) in [
            (0u32, 0u32),
            (u32::MAX, 32),
            (0x0a00_0000, 8),
            (0xc0a8_0164, 24),
            (0x0102_0304, 7),
            (0x6465_0a09, 31),
        ] {
            let network = std::net::Ipv4Addr::from(ip);
            assert_eq!(
                v4_network_text(network, prefix),
                format!("{network}/{prefix}")
            );
        }
    }

    #[test]
    fn cidrs() {
        assert_eq!(cidr("10.0.0.1/24"), "10.0.0.0/24");
        assert_eq!(cidr("0.0.0.0/0"), "0.0.0.0/0");
        assert_eq!(cidr("2001:DB8::1/32"), "2001:db8::/32");
        assert_eq!(cidr("10.1.2.3/32"), "10.1.2.3/32");
        assert_eq!(cidr("10.1.2.3/0"), "0.0.0.0/0");
        assert_eq!(cidr("2001:db8::1/128"), "2001:db8::1/128");
        assert_eq!(cidr(" pl-123abc "), "pl-123abc");
        assert_eq!(cidr("10.0.0.0/x"), "10.0.0.0/x");
    }

    #[test]
    fn iam_policies_match_across_spellings() {
        let tf = json!(
            "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"sts:AssumeRole\",\"Principal\":{\"Service\":\"ec2.amazonaws.com\"},\"Sid\":\"\"}]}"
        );
        let config = json!(
            "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%5B%22ec2.amazonaws.com%22%5D%7D%2C%22Action%22%3A%5B%22sts%3AAssumeRole%22%5D%7D%7D"
        );
        assert_eq!(iam_policy(&tf), iam_policy(&config));
        let other = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "sts:AssumeRole"}]});
        assert_ne!(iam_policy(&tf), iam_policy(&other));
    }
}
