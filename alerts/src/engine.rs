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

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{AlertRule, AlertsConfig, FlapConfig, InhibitRule, RouteConfig};
use crate::labels::{self, Labels, Matcher, all_match};
use crate::silence::Silence;

/// One observation of an alert condition: open (`firing`) or gone.
#[derive(Debug, Clone)]
pub struct AlertInput {
    pub fingerprint: String,
    pub labels: Labels,
    pub annotations: Labels,
    /// Free-form details carried to the receivers (diff, remediation, cause).
    pub details: Value,
    pub firing: bool,
    /// When the source saw it (ms). Older than what the engine already
    /// applied for this fingerprint = a replay, ignored.
    pub at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Open, waiting out its rule's `for`.
    Pending,
    Firing,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub fingerprint: String,
    pub labels: Labels,
    pub annotations: Labels,
    pub details: Value,
    pub state: AlertState,
    /// When the condition opened (pending since).
    pub active_since_ms: i64,
    /// When it started firing.
    pub starts_at_ms: i64,
    pub ends_at_ms: Option<i64>,
    /// Newest input applied (replay guard).
    pub last_event_ms: i64,
    pub for_ms: i64,
    /// Firing/resolved transitions inside the flap window.
    #[serde(default)]
    pub flips: Vec<i64>,
    #[serde(default)]
    pub flapping: bool,
    /// A flapping alert whose condition cleared at this time: its resolve
    /// waits until it has stayed clear for the flap window.
    #[serde(default)]
    pub clear_since_ms: Option<i64>,
    /// Resolved and every group has notified it: only kept as a replay guard.
    #[serde(default)]
    pub done: bool,
    /// Per-alert integrations (PagerDuty) holding an open trigger for it.
    #[serde(default)]
    pub paged: BTreeSet<String>,
    /// Of those, the ones told it is acknowledged (silenced after paging).
    #[serde(default)]
    pub acked: BTreeSet<String>,
}

/// What a receiver integration was last told about a group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NflogEntry {
    pub firing: BTreeSet<String>,
    pub resolved: BTreeSet<String>,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationKind {
    PagerDuty,
    Webhook,
    Slack,
}

/// One way a receiver is told (Alertmanager's "integration").
#[derive(Debug, Clone)]
pub struct Integration {
    /// `{receiver}/{kind}/{index}`: the notification log and outbox key.
    pub id: String,
    pub kind: IntegrationKind,
    pub index: usize,
    pub send_resolved: bool,
}

/// `{receiver}/{kind}/{index}`, e.g. `oncall/pagerduty/0`.
pub fn integration_id(receiver: &str, kind: &str, index: usize) -> String {
    format!("{receiver}/{kind}/{index}")
}

impl Integration {
    /// PagerDuty gets one event per alert (dedup_key = fingerprint); the
    /// others get one message per group.
    pub fn per_alert(&self) -> bool {
        self.kind == IntegrationKind::PagerDuty
    }
}

/// A notification for one integration of one receiver about one group.
#[derive(Debug, Clone)]
pub struct Notification {
    pub receiver: String,
    pub integration: Integration,
    pub group_key: String,
    pub group_labels: Labels,
    /// Firing and resolved alerts, sorted by labels (shared by the
    /// integrations of one flush: a big group is not copied per receiver).
    pub alerts: std::sync::Arc<Vec<Alert>>,
    /// Per-alert integrations: the alerts to trigger and to resolve.
    pub trigger: Vec<String>,
    pub resolve: Vec<String>,
    /// Per-alert integrations: paged alerts someone silenced since.
    pub acknowledge: Vec<String>,
    pub at_ms: i64,
}

/// A change the caller must make durable (see `state`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum StateChange {
    Alert(Box<Alert>),
    ForgetAlert { fingerprint: String },
    Nflog { key: String, entry: NflogEntry },
    Silence(Silence),
}

