//! OTLP/HTTP in, end to end: metrics and logs as protobuf (gzip) and as
//! JSON land in `metric_samples` and `log_records` with the values, names
//! and labels the mapping documents; a body that does not decode is a 400
//! and a dead letter.

mod common;

use std::io::Write;

use common::{Service, http_post_bytes, sql_rows, wait_for};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service)],
        ..Default::default()
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn store(dir: &std::path::Path) -> Vec<String> {
    vec!["--data-dir".into(), dir.display().to_string()]
}

#[test]
fn otlp_protobuf_and_json_metrics_and_logs_land() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let svc = Service::start_ready(&["--data-dir", &data.display().to_string()], dir.path());
    let now_ns = driftline_pipeline::now_ms() as u64 * 1_000_000;

    // Protobuf, gzip: a monotonic sum and a histogram.
    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("checkout"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    Metric {
                        name: "http.server.requests".into(),
                        unit: "1".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![NumberDataPoint {
                                attributes: vec![kv("http.route", "/pay")],
                                time_unix_nano: now_ns,
                                value: Some(number_data_point::Value::AsInt(42)),
                                ..Default::default()
                            }],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "http.server.duration".into(),
                        unit: "s".into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                time_unix_nano: now_ns,
                                count: 10,
                                sum: Some(2.5),
                                bucket_counts: vec![4, 5, 1],
                                explicit_bounds: vec![0.1, 0.5],
                                ..Default::default()
                            }],
                            aggregation_temporality: 2,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let (code, head, _) = http_post_bytes(
        &svc.listen,
        "/v1/metrics",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(&metrics.encode_to_vec()),
    )
    .unwrap();
    assert_eq!(code, 200, "{head}");
    assert!(head.contains("application/x-protobuf"), "{head}");

    // JSON: a gauge (as the OTLP JSON encoding writes it) and a log.
    let json_metric = format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"cart"}}}}]}},
        "scopeMetrics":[{{"metrics":[{{"name":"queue.depth","unit":"{{items}}","gauge":{{"dataPoints":[
        {{"timeUnixNano":"{now_ns}","asDouble":7.5,"attributes":[{{"key":"queue","value":{{"stringValue":"orders"}}}}]}}]}}}}]}}]}}]}}"#
    );
    let (code, _, body) = http_post_bytes(
        &svc.listen,
        "/v1/metrics",
        &[("Content-Type", "application/json")],
        json_metric.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let json_log = format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"cart"}}}}]}},
        "scopeLogs":[{{"logRecords":[{{"timeUnixNano":"{now_ns}","severityNumber":13,"severityText":"WARN",
        "body":{{"stringValue":"slow checkout"}},"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}}]}}]}}]}}"#
    );
    let (code, _, body) = http_post_bytes(
        &svc.listen,
        "/v1/logs",
        &[("Content-Type", "application/json")],
        json_log.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");

    // A protobuf log with a secret-looking attribute.
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("checkout"),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: now_ns,
                    severity_number: 17,
                    severity_text: "ERROR".into(),
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(
                            "payment declined; retried with password=swordfish-77".into(),
                        )),
                    }),
                    attributes: vec![
                        kv("db.password", "hunter2"),
                        kv("order", "A-1"),
                        kv("request", r#"{"card": "visa", "api_key": "k-998877"}"#),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let (code, _, body) = http_post_bytes(
        &svc.listen,
        "/v1/logs",
        &[("Content-Type", "application/x-protobuf")],
        &logs.encode_to_vec(),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");

    // Not OTLP: 400 and a dead letter; an unknown content type: 415.
    let (code, _, body) = http_post_bytes(
        &svc.listen,
        "/v1/logs",
        &[("Content-Type", "application/json")],
        b"{\"resourceLogs\": 5}",
    )
    .unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("OTLP JSON"), "{body}");
    let (code, _, _) = http_post_bytes(
        &svc.listen,
        "/v1/metrics",
        &[("Content-Type", "text/plain")],
        b"x",
    )
    .unwrap();
    assert_eq!(code, 415);
    assert!(svc.stop().success());

    let value = |q: &str| -> Vec<serde_json::Value> { sql_rows(&store(&data), q) };
    let v = value(
        "SELECT value, service_name FROM metric_samples WHERE metric_name = 'http_server_requests_total'",
    );
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0]["value"].as_f64(), Some(42.0));
    assert_eq!(v[0]["service_name"], "checkout");
    let buckets = value(
        "SELECT value FROM metric_samples WHERE metric_name = 'http_server_duration_seconds_bucket' ORDER BY value",
    );
    let counts: Vec<f64> = buckets.iter().filter_map(|r| r["value"].as_f64()).collect();
    assert_eq!(counts, vec![4.0, 9.0, 10.0]);
    let sum = value(
        "SELECT value FROM metric_samples WHERE metric_name = 'http_server_duration_seconds_sum'",
    );
    assert_eq!(sum[0]["value"].as_f64(), Some(2.5));
    let gauge = value(
        "SELECT value, label_keys, label_values FROM metric_samples WHERE metric_name = 'queue_depth'",
    );
    assert_eq!(gauge[0]["value"].as_f64(), Some(7.5));
    let text = gauge[0].to_string();
    assert!(
        text.contains("\"service\"") && text.contains("\"cart\"") && text.contains("\"orders\""),
        "{text}"
    );

    let logs = value(
        "SELECT service_name, severity_text, severity_number, body, trace_id, span_id, attribute_values \
         FROM log_records ORDER BY severity_number",
    );
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert_eq!(logs[0]["body"], "slow checkout");
    assert_eq!(logs[0]["service_name"], "cart");
    assert_eq!(logs[0]["trace_id"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(logs[0]["span_id"], "eee19b7ec3c1b174");
    assert_eq!(logs[1]["severity_number"].as_i64(), Some(17));
    // Secrets named as attributes, written inside the body or inside an
    // attribute's text are hashed; the rest is kept.
    let body = logs[1]["body"].as_str().unwrap();
    assert!(
        body.starts_with("payment declined; retried with password=sha256:"),
        "{body}"
    );
    let attrs = logs[1]["attribute_values"].to_string();
    assert!(attrs.contains("A-1") && attrs.contains("visa"), "{attrs}");
    let everything = value("SELECT * FROM log_records");
    let everything = serde_json::to_string(&everything).unwrap();
    for secret in ["hunter2", "swordfish-77", "k-998877"] {
        assert!(
            !everything.contains(secret),
            "{secret} stored: {everything}"
        );
    }
    let dead = value("SELECT reason FROM dead_letters WHERE source = 'otlp'");
    assert_eq!(dead.len(), 1, "{dead:?}");
}

/// rotel, the OTLP collector test-stack.sh installs, started with `args`
/// and its HTTP receiver on a free port; `None` (after `no_peer`) without it.
struct Rotel {
    child: std::process::Child,
    http: String,
    log: std::path::PathBuf,
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rotel(dir: &std::path::Path, args: &[&str]) -> Option<Rotel> {
    let Ok(bin) = std::env::var("DRIFTLINE_TEST_ROTEL") else {
        common::no_peer(
            "no OTLP collector (DRIFTLINE_TEST_ROTEL)",
            "deploy/local/test-stack.sh",
        );
        return None;
    };
    let http = format!("127.0.0.1:{}", common::free_port());
    let grpc = format!("127.0.0.1:{}", common::free_port());
    let log = dir.join("rotel.log");
    let child = std::process::Command::new(bin)
        .args([
            "start",
            "--otlp-grpc-endpoint",
            &grpc,
            "--otlp-http-endpoint",
            &http,
        ])
        .args(args)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rotel starts");
    let r = Rotel { child, http, log };
    wait_for(20, "rotel's OTLP/HTTP receiver", || {
        std::net::TcpStream::connect(&r.http).is_ok()
    });
    Some(r)
}

#[test]
fn driftlines_own_spans_arrive_at_a_real_otlp_collector() {
    let dir = tempfile::tempdir().unwrap();
    let Some(collector) = rotel(
        dir.path(),
        &[
            "--exporter",
            "blackhole",
            "--debug-log",
            "traces",
            "--debug-log-verbosity",
            "detailed",
        ],
    ) else {
        return;
    };
    let data = dir.path().join("data");
    let svc = Service::start_ready(
        &[
            "--data-dir",
            &data.display().to_string(),
            "--otlp-endpoint",
            &format!("http://{}", collector.http),
            "--log-json",
        ],
        dir.path(),
    );
    // Work for the telemetry writer: a batch, its flush and commit.
    let (code, _, body) = http_post_bytes(
        &svc.listen,
        "/v1/logs",
        &[("Content-Type", "application/json")],
        br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"traced"}}]}]}]}"#,
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let log_path = svc.log.clone();
    assert!(svc.stop().success());
    // The exporter flushed on the way out; rotel logs what it received.
    wait_for(20, "driftline's spans in rotel", || {
        let text = std::fs::read_to_string(&collector.log).unwrap_or_default();
        text.contains("service.name: Str(driftline)")
            && ["batch", "take", "flush", "publish", "commit"]
                .iter()
                .all(|n| text.contains(&format!(": {n}\n")))
    });
    let text = std::fs::read_to_string(&collector.log).unwrap();
    assert!(
        text.contains("stage: Str(telemetry)"),
        "{}",
        &text[..text.len().min(4000)]
    );
    // JSON logs written inside a span carry its trace and span ids.
    let logs = std::fs::read_to_string(&log_path).unwrap();
    let traced = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["trace_id"].is_string())
        .expect("a log line with a trace id");
    assert_eq!(traced["trace_id"].as_str().unwrap().len(), 32);
    assert_eq!(traced["span_id"].as_str().unwrap().len(), 16);
}

