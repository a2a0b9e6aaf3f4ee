//! The embedded pipeline: collectors publish onto the in-process bus, the
//! drift detector reads both snapshot topics into DataFusion. Kafka and
//! ClickHouse replace the bus and the store behind the same doors later.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use datafusion::prelude::{SessionConfig, SessionContext};
use driftline_collectors::aws_config::{self, AwsConfigFileCollector, AwsConfigFileConfig};
use driftline_collectors::terraform::{self, Salt, TerraformCollector, TerraformConfig};
use driftline_collectors::{CollectReport, Collector, SourceError, expand_inputs};
use driftline_detectors::{
    DriftDetector, DriftIgnore, DriftReport, Mappings, SourceStatuses, register_snapshots,
};
use driftline_pipeline::{
    Collected, Record, SourceSide, SourceStatus, Topic, TypeTable, format_epoch_ms, now_ms,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use driftline_collectors::aws_config::api::AwsConfigSettings;
use driftline_collectors::aws_config::live::AwsConfigApiCollector;
use driftline_collectors::terraform::backends::StateLocation;
use driftline_collectors::watch::{WatchCollector, WatchConfig, WatchSource};

use crate::IdentityArgs;

/// True for inputs that are not local paths: remote Terraform state
/// (`s3://…`, `http(s)://…`) or the live AWS Config API (`aws-config…`).
pub fn is_remote(s: &str) -> bool {
    StateLocation::parse(s).is_some()
        || AwsConfigApiCollector::settings_from_spec(s, &AwsConfigSettings::default()).is_some()
}

/// Local state paths and remote state locations.
pub fn split_state(inputs: &[String]) -> anyhow::Result<(Vec<String>, Vec<StateLocation>)> {
    let mut local = Vec::new();
    let mut remote = Vec::new();
    for i in inputs {
        match StateLocation::parse(i) {
            Some(loc) => remote.push(loc.map_err(|e| anyhow::anyhow!(e))?),
            None => local.push(i.clone()),
        }
    }
    Ok((local, remote))
}

/// Local observed paths, and one API collector's settings per `aws-config…`.
pub fn split_observed(
    inputs: &[String],
    base: &AwsConfigSettings,
) -> (Vec<String>, Vec<AwsConfigSettings>) {
    let mut local = Vec::new();
    let mut live = Vec::new();
    for i in inputs {
        match AwsConfigApiCollector::settings_from_spec(i, base) {
            Some(s) => live.push(s),
            None => local.push(i.clone()),
        }
    }
    (local, live)
}

pub struct ScanInputs {
    pub state: Vec<String>,
    pub observed: Vec<String>,
    pub driftignore: Option<PathBuf>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub mappings: Option<PathBuf>,
    /// How to reach AWS Config when `observed` names `aws-config…`.
    pub aws: AwsConfigSettings,
}

pub struct ScanOutcome {
    pub report: DriftReport,
    /// What each source could read.
    pub statuses: Arc<SourceStatuses>,
    pub errors: Vec<SourceError>,
    pub notes: Vec<String>,
}

/// Inputs larger than this get a progress bar on a terminal.
const PROGRESS_BYTES: u64 = 16 * 1024 * 1024;

/// The `.driftignore` rules at `path`, or none.
pub fn load_driftignore(path: Option<&Path>) -> anyhow::Result<DriftIgnore> {
    Ok(match path {
        Some(p) => DriftIgnore::parse(
            &std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read .driftignore", p.display()))?,
        ),
        None => DriftIgnore::default(),
    })
}

pub fn load_mappings(dir: Option<&Path>) -> anyhow::Result<Mappings> {
    let mut m = Mappings::builtin()?;
    if let Some(d) = dir {
        m.add_dir(d, true)?;
    }
    Ok(m)
}

/// The state collector's config with this run's salt and default identity.
fn terraform_config(
    files: Vec<PathBuf>,
    account: Option<String>,
    region: Option<String>,
    types: Arc<TypeTable>,
    salt: Salt,
) -> TerraformConfig {
    let mut cfg = TerraformConfig::new(types, salt);
    cfg.files = files;
    cfg.default_account = account;
    cfg.default_region = region;
    cfg
}

pub fn scan(inputs: &ScanInputs) -> anyhow::Result<ScanOutcome> {
    let mappings = Arc::new(load_mappings(inputs.mappings.as_deref())?);
    let types = Arc::new(mappings.type_table());
    let ignore = load_driftignore(inputs.driftignore.as_deref())?;
    let (local_state, remote_state) = split_state(&inputs.state)?;
    let (local_observed, live) = split_observed(&inputs.observed, &inputs.aws);
    let (state_files, state_errs) = expand_inputs(&local_state, terraform::is_state_file);
    let (observed_files, observed_errs) = expand_inputs(&local_observed, aws_config::is_item_file);
    let mut errors: Vec<SourceError> = state_errs.into_iter().map(Into::into).collect();
    let state_unreadable = errors.len();
    errors.extend(observed_errs.into_iter().map(SourceError::from));
    // An input that names nothing readable is a source that could not be read.
    let mut statuses: Vec<SourceStatus> = errors
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let side = if i < state_unreadable {
                SourceSide::Declared
            } else {
                SourceSide::Observed
            };
            let reason = format!("unreadable: {}", e.reason);
            SourceStatus::down(side, e.source.clone(), reason, None, now_ms())
        })
        .collect();

    // One salt for every state this run reads, so hashed secrets compare.
    let salt = Salt::from_env_or_random();
    let tf = TerraformCollector::new(terraform_config(
        state_files,
        inputs.account.clone(),
        inputs.region.clone(),
        types.clone(),
        salt.clone(),
    ));
    let observed = AwsConfigFileCollector::new(AwsConfigFileConfig {
        files: observed_files,
        types: types.clone(),
    });
    let collectors: [&dyn Collector; 2] = [&tf, &observed];

    let bus = Collected::new();
    let total: u64 = collectors.iter().filter_map(|c| c.size_hint()).sum();
    let bar = if std::io::stderr().is_terminal() && total >= PROGRESS_BYTES {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template("{spinner} reading inputs [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let progress = |_: &Path, bytes: u64| bar.inc(bytes);
    let started = std::time::Instant::now();
    let reports: Vec<CollectReport> = std::thread::scope(|s| {
        let handles: Vec<_> = collectors
            .iter()
            .map(|c| s.spawn(|| c.collect(&bus, &progress)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    bar.finish_and_clear();
    let mut notes = Vec::new();
    // Remote sources: state backends and the AWS Config API, read once.
    let tf = terraform_config(
        Vec::new(),
        inputs.account.clone(),
        inputs.region.clone(),
        types.clone(),
        salt,
    );
    for r in [
        collect_remote_state(&bus, remote_state, tf),
        collect_live(&bus, live, &types)?,
    ] {
        errors.extend(r.errors);
        notes.extend(r.notes);
    }
    for (c, r) in collectors.iter().zip(reports) {
        tracing::info!(
            collector = c.name(),
            published = r.published,
            errors = r.errors.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "collected"
        );
        errors.extend(r.errors);
        notes.extend(r.notes);
    }

    // What each source could read: nothing in a scope it could not is drift.
    let mut declared = Vec::new();
    let mut observed = Vec::new();
    for r in bus
        .drain(Topic::Declared)
        .into_iter()
        .chain(bus.drain(Topic::Config))
    {
        match r {
            Record::Declared(d) => declared.push(*d),
            Record::Observed(o) => observed.push(*o),
            Record::Status(s) => statuses.push(*s),
            Record::DeadLetter(_) | Record::Deleted { .. } => {}
        }
    }
    let statuses = Arc::new(SourceStatuses::from_statuses(statuses));

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        let ctx =
            SessionContext::new_with_config(SessionConfig::new().with_target_partitions(cores));
        let summary = register_snapshots(&ctx, &mappings, &declared, &observed)?;
        drop((declared, observed));
        DriftDetector::new(mappings.clone(), ignore)
            .with_statuses(statuses.clone())
            .run(&ctx, summary)
            .await
    })?;
    tracing::info!(
        findings = report.findings.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "scanned"
    );
    Ok(ScanOutcome {
        report,
        statuses,
        errors,
        notes,
    })
}

/// Reads remote Terraform state once onto `bus`.
fn collect_remote_state(
    bus: &Collected,
    remote: Vec<StateLocation>,
    tf: TerraformConfig,
) -> CollectReport {
    if remote.is_empty() {
        return CollectReport::default();
    }
    WatchCollector::new(WatchConfig {
        paths: Vec::new(),
        remote,
        remote_interval: std::time::Duration::ZERO,
        source: WatchSource::State(Box::new(tf)),
        interval: std::time::Duration::ZERO,
    })
    .poll_once(bus)
}

/// Reads the live AWS Config API once onto `bus`, one collector per spec.
fn collect_live(
    bus: &Collected,
    live: Vec<AwsConfigSettings>,
    types: &Arc<TypeTable>,
) -> anyhow::Result<CollectReport> {
    let mut report = CollectReport::default();
    for settings in live {
        settings
            .validate("--observed")
            .map_err(|e| anyhow::anyhow!(e.to_string()))?;
        let r = AwsConfigApiCollector::new(settings, types.clone())?.poll_once(bus);
        report.published += r.published;
        report.errors.extend(r.errors);
        report.notes.extend(r.notes);
    }
    Ok(report)
}

/// `driftline state list`.
pub fn state_list(inputs: &[String], id: &IdentityArgs, as_json: bool) -> anyhow::Result<ExitCode> {
    let mappings = load_mappings(id.mappings.as_deref())?;
    let (local, remote) = split_state(inputs)?;
    let (files, errs) = expand_inputs(&local, terraform::is_state_file);
    let mut errors: Vec<SourceError> = errs.into_iter().map(Into::into).collect();
    let types = Arc::new(mappings.type_table());
    let cfg = terraform_config(
        Vec::new(),
        id.account.clone(),
        id.region.clone(),
        types.clone(),
        Salt::from_env_or_random(),
    );
    let mut rows = Vec::new();
    let bus = Collected::new();
    errors.extend(collect_remote_state(&bus, remote, cfg.clone()).errors);
    rows.extend(
        bus.drain(Topic::Declared)
            .into_iter()
            .filter_map(|r| match r {
                Record::Declared(d) => Some(*d),
                _ => None,
            }),
    );
    for f in &files {
        match terraform::load_state(f, &cfg) {
            Ok(state) => {
                for w in &state.warnings {
                    eprintln!("warning: {}: {w}", f.display());
                }
                rows.extend(state.resources);
            }
            Err(e) => errors.push(e.into()),
        }
    }
    let mut out = std::io::stdout().lock();
    if as_json {
        let entries: Vec<_> = rows
            .iter()
            .map(|d| {
                json!({
                    "address": d.address, "mode": d.mode, "type": d.tf_type, "provider": d.provider,
                    "id": d.id, "index_key": d.index_key, "status": d.status, "deposed": d.deposed.is_some(),
                    "deposed_key": d.deposed, "resource_key": (!d.resource_key.is_empty()).then_some(&d.resource_key),
                    "sensitive_paths": d.sensitive_paths, "source": d.source, "serial": d.serial, "lineage": d.lineage,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &entries)?;
        writeln!(out)?;
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|d| {
                vec![
                    d.address.clone(),
                    d.mode.as_str().into(),
                    d.tf_type.clone(),
                    d.id.clone().unwrap_or_default(),
                    d.index_key
                        .as_ref()
                        .map(|k| k.to_string())
                        .unwrap_or_default(),
                    d.status.as_str().into(),
                    if d.deposed.is_some() {
                        "deposed".into()
                    } else {
                        String::new()
                    },
                    d.provider.clone(),
                ]
            })
            .collect();
        crate::report::write_table(
            &mut out,
            &[
                "ADDRESS",
                "MODE",
                "TYPE",
                "ID",
                "INDEX_KEY",
                "STATUS",
                "DEPOSED",
                "PROVIDER",
            ],
            &table,
        )?;
    }
    Ok(list_exit(&errors))
}

fn list_exit(errors: &[SourceError]) -> ExitCode {
    for e in errors {
        eprintln!("error: {e}");
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// `driftline observed list`.
pub fn observed_list(
    inputs: &[String],
    id: &IdentityArgs,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let mappings = load_mappings(id.mappings.as_deref())?;
    let types = Arc::new(mappings.type_table());
    let (local, live) = split_observed(inputs, &AwsConfigSettings::default());
    let (files, errs) = expand_inputs(&local, aws_config::is_item_file);
    let mut errors: Vec<SourceError> = errs.into_iter().map(Into::into).collect();
    let mut rows = Vec::new();
    let bus = Collected::new();
    errors.extend(collect_live(&bus, live, &types)?.errors);
    rows.extend(
        bus.drain(Topic::Config)
            .into_iter()
            .filter_map(|r| match r {
                Record::Observed(o) => Some(*o),
                _ => None,
            }),
    );
    for f in &files {
        match aws_config::load_file(f, &types) {
            Ok(loaded) => {
                if let Some(why) = loaded.skipped {
                    eprintln!("note: {}: skipped: {why}", f.display());
                }
                errors.extend(loaded.item_errors.into_iter().map(|reason| SourceError {
                    source: f.display().to_string(),
                    reason,
                }));
                rows.extend(loaded.items);
            }
            Err(e) => errors.push(e.into()),
        }
    }
    let mut out = std::io::stdout().lock();
    if as_json {
        let entries: Vec<_> = rows
            .iter()
            .map(|o| {
                json!({
                    "resource_key": o.resource_key, "resource_type": o.resource_type, "resource_id": o.resource_id,
                    "resource_name": o.resource_name, "arn": o.arn, "account": o.account, "region": o.region,
                    "status": o.status, "captured_at": o.captured_at.map(format_epoch_ms),
                    "configuration_state_id": o.configuration_state_id, "summary_only": o.summary_only, "source": o.source,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &entries)?;
        writeln!(out)?;
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|o| {
                vec![
                    o.resource_key.clone(),
                    o.resource_type.clone(),
                    o.resource_id.clone(),
                    o.arn.clone().unwrap_or_default(),
                    o.account.clone(),
                    o.region.clone(),
                    o.status.as_str().into(),
                    o.captured_at.map(format_epoch_ms).unwrap_or_default(),
                ]
            })
            .collect();
        crate::report::write_table(
            &mut out,
            &[
                "RESOURCE_KEY",
                "RESOURCE_TYPE",
                "RESOURCE_ID",
                "ARN",
                "ACCOUNT",
                "REGION",
                "STATUS",
                "CAPTURED_AT",
            ],
            &table,
        )?;
    }
    Ok(list_exit(&errors))
}

/// The example estate: the checkout's `examples/estate` when run from a
/// clone, else the copy compiled into the binary, unpacked to a temp dir.
pub fn demo_estate() -> anyhow::Result<PathBuf> {
    let in_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/estate");
    if in_tree.is_dir() {
        return Ok(in_tree);
    }
    let dir = std::env::temp_dir().join(format!("driftline-demo-{}", std::process::id()));
    for (rel, text) in DEMO_FILES {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, text)
            .with_context(|| format!("{}: cannot write demo file", p.display()))?;
    }
    Ok(dir)
}

const DEMO_FILES: &[(&str, &str)] = &[
    (
        "terraform/terraform.tfstate",
        include_str!("../examples/estate/terraform/terraform.tfstate"),
    ),
    (
        "aws-config/snapshot.json",
        include_str!("../examples/estate/aws-config/snapshot.json"),
    ),
    (
        "aws-config/notification.json",
        include_str!("../examples/estate/aws-config/notification.json"),
    ),
    (
        ".driftignore",
        include_str!("../examples/estate/.driftignore"),
    ),
];
