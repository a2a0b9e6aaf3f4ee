//! The one loop every consuming stage runs: poll → process → publish →
//! commit, with the offsets, the dead letters, the replay of rewound
//! topics, back-pressure and shutdown handled here, once.
//!
//! A stage (`Stage`) only says what it does with messages. The runner:
//! - hands replayed messages (below the committed offset of a rewound,
//!   compacted topic) to `Stage::replay`, so the stage rebuilds its state;
//! - holds live messages that arrive before the replay is done, and hands
//!   them over after `Stage::caught_up`;
//! - tracks the offset of every live message it hands over, and commits
//!   them only after `Stage::flush` says they are done and what it produced
//!   (plus the dead letters of rejected messages) is acknowledged by the
//!   bus — and always before it polls again, so a rebalance (which happens
//!   inside a poll) finds everything handed out earlier committed;
//! - forgets the uncommitted offsets of revoked partitions: the new owner
//!   reads those messages again (at-least-once);
//! - takes at most `batch_max` messages a poll: a slow stage slows its own
//!   consumption, and memory stays bounded;
//! - stops between polls when `stop` is set, after committing what it
//!   finished (a stage that `drains_on_stop` first reads to the end).

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::bus::{Bus, BusError, Consumer, ConsumerSpec, Event, Message, OutMessage, Topic};
use crate::codec::dead_letter_for;
use crate::metrics::metrics;

/// Why a stage stopped.
#[derive(Debug, Error)]
pub enum StageError {
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The stage's own failure (the store, the alert state, …).
    #[error("{stage}: {source}")]
    Stage {
        stage: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StageError {
    pub fn of(stage: &'static str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StageError::Stage {
            stage,
            source: e.into(),
        }
    }
}

/// What a consuming stage does with its messages.
pub trait Stage {
    /// For logs and the `stage` label of the batch-latency histogram.
    fn name(&self) -> &'static str;

    /// The group and topics it consumes, and which it rewinds.
    fn consumes(&self) -> ConsumerSpec;

    /// Replayed messages, in order: rebuild state from them (they were
    /// processed before, by this instance or another).
    fn replay(&mut self, messages: Vec<Message>);

    /// The replay of every owned partition is done.
    fn caught_up(&mut self) -> Result<(), StageError> {
        Ok(())
    }

    /// These partitions went to another instance: drop their state.
    fn revoked(&mut self, partitions: &HashSet<i32>) {
        let _ = partitions;
    }

    /// Live messages, in order. Returns the ones it cannot use, with why:
    /// they become dead letters.
    fn take(&mut self, messages: Vec<Message>) -> Vec<(Message, String)>;

    /// After each poll once caught up (`drained`: the poll reached the end
    /// of every owned partition). `Some(messages)` when what was taken so
    /// far is done: they are published, then its offsets committed. `None`
    /// keeps it pending (to be flushed with a later poll).
    fn flush(&mut self, drained: bool) -> Result<Option<Vec<OutMessage>>, StageError>;

    /// Ready for traffic before its first replay is done (a stage that
    /// rebuilds nothing).
    fn ready_at_start(&self) -> bool {
        false
    }

    /// When `stop` is set, read on to the end of every owned partition and
    /// flush before leaving: the stage stores what the embedded bus would
    /// otherwise lose with the process (telemetry accepted over HTTP).
    fn drains_on_stop(&self) -> bool {
        false
    }
}

/// The next offset to commit per partition, for what a stage took.
#[derive(Default)]
struct Offsets(HashMap<(Topic, i32), i64>);

impl Offsets {
    fn track(&mut self, m: &Message) {
        let next = self.0.entry((m.topic, m.partition)).or_insert(0);
        *next = (*next).max(m.offset + 1);
    }

    fn forget(&mut self, partitions: &HashSet<i32>) {
        self.0.retain(|(_, p), _| !partitions.contains(p));
    }

