//! The engine, its state log, the outbox, the notifiers and the
//! remediator, wired as the service runs them. One lock guards the engine;
//! callers are the findings stage (ingest + tick), the HTTP API (silences,
//! alerts, approvals) and the delivery thread (outbox only).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use driftline_pipeline::{DeadLetter, FindingEvent, Store};

use crate::config::AlertsConfig;
use crate::engine::{AlertEngine, AlertInput, AlertState, StateChange, integration_id};
use crate::notify::{Links, Notifier, PagerDuty, Slack, Webhook};
use crate::outbox::{Backoff, Outbox};
use crate::remediation::{Proposal, Remediator, hook_for};
use crate::silence::Silence;
use crate::state::{Journal, JournalEntry};
use crate::{AlertError, alert_events, finding};

pub struct Alerting {
    engine: Mutex<AlertEngine>,
    remediator: Mutex<Remediator>,
    journal: Arc<Journal>,
    outbox: Arc<Outbox>,
    /// Renderers; the delivery worker holds the same notifiers.
    notifiers: Arc<HashMap<String, Box<dyn Notifier>>>,
    links: Links,
    tag_labels: Vec<String>,
    /// Where `alert_events` rows go (none in tests without a store).
    store: Option<Arc<dyn Store>>,
    /// Each alert's state as last written to `alert_events`, so a change
    /// that keeps the state (new details, the notification log) writes
    /// nothing.
    written: Mutex<HashMap<String, AlertState>>,
}

/// What the delivery thread runs.
pub struct DeliveryWorker {
    outbox: Arc<Outbox>,
    notifiers: Arc<HashMap<String, Box<dyn Notifier>>>,
    backoff: Backoff,
}

impl DeliveryWorker {
    pub fn run(&self, dead: &dyn Fn(DeadLetter), stop: &AtomicBool) -> Result<(), AlertError> {
        self.outbox.run(&self.notifiers, self.backoff, dead, stop)
    }
}

/// A secret the configuration names by environment variable.
fn secret(
    env: &dyn Fn(&str) -> Option<String>,
    var: &str,
    key: String,
    holds: &str,
) -> Result<String, AlertError> {
    env(var)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AlertError::Config {
            key,
            reason: format!("environment variable {var} is not set (it holds {holds})"),
        })
}

