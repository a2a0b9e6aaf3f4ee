//! Findings to actionable pages (DESIGN §5). The doors:
//! - [`AlertEngine`]: alert state (pending → firing → resolved, `for`, flap
//!   damping), Alertmanager's grouping, routing, silences and inhibition;
//! - [`Notifier`]: PagerDuty Events v2, Alertmanager-shaped webhooks, Slack;
//! - [`RemediationHook`]: command, webhook and terraform hooks with approval
//!   and an audit trail.
//!
//! [`Alerting`] puts them together with the durable state log and outbox;
//! the binary feeds it finding events and drives its clock.

mod alert_events;
mod alerting;
pub mod api;
pub mod config;
pub mod engine;
pub mod finding;
pub mod labels;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod remediation;
pub mod silence;
pub mod stage;
pub mod state;

use thiserror::Error;

pub use alerting::{Alerting, DeliveryWorker, page_once};
pub use config::AlertsConfig;
pub use engine::{Alert, AlertEngine, AlertInput, AlertState, Notification};
pub use notify::Notifier;
pub use remediation::{Proposal, RemediationHook};
pub use silence::Silence;

#[derive(Debug, Error)]
pub enum AlertError {
    #[error("matcher {text:?}: {reason}")]
    Matcher { text: String, reason: String },
    #[error("{key}: {reason}")]
    Config { key: String, reason: String },
    #[error("silence: {0}")]
    Silence(String),
    #[error("alert state {path}: {reason}")]
    State { path: String, reason: String },
    #[error("remediation audit: {0}")]
    Audit(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
}
