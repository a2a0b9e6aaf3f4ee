//! The alert stage: consume `driftline.findings` (its own consumer group),
//! feed the alert engine, and commit only once the alert state log holds
//! what the events caused. The engine's state log — not the topic — is the
//! memory across restarts, so a replay of the findings topic from any
//! offset is recognised event by event (by fingerprint and time) and pages
//! nobody twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use driftline_alerts::Alerting;
use driftline_pipeline::codec::decode_finding_event;
use driftline_pipeline::{Bus, ConsumerSpec, Event, Topic, metrics, now_ms, parse_iso8601_ms};

use super::stage::{self, Offsets};

pub struct AlertStage {
    pub alerting: Arc<Alerting>,
    pub group: String,
    pub batch_max: usize,
}

impl AlertStage {
    pub fn run(self, bus: &dyn Bus, stop: &AtomicBool, ready: &AtomicBool) -> anyhow::Result<()> {
        let mut consumer = bus.consumer(&ConsumerSpec {
            group: self.group.clone(),
            topics: vec![Topic::Findings],
            rewind: vec![],
        })?;
        let producer = bus.producer()?;
        let batch_seconds = metrics().batch_seconds.with_label_values(&["alert"]);
        ready.store(true, Ordering::Relaxed);
        while !stop.load(Ordering::Relaxed) {
            let events = stage::poll(&mut *consumer, self.batch_max);
            let started = Instant::now();
            let mut offsets = Offsets::default();
            let mut good = Vec::new();
            let mut dead = Vec::new();
            for ev in events {
                let Event::Message(m) = ev else { continue };
                offsets.track(&m);
                let decoded = match m.payload.as_deref() {
                    Some(p) => decode_finding_event(p),
                    None => Err("finding event without a payload".to_string()),
                };
                match decoded {
                    Ok(e) => match parse_iso8601_ms(&e.timestamp) {
                        Some(at) => good.push((e, at)),
                        None => dead.push(stage::reject(
                            &m,
                            &format!("field timestamp: {:?} is not an RFC 3339 time", e.timestamp),
                        )?),
                    },
                    Err(reason) => dead.push(stage::reject(&m, &reason)?),
                }
            }
            // Ticks even without input: groups flush on their own clock.
            self.alerting.apply_findings(&good, now_ms())?;
            if offsets.is_empty() {
                continue;
            }
            producer.send(dead)?;
            offsets.commit(&mut *consumer);
            batch_seconds.observe(started.elapsed().as_secs_f64());
        }
        Ok(())
    }
}