/// The notifiers, by integration id, with the secrets they need from the environment.
fn build_notifiers(
    cfg: &AlertsConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<HashMap<String, Box<dyn Notifier>>, AlertError> {
    let mut out: HashMap<String, Box<dyn Notifier>> = HashMap::new();
    for (i, r) in cfg.receivers.iter().enumerate() {
        for (j, p) in r.pagerduty_configs.iter().enumerate() {
            let key = secret(
                env,
                &p.routing_key_env,
                format!("alerts.receivers[{i}].pagerduty_configs[{j}].routing_key_env"),
                "the PagerDuty routing key",
            )?;
            out.insert(
                integration_id(&r.name, "pagerduty", j),
                Box::new(PagerDuty::new(&p.url, key, &p.client)),
            );
        }
        for (j, w) in r.webhook_configs.iter().enumerate() {
            out.insert(
                integration_id(&r.name, "webhook", j),
                Box::new(Webhook::new(&w.url, w.max_alerts)),
            );
        }
        for (j, s) in r.slack_configs.iter().enumerate() {
            let url = secret(
                env,
                &s.url_env,
                format!("alerts.receivers[{i}].slack_configs[{j}].url_env"),
                "the Slack webhook URL",
            )?;
            out.insert(
                integration_id(&r.name, "slack", j),
                Box::new(Slack::new(url, s.channel.clone())),
            );
        }
    }
    Ok(out)
}

impl Alerting {
    /// Opens the state under `dir` (creating it) and restores alerts,
    /// notification log, silences, outbox and proposals from it.
    pub fn open(
        cfg: &AlertsConfig,
        dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        backoff: Backoff,
        store: Option<Arc<dyn Store>>,
        now: i64,
    ) -> Result<(Self, DeliveryWorker), AlertError> {
        cfg.validate()?;
        let notifiers = Arc::new(build_notifiers(cfg, env)?);
        let (journal, records) = Journal::open(dir)?;
        let journal = Arc::new(journal);
        let outbox = Arc::new(Outbox::restore(journal.clone(), &records));
        let mut engine = AlertEngine::new(cfg);
        let mut remediator = Remediator::new(
            cfg.remediation
                .iter()
                .map(|h| (h.clone(), hook_for(h)))
                .collect(),
            store.clone(),
        );
        let mut changes = Vec::new();
        for r in records {
            match r {
                JournalEntry::Engine(c) => changes.push(c),
                JournalEntry::Proposal(p) => remediator.restore(*p),
                _ => {}
            }
        }
        let restored = changes.len();
        engine.restore(changes, now);
        let _ = engine.drain_changes();
        tracing::info!(
            state_records = restored,
            outbox = outbox.pending(),
            "alert state restored"
        );
        let delivery = DeliveryWorker {
            outbox: outbox.clone(),
            notifiers: notifiers.clone(),
            backoff,
        };
        Ok((
            Self {
                engine: Mutex::new(engine),
                remediator: Mutex::new(remediator),
                journal,
                outbox,
                notifiers,
                links: Links {
                    external_url: cfg.external_url.clone(),
                    dashboard_url: cfg.dashboard_url.clone(),
                },
                tag_labels: cfg.tag_labels.clone(),
                store,
                written: Mutex::new(HashMap::new()),
            },
            delivery,
        ))
    }

    pub fn engine(&self) -> MutexGuard<'_, AlertEngine> {
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remediator(&self) -> MutexGuard<'_, Remediator> {
        self.remediator.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies finding events (with the time each happened), then ticks.
    /// Returns once everything they caused is durable.
    pub fn apply_findings(
        &self,
        events: &[(FindingEvent, i64)],
        now: i64,
    ) -> Result<(), AlertError> {
        let inputs: Vec<AlertInput> = events
            .iter()
            .map(|(e, at)| finding::input_of(e, *at, &self.tag_labels))
            .collect();
        self.apply(inputs, now)
    }

    /// Applies alerts (e.g. posted in Alertmanager's API shape), then ticks.
    pub fn apply(&self, inputs: Vec<AlertInput>, now: i64) -> Result<(), AlertError> {
        {
            let mut e = self.engine();
            for i in inputs {
                e.ingest(i, now);
            }
        }
        self.tick(now)
    }

    /// Advances the clock: flushes due groups into the outbox, durably.
    pub fn tick(&self, now: i64) -> Result<(), AlertError> {
        let mut e = self.engine();
        let notifications = e.tick(now);
        let changes = e.drain_changes();
        if notifications.is_empty() && changes.is_empty() {
            // The idle tick (every poll): nothing to render, count or log.
            return Ok(());
        }
        let mut messages = Vec::new();
        for n in &notifications {
            if let Some(notifier) = self.notifiers.get(&*n.integration.id) {
                for body in notifier.render(n, &self.links) {
                    messages.push((n.integration.id.to_string(), body));
                }
            }
        }
        let (p, f, r) = e.counts();
        for (state, n) in [("pending", p), ("firing", f), ("resolved", r)] {
            crate::metrics::metrics()
                .alerts
                .with_label_values(&[state])
                .set(n as i64);
        }
        let resolved: Vec<std::sync::Arc<str>> = changes
            .iter()
            .filter_map(|c| match c {
                StateChange::Alert(a) if a.state == AlertState::Resolved => {
                    Some(a.fingerprint().clone())
                }
                _ => None,
            })
            .collect();
        if let Some(store) = &self.store {
            let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
            alert_events::record(&**store, &mut written, &changes, &notifications, now);
        }
        let prepared = self.outbox.prepare(messages);
        let mut records: Vec<JournalEntry> =
            changes.into_iter().map(JournalEntry::Engine).collect();
        records.extend(prepared.iter().cloned().map(JournalEntry::Enqueued));
        self.journal.append(&records)?;
        self.outbox.push(prepared);
        if self.journal.lines() > 10_000 + 4 * (e.len() + self.outbox.pending()) {
            let mut snap: Vec<JournalEntry> =
                e.snapshot().into_iter().map(JournalEntry::Engine).collect();
            snap.extend(self.outbox.snapshot());
            snap.extend(
                self.remediator()
                    .proposals()
                    .cloned()
                    .map(|p| JournalEntry::Proposal(Box::new(p))),
            );
            self.journal.compact(&snap)?;
        }
        drop(e);
        // Remediation proposals for alerts that were just notified firing.
        let mut rem = self.remediator();
        if rem.is_empty() {
            return Ok(());
        }
        for fp in resolved {
            rem.on_resolved(&fp);
        }
        let mut recs = Vec::new();
        for n in &notifications {
            for a in n.alerts.iter().filter(|a| a.state == AlertState::Firing) {
                for p in rem.on_firing(&a.content)? {
                    recs.push(JournalEntry::Proposal(Box::new(p)));
                }
            }
        }
        self.journal.append(&recs)
    }

    pub fn add_silence(&self, s: Silence) -> Result<(), AlertError> {
        let mut e = self.engine();
        e.add_silence(s);
        let recs: Vec<JournalEntry> = e
            .drain_changes()
            .into_iter()
            .map(JournalEntry::Engine)
            .collect();
        self.journal.append(&recs)
    }

    pub fn expire_silence(&self, id: &str, now: i64) -> Result<bool, AlertError> {
        let mut e = self.engine();
        let found = e.expire_silence(id, now);
        let recs: Vec<JournalEntry> = e
            .drain_changes()
            .into_iter()
            .map(JournalEntry::Engine)
            .collect();
        self.journal.append(&recs)?;
        Ok(found)
    }

    pub fn proposals(&self) -> Vec<Proposal> {
        let mut v: Vec<Proposal> = self.remediator().proposals().cloned().collect();
        v.sort_by_key(|p| p.created_ms);
        v
    }

    /// Approves a proposal and runs its hook (audited).
    pub fn approve(&self, id: &str, actor: &str) -> Result<Proposal, AlertError> {
        let p = self.remediator().approve(id, actor)?;
        self.journal
            .append(&[JournalEntry::Proposal(Box::new(p.clone()))])?;
        Ok(p)
    }

    pub fn outbox_pending(&self) -> usize {
        self.outbox.pending()
    }
}

/// `driftline scan --pagerduty-routing-key-env VAR`: one trigger per
/// finding, nothing resolved (a one-shot scan cannot know recovery).
/// Retries 429/5xx a few times (honouring `Retry-After`); returns how many
/// were accepted and the errors of the rest.
pub fn page_once(
    findings: &[driftline_pipeline::Finding],
    routing_key: String,
    url: &str,
    external_url: &str,
    backoff: Backoff,
) -> (usize, Vec<String>) {
    use crate::notify::Delivery as Outcome;
    let pd = PagerDuty::new(url, routing_key, "driftline");
    let mut cfg = AlertsConfig {
        external_url: external_url.to_string(),
        inhibit_rules: Vec::new(),
        ..AlertsConfig::default()
    };
    cfg.route.group_wait = Some(std::time::Duration::ZERO);
    cfg.receivers = vec![crate::config::ReceiverConfig {
        name: "default".into(),
        pagerduty_configs: vec![crate::config::PagerDutyConfig {
            routing_key_env: "-".into(),
            url: url.into(),
            send_resolved: false,
            client: "driftline".into(),
        }],
        ..Default::default()
    }];
    let mut engine = AlertEngine::new(&cfg);
    let now = driftline_pipeline::now_ms();
    for f in findings {
        let e = FindingEvent::new(driftline_pipeline::FindingEventKind::New, now, f.clone());
        engine.ingest(finding::input_of(&e, now, &cfg.tag_labels), now);
    }
    let links = Links {
        external_url: cfg.external_url.clone(),
        dashboard_url: None,
    };
    let (mut sent, mut errors) = (0, Vec::new());
    for n in engine.tick(now) {
        for m in pd.render(&n, &links) {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match pd.deliver(&m) {
                    Outcome::Delivered => {
                        sent += 1;
                        break;
                    }
                    Outcome::Retry { after, reason } if attempt < 5 => {
                        tracing::warn!(%reason, attempt, "PagerDuty did not take the event; retrying");
                        std::thread::sleep(backoff.delay(attempt, after));
                    }
                    Outcome::Retry { reason, .. } | Outcome::Reject { reason } => {
                        errors.push(format!(
                            "PagerDuty refused the trigger for {}: {reason}",
                            crate::notify::dedup_key_of(&m).as_deref().unwrap_or("?")
                        ));
                        break;
                    }
                }
            }
        }
    }
    (sent, errors)
}
