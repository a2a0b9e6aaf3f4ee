//! Detectors turn snapshot tables into findings with DataFusion.
//!
//! - `drift/`: declared vs observed (changed, missing, unmanaged; coverage)
//! - `mappings`: the per-type mapping files that drive the comparison
//! - `rules/`: policy and tagging rules as SQL files (`detectors/rules/*.sql`)
//! - `slo/`: SLO specs, the PromQL their indicators use, burn-rate alerts

pub mod drift;
pub mod mappings;
pub mod metrics;
pub mod rules;
pub mod slo;

use datafusion::prelude::SessionContext;
use driftline_pipeline::Finding;

pub use drift::stage::DriftStage;
pub use drift::stream::{Side, Skip, StreamingDrift};
pub use drift::{
    DriftDetector, DriftIgnore, DriftInputs, DriftReport, DriftSummary, SourceStatuses, Unobserved,
    UnobservedScope, register_snapshots, register_tables,
};
pub use mappings::{Mapping, MappingError, Mappings};
pub use rules::{RuleError, RuleTables, Rules};

#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    #[error("query failed: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("{0}")]
    Internal(String),
}

/// The door of this crate: a DataFusion plan from registered tables to findings.
pub trait Detector: Send + Sync {
    fn name(&self) -> &'static str;
    fn detect(
        &self,
        ctx: &SessionContext,
    ) -> impl Future<Output = Result<Vec<Finding>, DetectorError>> + Send;
}
