//! OTLP/HTTP in: `POST /v1/metrics` and `POST /v1/logs`, protobuf
//! (`application/x-protobuf`) or JSON (`application/json`), plain or gzip,
//! decoded into `opentelemetry-proto`'s generated types. Metrics become
//! Prometheus-style series (`metrics.rs`) on `driftline.metrics`; logs
//! become log records (`logs.rs`) on `driftline.logs`. The answer is the
//! OTLP export response in the request's encoding, with `partial_success`
//! naming points driftline cannot store; 400 (and a dead letter) for a body
//! that does not decode, 503 with `Retry-After` while the bus is full.

mod logs;
mod metrics;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

use crate::push::{Ingest, MAX_BODY_BYTES, PushError, decoded_body, header_value};

pub use logs::log_batch;
pub use metrics::metric_batch;

const SOURCE: &str = "otlp";

pub fn router(ingest: Ingest) -> Router {
    Router::new()
        .route("/v1/metrics", post(receive_metrics))
        .route("/v1/logs", post(receive_logs))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(ingest)
}

/// The two encodings OTLP/HTTP defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn of(headers: &HeaderMap) -> Result<Encoding, PushError> {
        let ct = header_value(headers, header::CONTENT_TYPE);
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
            "application/json" => Ok(Encoding::Json),
            other => Err(PushError::Unsupported(format!(
                "Content-Type {other:?}: OTLP/HTTP takes application/x-protobuf or application/json"
            ))),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// A request body in either encoding.
pub fn decode<T>(encoding: Encoding, body: &[u8]) -> Result<T, PushError>
where
    T: prost::Message + Default + serde::de::DeserializeOwned,
{
    match encoding {
        Encoding::Protobuf => T::decode(body)
            .map_err(|e| PushError::Invalid(format!("not an OTLP protobuf export request: {e}"))),
        // serde reads a struct from an array too; an export request is an
        // object.
        Encoding::Json if !body.trim_ascii_start().starts_with(b"{") => Err(PushError::Invalid(
            "not an OTLP JSON export request: the body is not a JSON object".into(),
        )),
        Encoding::Json => serde_json::from_slice(body)
            .map_err(|e| PushError::Invalid(format!("not an OTLP JSON export request: {e}"))),
    }
}

fn respond<T: prost::Message + serde::Serialize>(encoding: Encoding, answer: &T) -> Response {
    let body = match encoding {
        Encoding::Protobuf => answer.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(answer).unwrap_or_else(|_| b"{}".to_vec()),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

async fn receive_metrics(
    State(ingest): State<Ingest>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(ingest, headers, body, |i, encoding, raw| {
        metrics::take(i, encoding, raw).map(|answer| respond(encoding, &answer))
    })
    .await
}

async fn receive_logs(State(ingest): State<Ingest>, headers: HeaderMap, body: Bytes) -> Response {
    receive(ingest, headers, body, |i, encoding, raw| {
        logs::take(i, encoding, raw).map(|answer| respond(encoding, &answer))
    })
    .await
}

/// What both endpoints do around `take`: the token, the encoding, the
/// body's compression, and the answer.
async fn receive(
    ingest: Ingest,
    headers: HeaderMap,
    body: Bytes,
    take: fn(&Ingest, Encoding, &[u8]) -> Result<Response, PushError>,
) -> Response {
    let i = ingest.clone();
    let answer = run_blocking(move || {
        i.check_token(&headers)?;
        let encoding = Encoding::of(&headers)?;
        let raw = decoded_body(&headers, &body)?;
        take(&i, encoding, &raw)
    })
    .await;
    ingest.answer(SOURCE, answer)
}

/// Decoding and publishing block: off the server's workers.
async fn run_blocking(
    f: impl FnOnce() -> Result<Response, PushError> + Send + 'static,
) -> Result<Response, PushError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(PushError::Busy(e.to_string())))
}

/// An attribute value as text: strings as they are, the rest as JSON.
pub(crate) fn any_value_text(v: Option<&AnyValue>) -> String {
    use any_value::Value;
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Some(Value::ArrayValue(a)) => {
            let items: Vec<serde_json::Value> = a
                .values
                .iter()
                .map(|v| serde_json::Value::String(any_value_text(Some(v))))
                .collect();
            serde_json::Value::Array(items).to_string()
        }
        Some(Value::KvlistValue(kv)) => {
            let map: serde_json::Map<String, serde_json::Value> = kv
                .values
                .iter()
                .map(|p| {
                    (
                        p.key.clone(),
                        serde_json::Value::String(any_value_text(p.value.as_ref())),
                    )
                })
                .collect();
            serde_json::Value::Object(map).to_string()
        }
        Some(Value::StringValueStrindex(i)) => format!("strindex:{i}"),
    }
}

/// Attributes as (key, text) pairs, secret-looking values hashed.
pub(crate) fn attribute_pairs(attrs: &[KeyValue]) -> Vec<(String, String)> {
    attrs
        .iter()
        .map(|kv| {
            let text = any_value_text(kv.value.as_ref());
            (
                kv.key.clone(),
                crate::secrets::mask_text(crate::secrets::mask(&kv.key, text)),
            )
        })
        .collect()
}

/// The resource's `service.name`, or "".
pub(crate) fn service_name(resource: &[KeyValue]) -> String {
    resource
        .iter()
        .find(|kv| kv.key == "service.name")
        .map(|kv| any_value_text(kv.value.as_ref()))
        .unwrap_or_default()
}
