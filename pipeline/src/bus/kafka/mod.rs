//! The Kafka bus (rdkafka). Topics are created at start-up with the layout's
//! partition count, table topics compacted; a layout whose snapshot and
//! findings topics differ in partition count is refused (co-partitioning). Consumers
//! use the range assignor, which gives one member the same partition
//! numbers of every topic — the other half of co-partitioning — and
//! rewind table topics to the beginning on every assignment, so a member
//! rebuilds the tables it now owns.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};

use super::{Bus, BusError, Consumer, ConsumerSpec, OutMessage, Producer, Topic, TopicLayout};
use crate::metrics::metrics;

mod consumer;

use consumer::{GroupContext, KafkaConsumer};

/// How to reach the cluster.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    pub layout: TopicLayout,
    /// Extra librdkafka properties (TLS, SASL, tuning), applied last.
    pub properties: BTreeMap<String, String>,
}

/// Time allowed for one produced batch to be acknowledged. Long enough to
/// ride out a broker restart: librdkafka keeps retrying until then.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a send waits for its acknowledgements before it says so.
const SLOW_ACK: Duration = Duration::from_secs(10);
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

pub struct KafkaBus {
    cfg: KafkaConfig,
    partitions: Mutex<HashMap<Topic, i32>>,
}

impl KafkaBus {
    pub fn new(cfg: KafkaConfig) -> Self {
        Self {
            cfg,
            partitions: Mutex::new(HashMap::new()),
        }
    }

    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.cfg.brokers)
            .set("client.id", "driftline");
        c
    }

    fn with_properties(&self, mut c: ClientConfig) -> ClientConfig {
        for (k, v) in &self.cfg.properties {
            c.set(k, v);
        }
        c
    }

    fn kafka_err(&self, e: KafkaError) -> BusError {
        match e {
            KafkaError::MetadataFetch(_) | KafkaError::AdminOp(_) => BusError::Unreachable {
                brokers: self.cfg.brokers.clone(),
                reason: e.to_string(),
            },
            other => BusError::Kafka(other.to_string()),
        }
    }

    fn topic_partitions(
        &self,
        admin: &AdminClient<DefaultClientContext>,
    ) -> Result<HashMap<String, i32>, BusError> {
        let md = admin
            .inner()
            .fetch_metadata(None, ADMIN_TIMEOUT)
            .map_err(|e| BusError::Unreachable {
                brokers: self.cfg.brokers.clone(),
                reason: e.to_string(),
            })?;
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_string(), t.partitions().len() as i32))
            .collect())
    }
}

