//! What the one-shot commands and the service share about inputs: grouping
//! them by connector (the collectors' registry decides), the mappings and
//! `.driftignore` to use, and reading remote sources once onto a sink.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use driftline_collectors::CollectReport;
use driftline_collectors::aws_config::api::AwsConfigSettings;
use driftline_collectors::aws_config::live::AwsConfigApiCollector;
use driftline_collectors::registry::{self, Inputs};
use driftline_collectors::terraform::backends::StateLocation;
use driftline_collectors::terraform::{Salt, TerraformConfig};
use driftline_collectors::watch::{WatchCollector, WatchConfig, WatchSource};
use driftline_detectors::{DriftIgnore, Mappings};
use driftline_pipeline::{Collected, SourceSide, TypeTable};

/// A side's inputs, grouped by the connector that reads them (the
/// collectors' registry decides).
pub fn grouped(
    specs: &[String],
    side: SourceSide,
    aws: &AwsConfigSettings,
) -> anyhow::Result<Inputs> {
    registry::inputs(specs, side, aws).map_err(|e| anyhow::anyhow!(e))
}

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
pub fn terraform_config(
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

/// Reads remote Terraform state once onto `bus`.
pub fn collect_remote_state(
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
pub fn collect_live(
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
