//! The alert engine: findings (or alerts posted in Alertmanager's shape)
//! in, notifications out. Everything here is driven by the caller's clock
//! (`now_ms` arguments), so the same code runs the service in real time,
//! the tests in virtual time and the benchmark as fast as it can.
//!
//! The semantics are Alertmanager's, deliberately:
//! - an alert joins one aggregation group per matching route (`continue`),
//!   keyed by the route and the values of its `group_by` labels;
//! - a new group waits `group_wait` before its first notification, then is
//!   looked at every `group_interval`;
//! - at each look, silenced and inhibited alerts are left out, and a
//!   receiver is notified only when the firing set grew, something it was
//!   told about resolved (with `send_resolved`), everything resolved, or
//!   `repeat_interval` passed (the notification log, per receiver);
//! - resolved alerts leave the group once they have been notified.
//!
//! What Alertmanager leaves to Prometheus is here too: `for` (pending →
//! firing) and flap damping.

mod groups;
mod persistence;
mod routing;
mod types;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{AlertRule, AlertsConfig, FlapConfig};
use crate::labels::{Labels, all_match};
use crate::silence::Silence;
use groups::Group;
use routing::{Inhibitor, Route, compile_route};
pub use types::{
    Alert, AlertContent, AlertInput, AlertState, Integration, IntegrationKind, IntegrationSet,
    NflogEntry, Notification, NotifiedAlert, StateChange, fingerprint_hash, integration_id,
};

pub struct AlertEngine {
    routes: Vec<Route>,
    receivers: HashMap<String, Vec<Integration>>,
    rules: Vec<AlertRule>,
    flap: FlapConfig,
    retention_ms: i64,
    /// By fingerprint. Every map and set below holds the same `Arc<str>`
    /// as the alert's content: one fingerprint string per alert.
    /// Boxed: a million-entry table of whole alerts would be resized (and
    /// held twice while it is) at twice the bytes.
    alerts: Map<Arc<str>, Box<Alert>>,
    groups: Map<Arc<str>, Group>,
    nflog: HashMap<String, NflogEntry>,
    silences: Vec<Silence>,
    inhibitors: Vec<Inhibitor>,
    /// (due ms, fingerprint) of pending alerts and of flapping alerts' held resolves.
    timers: BTreeSet<(i64, Arc<str>)>,
    dirty_alerts: Set<Arc<str>>,
    forgotten: Vec<Arc<str>>,
    dirty_nflog: HashSet<String>,
    dirty_silences: HashSet<String>,
    next_gc_ms: i64,
}

/// The engine's maps and sets, keyed by up to a million fingerprints:
/// foldhash is several times faster than SipHash there, and is seeded per
/// process, since fingerprints can come from the API.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Set<K> = HashSet<K, foldhash::fast::RandomState>;

pub(super) const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub(super) const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(300);
pub(super) const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

pub(super) fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

impl AlertEngine {
    pub fn new(cfg: &AlertsConfig) -> Self {
        let mut routes = Vec::new();
        compile_route(&cfg.route, None, &mut routes);
        let mut receivers: HashMap<String, Vec<Integration>> = HashMap::new();
        receivers.entry("default".into()).or_default();
        for r in &cfg.receivers {
            let mut list = Vec::new();
            let mut push = |kind, name: &str, index, send_resolved| {
                list.push(Integration {
                    id: integration_id(&r.name, name, index).into(),
                    kind,
                    index,
                    send_resolved,
                })
            };
            for (i, p) in r.pagerduty_configs.iter().enumerate() {
                push(IntegrationKind::PagerDuty, "pagerduty", i, p.send_resolved);
            }
            for (i, w) in r.webhook_configs.iter().enumerate() {
                push(IntegrationKind::Webhook, "webhook", i, w.send_resolved);
            }
            for (i, s) in r.slack_configs.iter().enumerate() {
                push(IntegrationKind::Slack, "slack", i, s.send_resolved);
            }
            receivers.insert(r.name.clone(), list);
        }
        Self {
            routes,
            receivers,
            rules: cfg.rules.clone(),
            flap: cfg.flap.clone(),
            retention_ms: ms(cfg.resolved_retention),
            alerts: Map::default(),
            groups: Map::default(),
            nflog: HashMap::new(),
            silences: Vec::new(),
            inhibitors: cfg
                .inhibit_rules
                .iter()
                .map(|r| Inhibitor {
                    rule: r.clone(),
                    sources: HashMap::new(),
                })
                .collect(),
            timers: BTreeSet::new(),
            dirty_alerts: Set::default(),
            forgotten: Vec::new(),
            dirty_nflog: HashSet::new(),
            dirty_silences: HashSet::new(),
            next_gc_ms: 0,
        }
    }

