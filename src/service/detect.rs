//! The drift stage: consume both snapshot topics, keep the tables of the
//! partitions this instance owns, re-evaluate what changed, publish finding
//! events, commit.
//!
//! Delivery: a batch's offsets are committed only after its finding events
//! (and dead letters) are acknowledged by the bus, and before the next
//! poll — so when a rebalance revokes partitions (inside a poll), every
//! batch handed out before it is already processed and committed; messages
//! polled but not yet processed are dropped and the new owner reads them
//! again. After an assignment the tables are rebuilt by replaying the
//! compacted topics up to the committed offsets, and the findings that
//! state implies are taken as already published: a restart re-emits
//! nothing that was published and committed before.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use driftline_detectors::{Side, Skip, StreamingDrift};

use super::stage::{self, Offsets};
use driftline_pipeline::codec::{decode_status, decode_table, encode_finding_event};
use driftline_pipeline::schema::{DECLARED_SCHEMA, OBSERVED_SCHEMA};
use driftline_pipeline::{
    Bus, ConsumerSpec, Event, FindingClass, Message, OutMessage, Topic, is_status_key, metrics,
    now_ms,
};

/// Most messages applied before an evaluation is forced.
const MAX_PENDING: usize = 100_000;
/// Oldest an unevaluated change may get.
const MAX_PENDING_AGE: Duration = Duration::from_millis(700);

pub struct DetectStage {
    pub drift: StreamingDrift,
    pub group: String,
    pub batch_max: usize,
}

