//! The streaming spine on a real Kafka-protocol broker (tansu, SQLite
//! storage), one broker per test on a free port: keys and partitions,
//! groups of instances, dead letters, telemetry, logging. The broker
//! binary comes from `deploy/local/test-stack.sh` (DRIFTLINE_TEST_TANSU);
//! under CI a missing broker fails these tests. Faults (a broker or
//! driftline killed mid-stream) are in `kafka_faults.rs`.
#![cfg(feature = "kafka")]

#[path = "common/broker.rs"]
mod broker;
mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use broker::*;
use common::*;
use driftline_pipeline::bus::kafka::{KafkaBus, KafkaConfig};
use driftline_pipeline::{Bus, ConsumerSpec, Event, OutMessage, Topic, TopicLayout, partition_for};

#[test]
fn snapshots_are_keyed_co_partitioned_and_readable() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let bus = broker.bus();
    let n = publish_estate(&bus, &estate());
    // Beside the snapshots, one status per file read (one state, two item
    // files), each written to all six partitions of its side's topic.
    let statuses = 3;
    let msgs = read_all(&bus, &[Topic::Declared, Topic::Config], n + statuses * 6);
    assert_eq!(msgs.len(), n + statuses * 6);
    let mut partition_of: HashMap<String, (i32, Topic)> = HashMap::new();
    let mut status_partitions: HashMap<(String, Topic), Vec<i32>> = HashMap::new();
    let mut shared = 0;
    for m in &msgs {
        let v: serde_json::Value = serde_json::from_slice(m.payload.as_ref().unwrap()).unwrap();
        assert_eq!(v["v"], 1, "every record carries its schema version");
        let key = m.key.as_deref().unwrap();
        if key.starts_with("source-status/") {
            assert_eq!(v["up"], true, "{v}");
            status_partitions
                .entry((key.to_string(), m.topic))
                .or_default()
                .push(m.partition);
        } else if key.starts_with("aws/") {
            assert_eq!(v["resource_key"], key, "keyed by resource key");
            let tid = v["type_id"].as_str().unwrap().to_string();
            assert_eq!(m.partition, partition_for(&tid, 6));
            if let Some((p, t)) = partition_of.insert(tid, (m.partition, m.topic))
                && t != m.topic
            {
                assert_eq!(p, m.partition, "co-partitioned");
                shared += 1;
            }
        }
    }
    assert!(
        shared > 20,
        "declared and observed share {shared} resources"
    );
    assert_eq!(status_partitions.len(), statuses, "{status_partitions:?}");
    for (key, mut parts) in status_partitions {
        parts.sort();
        assert_eq!(parts, (0..6).collect::<Vec<i32>>(), "{key:?}");
    }
}

#[test]
fn snapshot_topics_with_different_partition_counts_are_refused() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("driftline.config", 6);
    broker.create_topic("driftline.declared", 3);
    let bus = KafkaBus::new(KafkaConfig {
        brokers: broker.addr(),
        layout: TopicLayout::default(),
        properties: BTreeMap::new(),
    });
    let err = bus.ensure_topics().unwrap_err().to_string();
    assert!(
        err.contains("co-partitioned") && err.contains("6 and 3"),
        "{err}"
    );

    // The service refuses to start, saying why.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), &broker.addr(), "\"detect\"", "");
    let out = driftline()
        .args(["run", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("co-partitioned"));
}

/// Runs `n` detect+sink instances in one group over the example estate on
/// a fresh broker; returns the finding events they wrote, once settled.
fn run_group(n: usize) -> Option<Vec<(String, String)>> {
    let broker = Broker::start()?;
    let bus = broker.bus();
    publish_estate(&bus, &estate());
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), &broker.addr(), "\"detect\", \"sink\"", "");
    let services: Vec<Service> = (0..n)
        .map(|i| {
            Service::start(
                &["--config", cfg.to_str().unwrap()],
                &tmp.path().join(format!("{i}.jsonl")),
                &tmp.path().join(format!("{i}.log")),
            )
        })
        .collect();
    let all = || {
        (0..n)
            .flat_map(|i| finding_events(&tmp.path().join(format!("{i}.jsonl"))))
            .collect::<Vec<_>>()
    };
    // Eight: without the estate's .driftignore the scratch bucket counts.
    wait_for(90, "eight finding events", || all().len() >= 8);
    // Let rebalances settle and anything repeated arrive.
    std::thread::sleep(Duration::from_secs(8));
    for i in 0..n {
        let text = std::fs::read_to_string(tmp.path().join(format!("{i}.log"))).unwrap();
        assert!(
            text.contains("partitions assigned"),
            "instance {i}:\n{text}"
        );
    }
    // The findings topic holds the same events.
    let events = all();
    assert_eq!(
        read_all(&bus, &[Topic::Findings], events.len()).len(),
        events.len()
    );
    for s in services {
        assert!(s.stop().success());
    }
    Some(events_key(&events))
}

