//! Watching collectors: the folders a long-running `driftline run` keeps
//! an eye on. Every pass lists the folders, re-reads the files whose size
//! or modification time changed, and publishes only what changed: a new or
//! different snapshot per resource key, and a tombstone for a resource that
//! no file holds any more. A file that fails to parse (half-written, say)
//! keeps its previous records and is reported once per version. So does a
//! watched folder or remote location that cannot be listed: an unmounted
//! volume or a denied listing is an outage, not a deletion. Each pass also
//! says which sources it could read (`StatusBoard`): one status per watched
//! input, and one per file that currently fails.
//!
//! Folders are polled rather than watched with inotify: it works the same
//! on every filesystem (NFS, bind mounts, Kubernetes volumes) and a pass
//! over an unchanged folder costs one `stat` per file. Remote Terraform
//! state (S3, HTTP backend) is watched the same way: a listing stamps each
//! object (its ETag), and a state whose `serial` and `lineage` did not
//! change is not parsed again.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use driftline_pipeline::{Record, RecordSink, SourceSide, SourceStatus, Topic, TypeTable};

use crate::status::StatusBoard;
use crate::terraform::backends::{Backends, Lineage, StateLocation, peek_lineage};
use crate::terraform::{self, TerraformConfig};
use crate::{CollectReport, SourceError, aws_config, expand_inputs};

/// What a watched folder holds.
pub enum WatchSource {
    /// Terraform state files (`*.tfstate`, `*.json`).
    State(Box<TerraformConfig>),
    /// AWS Config items, notifications and snapshots.
    Observed(Arc<TypeTable>),
}

/// A watching collector's configuration.
pub struct WatchConfig {
    /// Folders (or single files) to watch.
    pub paths: Vec<PathBuf>,
    /// Remote Terraform state (only with `WatchSource::State`).
    pub remote: Vec<StateLocation>,
    /// Time between listings of remote state (each one is an S3 LIST or an
    /// HTTP GET, so less often than local folders).
    pub remote_interval: Duration,
    pub source: WatchSource,
    /// Time between passes.
    pub interval: Duration,
}

/// A file whose latest version cannot be read.
struct Failing {
    stamp: u64,
    reason: String,
    passes: u32,
}

/// Passes a file that was read before may fail before its input is
/// reported down: a file caught half-written is rewritten by then, and an
/// outage is not a blip (its last good version is kept meanwhile). A file
/// never read is reported at once: nothing stands in for it.
const FAILING_PASSES: u32 = 3;

/// What one file holds: key → (rank, content hash, record). Higher rank
/// wins across files.
type FileRecords = HashMap<String, (i64, u64, Record)>;

struct FileState {
    stamp: u64,
    records: FileRecords,
    /// The state's serial and lineage, when it is a Terraform state.
    lineage: Option<Lineage>,
    /// When this version was read (ms).
    read_ms: i64,
}

/// A source to read: a local file, or a listed remote object.
struct Listed {
    id: String,
    stamp: u64,
    path: Option<PathBuf>,
}

/// A collector that keeps publishing what changes in its folders.
pub struct WatchCollector {
    cfg: WatchConfig,
    files: BTreeMap<String, FileState>,
    /// Files whose latest version failed to load: that version's stamp, why,
    /// and for how many passes it has been failing.
    failed: HashMap<String, Failing>,
    /// Inputs (folders, files, remote locations) that could not be listed
    /// in the last pass, with why.
    unlisted: BTreeMap<String, String>,
    status: StatusBoard,
    /// Clients for remote state, built on first use.
    backends: Option<Backends>,
    /// The last listing of each remote location (id, stamp), and when
    /// the listings were made.
    remote_listed: Vec<Vec<(String, u64)>>,
    remote_listed_at: Option<std::time::Instant>,
    /// key → content hash of what is on the bus.
    published: HashMap<String, u64>,
    /// The last publish failed: try again on the next pass.
    retry: bool,
}

fn stamp(p: &Path) -> Option<u64> {
    let m = p.metadata().ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (m.modified().ok()?, m.len()).hash(&mut h);
    Some(h.finish())
}

/// What loading one source gave.
enum Loaded {
    Records(FileRecords, Vec<String>, Option<Lineage>),
    /// A remote state whose serial and lineage are the ones already read.
    Unchanged,
}

