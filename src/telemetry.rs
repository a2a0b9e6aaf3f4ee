//! driftline's own logs and traces: `tracing` events to stderr (text, or
//! JSON lines carrying the trace and span ids of the span they happen in),
//! and, when an OTLP endpoint is set (`[telemetry] otlp_endpoint`,
//! `run --otlp-endpoint`), the stages' spans (batch → take/decode →
//! flush/detect → publish → commit, and notify) exported over OTLP/HTTP
//! protobuf to a collector.

use std::fmt;
use std::io::IsTerminal;

use opentelemetry::trace::{TraceContextExt, TracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::format::{DefaultFields, Format, Full, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// `[telemetry]` in driftline.toml.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// An OTLP/HTTP receiver (`http://host:4318`); spans go to
    /// `{endpoint}/v1/traces`. Unset: no spans are exported.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans [default: driftline].
    pub service_name: Option<String>,
}

/// Flushes and stops the span exporter when dropped.
pub struct Guard(Option<opentelemetry_sdk::trace::SdkTracerProvider>);

impl Guard {
    pub fn none() -> Self {
        Guard(None)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("warning: spans not all exported: {e}");
        }
    }
}

/// The trace and span ids of the current span, when a trace is exported.
fn current_ids() -> Option<(String, String)> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

/// A formatter that adds the current trace and span ids to what `inner`
/// writes: two more fields of a JSON line, or `trace_id=… span_id=…` at
/// the end of a text line.
struct WithTraceIds<F> {
    inner: F,
    json: bool,
    /// Spans are exported (else there are no ids to look up, and no event
    /// pays for the lookup).
    traced: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let Some((trace, span)) = self.traced.then(current_ids).flatten() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.trim_end_matches('\n');
        if self.json && body.ends_with('}') {
            let open = &body[..body.len() - 1];
            writeln!(
                writer,
                "{open},\"trace_id\":\"{trace}\",\"span_id\":\"{span}\"}}"
            )
        } else {
            writeln!(writer, "{body} trace_id={trace} span_id={span}")
        }
    }
}

fn exporter_endpoint(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

/// The stderr layer: text (coloured on a terminal) or JSON lines, with the
/// trace ids when spans are exported (`traced`).
fn fmt_layer<S>(json: bool, traced: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let ansi = !json && std::io::stderr().is_terminal();
    if json {
        tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(WithTraceIds {
                inner: Format::<Full>::default().json(),
                json: true,
                traced,
            })
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .fmt_fields(DefaultFields::new())
            .event_format(WithTraceIds {
                inner: Format::<Full>::default().with_ansi(ansi),
                json: false,
                traced,
            })
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .boxed()
    }
}

/// Installs the process's logging (and span export, when `telemetry`
/// names an endpoint). `level` filters the logs only: stage spans are
/// exported whatever it says.
pub fn init(level: &str, json: bool, telemetry: Option<&TelemetryConfig>) -> anyhow::Result<Guard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let endpoint = telemetry.and_then(|t| t.otlp_endpoint.clone());
    let Some(endpoint) = endpoint else {
        // One filter for the whole subscriber. As a per-layer filter, with
        // `RUST_LOG=info,x=debug`, `run` on Kafka lost the info events of
        // the threads librdkafka logs on ("partitions assigned"): likely
        // tracing's per-layer filter state (tokio-rs/tracing#2704).
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt_layer(json, false))
            .try_init()?;
        return Ok(Guard(None));
    };
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    // The exporter's blocking HTTP client wants a TLS provider even for http://.
    let _ = driftline_pipeline::http_client();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(exporter_endpoint(&endpoint))
        .build()?;
    let name = telemetry
        .and_then(|t| t.service_name.clone())
        .unwrap_or_else(|| "driftline".into());
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(name)
                .build(),
        )
        .build();
    let tracer = provider.tracer("driftline");
    // The stages' own spans, at info, from driftline's crates only.
    let spans = tracing_subscriber::filter::Targets::new()
        .with_target("driftline", tracing::Level::INFO)
        .with_target("driftline_pipeline", tracing::Level::INFO)
        .with_target("driftline_detectors", tracing::Level::INFO)
        .with_target("driftline_alerts", tracing::Level::INFO)
        .with_target("driftline_collectors", tracing::Level::INFO);
    // Spans are exported whatever the log level says: each layer filters
    // for itself.
    tracing_subscriber::registry()
        .with(fmt_layer(json, true).with_filter(filter))
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(spans),
        )
        .try_init()?;
    tracing::info!(endpoint = %exporter_endpoint(&endpoint), "exporting spans over OTLP");
    Ok(Guard(Some(provider)))
}
