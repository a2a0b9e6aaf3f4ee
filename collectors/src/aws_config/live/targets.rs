//! The scopes a collector reads — one region, or one aggregator — each
//! with its own client and request budget, built once and shared by passes
//! and by completing notifications.

use std::sync::Arc;

use aws_sdk_config::Client;

use super::super::api::{self, Budget};
use super::AwsConfigApiCollector;
use crate::SourceError;

/// Where one scope's items come from.
pub(super) enum Scope {
    Region,
    Aggregator(String),
}

/// One region's (or one aggregator's) client and its request budget.
pub(super) struct Target {
    /// `us-east-1`, or `aggregator:NAME`.
    pub(super) label: String,
    pub(super) region: String,
    pub(super) scope: Scope,
    pub(super) client: Client,
    pub(super) budget: Arc<Budget>,
}

/// The status key of a collector that could not even set up its clients
/// (no region known): it covers every scope.
pub(super) const SETUP_SOURCE: &str = "aws-config";

pub(super) fn no_region() -> SourceError {
    SourceError {
        source: SETUP_SOURCE.into(),
        reason: "no AWS region: set aws_config.regions, AWS_REGION, or a region in the profile"
            .into(),
    }
}

pub(super) fn source_name(t: &Target) -> String {
    match &t.scope {
        Scope::Region => format!("aws-config://{}", t.region),
        Scope::Aggregator(n) => format!("aws-config-aggregator://{n}"),
    }
}

/// The region a target's status covers (`-`: an aggregator's, any).
pub(super) fn status_region(t: &Target) -> &str {
    match &t.scope {
        Scope::Region => &t.region,
        Scope::Aggregator(_) => driftline_pipeline::model::UNKNOWN,
    }
}

impl AwsConfigApiCollector {
    /// A client and budget for `scope` in `region`.
    pub(super) async fn new_target(&self, region: String, scope: Scope) -> Target {
        let s = &self.settings;
        let sdk = api::load_sdk_config(
            s.profile.as_deref(),
            Some(&region),
            s.endpoint_url.as_deref(),
            s.max_attempts,
        )
        .await;
        let label = match &scope {
            Scope::Region => region.clone(),
            Scope::Aggregator(n) => format!("aggregator:{n}"),
        };
        Target {
            budget: Arc::new(Budget::new(
                s.requests_per_second,
                s.burst,
                "config",
                &label,
            )),
            client: Client::new(&sdk),
            label,
            region,
            scope,
        }
    }

    /// The one client (and budget) per region, shared by passes and by
    /// completing notifications.
    pub(super) async fn region_target(&self, region: &str) -> Arc<Target> {
        let known = self
            .by_region
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(region)
            .cloned();
        if let Some(t) = known {
            return t;
        }
        let t = Arc::new(self.new_target(region.to_string(), Scope::Region).await);
        self.by_region
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(region.to_string())
            .or_insert(t)
            .clone()
    }

    pub(super) async fn build_targets(&self) -> Result<Vec<Arc<Target>>, SourceError> {
        let s = &self.settings;
        let home = || async {
            api::load_sdk_config(s.profile.as_deref(), None, s.endpoint_url.as_deref(), 1)
                .await
                .region()
                .map(|r| r.to_string())
                .ok_or_else(no_region)
        };
        if let Some(name) = &s.aggregator {
            let region = match s.regions.first() {
                Some(r) => r.clone(),
                None => home().await?,
            };
            let t = self
                .new_target(region, Scope::Aggregator(name.clone()))
                .await;
            return Ok(vec![Arc::new(t)]);
        }
        let regions = if s.regions.is_empty() {
            vec![home().await?]
        } else {
            s.regions.clone()
        };
        let mut out = Vec::with_capacity(regions.len());
        for region in regions {
            out.push(self.region_target(&region).await);
        }
        Ok(out)
    }
}