impl DetectStage {
    pub fn run(
        mut self,
        bus: &dyn Bus,
        stop: &AtomicBool,
        ready: &AtomicBool,
    ) -> anyhow::Result<()> {
        let spec = ConsumerSpec {
            group: self.group.clone(),
            topics: vec![Topic::Declared, Topic::Config],
            rewind: vec![Topic::Declared, Topic::Config],
        };
        let mut consumer = bus.consumer(&spec)?;
        let producer = bus.producer()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut caught_up = false;
        // Live messages that arrived before the replay finished.
        let mut held: Vec<Message> = Vec::new();
        let mut baseline: HashSet<String> = HashSet::new();
        let batch_seconds = metrics().batch_seconds.with_label_values(&["detect"]);
        // Applied but not yet evaluated: groups, offsets to commit after.
        let mut pending: HashSet<String> = HashSet::new();
        let mut pending_offsets = Offsets::default();
        let mut pending_messages = 0usize;
        let mut pending_since: Option<Instant> = None;
        // Dead letters wait with the batch they came in: published before
        // its offsets are committed.
        let mut dead: Vec<OutMessage> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let events = stage::poll(&mut *consumer, self.batch_max);
            let started = Instant::now();
            let mut replay: Vec<Message> = Vec::new();
            let mut live: Vec<Message> = Vec::new();
            for ev in events {
                match ev {
                    Event::Message(m) if m.replay => replay.push(m),
                    Event::Message(m) if caught_up => live.push(m),
                    Event::Message(m) => held.push(m),
                    other => {
                        self.apply(std::mem::take(&mut replay), &mut baseline, &mut dead);
                        match other {
                            Event::Assigned(_) => {
                                caught_up = false;
                                ready.store(false, Ordering::Relaxed);
                            }
                            Event::Revoked(parts) => {
                                let gone: HashSet<i32> = parts.iter().map(|(_, p)| *p).collect();
                                self.drift.revoke(&gone);
                                held.retain(|m| !gone.contains(&m.partition));
                                live.retain(|m| !gone.contains(&m.partition));
                                // Not evaluated, so not committed: the new owner reads them.
                                pending_offsets.forget(&gone);
                            }
                            Event::CaughtUp => {
                                let n = baseline.len();
                                rt.block_on(self.drift.evaluate(&baseline, false, now_ms()))?;
                                baseline.clear();
                                caught_up = true;
                                ready.store(true, Ordering::Relaxed);
                                live.append(&mut held);
                                tracing::info!(
                                    resources = n,
                                    open = self.drift.open_counts().values().sum::<usize>(),
                                    "tables rebuilt"
                                );
                            }
                            Event::Message(_) => {}
                        }
                    }
                }
            }
            self.apply(replay, &mut baseline, &mut dead);
            if !caught_up {
                continue;
            }
            live.iter().for_each(|m| pending_offsets.track(m));
            let drained = consumer.at_end();
            pending_messages += live.len();
            self.apply(live, &mut pending, &mut dead);
            // Evaluate once the backlog is drained (or large, or old): a
            // resource whose two sides sit in different batches of a backlog
            // must not flap missing → resolved on the way.
            let first = *pending_since.get_or_insert(started);
            let due =
                drained || pending_messages >= MAX_PENDING || first.elapsed() >= MAX_PENDING_AGE;
            if !due || (pending_offsets.is_empty() && dead.is_empty()) {
                continue;
            }
            let found = rt.block_on(self.drift.evaluate(&pending, true, now_ms()))?;
            pending.clear();
            pending_messages = 0;
            pending_since = None;
            let mut out: Vec<OutMessage> = Vec::with_capacity(found.len() + dead.len());
            for ev in &found {
                out.push(encode_finding_event(ev)?);
                driftline_detectors::metrics::metrics()
                    .finding_events
                    .with_label_values(&[ev.finding.class.as_str(), ev.event.as_str()])
                    .inc();
            }
            out.append(&mut dead);
            // Not committed until published: a failure here re-reads the batch.
            producer.send(out)?;
            pending_offsets.commit(&mut *consumer);
            self.update_gauges();
            batch_seconds.observe(first.elapsed().as_secs_f64());
            if !found.is_empty() {
                tracing::info!(
                    events = found.len(),
                    elapsed_ms = first.elapsed().as_millis() as u64,
                    "findings published"
                );
            }
        }
        Ok(())
    }

    fn update_gauges(&self) {
        let counts = self.drift.open_counts();
        for class in [
            FindingClass::Changed,
            FindingClass::Missing,
            FindingClass::Unmanaged,
            FindingClass::SourceUnavailable,
        ] {
            let detector = if class == FindingClass::SourceUnavailable {
                "source"
            } else {
                "drift"
            };
            driftline_detectors::metrics::metrics()
                .findings_open
                .with_label_values(&[detector, class.as_str()])
                .set(counts.get(&class).copied().unwrap_or(0) as i64);
        }
    }

    /// Decodes each topic's messages in bulk, then applies them in order.
    fn apply(
        &mut self,
        msgs: Vec<Message>,
        touched: &mut HashSet<String>,
        dead: &mut Vec<OutMessage>,
    ) {
        for (topic, side, schema) in [
            (Topic::Declared, Side::Declared, &*DECLARED_SCHEMA),
            (Topic::Config, Side::Observed, &*OBSERVED_SCHEMA),
        ] {
            let of_topic: Vec<&Message> = msgs.iter().filter(|m| m.topic == topic).collect();
            if of_topic.is_empty() {
                continue;
            }
            let is_status = |m: &Message| m.key.as_deref().is_some_and(is_status_key);
            let with_payload: Vec<usize> = (0..of_topic.len())
                .filter(|i| of_topic[*i].payload.is_some() && !is_status(of_topic[*i]))
                .collect();
            let payloads: Vec<&[u8]> = with_payload
                .iter()
                .map(|i| of_topic[*i].payload.as_deref().unwrap_or_default())
                .collect();
            let decoded = decode_table(schema, &payloads);
            // message index → (row in decoded batch | rejection)
            let mut row_of: HashMap<usize, usize> = HashMap::new();
            for (row, input) in decoded.rows.iter().enumerate() {
                row_of.insert(with_payload[*input], row);
            }
            let mut rejected: HashMap<usize, String> = HashMap::new();
            for (input, reason) in decoded.rejected {
                rejected.insert(with_payload[input], reason);
            }
            for (i, m) in of_topic.iter().enumerate() {
                let key = m.key.as_deref().unwrap_or_default();
                if is_status(m) {
                    // A source status, in order with the snapshots: it may
                    // thaw groups that waited for their scope to be read.
                    let status = m.payload.as_deref().map(decode_status).transpose();
                    match status
                        .map_err(Skip::Invalid)
                        .and_then(|s| self.drift.apply_status(m.partition, key, s))
                    {
                        Ok(groups) => touched.extend(groups),
                        Err(Skip::Invalid(reason)) if !m.replay => {
                            match stage::reject(m, &reason) {
                                Ok(d) => dead.push(d),
                                Err(e) => {
                                    tracing::error!(error = %e, "cannot encode a dead letter")
                                }
                            }
                        }
                        Err(_) => {}
                    }
                    continue;
                }
                let result = if let Some(reason) = rejected.remove(&i) {
                    Err(Skip::Invalid(reason))
                } else if m.key.is_none() {
                    Err(Skip::Invalid("message has no key".into()))
                } else if m.payload.is_none() {
                    self.drift.apply(side, m.partition, key, None)
                } else {
                    let row = row_of.get(&i).copied().unwrap_or(0);
                    self.drift
                        .apply(side, m.partition, key, Some((&decoded.batch, row)))
                };
                match result {
                    Ok(group) => {
                        touched.insert(group);
                    }
                    Err(Skip::NotComparable) => {}
                    Err(Skip::Invalid(reason)) => {
                        if m.replay {
                            // Already dead-lettered when it was first read.
                            continue;
                        }
                        match stage::reject(m, &reason) {
                            Ok(d) => dead.push(d),
                            Err(e) => tracing::error!(error = %e, "cannot encode a dead letter"),
                        }
                    }
                }
            }
        }
    }
}
