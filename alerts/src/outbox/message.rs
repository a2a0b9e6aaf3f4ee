//! One message waiting in the outbox, as the alert journal keeps it.

use serde::{Deserialize, Serialize};

use crate::notify::Message;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub id: u64,
    /// `{receiver}/{kind}/{index}`.
    pub integration: String,
    /// The rendered message, kept as the JSON text it was rendered to.
    pub body: Message,
    pub created_ms: i64,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub next_at_ms: i64,
}
