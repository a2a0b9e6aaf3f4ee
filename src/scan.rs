//! `driftline scan`: every collector once onto an in-process sink, then the
//! drift detector over what they read, with what each source could see.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::prelude::{SessionConfig, SessionContext};
use driftline_collectors::aws_config::api::AwsConfigSettings;
use driftline_collectors::aws_config::{self, AwsConfigFileCollector, AwsConfigFileConfig};
use driftline_collectors::terraform::{self, Salt, TerraformCollector};
use driftline_collectors::{CollectReport, Collector, SourceError, expand_inputs};
use driftline_detectors::{DriftDetector, DriftReport, SourceStatuses, register_snapshots};
use driftline_pipeline::{Collected, Record, SourceSide, SourceStatus, Topic, now_ms};
use indicatif::{ProgressBar, ProgressStyle};

use crate::inputs::{
    collect_live, collect_remote_state, grouped, load_driftignore, load_mappings, terraform_config,
};

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

pub fn scan(inputs: &ScanInputs) -> anyhow::Result<ScanOutcome> {
    let mappings = Arc::new(load_mappings(inputs.mappings.as_deref())?);
    let types = Arc::new(mappings.type_table());
    let ignore = load_driftignore(inputs.driftignore.as_deref())?;
    let state = grouped(&inputs.state, SourceSide::Declared, &inputs.aws)?;
    let observed = grouped(&inputs.observed, SourceSide::Observed, &inputs.aws)?;
    let (local_state, remote_state) = (state.local, state.remote_state);
    let (local_observed, live) = (observed.local, observed.aws_config_api);
    let (state_files, state_errs) = expand_inputs(&local_state, terraform::is_state_file);
    let (observed_files, observed_errs) = expand_inputs(&local_observed, aws_config::is_item_file);
    // An input that names nothing readable is a source that could not be read.
    let unreadable = |side, errs: Vec<driftline_collectors::InputError>| {
        errs.into_iter()
            .map(SourceError::from)
            .map(|e| {
                let reason = format!("unreadable: {}", e.reason);
                let status = SourceStatus::down(side, e.source.clone(), reason, None, now_ms());
                (e, status)
            })
            .collect::<Vec<_>>()
    };
    let (mut errors, mut statuses): (Vec<SourceError>, Vec<SourceStatus>) =
        unreadable(SourceSide::Declared, state_errs)
            .into_iter()
            .chain(unreadable(SourceSide::Observed, observed_errs))
            .unzip();

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
