//! The store tables telemetry lands in: `metric_samples` (one row per
//! sample; labels as parallel key/value lists without `__name__`, and the
//! series id for cheap grouping) and `log_records` (the OpenTelemetry log
//! data model). Time is both a `timestamp` column (what SQL and Grafana
//! filter on; whole seconds in ClickHouse 18.16) and `timestamp_ms` (exact).

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder,
    ListBuilder, RecordBatch, StringBuilder, TimestampMillisecondBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;

use super::{LogRecord, METRIC_NAME_LABEL, is_stale_nan, prompb, series_id_of};
use crate::schema::{string_list, utc_ms};

pub const METRIC_SAMPLES: &str = "metric_samples";
pub const LOG_RECORDS: &str = "log_records";

pub static METRIC_SAMPLES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("metric_name", DataType::Utf8, false),
        string_list("label_keys"),
        string_list("label_values"),
        Field::new("series_id", DataType::UInt64, false),
        Field::new("timestamp", utc_ms(), false),
        Field::new("timestamp_ms", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
        // A staleness marker: the series ended here (`value` is NaN).
        Field::new("stale", DataType::Boolean, false),
        Field::new("service_name", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
    ]))
});

pub static LOG_RECORDS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("timestamp", utc_ms(), false),
        Field::new("timestamp_ms", DataType::Int64, false),
        Field::new("observed_timestamp_ms", DataType::Int64, false),
        Field::new("service_name", DataType::Utf8, false),
        Field::new("severity_text", DataType::Utf8, false),
        Field::new("severity_number", DataType::Int32, false),
        Field::new("body", DataType::Utf8, false),
        string_list("attribute_keys"),
        string_list("attribute_values"),
        string_list("resource_keys"),
        string_list("resource_values"),
        Field::new("trace_id", DataType::Utf8, false),
        Field::new("span_id", DataType::Utf8, false),
        Field::new("scope_name", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
    ]))
});

/// The service a series belongs to: its `service` label (OTLP's
/// `service.name`), else `service_name`, else its `job`.
fn service_of<'a>(labels: &[(&'a str, &'a str)]) -> &'a str {
    ["service", "service_name", "job"]
        .iter()
        .find_map(|n| labels.iter().find(|(name, _)| name == n))
        .map(|(_, value)| *value)
        .unwrap_or("")
}

/// `metric_samples` rows, built a request at a time.
pub struct MetricRows {
    name: StringBuilder,
    keys: ListBuilder<StringBuilder>,
    values: ListBuilder<StringBuilder>,
    series: UInt64Builder,
    at: TimestampMillisecondBuilder,
    at_ms: Int64Builder,
    value: Float64Builder,
    stale: BooleanBuilder,
    service: StringBuilder,
    source: StringBuilder,
    rows: usize,
}

impl Default for MetricRows {
    fn default() -> Self {
        Self::with_capacity(0, 0, [0; 5])
    }
}

impl MetricRows {
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Adds every float sample of a request. Series without a name are
    /// skipped and counted in the answer (a sender bug: the receivers
    /// refuse them before they reach the bus).
    pub fn push_request(&mut self, source: &str, req: &prompb::WriteRequest) -> usize {
        let mut nameless = 0;
        let mut labels = Vec::new();
        for ts in &req.timeseries {
            labels.clear();
            labels.extend(
                ts.labels
                    .iter()
                    .map(|l| (l.name.as_str(), l.value.as_str())),
            );
            nameless += self.push_series(source, &labels, &ts.samples);
        }
        nameless
    }

    /// `push_request` for a request read from the bus with its labels
    /// still in the payload. Every label is checked to be UTF-8 before any
    /// row is added, so a bad message adds nothing.
    pub fn push_shared_request(
        &mut self,
        source: &str,
        req: &prompb::SharedWriteRequest,
    ) -> Result<usize, String> {
        fn text(b: &[u8], i: usize) -> Result<&str, String> {
            std::str::from_utf8(b)
                .map_err(|e| format!("timeseries[{i}]: a label is not UTF-8: {e}"))
        }
        // Every series' labels, one after another: one allocation a request.
        let mut labels = Vec::new();
        for (i, ts) in req.timeseries.iter().enumerate() {
            for l in &ts.labels {
                labels.push((text(&l.name, i)?, text(&l.value, i)?));
            }
        }
        let mut nameless = 0;
        let mut rest = labels.as_slice();
        for ts in &req.timeseries {
            let (these, after) = rest.split_at(ts.labels.len());
            rest = after;
            nameless += self.push_series(source, these, &ts.samples);
        }
        Ok(nameless)
    }

