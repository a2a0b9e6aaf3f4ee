//! Aggregation groups and their notifications, step for step as
//! Alertmanager's dispatcher: group_wait, group_interval, repeat_interval,
//! and the notification log's `needsUpdate` per receiver integration.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Alert, AlertEngine, AlertState, NflogEntry, Notification, fingerprint_hash, ms};
use crate::labels::{self, LabelSet, Labels};

pub(super) struct Group {
    pub(super) route: usize,
    pub(super) labels: Arc<Labels>,
    pub(super) alerts: BTreeSet<Arc<str>>,
    pub(super) next_flush_ms: i64,
    pub(super) has_flushed: bool,
}

impl AlertEngine {
    pub(super) fn join_groups(&mut self, fp: &Arc<str>, labels: &LabelSet, now: i64) {
        let starts_at = self.alerts.get(fp).map(|a| a.starts_at_ms).unwrap_or(now);
        let mut key = String::new();
        for r in self.matching_routes(labels) {
            let route = &self.routes[r];
            // The group's labels, sorted by name as `Labels` would hold them.
            let mut pairs: Vec<(&str, &str)> = match &route.group_by {
                None => labels.iter().collect(),
                Some(names) => names
                    .iter()
                    .filter_map(|n| labels.get(n).map(|v| (n.as_str(), v)))
                    .collect(),
            };
            pairs.sort_unstable();
            pairs.dedup_by(|a, b| a.0 == b.0);
            key.clear();
            key.push_str(&route.key);
            key.push(':');
            labels::render_pairs(&mut key, pairs.iter().copied());
            let wait = route.group_wait;
            let group_key = match self.groups.get_key_value(key.as_str()) {
                Some((k, _)) => k.clone(),
                None => {
                    let k: Arc<str> = key.as_str().into();
                    let group = Group {
                        route: r,
                        labels: Arc::new(
                            pairs
                                .iter()
                                .map(|(n, v)| (n.to_string(), v.to_string()))
                                .collect(),
                        ),
                        alerts: BTreeSet::new(),
                        next_flush_ms: now + wait,
                        has_flushed: false,
                    };
                    self.groups.insert(k.clone(), group);
                    k
                }
            };
            let g = self
                .groups
                .get_mut(&group_key)
                .expect("found or inserted above");
            // As Alertmanager: an alert older than group_wait flushes a
            // group that never flushed at once.
            if !g.has_flushed && starts_at + wait < now {
                g.next_flush_ms = now;
            }
            if g.alerts.insert(fp.clone())
                && let Some(a) = self.alerts.get_mut(fp)
            {
                a.groups.push(group_key);
            }
        }
    }

    /// Advances time: pending alerts whose `for` passed fire, held resolves
    /// of flapping alerts complete, due groups are flushed.
    pub fn tick(&mut self, now: i64) -> Vec<Notification> {
        while let Some((due, fp)) = self.timers.first().cloned() {
            if due > now {
                break;
            }
            self.timers.remove(&(due, fp.clone()));
            let Some(a) = self.alerts.get_mut(&fp) else {
                continue;
            };
            match a.state {
                AlertState::Pending => {
                    self.dirty_alerts.insert(fp.clone());
                    self.fire(&fp, now);
                }
                AlertState::Firing
                    if a.clear_since_ms.map(|c| c + ms(self.flap.window)) == Some(due) =>
                {
                    a.flapping = false;
                    a.flips.clear();
                    self.resolve(&fp, now);
                }
                _ => {}
            }
        }
        let mut due: Vec<(i64, Arc<str>)> = Vec::new();
        for (k, g) in self.groups.iter_mut() {
            // A clock stepped back leaves a flush scheduled further off than
            // a group's wait or interval from now: bring it back, or the
            // group would wait for the clock to catch up (a resolution told
            // a day late after a day's jump back).
            let route = &self.routes[g.route];
            let step = if g.has_flushed {
                route.group_interval
            } else {
                route.group_wait
            };
            g.next_flush_ms = g.next_flush_ms.min(now.saturating_add(step));
            if g.next_flush_ms <= now {
                due.push((g.next_flush_ms, k.clone()));
            }
        }
        due.sort();
        let mut out = Vec::new();
        for (_, key) in due {
            self.flush(&key, now, &mut out);
        }
        if now >= self.next_gc_ms {
            self.gc(now);
            self.next_gc_ms = now + 60_000;
        }
        out
    }