impl Bus for KafkaBus {
    fn kind(&self) -> &'static str {
        "kafka"
    }

    fn ensure_topics(&self) -> Result<(), BusError> {
        let admin: AdminClient<DefaultClientContext> = self
            .with_properties(self.client_config())
            .create()
            .map_err(|e| self.kafka_err(e))?;
        let existing = self.topic_partitions(&admin)?;
        let layout = &self.cfg.layout;
        let missing: Vec<NewTopic<'_>> = Topic::ALL
            .iter()
            .filter(|t| !existing.contains_key(t.name()))
            .map(|t| {
                let nt = NewTopic::new(
                    t.name(),
                    layout.partitions,
                    TopicReplication::Fixed(layout.replication),
                );
                if t.is_table() {
                    nt.set("cleanup.policy", "compact")
                } else {
                    // The broker's default (delete, with its retention).
                    nt
                }
            })
            .collect();
        if !missing.is_empty() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| BusError::Kafka(e.to_string()))?;
            let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
            let results = rt
                .block_on(admin.create_topics(missing.iter(), &opts))
                .map_err(|e| self.kafka_err(e))?;
            for r in results {
                match r {
                    Ok(name) => {
                        tracing::info!(topic = %name, partitions = layout.partitions, "created topic")
                    }
                    // Another instance created it first.
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((name, code)) => {
                        return Err(BusError::Topic {
                            topic: name,
                            reason: format!("cannot create: {code}"),
                        });
                    }
                }
            }
        }
        // Read back what the cluster has; metadata can lag a creation briefly.
        let deadline = Instant::now() + ADMIN_TIMEOUT;
        let found = loop {
            let found = self.topic_partitions(&admin)?;
            if Topic::ALL.iter().all(|t| found.contains_key(t.name())) {
                break found;
            }
            if Instant::now() >= deadline {
                let absent: Vec<_> = Topic::ALL
                    .iter()
                    .filter(|t| !found.contains_key(t.name()))
                    .map(|t| t.name())
                    .collect();
                return Err(BusError::Topic {
                    topic: absent.join(", "),
                    reason: "not visible in the cluster metadata after creation".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        // One instance owns both sides of a resource, and the drift
        // findings about it (read back when it takes the resource over).
        let config = found[Topic::Config.name()];
        for other in [Topic::Declared, Topic::Findings] {
            let n = found[other.name()];
            if n != config {
                return Err(BusError::Topic {
                    topic: format!("{} and {other}", Topic::Config),
                    reason: format!(
                        "have {config} and {n} partitions; the snapshot and findings topics must \
                         be co-partitioned (same partition count) so one instance owns both sides \
                         of a resource and its findings — add partitions to the smaller one or \
                         recreate it"
                    ),
                });
            }
        }
        let mut parts = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        for t in Topic::ALL {
            parts.insert(t, found[t.name()]);
        }
        Ok(())
    }

    fn partitions(&self, topic: Topic) -> i32 {
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&topic)
            .copied()
            .unwrap_or(self.cfg.layout.partitions)
    }

    fn producer(&self) -> Result<Box<dyn Producer>, BusError> {
        let mut c = self.client_config();
        c.set(
            "message.timeout.ms",
            DELIVERY_TIMEOUT.as_millis().to_string(),
        )
        .set("linger.ms", "5")
        .set("acks", "all")
        // A broker that dies after writing a batch but before answering
        // would otherwise get the batch again from librdkafka's retry: the
        // producer id and sequence numbers let it drop the repeat.
        .set("enable.idempotence", "true");
        let producer: BaseProducer<AckContext> = self
            .with_properties(c)
            .create_with_context(AckContext)
            .map_err(|e| self.kafka_err(e))?;
        let partitions = Topic::ALL.map(|t| (t, self.partitions(t))).into();
        Ok(Box::new(KafkaProducer {
            producer,
            partitions,
        }))
    }

    fn consumer(&self, spec: &ConsumerSpec) -> Result<Box<dyn Consumer>, BusError> {
        let mut c = self.client_config();
        c.set("group.id", &spec.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            // Also the rebalance timeout: how long a coordinator waits for a
            // member (a killed one never comes back) before moving on. A
            // stage polls every 100 ms between batches, so 20 s is ample.
            .set("max.poll.interval.ms", "20000")
            .set("partition.assignment.strategy", "range")
            .set("statistics.interval.ms", "5000")
            // Change → finding latency: do not let a broker sit on an empty
            // fetch for librdkafka's default 500 ms.
            .set("fetch.wait.max.ms", "100")
            // Messages fetched ahead, per consumer: librdkafka's default of
            // 64 MiB for each of a process's groups was a tenth of `run`'s
            // memory at a million resources; 16 MiB still holds several
            // polls of the largest batch a stage takes.
            .set("queued.max.messages.kbytes", "16384");
        let ctx = GroupContext::new(spec);
        let consumer: BaseConsumer<GroupContext> = self
            .with_properties(c)
            .create_with_context(ctx)
            .map_err(|e| self.kafka_err(e))?;
        let names: Vec<&str> = spec.topics.iter().map(|t| t.name()).collect();
        consumer.subscribe(&names).map_err(|e| self.kafka_err(e))?;
        Ok(Box::new(KafkaConsumer::new(consumer)))
    }
}

/// Counts the acknowledgements of one `send`.
struct Ack {
    remaining: AtomicUsize,
    error: Mutex<Option<String>>,
}

struct AckContext;

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Arc<Ack>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Arc<Ack>) {
        match result {
            Ok(m) => {
                metrics().records_out.with_label_values(&[m.topic()]).inc();
            }
            Err((e, _)) => {
                let mut err = ack.error.lock().unwrap_or_else(|p| p.into_inner());
                err.get_or_insert_with(|| e.to_string());
            }
        }
        ack.remaining.fetch_sub(1, Ordering::AcqRel);
    }
}

struct KafkaProducer {
    producer: BaseProducer<AckContext>,
    partitions: HashMap<Topic, i32>,
}

impl Producer for KafkaProducer {
    fn send(&self, messages: Vec<OutMessage>) -> Result<(), BusError> {
        if messages.is_empty() {
            return Ok(());
        }
        let routed: Vec<(&OutMessage, i32)> = messages
            .iter()
            .flat_map(|m| {
                let n = self.partitions.get(&m.topic).copied().unwrap_or(1);
                m.partitions(n).map(move |p| (m, p))
            })
            .collect();
        let ack = Arc::new(Ack {
            remaining: AtomicUsize::new(routed.len()),
            error: Mutex::new(None),
        });
        for (m, partition) in routed {
            let mut record = BaseRecord::with_opaque_to(m.topic.name(), ack.clone())
                .key(m.key.as_str())
                .partition(partition);
            if let Some(p) = &m.payload {
                record = record.payload(p.as_slice());
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        // The local queue is full: serve deliveries, then retry.
                        record = r;
                        self.producer.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => return Err(BusError::Kafka(format!("produce: {e}"))),
                }
            }
        }
        let started = Instant::now();
        let deadline = started + DELIVERY_TIMEOUT + Duration::from_secs(5);
        let mut warn_at = started + SLOW_ACK;
        while ack.remaining.load(Ordering::Acquire) > 0 {
            self.producer.poll(Duration::from_millis(20));
            let now = Instant::now();
            if now > warn_at {
                // librdkafka retries quietly: say why the sender is stalled.
                tracing::warn!(
                    waiting = ack.remaining.load(Ordering::Acquire),
                    waited_s = started.elapsed().as_secs(),
                    "produce: still waiting for the broker's acknowledgement"
                );
                warn_at = now + SLOW_ACK;
            }
            if now > deadline {
                return Err(BusError::Kafka(
                    "produce: no acknowledgement before the delivery timeout".into(),
                ));
            }
        }
        match ack.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(BusError::Kafka(format!("produce: {e}"))),
            None => Ok(()),
        }
    }
}
