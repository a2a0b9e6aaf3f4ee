//! The telemetry writer: `driftline.metrics` and `driftline.logs` in, the
//! store's `metric_samples` and `log_records` out, on the stage runner.
//! Rows gather over polls and are appended once the backlog is drained or
//! `FLUSH_ROWS` are waiting, so a busy stream makes few large files rather
//! than many small ones; offsets are committed after the append. It drains
//! on stop: the embedded bus dies with the process, and a sample accepted
//! over HTTP must be in the store after SIGTERM.

use std::sync::Arc;

use super::Store;
use crate::bus::{ConsumerSpec, Message, OutMessage, Topic};
use crate::stage::{Stage, StageError};
use crate::telemetry::tables::{LOG_RECORDS, LogRows, METRIC_SAMPLES, MetricRows};
use crate::telemetry::{decode_logs, decode_metrics_shared, source_of_key};

/// Rows (samples plus log records) that make an append before the backlog
/// is drained.
const FLUSH_ROWS: usize = 65_536;

pub struct TelemetryWriter {
    store: Arc<dyn Store>,
    group: String,
    samples: MetricRows,
    logs: LogRows,
    /// Messages taken since the last flush.
    taken: usize,
}

impl TelemetryWriter {
    pub fn new(store: Arc<dyn Store>, group: String) -> Self {
        Self {
            store,
            group,
            samples: MetricRows::default(),
            logs: LogRows::default(),
            taken: 0,
        }
    }

    fn take_one(&mut self, m: &Message) -> Result<(), String> {
        let payload = m.payload.as_ref().ok_or("no payload")?;
        let source = source_of_key(m.key.as_deref());
        match m.topic {
            Topic::Metrics => {
                let req = decode_metrics_shared(payload)?;
                let nameless = self.samples.push_shared_request(source, &req)?;
                if nameless > 0 {
                    tracing::warn!(nameless, source, "samples without a metric name skipped");
                }
            }
            Topic::Logs => {
                let batch = decode_logs(payload)?;
                for r in &batch.records {
                    self.logs.push(&batch.source, r);
                }
            }
            other => return Err(format!("{other} is not a telemetry topic")),
        }
        Ok(())
    }
}

impl Stage for TelemetryWriter {
    fn name(&self) -> &'static str {
        "telemetry"
    }

    fn consumes(&self) -> ConsumerSpec {
        ConsumerSpec {
            group: self.group.clone(),
            topics: vec![Topic::Metrics, Topic::Logs],
            rewind: Vec::new(),
            restore: Vec::new(),
        }
    }

    fn replay(&mut self, _messages: Vec<Message>) {}

    fn ready_at_start(&self) -> bool {
        true
    }

    fn drains_on_stop(&self) -> bool {
        true
    }

    fn take(&mut self, messages: Vec<Message>) -> Vec<(Message, String)> {
        self.taken += messages.len();
        let mut rejected = Vec::new();
        for m in messages {
            if let Err(reason) = self.take_one(&m) {
                rejected.push((m, reason));
            }
        }
        rejected
    }

    fn flush(&mut self, drained: bool) -> Result<Option<Vec<OutMessage>>, StageError> {
        if self.taken == 0 {
            return Ok(None);
        }
        if !drained && self.samples.len() + self.logs.len() < FLUSH_ROWS {
            return Ok(None);
        }
        let fail = |e: Box<dyn std::error::Error + Send + Sync>| StageError::of("telemetry", e);
        if !self.samples.is_empty() {
            let batch = self.samples.finish().map_err(|e| fail(e.into()))?;
            self.store
                .append(METRIC_SAMPLES, &batch)
                .map_err(|e| fail(e.into()))?;
        }
        if !self.logs.is_empty() {
            let batch = self.logs.finish().map_err(|e| fail(e.into()))?;
            self.store
                .append(LOG_RECORDS, &batch)
                .map_err(|e| fail(e.into()))?;
        }
        self.taken = 0;
        Ok(Some(Vec::new()))
    }
}
