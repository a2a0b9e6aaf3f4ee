//! The process's Prometheus metrics, named by Prometheus conventions
//! (`driftline_` prefix, base units, `_total` counters). One registry for
//! the whole process, which `/metrics` renders; each crate declares and
//! registers its own metrics on it (`counter`, `gauge`, `histogram`), so
//! the spine knows none of its spokes' metrics. Here: the bus and stage
//! metrics every stage shares.

use std::sync::LazyLock;

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let r = Registry::new();
    let build = IntGaugeVec::new(
        Opts::new(
            "driftline_build_info",
            "Always 1; labels carry the version.",
        ),
        &["version"],
    )
    .expect("valid metric");
    build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    let _ = r.register(Box::new(build));
    r
});

/// The registry every crate registers its metrics on.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

fn register<T: prometheus::core::Collector + Clone + 'static>(c: T) -> T {
    // Names are fixed and distinct across the crates, so registration
    // cannot collide.
    let _ = REGISTRY.register(Box::new(c.clone()));
    c
}

/// A counter family, registered.
pub fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
}

/// A gauge family, registered.
pub fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
}

/// A gauge family of fractional values (ratios, rates), registered.
pub fn float_gauge(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    register(GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
}

/// A histogram family with these bucket bounds, registered.
pub fn histogram(name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    register(
        HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
            .expect("valid metric"),
    )
}

/// Every registered metric in the text exposition format.
pub fn render() -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&REGISTRY.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// The bus and stage metrics.
pub struct Metrics {
    /// Messages consumed, by topic.
    pub records_in: IntCounterVec,
    /// Messages produced (acknowledged), by topic.
    pub records_out: IntCounterVec,
    /// Messages between a group's position and the partition's end.
    pub consumer_lag: IntGaugeVec,
    /// Time to process one polled batch, by stage.
    pub batch_seconds: HistogramVec,
    /// Records sent to `driftline.dlq`, by the topic or collector they came from.
    pub dead_letters: IntCounterVec,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    records_in: counter(
        "driftline_bus_records_in_total",
        "Messages consumed from the bus.",
        &["topic"],
    ),
    records_out: counter(
        "driftline_bus_records_out_total",
        "Messages produced to the bus and acknowledged.",
        &["topic"],
    ),
    consumer_lag: gauge(
        "driftline_consumer_lag_records",
        "Messages between the consumer group's position and the end of the partition.",
        &["group", "topic", "partition"],
    ),
    batch_seconds: histogram(
        "driftline_batch_duration_seconds",
        "Time to process one polled batch, from poll to commit.",
        &["stage"],
        vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ],
    ),
    dead_letters: counter(
        "driftline_dead_letters_total",
        "Records rejected to the dead-letter topic.",
        &["source"],
    ),
});

/// The bus and stage metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}
