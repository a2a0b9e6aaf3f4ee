//! The door of this crate. `Sources` turns the input specs a user names —
//! `--state` / `--observed` on the command line, `[watch]` in the service's
//! configuration — into one `Collector` per connector that reads them (the
//! registry decides which), and `scan`, the list commands and `run` all
//! drive that one set: once, or on the polling loop (`crate::run`).
//!
//! The one difference between the two ways of reading is local files. Read
//! once, they go to the side's file collector, which reads every file on
//! every core and keeps nothing afterwards. Kept running, they go to a
//! watching collector, which remembers what it published so a pass over an
//! unchanged folder costs one `stat` per file. Remote state and the AWS
//! Config API are read by the same collector either way.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use driftline_pipeline::{
    ComparisonCut, Record, RecordSink, SourceSide, SourceStatus, TypeTable, now_ms,
};

use crate::aws_config::api::AwsConfigSettings;
use crate::aws_config::live::AwsConfigApiCollector;
use crate::aws_config::{self, AwsConfigFileCollector, AwsConfigFileConfig};
use crate::registry::{self, Inputs};
use crate::terraform::{self, Salt, TerraformCollector, TerraformConfig};
use crate::watch::{WatchCollector, WatchConfig, WatchSource};
use crate::{CollectReport, Collector, ProgressFn, SourceError, expand_inputs};

/// How the sources will be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Once, as `scan` and the list commands read them.
    Once,
    /// Continuously, as `driftline run` reads them.
    Watching,
}

/// What to read and how to name it.
#[derive(Clone)]
pub struct SourcesConfig {
    /// Declared state: folders, files, globs, `s3://…`, `https://…`.
    pub state: Vec<String>,
    /// What runs: folders, files, globs, `aws-config[:REGION,…]`,
    /// `aws-config-aggregator:NAME`.
    pub observed: Vec<String>,
    /// How to reach AWS Config, for the `aws-config…` specs.
    pub aws: AwsConfigSettings,
    /// The resource types the mappings know.
    pub types: Arc<TypeTable>,
    /// What the state and item loaders cut of what they read, for a scan
    /// that only compares; nothing when unset.
    pub cut: Option<Arc<dyn ComparisonCut>>,
    /// One salt for every state read, so hashed secrets compare.
    pub salt: Salt,
    /// Account and region for state that does not say (Terraform state
    /// rarely does).
    pub account: Option<String>,
    pub region: Option<String>,
    /// Time between passes over local folders (when watching).
    pub interval: Duration,
    /// Time between listings of remote state (when watching).
    pub remote_interval: Duration,
}

impl SourcesConfig {
    /// Reads nothing yet: add specs to `state` and `observed`.
    pub fn new(types: Arc<TypeTable>) -> Self {
        Self {
            state: Vec::new(),
            observed: Vec::new(),
            aws: AwsConfigSettings::default(),
            types,
            cut: None,
            // The process's, which the other collectors hash with.
            salt: Salt::process().clone(),
            account: None,
            region: None,
            interval: Duration::from_secs(5),
            remote_interval: Duration::from_secs(60),
        }
    }

    fn terraform(&self, files: Vec<PathBuf>) -> TerraformConfig {
        let mut cfg = TerraformConfig::new(self.types.clone(), self.salt.clone());
        cfg.files = files;
        cfg.cut = self.cut.clone();
        cfg.default_account = self.account.clone();
        cfg.default_region = self.region.clone();
        cfg
    }
}

/// A spec that cannot work, or an API client that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error("{0}")]
    Input(String),
    #[error("AWS Config: {0}")]
    AwsConfig(String),
}

/// Every collector the specs ask for.
pub struct Sources {
    collectors: Vec<Box<dyn Collector>>,
    /// Read once: inputs that name nothing readable (a missing folder, a
    /// glob that matches nothing), reported and marked down on each pass.
    unreadable: Vec<(SourceSide, SourceError)>,
    /// The first AWS Config API collector.
    api: Option<Arc<AwsConfigApiCollector>>,
}

