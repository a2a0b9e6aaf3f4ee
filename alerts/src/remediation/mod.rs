//! Remediation hooks (the `RemediationHook` door): when an alert a hook
//! matches starts firing, the hook's dry run is proposed; the real run
//! waits for an approval (`driftline remediate ALERT --approve`, or
//! `POST /api/remediations/{id}/approve`) unless the hook is allow-listed.
//! Every proposal, approval and run — who, when, what, output, exit code —
//! is a row of the store's `remediation_audit` table.

mod hooks;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Builder, Int64Array, StringArray};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use driftline_pipeline::store::tables::{ALERT_EVENTS, alert_events_batch};
use driftline_pipeline::{Store, now_ms};
use serde::{Deserialize, Serialize};

use crate::AlertError;
use crate::config::{HookConfig, HookKind};
use crate::engine::AlertContent;
use crate::labels::all_match;
use crate::metrics::metrics;

pub use hooks::{CommandHook, TerraformHook, WebhookHook, hook_for};

/// What a hook did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HookRun {
    /// The command line or request, secrets left out.
    pub command: String,
    pub output: String,
    /// Process exit code (HTTP status for webhooks); none for a pure preview.
    pub exit_code: Option<i32>,
}

pub trait RemediationHook: Send + Sync {
    /// A preview that changes nothing (`terraform plan`, the rendered command).
    fn dry_run(&self, alert: &AlertContent) -> HookRun;
    /// The real thing.
    fn run(&self, alert: &AlertContent) -> HookRun;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProposalStatus {
    Proposed,
    Approved,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub id: String,
    pub fingerprint: String,
    pub hook: String,
    pub kind: HookKind,
    pub status: ProposalStatus,
    pub created_ms: i64,
    /// What the alert said when the proposal was made.
    pub alert: Arc<AlertContent>,
    pub plan: HookRun,
    pub approved_by: Option<String>,
    pub approved_ms: Option<i64>,
    pub result: Option<HookRun>,
}

/// One row of `remediation_audit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    pub at_ms: i64,
    pub proposal_id: String,
    pub alert_fingerprint: String,
    pub hook: String,
    pub kind: String,
    /// `proposed`, `approved`, `run`.
    pub action: String,
    pub actor: String,
    pub command: String,
    pub output: String,
    pub exit_code: Option<i32>,
}

/// The store's `remediation_audit` schema (the store owns its tables).
pub fn audit_schema() -> SchemaRef {
    driftline_pipeline::store::tables::REMEDIATION_AUDIT_SCHEMA.clone()
}

pub fn audit_batch(rows: &[AuditRow]) -> Result<RecordBatch, AlertError> {
    let s = |f: fn(&AuditRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let mut codes = Int32Builder::new();
    for r in rows {
        codes.append_option(r.exit_code);
    }
    let at: Vec<String> = rows
        .iter()
        .map(|r| driftline_pipeline::format_epoch_ms(r.at_ms))
        .collect();
    RecordBatch::try_new(
        audit_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.at_ms))),
            Arc::new(StringArray::from_iter_values(at)),
            s(|r| &r.proposal_id),
            s(|r| &r.alert_fingerprint),
            s(|r| &r.hook),
            s(|r| &r.kind),
            s(|r| &r.action),
            s(|r| &r.actor),
            s(|r| &r.command),
            s(|r| &r.output),
            Arc::new(codes.finish()),
        ],
    )
    .map_err(|e| AlertError::Audit(e.to_string()))
}

fn kind_name(k: HookKind) -> &'static str {
    match k {
        HookKind::Command => "command",
        HookKind::Webhook => "webhook",
        HookKind::Terraform => "terraform",
    }
}

/// Proposals and the hooks behind them. Runs hooks synchronously: the
/// service calls it from its own remediation thread.
pub struct Remediator {
    hooks: Vec<(HookConfig, Box<dyn RemediationHook>)>,
    proposals: HashMap<String, Proposal>,
    /// (fingerprint, hook) already proposed for this firing episode.
    proposed: HashSet<(String, String)>,
    store: Option<Arc<dyn Store>>,
}

