//! Terraform state file formats: 4 (Terraform 0.12 – 1.x), 3 (0.7 – 0.11)
//! and 1/2 (pre-0.7, the same module layout as 3). One pass of serde over
//! the file reads whichever layout it is.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::flatmap::unflatten;

/// One resource instance object as the state records it.
#[derive(Debug, Clone)]
pub struct StateInstance {
    pub address: String,
    pub managed: bool,
    pub tf_type: String,
    pub provider: String,
    pub index_key: Option<Value>,
    pub tainted: bool,
    pub deposed: Option<String>,
    pub attributes: Value,
    pub sensitive_attributes: Option<Value>,
    pub identity: Option<Value>,
}

#[derive(Debug)]
pub struct ParsedState {
    pub format_version: u64,
    pub terraform_version: Option<String>,
    pub serial: u64,
    pub lineage: String,
    pub instances: Vec<StateInstance>,
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
    #[error("state format version {0} is not supported (driftline reads formats 1 to 4)")]
    UnsupportedVersion(u64),
    #[error("format version {version} expects {expected}, which is missing")]
    Layout {
        version: u64,
        expected: &'static str,
    },
}

#[derive(Deserialize)]
struct AnyState {
    version: Option<u64>,
    terraform_version: Option<String>,
    #[serde(default)]
    serial: u64,
    #[serde(default)]
    lineage: String,
    resources: Option<Vec<ResourceV4>>,
    modules: Option<Vec<ModuleV3>>,
}

#[derive(Deserialize)]
struct ResourceV4 {
    module: Option<String>,
    mode: String,
    #[serde(rename = "type")]
    tf_type: String,
    name: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    instances: Vec<InstanceV4>,
}

#[derive(Deserialize)]
struct InstanceV4 {
    index_key: Option<Value>,
    status: Option<String>,
    deposed: Option<String>,
    attributes: Option<Value>,
    attributes_flat: Option<BTreeMap<String, Value>>,
    sensitive_attributes: Option<Value>,
    identity: Option<Value>,
}

#[derive(Deserialize)]
struct ModuleV3 {
    #[serde(default)]
    path: Vec<String>,
    #[serde(default)]
    resources: BTreeMap<String, ResourceV3>,
}

#[derive(Deserialize)]
struct ResourceV3 {
    #[serde(rename = "type")]
    tf_type: Option<String>,
    #[serde(default)]
    provider: String,
    primary: Option<InstanceV3>,
    #[serde(default)]
    deposed: Vec<InstanceV3>,
    tainted: Option<Vec<InstanceV3>>,
}

#[derive(Deserialize)]
struct InstanceV3 {
    id: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, Value>,
    #[serde(default)]
    tainted: bool,
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

pub fn parse(bytes: &[u8]) -> Result<ParsedState, StateFormatError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(StateFormatError::NotJson(looks(bytes)));
    }
    let any: AnyState = serde_json::from_slice(bytes).map_err(|e| StateFormatError::Json {
        line: e.line(),
        column: e.column(),
        // serde_json's messages name types and positions, never values.
        reason: e.to_string(),
    })?;
    let version = any.version.ok_or(StateFormatError::NoVersion)?;
    let mut warnings = Vec::new();
    check_terraform_version(version, any.terraform_version.as_deref(), &mut warnings);
    let instances = match version {
        4 => {
            let resources = any.resources.ok_or(StateFormatError::Layout {
                version,
                expected: "\"resources\"",
            })?;
            v4_instances(resources)
        }
        1..=3 => {
            let modules = any.modules.ok_or(StateFormatError::Layout {
                version,
                expected: "\"modules\"",
            })?;
            if version < 3 {
                warnings.push(format!(
                    "state format version {version} predates Terraform 0.7; read with the format 3 layout"
                ));
            }
            v3_instances(modules)
        }
        v => return Err(StateFormatError::UnsupportedVersion(v)),
    };
    Ok(ParsedState {
        format_version: version,
        terraform_version: any.terraform_version,
        serial: any.serial,
        lineage: any.lineage,
        instances,
        warnings,
    })
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

