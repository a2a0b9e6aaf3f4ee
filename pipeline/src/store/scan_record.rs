//! What a one-shot scan leaves in the store, so SQL and dashboards see
//! its findings as they see `run`'s: each new finding as a `new` event, and
//! each finding the store holds open that this scan no longer finds as a
//! `resolved` one. A scan that could not read every source resolves
//! nothing: what it did not see may still be there. The same goes for the
//! resource histories: a scan appends each resource whose version differs
//! from the latest the store holds, and deletes those it no longer saw
//! only when it saw everything.

use std::collections::{BTreeMap, HashSet};

use super::sql::QueryLimits;
use super::tables::{DECLARED_HISTORY, OBSERVED_HISTORY, RowFacts, Side, history_batch, row_facts};
use super::{Store, StoreError};
use crate::model::{DeclaredResource, Finding, FindingEvent, FindingEventKind, ObservedResource};
use crate::schema::{declared_batch, finding_events_batch, observed_batch};

/// What `record_scan` appended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    pub new: usize,
    pub resolved: usize,
}

/// The findings the store holds open, rebuilt from their latest event.
pub fn open_findings(store: &dyn Store) -> Result<Vec<Finding>, StoreError> {
    let limits = QueryLimits {
        max_rows: usize::MAX,
        ..QueryLimits::default()
    };
    let rows = store.query("SELECT * FROM findings", &limits)?.to_json()?;
    let mut out = Vec::new();
    for mut row in rows.as_array().cloned().unwrap_or_default() {
        // diffs, remediation and (from ClickHouse) lists are JSON text.
        for key in ["diffs", "remediation", "tag_keys", "tag_values"] {
            if let Some(text) = row[key].as_str() {
                row[key] = serde_json::from_str(text).unwrap_or_default();
            }
        }
        let list = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let tags: serde_json::Map<String, serde_json::Value> = list(&row["tag_keys"])
            .into_iter()
            .zip(list(&row["tag_values"]))
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        row["tags"] = serde_json::Value::Object(tags);
        if let Ok(f) = serde_json::from_value::<Finding>(row) {
            out.push(f);
        }
    }
    Ok(out)
}

/// Appends this scan's changes to the store's `finding_events`.
pub fn record_scan(
    store: &dyn Store,
    findings: &[Finding],
    saw_everything: bool,
    at_ms: i64,
) -> Result<Recorded, StoreError> {
    let open: BTreeMap<String, Finding> = open_findings(store)?
        .into_iter()
        .map(|f| (f.fingerprint.clone(), f))
        .collect();
    let now: HashSet<&str> = findings.iter().map(|f| f.fingerprint.as_str()).collect();
    let mut events: Vec<FindingEvent> = findings
        .iter()
        .filter(|f| !open.contains_key(&f.fingerprint))
        .map(|f| FindingEvent::new(FindingEventKind::New, at_ms, f.clone()))
        .collect();
    let recorded_new = events.len();
    if saw_everything {
        events.extend(
            open.into_values()
                .filter(|f| !now.contains(f.fingerprint.as_str()))
                .map(|f| FindingEvent::new(FindingEventKind::Resolved, at_ms, f)),
        );
    }
    let recorded = Recorded {
        new: recorded_new,
        resolved: events.len() - recorded_new,
    };
    if !events.is_empty() {
        let batch = finding_events_batch(&events).map_err(|e| StoreError::Write {
            table: "finding_events".into(),
            reason: e.to_string(),
        })?;
        store.append("finding_events", &batch)?;
    }
    Ok(recorded)
}

/// What `record_resources` appended to each history table.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecordedResources {
    pub declared_versions: usize,
    pub declared_deleted: usize,
    pub observed_versions: usize,
    pub observed_deleted: usize,
}

