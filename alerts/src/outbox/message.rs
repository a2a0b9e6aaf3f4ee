//! One message waiting in the outbox, as the alert journal keeps it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub id: u64,
    /// `{receiver}/{kind}/{index}`.
    pub integration: String,
    pub body: Value,
    pub created_ms: i64,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub next_at_ms: i64,
}
