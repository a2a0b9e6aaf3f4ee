//! Terraform state file formats: 4 (Terraform 0.12 – 1.x), 3 (0.7 – 0.11)
//! and 1/2 (pre-0.7, the same module layout as 3). One pass of serde over
//! the file reads whichever layout it is, one resource at a time.

use serde::Deserialize;
use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::{Map, Value};

use super::flatmap::unflatten;
pub use super::instance::StateInstance;
use super::legacy::{ModuleV3, v3_instances};
use super::resource::{AttributeCut, Resource, ResourceV4};
use crate::file_read::Elements;

/// What a state file says about itself, beside its instances.
#[derive(Debug, Default, Clone)]
pub struct StateHeader {
    pub format_version: u64,
    pub terraform_version: Option<String>,
    pub serial: u64,
    pub lineage: String,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateFormatError {
    #[error(
        "not a JSON document (first bytes look {0}); is the state encrypted, e.g. by git-crypt or SOPS?"
    )]
    NotJson(&'static str),
    #[error("invalid JSON at line {line}, column {column}: {reason}")]
    Json {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("no \"version\" field: this JSON is not a Terraform state")]
    NoVersion,
    #[error("cannot read: {0}")]
    Io(String),
    #[error("state format version {0} is not supported (driftline reads formats 1 to 4)")]
    UnsupportedVersion(u64),
    #[error("format version {version} expects {expected}, which is missing")]
    Layout {
        version: u64,
        expected: &'static str,
    },
}

fn looks(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"\0GITCRYPT") {
        "git-crypt encrypted"
    } else if bytes.iter().take(64).any(|b| *b == 0 || (*b < 0x09)) {
        "binary"
    } else {
        "like text that is not JSON"
    }
}

/// Checks the first bytes of a document: encrypted or binary state is
/// named as such rather than reported as a JSON error. A prefix that is all
/// whitespace passes (the JSON reader decides).
pub fn check_start(prefix: &[u8]) -> Result<(), StateFormatError> {
    match prefix.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        None if !prefix.is_empty() => Ok(()),
        _ => Err(StateFormatError::NotJson(looks(prefix))),
    }
}

/// Reads a state document, handing each instance to `emit` as soon as it
/// is read, in file order, so no tree of the whole file is ever built.
/// Terraform writes `version`, `serial` and `lineage` before `resources`,
/// so format 4 instances stream; a file that puts them after `resources`
/// has its instances held until the end, and formats 1–3 (`modules`, from
/// small old states) are read whole.
///
/// A document that breaks part way returns the error after some instances
/// were already emitted: a caller that must not publish part of a file
/// collects them first (`load_state`).
pub fn read<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    elements: Elements,
    cut: Option<AttributeCut>,
    emit: &mut dyn FnMut(StateInstance, &StateHeader),
) -> Result<StateHeader, StateFormatError> {
    let mut doc = Document {
        elements,
        cut,
        header: StateHeader::default(),
        version: None,
        seen: Seen::default(),
        resources_present: false,
        modules: None,
        held: Vec::new(),
        emit,
    };
    de.deserialize_map(&mut doc).map_err(json_error)?;
    de.end().map_err(json_error)?;
    let Document {
        mut header,
        version,
        resources_present,
        modules,
        held,
        emit,
        ..
    } = doc;
    let version = version.flatten().ok_or(StateFormatError::NoVersion)?;
    header.format_version = version;
    let mut warnings = Vec::new();
    check_terraform_version(version, header.terraform_version.as_deref(), &mut warnings);
    match version {
        4 => {
            if !resources_present {
                return Err(StateFormatError::Layout {
                    version,
                    expected: "\"resources\"",
                });
            }
            for inst in held {
                emit(inst, &header);
            }
        }
        1..=3 => {
            let modules = modules.flatten().ok_or(StateFormatError::Layout {
                version,
                expected: "\"modules\"",
            })?;
            if version < 3 {
                warnings.push(format!(
                    "state format version {version} predates Terraform 0.7; read with the format 3 layout"
                ));
            }
            for inst in v3_instances(modules) {
                emit(inst, &header);
            }
        }
        v => return Err(StateFormatError::UnsupportedVersion(v)),
    }
    header.warnings = warnings;
    Ok(header)
}

fn json_error(e: serde_json::Error) -> StateFormatError {
    if e.is_io() {
        return StateFormatError::Io(e.to_string());
    }
    StateFormatError::Json {
        line: e.line(),
        column: e.column(),
        // serde_json's messages name types and positions, never values.
        reason: e.to_string(),
    }
}

/// The top-level keys the reader acts on.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    Version,
    TerraformVersion,
    Serial,
    Lineage,
    Resources,
    Modules,
    #[serde(other)]
    Other,
}

