//! OTLP metrics as Prometheus series, the way Prometheus's own OTLP
//! translation names them:
//! - names: characters outside `[a-zA-Z0-9_:]` become `_`; the unit is a
//!   suffix (`s` → `_seconds`, `By` → `_bytes`, `1` → `_ratio` on gauges);
//!   monotonic sums are counters and end in `_total`;
//! - labels: data-point attributes, sanitised the same way (secret-looking
//!   values hashed); from the resource, `service.name` → `service`,
//!   `service.namespace` → `service_namespace`, `service.instance.id` →
//!   `instance`, and `job` = `[namespace/]name`;
//! - gauges and sums: one sample per point; non-monotonic sums are gauges;
//! - histograms: `_bucket{le}` (cumulative, `+Inf` = count), `_sum`,
//!   `_count`;
//! - exponential histograms: the same classic series, with one `le` per
//!   populated bucket at that bucket's upper bound (`base^(index+1)`,
//!   `base = 2^(2^-scale)`; negative buckets at `-base^index`; the zero
//!   bucket at `zero_threshold`), so `histogram_quantile` reads them at the
//!   resolution the sender chose;
//! - summaries: `{quantile}` series, `_sum`, `_count`;
//! - a point flagged "no recorded value" is a stale marker.
//!
//! Delta temporality has no Prometheus form: such points are refused and
//! counted in the answer's `partial_success` (configure the sender's
//! exporter for cumulative temporality).

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogramDataPoint, HistogramDataPoint, SummaryDataPoint,
    metric::Data, number_data_point,
};

use driftline_pipeline::telemetry::{
    METRIC_NAME_LABEL, MetricBatch, normalise_labels, prompb, stale_nan,
};

use super::{Encoding, SOURCE, any_value_text, attribute_pairs, decode, service_name};
use crate::metrics::metrics;
use crate::push::{Ingest, PushError};

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const NO_RECORDED_VALUE: u32 = 1;

pub(super) fn take(
    ingest: &Ingest,
    encoding: Encoding,
    raw: &[u8],
) -> Result<ExportMetricsServiceResponse, PushError> {
    let req: ExportMetricsServiceRequest = decode(encoding, raw)?;
    let (batch, rejected) = metric_batch(&req, driftline_pipeline::now_ms());
    ingest.publish_metrics(SOURCE, batch)?;
    let partial_success = (rejected > 0).then(|| {
        metrics()
            .ingest_rejected
            .with_label_values(&[SOURCE, "delta"])
            .inc_by(rejected as u64);
        ExportMetricsPartialSuccess {
            rejected_data_points: rejected as i64,
            error_message: "delta temporality is not stored; export cumulative temporality".into(),
        }
    });
    Ok(ExportMetricsServiceResponse { partial_success })
}

/// A name or label name in Prometheus's alphabet.
fn sanitise(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    }
    out
}

fn unit_suffix(unit: &str, gauge: bool) -> Option<&'static str> {
    Some(match unit {
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "min" => "minutes",
        "h" => "hours",
        "d" => "days",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "By/s" => "bytes_per_second",
        "%" => "percent",
        "Hz" => "hertz",
        "V" => "volts",
        "W" => "watts",
        "A" => "amperes",
        "J" => "joules",
        "Cel" => "celsius",
        "1" if gauge => "ratio",
        _ => return None,
    })
}

/// The series name of a metric.
fn metric_name(name: &str, unit: &str, gauge: bool, counter: bool) -> String {
    let mut n = sanitise(name);
    if let Some(suffix) = unit_suffix(unit, gauge)
        && !n.ends_with(suffix)
    {
        n = format!("{n}_{suffix}");
    }
    if counter && !n.ends_with("_total") {
        n.push_str("_total");
    }
    n
}

/// The labels every series of one resource carries.
fn resource_labels(resource: &[KeyValue]) -> Vec<prompb::Label> {
    let get = |key: &str| {
        resource
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| any_value_text(kv.value.as_ref()))
            .filter(|v| !v.is_empty())
    };
    let mut labels = Vec::new();
    let mut add = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            labels.push(prompb::Label {
                name: name.into(),
                value,
            });
        }
    };
    let service = Some(service_name(resource)).filter(|s| !s.is_empty());
    let namespace = get("service.namespace");
    add(
        "job",
        service.as_ref().map(|s| match &namespace {
            Some(ns) => format!("{ns}/{s}"),
            None => s.clone(),
        }),
    );
    add("service", service);
    add("service_namespace", namespace);
    add("instance", get("service.instance.id"));
    labels
}

/// Series under construction for one request.
struct Series<'a> {
    out: Vec<prompb::TimeSeries>,
    base: &'a [prompb::Label],
}

