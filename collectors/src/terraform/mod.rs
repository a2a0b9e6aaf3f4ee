//! Declared state from Terraform state files.
//!
//! `load_state` reads one file (formats 1–4), hashes secret values, and
//! resolves each managed instance's resource key through the type table.
//! `TerraformCollector` does that for many files in parallel and publishes
//! the instances onto `driftline.declared`.

pub mod backends;
mod flatmap;
mod instance;
mod legacy;
mod resource;
mod secrets;
mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use driftline_pipeline::model::UNKNOWN;
use driftline_pipeline::{
    Arn, ComparisonCut, DeclaredResource, InstanceStatus, Record, RecordSink, ResourceMode, Topic,
    TypeTable, resource_key, type_id,
};
use serde_json::Value;

use crate::chunks::stream_files;
use crate::file_read::{Elements, SourceFile, with_deserializer};
use crate::{CollectReport, Collector, ProgressFn, SourceError};

pub use flatmap::unflatten;
pub use secrets::Salt;
pub use state::StateFormatError;

/// Where to read state from and how to name what is found there.
#[derive(Debug, Clone)]
pub struct TerraformConfig {
    pub files: Vec<PathBuf>,
    /// Account for resources whose attributes do not name one (an S3
    /// bucket's ARN has no account).
    pub default_account: Option<String>,
    /// Region for resources whose attributes do not name one.
    pub default_region: Option<String>,
    pub salt: Salt,
    pub types: Arc<TypeTable>,
    /// What of the instances' attributes to keep, for the one comparison
    /// this feeds; all of them when unset.
    pub cut: Option<Arc<dyn ComparisonCut>>,
}

impl TerraformConfig {
    /// No files and no default account or region; set the fields to add them.
    pub fn new(types: Arc<TypeTable>, salt: Salt) -> Self {
        Self {
            files: Vec::new(),
            default_account: None,
            default_region: None,
            salt,
            types,
            cut: None,
        }
    }
}

/// A state file after loading.
#[derive(Debug)]
pub struct LoadedState {
    pub format_version: u64,
    pub terraform_version: Option<String>,
    pub serial: u64,
    pub lineage: String,
    pub resources: Vec<DeclaredResource>,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TerraformError {
    #[error("{path}: cannot read: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: {source}")]
    Format {
        path: String,
        source: StateFormatError,
    },
}

impl From<TerraformError> for SourceError {
    fn from(e: TerraformError) -> Self {
        match e {
            TerraformError::Read { path, reason } => SourceError {
                source: path,
                reason,
            },
            TerraformError::Format { path, source } => SourceError {
                source: path,
                reason: source.to_string(),
            },
        }
    }
}

/// Whether a file in a state folder looks like a state file.
pub fn is_state_file(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.contains(".tfstate") || name.ends_with(".json")
}

/// Reads and decodes one state file, all of it or nothing.
pub fn load_state(path: &Path, cfg: &TerraformConfig) -> Result<LoadedState, TerraformError> {
    let mut resources = Vec::new();
    let header = read_state_file(path, cfg, &mut |d| resources.push(d))?;
    Ok(LoadedState::new(header, resources))
}

/// Decodes state bytes read from `source` (a path or URL, for messages).
pub fn load_state_bytes(
    bytes: &[u8],
    source: &str,
    cfg: &TerraformConfig,
) -> Result<LoadedState, TerraformError> {
    state::check_start(bytes).map_err(|e| TerraformError::Format {
        path: source.to_string(),
        source: e,
    })?;
    let mut resources = Vec::new();
    let header = read_with(
        &mut serde_json::Deserializer::from_slice(bytes),
        Elements::InStream,
        source,
        cfg,
        &mut |d| resources.push(d),
    )?;
    Ok(LoadedState::new(header, resources))
}

/// Reads one state file as a stream: each resource goes to `emit` as soon
/// as it is decoded; the file is held whole only within the loaders' shared
/// budget (`file_read`). On an error part way, the resources before it were
/// already emitted.
pub fn read_state_file(
    path: &Path,
    cfg: &TerraformConfig,
    emit: &mut dyn FnMut(DeclaredResource),
) -> Result<state::StateHeader, TerraformError> {
    let source = path.display().to_string();
    let read_error = |e: std::io::Error| TerraformError::Read {
        path: source.clone(),
        reason: e.to_string(),
    };
    let mut file = SourceFile::open(path).map_err(read_error)?;
    state::check_start(file.prefix().map_err(read_error)?).map_err(|e| TerraformError::Format {
        path: source.clone(),
        source: e,
    })?;
    with_deserializer!(file, |de, elements| read_with(
        de, elements, &source, cfg, emit
    ))
}

fn read_with<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    elements: Elements,
    source: &str,
    cfg: &TerraformConfig,
    emit: &mut dyn FnMut(DeclaredResource),
) -> Result<state::StateHeader, TerraformError> {
    let now = now_ms();
    let cut = cfg.cut.as_ref().map(|c| resource::AttributeCut {
        kept: c.kept_keys(),
        types: &cfg.types,
    });
    state::read(de, elements, cut, &mut |inst, header| {
        emit(declare(inst, header, source, now, cfg))
    })
    .map_err(|e| TerraformError::Format {
        path: source.to_string(),
        source: e,
    })
}

impl LoadedState {
    fn new(h: state::StateHeader, resources: Vec<DeclaredResource>) -> Self {
        Self {
            format_version: h.format_version,
            terraform_version: h.terraform_version,
            serial: h.serial,
            lineage: h.lineage,
            resources,
            warnings: h.warnings,
        }
    }
}

