//! Per-type mapping files (`detectors/mappings/*.toml`, one per Terraform
//! type): which AWS Config type a Terraform type is, which attribute holds
//! the Config `resourceId`, and which attributes are compared and how.
//! Users add a type by dropping a file in a directory; no Rust needed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use driftline_pipeline::{TypeIdentity, TypeTable};
use serde::Deserialize;
use serde_json::Value;

use crate::drift::normalise::Normaliser;

/// The mapping files shipped with driftline, compiled in.
const BUILTIN: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/builtin_mappings.rs"));

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub terraform_type: String,
    pub config_type: String,
    /// Terraform attribute holding the AWS Config `resourceId`.
    pub id_attribute: String,
    /// What `terraform import` expects: `resource_id`, `resource_name` or `arn`.
    #[serde(default = "default_import_id")]
    pub import_id: String,
    /// IAM and other global services: AWS Config reports region `global`.
    #[serde(default)]
    pub global: bool,
    /// Declared tag attributes, first non-empty wins (`tags_all` includes
    /// provider default tags, which is what the cloud sees).
    #[serde(default = "default_tag_attributes")]
    pub tag_attributes: Vec<String>,
    /// Set false for types AWS Config does not tag.
    #[serde(default = "yes")]
    pub compare_tags: bool,
    #[serde(default, rename = "compare")]
    pub compares: Vec<Compare>,
    /// Documentation only.
    #[serde(default)]
    pub notes: Option<String>,
}

fn default_import_id() -> String {
    "resource_id".into()
}

fn default_tag_attributes() -> Vec<String> {
    vec!["tags_all".into(), "tags".into()]
}

fn yes() -> bool {
    true
}

/// One compared attribute.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compare {
    /// Dotted path in the Terraform attributes (`versioning.0.enabled`).
    pub terraform: String,
    /// Dotted path in the configuration item, rooted at `configuration`,
    /// `supplementaryConfiguration`, `tags` or `resourceName`.
    pub observed: String,
    /// Applied in order to both sides (see `Normaliser`).
    #[serde(default)]
    pub normalise: Vec<String>,
    /// Observed spellings → declared spellings (`Enabled` → `true`).
    #[serde(default)]
    pub values: HashMap<String, String>,
    /// The value AWS uses when a side leaves the attribute out.
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(skip)]
    pub(crate) normalisers: Vec<Normaliser>,
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("{dir}: cannot read mapping directory: {reason}")]
    Dir { dir: String, reason: String },
    #[error("{file}: terraform_type {tf_type} is already mapped by {other}")]
    Duplicate {
        file: String,
        tf_type: String,
        other: String,
    },
}

/// All mappings, by Terraform type and by Config type.
#[derive(Debug, Clone, Default)]
pub struct Mappings {
    by_tf: HashMap<String, Arc<Mapping>>,
    /// Config type → the Terraform type to adopt it as (first file wins).
    by_config: HashMap<String, Arc<Mapping>>,
    files: HashMap<String, String>,
}

const ROOTS: &[&str] = &[
    "configuration",
    "supplementaryConfiguration",
    "tags",
    "resourceName",
    "arn",
];

impl Mapping {
    /// Whether a comparison reads the resource's own id (a security group
    /// rule naming the group itself).
    pub(crate) fn reads_resource_id(&self) -> bool {
        self.compares
            .iter()
            .any(|c| c.normalisers.iter().any(Normaliser::reads_resource_id))
    }

    fn validate(mut self, file: &str) -> Result<Self, MappingError> {
        let bad = |reason: String| MappingError::Invalid {
            file: file.to_string(),
            reason,
        };
        if !self.config_type.contains("::") {
            return Err(bad(format!(
                "config_type {:?} is not an AWS Config type (AWS::Service::Type)",
                self.config_type
            )));
        }
        if !["resource_id", "resource_name", "arn"].contains(&self.import_id.as_str()) {
            return Err(bad(format!(
                "import_id {:?}: expected resource_id, resource_name or arn",
                self.import_id
            )));
        }
        for (i, c) in self.compares.iter_mut().enumerate() {
            let root = c.observed.split('.').next().unwrap_or_default();
            if !ROOTS.contains(&root) {
                return Err(bad(format!(
                    "compare[{i}].observed {:?} must start with one of {}",
                    c.observed,
                    ROOTS.join(", ")
                )));
            }
            c.normalisers = c
                .normalise
                .iter()
                .map(|n| {
                    Normaliser::parse(n).map_err(|e| bad(format!("compare[{i}].normalise: {e}")))
                })
                .collect::<Result<_, _>>()?;
        }
        Ok(self)
    }
}

