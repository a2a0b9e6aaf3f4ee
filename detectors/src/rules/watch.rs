//! The rules in a running service: re-evaluated over the store whenever
//! their inputs change (a new resource version, new cost rows, or an edited
//! rule file: the folder is re-read on every pass, so editing a rule is its
//! hot reload), with each change to the open policy findings published on
//! `driftline.findings` as `new`, `changed` or `resolved` — the alert
//! engine and the store take them as they take drift findings.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use driftline_pipeline::bus::Producer;
use driftline_pipeline::codec::encode_finding_event;
use driftline_pipeline::store::{QueryLimits, open_findings};
use driftline_pipeline::{Finding, FindingClass, FindingEvent, FindingEventKind, Store};

use super::{RuleError, RuleTables, Rules};

pub struct RulesWatch {
    /// `shipped`, or a folder of `*.sql` re-read on every pass.
    source: PathBuf,
    store: Arc<dyn Store>,
    producer: Box<dyn Producer>,
    required_tags: Vec<String>,
    /// The policy findings open now, by fingerprint (from the store at start).
    open: Option<BTreeMap<String, Finding>>,
    /// What the last evaluation read: rules and input versions.
    last_inputs: Option<(Rules, String)>,
}

fn failed(reason: impl std::fmt::Display) -> RuleError {
    RuleError {
        origin: "rules".into(),
        reason: reason.to_string(),
    }
}

impl RulesWatch {
    pub fn new(
        source: PathBuf,
        store: Arc<dyn Store>,
        producer: Box<dyn Producer>,
        required_tags: Vec<String>,
    ) -> Self {
        Self {
            source,
            store,
            producer,
            required_tags,
            open: None,
            last_inputs: None,
        }
    }

    fn rules(&self) -> Result<Rules, RuleError> {
        if self.source == std::path::Path::new("shipped") {
            Ok(Rules::shipped())
        } else {
            Rules::from_dir(&self.source)
        }
    }

    /// The newest resource versions and the cost row count: what changes
    /// when a rule's answer can.
    fn input_versions(&self) -> Result<String, RuleError> {
        let answer = self
            .store
            .query(
                "SELECT (SELECT MAX(version) FROM resources_declared_history) AS d, \
                        (SELECT MAX(version) FROM resources_observed_history) AS o, \
                        (SELECT COUNT(*) FROM focus_data_table) AS c",
                &QueryLimits::default(),
            )
            .map_err(failed)?;
        Ok(answer
            .cells()
            .map_err(failed)?
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("/"))
    }

    /// One pass: evaluates the rules if their inputs changed and publishes
    /// what changed. Returns how many finding events it published.
    pub fn poll_once(&mut self) -> Result<usize, RuleError> {
        let rules = self.rules()?;
        let versions = self.input_versions()?;
        if self
            .last_inputs
            .as_ref()
            .is_some_and(|(r, v)| *r == rules && *v == versions)
        {
            return Ok(0);
        }
        if self.open.is_none() {
            self.open = Some(
                open_findings(&*self.store)
                    .map_err(failed)?
                    .into_iter()
                    .filter(|f| f.class == FindingClass::Policy)
                    .map(|f| (f.fingerprint.clone(), f))
                    .collect(),
            );
        }
        let tables = RuleTables::from_store(&*self.store, &self.required_tags)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(failed)?;
        let (found, errors) = rt.block_on(rules.evaluate(&tables));
        for e in &errors {
            tracing::warn!(error = %e, "policy rule failed");
        }
        let now = driftline_pipeline::now_ms();
        let open = self.open.as_mut().expect("loaded above");
        let found: BTreeMap<String, Finding> = found
            .into_iter()
            .map(|f| (f.fingerprint.clone(), f))
            .collect();
        let mut events = Vec::new();
        for (fp, f) in &found {
            match open.get(fp) {
                None => events.push(FindingEvent::new(FindingEventKind::New, now, f.clone())),
                Some(before) if before.summary != f.summary => {
                    events.push(FindingEvent::new(FindingEventKind::Changed, now, f.clone()))
                }
                Some(_) => {}
            }
        }
        // A rule that failed this pass resolves nothing: it did not look.
        let failed_rules: Vec<String> = errors.iter().map(|e| e.origin.clone()).collect();
        for (fp, f) in open.iter() {
            let rule_failed = rules.rules.iter().any(|r| {
                failed_rules.contains(&r.origin)
                    && f.source.as_deref() == Some(&format!("rule:{}", r.name))
            });
            if !found.contains_key(fp) && !rule_failed {
                events.push(FindingEvent::new(
                    FindingEventKind::Resolved,
                    now,
                    f.clone(),
                ));
            }
        }
        let messages = events
            .iter()
            .map(encode_finding_event)
            .collect::<Result<Vec<_>, _>>()
            .map_err(failed)?;
        if !messages.is_empty() {
            self.producer.send(messages).map_err(failed)?;
        }
        for e in &events {
            match e.event {
                FindingEventKind::Resolved => open.remove(&e.finding.fingerprint),
                _ => open.insert(e.finding.fingerprint.clone(), e.finding.clone()),
            };
        }
        tracing::info!(
            rules = rules.rules.len(),
            open = open.len(),
            published = events.len(),
            "policy rules evaluated"
        );
        self.last_inputs = Some((rules, versions));
        Ok(events.len())
    }
}