#[test]
fn a_real_collector_forwards_otlp_into_driftline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let svc = Service::start_ready(&["--data-dir", &data.display().to_string()], dir.path());
    let Some(collector) = rotel(
        dir.path(),
        &[
            "--exporter",
            "otlp",
            "--otlp-exporter-protocol",
            "http",
            "--otlp-exporter-endpoint",
            &format!("http://{}", svc.listen),
        ],
    ) else {
        return;
    };
    let ns = driftline_pipeline::now_ms() as u64 * 1_000_000;
    let metrics = format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"via-rotel"}}}}]}},
        "scopeMetrics":[{{"metrics":[{{"name":"forwarded.gauge","gauge":{{"dataPoints":[{{"timeUnixNano":"{ns}","asDouble":3.25}}]}}}}]}}]}}]}}"#
    );
    let logs = format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"via-rotel"}}}}]}},
        "scopeLogs":[{{"logRecords":[{{"timeUnixNano":"{ns}","body":{{"stringValue":"forwarded"}}}}]}}]}}]}}"#
    );
    for (path, body) in [("/v1/metrics", metrics), ("/v1/logs", logs)] {
        let (code, _, answer) = http_post_bytes(
            &collector.http,
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(code, 200, "{answer}");
    }
    wait_for(30, "what rotel forwarded, in the store", || {
        let n = |q: &str| sql_rows(&store(&data), q)[0]["n"].as_i64().unwrap_or(0);
        n(
            "SELECT count(*) AS n FROM metric_samples WHERE metric_name = 'forwarded_gauge' AND value = 3.25 AND service_name = 'via-rotel'",
        ) == 1
            && n(
                "SELECT count(*) AS n FROM log_records WHERE body = 'forwarded' AND service_name = 'via-rotel'",
            ) == 1
    });
    drop(collector);
    assert!(svc.stop().success());
}