impl Mappings {
    /// The mappings shipped with driftline.
    pub fn builtin() -> Result<Self, MappingError> {
        let mut m = Mappings::default();
        for (name, text) in BUILTIN {
            m.add_text(&format!("detectors/mappings/{name}"), text, false)?;
        }
        Ok(m)
    }

    /// Adds (or, with `replace`, overrides) the mappings in `dir/*.toml`.
    pub fn add_dir(&mut self, dir: &Path, replace: bool) -> Result<usize, MappingError> {
        let err = |e: std::io::Error| MappingError::Dir {
            dir: dir.display().to_string(),
            reason: e.to_string(),
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        for f in &files {
            let text = std::fs::read_to_string(f).map_err(|e| MappingError::Invalid {
                file: f.display().to_string(),
                reason: e.to_string(),
            })?;
            self.add_text(&f.display().to_string(), &text, replace)?;
        }
        Ok(files.len())
    }

    pub fn add_text(&mut self, file: &str, text: &str, replace: bool) -> Result<(), MappingError> {
        let m: Mapping = toml::from_str(text).map_err(|e| MappingError::Invalid {
            file: file.to_string(),
            reason: e.to_string(),
        })?;
        let m = Arc::new(m.validate(file)?);
        if !replace && let Some(other) = self.files.get(&m.terraform_type) {
            return Err(MappingError::Duplicate {
                file: file.to_string(),
                tf_type: m.terraform_type.clone(),
                other: other.clone(),
            });
        }
        self.files
            .insert(m.terraform_type.clone(), file.to_string());
        self.by_config
            .entry(m.config_type.clone())
            .or_insert_with(|| m.clone());
        self.by_tf.insert(m.terraform_type.clone(), m);
        Ok(())
    }

    pub fn by_tf_type(&self, t: &str) -> Option<&Arc<Mapping>> {
        self.by_tf.get(t)
    }

    pub fn by_config_type(&self, t: &str) -> Option<&Arc<Mapping>> {
        self.by_config.get(t)
    }

    pub fn len(&self) -> usize {
        self.by_tf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_tf.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Mapping>> {
        self.by_tf.values()
    }

    /// The identity part, for collectors to compute resource keys with.
    pub fn type_table(&self) -> TypeTable {
        TypeTable::new(self.by_tf.values().map(|m| TypeIdentity {
            tf_type: m.terraform_type.clone(),
            config_type: m.config_type.clone(),
            id_attribute: m.id_attribute.clone(),
            global: m.global,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_mappings_load_and_cover_the_twenty_types() {
        let m = Mappings::builtin().unwrap();
        assert!(m.len() >= 20);
        for t in [
            "aws_instance",
            "aws_security_group",
            "aws_s3_bucket",
            "aws_dynamodb_table",
        ] {
            assert!(m.by_tf_type(t).is_some(), "{t}");
        }
        assert_eq!(
            m.by_config_type("AWS::EC2::SecurityGroup")
                .unwrap()
                .terraform_type,
            "aws_security_group"
        );
        assert!(m.type_table().by_tf_type("aws_iam_role").unwrap().global);
    }

    #[test]
    fn bad_files_are_named_with_the_reason() {
        let mut m = Mappings::default();
        let base =
            "terraform_type = \"aws_x\"\nconfig_type = \"AWS::X::Y\"\nid_attribute = \"id\"\n";
        let e = m.add_text("x.toml", &format!("{base}[[compare]]\nterraform = \"a\"\nobserved = \"configuration.a\"\nnormalise = [\"sideways\"]\n"), false).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("x.toml: compare[0].normalise: unknown normaliser \"sideways\""),
            "{e}"
        );
        let e = m
            .add_text(
                "y.toml",
                &format!("{base}[[compare]]\nterraform = \"a\"\nobserved = \"config.a\"\n"),
                false,
            )
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("y.toml: compare[0].observed \"config.a\" must start with"),
            "{e}"
        );
        let e = m
            .add_text("z.toml", &format!("{base}colour = \"red\"\n"), false)
            .unwrap_err();
        assert!(
            e.to_string().starts_with("z.toml:") && e.to_string().contains("colour"),
            "{e}"
        );
        let e = m
            .add_text(
                "w.toml",
                "terraform_type = \"aws_x\"\nconfig_type = \"nope\"\nid_attribute = \"id\"\n",
                false,
            )
            .unwrap_err();
        assert!(e.to_string().contains("not an AWS Config type"), "{e}");
        m.add_text("a.toml", base, false).unwrap();
        let e = m.add_text("b.toml", base, false).unwrap_err();
        assert!(matches!(e, MappingError::Duplicate { .. }), "{e}");
        m.add_text("c.toml", base, true).expect("replace overrides");
    }
}
