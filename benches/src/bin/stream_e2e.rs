//! Streaming benchmarks on a real Kafka-protocol broker.
//!
//! (a) Throughput: N snapshot records (the synthetic estate of
//!     `generate`, 1% drift) produced to the two 6-partition snapshot
//!     topics, then consumed (1) by a minimal raw rdkafka consumer that only
//!     counts messages and (2) by `driftline run` (decode → Arrow → drift
//!     detector → findings → sink), in the same run, from the same topics.
//!     Prints both rates and their ratio, and driftline's peak RSS.
//! (b) Latency: change → finding, p50/p99, under a steady background load,
//!     on the Kafka bus (a change produced to driftline.config) and on the
//!     embedded default (a file changed in a watched folder).
//!
//! cargo build --release --features kafka -p driftline -p driftline-benches
//! deploy/local/test-stack.sh install && deploy/local/test-stack.sh start /tmp/stack
//! target/release/stream_e2e --brokers 127.0.0.1:PORT [--records 1000000] [--samples 50]

use std::collections::BTreeMap;
use std::io::{BufRead, Seek};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use driftline_benches::{generate, peak_rss_of};
use driftline_collectors::Collector;
use driftline_collectors::aws_config::{AwsConfigFileCollector, AwsConfigFileConfig};
use driftline_collectors::terraform::{Salt, TerraformCollector, TerraformConfig};
use driftline_detectors::Mappings;
use driftline_pipeline::bus::kafka::{KafkaBus, KafkaConfig};
use driftline_pipeline::{Bus, BusSink, OutMessage, Topic, TopicLayout};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PARTITIONS: i32 = 6;

struct Args {
    brokers: String,
    records: usize,
    samples: usize,
    driftline: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        brokers: String::new(),
        records: 1_000_000,
        samples: 50,
        driftline: std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("driftline")))
            .unwrap_or_else(|| PathBuf::from("driftline")),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--brokers" => a.brokers = v,
            "--records" => a.records = v.parse().expect("--records N"),
            "--samples" => a.samples = v.parse().expect("--samples N"),
            "--driftline" => a.driftline = v.into(),
            _ => panic!("unknown argument {k}"),
        }
    }
    assert!(!a.brokers.is_empty(), "--brokers HOST:PORT is required");
    a
}

fn bus(brokers: &str) -> KafkaBus {
    let bus = KafkaBus::new(KafkaConfig {
        brokers: brokers.into(),
        layout: TopicLayout {
            partitions: PARTITIONS,
            replication: 1,
        },
        properties: BTreeMap::new(),
    });
    bus.ensure_topics().expect("topics");
    bus
}

fn end_offsets(c: &BaseConsumer, topics: &[&str]) -> BTreeMap<(String, i32), i64> {
    let mut out = BTreeMap::new();
    for t in topics {
        for p in 0..PARTITIONS {
            let (_, high) = c
                .fetch_watermarks(t, p, Duration::from_secs(10))
                .expect("watermarks");
            out.insert((t.to_string(), p), high);
        }
    }
    out
}

/// (a) raw: count every message of the snapshot topics.
fn raw_count(brokers: &str, expected: usize) -> Duration {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("raw-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .create()
        .expect("raw consumer");
    let mut tpl = TopicPartitionList::new();
    for t in [Topic::Declared.name(), Topic::Config.name()] {
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(t, p, Offset::Beginning).unwrap();
        }
    }
    c.assign(&tpl).expect("assign");
    let started = Instant::now();
    let mut n = 0usize;
    while n < expected {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            n += 1;
            std::hint::black_box(m.payload().map(|p| p.len()));
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "raw consumer stalled at {n}"
        );
    }
    started.elapsed()
}

