//! The streaming spine on a real Kafka-protocol broker (tansu, SQLite
//! storage), one broker per test on a free port. The broker binary comes
//! from `deploy/local/test-stack.sh` (DRIFTLINE_TEST_TANSU); under CI a
//! missing broker fails these tests.
#![cfg(feature = "kafka")]

mod common;
#[path = "common/pagerduty.rs"]
mod pagerduty;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use driftline_collectors::Collector;
use driftline_collectors::aws_config::{AwsConfigFileCollector, AwsConfigFileConfig};
use driftline_collectors::terraform::{Salt, TerraformCollector, TerraformConfig};
use driftline_detectors::Mappings;
use driftline_pipeline::bus::kafka::{KafkaBus, KafkaConfig};
use driftline_pipeline::{
    Bus, BusSink, ConsumerSpec, Event, Message, OutMessage, Topic, TopicLayout, partition_for,
};

/// A tansu broker with its own SQLite file and port.
struct Broker {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker, or returns `None` outside CI when none is installed.
    fn start() -> Option<Broker> {
        let bin = match std::env::var("DRIFTLINE_TEST_TANSU") {
            Ok(b) => PathBuf::from(b),
            Err(_) => {
                no_peer(
                    "no Kafka broker (DRIFTLINE_TEST_TANSU is not set)",
                    "./scripts/test.sh",
                );
                return None;
            }
        };
        let mut b = Broker {
            bin,
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            child: None,
        };
        b.up();
        Some(b)
    }