/// `RUST_LOG` asking one crate for more keeps everyone else's info lines:
/// the Kafka client's own debug records, filtered out, once took the info
/// events of their threads with them.
#[test]
fn a_debug_filter_for_one_crate_keeps_the_others_info_lines() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), &broker.addr(), "\"detect\", \"sink\"", "");
    let log = tmp.path().join("run.log");
    let svc = Service::start_env(
        &["--config", cfg.to_str().unwrap()],
        &tmp.path().join("findings.jsonl"),
        &log,
        &[("RUST_LOG", "info,driftline_collectors=debug")],
    );
    wait_for(60, "the detect group's assignment in the log", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("group=driftline-drift"))
    });
    let text = std::fs::read_to_string(&log).unwrap();
    for line in ["created topic", "driftline running", "partitions assigned"] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    assert!(svc.stop().success());
}

#[test]
fn two_instances_in_one_group_produce_what_one_would() {
    let Some(one) = run_group(1) else { return };
    let Some(two) = run_group(2) else { return };
    assert_eq!(one.len(), 8, "{one:#?}");
    assert!(one.iter().all(|(_, e)| e == "new"));
    assert_eq!(two, one);
}

#[test]
fn a_malformed_record_goes_to_the_dead_letters_and_the_rest_flows() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let bus = broker.bus();
    let producer = bus.producer().unwrap();
    let key = "aws/123456789012/eu-west-1/AWS::S3::Bucket/stray";
    producer
        .send(vec![OutMessage {
            topic: Topic::Config,
            key: key.into(),
            shard: "AWS::S3::Bucket/stray".into(),
            // Another producer's, cut short, with a secret in it.
            payload: Some(
                br#"{"v":1,"configuration":{"MasterUserPassword":"hunter2-in-a-bad-record"},"resource_key":"#
                    .to_vec(),
            ),
            broadcast: false,
        }])
        .unwrap();
    publish_estate(&bus, &estate());
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), &broker.addr(), "\"detect\", \"sink\"", "");
    let svc = run_config(&cfg, tmp.path());
    let findings = svc.findings.clone();
    // The estate behind it is still evaluated. (Without the driftignore
    // the scratch bucket is unmanaged too: eight findings.)
    wait_for(60, "findings behind the bad record", || {
        finding_events(&findings).len() >= 8
    });
    let dead = read_all(&bus, &[Topic::DeadLetters], 1);
    let v: serde_json::Value = serde_json::from_slice(dead[0].payload.as_ref().unwrap()).unwrap();
    assert_eq!(v["source"], "driftline.config");
    assert_eq!(v["partition"], partition_for("AWS::S3::Bucket/stray", 6));
    assert_eq!(v["offset"], 0);
    assert_eq!(v["key"], key);
    assert!(
        v["reason"].as_str().unwrap().contains("not a valid record"),
        "{v}"
    );
    // What it shows of the bytes has the secret hashed.
    let shown = v["payload"].as_str().unwrap();
    assert!(
        shown.contains(r#""MasterUserPassword":"sha256:"#) && !shown.contains("hunter2"),
        "{shown}"
    );
    let (_, metrics) = http_get(&svc.listen, "/metrics").unwrap();
    assert!(
        metrics.contains("driftline_dead_letters_total{source=\"driftline.config\"} 1"),
        "{metrics}"
    );
    assert!(svc.stop().success());
}