    /// Adds a series' samples; answers how many were skipped for want of a
    /// metric name.
    fn push_series(
        &mut self,
        source: &str,
        labels: &[(&str, &str)],
        samples: &[prompb::Sample],
    ) -> usize {
        let Some((_, name)) = labels.iter().find(|(n, _)| *n == METRIC_NAME_LABEL) else {
            return samples.len();
        };
        let id = series_id_of(labels.iter().copied());
        let service = service_of(labels);
        for s in samples {
            self.name.append_value(name);
            for (n, v) in labels.iter().filter(|(n, _)| *n != METRIC_NAME_LABEL) {
                self.keys.values().append_value(n);
                self.values.values().append_value(v);
            }
            self.keys.append(true);
            self.values.append(true);
            self.series.append_value(id);
            self.at.append_value(s.timestamp);
            self.at_ms.append_value(s.timestamp);
            self.value.append_value(s.value);
            self.stale.append_value(is_stale_nan(s.value));
            self.service.append_value(service);
            self.source.append_value(source);
            self.rows += 1;
        }
        0
    }

    /// The rows gathered so far, as a batch. The builders start again
    /// sized like this batch: a steady stream makes batches alike, and
    /// growing from empty copied each column several times over.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let rows = std::mem::take(&mut self.rows);
        let next = Self::with_capacity(
            rows,
            self.keys.values().len(),
            [
                self.name.values_slice().len(),
                self.keys.values().values_slice().len(),
                self.values.values().values_slice().len(),
                self.service.values_slice().len(),
                self.source.values_slice().len(),
            ],
        );
        let mut full = std::mem::replace(self, next);
        let cols: Vec<ArrayRef> = vec![
            Arc::new(full.name.finish()),
            Arc::new(full.keys.finish()),
            Arc::new(full.values.finish()),
            Arc::new(full.series.finish()),
            Arc::new(full.at.finish()),
            Arc::new(full.at_ms.finish()),
            Arc::new(full.value.finish()),
            Arc::new(full.stale.finish()),
            Arc::new(full.service.finish()),
            Arc::new(full.source.finish()),
        ];
        RecordBatch::try_new(METRIC_SAMPLES_SCHEMA.clone(), cols)
    }

    /// Builders for `rows` samples carrying `labels` labels in all, with
    /// `text` bytes of names, label keys, label values, services and
    /// sources.
    fn with_capacity(rows: usize, labels: usize, text: [usize; 5]) -> Self {
        let [name, keys, values, service, source] = text;
        let list =
            |bytes| ListBuilder::with_capacity(StringBuilder::with_capacity(labels, bytes), rows);
        Self {
            name: StringBuilder::with_capacity(rows, name),
            keys: list(keys),
            values: list(values),
            series: UInt64Builder::with_capacity(rows),
            at: TimestampMillisecondBuilder::with_capacity(rows).with_timezone("+00:00"),
            at_ms: Int64Builder::with_capacity(rows),
            value: Float64Builder::with_capacity(rows),
            stale: BooleanBuilder::with_capacity(rows),
            service: StringBuilder::with_capacity(rows, service),
            source: StringBuilder::with_capacity(rows, source),
            rows: 0,
        }
    }
}

/// `log_records` rows.
pub struct LogRows {
    at: TimestampMillisecondBuilder,
    at_ms: Int64Builder,
    observed: Int64Builder,
    strings: [StringBuilder; 4],
    number: Int32Builder,
    lists: [ListBuilder<StringBuilder>; 4],
    ids: [StringBuilder; 4],
    rows: usize,
}

impl Default for LogRows {
    fn default() -> Self {
        Self {
            at: TimestampMillisecondBuilder::new().with_timezone("+00:00"),
            at_ms: Int64Builder::new(),
            observed: Int64Builder::new(),
            strings: std::array::from_fn(|_| StringBuilder::new()),
            number: Int32Builder::new(),
            lists: std::array::from_fn(|_| ListBuilder::new(StringBuilder::new())),
            ids: std::array::from_fn(|_| StringBuilder::new()),
            rows: 0,
        }
    }
}