fn spawn_driftline(bin: &Path, args: &[&str], log: &Path) -> Child {
    Command::new(bin)
        .args(["--log-level", "info"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("driftline starts")
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// The consumer-group prefix of this run's driftline instances.
fn bench_group() -> String {
    format!("bench-{}", std::process::id())
}

/// A config in `dir` for a detect+sink instance of this run's group.
fn detect_sink_config(dir: &Path, brokers: &str) -> PathBuf {
    let cfg = dir.join("driftline.toml");
    std::fs::write(
        &cfg,
        format!(
            "roles = [\"detect\", \"sink\"]\ndata_dir = \"{}\"\n[bus]\nkind = \"kafka\"\nbrokers = \"{brokers}\"\npartitions = {PARTITIONS}\ngroup = \"{}\"\n[http]\nlisten = \"\"\n",
            dir.join("data").display(),
            bench_group()
        ),
    )
    .expect("write config");
    cfg
}

/// (a) driftline: time until its drift group has committed every offset,
/// and its peak RSS.
fn driftline_consume(a: &Args, dir: &Path, ends: &BTreeMap<(String, i32), i64>) -> (Duration, u64) {
    let group = bench_group();
    let cfg = detect_sink_config(dir, &a.brokers);
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &a.brokers)
        .set("group.id", format!("{group}-drift"))
        .create()
        .expect("probe");
    let mut tpl = TopicPartitionList::new();
    for (t, p) in ends.keys() {
        tpl.add_partition(t, *p);
    }
    let started = Instant::now();
    let child = spawn_driftline(
        &a.driftline,
        &["run", "--config", cfg.to_str().unwrap()],
        &dir.join("throughput.log"),
    );
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(c) = probe.committed_offsets(tpl.clone(), Duration::from_secs(5)) {
            let done = c.elements().iter().all(|e| match e.offset() {
                Offset::Offset(o) => o >= ends[&(e.topic().to_string(), e.partition())],
                _ => ends[&(e.topic().to_string(), e.partition())] == 0,
            });
            if done {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(3600),
            "driftline stalled"
        );
    }
    let took = started.elapsed();
    // The child's own high-water mark, read while it lives: getrusage's
    // figure for children would include this process's peak (see
    // `output_with_peak_rss`).
    let peak = peak_rss_of(&child.id().to_string()).unwrap_or(0);
    stop(child);
    (took, peak)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Waits for a new line in `file` (from `pos` on) that contains every needle.
fn wait_line(file: &Path, pos: &mut u64, needles: &[&str], deadline: Instant) -> bool {
    loop {
        if let Ok(mut f) = std::fs::File::open(file) {
            let _ = f.seek(std::io::SeekFrom::Start(*pos));
            let mut r = std::io::BufReader::new(f);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if !line.ends_with('\n') {
                    break;
                }
                *pos += line.len() as u64;
                if needles.iter().all(|n| line.contains(n)) {
                    return true;
                }
                line.clear();
            }
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn observed_item(id: &str, team: &str, captured: i64) -> serde_json::Value {
    serde_json::json!({
        "version": "1.3", "accountId": "123456789012", "configurationItemCaptureTime": captured,
        "configurationItemStatus": "OK", "configurationStateId": captured.to_string(),
        "arn": format!("arn:aws:s3:::{id}"), "resourceType": "AWS::S3::Bucket", "resourceId": id,
        "resourceName": id, "awsRegion": "eu-west-1", "availabilityZone": "Regional",
        "tags": {"team": team}, "relationships": [],
        "configuration": {"name": id}, "supplementaryConfiguration": {}
    })
}

/// (b) change → finding latency while `load` messages/s of unchanged
/// snapshots flow. `change(i)` makes change i (alternately opening and
/// resolving an unmanaged-bucket finding) and returns when it was made.
fn latency(
    samples: usize,
    findings: &Path,
    mut change: impl FnMut(usize) -> Instant,
) -> Vec<Duration> {
    let mut pos = std::fs::metadata(findings).map(|m| m.len()).unwrap_or(0);
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples {
        let t0 = change(i);
        let needle = if i.is_multiple_of(2) {
            "\"event\":\"new\""
        } else {
            "\"event\":\"resolved\""
        };
        let probe = "\"resource_id\":\"latency-probe\"";
        if !wait_line(
            findings,
            &mut pos,
            &[needle, probe],
            Instant::now() + Duration::from_secs(30),
        ) {
            panic!("change {i}: no finding event within 30 s");
        }
        out.push(t0.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    out.sort();
    out
}

fn report(name: &str, d: &[Duration]) {
    println!(
        "latency {name}: samples={} p50={:.0} ms p99={:.0} ms max={:.0} ms",
        d.len(),
        percentile(d, 0.5).as_secs_f64() * 1e3,
        percentile(d, 0.99).as_secs_f64() * 1e3,
        d.last().unwrap().as_secs_f64() * 1e3
    );
}

/// Background load on the Kafka bus: unchanged snapshots of `keys` buckets,
/// re-published at about `rate` messages/s until `stop`.
fn kafka_load(
    bus: Arc<KafkaBus>,
    rate: u64,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let producer = bus.producer().expect("producer");
        let mappings = Mappings::builtin().unwrap();
        let types = mappings.type_table();
        let items: Vec<serde_json::Value> = (0..1000)
            .map(|i| observed_item(&format!("load-{i}"), "core", 1))
            .collect();
        let doc = serde_json::json!({"configurationItems": items});
        let loaded = driftline_collectors::aws_config::load_bytes(
            doc.to_string().as_bytes(),
            "load.json",
            &types,
        )
        .expect("load items");
        let records: Vec<_> = loaded
            .items
            .into_iter()
            .map(|o| driftline_pipeline::Record::Observed(Box::new(o)))
            .collect();
        let msgs: Vec<OutMessage> =
            driftline_pipeline::codec::encode_records(Topic::Config, &records).unwrap();
        let per_tick = (rate / 10).max(1) as usize;
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let batch: Vec<OutMessage> = (0..per_tick)
                .map(|k| msgs[(i + k) % msgs.len()].clone())
                .collect();
            i += per_tick;
            producer.send(batch).expect("load send");
            sent.fetch_add(per_tick as u64, Ordering::Relaxed);
            if let Some(rest) = Duration::from_millis(100).checked_sub(t.elapsed()) {
                std::thread::sleep(rest);
            }
        }
    })
}

fn main() {
    let a = args();
    let tmp = tempfile::tempdir().expect("temp dir");
    let kbus = Arc::new(bus(&a.brokers));

    // ---- (a) throughput
    let gen_dir = tmp.path().join("estate");
    let g = generate(&gen_dir, a.records / 2).expect("generate");
    let mappings = Mappings::builtin().unwrap();
    let types = Arc::new(mappings.type_table());
    let mut tf = TerraformConfig::new(types.clone(), Salt::from_env_or_random());
    tf.files = g.state_files.clone();
    let sink = BusSink::new(kbus.producer().unwrap());
    let none = |_: &Path, _: u64| {};
    let started = Instant::now();
    let published = TerraformCollector::new(tf)
        .poll_once(&sink, &none)
        .published
        + AwsConfigFileCollector::new(AwsConfigFileConfig {
            files: g.observed_files.clone(),
            types: types.clone(),
            cut: None,
        })
        .poll_once(&sink, &none)
        .published;
    let produce = started.elapsed();
    println!(
        "produced {published} snapshot records to {PARTITIONS}-partition topics in {:.2} s ({:.0} records/s)",
        produce.as_secs_f64(),
        published as f64 / produce.as_secs_f64()
    );
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &a.brokers)
        .create()
        .unwrap();
    let ends = end_offsets(&probe, &[Topic::Declared.name(), Topic::Config.name()]);
    // Both consumers read the topics from the beginning: everything on them
    // (this run's records, and any earlier run's on the same broker).
    let on_topics = ends.values().sum::<i64>() as usize;
    assert!(
        on_topics >= published,
        "every produced record is on the topics"
    );
    let published = on_topics;

    let raw = raw_count(&a.brokers, published);
    let raw_rate = published as f64 / raw.as_secs_f64();
    println!(
        "raw rdkafka consumer (count only): {:.2} s, {:.0} records/s",
        raw.as_secs_f64(),
        raw_rate
    );
    let (dl, dl_peak) = driftline_consume(&a, tmp.path(), &ends);
    let dl_rate = published as f64 / dl.as_secs_f64();
    println!(
        "driftline (decode → Arrow → drift → findings → sink): {:.2} s, {:.0} records/s, peak RSS {:.0} MB",
        dl.as_secs_f64(),
        dl_rate,
        dl_peak as f64 / 1e6
    );
    println!(
        "throughput ratio driftline/raw: {:.2} (goal ≥ 0.8)",
        dl_rate / raw_rate
    );

    // ---- (b) latency on Kafka: a detect+sink instance on its own topics state
    let lat_dir = tmp.path().join("latency-kafka");
    std::fs::create_dir_all(&lat_dir).unwrap();
    let findings = lat_dir.join("findings.jsonl");
    // The group of (a): it has committed the backlog, so this instance
    // rebuilds its tables and starts at the end.
    let cfg = detect_sink_config(&lat_dir, &a.brokers);
    let child = spawn_driftline(
        &a.driftline,
        &[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--findings-out",
            findings.to_str().unwrap(),
        ],
        &lat_dir.join("driftline.log"),
    );
    // Wait until it has caught up with the backlog of (a) and diffed its
    // rebuilt tables against the findings it read back: a probe sent before
    // would wait behind the replay and read as slow detection.
    let mut pos = 0;
    assert!(
        wait_line(
            &lat_dir.join("driftline.log"),
            &mut pos,
            &["rebuilt state diffed against the published findings"],
            Instant::now() + Duration::from_secs(600),
        ),
        "the latency instance did not rebuild its tables within 600 s"
    );
    std::thread::sleep(Duration::from_secs(5));
    let stop_load = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let load_rate = 500;
    let load = kafka_load(kbus.clone(), load_rate, stop_load.clone(), sent.clone());
    std::thread::sleep(Duration::from_secs(2));
    let producer = kbus.producer().unwrap();
    let key = "aws/123456789012/eu-west-1/AWS::S3::Bucket/latency-probe";
    let probe_items = |i: usize| -> Vec<OutMessage> {
        let types = mappings.type_table();
        if i.is_multiple_of(2) {
            let doc = serde_json::json!({"configurationItems": [observed_item("latency-probe", "x", i as i64 + 10)]});
            let loaded = driftline_collectors::aws_config::load_bytes(
                doc.to_string().as_bytes(),
                "probe.json",
                &types,
            )
            .unwrap();
            let recs: Vec<_> = loaded
                .items
                .into_iter()
                .map(|o| driftline_pipeline::Record::Observed(Box::new(o)))
                .collect();
            driftline_pipeline::codec::encode_records(Topic::Config, &recs).unwrap()
        } else {
            driftline_pipeline::codec::encode_records(
                Topic::Config,
                &[driftline_pipeline::Record::Deleted { key: key.into() }],
            )
            .unwrap()
        }
    };
    let d = latency(a.samples, &findings, |i| {
        let msgs = probe_items(i);
        let t0 = Instant::now();
        producer.send(msgs).unwrap();
        t0
    });
    stop_load.store(true, Ordering::Relaxed);
    let _ = load.join();
    stop(child);
    println!(
        "background load on Kafka: {load_rate} snapshot messages/s ({} sent)",
        sent.load(Ordering::Relaxed)
    );
    report("kafka", &d);

    // ---- (b) latency on the embedded default: files in watched folders
    let emb = tmp.path().join("latency-embedded");
    let (state_dir, obs_dir) = (emb.join("terraform"), emb.join("aws-config"));
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::create_dir_all(&obs_dir).unwrap();
    let findings = emb.join("findings.jsonl");
    let child = spawn_driftline(
        &a.driftline,
        &[
            "run",
            "--watch-state",
            state_dir.to_str().unwrap(),
            "--watch-observed",
            obs_dir.to_str().unwrap(),
            "--data-dir",
            emb.join("data").to_str().unwrap(),
            "--findings-out",
            findings.to_str().unwrap(),
            "--listen",
            "",
        ],
        &emb.join("driftline.log"),
    );
    std::thread::sleep(Duration::from_secs(2));
    // Background: a 1000-item snapshot rewritten 5 times a second with new
    // capture times (5000 changed snapshots/s, none drifting).
    let stop_load = Arc::new(AtomicBool::new(false));
    let bg = {
        let stop = stop_load.clone();
        let path = obs_dir.join("background.json");
        std::thread::spawn(move || {
            let mut round = 0i64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let items: Vec<_> = (0..1000)
                    .map(|i| observed_item(&format!("bg-{i}"), "core", round))
                    .collect();
                let tmp = path.with_extension("tmp");
                std::fs::write(
                    &tmp,
                    serde_json::json!({"configurationItems": items}).to_string(),
                )
                .unwrap();
                std::fs::rename(&tmp, &path).unwrap();
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    let probe = obs_dir.join("probe.json");
    let d = latency(a.samples, &findings, |i| {
        let t0 = Instant::now();
        if i.is_multiple_of(2) {
            let tmp = probe.with_extension("tmp");
            std::fs::write(&tmp, serde_json::json!({"configurationItems": [observed_item("latency-probe", "x", i as i64 + 10)]}).to_string()).unwrap();
            std::fs::rename(&tmp, &probe).unwrap();
        } else {
            std::fs::remove_file(&probe).unwrap();
        }
        t0
    });
    stop_load.store(true, Ordering::Relaxed);
    let _ = bg.join();
    stop(child);
    println!("background load embedded: 1000-item snapshot rewritten every 200 ms");
    report("embedded", &d);
}
