//! The embedded bus: partitioned in-memory logs with the same semantics as
//! the Kafka bus (keys, partitions by shard, consumer groups, committed
//! offsets, rewound tables, compaction), for one process. Each group has
//! one member, which owns every partition.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{
    Bus, BusError, Consumer, ConsumerSpec, Event, Message, OutMessage, Producer, Topic, TopicLayout,
};
use crate::metrics::metrics;

/// A stored message: key and payload (`None`: tombstone).
type Entry = (String, Option<Arc<[u8]>>);

#[derive(Default)]
struct Partition {
    /// Records in offset order, each with its offset. Offsets have gaps
    /// where compaction removed a record or every group consumed it.
    /// `None`: removed by compaction (a newer record has the same key), its
    /// slot not yet reclaimed.
    entries: Vec<(i64, Option<Entry>)>,
    /// The next offset.
    next: i64,
    /// Compacted topics: key → offset of its latest record.
    latest: HashMap<String, i64>,
    /// Payload bytes held.
    bytes: usize,
    /// `None` slots in `entries`.
    emptied: usize,
}

/// Emptied slots a partition may hold before they are reclaimed (and then
/// only once they outnumber the records): a table rewritten 5000 times a
/// second otherwise grows by a slot per record, forever.
const EMPTIED_SLACK: usize = 4096;

/// How long a send to a full telemetry topic waits for the store writer
/// to free room before it is refused (`BusError::Full`). Room comes back a
/// whole append at a time, tens of milliseconds apart under load: a sender
/// refused at once would decode its request again and again meanwhile
/// (one remote-write request in three, measured), while a second is still
/// far inside a sender's own timeout (Prometheus's `remote_timeout`: 30 s).
const FULL_WAIT: Duration = Duration::from_secs(1);

impl Partition {
    fn end(&self) -> i64 {
        self.next
    }

    /// Where the first record at or after `offset` is.
    fn index_of(&self, offset: i64) -> usize {
        self.entries.partition_point(|(o, _)| *o < offset)
    }

    fn append(&mut self, key: &str, payload: Option<Arc<[u8]>>, table: bool) {
        let offset = self.next;
        self.next += 1;
        if table && let Some(old) = self.latest.insert(key.to_string(), offset) {
            let i = self.index_of(old);
            if let Some((o, slot)) = self.entries.get_mut(i)
                && *o == old
                && let Some((_, superseded)) = slot.take()
            {
                self.bytes -= superseded.map_or(0, |p| p.len());
                self.emptied += 1;
            }
        }
        self.bytes += payload.as_ref().map_or(0, |p| p.len());
        self.entries
            .push((offset, Some((key.to_string(), payload))));
        if self.emptied > EMPTIED_SLACK && self.emptied * 2 > self.entries.len() {
            self.entries.retain(|(_, e)| e.is_some());
            self.entries.shrink_to(self.entries.len() * 2);
            self.emptied = 0;
        }
    }
}

struct State {
    logs: HashMap<Topic, Vec<Partition>>,
    committed: HashMap<(String, Topic, i32), i64>,
}

struct Shared {
    state: Mutex<State>,
    appended: Condvar,
    /// Signalled when a commit frees telemetry bytes.
    freed: Condvar,
    partitions: i32,
    /// Most payload bytes a telemetry topic holds (`Topic::is_telemetry`).
    telemetry_limit: usize,
}

/// The embedded default bus.
#[derive(Clone)]
pub struct InProcessBus {
    shared: Arc<Shared>,
}