impl Series<'_> {
    fn push(
        &mut self,
        name: &str,
        attrs: &[KeyValue],
        extra: Option<(&str, String)>,
        value: f64,
        ts_ms: i64,
    ) {
        let mut labels: Vec<prompb::Label> = self.base.to_vec();
        for (k, v) in attribute_pairs(attrs) {
            let k = sanitise(&k);
            // A point attribute overrides a resource label of the same name.
            labels.retain(|l| l.name != k);
            labels.push(prompb::Label { name: k, value: v });
        }
        if let Some((k, v)) = extra {
            labels.retain(|l| l.name != k);
            labels.push(prompb::Label {
                name: k.into(),
                value: v,
            });
        }
        labels.push(prompb::Label {
            name: METRIC_NAME_LABEL.into(),
            value: name.into(),
        });
        if normalise_labels(&mut labels).is_err() {
            return;
        }
        self.out.push(prompb::TimeSeries {
            labels,
            samples: vec![prompb::Sample {
                value,
                timestamp: ts_ms,
            }],
            ..Default::default()
        });
    }
}

fn ms(nanos: u64, now_ms: i64) -> i64 {
    if nanos == 0 {
        now_ms
    } else {
        (nanos / 1_000_000) as i64
    }
}

fn le(bound: f64) -> String {
    if bound == f64::INFINITY {
        "+Inf".into()
    } else {
        format!("{bound}")
    }
}

fn histogram(s: &mut Series<'_>, name: &str, p: &HistogramDataPoint, now_ms: i64) {
    let ts = ms(p.time_unix_nano, now_ms);
    let stale = p.flags & NO_RECORDED_VALUE != 0;
    let v = |x: f64| if stale { stale_nan() } else { x };
    let mut cumulative = 0u64;
    for (i, count) in p.bucket_counts.iter().enumerate() {
        cumulative += count;
        let bound = p.explicit_bounds.get(i).copied().unwrap_or(f64::INFINITY);
        if bound == f64::INFINITY {
            break;
        }
        s.push(
            &format!("{name}_bucket"),
            &p.attributes,
            Some(("le", le(bound))),
            v(cumulative as f64),
            ts,
        );
    }
    s.push(
        &format!("{name}_bucket"),
        &p.attributes,
        Some(("le", "+Inf".into())),
        v(p.count as f64),
        ts,
    );
    totals(s, name, &p.attributes, p.sum, p.count, stale, ts);
}

/// A histogram's or summary's `_sum` (when it has one) and `_count`.
fn totals(
    s: &mut Series<'_>,
    name: &str,
    attrs: &[KeyValue],
    sum: Option<f64>,
    count: u64,
    stale: bool,
    ts: i64,
) {
    let v = |x: f64| if stale { stale_nan() } else { x };
    if let Some(sum) = sum {
        s.push(&format!("{name}_sum"), attrs, None, v(sum), ts);
    }
    s.push(&format!("{name}_count"), attrs, None, v(count as f64), ts);
}

fn summary(s: &mut Series<'_>, name: &str, p: &SummaryDataPoint, now_ms: i64) {
    let ts = ms(p.time_unix_nano, now_ms);
    let stale = p.flags & NO_RECORDED_VALUE != 0;
    for q in &p.quantile_values {
        let value = if stale { stale_nan() } else { q.value };
        s.push(
            name,
            &p.attributes,
            Some(("quantile", le(q.quantile))),
            value,
            ts,
        );
    }
    totals(s, name, &p.attributes, Some(p.sum), p.count, stale, ts);
}

/// An exponential histogram as classic buckets (see the module comment).
pub(crate) fn exponential_buckets(p: &ExponentialHistogramDataPoint) -> Vec<(f64, u64)> {
    let base = 2f64.powf(2f64.powi(-p.scale));
    let mut out = Vec::new();
    let mut cumulative = 0u64;
    if let Some(neg) = &p.negative {
        // Most negative first: index offset+k covers [-base^(i+1), -base^i).
        for (k, count) in neg.bucket_counts.iter().enumerate().rev() {
            cumulative += count;
            if *count > 0 {
                let index = neg.offset as i64 + k as i64;
                out.push((-base.powf(index as f64), cumulative));
            }
        }
    }
    cumulative += p.zero_count;
    if p.zero_count > 0 {
        out.push((p.zero_threshold, cumulative));
    }
    if let Some(pos) = &p.positive {
        for (k, count) in pos.bucket_counts.iter().enumerate() {
            cumulative += count;
            if *count > 0 {
                let index = pos.offset as i64 + k as i64;
                out.push((base.powf((index + 1) as f64), cumulative));
            }
        }
    }
    out
}

