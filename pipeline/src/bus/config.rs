//! `[bus]` in the service's configuration: which bus, and how to reach it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::{Bus, BusError, InProcessBus, TopicLayout};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// In process: one driftline runs every role.
    Memory,
    /// Kafka (or a Kafka-protocol broker such as tansu).
    Kafka,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    pub kind: BusKind,
    /// `host:port[,host:port…]` (Kafka).
    pub brokers: String,
    /// Partitions of every driftline topic created at start-up.
    pub partitions: i32,
    pub replication: i32,
    /// Consumer groups are `{group}-drift` and `{group}-sink`.
    pub group: String,
    /// Extra librdkafka properties (security.protocol, sasl.*, …).
    pub properties: BTreeMap<String, String>,
    /// Most messages one poll hands to a stage.
    pub batch_max: usize,
    /// Consumer group of the alert stage [default: `{group}-alerts`]. A new
    /// name replays the whole findings topic into the alert state.
    pub alert_group: Option<String>,
    /// The embedded bus: most bytes of metrics (and, apart, of logs) held
    /// before the store writer has taken them. A send beyond it waits up to
    /// a second for room, then the receivers answer 503 and senders retry;
    /// nothing accepted is dropped.
    pub memory_telemetry_max_bytes: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            kind: BusKind::Memory,
            brokers: String::new(),
            partitions: 6,
            replication: 1,
            group: "driftline".into(),
            properties: BTreeMap::new(),
            batch_max: 5000,
            alert_group: None,
            memory_telemetry_max_bytes: 8 << 20,
        }
    }
}

impl BusConfig {
    /// What `open` would refuse, named by its key under `bus.`.
    pub fn validate(&self) -> Result<(), String> {
        if self.kind == BusKind::Kafka && self.brokers.trim().is_empty() {
            return Err("bus.kind = \"kafka\" needs bus.brokers".into());
        }
        if self.partitions < 1 {
            return Err("bus.partitions must be at least 1".into());
        }
        Ok(())
    }

    /// The bus this section describes (topics are not created yet:
    /// `Bus::ensure_topics`).
    pub fn open(&self) -> Result<Arc<dyn Bus>, BusError> {
        let layout = TopicLayout {
            partitions: self.partitions,
            replication: self.replication,
        };
        match self.kind {
            BusKind::Memory => Ok(Arc::new(
                InProcessBus::new(&layout).with_telemetry_limit(self.memory_telemetry_max_bytes),
            )),
            #[cfg(feature = "kafka")]
            BusKind::Kafka => Ok(Arc::new(super::kafka::KafkaBus::new(
                super::kafka::KafkaConfig {
                    brokers: self.brokers.clone(),
                    layout,
                    properties: self.properties.clone(),
                },
            ))),
            #[cfg(not(feature = "kafka"))]
            BusKind::Kafka => Err(BusError::Kafka(
                "this driftline was built without the Kafka bus; rebuild with `cargo build --release --features kafka` \
                 (needs cmake and libcurl headers: apt-get install cmake libcurl4-openssl-dev)"
                    .into(),
            )),
        }
    }
}
