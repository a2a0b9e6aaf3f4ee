//! Secret values never leave the process that read them: values under
//! names that look secret (Terraform attributes, AWS Config documents, OTLP
//! and log attributes, FOCUS tags) are replaced by a salted SHA-256 by the
//! collectors, so a change is still visible and the value is not; the
//! Terraform loader adds the paths Terraform itself marks sensitive
//! (`collectors/src/terraform/secrets.rs`). Here, not in the collectors,
//! because bytes that reach the bus without a collector (a dead letter's
//! payload) go through the same rule.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

use aho_corasick::AhoCorasick;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Salt for the hashes. Keep it stable across runs of one installation so
/// the same secret hashes the same way; keep it private so a hash cannot be
/// tested against a dictionary.
#[derive(Clone)]
pub struct Salt(Vec<u8>);

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Salt(..)")
    }
}

impl Salt {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Salt(bytes.into())
    }

    /// `DRIFTLINE_HASH_SALT` when set, else a random salt for this process.
    pub fn from_env_or_random() -> Self {
        match std::env::var("DRIFTLINE_HASH_SALT") {
            Ok(s) if !s.is_empty() => Salt(s.into_bytes()),
            _ => {
                let mut h = Sha256::new();
                h.update(std::process::id().to_le_bytes());
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default();
                h.update(now.to_le_bytes());
                let stack_addr = &h as *const _ as usize;
                h.update(stack_addr.to_le_bytes());
                Salt(h.finalize().to_vec())
            }
        }
    }

    pub fn hash(&self, v: &Value) -> Value {
        let mut h = Sha256::new();
        h.update(&self.0);
        match v {
            Value::String(s) => h.update(s.as_bytes()),
            other => h.update(other.to_string().as_bytes()),
        }
        let digest = h.finalize();
        let mut out = String::with_capacity(7 + 32);
        out.push_str("sha256:");
        for b in &digest[..16] {
            out.push_str(&format!("{b:02x}"));
        }
        Value::String(out)
    }
}

/// Parts of attribute names that mark a secret value.
const SECRET_MARKERS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "private_key",
    "privatekey",
    "api_key",
    "apikey",
    "access_key",
    "credential",
    "passphrase",
    "connection_string",
    "kubeconfig",
];

/// No name shorter than the shortest marker holds one.
const SHORTEST_MARKER: usize = {
    let (mut i, mut shortest) = (0, usize::MAX);
    while i < SECRET_MARKERS.len() {
        if SECRET_MARKERS[i].len() < shortest {
            shortest = SECRET_MARKERS[i].len();
        }
        i += 1;
    }
    shortest
};

/// Endings of names that contain a marker but never hold a secret value.
const NOT_SECRET_ENDINGS: &[&str] = &[
    "_arn",
    "_id",
    "_ids",
    "_version",
    "_enabled",
    "_required",
    "_length",
    "_type",
    "_name",
];

/// Every marker at once, in any case: each attribute name of every state
/// passes through here, so it is one scan of the name, without a copy.
static MARKERS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(SECRET_MARKERS)
        .expect("the fixed markers form an automaton")
});

/// Whether `name` looks like it holds a secret: it contains a marker
/// (any case) and does not end like a name that never does.
pub fn is_secret_name(name: &str) -> bool {
    if name.len() < SHORTEST_MARKER {
        return false;
    }
    if name.len() > REMEMBERED_LENGTH {
        return looks_secret(name);
    }
    REMEMBERED.with(|seen| {
        let Ok(mut seen) = seen.try_borrow_mut() else {
            return looks_secret(name);
        };
        if let Some(&secret) = seen.get(name) {
            return secret;
        }
        let secret = looks_secret(name);
        if seen.len() >= REMEMBERED_NAMES {
            seen.clear();
        }
        seen.insert(name.into(), secret);
        secret
    })
}

thread_local! {
    /// Names met on this thread and whether they look secret. A read meets
    /// the same few hundred keys in every document: scanning each for the
    /// markers again was 3% of a scan's instructions. Bounded, and emptied
    /// when full.
    static REMEMBERED: RefCell<HashMap<Box<str>, bool, foldhash::fast::RandomState>> =
        RefCell::default();
}

/// Names remembered at most, and the longest remembered.
const REMEMBERED_NAMES: usize = 4096;
const REMEMBERED_LENGTH: usize = 64;

