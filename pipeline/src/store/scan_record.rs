//! What a one-shot scan leaves in the store, so SQL and dashboards see
//! its findings as they see `run`'s: each new finding as a `new` event, and
//! each finding the store holds open that this scan no longer finds as a
//! `resolved` one. A scan that could not read every source resolves
//! nothing: what it did not see may still be there.

use std::collections::{BTreeMap, HashSet};

use super::sql::QueryLimits;
use super::{Store, StoreError};
use crate::model::{Finding, FindingEvent, FindingEventKind};
use crate::schema::finding_events_batch;

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
        // diffs and remediation are stored as JSON text.
        for key in ["diffs", "remediation"] {
            if let Some(text) = row[key].as_str() {
                row[key] = serde_json::from_str(text).unwrap_or_default();
            }
        }
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