#[derive(Default)]
struct Seen {
    terraform_version: bool,
    serial: bool,
    lineage: bool,
    resources: bool,
}

/// The state document as the reader walks it.
struct Document<'e> {
    /// How the `resources` array's elements are read.
    elements: Elements<'e>,
    /// What of format 4 instances' attributes is kept; all when unset.
    cut: Option<AttributeCut<'e>>,
    header: StateHeader,
    /// `Some` once the key was read; its value may be `null`.
    version: Option<Option<u64>>,
    seen: Seen,
    resources_present: bool,
    modules: Option<Option<Vec<ModuleV3>>>,
    /// Format 4 instances read before the header was complete.
    held: Vec<StateInstance>,
    emit: &'e mut dyn FnMut(StateInstance, &StateHeader),
}

impl Document<'_> {
    /// Instances stream once the header they carry is known to be final.
    fn streams(&self) -> bool {
        self.version == Some(Some(4)) && self.seen.serial && self.seen.lineage
    }

    fn take(&mut self, inst: StateInstance, streams: bool) {
        if streams {
            (self.emit)(inst, &self.header);
        } else if matches!(self.version, None | Some(Some(4))) {
            // Kept until the version and header are known; a file of
            // another format version ignores `resources`.
            self.held.push(inst);
        }
    }
}

fn once<E: serde::de::Error>(seen: &mut bool, field: &'static str) -> Result<(), E> {
    if std::mem::replace(seen, true) {
        return Err(E::duplicate_field(field));
    }
    Ok(())
}

impl<'de> Visitor<'de> for &mut Document<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Terraform state object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Field>()? {
            match key {
                Field::Version => {
                    if self.version.is_some() {
                        return Err(A::Error::duplicate_field("version"));
                    }
                    let v: Option<u64> = map.next_value()?;
                    self.header.format_version = v.unwrap_or_default();
                    self.version = Some(v);
                }
                Field::TerraformVersion => {
                    once(&mut self.seen.terraform_version, "terraform_version")?;
                    self.header.terraform_version = map.next_value()?;
                }
                Field::Serial => {
                    once(&mut self.seen.serial, "serial")?;
                    self.header.serial = map.next_value()?;
                }
                Field::Lineage => {
                    once(&mut self.seen.lineage, "lineage")?;
                    self.header.lineage = map.next_value()?;
                }
                Field::Resources => {
                    once(&mut self.seen.resources, "resources")?;
                    let streams = self.streams();
                    map.next_value_seed(ResourcesSeed { doc: self, streams })?;
                }
                Field::Modules => {
                    if self.modules.is_some() {
                        return Err(A::Error::duplicate_field("modules"));
                    }
                    self.modules = Some(map.next_value()?);
                }
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `resources`: `null`, or an array read one resource at a time.
struct ResourcesSeed<'d, 'e> {
    doc: &'d mut Document<'e>,
    streams: bool,
}

impl<'de> DeserializeSeed<'de> for ResourcesSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ResourcesSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of resources")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.doc.resources_present = true;
        let elements = self.doc.elements;
        while let Some(r) = elements.next(&mut seq, Resource(self.doc.cut))? {
            v4_instances(r, &mut |inst| self.doc.take(inst, self.streams));
        }
        Ok(())
    }
}

/// The format version decides how the file is read; a `terraform_version`
/// that disagrees with it is worth a warning, not a failure.
fn check_terraform_version(format: u64, tf: Option<&str>, warnings: &mut Vec<String>) {
    let Some(tf) = tf else { return };
    let mut parts = tf.trim_start_matches('v').split(['.', '-']);
    let major = parts.next().and_then(|p| p.parse::<u64>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u64>().ok());
    let (Some(major), Some(minor)) = (major, minor) else {
        warnings.push(format!(
            "terraform_version {tf:?} is not a version number; reading by format version {format}"
        ));
        return;
    };
    // terraformer writes format 3 with the 0.12 it links, so 3 spans 0.7–0.12.
    let consistent = match format {
        4 => major >= 1 || minor >= 12,
        3 => major == 0 && (7..=12).contains(&minor),
        _ => major == 0 && minor < 7,
    };
    if !consistent {
        warnings.push(format!(
            "terraform_version {tf} does not match state format version {format}; reading by format version"
        ));
    }
}

