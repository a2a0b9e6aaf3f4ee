//! What the HTTP push receivers (`prometheus/remote_write.rs`, `otlp/`)
//! share: the token, bodies read within limits (snappy, gzip), records
//! published before the sender hears yes, and the status a sender acts on —
//! 2xx once the bus has the data, 400 (plus a dead letter) for a body that
//! will never be valid, 415 for an encoding driftline does not speak, and
//! 503 with `Retry-After` when the bus is full or away, so senders retry
//! rather than lose data.

use std::io::Read;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use driftline_pipeline::auth::has_token;
use driftline_pipeline::telemetry::{LogBatch, MetricBatch};
use driftline_pipeline::{BusError, DeadLetter, Record, RecordSink, Topic};

use crate::metrics::metrics;

/// Most bytes a request body may hold, compressed or not.
pub const MAX_BODY_BYTES: usize = 32 << 20;
/// Most bytes a body may decompress to.
pub const MAX_DECODED_BYTES: usize = 128 << 20;

/// Why a push was not taken.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The body will never be valid: 400, and a dead letter.
    #[error("{0}")]
    Invalid(String),
    /// An encoding or protocol version driftline does not speak: 415.
    #[error("{0}")]
    Unsupported(String),
    /// The bus cannot take it now: 503, retry.
    #[error("{0}")]
    Busy(String),
    #[error("a valid bearer token is required")]
    Unauthorized,
}

impl PushError {
    fn reason(&self) -> &'static str {
        match self {
            PushError::Invalid(_) => "invalid",
            PushError::Unsupported(_) => "unsupported",
            PushError::Busy(_) => "busy",
            PushError::Unauthorized => "unauthorized",
        }
    }
}

/// A push endpoint's way onto the bus.
#[derive(Clone)]
pub struct Ingest {
    pub sink: Arc<dyn RecordSink>,
    /// When set, pushes need `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl Ingest {
    pub fn check_token(&self, headers: &HeaderMap) -> Result<(), PushError> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if has_token(given, None, token) {
            Ok(())
        } else {
            Err(PushError::Unauthorized)
        }
    }

    /// Publishes, mapping a full or unreachable bus to `Busy`.
    pub fn publish(&self, topic: Topic, records: Vec<Record>) -> Result<(), PushError> {
        self.sink.publish(topic, records).map_err(|e| match e {
            BusError::Full { .. } => PushError::Busy(format!("{e}; retry later")),
            other => PushError::Busy(format!("the bus did not take it: {other}")),
        })
    }

    /// Publishes a push's series (when it has samples) and counts them.
    pub fn publish_metrics(&self, source: &str, batch: MetricBatch) -> Result<(), PushError> {
        let samples = batch.samples();
        if samples > 0 {
            self.publish(Topic::Metrics, vec![Record::Metrics(batch)])?;
            metrics()
                .samples_in
                .with_label_values(&[source])
                .inc_by(samples as u64);
        }
        Ok(())
    }

    /// Publishes a push's log records (when there are any) and counts them.
    pub fn publish_logs(&self, source: &str, batch: LogBatch) -> Result<(), PushError> {
        let n = batch.records.len();
        if n > 0 {
            self.publish(Topic::Logs, vec![Record::Logs(batch)])?;
            metrics()
                .log_records_in
                .with_label_values(&[source])
                .inc_by(n as u64);
        }
        Ok(())
    }

    /// The answer to a push: `ok` on success; an error is counted, logged,
    /// and (when the body is invalid) sent to the dead letters.
    pub fn answer(&self, source: &str, result: Result<Response, PushError>) -> Response {
        let e = match result {
            Ok(r) => return r,
            Err(e) => e,
        };
        metrics()
            .ingest_rejected
            .with_label_values(&[source, e.reason()])
            .inc();
        let status = match &e {
            PushError::Invalid(reason) => {
                tracing::warn!(source, %reason, "push rejected");
                let dead = Record::DeadLetter(DeadLetter {
                    source: source.to_string(),
                    reason: reason.clone(),
                    ..Default::default()
                });
                if let Err(err) = self.sink.publish(Topic::DeadLetters, vec![dead]) {
                    tracing::error!(error = %err, "cannot publish a push dead letter");
                }
                StatusCode::BAD_REQUEST
            }
            PushError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PushError::Busy(reason) => {
                tracing::warn!(source, %reason, "push refused for now");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "1")],
                    format!("{e}\n"),
                )
                    .into_response();
            }
            PushError::Unauthorized => StatusCode::UNAUTHORIZED,
        };
        (status, format!("{e}\n")).into_response()
    }
}

/// A header's value, lower-cased, or "".
pub fn header_value(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A snappy block (remote-write's framing), refused before allocating when
/// it declares more than `MAX_DECODED_BYTES`.
pub fn unsnappy(body: &[u8]) -> Result<Vec<u8>, PushError> {
    let len = snap::raw::decompress_len(body)
        .map_err(|e| PushError::Invalid(format!("not a snappy block: {e}")))?;
    if len > MAX_DECODED_BYTES {
        return Err(PushError::Invalid(format!(
            "snappy block declares {len} bytes, over the {MAX_DECODED_BYTES}-byte limit"
        )));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| PushError::Invalid(format!("not a snappy block: {e}")))
}

/// A body as its `Content-Encoding` says (gzip or none).
pub fn decoded_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, PushError> {
    match header_value(headers, header::CONTENT_ENCODING).as_str() {
        "" | "identity" => Ok(body.to_vec()),
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .take(MAX_DECODED_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| PushError::Invalid(format!("not gzip: {e}")))?;
            if out.len() > MAX_DECODED_BYTES {
                return Err(PushError::Invalid(format!(
                    "gzip body inflates past the {MAX_DECODED_BYTES}-byte limit"
                )));
            }
            Ok(out)
        }
        other => Err(PushError::Unsupported(format!(
            "Content-Encoding {other:?} is not supported (gzip or none)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_sizes_are_checked_before_allocating() {
        // A snappy preamble declaring 1 GiB.
        let mut body = Vec::new();
        let mut n: u64 = 1 << 30;
        while n >= 0x80 {
            body.push((n as u8) | 0x80);
            n >>= 7;
        }
        body.push(n as u8);
        let err = unsnappy(&body).unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
        let ok = snap::raw::Encoder::new().compress_vec(b"hello").unwrap();
        assert_eq!(unsnappy(&ok).unwrap(), b"hello");
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_ENCODING, "br".parse().unwrap());
        assert!(matches!(
            decoded_body(&h, b"x"),
            Err(PushError::Unsupported(_))
        ));
    }
}