fn looks_secret(name: &str) -> bool {
    // Most names hold no marker: the one scan rejects them before the
    // endings are looked at.
    if !MARKERS.is_match(name) {
        return false;
    }
    let ends_with = |suffix: &str| {
        name.len() >= suffix.len()
            && name.as_bytes()[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    // The same endings in camelCase (AWS's names: `secretArn`,
    // `passwordLength`), after a lower-case letter or a digit.
    let camel_ending = NOT_SECRET_ENDINGS.iter().any(|s| {
        let (name, word) = (name.as_bytes(), &s.as_bytes()[1..]);
        let Some(stem) = name.len().checked_sub(word.len()).filter(|&n| n > 0) else {
            return false;
        };
        let tail = &name[stem..];
        tail[0] == word[0].to_ascii_uppercase()
            && tail[1..] == word[1..]
            && (name[stem - 1].is_ascii_lowercase() || name[stem - 1].is_ascii_digit())
    });
    !camel_ending && !NOT_SECRET_ENDINGS.iter().any(|s| ends_with(s))
}

/// Hashes, in place, every non-empty string under a secret-looking name,
/// at any depth, and adds its dotted path to `out` (`path` is where `v`
/// is). Used for Terraform attributes and AWS Config documents alike, so a
/// secret compared between them hashes the same on both sides.
pub fn hash_secret_names(v: &mut Value, salt: &Salt, path: &mut String, out: &mut Vec<String>) {
    hash_under(v, salt, None, &mut Some((path, out)));
}

/// `hash_secret_names` where nobody reads the paths (an AWS Config
/// document).
pub fn hash_secret_values(v: &mut Value, salt: &Salt) {
    hash_under(v, salt, None, &mut None);
}

/// Where the walk started, and the secrets' paths found so far, when wanted.
type Found<'a> = Option<(&'a mut String, &'a mut Vec<String>)>;

/// Where a walk is: a step on each frame's stack, written out as a path
/// only where a secret is found. Writing each key and index into one path
/// as the walk passed it was a third of the walk.
struct At<'a> {
    up: Option<&'a At<'a>>,
    step: Step<'a>,
}

enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

impl At<'_> {
    fn write(&self, path: &mut String) {
        if let Some(up) = self.up {
            up.write(path);
        }
        match self.step {
            Step::Key(k) => push_seg(path, k),
            Step::Index(i) => push_seg(path, &i.to_string()),
        };
    }
}

fn hash_under(v: &mut Value, salt: &Salt, at: Option<&At<'_>>, found: &mut Found<'_>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m.iter_mut() {
                let here = At {
                    up: at,
                    step: Step::Key(k),
                };
                // The value first: most are not strings, and then the name
                // need not be looked at.
                if c.as_str().is_some_and(|s| !s.is_empty()) && is_secret_name(k) {
                    if !is_hash(c) {
                        *c = salt.hash(c);
                    }
                    if let Some((start, out)) = found.as_mut() {
                        let mut path = start.to_string();
                        here.write(&mut path);
                        out.push(path);
                    }
                } else {
                    hash_under(c, salt, Some(&here), found);
                }
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter_mut().enumerate() {
                let here = At {
                    up: at,
                    step: Step::Index(i),
                };
                hash_under(c, salt, Some(&here), found);
            }
        }
        _ => {}
    }
}

/// Appends `seg` to the dotted `path`; returns the length to truncate it
/// back to.
pub fn push_seg(path: &mut String, seg: &str) -> usize {
    let len = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(seg);
    len
}

/// A value this module already hashed.
pub fn is_hash(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.starts_with("sha256:") && s.len() == 39)
}

impl Salt {
    /// The process's salt (`from_env_or_random`, read once), for collectors
    /// that are not handed one.
    pub fn process() -> &'static Salt {
        static SALT: OnceLock<Salt> = OnceLock::new();
        SALT.get_or_init(Salt::from_env_or_random)
    }
}

/// `value`, or its salted hash when `name` looks secret (dots and dashes
/// read as underscores: `db.password`, `x-api-key`).
pub fn mask(name: &str, value: String) -> String {
    let n = name.replace(['.', '-'], "_");
    if value.is_empty() || !is_secret_name(&n) {
        return value;
    }
    match Salt::process().hash(&Value::String(value)) {
        Value::String(h) => h,
        other => other.to_string(),
    }
}

/// A `name=value` or `name: value` pair written inside free text (a log
/// line's body, an attribute holding JSON): the name, maybe quoted, then
/// the value, quoted or up to the next space or separator.
static PAIR_IN_TEXT: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r#"([A-Za-z0-9_.\-]+)("?\s*[=:]\s*)("(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;&"'}\]]+)"#,
    )
    .expect("the pattern compiles")
});

/// `text` with the value of every secret-looking pair written inside it
/// hashed (`password=hunter2` → `password=sha256:…`, quotes kept). Text
/// that names no secret marker at all is returned as it is, after one scan.
pub fn mask_text(text: String) -> String {
    if !MARKERS.is_match(&text) {
        return text;
    }
    let masked = PAIR_IN_TEXT.replace_all(&text, |c: &regex::Captures<'_>| {
        let (name, between, value) = (&c[1], &c[2], &c[3]);
        if !is_secret_name(&name.replace(['.', '-'], "_")) {
            return c[0].to_string();
        }
        let quote = value
            .chars()
            .next()
            .filter(|q| matches!(q, '"' | '\'') && value.len() >= 2);
        let bare = match quote {
            Some(_) => &value[1..value.len() - 1],
            None => value,
        };
        let hidden = mask(name, bare.to_string());
        match quote {
            Some(q) => format!("{name}{between}{q}{hidden}{q}"),
            None => format!("{name}{between}{hidden}"),
        }
    });
    masked.into_owned()
}

