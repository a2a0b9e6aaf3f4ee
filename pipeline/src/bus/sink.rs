//! Where collectors put typed records: encoded and sent on a bus
//! (`BusSink`), or kept in memory by a one-shot command (`Snapshots`: the
//! rows it reads, typed as they arrive) or a test (`Collected`: every
//! record as published, per topic).

use std::collections::HashMap;
use std::sync::Mutex;

use super::{BusError, OutMessage, Producer, Record, Topic};
use crate::codec;
use crate::model::{DeclaredResource, ObservedResource};
use crate::source_status::SourceStatus;

/// The collectors' side of the bus.
pub trait RecordSink: Send + Sync {
    /// Appends records to a topic, in order; returns once they are durable.
    fn publish(&self, topic: Topic, records: Vec<Record>) -> Result<(), BusError>;
}

/// Every record as published, per topic, for a test to inspect.
#[derive(Default)]
pub struct Collected {
    logs: Mutex<HashMap<Topic, Vec<Record>>>,
}

impl Collected {
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes and returns everything published on a topic so far.
    pub fn drain(&self, topic: Topic) -> Vec<Record> {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        logs.remove(&topic).unwrap_or_default()
    }
}

impl RecordSink for Collected {
    fn publish(&self, topic: Topic, records: Vec<Record>) -> Result<(), BusError> {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        logs.entry(topic).or_default().extend(records);
        Ok(())
    }
}

/// What one read of every source gave, typed: the tables `scan` registers
/// and the rows the list commands print. Tombstones and dead letters are
/// not kept (a one-shot read publishes none of the first, and reports the
/// second as errors).
#[derive(Debug, Default)]
pub struct SnapshotSet {
    pub declared: Vec<DeclaredResource>,
    pub observed: Vec<ObservedResource>,
    pub statuses: Vec<SourceStatus>,
}

/// A one-shot command's sink: gathers a `SnapshotSet` as records arrive.
#[derive(Default)]
pub struct Snapshots {
    set: Mutex<SnapshotSet>,
}

impl Snapshots {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn into_set(self) -> SnapshotSet {
        self.set.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl RecordSink for Snapshots {
    fn publish(&self, _topic: Topic, records: Vec<Record>) -> Result<(), BusError> {
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        for r in records {
            match r {
                Record::Declared(d) => set.declared.push(*d),
                Record::Observed(o) => set.observed.push(*o),
                Record::Status(s) => set.statuses.push(*s),
                Record::Deleted { .. }
                | Record::DeadLetter(_)
                | Record::Metrics(_)
                | Record::Logs(_) => {}
            }
        }
        Ok(())
    }
}

/// Encodes records (`codec`) and sends them through a bus producer.
pub struct BusSink {
    producer: Box<dyn Producer>,
}

impl BusSink {
    pub fn new(producer: Box<dyn Producer>) -> Self {
        Self { producer }
    }
}

impl RecordSink for BusSink {
    fn publish(&self, topic: Topic, records: Vec<Record>) -> Result<(), BusError> {
        let messages: Vec<OutMessage> = codec::encode_records(topic, &records)?;
        self.producer.send(messages)
    }
}