fn v4_instances(resources: Vec<ResourceV4>) -> Vec<StateInstance> {
    let mut out = Vec::with_capacity(resources.len());
    for r in resources {
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
            let attributes = match (inst.attributes, inst.attributes_flat) {
                (Some(a), _) => a,
                (None, Some(flat)) => {
                    let pairs: Vec<(&str, &str)> = flat
                        .iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.as_str(), s)))
                        .collect();
                    Value::Object(unflatten(pairs))
                }
                (None, None) => Value::Object(Map::new()),
            };
            out.push(StateInstance {
                address,
                managed,
                tf_type: r.tf_type.clone(),
                provider: r.provider.clone(),
                index_key: inst.index_key,
                tainted: inst.status.as_deref() == Some("tainted"),
                deposed: inst.deposed,
                attributes,
                sensitive_attributes: inst.sensitive_attributes,
                identity: inst.identity,
            });
        }
    }
    out
}

/// `aws_instance.web.0` → (managed, type, name, index); `data.x.y` → data.
fn split_v3_name(key: &str) -> (bool, String, String, Option<Value>) {
    let (managed, rest) = match key.strip_prefix("data.") {
        Some(r) => (false, r),
        None => (true, key),
    };
    let mut parts: Vec<&str> = rest.split('.').collect();
    let index = match parts.last().and_then(|p| p.parse::<u64>().ok()) {
        Some(i) if parts.len() >= 3 => {
            parts.pop();
            Some(Value::from(i))
        }
        _ => None,
    };
    let tf_type = parts.first().copied().unwrap_or_default().to_string();
    let name = parts.get(1..).map(|p| p.join(".")).unwrap_or_default();
    (managed, tf_type, name, index)
}

/// `provider.aws.west` (0.11), `module.x.provider.aws` → the 0.12+ spelling.
fn v3_provider(raw: &str, tf_type: &str) -> String {
    if raw.is_empty() {
        // 0.7 states carry no provider: it is the type's prefix.
        let p = tf_type.split('_').next().unwrap_or(tf_type);
        return format!("provider.{p}");
    }
    raw.to_string()
}

fn v3_instances(modules: Vec<ModuleV3>) -> Vec<StateInstance> {
    let mut out = Vec::new();
    for m in modules {
        let mut prefix = String::new();
        for p in m.path.iter().skip(1) {
            prefix.push_str("module.");
            prefix.push_str(p);
            prefix.push('.');
        }
        for (key, r) in m.resources {
            let (managed, name_type, name, index) = split_v3_name(&key);
            let tf_type = r.tf_type.clone().unwrap_or(name_type);
            let mut address = format!(
                "{prefix}{}{tf_type}.{name}",
                if managed { "" } else { "data." }
            );
            if let Some(i) = &index {
                address.push_str(&format!("[{i}]"));
            }
            let provider = v3_provider(&r.provider, &tf_type);
            let mut objects: Vec<(InstanceV3, Option<String>, bool)> = Vec::new();
            if let Some(p) = r.primary {
                let tainted = p.tainted;
                objects.push((p, None, tainted));
            }
            for (n, d) in r.deposed.into_iter().enumerate() {
                objects.push((d, Some(format!("deposed-{n}")), false));
            }
            // Terraform 0.6 kept tainted objects in their own list.
            for t in r.tainted.unwrap_or_default() {
                objects.push((t, None, true));
            }
            for (obj, deposed, tainted) in objects {
                let pairs: Vec<(&str, &str)> = obj
                    .attributes
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.as_str(), s)))
                    .collect();
                let mut attrs = unflatten(pairs);
                if let Some(id) = &obj.id {
                    attrs
                        .entry("id")
                        .or_insert_with(|| Value::String(id.clone()));
                }
                out.push(StateInstance {
                    address: address.clone(),
                    managed,
                    tf_type: tf_type.clone(),
                    provider: provider.clone(),
                    index_key: index.clone(),
                    tainted,
                    deposed,
                    attributes: Value::Object(attrs),
                    sensitive_attributes: None,
                    identity: None,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_names() {
        assert_eq!(
            split_v3_name("aws_instance.web.0"),
            (
                true,
                "aws_instance".into(),
                "web".into(),
                Some(Value::from(0))
            )
        );
        assert_eq!(
            split_v3_name("data.aws_ami.ubuntu"),
            (false, "aws_ami".into(), "ubuntu".into(), None)
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
}