impl Remediator {
    pub fn new(
        hooks: Vec<(HookConfig, Box<dyn RemediationHook>)>,
        store: Option<Arc<dyn Store>>,
    ) -> Self {
        Self {
            hooks,
            proposals: HashMap::new(),
            proposed: HashSet::new(),
            store,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    pub fn restore(&mut self, p: Proposal) {
        if matches!(
            p.status,
            ProposalStatus::Proposed | ProposalStatus::Approved
        ) {
            self.proposed
                .insert((p.fingerprint.clone(), p.hook.clone()));
        }
        self.proposals.insert(p.id.clone(), p);
    }

    pub fn proposals(&self) -> impl Iterator<Item = &Proposal> {
        self.proposals.values()
    }

    fn audit(
        &self,
        p: &Proposal,
        action: &str,
        actor: &str,
        run: &HookRun,
    ) -> Result<(), AlertError> {
        metrics()
            .remediations
            .with_label_values(&[p.hook.as_str(), action])
            .inc();
        let row = AuditRow {
            at_ms: now_ms(),
            proposal_id: p.id.clone(),
            alert_fingerprint: p.fingerprint.clone(),
            hook: p.hook.clone(),
            kind: kind_name(p.kind).into(),
            action: action.into(),
            actor: actor.into(),
            command: run.command.clone(),
            output: run.output.clone(),
            exit_code: run.exit_code,
        };
        tracing::info!(proposal = %p.id, hook = %p.hook, alert = %p.fingerprint, action, actor, "remediation");
        if let Some(store) = &self.store {
            store
                .append("remediation_audit", &audit_batch(&[row])?)
                .map_err(|e| AlertError::Audit(e.to_string()))?;
            // A hook that ran and succeeded ended the alert: its outcome.
            if action == "run" && p.status == ProposalStatus::Succeeded {
                let event = crate::alert_events::alert_event(&p.alert, "remediated", now_ms(), "");
                let batch =
                    alert_events_batch(&[event]).map_err(|e| AlertError::Audit(e.to_string()))?;
                store
                    .append(ALERT_EVENTS, &batch)
                    .map_err(|e| AlertError::Audit(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// An alert started firing: propose each matching hook (dry run), and
    /// run the allow-listed ones. Returns the proposals that changed.
    pub fn on_firing(&mut self, alert: &Arc<AlertContent>) -> Result<Vec<Proposal>, AlertError> {
        let mut changed = Vec::new();
        for i in 0..self.hooks.len() {
            let (cfg, hook) = &self.hooks[i];
            if !all_match(&cfg.matchers, &alert.labels)
                || !self
                    .proposed
                    .insert((alert.fingerprint.to_string(), cfg.name.clone()))
            {
                continue;
            }
            let plan = hook.dry_run(alert);
            let allow = cfg.allow;
            let p = Proposal {
                id: crate::silence::new_id()[..16].to_string(),
                fingerprint: alert.fingerprint.to_string(),
                hook: cfg.name.clone(),
                kind: cfg.kind,
                status: ProposalStatus::Proposed,
                created_ms: now_ms(),
                alert: alert.clone(),
                plan: plan.clone(),
                approved_by: None,
                approved_ms: None,
                result: None,
            };
            self.audit(&p, "proposed", "driftline", &plan)?;
            let id = p.id.clone();
            self.proposals.insert(id.clone(), p);
            if allow {
                changed.push(self.approve(&id, "policy:allow-list")?);
            } else {
                changed.push(self.proposals[&id].clone());
            }
        }
        Ok(changed)
    }

    /// The alert resolved: a later firing may be proposed again.
    pub fn on_resolved(&mut self, fingerprint: &str) {
        self.proposed.retain(|(fp, _)| fp != fingerprint);
    }

    /// Approves and runs a proposal now.
    pub fn approve(&mut self, id: &str, actor: &str) -> Result<Proposal, AlertError> {
        let p = self
            .proposals
            .get(id)
            .cloned()
            .ok_or_else(|| AlertError::NotFound(format!("no remediation proposal {id}")))?;
        if p.status != ProposalStatus::Proposed {
            return Err(AlertError::Conflict(format!(
                "proposal {id} is already {:?}",
                p.status
            )));
        }
        let Some((_, hook)) = self.hooks.iter().find(|(c, _)| c.name == p.hook) else {
            return Err(AlertError::NotFound(format!(
                "hook {} is no longer configured",
                p.hook
            )));
        };
        let now = now_ms();
        let mut p = p;
        p.status = ProposalStatus::Approved;
        p.approved_by = Some(actor.to_string());
        p.approved_ms = Some(now);
        self.audit(&p, "approved", actor, &p.plan.clone())?;
        let result = hook.run(&p.alert);
        p.status = if result.exit_code == Some(0)
            || (p.kind == HookKind::Webhook
                && result.exit_code.is_some_and(|c| (200..300).contains(&c)))
        {
            ProposalStatus::Succeeded
        } else {
            ProposalStatus::Failed
        };
        self.audit(&p, "run", actor, &result)?;
        p.result = Some(result);
        self.proposals.insert(p.id.clone(), p.clone());
        Ok(p)
    }
}
