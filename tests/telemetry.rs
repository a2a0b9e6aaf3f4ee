//! Metrics in, end to end: a real Prometheus (Debian's 2.42) remote-writes
//! into `driftline run` while driftline scrapes that Prometheus, and SQL
//! finds both with the values Prometheus itself holds; the remote-write
//! receiver's answers (400 with a dead letter, 415, 503 under
//! back-pressure); and nothing accepted is lost on SIGTERM.

mod common;

use common::prometheus;
use common::{Service, free_port, http_post_bytes, sql_rows, wait_for};
use driftline_pipeline::telemetry::prompb;
use prost::Message;

fn store(dir: &std::path::Path) -> Vec<String> {
    vec!["--data-dir".into(), dir.display().to_string()]
}

fn count(dir: &std::path::Path, query: &str) -> i64 {
    sql_rows(&store(dir), query)[0]["n"].as_i64().unwrap_or(0)
}

/// A snappy remote-write body: `series` series of `metric`, one sample
/// each at `at_ms`, value = the series number.
fn write_request(metric: &str, series: usize, at_ms: i64) -> Vec<u8> {
    let req = prompb::WriteRequest {
        timeseries: (0..series)
            .map(|i| prompb::TimeSeries {
                labels: vec![
                    prompb::Label {
                        name: "__name__".into(),
                        value: metric.into(),
                    },
                    prompb::Label {
                        name: "n".into(),
                        value: i.to_string(),
                    },
                ],
                samples: vec![prompb::Sample {
                    value: i as f64,
                    timestamp: at_ms,
                }],
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

const RW_HEADERS: [(&str, &str); 3] = [
    ("Content-Type", "application/x-protobuf"),
    ("Content-Encoding", "snappy"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

fn labels_of(row: &serde_json::Value) -> Vec<(String, String)> {
    let keys = row["label_keys"].as_array().cloned().unwrap_or_default();
    let values = row["label_values"].as_array().cloned().unwrap_or_default();
    keys.iter()
        .zip(values.iter())
        .map(|(k, v)| {
            (
                k.as_str().unwrap_or("").to_string(),
                v.as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn prometheus_remote_writes_into_driftline_and_driftline_scrapes_prometheus() {
    if prometheus::binary().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let prom_addr = format!("127.0.0.1:{}", free_port());
    let svc = Service::start_ready(
        &[
            "--data-dir",
            &data.display().to_string(),
            "--scrape",
            &format!("http://{prom_addr}/metrics"),
            "--scrape-interval",
            "1s",
        ],
        dir.path(),
    );
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['{{addr}}']\n\
         remote_write:\n  - url: http://{}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n      max_shards: 2\n",
        svc.listen
    );
    let Some(prom) = prometheus::start(Some(prom_addr.clone()), &config, &[]) else {
        return;
    };
    wait_for(
        60,
        "remote-written and scraped samples in the store",
        || {
            count(
                &data,
                "SELECT count(*) AS n FROM metric_samples WHERE source = 'remote_write' AND metric_name = 'process_resident_memory_bytes'",
            ) >= 2
                && count(
                    &data,
                    "SELECT count(*) AS n FROM metric_samples WHERE source = 'scrape' AND metric_name = 'prometheus_build_info'",
                ) >= 1
        },
    );

    // Remote-write: what driftline stored is what Prometheus holds, sample
    // for sample, at the same timestamps.
    let rows = sql_rows(
        &store(&data),
        "SELECT label_keys, label_values, timestamp_ms, value, service_name FROM metric_samples \
         WHERE source = 'remote_write' AND metric_name = 'process_resident_memory_bytes' ORDER BY timestamp_ms",
    );
    for row in rows.iter().take(3) {
        let labels = labels_of(row);
        assert!(
            labels.contains(&("job".into(), "prometheus".into())),
            "{labels:?}"
        );
        assert!(
            labels.contains(&("instance".into(), prom_addr.clone())),
            "{labels:?}"
        );
        assert_eq!(row["service_name"], "prometheus");
        let at = row["timestamp_ms"].as_i64().unwrap();
        let theirs = prom.query(
            &format!(
                "process_resident_memory_bytes{{job=\"prometheus\",instance=\"{prom_addr}\"}}"
            ),
            at,
        );
        let value: f64 = theirs[0]["value"][1].as_str().unwrap().parse().unwrap();
        assert_eq!(row["value"].as_f64().unwrap(), value, "at {at}");
    }

    // Scrape: driftline read Prometheus's own /metrics, with target labels
    // and the synthetic series.
    let rows = sql_rows(
        &store(&data),
        "SELECT label_keys, label_values, value FROM metric_samples \
         WHERE source = 'scrape' AND metric_name = 'prometheus_build_info' LIMIT 1",
    );
    let labels = labels_of(&rows[0]);
    assert!(
        labels.contains(&("job".into(), "scrape".into())),
        "{labels:?}"
    );
    assert!(
        labels.contains(&("instance".into(), prom_addr.clone())),
        "{labels:?}"
    );
    assert!(
        labels
            .iter()
            .any(|(k, v)| k == "version" && v.starts_with("2.42")),
        "{labels:?}"
    );
    assert_eq!(rows[0]["value"].as_f64(), Some(1.0));
    // driftline started first: scrapes before Prometheus listened said up 0;
    // every one since it answered says 1.
    let up = sql_rows(
        &store(&data),
        "SELECT min(timestamp_ms) AS t FROM metric_samples WHERE source = 'scrape' AND metric_name = 'up' AND value = 1",
    );
    let first_up = up[0]["t"].as_i64().expect("a scrape with up 1");
    let later_down = format!(
        "SELECT count(*) AS n FROM metric_samples WHERE source = 'scrape' AND metric_name = 'up' AND value = 0 AND timestamp_ms > {first_up}"
    );
    assert_eq!(count(&data, &later_down), 0);
    assert!(
        count(
            &data,
            "SELECT count(*) AS n FROM metric_samples WHERE source = 'scrape' AND metric_name = 'scrape_duration_seconds'",
        ) >= 1
    );

    // driftline's own exposition, now with ingest and scrape metrics, is
    // still clean for promtool.
    let (_, exposition) = common::http_get(&svc.listen, "/metrics").unwrap();
    for name in [
        "driftline_ingest_samples_total{source=\"remote_write\"}",
        "driftline_ingest_samples_total{source=\"scrape\"}",
        "driftline_scrape_duration_seconds_count{job=\"scrape\"}",
        "driftline_scrape_target_up{",
    ] {
        assert!(exposition.contains(name), "{name} missing from /metrics");
    }
    assert!(
        exposition.contains("driftline_ingest_dropped_total{source=\"remote_write\"} 0"),
        "dropped must be shown, at 0"
    );
    common::promtool_check(&exposition);

    // Prometheus goes away: the next scrape says up 0 and marks its series stale.
    drop(prom);
    wait_for(
        30,
        "up 0 and stale markers after the target went away",
        || {
            count(&data, &later_down) >= 1
                && count(
                    &data,
                    "SELECT count(*) AS n FROM metric_samples WHERE source = 'scrape' AND metric_name = 'prometheus_build_info' AND stale",
                ) >= 1
        },
    );
    assert!(svc.stop().success());
}

#[test]
fn remote_write_answers_say_what_to_do_and_sigterm_loses_nothing() {
    // The embedded store, and ClickHouse 18.16 when the test stack runs it.
    for target in common::finops::stores("telemetry") {
        answers_and_sigterm_on(&target);
    }
}

fn answers_and_sigterm_on(target: &common::finops::Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = target.args();
    if matches!(target, common::finops::Store::ClickHouse(_)) {
        // The spool lives in the data dir.
        args.extend([
            "--data-dir".into(),
            dir.path().join("data").display().to_string(),
        ]);
    }
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let svc = Service::start_ready(&arg_refs, dir.path());
    // Not snappy: 400 with the reason, and a dead letter.
    let (code, _, body) = http_post_bytes(
        &svc.listen,
        "/api/v1/write",
        &RW_HEADERS,
        b"\xff\xff\xff garbage",
    )
    .unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("snappy"), "{body}");
    // Remote-write 2.0 is refused with 415, as the spec asks.
    let (code, _, body) = http_post_bytes(
        &svc.listen,
        "/api/v1/write",
        &[
            (
                "Content-Type",
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            ),
            ("Content-Encoding", "snappy"),
        ],
        &write_request("x", 1, 1),
    )
    .unwrap();
    assert_eq!(code, 415, "{body}");

    // Many accepted requests, then SIGTERM at once: every sample answered
    // 204 is in the store afterwards.
    let at = driftline_pipeline::now_ms();
    let mut accepted = 0;
    for i in 0..40 {
        let (code, _, body) = http_post_bytes(
            &svc.listen,
            "/api/v1/write",
            &RW_HEADERS,
            &write_request("driftline_test_total", 250, at + i),
        )
        .unwrap();
        assert_eq!(code, 204, "{body}");
        accepted += 250;
    }
    assert!(svc.stop().success());
    let rows = |q: &str| sql_rows(&target.args(), q);
    let n =
        rows("SELECT count(*) AS n FROM metric_samples WHERE metric_name = 'driftline_test_total'");
    assert_eq!(n[0]["n"].as_i64(), Some(accepted), "{}", target.name());
    // Values, series ids and times arrived intact.
    let r = rows(
        "SELECT count(DISTINCT series_id) AS s, sum(value) AS v, min(timestamp_ms) AS t0, max(timestamp_ms) AS t1 \
         FROM metric_samples WHERE metric_name = 'driftline_test_total'",
    );
    assert_eq!(r[0]["s"].as_i64(), Some(250), "{}", target.name());
    assert_eq!(
        r[0]["v"].as_f64(),
        Some(40.0 * (0..250).sum::<i32>() as f64)
    );
    assert_eq!(
        (r[0]["t0"].as_i64(), r[0]["t1"].as_i64()),
        (Some(at), Some(at + 39))
    );
    let dead = rows("SELECT reason FROM dead_letters WHERE source = 'remote_write'");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0]["reason"].as_str().unwrap().contains("snappy"));
}

#[test]
fn a_full_bus_answers_503_so_senders_retry() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("driftline.toml");
    // No sink role: nothing takes the samples off the embedded bus, which
    // holds at most one message's worth.
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\nroles = [\"collect\"]\n[bus]\nmemory_telemetry_max_bytes = 1\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let svc = Service::start_ready(&["--config", &config.display().to_string()], dir.path());
    let post = || {
        http_post_bytes(
            &svc.listen,
            "/api/v1/write",
            &RW_HEADERS,
            &write_request("m", 1, 1),
        )
        .unwrap()
    };
    assert_eq!(post().0, 204);
    let (code, head, body) = post();
    assert_eq!(code, 503, "{body}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    assert!(body.contains("full"), "{body}");
    let (_, metrics) = common::http_get(&svc.listen, "/metrics").unwrap();
    assert!(
        metrics
            .contains("driftline_ingest_rejected_total{reason=\"busy\",source=\"remote_write\"} 1"),
        "{metrics}"
    );
    assert!(svc.stop().success());
}