    fn up(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .unwrap();
        let child = Command::new(&self.bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            // tansu reads a sqlite URL's path relative to its working directory.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tansu starts");
        self.child = Some(child);
        let addr = self.addr();
        wait_for(20, "the broker's port", || {
            std::net::TcpStream::connect(&addr).is_ok()
        });
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn bus(&self) -> KafkaBus {
        let bus = KafkaBus::new(KafkaConfig {
            brokers: self.addr(),
            layout: TopicLayout {
                partitions: 6,
                replication: 1,
            },
            properties: BTreeMap::new(),
        });
        bus.ensure_topics().expect("topics");
        bus
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.down();
        // The broker's storage outlives a failed test when asked: what it
        // holds tells a lost write from a missed read.
        if let Some(dir) =
            std::env::var_os("DRIFTLINE_KEEP_LOGS").filter(|_| std::thread::panicking())
        {
            let to = PathBuf::from(dir).join(format!("tansu-{}", self.port));
            if std::fs::create_dir_all(&to).is_ok() {
                for f in ["tansu.db", "tansu.db-wal", "tansu.db-shm", "tansu.log"] {
                    let _ = std::fs::copy(self.dir.path().join(f), to.join(f));
                }
                eprintln!("--- the broker's files: {} ---", to.display());
            }
        }
    }
}

/// Publishes the example estate's snapshots onto the bus.
fn publish_estate(bus: &KafkaBus, estate: &Path) -> usize {
    let mappings = Mappings::builtin().unwrap();
    let types = Arc::new(mappings.type_table());
    let mut tf = TerraformConfig::new(types.clone(), Salt::from_env_or_random());
    tf.files = vec![estate.join("terraform/terraform.tfstate")];
    let mut state = TerraformCollector::new(tf);
    let mut observed = AwsConfigFileCollector::new(AwsConfigFileConfig {
        files: vec![
            estate.join("aws-config/snapshot.json"),
            estate.join("aws-config/notification.json"),
        ],
        types,
        kept: None,
    });
    let sink = BusSink::new(bus.producer().unwrap());
    let none = |_: &Path, _: u64| {};
    let a = state.poll_once(&sink, &none);
    let b = observed.poll_once(&sink, &none);
    assert!(a.errors.is_empty() && b.errors.is_empty());
    a.published + b.published
}

/// Reads every message of `topics` from the beginning (a fresh group) until
/// `n` have arrived.
fn read_all(bus: &KafkaBus, topics: &[Topic], n: usize) -> Vec<Message> {
    let mut c = bus
        .consumer(&ConsumerSpec {
            group: format!("probe-{}", free_port()),
            topics: topics.to_vec(),
            rewind: vec![],
            restore: Vec::new(),
        })
        .unwrap();
    let mut out = Vec::new();
    wait_for(60, &format!("{n} messages on {topics:?}"), || {
        for e in c.poll(1000, Duration::from_millis(200)).unwrap() {
            if let Event::Message(m) = e {
                out.push(m);
            }
        }
        out.len() >= n
    });
    out
}

fn write_config(dir: &Path, broker: &str, roles: &str, extra: &str) -> PathBuf {
    let p = dir.join(format!("driftline-{}.toml", free_port()));
    std::fs::write(
        &p,
        format!(
            "roles = [{roles}]\ndata_dir = \"data-{}\"\n[bus]\nkind = \"kafka\"\nbrokers = \"{broker}\"\npartitions = 6\nbatch_max = 7\n{extra}",
            free_port()
        ),
    )
    .unwrap();
    p
}

/// A copy of the example estate and a config that runs every role on it,
/// watching its folders every 50 ms.
fn watching_config(dir: &Path, broker: &Broker) -> (PathBuf, PathBuf) {
    let estate = dir.join("estate");
    copy_dir(&common::estate(), &estate);
    let extra = format!(
        "[watch]\nstate = [\"{}\"]\nobserved = [\"{}\"]\ninterval_ms = 50\n[drift]\ndriftignore = \"{}\"\n",
        estate.join("terraform").display(),
        estate.join("aws-config").display(),
        estate.join(".driftignore").display()
    );
    let cfg = write_config(
        dir,
        &broker.addr(),
        "\"collect\", \"detect\", \"sink\"",
        &extra,
    );
    (estate, cfg)
}

fn events_key(events: &[serde_json::Value]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["fingerprint"].as_str().unwrap().to_string(),
                e["event"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

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
    let create = |topic: &str, parts: &str| {
        let s = Command::new(&broker.bin)
            .args(["topic", "create", "--broker"])
            .arg(format!("tcp://{}", broker.addr()))
            .args(["--partitions", parts, topic])
            .status()
            .unwrap();
        assert!(s.success());
    };
    create("driftline.config", "6");
    create("driftline.declared", "3");
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
fn kill_9_mid_stream_loses_nothing_and_resolves_nothing_twice() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (estate, cfg) = watching_config(tmp.path(), &broker);
    let findings = tmp.path().join("findings.jsonl");
    let start = |n: u32| {
        Service::start(
            &["--config", cfg.to_str().unwrap()],
            &findings,
            &tmp.path().join(format!("run{n}.log")),
        )
    };
    let svc = start(0);
    wait_for(90, "the seven findings", || {
        finding_events(&findings).len() >= 7
    });

    // Drift is fixed on disk; kill -9 while the change is in flight, at
    // several moments, restarting each time.
    drop_observed_item(&estate.join("aws-config/snapshot.json"), UNMANAGED_BUCKET);
    std::thread::sleep(Duration::from_millis(120));
    svc.kill9();
    // A killed member stays in the group until its session (6 s) expires;
    // tansu 0.6 evicts it only when a member joins after that, so restart
    // once it has expired (a Kafka broker would evict it on its own).
    let session = Duration::from_secs(7);
    std::thread::sleep(session);
    let mut svc = start(1);
    // Again, while the restarted instance rebuilds its tables and catches up.
    for (i, delay) in [300u64, 1200].into_iter().enumerate() {
        std::thread::sleep(Duration::from_millis(delay));
        svc.kill9();
        std::thread::sleep(session);
        svc = start(i as u32 + 2);
    }
    wait_for(90, "the bucket's finding to resolve", || {
        finding_events(&findings)
            .iter()
            .any(|e| e["event"] == "resolved" && e["resource_id"] == UNMANAGED_BUCKET)
    });
    std::thread::sleep(Duration::from_secs(5));
    let events = finding_events(&findings);
    let resolved = events.iter().filter(|e| e["event"] == "resolved").count();
    assert_eq!(resolved, 1, "{:#?}", events_key(&events));
    // Nothing lost: the open set is the six remaining findings.
    let open = open_after(&events);
    assert_eq!(open.len(), 6, "{:#?}", events_key(&events));
    assert!(svc.stop().success());
}

#[test]
fn broker_restart_mid_stream_loses_nothing() {
    let Some(mut broker) = Broker::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (estate, cfg) = watching_config(tmp.path(), &broker);
    let findings = tmp.path().join("findings.jsonl");
    let svc = Service::start(
        &["--config", cfg.to_str().unwrap()],
        &findings,
        &tmp.path().join("run.log"),
    );
    wait_for(90, "the seven findings", || {
        finding_events(&findings).len() >= 7
    });
    // The sink commits right after it writes; a broker gone before that
    // commit lands makes the group re-read (and the file repeat) the last
    // batch, which is at-least-once, not loss. Let it land: this test is
    // about what changes while the broker is away.
    std::thread::sleep(Duration::from_secs(2));

    broker.down();
    // Change the estate while the broker is away.
    drop_observed_item(&estate.join("aws-config/snapshot.json"), UNMANAGED_BUCKET);
    std::thread::sleep(Duration::from_secs(3));
    broker.up();
    wait_for(120, "the resolution after the broker came back", || {
        finding_events(&findings).len() >= 8
    });
    std::thread::sleep(Duration::from_secs(3));
    let events = finding_events(&findings);
    assert_eq!(events.len(), 8, "{:#?}", events_key(&events));
    assert_eq!(events[7]["event"], "resolved");
    assert_eq!(open_after(&events).len(), 6);
    assert!(svc.stop().success());
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
    let findings = tmp.path().join("f.jsonl");
    let svc = Service::start(
        &["--config", cfg.to_str().unwrap()],
        &findings,
        &tmp.path().join("run.log"),
    );
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

/// Done-when of the alerts issue: PagerDuty is down while findings arrive,
/// driftline is killed (-9) with pages in its outbox, restarted, and later
/// restarted again under a new alert consumer group so the whole findings
/// topic is replayed: exactly one trigger and one resolve per incident.
#[test]
fn kill_9_and_a_full_findings_replay_page_exactly_once() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let pd = pagerduty::Receiver::start();
    *pd.down.lock().unwrap() = Some(503);
    let tmp = tempfile::tempdir().unwrap();
    let estate = tmp.path().join("estate");
    copy_dir(&common::estate(), &estate);
    let alerts = "[alerts.route]\nreceiver = \"oncall\"\ngroup_wait = \"1s\"\ngroup_interval = \"1s\"\n\
                  [alerts_delivery]\ninitial_backoff = \"200ms\"\nmax_backoff = \"1s\"\n";
    let watch = format!(
        "[watch]\nstate = [\"{}\"]\nobserved = [\"{}\"]\ninterval_ms = 50\n[drift]\ndriftignore = \"{}\"\n",
        estate.join("terraform").display(),
        estate.join("aws-config").display(),
        estate.join(".driftignore").display()
    );
    let roles = "\"collect\", \"detect\", \"sink\", \"alert\"";
    let cfg = write_config(
        tmp.path(),
        &broker.addr(),
        roles,
        &format!("{watch}{alerts}"),
    );
    // Same data dir, a fresh alert consumer group: replays every finding event.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let replay_cfg = tmp.path().join("replay.toml");
    std::fs::write(
        &replay_cfg,
        text.replace("[bus]\n", "[bus]\nalert_group = \"replay-from-zero\"\n"),
    )
    .unwrap();
    let findings = tmp.path().join("findings.jsonl");
    let start = |cfg: &Path, n: u32| {
        Service::start_env(
            &pagerduty::run_args(cfg.to_str().unwrap(), &pd.url),
            &findings,
            &tmp.path().join(format!("run{n}.log")),
            &[("PD_KEY", pagerduty::KEY)],
        )
    };
    let svc = start(&cfg, 0);
    wait_for(90, "triggers refused while PagerDuty is down", || {
        pd.seen.lock().unwrap().refused.len() >= 3
    });
    svc.kill9();
    *pd.down.lock().unwrap() = None;
    let session = Duration::from_secs(7);
    std::thread::sleep(session);
    let svc = start(&cfg, 1);
    wait_for(90, "seven triggers after the restart", || {
        pd.count("trigger") >= 7
    });

    // The unmanaged bucket is deleted: its incident resolves.
    drop_observed_item(&estate.join("aws-config/snapshot.json"), UNMANAGED_BUCKET);
    wait_for(60, "one resolve", || pd.count("resolve") >= 1);
    std::thread::sleep(Duration::from_secs(2));
    svc.kill9();
    std::thread::sleep(session);
    let svc = start(&replay_cfg, 2);
    wait_for(60, "the replaying alert stage to catch up", || {
        http_get(&svc.listen, "/metrics").is_ok_and(|(_, m)| {
            m.lines().any(|l| {
                l.starts_with("driftline_bus_records_in_total{topic=\"driftline.findings\"}")
                    && l.rsplit(' ')
                        .next()
                        .and_then(|n| n.parse::<f64>().ok())
                        .is_some_and(|n| n >= 8.0)
            })
        })
    });
    std::thread::sleep(Duration::from_secs(4));
    assert_paged_once(&pd, 7, 1);
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

/// PagerDuty got one trigger for each of `incidents` and `resolves`
/// resolves in all.
fn assert_paged_once(pd: &pagerduty::Receiver, incidents: usize, resolves: usize) {
    let actions = pd.actions();
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (k, a) in &actions {
        let e = per.entry(k.clone()).or_default();
        if a == "trigger" {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    assert_eq!(per.len(), incidents, "{actions:?}");
    assert!(
        per.values().all(|(t, _)| *t == 1),
        "one trigger per incident: {actions:?}"
    );
    assert_eq!(
        per.values().map(|(_, r)| r).sum::<usize>(),
        resolves,
        "resolves: {actions:?}"
    );
}

/// Keys and how many times each was read on `topic`, reading from the start
/// until `n` have arrived and then until nothing more comes for 3 s.
fn count_keys(bus: &KafkaBus, topic: Topic, n: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for m in read_all(bus, &[topic], n) {
        *counts.entry(m.key.unwrap_or_default()).or_default() += 1;
    }
    let mut c = bus
        .consumer(&ConsumerSpec {
            group: format!("probe-{}", free_port()),
            topics: vec![topic],
            rewind: vec![],
            restore: Vec::new(),
        })
        .unwrap();
    // A second reader, to the end: anything past `n` is a repeat.
    let mut again = 0;
    let mut quiet_since = std::time::Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(3) || again < n {
        let got = c.poll(1000, Duration::from_millis(200)).unwrap();
        let messages = got
            .iter()
            .filter(|e| matches!(e, Event::Message(_)))
            .count();
        if messages > 0 {
            again += messages;
            quiet_since = std::time::Instant::now();
        }
        assert!(
            quiet_since.elapsed() < Duration::from_secs(60),
            "read {again} of {n}"
        );
    }
    assert_eq!(again, counts.values().sum::<usize>(), "two reads differ");
    counts
}

#[test]
fn broker_killed_mid_produce_loses_and_repeats_nothing() {
    const SENDS: usize = 40;
    const PER_SEND: usize = 500;
    let Some(mut broker) = Broker::start() else {
        return;
    };
    let bus = broker.bus();
    let producer = bus.producer().unwrap();
    let acknowledged = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sending = {
        let acknowledged = acknowledged.clone();
        std::thread::spawn(move || {
            let mut spans = Vec::new();
            for s in 0..SENDS {
                let started = std::time::Instant::now();
                let batch = (0..PER_SEND)
                    .map(|i| OutMessage {
                        topic: Topic::DeadLetters,
                        key: format!("m{s}-{i}"),
                        shard: format!("m{s}-{i}"),
                        payload: Some(vec![b'x'; 1000]),
                        broadcast: false,
                    })
                    .collect();
                // Acknowledged by the broker, riding out its restart.
                producer.send(batch).expect("acknowledged");
                spans.push((started, std::time::Instant::now()));
                acknowledged.fetch_add(1, std::sync::atomic::Ordering::Release);
            }
            spans
        })
    };
    let mut kills = Vec::new();
    for at in [8, 24] {
        wait_for(120, "more sends acknowledged", || {
            acknowledged.load(std::sync::atomic::Ordering::Acquire) >= at
        });
        kills.push(std::time::Instant::now());
        broker.down(); // SIGKILL
        std::thread::sleep(Duration::from_secs(1));
        broker.up();
    }
    let spans = sending.join().unwrap();
    for kill in kills {
        assert!(
            spans.iter().any(|(from, to)| *from < kill && kill < *to),
            "the broker was killed between sends, not during one"
        );
    }
    let counts = count_keys(&bus, Topic::DeadLetters, SENDS * PER_SEND);
    assert_eq!(counts.len(), SENDS * PER_SEND, "messages lost");
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "{} repeated: {:?}",
        repeated.len(),
        &repeated[..repeated.len().min(5)]
    );
}

/// The broker killed (SIGKILL) while findings flow through it, at moments
/// that fall between a stage's write and its offset commit: the group
/// re-reads what was not committed, and the pages stay one trigger per
/// incident and one resolve; no finding is lost.
#[test]
fn broker_killed_mid_commit_pages_exactly_once() {
    let Some(mut broker) = Broker::start() else {
        return;
    };
    let pd = pagerduty::Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let (estate, cfg) = watching_config(tmp.path(), &broker);
    let alerts = "[alerts.route]\nreceiver = \"oncall\"\ngroup_wait = \"1s\"\ngroup_interval = \"1s\"\n\
                  [alerts_delivery]\ninitial_backoff = \"200ms\"\nmax_backoff = \"1s\"\n";
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "\"collect\", \"detect\", \"sink\"",
        "\"collect\", \"detect\", \"sink\", \"alert\"",
    );
    std::fs::write(&cfg, format!("{text}{alerts}")).unwrap();
    let findings = tmp.path().join("findings.jsonl");
    let svc = Service::start_env(
        &pagerduty::run_args(cfg.to_str().unwrap(), &pd.url),
        &findings,
        &tmp.path().join("run.log"),
        &[("PD_KEY", pagerduty::KEY)],
    );
    // Killed as the first findings come out: the stages are writing and
    // committing them.
    wait_for(90, "the first findings", || {
        !finding_events(&findings).is_empty()
    });
    broker.down();
    std::thread::sleep(Duration::from_millis(500));
    broker.up();
    wait_for(120, "seven triggers", || pd.count("trigger") >= 7);
    // Again while a resolution is in flight: published, likely not yet paged.
    // (Not before the detect stage has read the bucket's tombstone: tansu
    // 0.6.0, killed, loses or hides for a while writes it acknowledged just
    // before, and a tombstone lost at the source is beyond any reader.)
    drop_observed_item(&estate.join("aws-config/snapshot.json"), UNMANAGED_BUCKET);
    wait_for(60, "the resolution published", || {
        open_after(&finding_events(&findings)).len() == 6
    });
    broker.down();
    std::thread::sleep(Duration::from_millis(500));
    broker.up();
    wait_for(120, "one resolve", || pd.count("resolve") >= 1);
    // Anything repeated would have arrived by now.
    std::thread::sleep(Duration::from_secs(5));
    assert_paged_once(&pd, 7, 1);
    // Nothing lost: the open set is the six remaining findings.
    let events = finding_events(&findings);
    assert_eq!(open_after(&events).len(), 6, "{:#?}", events_key(&events));
    assert!(svc.stop().success());
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
