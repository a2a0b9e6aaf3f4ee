//! Log files in (`[[logs.files]]`): files and globs followed as they grow,
//! rotate and get truncated (`tail.rs`), each line read as JSON, logfmt or
//! plain text through a regex (`parse.rs`) into a log record with a
//! timestamp, severity, body, attributes and service, published on
//! `driftline.logs`. Offsets are checkpointed under the data directory
//! after the bus has the lines. A line that cannot be read is a dead letter
//! naming the file, the line number and the reason.

mod parse;
mod tail;

use std::path::Path;
use std::time::Duration;

use driftline_pipeline::telemetry::LogBatch;
use driftline_pipeline::{DeadLetter, Record, RecordSink, Topic};
use serde::Deserialize;

use crate::metrics::metrics;
use crate::{CollectReport, Collector, ProgressFn, SourceError};

pub use parse::{LineFormat, parse_line};
pub use tail::FileTail;

/// `[logs]` in driftline.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// How often files are looked at for new lines.
    pub poll_interval_ms: u64,
    pub files: Vec<LogFiles>,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 250,
            files: Vec::new(),
        }
    }
}

/// `[[logs.files]]`: files written one way.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFiles {
    /// Paths or globs (`/var/log/app/*.log`). Include rotated names
    /// (`app.log*`) to also read what was rotated away while driftline was
    /// stopped.
    pub paths: Vec<String>,
    /// `json`, `logfmt` or `regex`.
    pub format: String,
    /// For `regex`: named groups `timestamp`/`time`, `level`/`severity`,
    /// `msg`/`message`/`body`, `service`; others become attributes.
    pub pattern: Option<String>,
    /// The service of every line (else the line's own `service` field).
    #[serde(default)]
    pub service: String,
    /// Start a file never seen before at its end rather than its start.
    #[serde(default)]
    pub start_at_end: bool,
}

impl LogsConfig {
    /// One tailer per `[[logs.files]]`, checkpointing under `state_dir`, or
    /// what is wrong, named by its key.
    pub fn collectors(&self, state_dir: &Path) -> Result<Vec<LogTailer>, String> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let key = |k: &str| format!("logs.files[{i}].{k}");
                if f.paths.is_empty() {
                    return Err(format!("{} is empty", key("paths")));
                }
                let format = match (f.format.as_str(), &f.pattern) {
                    ("json", None) => LineFormat::Json,
                    ("logfmt", None) => LineFormat::Logfmt,
                    ("regex", Some(p)) => LineFormat::Regex(
                        regex::Regex::new(p).map_err(|e| format!("{}: {e}", key("pattern")))?,
                    ),
                    ("regex", None) => {
                        return Err(format!(
                            "{} is needed for format = \"regex\"",
                            key("pattern")
                        ));
                    }
                    ("json" | "logfmt", Some(_)) => {
                        return Err(format!("{} is only for format = \"regex\"", key("pattern")));
                    }
                    (other, _) => {
                        return Err(format!(
                            "{}: {other:?} is not json, logfmt or regex",
                            key("format")
                        ));
                    }
                };
                let id = xxhash_rust::xxh64::xxh64(f.paths.join("\n").as_bytes(), 0);
                Ok(LogTailer {
                    tail: FileTail::new(
                        f.paths.clone(),
                        state_dir.join(format!("checkpoint-{id:016x}.json")),
                        f.start_at_end,
                    ),
                    format,
                    service: f.service.clone(),
                    interval: Duration::from_millis(self.poll_interval_ms.max(10)),
                })
            })
            .collect()
    }
}

/// Follows one `[[logs.files]]`.
pub struct LogTailer {
    tail: FileTail,
    format: LineFormat,
    service: String,
    interval: Duration,
}

/// Records per bus publish.
const CHUNK: usize = 10_000;

impl Collector for LogTailer {
    fn name(&self) -> &'static str {
        "logs"
    }

    fn poll_once(&mut self, out: &dyn RecordSink, _progress: ProgressFn<'_>) -> CollectReport {
        let mut report = CollectReport::default();
        let (lines, progress, errors) = self.tail.read();
        report
            .errors
            .extend(errors.into_iter().map(|(p, reason)| SourceError {
                source: p.display().to_string(),
                reason,
            }));
        if lines.is_empty() {
            return report;
        }
        let now = driftline_pipeline::now_ms();
        let mut batches: Vec<LogBatch> = Vec::new();
        let mut dead = Vec::new();
        for line in lines {
            let source = line.path.display().to_string();
            let parsed = line
                .text
                .and_then(|text| parse_line(&text, &self.format, &self.service, now));
            match parsed {
                Ok(record) => match batches.last_mut() {
                    Some(b) if b.source == source && b.records.len() < CHUNK => {
                        b.records.push(record)
                    }
                    _ => batches.push(LogBatch {
                        source,
                        records: vec![record],
                    }),
                },
                Err(reason) => dead.push(Record::DeadLetter(DeadLetter {
                    reason: format!("line {}: {reason}", line.number),
                    source,
                    ..Default::default()
                })),
            }
        }
        let n: usize = batches.iter().map(|b| b.records.len()).sum();
        let rejected = dead.len();
        // One publish for every line of the pass: the embedded bus takes all
        // of it or none (a full bus), so a retry next pass repeats nothing.
        let records = batches.into_iter().map(Record::Logs).collect();
        match out.publish(Topic::Logs, records) {
            Ok(()) => {
                metrics()
                    .log_records_in
                    .with_label_values(&["file"])
                    .inc_by(n as u64);
                metrics()
                    .ingest_rejected
                    .with_label_values(&["file", "invalid"])
                    .inc_by(rejected as u64);
                report.published = n;
                if let Err(e) = out.publish(Topic::DeadLetters, dead) {
                    report.errors.push(SourceError {
                        source: "logs".into(),
                        reason: format!("{rejected} dead letters not published: {e}"),
                    });
                }
                if let Err(e) = self.tail.advance(progress) {
                    report.errors.push(SourceError {
                        source: "log checkpoint".into(),
                        reason: format!("cannot write: {e}"),
                    });
                }
            }
            // Offsets stay: the next pass reads the same lines again. A
            // full bus is back-pressure, not a fault: no warning each pass.
            Err(e @ driftline_pipeline::BusError::Full { .. }) => {
                tracing::debug!(error = %e, "log lines wait for the bus");
            }
            Err(e) => report.errors.push(SourceError {
                source: "logs".into(),
                reason: format!("lines not published, read again next pass: {e}"),
            }),
        }
        report
    }

    fn interval(&self) -> Duration {
        self.interval
    }
}