    pub(super) fn flush(&mut self, key: &Arc<str>, now: i64, out: &mut Vec<Notification>) {
        let Some(g) = self.groups.get_mut(key) else {
            return;
        };
        g.next_flush_ms = now + self.routes[g.route].group_interval;
        g.has_flushed = true;
        let route = &self.routes[g.route];
        let (receiver, repeat) = (route.receiver.clone(), route.repeat_interval);
        let group_labels = g.labels.clone();
        let members: Vec<Arc<str>> = g.alerts.iter().cloned().collect();
        let mut shown: Vec<&Alert> = Vec::with_capacity(members.len());
        let mut resolved_all = Vec::new();
        let mut muted_paged: Vec<&Alert> = Vec::new();
        for fp in &members {
            let Some(a) = self.alerts.get(fp) else {
                continue;
            };
            if a.state == AlertState::Resolved {
                resolved_all.push(fp.clone());
            }
            if !self.muted(fp, a.labels(), now) {
                shown.push(a);
            } else if !a.paged.is_empty() {
                muted_paged.push(a);
            }
        }
        // A muted alert that already paged: acknowledged (once) when someone
        // silenced it, and still resolved when it recovers — an incident
        // PagerDuty holds open is never forgotten.
        let mut acked_changes: Vec<(Arc<str>, Arc<str>)> = Vec::new();
        let mut paged_changes: Vec<(Arc<str>, Arc<str>, bool)> = Vec::new();
        for integ in self.receivers.get(&*receiver).into_iter().flatten() {
            if !integ.per_alert() {
                continue;
            }
            let (mut ack, mut res) = (Vec::new(), Vec::new());
            for a in muted_paged.iter().filter(|a| a.paged.contains(&integ.id)) {
                if a.state == AlertState::Resolved {
                    if integ.send_resolved {
                        res.push(*a);
                    }
                } else if !a.acked.contains(&integ.id)
                    && self.silenced_by(a.labels(), now).is_some()
                {
                    ack.push(*a);
                }
            }
            if ack.is_empty() && res.is_empty() {
                continue;
            }
            acked_changes.extend(
                ack.iter()
                    .map(|a| (a.fingerprint().clone(), integ.id.clone())),
            );
            paged_changes.extend(
                res.iter()
                    .map(|a| (a.fingerprint().clone(), integ.id.clone(), false)),
            );
            let told = (ack.len() + res.len()) as u32;
            out.push(Notification {
                receiver: receiver.clone(),
                integration: integ.clone(),
                group_key: key.clone(),
                group_labels: group_labels.clone(),
                alerts: ack.iter().chain(res.iter()).map(|a| a.notified()).collect(),
                trigger: Vec::new(),
                resolve: (ack.len() as u32..told).collect(),
                acknowledge: (0..ack.len() as u32).collect(),
                at_ms: now,
            });
        }
        shown.sort_unstable_by(|a, b| {
            (a.labels(), a.fingerprint()).cmp(&(b.labels(), b.fingerprint()))
        });
        let hashes = |resolved: bool| {
            let mut h: Vec<u64> = shown
                .iter()
                .filter(|a| (a.state == AlertState::Resolved) == resolved)
                .map(|a| fingerprint_hash(a.fingerprint()))
                .collect();
            h.sort_unstable();
            h.dedup();
            h
        };
        let (firing, resolved) = (hashes(false), hashes(true));
        let mut all: Option<Arc<[_]>> = None;
        if !shown.is_empty() {
            let mut unresolved: Option<Vec<&Alert>> = None;
            for integ in self.receivers.get(&*receiver).into_iter().flatten() {
                let log_key = format!("{key}|{}", integ.id);
                let entry = self.nflog.get(&log_key);
                if !needs_update(entry, &firing, &resolved, repeat, integ.send_resolved, now) {
                    continue;
                }
                let (told, alerts) = if integ.send_resolved || resolved.is_empty() {
                    let alerts = all
                        .get_or_insert_with(|| shown.iter().map(|a| a.notified()).collect())
                        .clone();
                    (&shown, alerts)
                } else {
                    let told = unresolved.get_or_insert_with(|| {
                        shown
                            .iter()
                            .copied()
                            .filter(|a| a.state != AlertState::Resolved)
                            .collect()
                    });
                    let alerts = told.iter().map(|a| a.notified()).collect();
                    (&*told, alerts)
                };
                let (mut trigger, mut resolve) = (Vec::new(), Vec::new());
                if integ.per_alert() {
                    for (i, a) in told.iter().enumerate() {
                        let open = a.paged.contains(&integ.id);
                        if a.state == AlertState::Resolved && open {
                            resolve.push(i as u32);
                            paged_changes.push((a.fingerprint().clone(), integ.id.clone(), false));
                        } else if a.state != AlertState::Resolved && !open {
                            trigger.push(i as u32);
                            paged_changes.push((a.fingerprint().clone(), integ.id.clone(), true));
                        }
                    }
                }
                let worth_sending = if integ.per_alert() {
                    !trigger.is_empty() || !resolve.is_empty()
                } else {
                    !alerts.is_empty()
                };
                if worth_sending {
                    out.push(Notification {
                        receiver: receiver.clone(),
                        integration: integ.clone(),
                        group_key: key.clone(),
                        group_labels: group_labels.clone(),
                        alerts,
                        trigger,
                        resolve,
                        acknowledge: Vec::new(),
                        at_ms: now,
                    });
                }
                self.nflog.insert(
                    log_key.clone(),
                    NflogEntry {
                        firing: firing.clone(),
                        resolved: resolved.clone(),
                        at_ms: now,
                    },
                );
                self.dirty_nflog.insert(log_key);
            }
        }
        for (fp, integ) in acked_changes {
            if let Some(a) = self.alerts.get_mut(&fp) {
                a.acked.insert(&integ);
                self.dirty_alerts.insert(fp);
            }
        }
        for (fp, integ, open) in paged_changes {
            if let Some(a) = self.alerts.get_mut(&fp) {
                if open {
                    a.paged.insert(&integ);
                } else {
                    a.paged.remove(&integ);
                    a.acked.remove(&integ);
                }
                self.dirty_alerts.insert(fp);
            }
        }
        // Resolved alerts have been told (or muted): they leave the group.
        let g = self.groups.get_mut(key).expect("group exists");
        for fp in &resolved_all {
            g.alerts.remove(fp);
            if let Some(a) = self.alerts.get_mut(fp) {
                a.groups.retain(|k| k != key);
                if a.groups.is_empty() {
                    a.done = true;
                    self.dirty_alerts.insert(fp.clone());
                }
            }
        }
        if g.alerts.is_empty() {
            self.groups.remove(key);
        }
    }

