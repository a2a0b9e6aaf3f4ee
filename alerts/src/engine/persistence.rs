//! Persistence: the changes the caller writes to the alert journal, the
//! snapshot a compaction writes, and the restore after a restart (which
//! fires nothing twice).

use super::{AlertEngine, AlertState, StateChange, ms};

impl AlertEngine {
    /// Changes since the last call, for the state log.
    pub fn drain_changes(&mut self) -> Vec<StateChange> {
        let mut out = Vec::new();
        for fp in self.forgotten.drain(..) {
            out.push(StateChange::ForgetAlert { fingerprint: fp });
        }
        for fp in self.dirty_alerts.drain() {
            if let Some(a) = self.alerts.get(&fp) {
                out.push(StateChange::Alert(a.clone()));
            }
        }
        for k in self.dirty_nflog.drain() {
            if let Some(e) = self.nflog.get(&k) {
                out.push(StateChange::Nflog {
                    key: k,
                    entry: e.clone(),
                });
            }
        }
        for id in self.dirty_silences.drain() {
            if let Some(s) = self.silences.iter().find(|s| s.id == id) {
                out.push(StateChange::Silence(s.clone()));
            }
        }
        out
    }

    /// Everything, as changes: what a compacted state log starts from.
    pub fn snapshot(&self) -> Vec<StateChange> {
        let mut out: Vec<StateChange> = self
            .alerts
            .values()
            .map(|a| StateChange::Alert(a.clone()))
            .collect();
        out.extend(self.nflog.iter().map(|(k, e)| StateChange::Nflog {
            key: k.clone(),
            entry: e.clone(),
        }));
        out.extend(self.silences.iter().cloned().map(StateChange::Silence));
        out
    }

    /// Rebuilds from a state log. Groups are formed again from the alerts,
    /// waiting `group_wait` as after an Alertmanager restart; the
    /// notification log keeps them from telling anyone twice.
    pub fn restore(&mut self, changes: impl IntoIterator<Item = StateChange>, now: i64) {
        for c in changes {
            match c {
                StateChange::Alert(a) => {
                    self.alerts.insert(a.fingerprint().clone(), a);
                }
                StateChange::ForgetAlert { fingerprint } => {
                    self.alerts.remove(&fingerprint);
                }
                StateChange::Nflog { key, entry } => {
                    self.nflog.insert(key, entry);
                }
                StateChange::Silence(s) => {
                    self.silences.retain(|o| o.id != s.id);
                    self.silences.push(s);
                }
            }
        }
        let window = ms(self.flap.window);
        let mut firing = Vec::new();
        let mut unsent = Vec::new();
        for a in self.alerts.values() {
            match a.state {
                AlertState::Pending => {
                    self.timers
                        .insert((a.active_since_ms + a.for_ms, a.fingerprint().clone()));
                }
                AlertState::Firing => {
                    if a.clear_since_ms.is_some() {
                        self.timers
                            .insert((a.clear_since_due(window), a.fingerprint().clone()));
                    }
                    firing.push(a.fingerprint().clone());
                }
                AlertState::Resolved if !a.done => unsent.push(a.fingerprint().clone()),
                AlertState::Resolved => {}
            }
        }
        for fp in firing {
            self.fire_restored(&fp, now);
        }
        for fp in unsent {
            let content = self.alerts[&fp].content.clone();
            self.join_groups(&fp, &content.labels, now);
        }
    }

    pub(super) fn fire_restored(&mut self, fp: &std::sync::Arc<str>, now: i64) {
        let starts = self.alerts[fp].starts_at_ms;
        self.fire(fp, now);
        if let Some(a) = self.alerts.get_mut(fp) {
            a.starts_at_ms = starts;
        }
    }
}