struct Route {
    key: String,
    receiver: String,
    /// `None`: group by every label (`...`).
    group_by: Option<Vec<String>>,
    matchers: Vec<Matcher>,
    continue_: bool,
    group_wait: i64,
    group_interval: i64,
    repeat_interval: i64,
    children: Vec<usize>,
}

struct Group {
    route: usize,
    labels: Labels,
    alerts: BTreeSet<String>,
    next_flush_ms: i64,
    has_flushed: bool,
}

struct Inhibitor {
    rule: InhibitRule,
    /// equal-label values → firing source alerts (and whether each also
    /// matches the target side, which Alertmanager does not let inhibit itself).
    sources: HashMap<Vec<String>, HashMap<String, bool>>,
}

impl Inhibitor {
    fn equal_key(&self, labels: &Labels) -> Vec<String> {
        self.rule
            .equal
            .iter()
            .map(|n| labels.get(n).cloned().unwrap_or_default())
            .collect()
    }
}

pub struct AlertEngine {
    routes: Vec<Route>,
    receivers: HashMap<String, Vec<Integration>>,
    rules: Vec<AlertRule>,
    flap: FlapConfig,
    retention_ms: i64,
    alerts: HashMap<String, Alert>,
    groups: HashMap<String, Group>,
    /// fingerprint → keys of the groups it is in.
    membership: HashMap<String, Vec<String>>,
    nflog: HashMap<String, NflogEntry>,
    silences: Vec<Silence>,
    inhibitors: Vec<Inhibitor>,
    /// (due ms, fingerprint) of pending alerts and of flapping alerts' held resolves.
    timers: BTreeSet<(i64, String)>,
    dirty_alerts: HashSet<String>,
    forgotten: Vec<String>,
    dirty_nflog: HashSet<String>,
    dirty_silences: HashSet<String>,
    next_gc_ms: i64,
}

const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(300);
const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

