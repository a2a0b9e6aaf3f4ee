//! The durable outbox between the engine and the receivers. Messages are
//! in the state log before the findings behind them are committed, and
//! leave it only when the receiver took them (or refused them for good):
//! nothing is lost while PagerDuty is unreachable or driftline restarts.
//!
//! Each integration's messages go out in order (a resolve never overtakes
//! its trigger); 429, 5xx and network errors are retried with exponential
//! backoff and jitter, honouring `Retry-After`; a refusal (400) becomes a
//! dead letter carrying the receiver's own error text.

pub mod message;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::notify::Message;
use driftline_pipeline::{DeadLetter, now_ms};

use crate::AlertError;
use crate::metrics::metrics;
use crate::notify::{Delivery, Notifier};
use crate::state::{Journal, JournalEntry};
pub use message::OutboxMessage;

/// Retry timing.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// Exponential with "equal jitter" (half fixed, half random), or the
    /// peer's `Retry-After` plus up to 10 % so many senders do not return
    /// in step.
    pub fn delay(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            let jitter = ra.as_millis() as u64 / 10;
            return ra + Duration::from_millis(fastrand::u64(0..=jitter));
        }
        let exp = self
            .initial
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(20))
            .min(self.max);
        let half = exp.as_millis() as u64 / 2;
        Duration::from_millis(half + fastrand::u64(0..=half))
    }
}

#[derive(Default)]
struct Inner {
    queues: BTreeMap<String, VecDeque<OutboxMessage>>,
    next_id: u64,
}

pub struct Outbox {
    inner: Mutex<Inner>,
    wake: Condvar,
    journal: Arc<Journal>,
}