impl InProcessBus {
    pub fn new(layout: &TopicLayout) -> Self {
        let logs = Topic::ALL
            .into_iter()
            .map(|t| {
                let n = layout.partitions.max(1) as usize;
                (t, (0..n).map(|_| Partition::default()).collect())
            })
            .collect();
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    logs,
                    committed: HashMap::new(),
                }),
                appended: Condvar::new(),
                freed: Condvar::new(),
                partitions: layout.partitions.max(1),
                telemetry_limit: usize::MAX,
            }),
        }
    }

    /// Refuse telemetry beyond `bytes` per topic not yet consumed by every
    /// group (`BusError::Full`). Call before sharing the bus.
    pub fn with_telemetry_limit(mut self, bytes: usize) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.telemetry_limit = bytes;
        }
        self
    }

    /// Messages currently held (for memory checks and tests).
    pub fn retained(&self, topic: Topic) -> usize {
        let st = self.shared.lock();
        st.logs[&topic]
            .iter()
            .map(|p| p.entries.iter().filter(|(_, e)| e.is_some()).count())
            .sum()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Bus for InProcessBus {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn ensure_topics(&self) -> Result<(), BusError> {
        Ok(())
    }

    fn partitions(&self, _topic: Topic) -> i32 {
        self.shared.partitions
    }

    fn producer(&self) -> Result<Box<dyn Producer>, BusError> {
        Ok(Box::new(MemoryProducer {
            shared: self.shared.clone(),
        }))
    }

    fn consumer(&self, spec: &ConsumerSpec) -> Result<Box<dyn Consumer>, BusError> {
        Ok(Box::new(MemoryConsumer {
            shared: self.shared.clone(),
            spec: spec.clone(),
            positions: None,
            replay_until: HashMap::new(),
            behind: false,
        }))
    }
}

struct MemoryProducer {
    shared: Arc<Shared>,
}

impl Producer for MemoryProducer {
    fn send(&self, messages: Vec<OutMessage>) -> Result<(), BusError> {
        if messages.is_empty() {
            return Ok(());
        }
        // All or nothing: a refused batch leaves no part of itself behind.
        let mut adding: HashMap<Topic, usize> = HashMap::new();
        for m in messages.iter().filter(|m| m.topic.is_telemetry()) {
            *adding.entry(m.topic).or_default() += m.payload.as_ref().map_or(0, Vec::len);
        }
        let mut st = self.shared.lock();
        let deadline = Instant::now() + FULL_WAIT;
        while let Some((topic, held)) = adding.iter().find_map(|(topic, add)| {
            let held: usize = st.logs[topic].iter().map(|p| p.bytes).sum();
            (held > 0 && held + add > self.shared.telemetry_limit).then_some((*topic, held))
        }) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BusError::Full {
                    topic: topic.name().into(),
                    reason: format!(
                        "{held} bytes not yet stored, limit {}",
                        self.shared.telemetry_limit
                    ),
                });
            }
            st = self
                .shared
                .freed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let out = &metrics().records_out;
        for m in messages {
            let partitions = m.partitions(self.shared.partitions);
            let payload = m.payload.map(Arc::<[u8]>::from);
            for p in partitions {
                out.with_label_values(&[m.topic.name()]).inc();
                let part = &mut st.logs.get_mut(&m.topic).ok_or(BusError::Closed)?[p as usize];
                part.append(&m.key, payload.clone(), m.topic.is_table());
            }
        }
        drop(st);
        self.shared.appended.notify_all();
        Ok(())
    }
}

struct MemoryConsumer {
    shared: Arc<Shared>,
    spec: ConsumerSpec,
    /// Next offset per owned partition; `None` until the first poll assigns.
    positions: Option<HashMap<(Topic, i32), i64>>,
    /// Rewound partitions still below their committed offset, restored
    /// ones below their end at assignment.
    replay_until: HashMap<(Topic, i32), i64>,
    /// The last poll stopped at `max` with more to read.
    behind: bool,
}

