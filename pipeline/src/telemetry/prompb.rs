//! Prometheus remote-write 1.0 messages (`prompb/remote.proto` and
//! `types.proto`), as prost derives: the body Prometheus POSTs to
//! `/api/v1/write`, and the payload of `driftline.metrics`. No maintained
//! crate publishes them for the prost that `opentelemetry-proto` uses, and
//! the spec fixes them: tags and types follow it field for field. Fields
//! driftline does not store (exemplars, native histograms) are declared so
//! they are counted, not silently skipped.

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Sent by Prometheus in requests of their own; not stored.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`: labels sorted by name, `__name__` among them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    /// Native histograms: refused (the stores hold float samples).
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// Only its presence matters: driftline does not store native histograms.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// A `driftline.metrics` payload as the store writer reads it: the wire
/// format of `WriteRequest`, with each label's text left in the payload
/// (a `Bytes` slice shares it) rather than copied into two `String`s per
/// label and sample. Fields the writer does not store are skipped.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SharedWriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<SharedTimeSeries>,
}

/// `prometheus.TimeSeries`, its labels shared (`SharedWriteRequest`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SharedTimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<SharedLabel>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`, undecoded: a protobuf `string` and `bytes` share
/// one wire encoding, and the reader checks the UTF-8 itself.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SharedLabel {
    #[prost(bytes = "bytes", tag = "1")]
    pub name: bytes::Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub value: bytes::Bytes,
}
