//! Where collectors put typed records: gathered in memory for a one-shot
//! scan (`Collected`), or encoded and sent on a bus (`BusSink`).

use std::collections::HashMap;
use std::sync::Mutex;

use super::{BusError, OutMessage, Producer, Record, Topic};
use crate::codec;

/// The collectors' side of the bus.
pub trait RecordSink: Send + Sync {
    /// Appends records to a topic, in order; returns once they are durable.
    fn publish(&self, topic: Topic, records: Vec<Record>) -> Result<(), BusError>;
}

/// Records kept in memory, per topic: a one-shot scan reads each topic once.
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
