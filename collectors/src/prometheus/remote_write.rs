//! `POST /api/v1/write`: Prometheus remote-write 1.0 (snappy-framed
//! protobuf `WriteRequest`). Series are checked as Prometheus's own
//! receiver checks them (a metric name, no label twice) and go onto
//! `driftline.metrics` before the answer: 204 once the bus has them, 400
//! and a dead letter for a body that will never be valid, 415 for
//! remote-write 2.0, 503 while the bus is full so Prometheus retries.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use driftline_pipeline::telemetry::{METRIC_NAME_LABEL, MetricBatch, normalise_labels, prompb};

use crate::metrics::metrics;
use crate::push::{Ingest, MAX_BODY_BYTES, PushError, header_value, unsnappy};

const SOURCE: &str = "remote_write";

pub fn router(ingest: Ingest) -> Router {
    Router::new()
        .route("/api/v1/write", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(ingest)
}

async fn receive(State(ingest): State<Ingest>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = match ingest.check_token(&headers) {
        Ok(()) => {
            let i = ingest.clone();
            tokio::task::spawn_blocking(move || take(&i, &headers, &body))
                .await
                .unwrap_or_else(|e| Err(PushError::Busy(e.to_string())))
        }
        Err(e) => Err(e),
    };
    ingest.answer(
        SOURCE,
        answer.map(|()| StatusCode::NO_CONTENT.into_response()),
    )
}

/// Decodes, checks and publishes one request.
fn take(ingest: &Ingest, headers: &HeaderMap, body: &[u8]) -> Result<(), PushError> {
    let content_type = header_value(headers, header::CONTENT_TYPE);
    if content_type.contains("io.prometheus.write.v2") {
        return Err(PushError::Unsupported(
            "remote-write 2.0 is not supported; send 1.0 (protobuf_message: prometheus.WriteRequest)"
                .into(),
        ));
    }
    match header_value(headers, header::CONTENT_ENCODING).as_str() {
        "snappy" | "" => {}
        other => {
            return Err(PushError::Unsupported(format!(
                "Content-Encoding {other:?}: remote-write bodies are snappy"
            )));
        }
    }
    let raw = unsnappy(body)?;
    ingest.publish_metrics(SOURCE, decode(&raw)?)?;
    Ok(())
}

/// A `WriteRequest` as driftline keeps it: labels normalised, every series
/// named. Native histograms are counted as rejected (the stores hold float
/// samples); a request with nothing else in it is still a success, as
/// Prometheus's own receiver (without the feature) answers.
pub fn decode(raw: &[u8]) -> Result<MetricBatch, PushError> {
    use prost::Message;
    let req = prompb::WriteRequest::decode(raw)
        .map_err(|e| PushError::Invalid(format!("not a remote-write WriteRequest: {e}")))?;
    let mut series = Vec::with_capacity(req.timeseries.len());
    let mut histograms = 0;
    for (i, mut ts) in req.timeseries.into_iter().enumerate() {
        normalise_labels(&mut ts.labels)
            .map_err(|e| PushError::Invalid(format!("timeseries[{i}]: {e}")))?;
        if !ts.labels.iter().any(|l| l.name == METRIC_NAME_LABEL) {
            return Err(PushError::Invalid(format!(
                "timeseries[{i}] has no __name__ label"
            )));
        }
        histograms += std::mem::take(&mut ts.histograms).len();
        ts.exemplars.clear();
        if !ts.samples.is_empty() {
            series.push(ts);
        }
    }
    if histograms > 0 {
        tracing::warn!(
            histograms,
            "native histogram samples are not stored; send classic histograms"
        );
        metrics()
            .ingest_rejected
            .with_label_values(&[SOURCE, "native_histogram"])
            .inc_by(histograms as u64);
    }
    Ok(MetricBatch {
        source: SOURCE.into(),
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn requests_are_checked_like_prometheus_checks_them() {
        let req = |labels: Vec<prompb::Label>| {
            prompb::WriteRequest {
                timeseries: vec![prompb::TimeSeries {
                    labels,
                    samples: vec![prompb::Sample {
                        value: 1.0,
                        timestamp: 1,
                    }],
                    ..Default::default()
                }],
                metadata: vec![],
            }
            .encode_to_vec()
        };
        let ok = decode(&req(vec![
            prompb::Label::new("job", "a"),
            prompb::Label::new("__name__", "up"),
        ]))
        .unwrap();
        assert_eq!(ok.samples(), 1);
        assert_eq!(ok.series[0].labels[0].name, "__name__");
        let e = decode(&req(vec![prompb::Label::new("job", "a")])).unwrap_err();
        assert!(
            e.to_string().contains("timeseries[0] has no __name__"),
            "{e}"
        );
        let e = decode(&req(vec![
            prompb::Label::new("__name__", "x"),
            prompb::Label::new("a", "1"),
            prompb::Label::new("a", "2"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("appears twice"), "{e}");
        assert!(matches!(decode(b"\x0a\xff"), Err(PushError::Invalid(_))));
    }
}
