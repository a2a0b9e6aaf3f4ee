//! The state layout of formats 1–3 (Terraform 0.11 and before): modules,
//! each a map of resources with a primary, deposed and (0.6) tainted
//! objects whose attributes are flatmapped. Such states are small and old:
//! they are read whole, then turned into the instances format 4 gives.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::flatmap::unflatten;
use super::instance::StateInstance;

#[derive(Deserialize)]
pub(super) struct ModuleV3 {
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

pub(super) fn v3_instances(modules: Vec<ModuleV3>) -> Vec<StateInstance> {
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
                    attributes_cut: false,
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
}
