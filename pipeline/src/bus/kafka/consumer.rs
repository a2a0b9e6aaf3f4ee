//! The Kafka consumer: a group member whose rebalance callback rewinds the
//! table topics it is assigned and tracks what is still replay, and the
//! poll, end and commit of the `Consumer` door.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext};
use rdkafka::message::Message as _;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;

use super::ADMIN_TIMEOUT;
use crate::bus::{BusError, Consumer, ConsumerSpec, Event, Message, Topic};
use crate::metrics::metrics;

pub(super) struct GroupContext {
    group: String,
    rewind: Vec<Topic>,
    restore: Vec<Topic>,
    /// Rebalance events, handed out by the next `poll`.
    events: Mutex<Vec<Event>>,
    /// Rewound partitions → committed offset still to be replayed up to;
    /// restored ones → their end at assignment.
    replay: Mutex<HashMap<(Topic, i32), i64>>,
    /// Partitions assigned at a committed offset → that offset: where a
    /// partition that has given nothing since stands (librdkafka's position
    /// stays unset until a message is consumed).
    starts: Mutex<HashMap<(Topic, i32), i64>>,
}

fn parts_of(tpl: &TopicPartitionList) -> Vec<(Topic, i32)> {
    tpl.elements()
        .iter()
        .filter_map(|e| Topic::from_name(e.topic()).map(|t| (t, e.partition())))
        .collect()
}

impl GroupContext {
    pub(super) fn new(spec: &ConsumerSpec) -> Self {
        Self {
            group: spec.group.clone(),
            rewind: spec.rewind.clone(),
            restore: spec.restore.clone(),
            events: Mutex::new(Vec::new()),
            replay: Mutex::new(HashMap::new()),
            starts: Mutex::new(HashMap::new()),
        }
    }
}

impl ClientContext for GroupContext {
    fn stats(&self, stats: Statistics) {
        let lag = &metrics().consumer_lag;
        for (name, topic) in &stats.topics {
            for (p, part) in &topic.partitions {
                // -1 is the internal "unassigned" partition; lag -1 is unknown.
                if *p < 0 || part.consumer_lag < 0 {
                    continue;
                }
                lag.with_label_values(&[&self.group, name, &p.to_string()])
                    .set(part.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        base: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let mut replay = self.replay.lock().unwrap_or_else(|p| p.into_inner());
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let parts = parts_of(tpl);
                let committed: HashMap<(String, i32), i64> = match base
                    .committed_offsets(tpl.clone(), ADMIN_TIMEOUT)
                {
                    Ok(c) => c
                        .elements()
                        .iter()
                        .filter_map(|e| match e.offset() {
                            Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
                            _ => None,
                        })
                        .collect(),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read committed offsets; replaying nothing, findings may repeat");
                        HashMap::new()
                    }
                };
                for (t, p) in &parts {
                    let c = committed.get(&(t.name().to_string(), *p)).copied();
                    let start = if self.restore.contains(t) {
                        match base.fetch_watermarks(t.name(), *p, ADMIN_TIMEOUT) {
                            Ok((low, high)) if high > low => {
                                replay.insert((*t, *p), high);
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, topic = %t, partition = p, "cannot read the end of a restored partition; restoring nothing, findings may repeat");
                            }
                        }
                        Offset::Beginning
                    } else if self.rewind.contains(t) {
                        if let Some(c) = c.filter(|c| *c > 0) {
                            replay.insert((*t, *p), c);
                        }
                        Offset::Beginning
                    } else {
                        if let Some(c) = c {
                            self.starts
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert((*t, *p), c);
                        }
                        c.map(Offset::Offset).unwrap_or(Offset::Beginning)
                    };
                    if let Err(e) = tpl.set_partition_offset(t.name(), *p, start) {
                        tracing::warn!(error = %e, topic = %t, partition = p, "cannot set start offset");
                    }
                }
                if let Err(e) = base.assign(tpl) {
                    tracing::error!(error = %e, "cannot take the assigned partitions");
                }
                tracing::info!(group = %self.group, partitions = ?parts, "partitions assigned");
                events.push(Event::Assigned(parts));
                if replay.is_empty() {
                    events.push(Event::CaughtUp);
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let parts = parts_of(tpl);
                let mut starts = self.starts.lock().unwrap_or_else(|p| p.into_inner());
                for tp in &parts {
                    replay.remove(tp);
                    starts.remove(tp);
                }
                tracing::info!(group = %self.group, partitions = ?parts, "partitions revoked");
                events.push(Event::Revoked(parts));
                if let Err(e) = base.unassign() {
                    tracing::warn!(error = %e, "cannot release partitions");
                }
            }
            other => {
                tracing::error!(error = ?other, "rebalance failed; releasing partitions");
                events.push(Event::Revoked(parts_of(tpl)));
                let _ = base.unassign();
            }
        }
    }
}