impl Outbox {
    /// An outbox holding what the state log says is still unsent.
    pub fn restore(journal: Arc<Journal>, records: &[JournalEntry]) -> Self {
        let mut pending: BTreeMap<u64, OutboxMessage> = BTreeMap::new();
        let mut next_id = 0;
        for r in records {
            match r {
                JournalEntry::Enqueued(m) => {
                    next_id = next_id.max(m.id + 1);
                    pending.insert(m.id, m.clone());
                }
                JournalEntry::Sent { id } | JournalEntry::Dead { id, .. } => {
                    pending.remove(id);
                }
                _ => {}
            }
        }
        let mut inner = Inner {
            queues: BTreeMap::new(),
            next_id,
        };
        for (_, mut m) in pending {
            m.next_at_ms = 0;
            inner
                .queues
                .entry(m.integration.clone())
                .or_default()
                .push_back(m);
        }
        let o = Self {
            inner: Mutex::new(inner),
            wake: Condvar::new(),
            journal,
        };
        o.update_gauges();
        o
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Assigns ids to new messages; the caller journals the records, then
    /// hands them to `push`.
    pub fn prepare(&self, messages: Vec<(String, Message)>) -> Vec<OutboxMessage> {
        let mut inner = self.lock();
        let now = now_ms();
        messages
            .into_iter()
            .map(|(integration, body)| {
                let id = inner.next_id;
                inner.next_id += 1;
                OutboxMessage {
                    id,
                    integration,
                    body,
                    created_ms: now,
                    attempts: 0,
                    next_at_ms: 0,
                }
            })
            .collect()
    }

    /// Queues journaled messages for delivery.
    pub fn push(&self, messages: Vec<OutboxMessage>) {
        if messages.is_empty() {
            return;
        }
        {
            let mut inner = self.lock();
            for m in messages {
                inner
                    .queues
                    .entry(m.integration.clone())
                    .or_default()
                    .push_back(m);
            }
        }
        self.update_gauges();
        self.wake.notify_all();
    }

    /// Messages not yet delivered.
    pub fn pending(&self) -> usize {
        self.lock().queues.values().map(VecDeque::len).sum()
    }

    /// Unsent messages, for a compacted state log.
    pub fn snapshot(&self) -> Vec<JournalEntry> {
        self.lock()
            .queues
            .values()
            .flatten()
            .cloned()
            .map(JournalEntry::Enqueued)
            .collect()
    }

    fn update_gauges(&self) {
        let inner = self.lock();
        for (k, q) in &inner.queues {
            metrics()
                .outbox_messages
                .with_label_values(&[k.as_str()])
                .set(q.len() as i64);
        }
    }

    /// Delivers until `stop`: each integration's head message when due.
    /// `dead` receives the dead letters (the caller puts them on the bus).
    pub fn run(
        &self,
        notifiers: &HashMap<String, Box<dyn Notifier>>,
        backoff: Backoff,
        dead: &dyn Fn(DeadLetter),
        stop: &AtomicBool,
    ) -> Result<(), AlertError> {
        while !stop.load(Ordering::Relaxed) {
            let now = now_ms();
            let due = {
                let inner = self.lock();
                let mut due = Vec::new();
                let mut wait = 200i64;
                for q in inner.queues.values() {
                    if let Some(m) = q.front() {
                        if m.next_at_ms <= now {
                            due.push(m.clone());
                        } else {
                            wait = wait.min(m.next_at_ms - now);
                        }
                    }
                }
                if due.is_empty() {
                    let _ = self
                        .wake
                        .wait_timeout(inner, Duration::from_millis(wait.max(1) as u64));
                    continue;
                }
                due
            };
            let mut records = Vec::new();
            let mut outcomes = Vec::new();
            for m in due {
                let span = tracing::info_span!(
                    "notify",
                    integration = %m.integration,
                    outcome = tracing::field::Empty
                );
                let _in_span = span.enter();
                let outcome = match notifiers.get(&m.integration) {
                    Some(n) => n.deliver(&m.body),
                    None => Delivery::Reject {
                        reason: format!(
                            "no integration {} in the configuration any more",
                            m.integration
                        ),
                    },
                };
                let label = match &outcome {
                    Delivery::Delivered => "delivered",
                    Delivery::Retry { .. } => "retried",
                    Delivery::Reject { .. } => "dead_letter",
                };
                span.record("outcome", label);
                metrics()
                    .notifications
                    .with_label_values(&[m.integration.as_str(), label])
                    .inc();
                match &outcome {
                    Delivery::Delivered => records.push(JournalEntry::Sent { id: m.id }),
                    Delivery::Reject { reason } => {
                        tracing::warn!(integration = %m.integration, id = m.id, %reason, "notification refused; dead-lettered");
                        records.push(JournalEntry::Dead {
                            id: m.id,
                            reason: reason.clone(),
                        });
                        dead(DeadLetter {
                            source: format!("notify:{}", m.integration),
                            reason: reason.clone(),
                            partition: None,
                            offset: None,
                            key: crate::notify::dedup_key_of(&m.body),
                            payload: Some(m.body.get().to_string()),
                        });
                    }
                    Delivery::Retry { reason, .. } => {
                        tracing::warn!(integration = %m.integration, id = m.id, attempt = m.attempts + 1, %reason, "notification not delivered; will retry");
                    }
                }
                outcomes.push((m, outcome));
            }
            // Journal first: a message is only forgotten once that is durable.
            self.journal.append(&records)?;
            {
                let mut inner = self.lock();
                let now = now_ms();
                for (m, outcome) in outcomes {
                    let Some(q) = inner.queues.get_mut(&m.integration) else {
                        continue;
                    };
                    match outcome {
                        Delivery::Delivered | Delivery::Reject { .. } => {
                            if q.front().is_some_and(|h| h.id == m.id) {
                                q.pop_front();
                            }
                        }
                        Delivery::Retry { after, .. } => {
                            if let Some(h) = q.front_mut().filter(|h| h.id == m.id) {
                                h.attempts += 1;
                                h.next_at_ms =
                                    now + backoff.delay(h.attempts, after).as_millis() as i64;
                            }
                        }
                    }
                }
            }
            self.update_gauges();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        for attempt in 1..10u32 {
            let d = b.delay(attempt, None);
            let full = Duration::from_secs(1u64 << (attempt - 1)).min(Duration::from_secs(60));
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d:?} vs {full:?}"
            );
        }
        let d = b.delay(3, Some(Duration::from_secs(10)));
        assert!(d >= Duration::from_secs(10) && d <= Duration::from_secs(11));
    }
}