impl Sources {
    pub fn new(cfg: &SourcesConfig, reading: Reading) -> Result<Self, SourcesError> {
        let input = |specs: &[String], side| {
            registry::inputs(specs, side, &cfg.aws).map_err(SourcesError::Input)
        };
        let state: Inputs = input(&cfg.state, SourceSide::Declared)?;
        let observed: Inputs = input(&cfg.observed, SourceSide::Observed)?;
        let mut sources = Sources {
            collectors: Vec::new(),
            unreadable: Vec::new(),
            api: None,
        };
        match reading {
            Reading::Once => sources.read_files_once(cfg, &state.local, &observed.local),
            Reading::Watching => sources.watch_files(cfg, &state.local, &observed.local),
        }
        if !state.remote_state.is_empty() {
            // Remote state is listed and fetched by the watching collector
            // either way: it remembers each object's stamp, and read once
            // that costs nothing.
            sources
                .collectors
                .push(Box::new(WatchCollector::new(WatchConfig {
                    paths: Vec::new(),
                    remote: state.remote_state,
                    remote_interval: cfg.remote_interval,
                    source: WatchSource::State(Box::new(cfg.terraform(Vec::new()))),
                    interval: cfg.interval,
                })));
        }
        for settings in observed.aws_config_api {
            settings
                .validate("aws_config")
                .map_err(|e| SourcesError::AwsConfig(e.to_string()))?;
            let api = Arc::new(
                AwsConfigApiCollector::new(settings, cfg.types.clone())
                    .map_err(|e| SourcesError::AwsConfig(e.to_string()))?,
            );
            sources.api.get_or_insert_with(|| api.clone());
            sources.collectors.push(Box::new(api));
        }
        Ok(sources)
    }

    fn read_files_once(&mut self, cfg: &SourcesConfig, state: &[String], observed: &[String]) {
        let (state_files, state_errs) = expand_inputs(state, terraform::is_state_file);
        let (observed_files, observed_errs) = expand_inputs(observed, aws_config::is_item_file);
        let unreadable = |side, errs: Vec<crate::InputError>| {
            errs.into_iter().map(move |e| (side, SourceError::from(e)))
        };
        self.unreadable = unreadable(SourceSide::Declared, state_errs)
            .chain(unreadable(SourceSide::Observed, observed_errs))
            .collect();
        crate::file_read::bulk_read(
            crate::total_size(&state_files) + crate::total_size(&observed_files),
        );
        if !state_files.is_empty() {
            let tf = TerraformCollector::new(cfg.terraform(state_files));
            self.collectors.push(Box::new(tf));
        }
        if !observed_files.is_empty() {
            self.collectors
                .push(Box::new(AwsConfigFileCollector::new(AwsConfigFileConfig {
                    files: observed_files,
                    types: cfg.types.clone(),
                    cut: cfg.cut.clone(),
                })));
        }
    }

    fn watch_files(&mut self, cfg: &SourcesConfig, state: &[String], observed: &[String]) {
        let sides = [
            (
                state,
                WatchSource::State(Box::new(cfg.terraform(Vec::new()))),
            ),
            (observed, WatchSource::Observed(cfg.types.clone())),
        ];
        for (specs, source) in sides {
            if specs.is_empty() {
                continue;
            }
            self.collectors
                .push(Box::new(WatchCollector::new(WatchConfig {
                    paths: specs.iter().map(PathBuf::from).collect(),
                    remote: Vec::new(),
                    remote_interval: cfg.remote_interval,
                    source,
                    interval: cfg.interval,
                })));
        }
    }

    /// Bytes the local files hold, for progress.
    pub fn size_hint(&self) -> u64 {
        self.collectors.iter().filter_map(|c| c.size_hint()).sum()
    }

    /// The first AWS Config API collector: the notification inbox asks it
    /// to complete notifications too large to carry their item.
    pub fn api_collector(&self) -> Option<Arc<AwsConfigApiCollector>> {
        self.api.clone()
    }