    /// Commits and clears. A failed commit is logged: the batch is read
    /// again (at-least-once), never lost.
    fn commit(&mut self, consumer: &mut dyn Consumer) {
        let offsets: Vec<(Topic, i32, i64)> = self.0.drain().map(|((t, p), o)| (t, p, o)).collect();
        if let Err(e) = consumer.commit(&offsets) {
            tracing::warn!(error = %e, "commit failed; the batch will be read again");
        }
    }
}

/// A dead letter for a message the stage cannot use, counted and logged.
fn reject(m: &Message, reason: &str) -> Result<OutMessage, BusError> {
    metrics()
        .dead_letters
        .with_label_values(&[m.topic.name()])
        .inc();
    tracing::warn!(topic = %m.topic, partition = m.partition, offset = m.offset, %reason, "dead letter");
    dead_letter_for(
        m.topic,
        m.partition,
        m.offset,
        m.key.as_deref(),
        m.payload.as_deref(),
        reason,
    )
}

/// One poll. A failed poll is logged and retried after a pause: the stage
/// keeps its place, the consumer reconnects by itself.
fn poll(consumer: &mut dyn Consumer, max: usize) -> Vec<Event> {
    match consumer.poll(max, Duration::from_millis(100)) {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(error = %e, "poll failed; retrying");
            std::thread::sleep(Duration::from_millis(500));
            Vec::new()
        }
    }
}

