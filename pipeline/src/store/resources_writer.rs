//! The resources writer: `driftline.declared` and `driftline.config` in,
//! the store's resource history tables out, on the stage runner. Each
//! snapshot on the bus is a new version of its resource (collectors publish
//! only what changed), each tombstone a deletion; source statuses are not
//! resources and are skipped. Offsets are committed once the rows are
//! durable, so a crash re-appends at most the last batch's versions, which
//! the `resources_*` views read as the same latest row.
//!
//! A version the store already holds as latest (the same digest: a
//! collector's first pass after a restart, or a re-read file's unchanged
//! items) is not written again, nor a deletion of a resource it does not
//! hold; one query per batch, for the batch's keys, tells which. While the
//! store cannot answer (ClickHouse away), everything is written.
//!
//! A message that does not decode is the drift stage's dead letter (it
//! reads the same topics); this writer skips it rather than report it twice.

use std::sync::Arc;

use super::Store;
use super::scan_record::{latest_digests, new_versions};
use super::tables::{Side, history_batch, row_facts};
use crate::bus::{ConsumerSpec, Message, OutMessage, Topic};
use crate::codec::decode_table;
use crate::schema::{DECLARED_SCHEMA, OBSERVED_SCHEMA};
use crate::source_status::is_status_key;
use crate::stage::{Stage, StageError};

pub struct ResourcesWriter {
    store: Arc<dyn Store>,
    group: String,
    /// Taken since the last flush, per topic, in order.
    declared: Vec<Message>,
    observed: Vec<Message>,
    any: bool,
}

impl ResourcesWriter {
    pub fn new(store: Arc<dyn Store>, group: String) -> Self {
        Self {
            store,
            group,
            declared: Vec::new(),
            observed: Vec::new(),
            any: false,
        }
    }

    /// Appends one topic's messages as history rows: snapshots decoded in
    /// bulk, tombstones as deletions.
    fn write(&self, side: Side, messages: &[Message]) -> Result<(), StageError> {
        let fail = |e: Box<dyn std::error::Error + Send + Sync>| StageError::of("resources", e);
        let gone: Vec<&str> = messages
            .iter()
            .filter(|m| m.payload.is_none())
            .filter_map(|m| m.key.as_deref())
            .collect();
        let payloads: Vec<&[u8]> = messages
            .iter()
            .filter_map(|m| m.payload.as_deref())
            .collect();
        let schema = match side {
            Side::Declared => &*DECLARED_SCHEMA,
            Side::Observed => &*OBSERVED_SCHEMA,
        };
        let decoded = decode_table(schema, &payloads);
        let facts = row_facts(side, &decoded.batch).map_err(|e| fail(e.into()))?;
        let keys: Vec<&str> = facts
            .keys
            .iter()
            .map(String::as_str)
            .chain(gone.iter().copied())
            .collect();
        let (keep, gone) = match latest_digests(&*self.store, side, Some(&keys)) {
            Ok(held) => (
                new_versions(&held, &facts),
                gone.into_iter().filter(|k| held.contains_key(*k)).collect(),
            ),
            // The store cannot answer (ClickHouse away: its appends go to the
            // spool). Write everything: a repeated version reads the same in
            // the latest views, and losing a real one would not.
            Err(e) => {
                tracing::debug!(error = %e, "resource versions not compared; all written");
                ((0..facts.keys.len()).collect(), gone)
            }
        };
        if keep.is_empty() && gone.is_empty() {
            return Ok(());
        }
        let now = crate::time::now_ms();
        let batch = history_batch(side, &decoded.batch, &facts, Some(&keep), &gone, now)
            .map_err(|e| fail(e.into()))?;
        if batch.num_rows() > 0 {
            self.store
                .append(side.table(), &batch)
                .map_err(|e| fail(e.into()))?;
        }
        Ok(())
    }
}

/// Messages cut into runs in which no key appears twice. Within a run the
/// store's latest versions decide what is news; a key's second event (its
/// deletion after the version the same poll brought, say) starts a new run,
/// so it is judged against the first one, written before it.
fn runs(messages: &[Message]) -> Vec<&[Message]> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut start = 0;
    for (i, m) in messages.iter().enumerate() {
        if !seen.insert(m.key.as_deref()) {
            out.push(&messages[start..i]);
            start = i;
            seen.clear();
            seen.insert(m.key.as_deref());
        }
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

impl Stage for ResourcesWriter {
    fn name(&self) -> &'static str {
        "resources"
    }

    fn consumes(&self) -> ConsumerSpec {
        ConsumerSpec {
            group: self.group.clone(),
            topics: vec![Topic::Declared, Topic::Config],
            rewind: Vec::new(),
            restore: Vec::new(),
        }
    }

    fn replay(&mut self, _messages: Vec<Message>) {}

    fn ready_at_start(&self) -> bool {
        true
    }

    fn take(&mut self, messages: Vec<Message>) -> Vec<(Message, String)> {
        self.any |= !messages.is_empty();
        for m in messages {
            if m.key.as_deref().is_some_and(is_status_key) {
                continue;
            }
            match m.topic {
                Topic::Declared => self.declared.push(m),
                Topic::Config => self.observed.push(m),
                _ => {}
            }
        }
        Vec::new()
    }

    fn flush(&mut self, _drained: bool) -> Result<Option<Vec<OutMessage>>, StageError> {
        if !std::mem::take(&mut self.any) {
            return Ok(None);
        }
        let declared = std::mem::take(&mut self.declared);
        let observed = std::mem::take(&mut self.observed);
        for (side, messages) in [(Side::Declared, declared), (Side::Observed, observed)] {
            for run in runs(&messages) {
                self.write(side, run)?;
            }
        }
        Ok(Some(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(key: &str, tombstone: bool) -> Message {
        Message {
            topic: Topic::Config,
            partition: 0,
            offset: 0,
            key: Some(key.into()),
            payload: (!tombstone).then(|| b"{}".as_slice().into()),
            replay: false,
        }
    }

    #[test]
    fn a_key_seen_twice_starts_a_new_run() {
        let m = [
            msg("a", false),
            msg("b", false),
            msg("a", true),
            msg("c", false),
        ];
        let r = runs(&m);
        assert_eq!(r.iter().map(|r| r.len()).collect::<Vec<_>>(), vec![2, 2]);
        assert!(runs(&[]).is_empty());
    }
}
