//! The dead-letters writer: `driftline.dlq` in, the store's `dead_letters`
//! table out, so every rejected input (a push body, a file, a bus message)
//! is a row SQL can find with its source and reason. Drains on stop, like
//! the telemetry writer: a dead letter on the embedded bus would die with
//! the process.

use std::sync::Arc;

use super::Store;
use crate::bus::{ConsumerSpec, DeadLetter, Message, OutMessage, Topic};
use crate::schema::dead_letters_batch;
use crate::stage::{Stage, StageError};

pub struct DeadLettersWriter {
    store: Arc<dyn Store>,
    group: String,
    rows: Vec<DeadLetter>,
    taken: bool,
}

impl DeadLettersWriter {
    pub fn new(store: Arc<dyn Store>, group: String) -> Self {
        Self {
            store,
            group,
            rows: Vec::new(),
            taken: false,
        }
    }
}

impl Stage for DeadLettersWriter {
    fn name(&self) -> &'static str {
        "dead-letters"
    }

    fn consumes(&self) -> ConsumerSpec {
        ConsumerSpec {
            group: self.group.clone(),
            topics: vec![Topic::DeadLetters],
            rewind: Vec::new(),
            restore: Vec::new(),
        }
    }

    fn replay(&mut self, _messages: Vec<Message>) {}

    fn ready_at_start(&self) -> bool {
        true
    }

    fn drains_on_stop(&self) -> bool {
        true
    }

    fn take(&mut self, messages: Vec<Message>) -> Vec<(Message, String)> {
        self.taken |= !messages.is_empty();
        for m in messages {
            let payload = m.payload.as_deref().unwrap_or_default();
            // A dead letter that is itself unreadable is kept as what it is,
            // not rejected again (that would loop).
            let row =
                serde_json::from_slice::<DeadLetter>(payload).unwrap_or_else(|e| DeadLetter {
                    source: m.topic.name().into(),
                    reason: format!("unreadable dead letter: {e}"),
                    partition: Some(m.partition),
                    offset: Some(m.offset),
                    key: m.key.clone(),
                    payload: Some(crate::secrets::shown_bytes(
                        payload,
                        crate::codec::DEAD_PAYLOAD_MAX,
                    )),
                });
            self.rows.push(row);
        }
        Vec::new()
    }

    fn flush(&mut self, _drained: bool) -> Result<Option<Vec<OutMessage>>, StageError> {
        if !std::mem::take(&mut self.taken) {
            return Ok(None);
        }
        let rows = std::mem::take(&mut self.rows);
        let fail = |e: Box<dyn std::error::Error + Send + Sync>| StageError::of("dead-letters", e);
        let batch = dead_letters_batch(&rows, crate::time::now_ms()).map_err(|e| fail(e.into()))?;
        self.store
            .append("dead_letters", &batch)
            .map_err(|e| fail(e.into()))?;
        Ok(Some(Vec::new()))
    }
}