pub(super) struct KafkaConsumer {
    consumer: BaseConsumer<GroupContext>,
}

impl KafkaConsumer {
    pub(super) fn new(consumer: BaseConsumer<GroupContext>) -> Self {
        Self { consumer }
    }

    fn take_events(&self, out: &mut Vec<Event>) {
        let ctx = self.consumer.context();
        out.append(&mut ctx.events.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Ends the replay of partitions whose position passed their committed
    /// offset (compaction may have removed the record just below it).
    fn check_replay(&self, out: &mut Vec<Event>) {
        let ctx = self.consumer.context();
        let mut replay = ctx.replay.lock().unwrap_or_else(|p| p.into_inner());
        if replay.is_empty() {
            return;
        }
        if let Ok(pos) = self.consumer.position() {
            for e in pos.elements() {
                if let (Some(t), Offset::Offset(o)) = (Topic::from_name(e.topic()), e.offset())
                    && replay.get(&(t, e.partition())).is_some_and(|c| o >= *c)
                {
                    replay.remove(&(t, e.partition()));
                }
            }
        }
        if replay.is_empty() {
            out.push(Event::CaughtUp);
        }
    }
}

impl Consumer for KafkaConsumer {
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Event>, BusError> {
        let mut out = Vec::new();
        let mut wait = timeout;
        let mut taken = 0;
        while taken < max {
            let polled = self.consumer.poll(wait);
            // Rebalance callbacks ran inside that poll: their events come
            // before the message it returned.
            self.take_events(&mut out);
            wait = Duration::ZERO;
            let Some(result) = polled else { break };
            let m = match result {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "consumer error (librdkafka retries)");
                    continue;
                }
            };
            let Some(topic) = Topic::from_name(m.topic()) else {
                continue;
            };
            taken += 1;
            metrics().records_in.with_label_values(&[m.topic()]).inc();
            // Below the committed offset: replayed. At or past its last
            // replayed record: this partition's table is rebuilt.
            let key = (topic, m.partition());
            let (replay, caught_up) = {
                let ctx = self.consumer.context();
                let mut r = ctx.replay.lock().unwrap_or_else(|p| p.into_inner());
                let replay = r.get(&key).is_some_and(|c| m.offset() < *c);
                let done = r.get(&key).is_some_and(|c| m.offset() + 1 >= *c);
                if done {
                    r.remove(&key);
                }
                (replay, done && r.is_empty())
            };
            out.push(Event::Message(to_message(topic, &m, replay)));
            if caught_up {
                out.push(Event::CaughtUp);
            }
        }
        self.check_replay(&mut out);
        Ok(out)
    }

    fn at_end(&self) -> bool {
        let Ok(pos) = self.consumer.position() else {
            return false;
        };
        let rk = self.consumer.client().native_ptr();
        let starts = self
            .consumer
            .context()
            .starts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        pos.elements().iter().all(|e| {
            let Ok(topic) = std::ffi::CString::new(e.topic()) else {
                return false;
            };
            let (mut low, mut high) = (-1i64, -1i64);
            // SAFETY: `rk` is this consumer's live handle; the call only
            // reads librdkafka's cached watermarks (from the last fetch
            // response, no broker round trip) into the two out-params.
            let err = unsafe {
                rdkafka::bindings::rd_kafka_get_watermark_offsets(
                    rk,
                    topic.as_ptr(),
                    e.partition(),
                    &mut low,
                    &mut high,
                )
            };
            if err != rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || high < 0
            {
                // Not fetched yet: unknown, so not at the end.
                return false;
            }
            match e.offset() {
                Offset::Offset(at) => at >= high,
                // Nothing consumed yet: at the end if it started there (a
                // group that had committed everything), or if there is
                // nothing. Before, a drain on stop waited its full minute
                // on a partition whose every message was committed.
                _ => {
                    match Topic::from_name(e.topic()).and_then(|t| starts.get(&(t, e.partition())))
                    {
                        Some(start) => *start >= high,
                        None => high <= low,
                    }
                }
            }
        })
    }

    fn commit(&mut self, offsets: &[(Topic, i32, i64)]) -> Result<(), BusError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in offsets {
            tpl.add_partition_offset(t.name(), *p, Offset::Offset(*o))
                .map_err(|e| BusError::Kafka(e.to_string()))?;
        }
        self.consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| BusError::Kafka(format!("commit: {e}")))
    }
}

fn to_message(topic: Topic, m: &rdkafka::message::BorrowedMessage<'_>, replay: bool) -> Message {
    Message {
        topic,
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        payload: m.payload().map(Arc::from),
        replay,
    }
}