impl WatchCollector {
    pub fn new(cfg: WatchConfig) -> Self {
        Self {
            files: BTreeMap::new(),
            failed: HashMap::new(),
            unlisted: BTreeMap::new(),
            status: StatusBoard::new(match cfg.source {
                WatchSource::State(_) => SourceSide::Declared,
                WatchSource::Observed(_) => SourceSide::Observed,
            }),
            backends: None,
            remote_listed: Vec::new(),
            remote_listed_at: None,
            published: HashMap::new(),
            retry: false,
            cfg,
        }
    }

    fn name(&self) -> &'static str {
        match self.cfg.source {
            WatchSource::State(_) => "terraform",
            WatchSource::Observed(_) => "aws_config",
        }
    }

    fn topic(&self) -> Topic {
        self.status.side().topic()
    }

    /// What to read, and what could not be listed.
    fn list(&mut self) -> (Vec<Listed>, Vec<SourceError>) {
        let inputs: Vec<String> = self
            .cfg
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let (files, errs) = match self.cfg.source {
            WatchSource::State(_) => expand_inputs(&inputs, terraform::is_state_file),
            WatchSource::Observed(_) => expand_inputs(&inputs, aws_config::is_item_file),
        };
        let mut errors: Vec<SourceError> = errs.into_iter().map(Into::into).collect();
        self.unlisted
            .retain(|k, _| StateLocation::parse(k).is_some());
        for e in &errors {
            self.unlisted.insert(e.source.clone(), e.reason.clone());
        }
        let mut listed: Vec<Listed> = files
            .into_iter()
            .filter_map(|p| {
                Some(Listed {
                    id: p.display().to_string(),
                    stamp: stamp(&p)?,
                    path: Some(p),
                })
            })
            .collect();
        if !self.cfg.remote.is_empty() && self.backends.is_none() {
            match Backends::new() {
                Ok(b) => self.backends = Some(b),
                Err(e) => errors.push(SourceError {
                    source: "state backends".into(),
                    reason: e.to_string(),
                }),
            }
        }
        let due = self
            .remote_listed_at
            .is_none_or(|at| at.elapsed() >= self.cfg.remote_interval);
        // Between listings the last one stands (an unchanged stamp means
        // nothing is fetched).
        if let (true, Some(b)) = (due, self.backends.as_mut()) {
            self.remote_listed.resize(self.cfg.remote.len(), Vec::new());
            self.remote_listed_at = Some(std::time::Instant::now());
            for (loc, last) in self.cfg.remote.iter().zip(&mut self.remote_listed) {
                match b.list(loc) {
                    Ok(objects) => {
                        self.unlisted.remove(&loc.name());
                        *last = objects.into_iter().map(|o| (o.id, o.stamp)).collect()
                    }
                    // A location that cannot be listed keeps what it had
                    // (a network blip is not a deletion).
                    Err(e) => {
                        self.unlisted.insert(loc.name(), e.reason.clone());
                        errors.push(e)
                    }
                }
            }
        }
        listed.extend(
            self.remote_listed
                .iter()
                .flatten()
                .map(|(id, stamp)| Listed {
                    id: id.clone(),
                    stamp: *stamp,
                    path: None,
                }),
        );
        (listed, errors)
    }

    fn load(&self, item: &Listed) -> Result<Loaded, SourceError> {
        let mut out = HashMap::new();
        let mut notes = Vec::new();
        let mut lineage = None;
        match &self.cfg.source {
            WatchSource::State(cfg) => {
                let state = match &item.path {
                    Some(path) => terraform::load_state(path, cfg).map_err(SourceError::from)?,
                    None => {
                        let backends = self.backends.as_ref().ok_or_else(|| SourceError {
                            source: item.id.clone(),
                            reason: "no state backend client".into(),
                        })?;
                        let (bytes, version) = backends.fetch(&item.id)?;
                        lineage = peek_lineage(&bytes);
                        if lineage.is_some()
                            && self.files.get(&item.id).and_then(|f| f.lineage.as_ref())
                                == lineage.as_ref()
                        {
                            return Ok(Loaded::Unchanged);
                        }
                        let source = match version {
                            Some(v) => format!("{}?versionId={v}", item.id),
                            None => item.id.clone(),
                        };
                        terraform::load_state_bytes(&bytes, &source, cfg)
                            .map_err(SourceError::from)?
                    }
                };
                notes.extend(state.warnings);
                for mut d in state.resources {
                    let (key, _) = driftline_pipeline::codec::declared_key(&d);
                    // `observed_at` is when we read the file, not content.
                    let at = std::mem::take(&mut d.observed_at);
                    let hash = crate::content_hash(&d);
                    d.observed_at = at;
                    out.insert(key, (d.serial as i64, hash, Record::Declared(Box::new(d))));
                }
            }
            WatchSource::Observed(types) => {
                let path = item.path.as_deref().unwrap_or(Path::new(&item.id));
                let loaded = aws_config::load_file(path, types).map_err(SourceError::from)?;
                if let Some(why) = loaded.skipped {
                    notes.push(format!("skipped: {why}"));
                }
                if let Some(reason) = loaded.item_errors.into_iter().next() {
                    return Err(SourceError {
                        source: item.id.clone(),
                        reason,
                    });
                }
                for o in loaded.items {
                    let rank = o.captured_at.unwrap_or(i64::MIN);
                    let hash = crate::content_hash(&o);
                    let key = o.resource_key.clone();
                    // History files hold many items of one resource: keep the latest.
                    match out.get(&key) {
                        Some((r, _, _)) if *r > rank => {}
                        _ => {
                            out.insert(key, (rank, hash, Record::Observed(Box::new(o))));
                        }
                    }
                }
            }
        }
        Ok(Loaded::Records(out, notes, lineage))
    }

    /// One pass: re-reads changed files and publishes what changed.
    fn poll_once(&mut self, out: &dyn RecordSink) -> CollectReport {
        let mut report = CollectReport::default();
        let (listed, list_errors) = self.list();
        report.errors.extend(list_errors);
        let mut dirty = false;
        let present: std::collections::HashSet<&str> =
            listed.iter().map(|l| l.id.as_str()).collect();
        let before = self.files.len();
        // Files under an input that could not be listed keep their records.
        let unlisted: Vec<&str> = self.unlisted.keys().map(String::as_str).collect();
        let kept = |p: &str| {
            present.contains(p)
                || unlisted
                    .iter()
                    .any(|u| std::path::Path::new(p).starts_with(u))
        };
        self.files.retain(|p, _| kept(p));
        self.failed.retain(|p, _| kept(p));
        dirty |= self.files.len() != before;
        let files_read = &crate::metrics::metrics().files_read;
        for item in &listed {
            if self
                .files
                .get(&item.id)
                .is_some_and(|f| f.stamp == item.stamp)
                || self.failed.get(&item.id).map(|f| f.stamp) == Some(item.stamp)
            {
                continue;
            }
            match self.load(item) {
                Ok(Loaded::Unchanged) => {
                    if let Some(f) = self.files.get_mut(&item.id) {
                        f.stamp = item.stamp;
                    }
                    tracing::debug!(source = %item.id, "same serial and lineage; not parsed again");
                }
                Ok(Loaded::Records(records, notes, lineage)) => {
                    files_read.with_label_values(&[self.name(), "ok"]).inc();
                    report
                        .notes
                        .extend(notes.into_iter().map(|n| format!("{}: {n}", item.id)));
                    self.failed.remove(&item.id);
                    self.files.insert(
                        item.id.clone(),
                        FileState {
                            stamp: item.stamp,
                            records,
                            lineage,
                            read_ms: driftline_pipeline::now_ms(),
                        },
                    );
                    dirty = true;
                }
                Err(e) => {
                    files_read.with_label_values(&[self.name(), "error"]).inc();
                    tracing::warn!(collector = self.name(), error = %e, "cannot read; keeping its previous records");
                    self.failed.insert(
                        item.id.clone(),
                        Failing {
                            stamp: item.stamp,
                            reason: e.reason.clone(),
                            passes: 0,
                        },
                    );
                    report.errors.push(e);
                }
            }
        }
        if dirty || self.retry {
            self.publish_changes(out, &mut report);
        }
        self.publish_statuses(out, &mut report);
        crate::publish_dead_letters(out, &report.errors);
        report
    }

    /// After the snapshots: one status per configured input (a folder, a
    /// file, a remote location), so a restarted collector's first pass
    /// overwrites whatever the last process said. An input is down when it
    /// cannot be listed, or when a file under it cannot be read (named in the
    /// reason); it is stale when every failing file's last good version is
    /// kept, and never read when one was never read at all.
    fn publish_statuses(&mut self, out: &dyn RecordSink, report: &mut CollectReport) {
        let now = driftline_pipeline::now_ms();
        for f in self.failed.values_mut() {
            f.passes += 1;
        }
        let local = self.cfg.paths.iter().map(|p| p.display().to_string());
        let remote = self.cfg.remote.iter().map(StateLocation::name);
        let mut statuses = Vec::new();
        for (n, input) in local.chain(remote).enumerate() {
            let status = if let Some(reason) = self.unlisted.get(&input) {
                self.status
                    .down(&input, format!("cannot list: {reason}"), now)
            } else {
                let failing: Vec<(&String, &String)> = self
                    .failed
                    .iter()
                    .filter(|(file, f)| {
                        self.input_of(file) == Some(n)
                            && (f.passes >= FAILING_PASSES || !self.files.contains_key(*file))
                    })
                    .map(|(file, f)| (file, &f.reason))
                    .collect();
                match failing.first() {
                    None => SourceStatus::up(self.status.side(), &input, now),
                    Some((file, reason)) => {
                        let more = match failing.len() {
                            1 => String::new(),
                            k => format!(" (and {} more)", k - 1),
                        };
                        let mut s = self.status.down(
                            &input,
                            format!("unreadable: {file}: {reason}{more}"),
                            now,
                        );
                        // Stale only if every failing file has a kept version.
                        s.last_ok_ms = failing
                            .iter()
                            .map(|(f, _)| self.files.get(*f).map(|kept| kept.read_ms))
                            .collect::<Option<Vec<i64>>>()
                            .and_then(|kept| kept.into_iter().min());
                        s
                    }
                }
            };
            statuses.push(status);
        }
        let records = self.status.update(statuses);
        if records.is_empty() {
            return;
        }
        if let Err(e) = out.publish(self.topic(), records) {
            self.status.forget();
            report.errors.push(SourceError {
                source: self.topic().name().to_string(),
                reason: format!("cannot publish source statuses: {e}"),
            });
        }
    }

    /// Which configured input (index: local paths, then remote locations)
    /// a file or object belongs to.
    fn input_of(&self, file: &str) -> Option<usize> {
        let local = self.cfg.paths.len();
        let under = |p: &std::path::PathBuf| {
            std::path::Path::new(file).starts_with(p)
                || glob::Pattern::new(&p.to_string_lossy()).is_ok_and(|g| g.matches(file))
        };
        if let Some(i) = self.cfg.paths.iter().position(under) {
            return Some(i);
        }
        self.remote_listed
            .iter()
            .position(|listed| listed.iter().any(|(id, _)| id == file))
            .map(|i| local + i)
    }

    fn publish_changes(&mut self, out: &dyn RecordSink, report: &mut CollectReport) {
        // Latest record per key over all files; on a tie the later path wins.
        let mut merged: HashMap<&str, (i64, u64, &Record)> = HashMap::new();
        for f in self.files.values() {
            for (k, (rank, hash, rec)) in &f.records {
                match merged.get(k.as_str()) {
                    Some((r, _, _)) if r > rank => {}
                    _ => {
                        merged.insert(k, (*rank, *hash, rec));
                    }
                }
            }
        }
        let mut changed: Vec<Record> = Vec::new();
        let mut hashes: Vec<(String, u64)> = Vec::new();
        for (k, (_, hash, rec)) in &merged {
            if self.published.get(*k) != Some(hash) {
                changed.push((*rec).clone());
                hashes.push((k.to_string(), *hash));
            }
        }
        let gone: Vec<String> = self
            .published
            .keys()
            .filter(|k| !merged.contains_key(k.as_str()))
            .cloned()
            .collect();
        changed.extend(gone.iter().map(|k| Record::Deleted { key: k.clone() }));
        if changed.is_empty() {
            return;
        }
        let n = changed.len();
        match out.publish(self.topic(), changed) {
            Ok(()) => {
                self.retry = false;
                report.published += n;
                for k in gone {
                    self.published.remove(&k);
                }
                self.published.extend(hashes);
                tracing::debug!(collector = self.name(), published = n, "published changes");
            }
            Err(e) => {
                // Nothing is marked published: the next pass tries again.
                tracing::error!(collector = self.name(), error = %e, "cannot publish; retrying next pass");
                self.retry = true;
                report.errors.push(SourceError {
                    source: self.topic().name().to_string(),
                    reason: format!("cannot publish: {e}"),
                });
            }
        }
    }
}

impl crate::Collector for WatchCollector {
    fn name(&self) -> &'static str {
        WatchCollector::name(self)
    }

    fn poll_once(
        &mut self,
        out: &dyn RecordSink,
        _progress: crate::ProgressFn<'_>,
    ) -> CollectReport {
        WatchCollector::poll_once(self, out)
    }

    fn interval(&self) -> Duration {
        self.cfg.interval
    }
}

#[cfg(test)]
mod tests;