    /// The receivers' integrations, by receiver name.
    pub fn integrations(&self, receiver: &str) -> &[Integration] {
        self.receivers
            .get(receiver)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn rule_for(&self, labels: &Labels) -> Option<&AlertRule> {
        self.rules.iter().find(|r| all_match(&r.matchers, labels))
    }

    /// Applies one observation. Returns false when it was a replay (older
    /// than what this fingerprint already saw) and changed nothing.
    pub fn ingest(&mut self, mut input: AlertInput, now_ms: i64) -> bool {
        let (for_ms, severity) = match self.rule_for(&input.labels) {
            Some(r) => (ms(r.for_), r.severity.clone()),
            None => (0, None),
        };
        if let Some(s) = severity {
            input.labels.insert("severity".into(), s);
        }
        if let Some(a) = self.alerts.get(input.fingerprint.as_str()) {
            let live = matches!(a.state, AlertState::Pending | AlertState::Firing)
                && a.clear_since_ms.is_none();
            if input.at_ms < a.last_event_ms
                || (input.at_ms == a.last_event_ms && live == input.firing)
            {
                return false;
            }
        } else if !input.firing {
            // Never seen open (or forgotten after the retention): nothing to resolve.
            return false;
        }
        if input.firing {
            self.open(input, for_ms, now_ms);
        } else {
            let fp = self.alerts[input.fingerprint.as_str()]
                .content
                .fingerprint
                .clone();
            self.close(&fp, input.at_ms, now_ms);
        }
        true
    }

    fn open(&mut self, input: AlertInput, for_ms: i64, now: i64) {
        let window = ms(self.flap.window);
        let max = self.flap.max_transitions;
        let at_ms = input.at_ms;
        match self.alerts.get_mut(input.fingerprint.as_str()) {
            Some(a) if matches!(a.state, AlertState::Pending | AlertState::Firing) => {
                let fp = a.content.fingerprint.clone();
                a.content = Arc::new(AlertContent::new(fp.clone(), input));
                a.last_event_ms = at_ms;
                if a.clear_since_ms.is_some() {
                    // A flapping alert came back inside its hold: it never left.
                    let due = a.clear_since_due(window);
                    a.clear_since_ms = None;
                    self.timers.remove(&(due, fp.clone()));
                }
                self.dirty_alerts.insert(fp);
            }
            existing => {
                let was_known = existing.is_some();
                let (fp, mut flips, paged, groups) = match existing {
                    Some(a) => (
                        a.content.fingerprint.clone(),
                        std::mem::take(&mut a.flips),
                        std::mem::take(&mut a.paged),
                        // A resolve its groups have not told yet is still in them.
                        std::mem::take(&mut a.groups),
                    ),
                    None => (
                        Arc::from(input.fingerprint.as_str()),
                        Vec::new(),
                        IntegrationSet::default(),
                        Vec::new(),
                    ),
                };
                if was_known {
                    flips.push(now);
                }
                flips.retain(|t| *t > now - window);
                let flapping = max > 0 && flips.len() > max;
                let a = Alert {
                    content: Arc::new(AlertContent::new(fp.clone(), input)),
                    state: AlertState::Pending,
                    active_since_ms: now,
                    starts_at_ms: now,
                    ends_at_ms: None,
                    last_event_ms: at_ms,
                    for_ms,
                    flips,
                    flapping,
                    clear_since_ms: None,
                    done: false,
                    paged,
                    acked: IntegrationSet::default(),
                    groups,
                };
                self.alerts.insert(fp.clone(), Box::new(a));
                self.dirty_alerts.insert(fp.clone());
                if for_ms > 0 {
                    self.timers.insert((now + for_ms, fp));
                } else {
                    self.fire(&fp, now);
                }
            }
        }
    }

    fn close(&mut self, fp: &Arc<str>, at_ms: i64, now: i64) {
        let window = ms(self.flap.window);
        let Some(a) = self.alerts.get_mut(fp) else {
            return;
        };
        a.last_event_ms = at_ms;
        self.dirty_alerts.insert(fp.clone());
        match a.state {
            AlertState::Pending => {
                // Never fired: nobody was told, nobody needs telling.
                self.timers
                    .remove(&(a.active_since_ms + a.for_ms, fp.clone()));
                a.state = AlertState::Resolved;
                a.ends_at_ms = Some(now);
                a.done = true;
            }
            AlertState::Firing if a.flapping => {
                if a.clear_since_ms.is_none() {
                    a.clear_since_ms = Some(now);
                    self.timers.insert((now + window, fp.clone()));
                }
            }
            AlertState::Firing => self.resolve(fp, now),
            AlertState::Resolved => {}
        }
    }

    fn fire(&mut self, fp: &Arc<str>, now: i64) {
        let Some(a) = self.alerts.get_mut(fp) else {
            return;
        };
        a.state = AlertState::Firing;
        a.starts_at_ms = now;
        a.ends_at_ms = None;
        let content = a.content.clone();
        let labels = &content.labels;
        for inh in &mut self.inhibitors {
            if all_match(&inh.rule.source_matchers, labels) {
                let both = all_match(&inh.rule.target_matchers, labels);
                let key = inh.equal_key(labels);
                inh.sources.entry(key).or_default().insert(fp.clone(), both);
            }
        }
        self.join_groups(fp, labels, now);
    }

    fn resolve(&mut self, fp: &Arc<str>, now: i64) {
        let Some(a) = self.alerts.get_mut(fp) else {
            return;
        };
        a.state = AlertState::Resolved;
        a.ends_at_ms = Some(now);
        a.clear_since_ms = None;
        a.flips.push(now);
        let content = a.content.clone();
        self.dirty_alerts.insert(fp.clone());
        for inh in &mut self.inhibitors {
            let key = inh.equal_key(&content.labels);
            if let Some(set) = inh.sources.get_mut(&key) {
                set.remove(fp);
                if set.is_empty() {
                    inh.sources.remove(&key);
                }
            }
        }
        if let Some(a) = self.alerts.get_mut(fp)
            && a.groups.is_empty()
        {
            // In no group (no route took it): nothing left to notify.
            a.done = true;
        }
    }

    pub fn add_silence(&mut self, s: Silence) {
        self.dirty_silences.insert(s.id.clone());
        self.silences.retain(|o| o.id != s.id);
        self.silences.push(s);
    }

    /// Ends a silence now. Returns false when no such silence exists.
    pub fn expire_silence(&mut self, id: &str, now: i64) -> bool {
        match self.silences.iter_mut().find(|s| s.id == id) {
            Some(s) => {
                if s.ends_at_ms > now {
                    s.ends_at_ms = now;
                    s.updated_at_ms = now;
                }
                self.dirty_silences.insert(id.to_string());
                true
            }
            None => false,
        }
    }

    pub fn silences(&self) -> &[Silence] {
        &self.silences
    }

    pub fn alert(&self, fp: &str) -> Option<&Alert> {
        self.alerts.get(fp).map(|a| &**a)
    }

    /// Alerts that are pending or firing (or resolved, not yet notified).
    pub fn active_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values().map(|a| &**a).filter(|a| !a.done)
    }

    /// Alerts held, resolved ones kept as replay guards included.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        let (mut p, mut f, mut r) = (0, 0, 0);
        for a in self.alerts.values() {
            match a.state {
                AlertState::Pending => p += 1,
                AlertState::Firing => f += 1,
                AlertState::Resolved if !a.done => r += 1,
                AlertState::Resolved => {}
            }
        }
        (p, f, r)
    }
}
