//! `driftline run` on the embedded default: the example estate watched
//! continuously, changes on disk turning into finding events.

mod common;

use common::*;
use std::time::Instant;

#[test]
fn run_keeps_findings_current_and_serves_probes() {
    let tmp = tempfile::tempdir().unwrap();
    let estate = tmp.path().join("estate");
    copy_dir(&common::estate(), &estate);
    let findings = tmp.path().join("findings.jsonl");
    let data = tmp.path().join("data");
    let svc = run_on_estate(&estate, tmp.path());
    // The demo estate's seven findings, each announced once as new.
    wait_for(60, "the seven findings of the example estate", || {
        finding_events(&findings).len() >= 7
    });
    let events = finding_events(&findings);
    assert_eq!(events.len(), 7, "{events:#?}");
    assert!(events.iter().all(|e| e["event"] == "new" && e["v"] == 1));
    let mut by_class: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["class"].as_str().unwrap().to_string(),
                e["address"]
                    .as_str()
                    .or(e["resource_id"].as_str())
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    by_class.sort();
    let expected = [
        ("changed", "aws_instance.web[1]"),
        ("changed", "aws_s3_bucket.assets"),
        ("changed", "aws_security_group.web"),
        ("missing", "aws_ebs_volume.data[1]"),
        ("missing", "aws_sqs_queue.orders_dlq"),
        ("unmanaged", "AIDA2EXAMPLEUSER00002"),
        ("unmanaged", "acme-prod-exports-tmp"),
    ];
    for (class, what) in expected {
        assert!(
            by_class
                .iter()
                .any(|(c, a)| c == class && a.ends_with(what)),
            "no {class} finding for {what}: {by_class:?}"
        );
    }
    // The secret seeded in the estate never reaches the findings.
    let text = std::fs::read_to_string(&findings).unwrap();
    assert!(!text.contains("correct-horse-battery-staple"));

    // Probes and metrics.
    wait_for(10, "/readyz", || {
        http_get(&svc.listen, "/readyz").is_ok_and(|(s, _)| s == 200)
    });
    assert_eq!(http_get(&svc.listen, "/healthz").unwrap().0, 200);
    let (status, metrics) = http_get(&svc.listen, "/metrics").unwrap();
    assert_eq!(status, 200);
    for name in [
        "driftline_bus_records_in_total{topic=\"driftline.config\"}",
        "driftline_bus_records_out_total{topic=\"driftline.findings\"} 7",
        "driftline_findings_open{class=\"changed\",detector=\"drift\"} 3",
        "driftline_finding_events_total{class=\"missing\",event=\"new\"} 2",
        "driftline_batch_duration_seconds_bucket",
        "driftline_consumer_lag_records",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    common::promtool_check(&metrics);

    // Remove the unmanaged bucket from the snapshot: its finding resolves.
    let snapshot = estate.join("aws-config/snapshot.json");
    let started = Instant::now();
    let original = drop_observed_item(&snapshot, UNMANAGED_BUCKET);
    wait_for(10, "the unmanaged bucket's finding to resolve", || {
        finding_events(&findings).len() >= 8
    });
    let took = started.elapsed();
    let events = finding_events(&findings);
    assert_eq!(events[7]["event"], "resolved");
    assert_eq!(events[7]["resource_id"], UNMANAGED_BUCKET);
    eprintln!("change → resolved finding: {took:?}");

    // Put it back: the same finding (same fingerprint) opens again.
    std::fs::write(&snapshot, &original).unwrap();
    wait_for(10, "the bucket's finding to reopen", || {
        finding_events(&findings).len() >= 9
    });
    let events = finding_events(&findings);
    assert_eq!(events[8]["event"], "new");
    assert_eq!(events[8]["fingerprint"], events[7]["fingerprint"]);
    assert_eq!(open_after(&events).len(), 7);

    // The store has every event, as Parquet.
    let parts: Vec<_> = std::fs::read_dir(data.join("finding_events"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
        .collect();
    assert!(!parts.is_empty());
    // And every resource version the collectors published: the estate's
    // configuration items, the bucket's deletion and its return.
    let count = |query: &str| count_in(&data, query);
    wait_for(30, "the resource histories", || {
        count("SELECT COUNT(*) AS n FROM resources_observed") == 34
    });
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) AS n FROM resources_observed_history \
             WHERE deleted AND key LIKE '%/{UNMANAGED_BUCKET}'"
        )),
        1
    );
    assert!(count("SELECT COUNT(*) AS n FROM resources_declared") > 20);
    // Only what changed became a version: the 34 items, the deletion and the
    // return, though the whole snapshot file was read again twice.
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM resources_observed_history"),
        36
    );

    // SIGTERM: a clean, prompt exit.
    let status = svc.stop();
    assert!(status.success(), "{status:?}");
}

#[test]
fn run_refuses_a_kafka_config_it_cannot_serve_and_bad_configs() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("driftline.toml");
    std::fs::write(&cfg, "[bus]\nkind = \"kafka\"\n[watch]\nstate = [\"x\"]\n").unwrap();
    let out = driftline()
        .args(["run", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("driftline.toml") && err.contains("bus.brokers"),
        "{err}"
    );

    // A scrape target that is not a URL is refused, named by its key.
    std::fs::write(&cfg, "[[metrics.scrape]]\nurl = \"not a url\"\n").unwrap();
    let out = driftline()
        .args(["run", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("metrics.scrape[0].url"), "{err}");
}

/// The Kafka tests (tests/kafka.rs) exist only with the `kafka` feature;
/// under CI a build without it must fail rather than run none of them.
#[cfg(not(feature = "kafka"))]
#[test]
fn kafka_tests_are_compiled_in_under_ci() {
    assert!(
        std::env::var("CI").is_err(),
        "built without the `kafka` feature: tests/kafka.rs did not run (use --all-features)"
    );
}

/// What `run` logs until a second after it says it serves (then it is
/// stopped): the warning about its listener comes right after that line.
fn listener_log(listen: &str, token: Option<&str>) -> String {
    use std::io::BufRead;
    use std::time::Duration;
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = driftline();
    cmd.args([
        "--log-level",
        "info",
        "run",
        "--data-dir",
        tmp.path().to_str().unwrap(),
        "--listen",
        listen,
    ])
    .env_remove("DRIFTLINE_API_TOKEN")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped());
    if let Some(t) = token {
        cmd.env("DRIFTLINE_API_TOKEN", t);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = String::new();
    let mut deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if line.contains("serving /metrics") {
            deadline = Instant::now() + Duration::from_secs(1);
        }
        log.push_str(&line);
        log.push('\n');
    }
    let _ = child.kill();
    let _ = child.wait();
    log
}

#[test]
fn run_warns_when_it_listens_beyond_loopback_without_a_token() {
    let warning = "listening beyond loopback without an API token";
    let open = listener_log("0.0.0.0:0", None);
    assert!(open.contains(warning), "{open}");
    let with_token = listener_log("0.0.0.0:0", Some("s3cret-token"));
    assert!(with_token.contains("serving /metrics"), "{with_token}");
    assert!(!with_token.contains(warning), "{with_token}");
    assert!(
        !with_token.contains("s3cret-token"),
        "the token is never logged: {with_token}"
    );
    let local = listener_log("127.0.0.1:0", None);
    assert!(local.contains("serving /metrics"), "{local}");
    assert!(!local.contains(warning), "{local}");
}
