//! What every consuming stage does the same way: poll (retrying after a
//! failed poll), track the offsets to commit, commit, and turn a message
//! it cannot use into a dead letter.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use driftline_pipeline::codec::dead_letter_for;
use driftline_pipeline::{BusError, Consumer, Event, Message, OutMessage, Topic, metrics};

/// One poll. A failed poll is logged and retried after a pause: the stage
/// keeps its place, the consumer reconnects by itself.
pub fn poll(consumer: &mut dyn Consumer, max: usize) -> Vec<Event> {
    match consumer.poll(max, Duration::from_millis(100)) {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(error = %e, "poll failed; retrying");
            std::thread::sleep(Duration::from_millis(500));
            Vec::new()
        }
    }
}

/// The next offset to commit per partition, for what a stage processed.
#[derive(Default)]
pub struct Offsets(HashMap<(Topic, i32), i64>);

impl Offsets {
    pub fn track(&mut self, m: &Message) {
        let next = self.0.entry((m.topic, m.partition)).or_insert(0);
        *next = (*next).max(m.offset + 1);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Forgets revoked partitions: their uncommitted messages go to the new owner.
    pub fn forget(&mut self, partitions: &HashSet<i32>) {
        self.0.retain(|(_, p), _| !partitions.contains(p));
    }

    /// Commits and clears. A failed commit is logged: the batch is read again
    /// (at-least-once), never lost.
    pub fn commit(&mut self, consumer: &mut dyn Consumer) {
        let offsets: Vec<(Topic, i32, i64)> = self.0.drain().map(|((t, p), o)| (t, p, o)).collect();
        if let Err(e) = consumer.commit(&offsets) {
            tracing::warn!(error = %e, "commit failed; the batch will be read again");
        }
    }
}

/// A dead letter for a message the stage cannot use, counted and logged.
pub fn reject(m: &Message, reason: &str) -> Result<OutMessage, BusError> {
    metrics()
        .dead_letters
        .with_label_values(&[m.topic.name()])
        .inc();
    tracing::warn!(topic = %m.topic, partition = m.partition, offset = m.offset, %reason, "dead letter");
    dead_letter_for(
        m.topic,
        m.partition,
        m.offset,
        m.key.as_deref(),
        m.payload.as_deref(),
        reason,
    )
}