    /// One pass of every collector, side by side, onto `out`; then, read
    /// once, the inputs that named nothing, as down sources and errors.
    pub fn poll_once(&mut self, out: &dyn RecordSink, progress: ProgressFn<'_>) -> CollectReport {
        let started = std::time::Instant::now();
        let reports: Vec<(&'static str, CollectReport)> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .collectors
                .iter_mut()
                .map(|c| s.spawn(move || (c.name(), c.poll_once(out, progress))))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut report = CollectReport::default();
        for (name, r) in reports {
            tracing::info!(
                collector = name,
                published = r.published,
                errors = r.errors.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "collected"
            );
            report.published += r.published;
            report.errors.extend(r.errors);
            report.notes.extend(r.notes);
        }
        for side in [SourceSide::Declared, SourceSide::Observed] {
            let down: Vec<Record> = self
                .unreadable
                .iter()
                .filter(|(s, _)| *s == side)
                .map(|(_, e)| {
                    let reason = format!("unreadable: {}", e.reason);
                    SourceStatus::down(side, e.source.clone(), reason, None, now_ms())
                })
                .map(|s| Record::Status(Box::new(s)))
                .collect();
            if !down.is_empty()
                && let Err(e) = out.publish(side.topic(), down)
            {
                tracing::error!(error = %e, "cannot publish source statuses");
            }
        }
        report
            .errors
            .splice(0..0, self.unreadable.iter().map(|(_, e)| e.clone()));
        report
    }

    /// The collectors, for the service to keep running (`crate::run`).
    pub fn into_collectors(self) -> Vec<Box<dyn Collector>> {
        self.collectors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftline_pipeline::Snapshots;

    fn estate(part: &str) -> String {
        format!("{}/../examples/estate/{part}", env!("CARGO_MANIFEST_DIR"))
    }

    fn config() -> SourcesConfig {
        let mut cfg = SourcesConfig::new(Arc::new(TypeTable::default()));
        cfg.state = vec![estate("terraform"), "/nonexistent/states".into()];
        cfg.observed = vec![estate("aws-config")];
        cfg
    }

    #[test]
    fn read_once_gives_both_sides_and_names_what_could_not_be_read() {
        let mut sources = Sources::new(&config(), Reading::Once).unwrap();
        assert!(sources.size_hint() > 0);
        let out = Snapshots::new();
        let report = sources.poll_once(&out, &|_, _| {});
        let set = out.into_set();
        assert!(!set.declared.is_empty() && !set.observed.is_empty());
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        assert_eq!(report.errors[0].source, "/nonexistent/states");
        let down: Vec<_> = set.statuses.iter().filter(|s| !s.up).collect();
        assert_eq!(down.len(), 1);
        assert_eq!(down[0].source, "/nonexistent/states");
        assert!(
            down[0]
                .reason
                .as_deref()
                .unwrap_or("")
                .starts_with("unreadable: ")
        );
        assert!(
            set.statuses
                .iter()
                .any(|s| s.up && s.side == SourceSide::Observed)
        );
    }

    #[test]
    fn watching_reads_the_same_estate_with_one_collector_per_side() {
        let once = Snapshots::new();
        Sources::new(&config(), Reading::Once)
            .unwrap()
            .poll_once(&once, &|_, _| {});
        let once = once.into_set();
        let mut watching = Sources::new(&config(), Reading::Watching).unwrap();
        let first = Snapshots::new();
        let report = watching.poll_once(&first, &|_, _| {});
        let first = first.into_set();
        assert_eq!(
            report.errors.len(),
            1,
            "the missing folder: {:?}",
            report.errors
        );
        let keys = |v: &[driftline_pipeline::DeclaredResource]| {
            let mut k: Vec<String> = v.iter().map(|d| d.address.clone()).collect();
            k.sort();
            k.dedup();
            k
        };
        assert_eq!(keys(&first.declared), keys(&once.declared));
        assert!(!first.observed.is_empty());
        // Watching, the second pass over unchanged folders publishes nothing.
        let again = Snapshots::new();
        assert_eq!(watching.poll_once(&again, &|_, _| {}).published, 0);
        assert_eq!(watching.into_collectors().len(), 2);
    }

    #[test]
    fn a_spec_no_connector_can_read_is_an_error_before_anything_runs() {
        let mut cfg = config();
        cfg.state = vec!["https://user:pw@tf.example/state".into()];
        assert!(matches!(
            Sources::new(&cfg, Reading::Once),
            Err(SourcesError::Input(_))
        ));
    }
}