/// The series of a request, and how many points were refused (delta).
pub fn metric_batch(req: &ExportMetricsServiceRequest, now_ms: i64) -> (MetricBatch, usize) {
    let delta = AggregationTemporality::Delta as i32;
    let mut rejected = 0;
    let mut all = Vec::new();
    for rm in &req.resource_metrics {
        let resource: &[KeyValue] = rm.resource.as_ref().map_or(&[], |r| &r.attributes);
        let base = resource_labels(resource);
        let mut s = Series {
            out: Vec::new(),
            base: &base,
        };
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let Some(data) = &m.data else { continue };
                // Delta points (of counters and histograms) have no
                // Prometheus form: refused, and counted for the answer.
                let refused = match data {
                    Data::Sum(x) if x.is_monotonic && x.aggregation_temporality == delta => {
                        x.data_points.len()
                    }
                    Data::Histogram(x) if x.aggregation_temporality == delta => x.data_points.len(),
                    Data::ExponentialHistogram(x) if x.aggregation_temporality == delta => {
                        x.data_points.len()
                    }
                    _ => 0,
                };
                if refused > 0 {
                    rejected += refused;
                    continue;
                }
                match data {
                    Data::Gauge(g) => {
                        let name = metric_name(&m.name, &m.unit, true, false);
                        number_points(&mut s, &name, &g.data_points, now_ms);
                    }
                    Data::Sum(sum) => {
                        let name =
                            metric_name(&m.name, &m.unit, !sum.is_monotonic, sum.is_monotonic);
                        number_points(&mut s, &name, &sum.data_points, now_ms);
                    }
                    Data::Histogram(h) => {
                        let name = metric_name(&m.name, &m.unit, false, false);
                        for p in &h.data_points {
                            histogram(&mut s, &name, p, now_ms);
                        }
                    }
                    Data::ExponentialHistogram(h) => {
                        let name = metric_name(&m.name, &m.unit, false, false);
                        for p in &h.data_points {
                            let buckets = exponential_buckets(p);
                            let classic = HistogramDataPoint {
                                attributes: p.attributes.clone(),
                                time_unix_nano: p.time_unix_nano,
                                count: p.count,
                                sum: p.sum,
                                bucket_counts: buckets
                                    .iter()
                                    .scan(0u64, |prev, (_, c)| {
                                        let n = c - *prev;
                                        *prev = *c;
                                        Some(n)
                                    })
                                    .collect(),
                                explicit_bounds: buckets.iter().map(|(b, _)| *b).collect(),
                                flags: p.flags,
                                ..Default::default()
                            };
                            histogram(&mut s, &name, &classic, now_ms);
                        }
                    }
                    Data::Summary(sm) => {
                        let name = metric_name(&m.name, &m.unit, false, false);
                        for p in &sm.data_points {
                            summary(&mut s, &name, p, now_ms);
                        }
                    }
                }
            }
        }
        all.extend(s.out);
    }
    (
        MetricBatch {
            source: SOURCE.into(),
            series: all,
        },
        rejected,
    )
}

fn number_points(
    s: &mut Series<'_>,
    name: &str,
    points: &[opentelemetry_proto::tonic::metrics::v1::NumberDataPoint],
    now_ms: i64,
) {
    for p in points {
        let value = if p.flags & NO_RECORDED_VALUE != 0 {
            stale_nan()
        } else {
            match p.value {
                Some(number_data_point::Value::AsDouble(d)) => d,
                Some(number_data_point::Value::AsInt(i)) => i as f64,
                None => continue,
            }
        };
        s.push(
            name,
            &p.attributes,
            None,
            value,
            ms(p.time_unix_nano, now_ms),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;

    #[test]
    fn names_follow_prometheus_translation() {
        assert_eq!(
            metric_name("http.server.duration", "s", false, false),
            "http_server_duration_seconds"
        );
        assert_eq!(metric_name("requests", "1", false, true), "requests_total");
        assert_eq!(
            metric_name("cpu.utilization", "1", true, false),
            "cpu_utilization_ratio"
        );
        assert_eq!(metric_name("queue", "{items}", true, false), "queue");
        assert_eq!(sanitise("2xx.count"), "key_2xx_count");
    }

    #[test]
    fn exponential_buckets_become_cumulative_upper_bounds() {
        // scale 0: base 2; positive offset 1 → buckets (2,4], (4,8].
        let p = ExponentialHistogramDataPoint {
            scale: 0,
            count: 6,
            zero_count: 1,
            positive: Some(Buckets {
                offset: 1,
                bucket_counts: vec![2, 3],
            }),
            ..Default::default()
        };
        assert_eq!(exponential_buckets(&p), vec![(0.0, 1), (4.0, 3), (8.0, 6)]);
    }
}
