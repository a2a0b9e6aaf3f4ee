//! The AWS Config API calls a pass makes, each through the request budget
//! and the call metric (`api::call`): listings (every page), batch gets in
//! batches of 100 with unprocessed keys retried, and the history call that
//! completes a changed item.

use std::time::Duration;

use aws_sdk_config::primitives::DateTime;
use aws_sdk_config::types::{AggregateResourceIdentifier, ResourceKey, ResourceType};
use driftline_pipeline::ObservedResource;
use serde_json::{Map, Value};

use super::super::api::{self, ApiError};
use super::super::items::{base_item_json, history_item_json};
use super::targets::Target;

pub(super) async fn list(t: &Target, ty: &str) -> Result<Vec<ResourceKey>, ApiError> {
    all_pages(|token| async move {
        let page = api::call(
            &t.budget,
            "config",
            "ListDiscoveredResources",
            &t.label,
            t.client
                .list_discovered_resources()
                .resource_type(ResourceType::from(ty))
                .limit(100)
                .set_next_token(token)
                .send(),
        )
        .await?;
        let keys = page
            .resource_identifiers()
            .iter()
            .filter_map(|r| {
                ResourceKey::builder()
                    .resource_type(r.resource_type()?.clone())
                    .resource_id(r.resource_id()?)
                    .build()
                    .ok()
            })
            .collect();
        Ok((keys, page.next_token().map(String::from)))
    })
    .await
}

pub(super) async fn batch_get(
    t: &Target,
    keys: Vec<ResourceKey>,
) -> Result<Vec<Map<String, Value>>, ApiError> {
    let (items, left) = in_batches(keys, |pending| async {
        let out = api::call(
            &t.budget,
            "config",
            "BatchGetResourceConfig",
            &t.label,
            t.client
                .batch_get_resource_config()
                .set_resource_keys(Some(pending))
                .send(),
        )
        .await?;
        Ok((
            out.base_configuration_items()
                .iter()
                .map(base_item_json)
                .collect(),
            out.unprocessed_resource_keys().to_vec(),
        ))
    })
    .await?;
    if left > 0 {
        return Err(ApiError::Call {
            call: "BatchGetResourceConfig",
            region: t.label.clone(),
            reason: format!(
                "{left} resource(s) still unprocessed after {UNPROCESSED_ROUNDS} rounds"
            ),
        });
    }
    Ok(items)
}

pub(super) async fn list_aggregate(
    t: &Target,
    name: &str,
    ty: &str,
    regions: &[String],
) -> Result<Vec<AggregateResourceIdentifier>, ApiError> {
    let mut ids = all_pages(|token| async move {
        let page = api::call(
            &t.budget,
            "config",
            "ListAggregateDiscoveredResources",
            &t.label,
            t.client
                .list_aggregate_discovered_resources()
                .configuration_aggregator_name(name)
                .resource_type(ResourceType::from(ty))
                .limit(100)
                .set_next_token(token)
                .send(),
        )
        .await?;
        Ok((
            page.resource_identifiers().to_vec(),
            page.next_token().map(String::from),
        ))
    })
    .await?;
    // An aggregator limited to some regions by configuration.
    if !regions.is_empty() {
        ids.retain(|i| regions.iter().any(|r| r == i.source_region()));
    }
    Ok(ids)
}

pub(super) async fn batch_get_aggregate(
    t: &Target,
    name: &str,
    ids: Vec<AggregateResourceIdentifier>,
) -> Result<Vec<Map<String, Value>>, ApiError> {
    let (items, left) = in_batches(ids, |pending| async {
        let out = api::call(
            &t.budget,
            "config",
            "BatchGetAggregateResourceConfig",
            &t.label,
            t.client
                .batch_get_aggregate_resource_config()
                .configuration_aggregator_name(name)
                .set_resource_identifiers(Some(pending))
                .send(),
        )
        .await?;
        Ok((
            out.base_configuration_items()
                .iter()
                .map(base_item_json)
                .collect(),
            out.unprocessed_resource_identifiers().to_vec(),
        ))
    })
    .await?;
    if left > 0 {
        // Not yet aggregated, or deleted since the listing: the next
        // pass tries again.
        tracing::warn!(
            scope = %t.label,
            unprocessed = left,
            "resources the aggregator could not return"
        );
    }
    Ok(items)
}

/// The newest item recorded since `since` (ms), if any.
pub(super) async fn history_since(
    t: &Target,
    item: &ObservedResource,
    since: Option<i64>,
) -> Result<Option<Map<String, Value>>, ApiError> {
    let mut req = t
        .client
        .get_resource_config_history()
        .resource_type(ResourceType::from(item.resource_type.as_str()))
        .resource_id(&item.resource_id)
        .limit(1);
    if let Some(ms) = since {
        req = req.earlier_time(DateTime::from_millis(ms));
    }
    let out = api::call(
        &t.budget,
        "config",
        "GetResourceConfigHistory",
        &t.label,
        req.send(),
    )
    .await?;
    Ok(out.configuration_items().first().map(history_item_json))
}

/// Every page of a listing: `page(token)` fetches one page and says the
/// next page's token (none, or empty, on the last).
async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, ApiError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), ApiError>>,
{
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let (items, next) = page(token).await?;
        out.extend(items);
        token = next.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// Items per BatchGet call (the API's maximum).
const BATCH: usize = 100;

/// Rounds of retrying unprocessed keys before giving up on them.
const UNPROCESSED_ROUNDS: usize = 5;

/// Calls `get` on batches of 100 keys, retrying the keys AWS hands back as
/// unprocessed for a few rounds with backoff; returns the items and how
/// many keys were still unprocessed at the end.
async fn in_batches<K, F, Fut>(
    keys: Vec<K>,
    get: F,
) -> Result<(Vec<Map<String, Value>>, usize), ApiError>
where
    K: Clone,
    F: Fn(Vec<K>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<Map<String, Value>>, Vec<K>), ApiError>>,
{
    let mut items = Vec::with_capacity(keys.len());
    let mut left = 0;
    for chunk in keys.chunks(BATCH) {
        let mut pending = chunk.to_vec();
        for round in 0..UNPROCESSED_ROUNDS {
            if pending.is_empty() {
                break;
            }
            if round > 0 {
                backoff(round).await;
            }
            let (got, unprocessed) = get(pending).await?;
            items.extend(got);
            pending = unprocessed;
        }
        left += pending.len();
    }
    Ok((items, left))
}

async fn backoff(round: usize) {
    // Exponential with full jitter: 200 ms, 400 ms, … at most 5 s.
    let cap = (200u64 << round.min(5)).min(5000);
    tokio::time::sleep(Duration::from_millis(fastrand::u64(cap / 2..=cap))).await;
}