fn v4_instances(r: ResourceV4, out: &mut dyn FnMut(StateInstance)) {
    let managed = r.mode != "data";
    let mut base = String::new();
    if let Some(m) = r.module.as_deref().filter(|m| !m.is_empty()) {
        base.push_str(m);
        base.push('.');
    }
    if !managed {
        base.push_str("data.");
    }
    base.push_str(&r.tf_type);
    base.push('.');
    base.push_str(&r.name);
    for inst in r.instances {
        let address = match &inst.index_key {
            Some(Value::Number(n)) => format!("{base}[{n}]"),
            Some(Value::String(s)) => format!("{base}[{}]", Value::String(s.clone())),
            _ => base.clone(),
        };
        let (attributes, attributes_cut) = match (inst.attributes, inst.attributes_flat) {
            (Some(a), _) => (a, inst.attributes_cut),
            (None, Some(flat)) => {
                let pairs: Vec<(&str, &str)> = flat
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.as_str(), s)))
                    .collect();
                (Value::Object(unflatten(pairs)), false)
            }
            (None, None) => (Value::Object(Map::new()), false),
        };
        out(StateInstance {
            address,
            managed,
            tf_type: r.tf_type.clone(),
            provider: r.provider.clone(),
            index_key: inst.index_key,
            tainted: inst.status.as_deref() == Some("tainted"),
            deposed: inst.deposed,
            attributes,
            attributes_cut,
            sensitive_attributes: inst.sensitive_attributes,
            identity: inst.identity,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Parsed {
        instances: Vec<StateInstance>,
        warnings: Vec<String>,
    }

    /// Reads `bytes` in the parser's stream and again from a mapped copy,
    /// which must read alike, errors and their positions included.
    fn parse(bytes: &[u8]) -> Result<Parsed, StateFormatError> {
        let in_stream = parse_with(bytes, Elements::InStream);
        let mapped = crate::file_read::mapped_copy(bytes);
        let from_map = parse_with(mapped.bytes(), Elements::Mapped(&mapped));
        assert_eq!(format!("{in_stream:?}"), format!("{from_map:?}"));
        in_stream
    }

    fn parse_with(bytes: &[u8], elements: Elements) -> Result<Parsed, StateFormatError> {
        check_start(bytes)?;
        let mut instances = Vec::new();
        let header = read(
            &mut serde_json::Deserializer::from_slice(bytes),
            elements,
            None,
            &mut |i, _| instances.push(i),
        )?;
        Ok(Parsed {
            instances,
            warnings: header.warnings,
        })
    }

    #[test]
    fn a_mapped_file_releases_what_was_read_and_names_lines_in_the_file() {
        // Ten resources of a MiB each: pages are released behind the reader.
        let big = "x".repeat(1 << 20);
        let resources: Vec<String> = (0..10)
            .map(|i| {
                format!(
                    r#"{{"mode":"managed","type":"t","name":"r{i}","instances":[{{"attributes":{{"blob":"{big}"}}}}]}}"#
                )
            })
            .collect();
        let doc = format!(
            "{{\"version\":4,\"serial\":1,\"lineage\":\"l\",\"resources\":[\n{}]}}",
            resources.join(",\n")
        );
        let mapped = crate::file_read::mapped_copy(doc.as_bytes());
        let p = parse_with(mapped.bytes(), Elements::Mapped(&mapped)).unwrap();
        assert_eq!(p.instances.len(), 10);
        assert_eq!(p.instances[9].address, "t.r9");
        assert!(mapped.released() >= 8 << 20, "{}", mapped.released());
        // An element that does not fit names its line and column in the
        // file, as the parser's stream does.
        let bad = b"{\"version\":4,\"serial\":1,\"lineage\":\"l\",\"resources\":[\n  {\"mode\":\"managed\",\"type\":\"t\",\"name\":\"a\"},\n  {\"mode\":\"managed\",\n   \"type\":7,\"name\":\"b\"}]}";
        let fails_at = |text: &[u8], at: (usize, usize)| match parse(text) {
            Err(StateFormatError::Json { line, column, .. }) => assert_eq!((line, column), at),
            other => panic!("expected a JSON error at {at:?}: {other:?}"),
        };
        fails_at(bad, (4, 11));
        // The first element is cut out as text and parsed on its own; its
        // error names the file's line and column all the same.
        let bad_first = b"{\"version\":4,\"serial\":1,\"lineage\":\"l\",\"resources\":[\n  {\"mode\":\"managed\",\n   \"type\":7,\"name\":\"b\"}]}";
        fails_at(bad_first, (3, 11));
    }

    #[test]
    fn small_elements_of_a_mapped_file_release_pages_too() {
        // Elements read in the parser's stream between those cut out as
        // text still let the pages behind them go.
        let resources: Vec<String> = (0..40_000)
            .map(|i| {
                format!(
                    r#"{{"mode":"managed","type":"t","name":"r{i}","instances":[{{"attributes":{{"blob":"{}"}}}}]}}"#,
                    "y".repeat(400)
                )
            })
            .collect();
        let doc = format!(
            r#"{{"version":4,"serial":1,"lineage":"l","resources":[{}]}}"#,
            resources.join(",")
        );
        let mapped = crate::file_read::mapped_copy(doc.as_bytes());
        let p = parse_with(mapped.bytes(), Elements::Mapped(&mapped)).unwrap();
        assert_eq!(p.instances.len(), 40_000);
        assert!(
            mapped.released() >= doc.len() - (9 << 20),
            "{} of {}",
            mapped.released(),
            doc.len()
        );
    }

    #[test]
    fn rejects_clearly() {
        assert!(matches!(
            parse(b"\0GITCRYPT\0abc"),
            Err(StateFormatError::NotJson("git-crypt encrypted"))
        ));
        assert!(matches!(
            parse(b"{\"version\": 9}"),
            Err(StateFormatError::UnsupportedVersion(9))
        ));
        assert!(matches!(
            parse(b"{\"a\": 1}"),
            Err(StateFormatError::NoVersion)
        ));
        let e = parse(b"{\"version\": 4,\n \"resources\": [}").unwrap_err();
        assert!(matches!(e, StateFormatError::Json { line: 2, .. }), "{e}");
    }

    #[test]
    fn v4_addresses() {
        let s = br#"{"version":4,"terraform_version":"1.5.0","serial":3,"lineage":"l","resources":[
          {"module":"module.net","mode":"managed","type":"aws_subnet","name":"private","provider":"provider[\"registry.terraform.io/hashicorp/aws\"]",
           "instances":[{"index_key":1,"attributes":{"id":"subnet-1"}}]},
          {"mode":"managed","type":"aws_iam_role","name":"x","provider":"p","instances":[{"index_key":"a","status":"tainted","attributes":{"id":"r"}},{"index_key":"a","deposed":"00ab","attributes":{"id":"r0"}}]},
          {"mode":"data","type":"aws_ami","name":"u","provider":"p","instances":[{"attributes":{}}]}]}"#;
        let p = parse(s).unwrap();
        let addrs: Vec<_> = p.instances.iter().map(|i| i.address.as_str()).collect();
        assert_eq!(
            addrs,
            vec![
                "module.net.aws_subnet.private[1]",
                "aws_iam_role.x[\"a\"]",
                "aws_iam_role.x[\"a\"]",
                "data.aws_ami.u"
            ]
        );
        assert!(p.instances[1].tainted);
        assert_eq!(p.instances[2].deposed.as_deref(), Some("00ab"));
        assert!(!p.instances[3].managed);
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn a_header_after_the_resources_is_still_every_instance_s() {
        // Terraform writes the header first; a hand-edited file may not.
        let s = br#"{"resources":[{"mode":"managed","type":"t","name":"a","instances":[{"attributes":{}}]}],
          "lineage":"l","serial":7,"version":4}"#;
        let mut seen = Vec::new();
        let h = read(
            &mut serde_json::Deserializer::from_slice(s),
            Elements::InStream,
            None,
            &mut |i, h| seen.push((i.address, h.serial, h.lineage.clone())),
        )
        .unwrap();
        assert_eq!(seen, vec![("t.a".to_string(), 7, "l".to_string())]);
        assert_eq!(h.format_version, 4);
    }

    #[test]
    fn format_3_ignores_resources_and_reads_modules() {
        let s = br#"{"version":3,"resources":[{"mode":"managed","type":"t","name":"a","instances":[{"attributes":{}}]}],
          "modules":[{"path":["root"],"resources":{"aws_s3_bucket.b":{"type":"aws_s3_bucket","primary":{"id":"b","attributes":{"id":"b"}}}}}]}"#;
        let p = parse(s).unwrap();
        let addrs: Vec<_> = p.instances.iter().map(|i| i.address.as_str()).collect();
        assert_eq!(addrs, vec!["aws_s3_bucket.b"]);
    }

    #[test]
    fn a_file_broken_part_way_streams_what_came_before_and_fails() {
        let s = br#"{"version":4,"serial":1,"lineage":"l","resources":[
          {"mode":"managed","type":"t","name":"a","instances":[{"attributes":{}}]},
          {"mode":"managed","type":"t","name":"b","instances":[{"attributes":{"#;
        let mut seen = Vec::new();
        let e = read(
            &mut serde_json::Deserializer::from_slice(s),
            Elements::InStream,
            None,
            &mut |i, _| seen.push(i.address),
        )
        .unwrap_err();
        assert_eq!(seen, vec!["t.a"]);
        assert!(matches!(e, StateFormatError::Json { line: 3, .. }), "{e}");
        // Twice the same key is refused, as a derived reader refuses it.
        let e = parse(br#"{"version":4,"resources":[],"resources":[]}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate field `resources`"), "{e}");
    }
}
