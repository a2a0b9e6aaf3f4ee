//! The live AWS Config collector. A pass, per region (or per aggregator):
//!
//! 1. `ListDiscoveredResources` for each resource type, every page;
//! 2. `BatchGetResourceConfig` in batches of 100, retrying the
//!    `unprocessedResourceKeys` AWS hands back;
//! 3. a resource whose item changed since the last pass (capture time, or
//!    content) is completed with `GetResourceConfigHistory` since its last
//!    capture time — the full item, with tags and relationships;
//! 4. only new and changed items are published; a resource the listing no
//!    longer holds is published as `ResourceDeleted`.
//!
//! So a full inventory of N resources costs about N/100 batch calls plus
//! the list pages, and an incremental pass adds one call per changed
//! resource. A region that fails (access denied, throttled past the
//! retries, no recorder) is reported and skipped; the others go on.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_config::types::{ResourceKey, ResourceType};
use driftline_pipeline::{
    ConfigStatus, ObservedResource, Record, RecordSink, SourceSide, SourceStatus, Topic, TypeSet,
    TypeTable,
};
use serde_json::{Map, Value};

mod calls;
mod targets;

use super::api::{ApiError, AwsConfigSettings};
use super::items::{content_hash, item_name};
use super::recording;
use super::shapes::Found;
use crate::status::StatusBoard;
use crate::{CollectReport, Collector, ProgressFn, SourceError};
use targets::{Scope, Target, source_name, status_region};

/// What the last pass saw of one resource.
struct Seen {
    /// Hash of the batch-get view (what the next pass compares with).
    base_hash: u64,
    captured_at: Option<i64>,
    /// The published item without its configuration, to announce a deletion.
    slim: ObservedResource,
    target: String,
}

struct State {
    targets: Option<Vec<Arc<Target>>>,
    seen: HashMap<String, Seen>,
    status: StatusBoard,
    /// The account each target's items belong to, once an item said so:
    /// a status names the account it covers (an outage's alert label).
    accounts: HashMap<String, String>,
}

/// What one target's pass read.
struct Pass {
    records: Vec<Record>,
    errors: Vec<SourceError>,
    recording: TypeSet,
}

/// Reads AWS Config through its API; `poll_once` is one pass.
pub struct AwsConfigApiCollector {
    settings: AwsConfigSettings,
    types: Arc<TypeTable>,
    rt: tokio::runtime::Runtime,
    state: Mutex<State>,
    /// Region clients, built once each.
    by_region: Mutex<HashMap<String, Arc<Target>>>,
}

