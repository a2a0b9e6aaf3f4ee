//! Collectors read a source and publish what they find onto the bus.
//!
//! The door is `Sources` (`sources.rs`): built from the input specs a user
//! names, it holds one `Collector` per connector that reads them, and the
//! one-shot commands and the service drive the same set — once, or on
//! `run`'s one polling loop.
//!
//! One folder per source, each shaped alike: a config struct, a loader that
//! turns the source's bytes into records, and the `Collector` impl.
//! - `terraform/`: declared state (Terraform state files, formats 1–4)
//! - `aws_config/`: observed state (AWS Config items, notifications, history)
//! - `cost/`: FOCUS cost exports, into the store's `focus_data_table`
//! - `watch/`: the long-running form of both: folders polled for changes
//! - `prometheus/`: metrics scraped from targets and received by remote-write
//! - `logs/`: log files followed through rotation, checkpointed
//! - `otlp/`: OTLP/HTTP metrics and logs pushed by OpenTelemetry SDKs and collectors
//! - `push.rs`: what the HTTP push receivers share (limits, answers, back-pressure)

pub mod aws_config;
mod chunks;
pub mod cost;
pub(crate) mod file_read;
mod inputs;
mod kept_object;
pub mod logs;
pub mod metrics;
pub mod otlp;
pub mod prometheus;
pub mod push;
pub mod registry;
pub mod s3;
pub use driftline_pipeline::secrets;
mod sources;
pub mod status;
pub mod terraform;
pub mod watch;

use std::path::Path;

use driftline_pipeline::RecordSink;

pub use inputs::{InputError, expand_inputs};
pub use sources::{Reading, Sources, SourcesConfig, SourcesError};

/// A source that could not be read, and why. The path (or URL) always
/// comes first so a person can find it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceError {
    pub source: String,
    pub reason: String,
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)
    }
}

/// What one collection pass did.
#[derive(Debug, Default)]
pub struct CollectReport {
    /// Records published.
    pub published: usize,
    /// Sources (files, items) that could not be read; each also went to the
    /// dead-letter topic.
    pub errors: Vec<SourceError>,
    /// Things a person may want to know that are not errors (a skipped
    /// schema file, an odd `terraform_version`).
    pub notes: Vec<String>,
}

/// Called after each source is read, with its size in bytes, so a caller
/// can draw progress.
pub type ProgressFn<'a> = &'a (dyn Fn(&Path, u64) + Sync);

/// One connector reading its inputs. `Sources` builds them; a one-shot
/// command calls `poll_once` once, the service keeps calling it (`run`).
pub trait Collector: Send {
    /// A short name for logs (`terraform`, `aws_config`).
    fn name(&self) -> &'static str;
    /// Total bytes a pass will read, when known up front (for progress).
    fn size_hint(&self) -> Option<u64> {
        None
    }
    /// One pass: read the inputs (a watching collector: what changed since
    /// its last pass) and publish the snapshots, then the statuses.
    fn poll_once(&mut self, out: &dyn RecordSink, progress: ProgressFn<'_>) -> CollectReport;
    /// Time between passes when the collector keeps running.
    fn interval(&self) -> std::time::Duration;
}

/// Keeps `collector` reading, one pass per interval, until `stop` is set.
/// The caller made the first pass (before the pipeline started). Every
/// running collector goes through this one loop.
pub fn run(
    collector: &mut dyn Collector,
    out: &dyn RecordSink,
    stop: &std::sync::atomic::AtomicBool,
) {
    let interval = collector.interval();
    driftline_pipeline::time::every(interval, stop, || {
        let r = collector.poll_once(out, &|_, _| {});
        let name = collector.name();
        for e in &r.errors {
            tracing::warn!(collector = name, error = %e, "cannot read");
        }
        for n in &r.notes {
            tracing::info!(collector = name, "{n}");
        }
    });
}

/// Runs `f` over `items` on all cores, keeping results in input order.
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len());
    if workers <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut slots: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    let results = std::sync::Mutex::new(&mut slots);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            });
        }
    });
    slots.into_iter().flatten().collect()
}

/// Every unreadable source goes to the dead-letter topic with its reason.
pub(crate) fn publish_dead_letters(out: &dyn RecordSink, errors: &[SourceError]) {
    if errors.is_empty() {
        return;
    }
    let records = errors
        .iter()
        .map(|e| {
            driftline_pipeline::Record::DeadLetter(driftline_pipeline::DeadLetter {
                source: e.source.clone(),
                reason: e.reason.clone(),
                ..Default::default()
            })
        })
        .collect();
    if let Err(e) = out.publish(driftline_pipeline::Topic::DeadLetters, records) {
        tracing::error!(error = %e, "cannot publish dead letters");
    }
}

/// A one-shot read's statuses: each file read is up, each that failed is
/// down with its reason. Published after the file's snapshots.
pub(crate) fn publish_file_statuses(
    out: &dyn RecordSink,
    side: driftline_pipeline::SourceSide,
    files: &[std::path::PathBuf],
    errors: &[SourceError],
) {
    let now = driftline_pipeline::now_ms();
    let statuses = files
        .iter()
        .map(|f| {
            let source = f.display().to_string();
            match errors.iter().find(|e| e.source == source) {
                Some(e) => driftline_pipeline::SourceStatus::down(
                    side,
                    source,
                    format!("unreadable: {}", e.reason),
                    None,
                    now,
                ),
                None => driftline_pipeline::SourceStatus::up(side, source, now),
            }
        })
        .map(|s| driftline_pipeline::Record::Status(Box::new(s)))
        .collect();
    if let Err(e) = out.publish(side.topic(), statuses) {
        tracing::error!(error = %e, "cannot publish source statuses");
    }
}

/// What a collector compares to tell a changed record from one it already
/// published: a hash of its JSON form.
pub(crate) fn content_hash<T: serde::Serialize>(v: &T) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_vec(v).unwrap_or_default().hash(&mut h);
    h.finish()
}

/// What a JSON value is, for an error that says what was found instead.
pub(crate) fn json_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Bytes in these files (unreadable ones count as empty), for progress.
pub(crate) fn total_size(files: &[std::path::PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// The type table the cut tests read with: S3 buckets, identified by
/// `bucket`.
#[cfg(test)]
pub(crate) fn s3_bucket_types() -> driftline_pipeline::TypeTable {
    driftline_pipeline::TypeTable::new([driftline_pipeline::TypeIdentity {
        tf_type: "aws_s3_bucket".into(),
        config_type: "AWS::S3::Bucket".into(),
        id_attribute: "bucket".into(),
        global: false,
    }])
}
