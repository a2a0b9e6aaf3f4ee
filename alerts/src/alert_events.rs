//! The alert engine's steps as rows of the store's `alert_events` (state
//! changes, receivers told, pages acknowledged by a silence, successful
//! remediations), which the `alerts` and `alert_outcomes` views read.

use std::collections::HashMap;

use driftline_pipeline::Store;
use driftline_pipeline::store::tables::{ALERT_EVENTS, AlertEventRow, alert_events_batch};

use crate::engine::{AlertContent, AlertState, Notification, StateChange};

fn state_name(s: AlertState) -> &'static str {
    match s {
        AlertState::Pending => "pending",
        AlertState::Firing => "firing",
        AlertState::Resolved => "resolved",
    }
}

/// One `alert_events` row about `alert`.
pub fn alert_event(
    alert: &AlertContent,
    event: &'static str,
    at_ms: i64,
    receiver: &str,
) -> AlertEventRow {
    AlertEventRow {
        at_ms,
        event,
        fingerprint: alert.fingerprint.to_string(),
        labels: alert.labels.to_labels(),
        receiver: receiver.to_string(),
    }
}

/// Appends what one tick did: state changes (only those that change the
/// state `written` last recorded for the alert), receivers told an alert
/// fires, paged alerts acknowledged because they were silenced. A store
/// that refuses is logged, not fatal: pages must not wait on analytics (the
/// ClickHouse store spools through outages; this is for a full spool or a
/// broken disk).
pub fn record(
    store: &dyn Store,
    written: &mut HashMap<String, AlertState>,
    changes: &[StateChange],
    notifications: &[Notification],
    now: i64,
) {
    let mut rows = Vec::new();
    for c in changes {
        if let StateChange::Alert(a) = c
            && written.insert(a.fingerprint().to_string(), a.state) != Some(a.state)
        {
            rows.push(alert_event(&a.content, state_name(a.state), now, ""));
        }
    }
    for n in notifications {
        if n.integration.per_alert() {
            for (list, event) in [(&n.trigger, "notified"), (&n.acknowledge, "silenced")] {
                rows.extend(list.iter().map(|i| {
                    let a = &n.alerts[*i as usize];
                    alert_event(&a.content, event, n.at_ms, &n.integration.id)
                }));
            }
        } else {
            rows.extend(
                n.alerts
                    .iter()
                    .filter(|a| a.state == AlertState::Firing)
                    .map(|a| alert_event(&a.content, "notified", n.at_ms, &n.integration.id)),
            );
        }
    }
    if rows.is_empty() {
        return;
    }
    let appended = alert_events_batch(&rows)
        .map_err(|e| e.to_string())
        .and_then(|b| store.append(ALERT_EVENTS, &b).map_err(|e| e.to_string()));
    if let Err(reason) = appended {
        tracing::error!(%reason, rows = rows.len(), "alert events not stored");
    }
}