/// What may be shown of rejected bytes (a dead letter's payload): at most
/// `max` of them as text, with every secret-looking pair in it hashed
/// (`mask_text`). Bytes that are not text (protobuf, a binary frame) and
/// name a secret marker anywhere are withheld whole: there a name and its
/// value cannot be told apart.
pub fn shown_bytes(bytes: &[u8], max: usize) -> String {
    let cut = &bytes[..bytes.len().min(max)];
    let text = match std::str::from_utf8(cut) {
        Ok(text) => text,
        // Cut inside a character: the text before it.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&cut[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => {
            let lossy = String::from_utf8_lossy(cut);
            if MARKERS.is_match(lossy.as_ref()) {
                return format!(
                    "({} bytes withheld: not text, and they name a secret-looking field)",
                    bytes.len()
                );
            }
            return lossy.into_owned();
        }
    };
    mask_text(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_bytes_are_shown_without_their_secrets() {
        let json = br#"{"resource_key": "k", "configuration": {"MasterUserPassword": "hunter2"}}"#;
        let shown = shown_bytes(json, 1 << 16);
        assert!(
            !shown.contains("hunter2") && shown.contains(r#""resource_key": "k""#),
            "{shown}"
        );
        // Cut inside a character: still text, still masked.
        let long = format!("password=hunter2 {}", "é".repeat(10));
        let shown = shown_bytes(long.as_bytes(), long.len() - 1);
        assert!(
            shown.starts_with("password=sha256:") && shown.ends_with("é"),
            "{shown}"
        );
        // Protobuf: a label name and its value are two fields.
        let proto = b"\x0a\x0c\x0a\x08password\x12\x07hunter2\xff";
        let shown = shown_bytes(proto, 1 << 16);
        assert!(
            shown.contains("withheld") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert_eq!(shown_bytes(b"\xffplain", 100), "\u{fffd}plain");
    }

    #[test]
    fn secret_pairs_inside_text_are_hashed_and_the_rest_kept() {
        let line = mask_text(
            r#"login failed for bob password=hunter2 retry=3 {"api_key": "k-123", "user": "bob"} token:'abc def'"#
                .into(),
        );
        for secret in ["hunter2", "k-123", "abc def"] {
            assert!(!line.contains(secret), "{secret} left in {line}");
        }
        assert!(
            line.starts_with("login failed for bob password=sha256:"),
            "{line}"
        );
        assert!(
            line.contains("retry=3") && line.contains(r#""user": "bob""#),
            "{line}"
        );
        assert!(line.contains(r#""api_key": "sha256:"#), "{line}");
        let plain = "GET /index.html 200 took=3ms".to_string();
        assert_eq!(mask_text(plain.clone()), plain);
        // A marker that is not a pair, or a name that is not secret.
        let prose = "password reset mail sent; token_type=bearer".to_string();
        assert_eq!(mask_text(prose.clone()), prose);
    }

    #[test]
    fn secret_looking_names_are_hashed_and_others_kept() {
        let hidden = mask("db.password", "hunter2".into());
        assert!(hidden.starts_with("sha256:") && !hidden.contains("hunter2"));
        assert_eq!(hidden, mask("db.password", "hunter2".into()));
        assert!(mask("x-api-key", "k".into()).starts_with("sha256:"));
        assert_eq!(mask("http.method", "GET".into()), "GET");
        assert_eq!(mask("token_type", "bearer".into()), "bearer");
    }

    #[test]
    fn a_remembered_name_is_answered_as_scanned_even_past_the_bound() {
        let names: Vec<String> = (0..REMEMBERED_NAMES + 10)
            .map(|i| match i % 3 {
                0 => format!("db_password_{i}"),
                1 => format!("password_arn{i}"),
                _ => format!("bucket_name_{i}"),
            })
            .chain(["x".repeat(REMEMBERED_LENGTH + 1) + "_token"].map(String::from))
            .collect();
        for _ in 0..2 {
            for n in &names {
                assert_eq!(is_secret_name(n), looks_secret(n), "{n}");
            }
        }
        assert!(is_secret_name("db_password_0") && !is_secret_name("bucket_name_2"));
    }

    #[test]
    fn camel_case_names_end_like_snake_case_ones() {
        for secret in [
            "masterUserPassword",
            "DB_PASSWORD",
            "clientSecret",
            "authToken",
        ] {
            assert!(is_secret_name(secret), "{secret}");
        }
        for plain in [
            "secretArn",
            "passwordLength",
            "tokenType",
            "secretId",
            "apiKeyName",
        ] {
            assert!(!is_secret_name(plain), "{plain}");
        }
        // Not a hump: the word runs on.
        assert!(is_secret_name("secretarn"));
        // Names that are not ASCII do not trip the byte arithmetic.
        assert!(!is_secret_name("é"));
        assert!(is_secret_name("mötpassword"));
    }
}
