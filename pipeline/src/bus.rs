//! The `Bus` door: collectors publish records onto topics, detectors read
//! them back. The in-process bus is the embedded default; the Kafka bus of
//! the streaming issue implements the same trait.

use std::collections::HashMap;
use std::sync::Mutex;

use thiserror::Error;

use crate::model::{DeclaredResource, Finding, ObservedResource};

/// The topics of DESIGN §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Latest observed snapshots, keyed by resource key (compacted).
    Config,
    /// Latest declared snapshots, keyed by resource key (compacted).
    Declared,
    /// Findings, keyed by fingerprint.
    Findings,
    /// Rejected input with its reason.
    DeadLetters,
}

impl Topic {
    pub fn name(self) -> &'static str {
        match self {
            Topic::Config => "driftline.config",
            Topic::Declared => "driftline.declared",
            Topic::Findings => "driftline.findings",
            Topic::DeadLetters => "driftline.dlq",
        }
    }
}

/// A rejected input and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    pub source: String,
    pub reason: String,
}

/// What travels on the bus.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Declared(Box<DeclaredResource>),
    Observed(Box<ObservedResource>),
    Finding(Box<Finding>),
    DeadLetter(DeadLetter),
}

impl Record {
    /// The message key: resource key for snapshots, so a compacted topic
    /// keeps the latest snapshot of each resource.
    pub fn key(&self) -> &str {
        match self {
            Record::Declared(d) => &d.resource_key,
            Record::Observed(o) => &o.resource_key,
            Record::Finding(f) => &f.resource_key,
            Record::DeadLetter(d) => &d.source,
        }
    }
}

#[derive(Debug, Error)]
pub enum BusError {
    #[error("bus is closed")]
    Closed,
    #[error("topic {topic}: {reason}")]
    Topic { topic: &'static str, reason: String },
}

/// Where records go between stages.
pub trait Bus: Send + Sync {
    /// Appends records to a topic, in order.
    fn publish(&self, topic: Topic, records: Vec<Record>) -> Result<(), BusError>;
    /// Reads up to `max` records from `offset` on; returns them and the next offset.
    fn read(&self, topic: Topic, offset: u64, max: usize) -> Result<(Vec<Record>, u64), BusError>;
}

/// The embedded bus: one in-memory log per topic, no encoding.
#[derive(Default)]
pub struct InProcessBus {
    logs: Mutex<HashMap<Topic, Vec<Record>>>,
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes and returns everything published on a topic so far. Used by a
    /// one-shot scan that reads each topic once, to avoid a copy.
    pub fn drain(&self, topic: Topic) -> Vec<Record> {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        logs.remove(&topic).unwrap_or_default()
    }
}

impl Bus for InProcessBus {
    fn publish(&self, topic: Topic, records: Vec<Record>) -> Result<(), BusError> {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        logs.entry(topic).or_default().extend(records);
        Ok(())
    }

    fn read(&self, topic: Topic, offset: u64, max: usize) -> Result<(Vec<Record>, u64), BusError> {
        let logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        let Some(log) = logs.get(&topic) else {
            return Ok((Vec::new(), offset));
        };
        let start = (offset as usize).min(log.len());
        let end = start.saturating_add(max).min(log.len());
        Ok((log[start..end].to_vec(), end as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dl(s: &str) -> Record {
        Record::DeadLetter(DeadLetter {
            source: s.into(),
            reason: "r".into(),
        })
    }

    #[test]
    fn reads_in_order_from_offsets() {
        let bus = InProcessBus::new();
        bus.publish(Topic::DeadLetters, vec![dl("a"), dl("b"), dl("c")])
            .unwrap();
        let (first, next) = bus.read(Topic::DeadLetters, 0, 2).unwrap();
        assert_eq!(first, vec![dl("a"), dl("b")]);
        let (rest, end) = bus.read(Topic::DeadLetters, next, 10).unwrap();
        assert_eq!(rest, vec![dl("c")]);
        assert_eq!(end, 3);
        assert!(bus.read(Topic::Config, 0, 10).unwrap().0.is_empty());
        assert_eq!(bus.drain(Topic::DeadLetters).len(), 3);
        assert!(bus.drain(Topic::DeadLetters).is_empty());
    }
}
