//! The alert stage: `driftline.findings` in (its own consumer group), the
//! alert engine fed, on the pipeline's stage runner. Offsets are committed
//! only once the alert journal holds what the events caused. The journal —
//! not the topic — is the memory across restarts, so a replay of the
//! findings topic from any offset is recognised event by event (by
//! fingerprint and time) and pages nobody twice.

use std::sync::Arc;

use driftline_pipeline::codec::decode_finding_event;
use driftline_pipeline::stage::{Stage, StageError};
use driftline_pipeline::{
    ConsumerSpec, FindingEvent, Message, OutMessage, Topic, now_ms, parse_iso8601_ms,
};

use crate::Alerting;

pub struct AlertStage {
    alerting: Arc<Alerting>,
    group: String,
    /// Taken since the last flush, with their event times.
    taken: Vec<(FindingEvent, i64)>,
}

impl AlertStage {
    pub fn new(alerting: Arc<Alerting>, group: String) -> Self {
        Self {
            alerting,
            group,
            taken: Vec::new(),
        }
    }
}

impl Stage for AlertStage {
    fn name(&self) -> &'static str {
        "alert"
    }

    fn consumes(&self) -> ConsumerSpec {
        ConsumerSpec {
            group: self.group.clone(),
            topics: vec![Topic::Findings],
            rewind: vec![],
            restore: Vec::new(),
        }
    }

    fn replay(&mut self, _: Vec<Message>) {}

    fn take(&mut self, messages: Vec<Message>) -> Vec<(Message, String)> {
        let mut rejected = Vec::new();
        for m in messages {
            let decoded = match m.payload.as_deref() {
                Some(p) => decode_finding_event(p),
                None => Err("finding event without a payload".to_string()),
            };
            match decoded {
                Ok(e) => match parse_iso8601_ms(&e.timestamp) {
                    Some(at) => self.taken.push((e, at)),
                    None => {
                        let why =
                            format!("field timestamp: {:?} is not an RFC 3339 time", e.timestamp);
                        rejected.push((m, why));
                    }
                },
                Err(reason) => rejected.push((m, reason)),
            }
        }
        rejected
    }

    /// Every poll, input or not: groups flush on their own clock.
    fn flush(&mut self, _drained: bool) -> Result<Option<Vec<OutMessage>>, StageError> {
        let events = std::mem::take(&mut self.taken);
        self.alerting
            .apply_findings(&events, now_ms())
            .map_err(|e| StageError::of("alert", e))?;
        Ok(Some(Vec::new()))
    }

    /// It rebuilds nothing from the topic.
    fn ready_at_start(&self) -> bool {
        true
    }
}
