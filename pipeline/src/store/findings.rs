//! The findings writer: `driftline.findings` in, the store's
//! `finding_events` table (and, when asked, JSON lines) out, on the stage
//! runner; offsets are committed after both are durable.
//!
//! The findings topic is compacted (the latest event per fingerprint): on
//! assignment the runner replays it up to the committed offset, so the
//! writer learns each finding's last event, and drops an event that repeats
//! it — the copy a detector publishes again when it crashed between
//! publishing and committing. So a finding is never written resolved twice.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;

use super::Store;
use crate::bus::{ConsumerSpec, Message, OutMessage, Topic};
use crate::codec::decode_finding_event;
use crate::model::{Finding, FindingEvent, FindingEventKind};
use crate::schema::finding_events_batch;
use crate::stage::{Stage, StageError};

/// Where `--findings-out` goes: JSON lines on stdout or appended to a file.
pub enum FindingsOut {
    Stdout,
    File(std::fs::File),
}

impl FindingsOut {
    /// `-` is stdout; anything else a file, appended to.
    pub fn open(target: &str) -> std::io::Result<Self> {
        if target == "-" {
            return Ok(FindingsOut::Stdout);
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(target)
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("{target}: cannot open for appending: {e}"),
                )
            })?;
        Ok(FindingsOut::File(f))
    }

    fn write(&mut self, lines: &[u8]) -> std::io::Result<()> {
        match self {
            FindingsOut::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(lines)?;
                out.flush()
            }
            FindingsOut::File(f) => {
                f.write_all(lines)?;
                f.sync_data()
            }
        }
    }
}

pub struct FindingsWriter {
    store: Arc<dyn Store>,
    out: Option<FindingsOut>,
    group: String,
    /// fingerprint → (partition, last event written, without its timestamp)
    last: HashMap<String, (i32, FindingEventKind, Finding)>,
    /// Taken since the last flush, repeats dropped.
    taken: Vec<FindingEvent>,
    /// Something was taken since the last flush (its offsets wait).
    any: bool,
}

impl FindingsWriter {
    pub fn new(store: Arc<dyn Store>, out: Option<FindingsOut>, group: String) -> Self {
        Self {
            store,
            out,
            group,
            last: HashMap::new(),
            taken: Vec::new(),
            any: false,
        }
    }

    fn write(&mut self, events: &[FindingEvent]) -> Result<(), StageError> {
        let fail = |e: Box<dyn std::error::Error + Send + Sync>| StageError::of("sink", e);
        let batch = finding_events_batch(events).map_err(|e| fail(e.into()))?;
        self.store
            .append("finding_events", &batch)
            .map_err(|e| fail(e.into()))?;
        if let Some(out) = self.out.as_mut() {
            let mut lines = Vec::with_capacity(events.len() * 512);
            for e in events {
                serde_json::to_writer(&mut lines, e).map_err(|e| fail(e.into()))?;
                lines.push(b'\n');
            }
            out.write(&lines).map_err(|e| fail(e.into()))?;
        }
        Ok(())
    }
}

impl Stage for FindingsWriter {
    fn name(&self) -> &'static str {
        "sink"
    }

    fn consumes(&self) -> ConsumerSpec {
        ConsumerSpec {
            group: self.group.clone(),
            topics: vec![Topic::Findings],
            rewind: vec![Topic::Findings],
            restore: Vec::new(),
        }
    }

    fn replay(&mut self, messages: Vec<Message>) {
        for m in messages {
            if let Some(Ok(e)) = m.payload.as_deref().map(decode_finding_event) {
                self.last.insert(
                    e.finding.fingerprint.clone(),
                    (m.partition, e.event, e.finding),
                );
            }
        }
    }

    fn revoked(&mut self, partitions: &HashSet<i32>) {
        self.last.retain(|_, (p, _, _)| !partitions.contains(p));
    }

    fn take(&mut self, messages: Vec<Message>) -> Vec<(Message, String)> {
        let mut rejected = Vec::new();
        self.any |= !messages.is_empty();
        for m in messages {
            let decoded = match m.payload.as_deref() {
                Some(p) => decode_finding_event(p),
                None => Err("finding event without a payload".to_string()),
            };
            match decoded {
                Ok(e) => {
                    let fp = e.finding.fingerprint.clone();
                    if self
                        .last
                        .get(&fp)
                        .is_some_and(|(_, k, f)| *k == e.event && *f == e.finding)
                    {
                        tracing::debug!(fingerprint = %fp, event = e.event.as_str(), "repeated finding event dropped");
                        continue;
                    }
                    self.last
                        .insert(fp, (m.partition, e.event, e.finding.clone()));
                    self.taken.push(e);
                }
                Err(reason) => rejected.push((m, reason)),
            }
        }
        rejected
    }

    fn flush(&mut self, _drained: bool) -> Result<Option<Vec<OutMessage>>, StageError> {
        if !std::mem::take(&mut self.any) {
            return Ok(None);
        }
        let events = std::mem::take(&mut self.taken);
        if !events.is_empty() {
            self.write(&events)?;
        }
        Ok(Some(Vec::new()))
    }
}
