//! The findings sink: consume `driftline.findings`, append the events to the
//! store's `finding_events` table and, when asked, write them as JSON lines;
//! commit after both are durable.
//!
//! The findings topic is compacted (the latest event per fingerprint): on
//! assignment the sink replays it up to the committed offset to learn each
//! finding's last event, and drops an event that repeats it — the copy a
//! detector publishes again when it crashed between publishing and
//! committing. So a finding is never written resolved twice.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use driftline_pipeline::codec::decode_finding_event;
use driftline_pipeline::schema::finding_events_batch;
use driftline_pipeline::{
    Bus, ConsumerSpec, Event, Finding, FindingEventKind, Store, Topic, metrics,
};

use super::stage::{self, Offsets};

/// Where `--findings-out` goes.
pub enum FindingsOut {
    Stdout,
    File(std::fs::File),
}

impl FindingsOut {
    pub fn open(target: &str) -> anyhow::Result<Self> {
        if target == "-" {
            return Ok(FindingsOut::Stdout);
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(target)
            .map_err(|e| anyhow::anyhow!("{target}: cannot open for appending: {e}"))?;
        Ok(FindingsOut::File(f))
    }

    fn write(&mut self, lines: &[u8]) -> std::io::Result<()> {
        match self {
            FindingsOut::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(lines)?;
                out.flush()
            }
            FindingsOut::File(f) => {
                f.write_all(lines)?;
                f.sync_data()
            }
        }
    }
}

pub struct SinkStage {
    pub store: Arc<dyn Store>,
    pub out: Option<FindingsOut>,
    pub group: String,
    pub batch_max: usize,
}

impl SinkStage {
    pub fn run(mut self, bus: &dyn Bus, stop: &AtomicBool) -> anyhow::Result<()> {
        let mut consumer = bus.consumer(&ConsumerSpec {
            group: self.group.clone(),
            topics: vec![Topic::Findings],
            rewind: vec![Topic::Findings],
        })?;
        // fingerprint → (partition, last event written, without its timestamp)
        let mut last: HashMap<String, (i32, FindingEventKind, Finding)> = HashMap::new();
        let producer = bus.producer()?;
        let batch_seconds = metrics().batch_seconds.with_label_values(&["sink"]);
        while !stop.load(Ordering::Relaxed) {
            let events = stage::poll(&mut *consumer, self.batch_max);
            let started = Instant::now();
            let mut good = Vec::new();
            let mut dead = Vec::new();
            let mut offsets = Offsets::default();
            for ev in events {
                let m = match ev {
                    Event::Message(m) => m,
                    Event::Revoked(parts) => {
                        let gone: HashSet<i32> = parts.iter().map(|(_, p)| *p).collect();
                        last.retain(|_, (p, _, _)| !gone.contains(p));
                        continue;
                    }
                    _ => continue,
                };
                if m.replay {
                    if let Some(Ok(e)) = m.payload.as_deref().map(decode_finding_event) {
                        last.insert(
                            e.finding.fingerprint.clone(),
                            (m.partition, e.event, e.finding),
                        );
                    }
                    continue;
                }
                offsets.track(&m);
                let decoded = match m.payload.as_deref() {
                    Some(p) => decode_finding_event(p),
                    None => Err("finding event without a payload".to_string()),
                };
                match decoded {
                    Ok(e) => {
                        let fp = e.finding.fingerprint.clone();
                        if last
                            .get(&fp)
                            .is_some_and(|(_, k, f)| *k == e.event && *f == e.finding)
                        {
                            tracing::debug!(fingerprint = %fp, event = e.event.as_str(), "repeated finding event dropped");
                            continue;
                        }
                        last.insert(fp, (m.partition, e.event, e.finding.clone()));
                        good.push(e);
                    }
                    Err(reason) => dead.push(stage::reject(&m, &reason)?),
                }
            }
            if offsets.is_empty() {
                continue;
            }
            if !good.is_empty() {
                self.store
                    .append("finding_events", &finding_events_batch(&good)?)?;
                if let Some(out) = self.out.as_mut() {
                    let mut lines = Vec::with_capacity(good.len() * 512);
                    for e in &good {
                        serde_json::to_writer(&mut lines, e)?;
                        lines.push(b'\n');
                    }
                    out.write(&lines)?;
                }
            }
            producer.send(dead)?;
            offsets.commit(&mut *consumer);
            batch_seconds.observe(started.elapsed().as_secs_f64());
        }
        Ok(())
    }
}