/// One instance as a declared resource: secrets hashed, attributes as
/// compact text, identity resolved.
fn declare(
    inst: state::StateInstance,
    header: &state::StateHeader,
    source: &str,
    now: i64,
    cfg: &TerraformConfig,
) -> DeclaredResource {
    let mut attributes = inst.attributes;
    if let (Some(cut), Value::Object(m), false) = (&cfg.cut, &mut attributes, inst.attributes_cut) {
        // What the reader does not keep is neither hashed nor written as
        // text (the state reader cut it already where it could). What tells
        // the instance's identity is kept too; the reader's own cut decides
        // what of it stays.
        let keeps = resource::AttributeCut {
            kept: cut.kept_keys(),
            types: &cfg.types,
        }
        .keeps(&inst.tf_type);
        m.retain(|k, _| keeps(k));
    }
    let sensitive_paths = secrets::redact(
        &mut attributes,
        inst.sensitive_attributes.as_ref(),
        &cfg.salt,
    );
    let mut d = DeclaredResource {
        resource_key: String::new(),
        type_id: String::new(),
        account: String::new(),
        region: String::new(),
        address: inst.address,
        mode: if inst.managed {
            ResourceMode::Managed
        } else {
            ResourceMode::Data
        },
        tf_type: inst.tf_type,
        provider: inst.provider,
        id: attributes.get("id").and_then(scalar_string),
        index_key: inst.index_key,
        status: if inst.tainted {
            InstanceStatus::Tainted
        } else {
            InstanceStatus::Ready
        },
        deposed: inst.deposed,
        attributes: String::new(),
        sensitive_paths,
        source: source.to_string(),
        serial: header.serial,
        lineage: header.lineage.clone(),
        observed_at: now,
        cut: None,
    };
    resolve_identity(&mut d, &attributes, inst.identity.as_ref(), cfg);
    if let Some(cut) = &cfg.cut {
        cut.cut_declared(&mut d, &mut attributes);
    }
    // Serialising a Value (string keys only) cannot fail.
    d.attributes = serde_json::to_string(&attributes).unwrap_or_else(|_| "{}".into());
    d
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Fills account, region, type id and resource key (DESIGN §3): account and
/// region from the instance's `identity`, else its ARN, else telling
/// attributes, else the source's defaults.
fn resolve_identity(
    d: &mut DeclaredResource,
    attrs: &Value,
    identity: Option<&Value>,
    cfg: &TerraformConfig,
) {
    let arn_text = attrs.get("arn").and_then(Value::as_str);
    let arn = arn_text.and_then(Arn::parse);
    let ident = |k: &str| {
        identity
            .and_then(|i| i.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let attr = |k: &str| {
        attrs
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let account = ident("account_id")
        .or(arn.as_ref().map(|a| a.account).filter(|s| !s.is_empty()))
        .or(attr("owner_id").filter(|s| s.bytes().all(|b| b.is_ascii_digit())))
        .map(str::to_string)
        .or_else(|| cfg.default_account.clone())
        .unwrap_or_else(|| UNKNOWN.to_string());
    let mapping = cfg.types.by_tf_type(&d.tf_type);
    let region = if mapping.is_some_and(|m| m.global) {
        "global".to_string()
    } else {
        ident("region")
            .or(arn.as_ref().map(|a| a.region).filter(|s| !s.is_empty()))
            .or(attr("region"))
            .or(attr("availability_zone").and_then(driftline_pipeline::identity::region_of_zone))
            .map(str::to_string)
            .or_else(|| cfg.default_region.clone())
            .unwrap_or_else(|| UNKNOWN.to_string())
    };
    d.account = account;
    d.region = region;
    let Some(m) = mapping else { return };
    if d.mode != ResourceMode::Managed {
        return;
    }
    let Some(rid) = attrs.get(&m.id_attribute).and_then(scalar_string) else {
        return;
    };
    d.type_id = type_id(&m.config_type, &rid);
    d.resource_key = resource_key(&d.account, &d.region, &m.config_type, &rid);
}

/// Publishes every instance of every configured state file.
pub struct TerraformCollector {
    cfg: TerraformConfig,
}

impl TerraformCollector {
    pub fn new(cfg: TerraformConfig) -> Self {
        Self { cfg }
    }
}

impl Collector for TerraformCollector {
    fn name(&self) -> &'static str {
        "terraform"
    }

    fn size_hint(&self) -> Option<u64> {
        Some(crate::total_size(&self.cfg.files))
    }

    /// Read once: a one-shot command's pass, every file on every core.
    fn interval(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    fn poll_once(&mut self, out: &dyn RecordSink, progress: ProgressFn<'_>) -> CollectReport {
        let mut report = CollectReport::default();
        let reads = stream_files(
            &self.cfg.files,
            out,
            Topic::Declared,
            progress,
            &mut report,
            |path, chunks| {
                read_state_file(path, &self.cfg, &mut |d| {
                    chunks.push(Record::Declared(Box::new(d)))
                })
            },
        );
        for (path, read) in self.cfg.files.iter().zip(reads) {
            let source = path.display().to_string();
            match read {
                Ok(header) => report.notes.extend(
                    header
                        .warnings
                        .into_iter()
                        .map(|w| format!("{source}: {w}")),
                ),
                Err(e) => report.errors.push(e.into()),
            }
        }
        crate::publish_file_statuses(
            out,
            driftline_pipeline::SourceSide::Declared,
            &self.cfg.files,
            &report.errors,
        );
        crate::publish_dead_letters(out, &report.errors);
        report
    }
}
