//! The `Bus` door (DESIGN §3): topics of keyed messages, consumer groups
//! that own partitions, offsets committed only after the records they cover
//! are processed. Two implementations: `memory` (the embedded default, one
//! process) and `kafka` (rdkafka, behind the `kafka` feature).
//!
//! The door is synchronous on purpose: each pipeline stage runs its own
//! consume → process → publish → commit loop on a thread, which is how
//! librdkafka wants to be driven (rebalance callbacks run inside `poll`, on
//! the caller's thread, between two batches — so a revoke always finds the
//! previous batch processed and committed).

mod config;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod memory;
mod sink;
pub mod topic;

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::model::{DeclaredResource, ObservedResource};
use crate::source_status::SourceStatus;
use crate::telemetry::{LogBatch, MetricBatch};

pub use config::{BusConfig, BusKind};
pub use memory::InProcessBus;
pub use sink::{BusSink, Collected, RecordSink, SnapshotSet, Snapshots};
pub use topic::Topic;

/// A rejected input and why. File-level rejects name only `source`;
/// rejected bus records also carry where they were read.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    /// The file, URL or topic the input came from.
    pub source: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The rejected bytes, as text cut at 64 KiB, secret-looking values
    /// hashed (`secrets::shown_bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// A typed record, as collectors produce it.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Declared(Box<DeclaredResource>),
    Observed(Box<ObservedResource>),
    DeadLetter(DeadLetter),
    /// The resource with this key is gone from its source: a tombstone on a
    /// compacted topic. A status key (`source-status/…`) removes a source's
    /// status from every partition.
    Deleted {
        key: String,
    },
    /// Whether a source read its scope (see `source_status`), on the
    /// snapshot topic of its side, written to every partition.
    Status(Box<SourceStatus>),
    /// Metric series with their samples, for `driftline.metrics`.
    Metrics(MetricBatch),
    /// Log records, for `driftline.logs`.
    Logs(LogBatch),
}

/// A message to publish. `shard` picks the partition; on the snapshot
/// topics it is the `{ResourceType}/{resourceId}` part of the key, so the
/// declared and observed snapshots of one resource land on the same
/// partition number even when only one side knows the account.
#[derive(Debug, Clone, PartialEq)]
pub struct OutMessage {
    pub topic: Topic,
    pub key: String,
    pub shard: String,
    /// `None` is a tombstone.
    pub payload: Option<Vec<u8>>,
    /// Written to every partition of the topic (source statuses), not to
    /// the shard's one.
    pub broadcast: bool,
}

impl OutMessage {
    /// The partitions this message goes to, of `partitions`.
    pub fn partitions(&self, partitions: i32) -> std::ops::Range<i32> {
        if self.broadcast {
            0..partitions.max(1)
        } else {
            let p = partition_for(&self.shard, partitions);
            p..p + 1
        }
    }
}

/// A consumed message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub topic: Topic,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    /// Shared, not owned: the embedded bus hands out the bytes it holds
    /// without copying them per consumer.
    pub payload: Option<Arc<[u8]>>,
    /// Read again while rebuilding a table after an assignment: below the
    /// group's committed offset, already processed once.
    pub replay: bool,
}

/// What a consumer's poll returns, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// These partitions are now ours. Rewound topics are read again from
    /// the beginning; the rest from the committed offset.
    Assigned(Vec<(Topic, i32)>),
    /// These partitions are no longer ours: drop their state. Everything
    /// polled before this event was already processed and committed.
    Revoked(Vec<(Topic, i32)>),
    Message(Message),
    /// Every rewound partition has been replayed up to its committed
    /// offset (every restored one to its end): the tables are as they
    /// were at the last commit.
    CaughtUp,
}

/// Who consumes, and what.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub group: String,
    pub topics: Vec<Topic>,
    /// Topics re-read from the beginning on every assignment (tables),
    /// replayed up to the group's committed offset.
    pub rewind: Vec<Topic>,
    /// Topics re-read from the beginning on every assignment and replayed
    /// to their end as it was then: what was published, whether or not
    /// this group committed it (a stage's own output, read back to learn
    /// what it already said).
    pub restore: Vec<Topic>,
}

#[derive(Debug, Error)]
pub enum BusError {
    #[error("bus is closed")]
    Closed,
    #[error("topic {topic}: {reason}")]
    Topic { topic: String, reason: String },
    #[error("cannot reach the Kafka brokers at {brokers}: {reason}")]
    Unreachable { brokers: String, reason: String },
    #[error("{0}")]
    Kafka(String),
    #[error("cannot encode a record: {0}")]
    Encode(String),
    /// The bus holds as much of this topic as it may: retry later.
    #[error("{topic} is full: {reason}")]
    Full { topic: String, reason: String },
}

/// Topic layout: partition counts and retention, created at start-up.
#[derive(Debug, Clone)]
pub struct TopicLayout {
    /// Partitions of the snapshot and findings topics.
    pub partitions: i32,
    pub replication: i32,
}

impl Default for TopicLayout {
    fn default() -> Self {
        Self {
            partitions: 6,
            replication: 1,
        }
    }
}

/// Publishes messages; `send` returns once every message is acknowledged
/// (durable on the broker), so a caller may then commit what it consumed.
pub trait Producer: Send + Sync {
    fn send(&self, messages: Vec<OutMessage>) -> Result<(), BusError>;
}

/// A member of a consumer group.
pub trait Consumer: Send {
    /// Waits up to `timeout` for the first event, then returns what is
    /// ready, at most `max` messages.
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Event>, BusError>;
    /// Commits `(topic, partition, next offset to read)`.
    fn commit(&mut self, offsets: &[(Topic, i32, i64)]) -> Result<(), BusError>;
    /// Whether the last poll reached the end of every owned partition (as
    /// far as this member knows): a backlog is drained.
    fn at_end(&self) -> bool;
}

/// The door: where records travel between stages.
pub trait Bus: Send + Sync {
    /// A short name for logs and metrics (`memory`, `kafka`).
    fn kind(&self) -> &'static str;
    /// Creates missing topics; refuses a layout that breaks co-partitioning.
    fn ensure_topics(&self) -> Result<(), BusError>;
    fn partitions(&self, topic: Topic) -> i32;
    fn producer(&self) -> Result<Box<dyn Producer>, BusError>;
    fn consumer(&self, spec: &ConsumerSpec) -> Result<Box<dyn Consumer>, BusError>;
}

/// Kafka's default partitioner (murmur2 of the key bytes, positive, modulo
/// the partition count), so a Java client producing with the same shard as
/// key lands on the same partition.
pub fn partition_for(shard: &str, partitions: i32) -> i32 {
    let h = murmur2(shard.as_bytes()) & 0x7fff_ffff;
    (h % partitions.max(1) as u32) as i32
}

fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h = SEED ^ len as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58897971
        );
        assert_eq!(murmur2(b"abc") as i32, 479470107);
    }

    #[test]
    fn partitions_are_stable_and_in_range() {
        for n in [1, 3, 6, 12] {
            let p = partition_for("AWS::S3::Bucket/logs", n);
            assert!((0..n).contains(&p));
            assert_eq!(p, partition_for("AWS::S3::Bucket/logs", n));
        }
        assert_eq!(Topic::from_name("driftline.config"), Some(Topic::Config));
        assert!(Topic::Declared.is_table() && !Topic::DeadLetters.is_table());
    }
}