impl Consumer for MemoryConsumer {
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Event>, BusError> {
        let mut events = Vec::new();
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        if self.positions.is_none() {
            let mut positions = HashMap::new();
            let mut assigned = Vec::new();
            for &t in &self.spec.topics {
                for p in 0..self.shared.partitions {
                    let committed = st
                        .committed
                        .get(&(self.spec.group.clone(), t, p))
                        .copied()
                        .unwrap_or(0);
                    let start = if self.spec.restore.contains(&t) {
                        let end = st.logs[&t][p as usize].end();
                        if end > 0 {
                            self.replay_until.insert((t, p), end);
                        }
                        0
                    } else if self.spec.rewind.contains(&t) {
                        if committed > 0 {
                            self.replay_until.insert((t, p), committed);
                        }
                        0
                    } else {
                        committed
                    };
                    positions.insert((t, p), start);
                    assigned.push((t, p));
                }
            }
            self.positions = Some(positions);
            events.push(Event::Assigned(assigned));
            if self.replay_until.is_empty() {
                events.push(Event::CaughtUp);
            }
        }
        loop {
            let positions = self.positions.as_mut().ok_or(BusError::Closed)?;
            let mut taken = 0;
            let mut keys: Vec<(Topic, i32)> = positions.keys().copied().collect();
            keys.sort();
            for (t, p) in keys {
                let part = &st.logs[&t][p as usize];
                let pos = positions.get_mut(&(t, p)).ok_or(BusError::Closed)?;
                let mut i = part.index_of(*pos);
                while taken < max {
                    let Some((offset, entry)) = part.entries.get(i) else {
                        *pos = part.end();
                        break;
                    };
                    let offset = *offset;
                    i += 1;
                    *pos = offset + 1;
                    let Some((key, payload)) = entry else {
                        continue;
                    };
                    let replay = self
                        .replay_until
                        .get(&(t, p))
                        .is_some_and(|until| offset < *until);
                    metrics().records_in.with_label_values(&[t.name()]).inc();
                    events.push(Event::Message(Message {
                        topic: t,
                        partition: p,
                        offset,
                        key: Some(key.clone()),
                        payload: payload.clone(),
                        replay,
                    }));
                    taken += 1;
                }
                metrics()
                    .consumer_lag
                    .with_label_values(&[&self.spec.group, t.name(), &p.to_string()])
                    .set(part.end() - *pos);
                if let Some(until) = self.replay_until.get(&(t, p))
                    && *pos >= *until
                {
                    self.replay_until.remove(&(t, p));
                    if self.replay_until.is_empty() {
                        events.push(Event::CaughtUp);
                    }
                }
            }
            if !events.is_empty() {
                self.behind = keys_behind(&st, positions);
                return Ok(events);
            }
            let now = Instant::now();
            if now >= deadline {
                self.behind = false;
                return Ok(events);
            }
            st = self
                .shared
                .appended
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn at_end(&self) -> bool {
        !self.behind
    }

    fn commit(&mut self, offsets: &[(Topic, i32, i64)]) -> Result<(), BusError> {
        let mut st = self.shared.lock();
        for &(t, p, o) in offsets {
            st.committed.insert((self.spec.group.clone(), t, p), o);
        }
        // Drop what every group has consumed from topics that are not
        // tables, so a long run keeps memory flat.
        for &(t, p, _) in offsets {
            if t.is_table() {
                continue;
            }
            let min = st
                .committed
                .iter()
                .filter(|((_, ct, cp), _)| *ct == t && *cp == p)
                .map(|(_, o)| *o)
                .min()
                .unwrap_or(0);
            let part = &mut st.logs.get_mut(&t).ok_or(BusError::Closed)?[p as usize];
            let drop_n = part.index_of(min);
            if drop_n > 0 {
                let freed: usize = part.entries[..drop_n]
                    .iter()
                    .filter_map(|(_, e)| e.as_ref())
                    .map(|(_, p)| p.as_ref().map_or(0, |p| p.len()))
                    .sum();
                part.bytes -= freed;
                part.entries.drain(..drop_n);
                if freed > 0 {
                    self.shared.freed.notify_all();
                }
            }
        }
        Ok(())
    }
}

fn keys_behind(st: &State, positions: &HashMap<(Topic, i32), i64>) -> bool {
    positions
        .iter()
        .any(|((t, p), pos)| st.logs[t][*p as usize].end() > *pos)
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