/// How long a stage that drains on stop reads on after `stop`.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// Runs `stage` on `bus` until `stop` is set. `ready` turns true once the
/// stage's state is rebuilt (and false again while a new assignment
/// replays).
pub fn run(
    stage: &mut dyn Stage,
    bus: &dyn Bus,
    batch_max: usize,
    stop: &AtomicBool,
    ready: &AtomicBool,
) -> Result<(), StageError> {
    let mut consumer = bus.consumer(&stage.consumes())?;
    let producer = bus.producer()?;
    let latency = metrics().batch_seconds.with_label_values(&[stage.name()]);
    if stage.ready_at_start() {
        ready.store(true, Ordering::Relaxed);
    }
    let mut caught_up = false;
    // Live messages that arrived before the replay finished.
    let mut held: Vec<Message> = Vec::new();
    // Taken but not yet flushed: offsets to commit after, dead letters to
    // publish with it, and since when.
    let mut offsets = Offsets::default();
    let mut dead: Vec<OutMessage> = Vec::new();
    let mut since: Option<Instant> = None;
    // The last pass reached the end of every partition with nothing left
    // uncommitted.
    let mut settled = false;
    let mut stopping: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            if stopping.is_none() {
                // What was published just before the stop arrived after the
                // last poll: a draining stage polls once more at least.
                settled = false;
            }
            let since_stop = *stopping.get_or_insert_with(Instant::now);
            if !stage.drains_on_stop() || settled {
                break;
            }
            if since_stop.elapsed() > DRAIN_LIMIT {
                // The bus is still there (Kafka) and keeps the rest.
                tracing::warn!(
                    stage = stage.name(),
                    "stopping before the end of the backlog"
                );
                break;
            }
        }
        settled = false;
        let polled_from = Instant::now();
        let events = poll(&mut *consumer, batch_max);
        let polled_at = Instant::now();
        // One span per batch that brought something (an idle poll is not
        // worth a trace), with the poll's time on it and a child per step.
        let batch_span = (!events.is_empty()).then(|| {
            tracing::info_span!(
                "batch",
                stage = stage.name(),
                events = events.len(),
                poll_ms = (polled_at - polled_from).as_millis() as u64
            )
        });
        let _in_batch = batch_span.as_ref().map(|s| s.enter());
        let mut replay: Vec<Message> = Vec::new();
        let mut live: Vec<Message> = Vec::new();
        for ev in events {
            match ev {
                Event::Message(m) if m.replay => replay.push(m),
                Event::Message(m) if caught_up => live.push(m),
                Event::Message(m) => held.push(m),
                other => {
                    stage.replay(std::mem::take(&mut replay));
                    match other {
                        Event::Assigned(_) => {
                            caught_up = false;
                            if !stage.ready_at_start() {
                                ready.store(false, Ordering::Relaxed);
                            }
                        }
                        Event::Revoked(parts) => {
                            let gone: HashSet<i32> = parts.iter().map(|(_, p)| *p).collect();
                            stage.revoked(&gone);
                            held.retain(|m| !gone.contains(&m.partition));
                            live.retain(|m| !gone.contains(&m.partition));
                            // Not flushed, so not committed: the new owner reads them.
                            offsets.forget(&gone);
                        }
                        Event::CaughtUp => {
                            stage.caught_up()?;
                            caught_up = true;
                            ready.store(true, Ordering::Relaxed);
                            live.append(&mut held);
                        }
                        Event::Message(_) => {}
                    }
                }
            }
        }
        stage.replay(replay);
        if !caught_up {
            continue;
        }
        if !live.is_empty() {
            since.get_or_insert(polled_at);
            live.iter().for_each(|m| offsets.track(m));
            let _take = tracing::info_span!("take", messages = live.len()).entered();
            for (m, reason) in stage.take(live) {
                if !m.replay {
                    dead.push(reject(&m, &reason)?);
                }
            }
        }
        let drained = consumer.at_end();
        let flushed = match &batch_span {
            Some(_) => tracing::info_span!("flush", drained).in_scope(|| stage.flush(drained))?,
            None => stage.flush(drained)?,
        };
        let Some(mut out) = flushed else {
            settled = drained && offsets.0.is_empty();
            continue;
        };
        if out.is_empty() && offsets.0.is_empty() && dead.is_empty() {
            settled = drained;
            continue;
        }
        out.append(&mut dead);
        // Not committed until published: a failure here re-reads the batch.
        tracing::info_span!("publish", messages = out.len()).in_scope(|| producer.send(out))?;
        tracing::info_span!("commit", partitions = offsets.0.len())
            .in_scope(|| offsets.commit(&mut *consumer));
        if let Some(first) = since.take() {
            latency.observe(first.elapsed().as_secs_f64());
        }
        settled = drained;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::bus::{InProcessBus, TopicLayout};

    /// Takes `Findings`, rejects payloads that say "bad", and remembers what
    /// it replayed and took.
    struct Recorder {
        group: String,
        rewind: bool,
        replayed: Arc<Mutex<Vec<String>>>,
        taken: Arc<Mutex<Vec<String>>>,
    }

    fn text(m: &Message) -> String {
        String::from_utf8(m.payload.as_deref().unwrap_or_default().to_vec()).unwrap()
    }

    impl Stage for Recorder {
        fn name(&self) -> &'static str {
            "test"
        }
        fn consumes(&self) -> ConsumerSpec {
            ConsumerSpec {
                group: self.group.clone(),
                topics: vec![Topic::Findings],
                rewind: if self.rewind {
                    vec![Topic::Findings]
                } else {
                    vec![]
                },
                restore: Vec::new(),
            }
        }
        fn replay(&mut self, messages: Vec<Message>) {
            let mut r = self.replayed.lock().unwrap();
            r.extend(messages.iter().map(text));
        }
        fn take(&mut self, messages: Vec<Message>) -> Vec<(Message, String)> {
            let mut rejected = Vec::new();
            for m in messages {
                if text(&m) == "bad" {
                    rejected.push((m, "it said bad".to_string()));
                } else {
                    self.taken.lock().unwrap().push(text(&m));
                }
            }
            rejected
        }
        fn flush(&mut self, _: bool) -> Result<Option<Vec<OutMessage>>, StageError> {
            Ok(Some(Vec::new()))
        }
    }

    fn send(bus: &InProcessBus, bodies: &[&str]) {
        let messages = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| OutMessage {
                topic: Topic::Findings,
                key: format!("k{i}-{b}"),
                shard: format!("k{i}"),
                payload: Some(b.as_bytes().to_vec()),
                broadcast: false,
            })
            .collect();
        bus.producer().unwrap().send(messages).unwrap();
    }

    /// Runs `stage` until `done` holds (once ready), then stops it.
    fn run_until(bus: &InProcessBus, stage: &mut Recorder, done: impl Fn() -> bool + Sync) {
        let stop = AtomicBool::new(false);
        let ready = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                    if ready.load(Ordering::Relaxed) && done() {
                        break;
                    }
                }
                stop.store(true, Ordering::Relaxed);
            });
            run(stage, bus, 10, &stop, &ready).unwrap();
        });
    }

    #[test]
    fn takes_rejects_commits_and_replays() {
        let bus = InProcessBus::new(&TopicLayout {
            partitions: 2,
            replication: 1,
        });
        bus.ensure_topics().unwrap();
        send(&bus, &["a", "bad", "b"]);
        let taken = Arc::new(Mutex::new(Vec::new()));
        let replayed = Arc::new(Mutex::new(Vec::new()));
        let mut stage = Recorder {
            group: "g".into(),
            rewind: false,
            replayed: replayed.clone(),
            taken: taken.clone(),
        };
        run_until(&bus, &mut stage, || taken.lock().unwrap().len() == 2);
        let mut got = taken.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, ["a", "b"]);

        // The rejected one is a dead letter with the reason.
        let mut dlq = bus
            .consumer(&ConsumerSpec {
                group: "dlq".into(),
                topics: vec![Topic::DeadLetters],
                rewind: vec![],
                restore: Vec::new(),
            })
            .unwrap();
        let dead: Vec<Message> = dlq
            .poll(10, Duration::from_millis(200))
            .unwrap()
            .into_iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some(m),
                _ => None,
            })
            .collect();
        assert_eq!(dead.len(), 1);
        assert!(text(&dead[0]).contains("it said bad"), "{}", text(&dead[0]));

        // Committed: the same group takes only what is new.
        send(&bus, &["c"]);
        taken.lock().unwrap().clear();
        run_until(&bus, &mut stage, || !taken.lock().unwrap().is_empty());
        assert_eq!(*taken.lock().unwrap(), ["c"]);

        // A rewinding stage in that group replays what was committed first.
        let mut rewinding = Recorder {
            group: "g".into(),
            rewind: true,
            replayed: replayed.clone(),
            taken: taken.clone(),
        };
        run_until(&bus, &mut rewinding, || replayed.lock().unwrap().len() == 4);
        let mut again = replayed.lock().unwrap().clone();
        again.sort();
        assert_eq!(again, ["a", "b", "bad", "c"]);
    }

    /// Drains on stop, and is slow to flush: the stop (and the messages
    /// published just before it) arrive while it is not polling.
    struct SlowDrainer {
        taken: Arc<Mutex<usize>>,
    }

    impl Stage for SlowDrainer {
        fn name(&self) -> &'static str {
            "slow"
        }
        fn consumes(&self) -> ConsumerSpec {
            ConsumerSpec {
                group: "slow".into(),
                topics: vec![Topic::Metrics],
                rewind: vec![],
                restore: Vec::new(),
            }
        }
        fn replay(&mut self, _: Vec<Message>) {}
        fn ready_at_start(&self) -> bool {
            true
        }
        fn drains_on_stop(&self) -> bool {
            true
        }
        fn take(&mut self, messages: Vec<Message>) -> Vec<(Message, String)> {
            *self.taken.lock().unwrap() += messages.len();
            Vec::new()
        }
        fn flush(&mut self, drained: bool) -> Result<Option<Vec<OutMessage>>, StageError> {
            if drained {
                std::thread::sleep(Duration::from_millis(300));
            }
            Ok(Some(Vec::new()))
        }
    }

    #[test]
    fn a_draining_stage_takes_what_was_published_just_before_the_stop() {
        let bus = InProcessBus::new(&TopicLayout::default());
        let taken = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let runner = {
            let (bus, taken, stop) = (bus.clone(), taken.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut stage = SlowDrainer { taken };
                run(&mut stage, &bus, 100, &stop, &AtomicBool::new(false)).unwrap();
            })
        };
        // Idle polls (each drained, so each flush sleeps), then a publish and
        // the stop while the stage is in one of those flushes.
        std::thread::sleep(Duration::from_millis(450));
        let message = OutMessage {
            topic: Topic::Metrics,
            key: "k".into(),
            shard: "k".into(),
            payload: Some(b"x".to_vec()),
            broadcast: false,
        };
        bus.producer().unwrap().send(vec![message]).unwrap();
        stop.store(true, Ordering::Relaxed);
        runner.join().unwrap();
        assert_eq!(*taken.lock().unwrap(), 1);
    }
}
