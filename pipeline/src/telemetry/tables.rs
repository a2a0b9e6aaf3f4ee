//! The store tables telemetry lands in: `metric_samples` (one row per
//! sample; labels as parallel key/value lists without `__name__`, and the
//! series id for cheap grouping) and `log_records` (the OpenTelemetry log
//! data model). Time is both a `timestamp` column (what SQL and Grafana
//! filter on; whole seconds in ClickHouse 18.16) and `timestamp_ms` (exact).

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, ListBuilder, RecordBatch,
    StringBuilder, TimestampMillisecondBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;

use super::{LogRecord, METRIC_NAME_LABEL, is_stale_nan, prompb, series_id};
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
fn service_of(labels: &[prompb::Label]) -> &str {
    ["service", "service_name", "job"]
        .iter()
        .find_map(|n| labels.iter().find(|l| l.name == *n))
        .map(|l| l.value.as_str())
        .unwrap_or("")
}

fn lists() -> (ListBuilder<StringBuilder>, ListBuilder<StringBuilder>) {
    (
        ListBuilder::new(StringBuilder::new()),
        ListBuilder::new(StringBuilder::new()),
    )
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
        let (keys, values) = lists();
        Self {
            name: StringBuilder::new(),
            keys,
            values,
            series: UInt64Builder::new(),
            at: TimestampMillisecondBuilder::new().with_timezone("+00:00"),
            at_ms: Int64Builder::new(),
            value: Float64Builder::new(),
            stale: BooleanBuilder::new(),
            service: StringBuilder::new(),
            source: StringBuilder::new(),
            rows: 0,
        }
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
        for ts in &req.timeseries {
            let Some(name) = ts.labels.iter().find(|l| l.name == METRIC_NAME_LABEL) else {
                nameless += ts.samples.len();
                continue;
            };
            let id = series_id(&ts.labels);
            let service = service_of(&ts.labels);
            for s in &ts.samples {
                self.name.append_value(&name.value);
                for l in ts.labels.iter().filter(|l| l.name != METRIC_NAME_LABEL) {
                    self.keys.values().append_value(&l.name);
                    self.values.values().append_value(&l.value);
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
        }
        nameless
    }

    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        self.rows = 0;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.name.finish()),
            Arc::new(self.keys.finish()),
            Arc::new(self.values.finish()),
            Arc::new(self.series.finish()),
            Arc::new(self.at.finish()),
            Arc::new(self.at_ms.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.stale.finish()),
            Arc::new(self.service.finish()),
            Arc::new(self.source.finish()),
        ];
        RecordBatch::try_new(METRIC_SAMPLES_SCHEMA.clone(), cols)
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