impl AwsConfigApiCollector {
    pub fn new(settings: AwsConfigSettings, types: Arc<TypeTable>) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("aws-config")
            .enable_all()
            .build()?;
        Ok(Self {
            settings,
            types,
            rt,
            state: Mutex::new(State {
                targets: None,
                seen: HashMap::new(),
                status: StatusBoard::new(SourceSide::Observed),
                accounts: HashMap::new(),
            }),
            by_region: Mutex::new(HashMap::new()),
        })
    }

    /// What `--observed aws-config:REGION,…` / `aws-config-aggregator:NAME`
    /// asks for, on top of `base`; `None` when `spec` is not one of those.
    pub fn settings_from_spec(spec: &str, base: &AwsConfigSettings) -> Option<AwsConfigSettings> {
        let mut s = base.clone();
        if spec == "aws-config" {
            return Some(s);
        }
        if let Some(regions) = spec.strip_prefix("aws-config:") {
            s.regions = regions
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(String::from)
                .collect();
            return Some(s);
        }
        if let Some(name) = spec.strip_prefix("aws-config-aggregator:") {
            s.aggregator = Some(name.to_string());
            return Some(s);
        }
        None
    }

    fn resource_types(&self) -> Vec<String> {
        if self.settings.resource_types.is_empty() {
            self.types
                .config_types()
                .into_iter()
                .map(String::from)
                .collect()
        } else {
            self.settings.resource_types.clone()
        }
    }

    /// One pass over every region: publishes what is new, changed or gone.
    fn poll_once(&self, out: &dyn RecordSink) -> CollectReport {
        let mut report = CollectReport::default();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.targets.is_none() {
            match self.rt.block_on(self.build_targets()) {
                Ok(t) => {
                    state.targets = Some(t);
                    // A setup failure an earlier process reported is over;
                    // its status is not one this process would replace.
                    let cleared = Record::Deleted {
                        key: driftline_pipeline::status_key(targets::SETUP_SOURCE),
                    };
                    if let Err(e) = out.publish(Topic::Config, vec![cleared]) {
                        report.errors.push(SourceError {
                            source: targets::SETUP_SOURCE.into(),
                            reason: format!("cannot publish source statuses: {e}"),
                        });
                    }
                }
                Err(e) => {
                    let down = state.status.down(
                        &e.source,
                        e.reason.clone(),
                        driftline_pipeline::now_ms(),
                    );
                    let records = state.status.update(vec![down]);
                    if out.publish(Topic::Config, records).is_err() {
                        state.status.forget();
                    }
                    report.errors.push(e);
                    return report;
                }
            }
        }
        let types = self.resource_types();
        let State {
            targets,
            seen,
            status,
            accounts,
        } = &mut *state;
        let mut statuses = Vec::new();
        for target in targets.as_deref().unwrap_or_default() {
            let started = std::time::Instant::now();
            let now = driftline_pipeline::now_ms();
            match self.rt.block_on(self.pass(target, &types, seen)) {
                Ok(Pass {
                    records,
                    errors,
                    recording,
                }) => {
                    let n = records.len();
                    tracing::info!(
                        collector = "aws_config",
                        scope = %target.label,
                        published = n,
                        errors = errors.len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "AWS Config pass"
                    );
                    report.errors.extend(errors);
                    if let Some(account) = records.iter().find_map(|r| match r {
                        Record::Observed(o) if o.account != driftline_pipeline::model::UNKNOWN => {
                            Some(&o.account)
                        }
                        _ => None,
                    }) {
                        accounts.insert(target.label.clone(), account.clone());
                    }
                    let account = accounts.get(&target.label).map_or("", String::as_str);
                    let mut up = SourceStatus::up(SourceSide::Observed, source_name(target), now)
                        .in_scope(account, status_region(target));
                    up.types = recording;
                    statuses.push(up);
                    if n > 0 {
                        match out.publish(Topic::Config, records) {
                            Ok(()) => report.published += n,
                            Err(e) => {
                                // Forget what this pass saw there, so the
                                // next pass publishes it again.
                                seen.retain(|_, s| s.target != target.label);
                                report.errors.push(SourceError {
                                    source: source_name(target),
                                    reason: format!("cannot publish: {e}"),
                                });
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(collector = "aws_config", scope = %target.label, error = %e, "AWS Config pass failed; other regions go on");
                    let source = source_name(target);
                    let reason = match &target.scope {
                        Scope::Region => format!("region {}: {}", target.region, e.status_reason()),
                        Scope::Aggregator(n) => format!("aggregator {n}: {}", e.status_reason()),
                    };
                    let account = accounts.get(&target.label).map_or("", String::as_str);
                    statuses.push(
                        status
                            .down(&source, reason, now)
                            .in_scope(account, status_region(target)),
                    );
                    report.errors.push(SourceError {
                        source,
                        reason: e.to_string(),
                    });
                }
            }
        }
        // After the items: a detector learns a region is read again only
        // once what was read is ahead of it on every partition.
        let changed = status.update(statuses);
        if !changed.is_empty()
            && let Err(e) = out.publish(Topic::Config, changed)
        {
            status.forget();
            report.errors.push(SourceError {
                source: "aws-config".into(),
                reason: format!("cannot publish source statuses: {e}"),
            });
        }
        crate::publish_dead_letters(out, &report.errors);
        report
    }

    /// One target's pass: (records to publish, per-item errors).
    async fn pass(
        &self,
        t: &Target,
        types: &[String],
        seen: &mut HashMap<String, Seen>,
    ) -> Result<Pass, ApiError> {
        let (items, recording) = match &t.scope {
            Scope::Region => {
                let recording = recording::read(&t.client, &t.budget, &t.label, &t.region).await?;
                let mut keys = Vec::new();
                // A type the recorder leaves out has nothing to list.
                for ty in types.iter().filter(|ty| recording.records_type(ty)) {
                    keys.extend(calls::list(t, ty).await?);
                }
                (calls::batch_get(t, keys).await?, recording)
            }
            Scope::Aggregator(name) => {
                let mut ids = Vec::new();
                for ty in types {
                    ids.extend(calls::list_aggregate(t, name, ty, &self.settings.regions).await?);
                }
                (
                    calls::batch_get_aggregate(t, name, ids).await?,
                    TypeSet::default(),
                )
            }
        };
        let source = source_name(t);
        let mut records = Vec::new();
        let mut errors = Vec::new();
        let mut present = HashSet::new();
        for base in items {
            let base_hash = content_hash(&base);
            let captured = base
                .get("configurationItemCaptureTime")
                .and_then(super::to_epoch_ms);
            let mut item =
                match super::normalise(Found::Item(base.clone().into()), &source, &self.types) {
                    Ok(o) => o,
                    Err(reason) => {
                        errors.push(SourceError {
                            source: format!("{source}: {}", item_name(&base)),
                            reason,
                        });
                        continue;
                    }
                };
            let key = item.resource_key.clone();
            present.insert(key.clone());
            let previous = seen.get(&key);
            if previous.is_some_and(|p| p.base_hash == base_hash && p.captured_at == captured) {
                continue;
            }
            // A known resource changed: the history since its last capture
            // has the full item (tags, relationships) the batch view lacks.
            if let (Some(p), Scope::Region) = (previous, &t.scope) {
                match calls::history_since(t, &item, p.captured_at).await {
                    Ok(Some(full)) => {
                        match super::normalise(Found::Item(full.into()), &source, &self.types) {
                            Ok(o) => item = o,
                            Err(reason) => errors.push(SourceError {
                                source: format!("{source}: {key}"),
                                reason,
                            }),
                        }
                    }
                    Ok(None) => {}
                    // The batch view is still right; say why it is all we have.
                    Err(e) => errors.push(SourceError {
                        source: source.clone(),
                        reason: e.to_string(),
                    }),
                }
            }
            let mut slim = item.clone();
            slim.configuration = Value::Object(Map::new());
            slim.supplementary_configuration = Value::Object(Map::new());
            seen.insert(
                key,
                Seen {
                    base_hash,
                    captured_at: captured,
                    slim,
                    target: t.label.clone(),
                },
            );
            records.push(Record::Observed(Box::new(item)));
        }
        let gone: Vec<String> = seen
            .iter()
            .filter(|(k, s)| s.target == t.label && !present.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        let now = driftline_pipeline::now_ms();
        for k in gone {
            if let Some(s) = seen.remove(&k) {
                let mut d = s.slim;
                // A type the recorder stopped recording is not listed any
                // more, but nothing was deleted: it is not observed.
                d.status = if recording.records_type(&d.resource_type) {
                    ConfigStatus::ResourceDeleted
                } else {
                    ConfigStatus::ResourceNotRecorded
                };
                d.captured_at = Some(now);
                d.configuration_state_id = None;
                d.tags = Value::Object(Map::new());
                d.relationships = Value::Array(Vec::new());
                records.push(Record::Observed(Box::new(d)));
            }
        }
        Ok(Pass {
            records,
            errors,
            recording,
        })
    }

    /// Completes a summary (an oversized notification) with the full item.
    pub fn complete(
        &self,
        region: &str,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<Option<ObservedResource>, SourceError> {
        let source = format!("aws-config://{region}");
        let r = self.rt.block_on(async {
            let target = self.region_target(region).await;
            let key = ResourceKey::builder()
                .resource_type(ResourceType::from(resource_type))
                .resource_id(resource_id)
                .build()
                .map_err(|e| ApiError::Call {
                    call: "BatchGetResourceConfig",
                    region: region.to_string(),
                    reason: e.to_string(),
                })?;
            calls::batch_get(&target, vec![key]).await
        });
        let items = r.map_err(|e| SourceError {
            source: source.clone(),
            reason: e.to_string(),
        })?;
        items
            .into_iter()
            .next()
            .map(|m| {
                super::normalise(Found::Item(m.into()), &source, &self.types).map_err(|reason| {
                    SourceError {
                        source: source.clone(),
                        reason,
                    }
                })
            })
            .transpose()
    }
}

/// Shared, because the first API collector also completes the oversized
/// notifications the inbox receives.
impl Collector for Arc<AwsConfigApiCollector> {
    fn name(&self) -> &'static str {
        "aws_config"
    }

    fn poll_once(&mut self, out: &dyn RecordSink, _progress: ProgressFn<'_>) -> CollectReport {
        AwsConfigApiCollector::poll_once(self, out)
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.settings.poll_interval_secs.max(1))
    }
}
