//! `driftline scan`: every source read once (the same collectors `run`
//! keeps running), then the drift detector over what they read, with what
//! each source could see.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::{SessionConfig, SessionContext};
use driftline_collectors::aws_config::api::AwsConfigSettings;
use driftline_collectors::{Reading, SourceError, Sources, SourcesConfig};
use driftline_detectors::{
    DriftDetector, DriftInputs, DriftReport, RuleTables, Rules, SourceStatuses, register_snapshots,
    register_tables,
};
use driftline_pipeline::{DeclaredResource, ObservedResource, Snapshots, Store};
use indicatif::{ProgressBar, ProgressStyle};

use crate::inputs::{load_driftignore, load_mappings};

pub struct ScanInputs {
    pub state: Vec<String>,
    pub observed: Vec<String>,
    pub driftignore: Option<PathBuf>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub mappings: Option<PathBuf>,
    /// How to reach AWS Config when `observed` names `aws-config…`.
    pub aws: AwsConfigSettings,
    /// Policy rules to run beside the drift comparison: `shipped` (the
    /// rules in `detectors/rules/`) or a folder of `*.sql`; none when unset.
    pub rules: Option<PathBuf>,
    /// `[finops] required_tags`, for the rules' `required_tags` table.
    pub required_tags: Vec<String>,
}

/// The rules `--rules` names.
pub fn load_rules(spec: &Path) -> anyhow::Result<Rules> {
    Ok(if spec == Path::new("shipped") {
        Rules::shipped()
    } else {
        Rules::from_dir(spec)?
    })
}

pub struct ScanOutcome {
    pub report: DriftReport,
    /// What each source could read.
    pub statuses: Arc<SourceStatuses>,
    pub errors: Vec<SourceError>,
    pub notes: Vec<String>,
}

/// The comparison's inputs as read: batches of what it compares, or
/// whole records when rules or the store need them too.
enum Tables {
    Batches(Vec<RecordBatch>, Vec<RecordBatch>),
    Records(Vec<DeclaredResource>, Vec<ObservedResource>),
}

/// Inputs larger than this get a progress bar on a terminal.
const PROGRESS_BYTES: u64 = 16 * 1024 * 1024;

/// A progress bar over `total` bytes of input, on a terminal when there
/// are at least `min` of them, hidden otherwise.
pub fn progress_bar(what: &str, total: u64, min: u64) -> ProgressBar {
    if !(std::io::stderr().is_terminal() && total >= min) {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(total);
    b.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:30}}] {{bytes}}/{{total_bytes}} ({{bytes_per_sec}}, {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b
}

/// Reads the inputs once and compares them. With `record`, the resources
/// read are appended to its history tables first (see
/// `store::record_resources`).
pub fn scan(inputs: &ScanInputs, record: Option<&dyn Store>) -> anyhow::Result<ScanOutcome> {
    let mappings = Arc::new(load_mappings(inputs.mappings.as_deref())?);
    let ignore = load_driftignore(inputs.driftignore.as_deref())?;
    let mut cfg = SourcesConfig::new(Arc::new(mappings.type_table()));
    cfg.state = inputs.state.clone();
    cfg.observed = inputs.observed.clone();
    cfg.aws = inputs.aws.clone();
    cfg.account = inputs.account.clone();
    cfg.region = inputs.region.clone();
    // Only the comparison to feed: each chunk of records becomes a batch of
    // what the comparison reads as the collectors publish it, and the
    // loaders keep only what it reads of items' documents.
    let compare_only = inputs.rules.is_none() && record.is_none();
    let compare_sink = compare_only.then(|| DriftInputs::new(&mappings));
    if let Some(sink) = &compare_sink {
        cfg.cut = Some(sink.comparison_cut());
    }
    let mut sources = Sources::new(&cfg, Reading::Once)?;

    let bar = progress_bar("reading inputs", sources.size_hint(), PROGRESS_BYTES);
    let started = std::time::Instant::now();
    let progress = |_: &Path, bytes: u64| bar.inc(bytes);
    let (collected, statuses, tables, rules) = if let Some(sink) = compare_sink {
        let collected = sources.poll_once(&sink, &progress);
        let read = sink.into_read()?;
        let tables = Tables::Batches(read.declared, read.observed);
        (collected, read.statuses, tables, None)
    } else {
        // Rules and the store's history read every attribute.
        let sink = Snapshots::new();
        let collected = sources.poll_once(&sink, &progress);
        let read = sink.into_set();
        let rules = match &inputs.rules {
            Some(spec) => Some((
                load_rules(spec)?,
                RuleTables::from_snapshots(
                    &read.declared,
                    &read.observed,
                    record,
                    &inputs.required_tags,
                )?,
            )),
            None => None,
        };
        if let Some(store) = record {
            // Only a scan that read every source may say a resource is gone.
            let unavailable = SourceStatuses::from_statuses(read.statuses.clone());
            let saw_everything =
                collected.errors.is_empty() && unavailable.unavailable_findings().is_empty();
            let r = driftline_pipeline::store::record_resources(
                store,
                &read.declared,
                &read.observed,
                saw_everything,
                driftline_pipeline::now_ms(),
            )?;
            tracing::info!(?r, "resources recorded");
        }
        let tables = Tables::Records(read.declared, read.observed);
        (collected, read.statuses, tables, rules)
    };
    bar.finish_and_clear();
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "inputs read"
    );
    // What each source could read: nothing in a scope it could not is drift.
    let statuses = Arc::new(SourceStatuses::from_statuses(statuses));

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;
    let mut errors = collected.errors;
    let mut report = rt.block_on(async {
        let ctx = SessionContext::new_with_config(
            SessionConfig::new()
                .with_target_partitions(cores)
                .with_repartition_joins(false),
        );
        let summary = match tables {
            Tables::Batches(declared, observed) => {
                register_tables(&ctx, &mappings, declared, observed)?
            }
            Tables::Records(declared, observed) => {
                register_snapshots(&ctx, &mappings, &declared, &observed)?
            }
        };
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "tables registered"
        );
        DriftDetector::new(mappings.clone(), ignore)
            .with_statuses(statuses.clone())
            .run(&ctx, summary)
            .await
    })?;
    if let Some((rules, tables)) = rules {
        let (findings, failed) = rt.block_on(rules.evaluate(&tables));
        report.findings.extend(findings);
        errors.extend(failed.into_iter().map(|e| SourceError {
            source: e.origin,
            reason: e.reason,
        }));
    }
    tracing::info!(
        findings = report.findings.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "scanned"
    );
    Ok(ScanOutcome {
        report,
        statuses,
        errors,
        notes: collected.notes,
    })
}
