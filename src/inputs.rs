//! The mappings and `.driftignore` the one-shot commands and the service
//! share.

use std::path::Path;

use anyhow::Context;
use driftline_detectors::{DriftIgnore, Mappings};

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

/// SLO specs (Sloth, OpenSLO), every problem on its own line.
pub fn load_slo_specs(
    paths: &[std::path::PathBuf],
) -> anyhow::Result<driftline_detectors::slo::spec::SloSet> {
    driftline_detectors::slo::spec::load(paths).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!("invalid SLO spec:\n  {}", lines.join("\n  "))
    })
}