fn ms(d: Duration) -> i64 {
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
                    id: integration_id(&r.name, name, index),
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
            alerts: HashMap::new(),
            groups: HashMap::new(),
            membership: HashMap::new(),
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
            dirty_alerts: HashSet::new(),
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
        let fp = input.fingerprint.clone();
        if let Some(a) = self.alerts.get(&fp) {
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
            self.close(&fp, input.at_ms, now_ms);
        }
        true
    }

    fn open(&mut self, input: AlertInput, for_ms: i64, now: i64) {
        let fp = input.fingerprint.clone();
        let window = ms(self.flap.window);
        let max = self.flap.max_transitions;
        match self.alerts.get_mut(&fp) {
            Some(a) if matches!(a.state, AlertState::Pending | AlertState::Firing) => {
                a.labels = input.labels;
                a.annotations = input.annotations;
                a.details = input.details;
                a.last_event_ms = input.at_ms;
                if a.clear_since_ms.is_some() {
                    // A flapping alert came back inside its hold: it never left.
                    let due = a.clear_since_due(window);
                    a.clear_since_ms = None;
                    self.timers.remove(&(due, fp.clone()));
                }
                self.dirty_alerts.insert(fp);
            }
            existing => {
                let mut flips = existing
                    .map(|a| std::mem::take(&mut a.flips))
                    .unwrap_or_default();
                let was_known = !flips.is_empty() || self.alerts.contains_key(&fp);
                if was_known {
                    flips.push(now);
                }
                flips.retain(|t| *t > now - window);
                let flapping = max > 0 && flips.len() > max;
                let paged = self
                    .alerts
                    .get(&fp)
                    .map(|a| a.paged.clone())
                    .unwrap_or_default();
                let a = Alert {
                    fingerprint: fp.clone(),
                    labels: input.labels,
                    annotations: input.annotations,
                    details: input.details,
                    state: AlertState::Pending,
                    active_since_ms: now,
                    starts_at_ms: now,
                    ends_at_ms: None,
                    last_event_ms: input.at_ms,
                    for_ms,
                    flips,
                    flapping,
                    clear_since_ms: None,
                    done: false,
                    paged,
                    acked: BTreeSet::new(),
                };
                self.alerts.insert(fp.clone(), a);
                self.dirty_alerts.insert(fp.clone());
                if for_ms > 0 {
                    self.timers.insert((now + for_ms, fp));
                } else {
                    self.fire(&fp, now);
                }
            }
        }
    }

    fn close(&mut self, fp: &str, at_ms: i64, now: i64) {
        let window = ms(self.flap.window);
        let Some(a) = self.alerts.get_mut(fp) else {
            return;
        };
        a.last_event_ms = at_ms;
        self.dirty_alerts.insert(fp.to_string());
        match a.state {
            AlertState::Pending => {
                // Never fired: nobody was told, nobody needs telling.
                self.timers
                    .remove(&(a.active_since_ms + a.for_ms, fp.to_string()));
                a.state = AlertState::Resolved;
                a.ends_at_ms = Some(now);
                a.done = true;
            }
            AlertState::Firing if a.flapping => {
                if a.clear_since_ms.is_none() {
                    a.clear_since_ms = Some(now);
                    self.timers.insert((now + window, fp.to_string()));
                }
            }
            AlertState::Firing => self.resolve(fp, now),
            AlertState::Resolved => {}
        }
    }

    fn fire(&mut self, fp: &str, now: i64) {
        let Some(a) = self.alerts.get_mut(fp) else {
            return;
        };
        a.state = AlertState::Firing;
        a.starts_at_ms = now;
        a.ends_at_ms = None;
        let labels = a.labels.clone();
        for inh in &mut self.inhibitors {
            if all_match(&inh.rule.source_matchers, &labels) {
                let both = all_match(&inh.rule.target_matchers, &labels);
                let key = inh.equal_key(&labels);
                inh.sources
                    .entry(key)
                    .or_default()
                    .insert(fp.to_string(), both);
            }
        }
        self.join_groups(fp, &labels, now);
    }

    fn resolve(&mut self, fp: &str, now: i64) {
        let Some(a) = self.alerts.get_mut(fp) else {
            return;
        };
        a.state = AlertState::Resolved;
        a.ends_at_ms = Some(now);
        a.clear_since_ms = None;
        a.flips.push(now);
        let labels = a.labels.clone();
        self.dirty_alerts.insert(fp.to_string());
        for inh in &mut self.inhibitors {
            let key = inh.equal_key(&labels);
            if let Some(set) = inh.sources.get_mut(&key) {
                set.remove(fp);
                if set.is_empty() {
                    inh.sources.remove(&key);
                }
            }
        }
        if !self.membership.contains_key(fp) {
            // In no group (no route took it): nothing left to notify.
            if let Some(a) = self.alerts.get_mut(fp) {
                a.done = true;
            }
        }
    }

    fn join_groups(&mut self, fp: &str, labels: &Labels, now: i64) {
        let starts_at = self.alerts.get(fp).map(|a| a.starts_at_ms).unwrap_or(now);
        for r in self.matching_routes(labels) {
            let route = &self.routes[r];
            let group_labels: Labels = match &route.group_by {
                None => labels.clone(),
                Some(names) => names
                    .iter()
                    .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
                    .collect(),
            };
            let key = format!("{}:{}", route.key, labels::render(&group_labels));
            let wait = route.group_wait;
            let g = self.groups.entry(key.clone()).or_insert_with(|| Group {
                route: r,
                labels: group_labels,
                alerts: BTreeSet::new(),
                next_flush_ms: now + wait,
                has_flushed: false,
            });
            // As Alertmanager: an alert older than group_wait flushes a
            // group that never flushed at once.
            if !g.has_flushed && starts_at + wait < now {
                g.next_flush_ms = now;
            }
            if g.alerts.insert(fp.to_string()) {
                self.membership.entry(fp.to_string()).or_default().push(key);
            }
        }
    }

    fn matching_routes(&self, labels: &Labels) -> Vec<usize> {
        fn walk(routes: &[Route], i: usize, labels: &Labels, out: &mut Vec<usize>) -> bool {
            let r = &routes[i];
            if !all_match(&r.matchers, labels) {
                return false;
            }
            let before = out.len();
            for &c in &r.children {
                if walk(routes, c, labels, out) && !routes[c].continue_ {
                    break;
                }
            }
            if out.len() == before {
                out.push(i);
            }
            true
        }
        let mut out = Vec::new();
        if !self.routes.is_empty() {
            walk(&self.routes, 0, labels, &mut out);
        }
        out
    }

    /// True when a silence or an inhibition rule mutes these labels now.
    pub fn muted(&self, fp: &str, labels: &Labels, now: i64) -> bool {
        self.silenced_by(labels, now).is_some() || self.inhibited(fp, labels)
    }

    pub fn silenced_by(&self, labels: &Labels, now: i64) -> Option<&Silence> {
        self.silences
            .iter()
            .find(|s| s.is_active(now) && all_match(&s.matchers, labels))
    }

    fn inhibited(&self, fp: &str, labels: &Labels) -> bool {
        self.inhibitors.iter().any(|inh| {
            all_match(&inh.rule.target_matchers, labels)
                && inh.sources.get(&inh.equal_key(labels)).is_some_and(|set| {
                    let self_both = all_match(&inh.rule.source_matchers, labels);
                    set.iter()
                        .any(|(src, both)| src != fp && !(self_both && *both))
                })
        })
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
        let mut due: Vec<(i64, String)> = self
            .groups
            .iter()
            .filter(|(_, g)| g.next_flush_ms <= now)
            .map(|(k, g)| (g.next_flush_ms, k.clone()))
            .collect();
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

    fn flush(&mut self, key: &str, now: i64, out: &mut Vec<Notification>) {
        let Some(g) = self.groups.get_mut(key) else {
            return;
        };
        g.next_flush_ms = now + self.routes[g.route].group_interval;
        g.has_flushed = true;
        let route = &self.routes[g.route];
        let (receiver, repeat) = (route.receiver.clone(), route.repeat_interval);
        let group_labels = g.labels.clone();
        let members: Vec<String> = g.alerts.iter().cloned().collect();
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
            if !self.muted(fp, &a.labels, now) {
                shown.push(a);
            } else if !a.paged.is_empty() {
                muted_paged.push(a);
            }
        }
        // A muted alert that already paged: acknowledged (once) when someone
        // silenced it, and still resolved when it recovers — an incident
        // PagerDuty holds open is never forgotten.
        let mut acked_changes: Vec<(String, String)> = Vec::new();
        let mut muted_resolves: Vec<(String, String, bool)> = Vec::new();
        for integ in self.receivers.get(&receiver).into_iter().flatten() {
            if !integ.per_alert() {
                continue;
            }
            let (mut ack, mut res) = (Vec::new(), Vec::new());
            for a in muted_paged.iter().filter(|a| a.paged.contains(&integ.id)) {
                if a.state == AlertState::Resolved {
                    if integ.send_resolved {
                        res.push(*a);
                    }
                } else if !a.acked.contains(&integ.id) && self.silenced_by(&a.labels, now).is_some()
                {
                    ack.push(*a);
                }
            }
            if ack.is_empty() && res.is_empty() {
                continue;
            }
            acked_changes.extend(
                ack.iter()
                    .map(|a| (a.fingerprint.clone(), integ.id.clone())),
            );
            muted_resolves.extend(
                res.iter()
                    .map(|a| (a.fingerprint.clone(), integ.id.clone(), false)),
            );
            out.push(Notification {
                receiver: receiver.clone(),
                integration: integ.clone(),
                group_key: key.to_string(),
                group_labels: group_labels.clone(),
                alerts: std::sync::Arc::new(
                    ack.iter().chain(res.iter()).map(|a| (*a).clone()).collect(),
                ),
                trigger: Vec::new(),
                resolve: res.iter().map(|a| a.fingerprint.clone()).collect(),
                acknowledge: ack.iter().map(|a| a.fingerprint.clone()).collect(),
                at_ms: now,
            });
        }
        shown.sort_by(|a, b| a.labels.cmp(&b.labels));
        let firing: BTreeSet<String> = shown
            .iter()
            .filter(|a| a.state != AlertState::Resolved)
            .map(|a| a.fingerprint.clone())
            .collect();
        let resolved: BTreeSet<String> = shown
            .iter()
            .filter(|a| a.state == AlertState::Resolved)
            .map(|a| a.fingerprint.clone())
            .collect();
        let mut paged_changes: Vec<(String, String, bool)> = muted_resolves;
        let mut all: Option<std::sync::Arc<Vec<Alert>>> = None;
        if !shown.is_empty() {
            for integ in self.receivers.get(&receiver).into_iter().flatten() {
                let log_key = format!("{key}|{}", integ.id);
                let entry = self.nflog.get(&log_key);
                if !needs_update(entry, &firing, &resolved, repeat, integ.send_resolved, now) {
                    continue;
                }
                let alerts = if integ.send_resolved || resolved.is_empty() {
                    all.get_or_insert_with(|| {
                        std::sync::Arc::new(shown.iter().map(|a| (*a).clone()).collect())
                    })
                    .clone()
                } else {
                    std::sync::Arc::new(
                        shown
                            .iter()
                            .filter(|a| a.state != AlertState::Resolved)
                            .map(|a| (*a).clone())
                            .collect(),
                    )
                };
                let (mut trigger, mut resolve) = (Vec::new(), Vec::new());
                if integ.per_alert() {
                    for a in alerts.iter() {
                        let open = a.paged.contains(&integ.id);
                        if a.state == AlertState::Resolved && open {
                            resolve.push(a.fingerprint.clone());
                            paged_changes.push((a.fingerprint.clone(), integ.id.clone(), false));
                        } else if a.state != AlertState::Resolved && !open {
                            trigger.push(a.fingerprint.clone());
                            paged_changes.push((a.fingerprint.clone(), integ.id.clone(), true));
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
                        group_key: key.to_string(),
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
                a.acked.insert(integ);
                self.dirty_alerts.insert(fp);
            }
        }
        for (fp, integ, open) in paged_changes {
            if let Some(a) = self.alerts.get_mut(&fp) {
                if open {
                    a.paged.insert(integ);
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
            if let Some(keys) = self.membership.get_mut(fp) {
                keys.retain(|k| k != key);
                if keys.is_empty() {
                    self.membership.remove(fp);
                    if let Some(a) = self.alerts.get_mut(fp) {
                        a.done = true;
                        self.dirty_alerts.insert(fp.clone());
                    }
                }
            }
        }
        if g.alerts.is_empty() {
            self.groups.remove(key);
        }
    }

    /// Forgets resolved alerts older than the retention.
    fn gc(&mut self, now: i64) {
        let horizon = now - self.retention_ms;
        let old: Vec<String> = self
            .alerts
            .values()
            .filter(|a| a.done && a.ends_at_ms.unwrap_or(now) < horizon)
            .map(|a| a.fingerprint.clone())
            .collect();
        for fp in old {
            self.alerts.remove(&fp);
            self.dirty_alerts.remove(&fp);
            self.forgotten.push(fp);
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
        self.alerts.get(fp)
    }

    /// Alerts that are pending or firing (or resolved, not yet notified).
    pub fn active_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values().filter(|a| !a.done)
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

    /// Changes since the last call, for the state log.
    pub fn drain_changes(&mut self) -> Vec<StateChange> {
        let mut out = Vec::new();
        for fp in self.forgotten.drain(..) {
            out.push(StateChange::ForgetAlert { fingerprint: fp });
        }
        for fp in self.dirty_alerts.drain() {
            if let Some(a) = self.alerts.get(&fp) {
                out.push(StateChange::Alert(Box::new(a.clone())));
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
            .map(|a| StateChange::Alert(Box::new(a.clone())))
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
                    self.alerts.insert(a.fingerprint.clone(), *a);
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
                        .insert((a.active_since_ms + a.for_ms, a.fingerprint.clone()));
                }
                AlertState::Firing => {
                    if a.clear_since_ms.is_some() {
                        self.timers
                            .insert((a.clear_since_due(window), a.fingerprint.clone()));
                    }
                    firing.push(a.fingerprint.clone());
                }
                AlertState::Resolved if !a.done => unsent.push(a.fingerprint.clone()),
                AlertState::Resolved => {}
            }
        }
        for fp in firing {
            self.fire_restored(&fp, now);
        }
        for fp in unsent {
            let labels = self.alerts[&fp].labels.clone();
            self.join_groups(&fp, &labels, now);
        }
    }

    fn fire_restored(&mut self, fp: &str, now: i64) {
        let starts = self.alerts[fp].starts_at_ms;
        self.fire(fp, now);
        if let Some(a) = self.alerts.get_mut(fp) {
            a.starts_at_ms = starts;
        }
    }
}

impl Alert {
    fn clear_since_due(&self, window: i64) -> i64 {
        self.clear_since_ms.unwrap_or(0) + window
    }
}

/// Alertmanager's DedupStage.needsUpdate.
fn needs_update(
    entry: Option<&NflogEntry>,
    firing: &BTreeSet<String>,
    resolved: &BTreeSet<String>,
    repeat_ms: i64,
    send_resolved: bool,
    now: i64,
) -> bool {
    let Some(e) = entry else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&e.firing) {
        return true;
    }
    if firing.is_empty() {
        return !e.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&e.resolved) {
        return true;
    }
    e.at_ms < now - repeat_ms
}

fn compile_route(cfg: &RouteConfig, parent: Option<usize>, out: &mut Vec<Route>) -> usize {
    let p = parent.map(|i| &out[i]);
    let mut matchers = cfg.matchers.clone();
    matchers.sort_by(|a, b| (&a.name, &a.value, a.op).cmp(&(&b.name, &b.value, b.op)));
    let own = labels::render_matchers(&matchers);
    let key = match p {
        Some(p) => format!("{}/{own}", p.key),
        None => own,
    };
    let group_by = match &cfg.group_by {
        Some(g) if g.iter().any(|n| n == "...") => None,
        Some(g) => Some(g.clone()),
        None => p.and_then(|p| p.group_by.clone()).or(Some(Vec::new())),
    };
    let inherit = |own: Option<Duration>, from: Option<i64>, default: Duration| {
        own.map(ms).or(from).unwrap_or(ms(default))
    };
    let route = Route {
        key,
        receiver: cfg
            .receiver
            .clone()
            .or_else(|| p.map(|p| p.receiver.clone()))
            .unwrap_or_else(|| "default".into()),
        group_by,
        matchers,
        continue_: cfg.continue_,
        group_wait: inherit(cfg.group_wait, p.map(|p| p.group_wait), DEFAULT_GROUP_WAIT),
        group_interval: inherit(
            cfg.group_interval,
            p.map(|p| p.group_interval),
            DEFAULT_GROUP_INTERVAL,
        ),
        repeat_interval: inherit(
            cfg.repeat_interval,
            p.map(|p| p.repeat_interval),
            DEFAULT_REPEAT_INTERVAL,
        ),
        children: Vec::new(),
    };
    out.push(route);
    let me = out.len() - 1;
    for c in &cfg.routes {
        let child = compile_route(c, Some(me), out);
        out[me].children.push(child);
    }
    me
}