/// Telemetry on Kafka: one instance takes remote-write pushes (collect),
/// another stores them (sink). Every series stays in one partition of
/// `driftline.metrics`, and every accepted sample reaches the sink's store.
#[test]
fn telemetry_travels_on_kafka_keyed_by_series() {
    use driftline_pipeline::telemetry::{decode_metrics, prompb, series_id};
    use prost::Message as _;
    let Some(broker) = Broker::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (cdir, sdir) = (tmp.path().join("collect"), tmp.path().join("sink"));
    std::fs::create_dir_all(&cdir).unwrap();
    std::fs::create_dir_all(&sdir).unwrap();
    let collect = write_config(&cdir, &broker.addr(), "\"collect\"", "");
    let sink = write_config(&sdir, &broker.addr(), "\"sink\"", "");
    let collector = Service::start_ready(&["--config", collect.to_str().unwrap()], &cdir);
    let writer = Service::start_ready(&["--config", sink.to_str().unwrap()], &sdir);
    let at = driftline_pipeline::now_ms();
    let (requests, series) = (10, 100);
    for r in 0..requests {
        let req = prompb::WriteRequest {
            timeseries: (0..series)
                .map(|s| prompb::TimeSeries {
                    labels: vec![
                        prompb::Label {
                            name: "__name__".into(),
                            value: "kafka_test".into(),
                        },
                        prompb::Label {
                            name: "s".into(),
                            value: s.to_string(),
                        },
                    ],
                    samples: vec![prompb::Sample {
                        value: r as f64,
                        timestamp: at + r,
                    }],
                    ..Default::default()
                })
                .collect(),
            metadata: vec![],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap();
        let (code, _, text) = common::http_post_bytes(
            &collector.listen,
            "/api/v1/write",
            &[
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "snappy"),
            ],
            &body,
        )
        .unwrap();
        assert_eq!(code, 204, "{text}");
    }
    let total = (requests * series) as usize;
    // On the topic: each series in exactly one partition.
    let bus = broker.bus();
    let mut c = bus
        .consumer(&ConsumerSpec {
            group: format!("probe-{}", free_port()),
            topics: vec![Topic::Metrics],
            rewind: vec![],
            restore: Vec::new(),
        })
        .unwrap();
    let mut partitions: HashMap<u64, std::collections::HashSet<i32>> = HashMap::new();
    let mut seen = 0;
    wait_for(60, "every sample on driftline.metrics", || {
        for e in c.poll(1000, Duration::from_millis(200)).unwrap() {
            if let Event::Message(m) = e {
                let req = decode_metrics(m.payload.as_deref().unwrap()).unwrap();
                for ts in req.timeseries {
                    seen += ts.samples.len();
                    partitions
                        .entry(series_id(&ts.labels))
                        .or_default()
                        .insert(m.partition);
                }
            }
        }
        seen >= total
    });
    assert_eq!(partitions.len(), series as usize);
    assert!(partitions.values().all(|p| p.len() == 1), "{partitions:?}");
    assert!(collector.stop().success());
    let data = sdir.join(
        std::fs::read_to_string(&sink)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("data_dir = \""))
            .unwrap()
            .trim_end_matches('"'),
    );
    wait_for(60, "every sample in the sink's store", || {
        common::count_in(
            &data,
            "SELECT count(*) AS n FROM metric_samples WHERE metric_name = 'kafka_test'",
        ) == total as i64
    });
    assert!(writer.stop().success());
}

/// A member that joins at offsets its group committed at the end, and so
/// consumes nothing, is at the end: a stage that drains on stop stops at
/// once rather than waiting out its drain limit.
#[test]
fn a_member_starting_at_the_committed_end_is_at_the_end() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let bus = broker.bus();
    let messages = (0..12)
        .map(|i| OutMessage {
            topic: Topic::DeadLetters,
            key: format!("k{i}"),
            shard: format!("k{i}"),
            payload: Some(b"{}".to_vec()),
            broadcast: false,
        })
        .collect();
    bus.producer().unwrap().send(messages).unwrap();
    let spec = ConsumerSpec {
        group: "drained".into(),
        topics: vec![Topic::DeadLetters],
        rewind: Vec::new(),
        restore: Vec::new(),
    };
    let mut first = bus.consumer(&spec).unwrap();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    wait_for(60, "all twelve read", || {
        for e in first.poll(100, Duration::from_millis(200)).unwrap() {
            if let Event::Message(m) = e {
                next.insert(m.partition, m.offset + 1);
            }
        }
        next.len() > 1 && first.at_end()
    });
    let offsets: Vec<(Topic, i32, i64)> = next
        .iter()
        .map(|(p, o)| (Topic::DeadLetters, *p, *o))
        .collect();
    first.commit(&offsets).unwrap();
    drop(first);
    let mut second = bus.consumer(&spec).unwrap();
    wait_for(30, "the second member at the end", || {
        let got = second.poll(100, Duration::from_millis(200)).unwrap();
        assert!(
            !got.iter().any(|e| matches!(e, Event::Message(_))),
            "everything was committed: {got:?}"
        );
        second.at_end()
    });
}
