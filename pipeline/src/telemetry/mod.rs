//! Metrics and logs: the records of `driftline.metrics` and
//! `driftline.logs`, how they travel, and the store tables they land in
//! (`tables.rs`: `metric_samples`, `log_records`).
//!
//! On the bus (`codec::encode_metrics`, `codec::encode_logs`), a metrics
//! message is a remote-write `WriteRequest` (`prompb.rs`): the
//! format Prometheus already sends, compact, and exact for every float
//! (NaN stale markers included, which JSON cannot carry). A logs message is
//! a JSON `LogBatch`. Both are keyed `{source}/{bucket}`: a series (or a
//! service's log stream) always hashes to the same bucket, so it stays in
//! one partition and in order, while a request's series spread over
//! `BUCKETS` messages instead of one message each.

pub mod prompb;
pub mod tables;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Prometheus's staleness marker: a NaN with this bit pattern says the
/// series ended at that timestamp.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The label holding a sample's metric name.
pub const METRIC_NAME_LABEL: &str = "__name__";

/// How many messages one batch of series at most becomes.
pub const BUCKETS: u64 = 32;

/// Most bytes a decoded telemetry message may hold: a bigger one is a dead
/// letter, not an allocation.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// A series' identity: xxHash64 of its labels sorted by name, each name
/// and value followed by 0xff, as Prometheus's `labels.Hash` reads them.
/// `labels` must be sorted.
pub fn series_id(labels: &[prompb::Label]) -> u64 {
    series_id_of(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
}

/// `series_id` of (name, value) pairs, sorted by name.
pub fn series_id_of<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> u64 {
    // The labels are laid out once and hashed in one call: the streaming
    // hasher copies every few-byte update into its own buffer, which cost
    // a quarter of the store writer's time per sample.
    thread_local! {
        static LAID_OUT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    LAID_OUT.with_borrow_mut(|buf| {
        buf.clear();
        for (name, value) in labels {
            buf.extend_from_slice(name.as_bytes());
            buf.push(0xff);
            buf.extend_from_slice(value.as_bytes());
            buf.push(0xff);
        }
        xxhash_rust::xxh64::xxh64(buf, 0)
    })
}

/// Sorts labels by name and drops empty values (an empty label is an
/// absent one, in Prometheus's model). Returns the first name that appears
/// twice, which makes the series invalid.
pub fn normalise_labels(labels: &mut Vec<prompb::Label>) -> Result<(), String> {
    labels.retain(|l| !l.value.is_empty());
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = labels.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(format!("label {:?} appears twice", w[0].name));
    }
    Ok(())
}

/// Series from one source, on their way to `driftline.metrics`. Labels are
/// normalised (`normalise_labels`) and include `__name__`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricBatch {
    /// Where they came from: `remote_write`, `scrape`, `otlp`.
    pub source: String,
    pub series: Vec<prompb::TimeSeries>,
}

impl MetricBatch {
    pub fn samples(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
}

/// One log line or OTLP log record, after the OpenTelemetry log data model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LogRecord {
    /// When it happened (ms since the epoch); the observed time when the
    /// record has none.
    pub timestamp_ms: i64,
    /// When driftline read it.
    pub observed_ms: i64,
    pub service_name: String,
    pub severity_text: String,
    /// 1–24 as OpenTelemetry numbers them; 0 unspecified.
    pub severity_number: i32,
    pub body: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource: Vec<(String, String)>,
    /// Lower-case hex; empty when the record has none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trace_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub span_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope_name: String,
}

/// Log records from one source (a file path, `otlp`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LogBatch {
    pub source: String,
    pub records: Vec<LogRecord>,
}

/// OpenTelemetry's severity number for a level name (`warn`, `ERROR`,
/// `fatal`, `E`…); 0 when it names none.
pub fn severity_number(text: &str) -> i32 {
    match text.trim().to_ascii_lowercase().as_str() {
        "trace" | "t" => 1,
        "debug" | "d" | "dbg" => 5,
        "info" | "i" | "information" | "informational" | "notice" => 9,
        "warn" | "w" | "warning" => 13,
        "error" | "e" | "err" => 17,
        "fatal" | "f" | "critical" | "crit" | "alert" | "emerg" | "emergency" | "panic" => 21,
        _ => 0,
    }
}

/// The source a telemetry message's key names.
pub fn source_of_key(key: Option<&str>) -> &str {
    key.and_then(|k| k.rsplit_once('/'))
        .map(|(source, _)| source)
        .unwrap_or("-")
}

/// A `driftline.metrics` payload, or why it is not one.
pub fn decode_metrics(payload: &[u8]) -> Result<prompb::WriteRequest, String> {
    use prost::Message;
    check_message_size(payload)?;
    prompb::WriteRequest::decode(payload).map_err(|e| format!("not a remote-write message: {e}"))
}

/// A `driftline.metrics` payload with its labels left in the payload's
/// bytes (`prompb::SharedWriteRequest`), or why it is not one. The labels
/// are not yet checked to be UTF-8.
pub fn decode_metrics_shared(payload: &Arc<[u8]>) -> Result<prompb::SharedWriteRequest, String> {
    use prost::Message;
    check_message_size(payload)?;
    prompb::SharedWriteRequest::decode(bytes::Bytes::from_owner(payload.clone()))
        .map_err(|e| format!("not a remote-write message: {e}"))
}

fn check_message_size(payload: &[u8]) -> Result<(), String> {
    if payload.len() > MAX_MESSAGE_BYTES {
        return Err(format!(
            "{} bytes, over the {MAX_MESSAGE_BYTES}-byte limit",
            payload.len()
        ));
    }
    Ok(())
}

/// A `driftline.logs` payload, or why it is not one.
pub fn decode_logs(payload: &[u8]) -> Result<LogBatch, String> {
    serde_json::from_slice(payload).map_err(|e| format!("not a log batch: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_ids_follow_the_sorted_labels() {
        let mut a = vec![
            prompb::Label::new("job", "x"),
            prompb::Label::new("__name__", "up"),
            prompb::Label::new("z", ""),
        ];
        normalise_labels(&mut a).unwrap();
        assert_eq!(
            a,
            vec![
                prompb::Label::new("__name__", "up"),
                prompb::Label::new("job", "x")
            ]
        );
        let b = vec![
            prompb::Label::new("__name__", "up"),
            prompb::Label::new("job", "y"),
        ];
        assert_ne!(series_id(&a), series_id(&b));
        assert_eq!(series_id(&a), series_id(&a.clone()));
        // Prometheus's labels.Hash: xxHash64 of each name and value followed by 0xff.
        assert_eq!(
            series_id(&a),
            xxhash_rust::xxh64::xxh64(b"__name__\xffup\xffjob\xffx\xff", 0)
        );
        let mut twice = vec![prompb::Label::new("a", "1"), prompb::Label::new("a", "2")];
        assert!(normalise_labels(&mut twice).unwrap_err().contains("\"a\""));
    }

    #[test]
    fn severities_map_to_opentelemetry_numbers() {
        assert_eq!(severity_number("WARN"), 13);
        assert_eq!(severity_number("error"), 17);
        assert_eq!(severity_number("nonsense"), 0);
    }
}