/// Each key's digest in the latest version the store holds on `side`: all
/// keys, or only `keys`.
pub(super) fn latest_digests(
    store: &dyn Store,
    side: Side,
    keys: Option<&[&str]>,
) -> Result<BTreeMap<String, String>, StoreError> {
    let view = match side {
        Side::Declared => "resources_declared",
        Side::Observed => "resources_observed",
    };
    let limits = QueryLimits {
        max_rows: usize::MAX,
        ..QueryLimits::default()
    };
    let filter = match keys {
        Some([]) => return Ok(BTreeMap::new()),
        Some(keys) => {
            let list: Vec<String> = keys.iter().map(|k| super::views::literal(k)).collect();
            format!(" WHERE key IN ({})", list.join(", "))
        }
        None => String::new(),
    };
    let result = store.query(&format!("SELECT key, digest FROM {view}{filter}"), &limits)?;
    Ok(result
        .cells()?
        .into_iter()
        .filter_map(|mut row| {
            let digest = row.pop()?;
            let key = row.pop()?;
            Some((key, digest))
        })
        .collect())
}

/// The rows that are news to the store: a version whose digest differs
/// from the latest it holds, or a deletion of a resource it holds.
pub(super) fn new_versions(held: &BTreeMap<String, String>, facts: &RowFacts) -> Vec<usize> {
    (0..facts.keys.len())
        .filter(|&i| match held.get(&facts.keys[i]) {
            _ if facts.deleted[i] => held.contains_key(&facts.keys[i]),
            latest => latest != Some(&facts.digests[i]),
        })
        .collect()
}

fn write_failed(table: &str, e: arrow::error::ArrowError) -> StoreError {
    StoreError::Write {
        table: table.into(),
        reason: e.to_string(),
    }
}

/// Appends one side's snapshot rows whose digest differs from the store's
/// latest, and (when `saw_everything`) deletions for the keys it holds that
/// the snapshot lacks. Returns (versions, deletions).
fn record_side(
    store: &dyn Store,
    side: Side,
    snapshot: &arrow::record_batch::RecordBatch,
    saw_everything: bool,
    at_ms: i64,
) -> Result<(usize, usize), StoreError> {
    let held = latest_digests(store, side, None)?;
    let facts = row_facts(side, snapshot).map_err(|e| write_failed(side.table(), e))?;
    let keep = new_versions(&held, &facts);
    let seen: HashSet<&str> = facts.keys.iter().map(String::as_str).collect();
    let gone: Vec<&str> = if saw_everything {
        held.keys()
            .map(String::as_str)
            .filter(|k| !seen.contains(k))
            .collect()
    } else {
        Vec::new()
    };
    if !keep.is_empty() || !gone.is_empty() {
        let batch = history_batch(side, snapshot, &facts, Some(&keep), &gone, at_ms)
            .map_err(|e| write_failed(side.table(), e))?;
        store.append(side.table(), &batch)?;
    }
    Ok((keep.len(), gone.len()))
}

/// Appends this scan's resources to the history tables: each version the
/// store does not hold as latest, and (when the scan saw everything) a
/// deletion for each key it holds that the scan did not see.
pub fn record_resources(
    store: &dyn Store,
    declared: &[DeclaredResource],
    observed: &[ObservedResource],
    saw_everything: bool,
    at_ms: i64,
) -> Result<RecordedResources, StoreError> {
    let refs: Vec<&DeclaredResource> = declared.iter().collect();
    let batch = declared_batch(&refs).map_err(|e| write_failed(DECLARED_HISTORY, e))?;
    let (declared_versions, declared_deleted) =
        record_side(store, Side::Declared, &batch, saw_everything, at_ms)?;
    let refs: Vec<&ObservedResource> = observed.iter().collect();
    let batch = observed_batch(&refs).map_err(|e| write_failed(OBSERVED_HISTORY, e))?;
    let (observed_versions, observed_deleted) =
        record_side(store, Side::Observed, &batch, saw_everything, at_ms)?;
    Ok(RecordedResources {
        declared_versions,
        declared_deleted,
        observed_versions,
        observed_deleted,
    })
}