    /// Forgets resolved alerts older than the retention.
    pub(super) fn gc(&mut self, now: i64) {
        let horizon = now - self.retention_ms;
        let old: Vec<Arc<str>> = self
            .alerts
            .values()
            .filter(|a| a.done && a.ends_at_ms.unwrap_or(now) < horizon)
            .map(|a| a.fingerprint().clone())
            .collect();
        for fp in old {
            self.alerts.remove(&fp);
            self.dirty_alerts.remove(&fp);
            self.forgotten.push(fp);
        }
    }
}

impl Alert {
    pub(super) fn clear_since_due(&self, window: i64) -> i64 {
        self.clear_since_ms.unwrap_or(0) + window
    }
}

/// Sorted, deduplicated `small` ⊆ `big`.
fn is_subset(small: &[u64], big: &[u64]) -> bool {
    let mut rest = big;
    small.iter().all(|x| match rest.binary_search(x) {
        Ok(i) => {
            rest = &rest[i + 1..];
            true
        }
        Err(_) => false,
    })
}

/// Alertmanager's DedupStage.needsUpdate.
fn needs_update(
    entry: Option<&NflogEntry>,
    firing: &[u64],
    resolved: &[u64],
    repeat_ms: i64,
    send_resolved: bool,
    now: i64,
) -> bool {
    let Some(e) = entry else {
        return !firing.is_empty();
    };
    if !is_subset(firing, &e.firing) {
        return true;
    }
    if firing.is_empty() {
        return !e.firing.is_empty();
    }
    if send_resolved && !is_subset(resolved, &e.resolved) {
        return true;
    }
    e.at_ms < now - repeat_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(fps: &[&str]) -> Vec<u64> {
        let mut h: Vec<u64> = fps.iter().map(|s| fingerprint_hash(s)).collect();
        h.sort_unstable();
        h
    }

    #[test]
    fn subsets_of_sorted_hashes() {
        assert!(is_subset(&[], &[1, 2]));
        assert!(is_subset(&[1, 3], &[1, 2, 3]));
        assert!(!is_subset(&[1, 4], &[1, 2, 3]));
        assert!(!is_subset(&[0], &[]));
    }

    #[test]
    fn a_receiver_hears_only_what_is_new_to_it() {
        let sent = NflogEntry {
            firing: set(&["a", "b"]),
            resolved: set(&[]),
            at_ms: 1_000,
        };
        let hour = 3_600_000;
        let e = Some(&sent);
        // Never told: told when something fires.
        assert!(needs_update(
            None,
            &set(&["a"]),
            &set(&[]),
            hour,
            true,
            2_000
        ));
        assert!(!needs_update(
            None,
            &set(&[]),
            &set(&["a"]),
            hour,
            true,
            2_000
        ));
        // The same or fewer firing: quiet until repeat_interval passes…
        assert!(!needs_update(
            e,
            &set(&["a", "b"]),
            &set(&[]),
            hour,
            true,
            2_000
        ));
        assert!(needs_update(
            e,
            &set(&["a", "b"]),
            &set(&[]),
            hour,
            true,
            1_000 + hour + 1
        ));
        // …unless one grew, or one it was told about resolved.
        assert!(needs_update(
            e,
            &set(&["a", "c"]),
            &set(&[]),
            hour,
            true,
            2_000
        ));
        assert!(needs_update(
            e,
            &set(&["a"]),
            &set(&["b"]),
            hour,
            true,
            2_000
        ));
        assert!(!needs_update(
            e,
            &set(&["a"]),
            &set(&["b"]),
            hour,
            false,
            2_000
        ));
        // Everything resolved: one last word.
        assert!(needs_update(
            e,
            &set(&[]),
            &set(&["a", "b"]),
            hour,
            false,
            2_000
        ));
    }
}
