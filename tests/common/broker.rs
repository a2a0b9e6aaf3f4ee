//! A tansu broker of a test's own (SQLite storage, a free port) that a test
//! can kill and restart, and what the Kafka tests share around it: the
//! example estate published, topics read back, `driftline run`
//! configurations on it. Used by `tests/kafka.rs` and `tests/kafka_faults.rs`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use driftline_collectors::Collector;
use driftline_collectors::aws_config::{AwsConfigFileCollector, AwsConfigFileConfig};
use driftline_collectors::terraform::{Salt, TerraformCollector, TerraformConfig};
use driftline_detectors::Mappings;
use driftline_pipeline::bus::kafka::{KafkaBus, KafkaConfig};
use driftline_pipeline::{Bus, BusSink, ConsumerSpec, Event, Message, Topic, TopicLayout};

use crate::common::{self, copy_dir, free_port, no_peer, wait_for};

/// A tansu broker with its own SQLite file and port.
pub struct Broker {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker, or returns `None` outside CI when none is installed.
    pub fn start() -> Option<Broker> {
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

    pub fn up(&mut self) {
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

    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates `topic` with `partitions` through tansu's own command.
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let s = Command::new(&self.bin)
            .args(["topic", "create", "--broker"])
            .arg(format!("tcp://{}", self.addr()))
            .args(["--partitions", &partitions.to_string(), topic])
            .status()
            .unwrap();
        assert!(s.success(), "tansu topic create {topic}");
    }

    pub fn bus(&self) -> KafkaBus {
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
        if let Some(dir) = common::kept_after_failure() {
            let to = dir.join(format!("tansu-{}", self.port));
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
pub fn publish_estate(bus: &KafkaBus, estate: &Path) -> usize {
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
        cut: None,
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
pub fn read_all(bus: &KafkaBus, topics: &[Topic], n: usize) -> Vec<Message> {
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

pub fn write_config(dir: &Path, broker: &str, roles: &str, extra: &str) -> PathBuf {
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
pub fn watching_config(dir: &Path, broker: &Broker) -> (PathBuf, PathBuf) {
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

pub fn events_key(events: &[serde_json::Value]) -> Vec<(String, String)> {
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

/// `driftline run --config cfg`, its findings (`svc.findings`) and log in
/// `dir`.
pub fn run_config(cfg: &Path, dir: &Path) -> common::Service {
    common::Service::start(
        &["--config", cfg.to_str().unwrap()],
        &dir.join("findings.jsonl"),
        &dir.join("run.log"),
    )
}