impl LogRows {
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn push(&mut self, source: &str, r: &LogRecord) {
        self.at.append_value(r.timestamp_ms);
        self.at_ms.append_value(r.timestamp_ms);
        self.observed.append_value(r.observed_ms);
        // service_name, severity_text, (severity_number), body
        self.strings[0].append_value(&r.service_name);
        self.strings[1].append_value(&r.severity_text);
        self.number.append_value(r.severity_number);
        self.strings[2].append_value(&r.body);
        for (i, pairs) in [&r.attributes, &r.resource].into_iter().enumerate() {
            for (k, v) in pairs {
                self.lists[2 * i].values().append_value(k);
                self.lists[2 * i + 1].values().append_value(v);
            }
            self.lists[2 * i].append(true);
            self.lists[2 * i + 1].append(true);
        }
        for (b, v) in
            self.ids
                .iter_mut()
                .zip([&r.trace_id, &r.span_id, &r.scope_name, &source.to_string()])
        {
            b.append_value(v);
        }
        self.rows += 1;
    }

    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        self.rows = 0;
        let [service, severity, body, _] = &mut self.strings;
        let [ak, av, rk, rv] = &mut self.lists;
        let [trace, span, scope, source] = &mut self.ids;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.at.finish()),
            Arc::new(self.at_ms.finish()),
            Arc::new(self.observed.finish()),
            Arc::new(service.finish()),
            Arc::new(severity.finish()),
            Arc::new(self.number.finish()),
            Arc::new(body.finish()),
            Arc::new(ak.finish()),
            Arc::new(av.finish()),
            Arc::new(rk.finish()),
            Arc::new(rv.finish()),
            Arc::new(trace.finish()),
            Arc::new(span.finish()),
            Arc::new(scope.finish()),
            Arc::new(source.finish()),
        ];
        RecordBatch::try_new(LOG_RECORDS_SCHEMA.clone(), cols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_match_their_schemas() {
        let mut m = MetricRows::default();
        let req = prompb::WriteRequest {
            timeseries: vec![prompb::TimeSeries {
                labels: vec![
                    prompb::Label {
                        name: "__name__".into(),
                        value: "up".into(),
                    },
                    prompb::Label {
                        name: "job".into(),
                        value: "api".into(),
                    },
                ],
                samples: vec![prompb::Sample {
                    value: super::super::stale_nan(),
                    timestamp: 5,
                }],
                ..Default::default()
            }],
            metadata: vec![],
        };
        assert_eq!(m.push_request("scrape", &req), 0);
        let b = m.finish().unwrap();
        assert_eq!(b.num_rows(), 1);
        let stale = b.column_by_name("stale").unwrap();
        assert!(
            stale
                .as_any()
                .downcast_ref::<arrow::array::BooleanArray>()
                .unwrap()
                .value(0)
        );
        let mut l = LogRows::default();
        l.push(
            "app.log",
            &LogRecord {
                body: "hi".into(),
                attributes: vec![("k".into(), "v".into())],
                ..Default::default()
            },
        );
        assert_eq!(l.finish().unwrap().num_rows(), 1);
    }
}

#[cfg(test)]
mod shared_tests {
    use super::*;
    use prost::Message;

    fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> prompb::TimeSeries {
        prompb::TimeSeries {
            labels: labels
                .iter()
                .map(|(n, v)| prompb::Label::new(*n, *v))
                .collect(),
            samples: samples
                .iter()
                .map(|&(timestamp, value)| prompb::Sample { value, timestamp })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn shared_requests_make_the_rows_owned_ones_make() {
        let req = prompb::WriteRequest {
            timeseries: vec![
                series(
                    &[
                        ("__name__", "http_requests_total"),
                        ("job", "api"),
                        ("code", "200"),
                    ],
                    &[(1000, 3.0), (2000, 4.5)],
                ),
                series(&[("job", "nameless")], &[(1000, 1.0)]),
                series(
                    &[("__name__", "up"), ("service", "checkout"), ("zone", "é")],
                    &[(1000, super::super::stale_nan())],
                ),
            ],
            metadata: vec![],
        };
        let mut owned = MetricRows::default();
        assert_eq!(owned.push_request("remote_write", &req), 1);
        let payload: Arc<[u8]> = req.encode_to_vec().into();
        let shared = crate::telemetry::decode_metrics_shared(&payload).unwrap();
        let mut rows = MetricRows::default();
        assert_eq!(rows.push_shared_request("remote_write", &shared), Ok(1));
        let (a, b) = (owned.finish().unwrap(), rows.finish().unwrap());
        assert_eq!(b.num_rows(), 3);
        // NaN is not equal to itself: compare everything else, then the marker.
        for (i, f) in a.schema().fields().iter().enumerate() {
            if f.name() != "value" {
                assert_eq!(a.column(i), b.column(i), "{}", f.name());
            }
        }
        let service = b.column_by_name("service_name").unwrap();
        let service = service
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        assert_eq!(service.value(0), "api");
        assert_eq!(service.value(2), "checkout");
    }

    #[test]
    fn a_label_that_is_not_utf8_adds_nothing() {
        let good = series(&[("__name__", "up")], &[(1, 1.0)]);
        let mut payload = prompb::WriteRequest {
            timeseries: vec![
                good.clone(),
                series(&[("__name__", "up"), ("k", "vv")], &[(1, 1.0)]),
            ],
            metadata: vec![],
        }
        .encode_to_vec();
        // The last label value ("vv") becomes two bytes that are not UTF-8.
        let at = payload.windows(2).rposition(|w| w == b"vv").unwrap();
        payload[at] = 0xff;
        payload[at + 1] = 0xfe;
        let shared = crate::telemetry::decode_metrics_shared(&payload.into()).unwrap();
        let mut rows = MetricRows::default();
        let err = rows
            .push_shared_request("remote_write", &shared)
            .unwrap_err();
        assert!(
            err.contains("timeseries[1]") && err.contains("UTF-8"),
            "{err}"
        );
        assert!(rows.is_empty());
        assert_eq!(rows.finish().unwrap().num_rows(), 0);
    }
}
