//! The alerts benchmark: N findings fire, then resolve, through the alert
//! engine to rendered notifications (PagerDuty events and Alertmanager-shaped
//! webhook messages); throughput and peak RSS. With `--alertmanager BIN`,
//! the same alert stream goes to a real Alertmanager (same route and
//! grouping, webhook to a local counter) and both are compared.
//!
//! cargo run --release -p driftline-benches --features alerts --bin alerts_e2e -- \
//!     --alerts 1000000 [--alertmanager prometheus-alertmanager --am-alerts 100000]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driftline_alerts::AlertsConfig;
use driftline_alerts::engine::{AlertEngine, AlertInput, IntegrationKind};
use driftline_alerts::labels::Labels;
use driftline_alerts::notify::{Links, Notifier, PagerDuty, webhook_message};
use driftline_benches::alerts::{config, labels};
use driftline_benches::{cpu_seconds_of, peak_rss_self};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Per group: (alerts notified firing, alerts notified resolved, messages).
/// Alerts are counted by a hash of their resource key: the tally lives in
/// this process, whose peak RSS is driftline's figure, and 2 M key strings
/// would weigh in it.
type Tally = BTreeMap<String, (BTreeSet<u64>, BTreeSet<u64>, usize)>;

fn key_hash(resource_key: &str) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    // DefaultHasher::new() is keyed alike in every process and run.
    let mut h = DefaultHasher::new();
    resource_key.hash(&mut h);
    h.finish()
}

/// Wall time, tally, PagerDuty events, peak RSS and CPU seconds.
fn driftline(cfg: &AlertsConfig, n: usize, teams: usize) -> (Duration, Tally, usize, u64, f64) {
    let pd = PagerDuty::new("http://127.0.0.1:1/", "x".repeat(32), "driftline");
    let links = Links {
        external_url: "http://127.0.0.1:9464".into(),
        dashboard_url: None,
    };
    let mut engine = AlertEngine::new(cfg);
    let mut tally = Tally::new();
    let mut pd_events = 0usize;
    let mut bytes = 0u64;
    let cpu_before = cpu_seconds_of("self").unwrap_or(0.0);
    let started = Instant::now();
    let mut render = |ns: Vec<driftline_alerts::Notification>, tally: &mut Tally| {
        for n in ns {
            match n.integration.kind {
                IntegrationKind::PagerDuty => {
                    for m in pd.render(&n, &links) {
                        bytes += m.get().len() as u64;
                        pd_events += 1;
                    }
                }
                _ => {
                    let m = webhook_message(&n, &links, 0);
                    bytes += m.get().len() as u64;
                    let t = tally
                        .entry(driftline_alerts::labels::render(&n.group_labels))
                        .or_default();
                    for a in n.alerts.iter() {
                        let key = key_hash(a.labels().get("resource_key").unwrap_or(""));
                        if a.state == driftline_alerts::AlertState::Resolved {
                            t.1.insert(key);
                        } else {
                            t.0.insert(key);
                        }
                    }
                    t.2 += 1;
                }
            }
        }
    };
    for i in 0..n {
        let l = labels(i, teams);
        engine.ingest(
            AlertInput {
                fingerprint: format!("{i:032x}"),
                labels: l,
                annotations: Labels::new(),
                details: serde_json::Value::Null,
                firing: true,
                at_ms: 1,
            },
            0,
        );
    }
    render(engine.tick(1_000), &mut tally);
    for i in 0..n {
        engine.ingest(
            AlertInput {
                fingerprint: format!("{i:032x}"),
                labels: labels(i, teams),
                annotations: Labels::new(),
                details: serde_json::Value::Null,
                firing: false,
                at_ms: 2,
            },
            2_000,
        );
    }
    render(engine.tick(6_000), &mut tally);
    let took = started.elapsed();
    let cpu = cpu_seconds_of("self").unwrap_or(0.0) - cpu_before;
    eprintln!(
        "driftline: {pd_events} PagerDuty events, {} MB rendered",
        bytes / 1_000_000
    );
    (took, tally, pd_events, peak_rss_self(), cpu)
}

/// Counts Alertmanager's webhook notifications per group.
fn counter() -> (String, Arc<Mutex<Tally>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let t = tally.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let t = t.clone();
            std::thread::spawn(move || {
                let mut s = s;
                let mut r = BufReader::new(s.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).unwrap();
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let mut gl = Labels::new();
                    for (k, x) in v["groupLabels"].as_object().into_iter().flatten() {
                        gl.insert(k.clone(), x.as_str().unwrap_or("").into());
                    }
                    let alerts = v["alerts"].as_array().cloned().unwrap_or_default();
                    let mut t = t.lock().unwrap();
                    let e = t.entry(driftline_alerts::labels::render(&gl)).or_default();
                    for a in &alerts {
                        let key = key_hash(a["labels"]["resource_key"].as_str().unwrap_or(""));
                        if a["status"] == "resolved" {
                            e.1.insert(key);
                        } else {
                            e.0.insert(key);
                        }
                    }
                    e.2 += 1;
                    drop(t);
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                }
            });
        }
    });
    (url, tally)
}

fn post(addr: &str, body: &str) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "POST /api/v2/alerts HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(
        out.starts_with("HTTP/1.1 200"),
        "Alertmanager refused: {out}"
    );
}

/// Wall time, tally, peak RSS and the CPU seconds Alertmanager spent.
fn alertmanager(bin: &str, n: usize, teams: usize) -> (Duration, Tally, u64, f64) {
    let dir = tempfile_dir();
    let (hook, tally) = counter();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    std::fs::write(
        dir.join("am.yml"),
        format!("route:\n  receiver: oncall\n  group_by: [alertname, team]\n  group_wait: 1s\n  group_interval: 5s\n  repeat_interval: 1h\nreceivers:\n- name: oncall\n  webhook_configs:\n  - url: {hook}\n    send_resolved: true\n"),
    )
    .unwrap();
    let mut child = std::process::Command::new(bin)
        .arg(format!("--config.file={}", dir.join("am.yml").display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--cluster.listen-address=")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("alertmanager starts");
    std::thread::sleep(Duration::from_secs(2));
    let pid = child.id().to_string();
    let cpu_before = cpu_seconds_of(&pid).unwrap_or(0.0);
    let batch = |firing: bool| {
        let ends = if firing {
            String::new()
        } else {
            format!(
                ",\"endsAt\":\"{}\"",
                driftline_pipeline::format_epoch_ms(driftline_pipeline::now_ms())
            )
        };
        let mut i = 0;
        while i < n {
            let end = (i + 5000).min(n);
            let items: Vec<String> = (i..end)
                .map(|j| {
                    format!(
                        "{{\"labels\":{}{ends}}}",
                        serde_json::to_string(&labels(j, teams)).unwrap()
                    )
                })
                .collect();
            post(&addr, &format!("[{}]", items.join(",")));
            i = end;
        }
    };
    let started = Instant::now();
    batch(true);
    let wait_until = |f: &dyn Fn(&Tally) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(600);
        while !f(&tally.lock().unwrap()) {
            assert!(
                Instant::now() < deadline,
                "Alertmanager did not notify in time"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_until(&|t: &Tally| t.values().map(|e| e.0.len()).sum::<usize>() >= n);
    batch(false);
    wait_until(&|t: &Tally| t.values().map(|e| e.1.len()).sum::<usize>() >= n);
    let took = started.elapsed();
    let cpu = cpu_seconds_of(&pid).unwrap_or(0.0) - cpu_before;
    let rss = driftline_benches::peak_rss_of(&pid).unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    let t = tally.lock().unwrap().clone();
    (took, t, rss, cpu)
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("driftline-am-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let n: usize = arg("--alerts")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let teams: usize = arg("--teams").and_then(|v| v.parse().ok()).unwrap_or(100);
    let (took, tally, pd_events, rss, cpu) = driftline(&config(), n, teams);
    let groups = tally.len();
    let messages: usize = tally.values().map(|e| e.2).sum();
    let rate = 2.0 * n as f64 / took.as_secs_f64();
    println!(
        "driftline: {n} alerts fired and resolved in {:.2} s = {rate:.0} alert events/s ({:.2} CPU s); {groups} groups, {messages} webhook messages, {pd_events} PagerDuty events; peak RSS {} MB",
        took.as_secs_f64(),
        cpu,
        rss / 1_000_000
    );
    if let Some(bin) = arg("--alertmanager") {
        let m: usize = arg("--am-alerts").and_then(|v| v.parse().ok()).unwrap_or(n);
        // The same work on both sides: Alertmanager's route has the
        // webhook only, so driftline's does too.
        let mut webhook_only = config();
        for r in &mut webhook_only.receivers {
            r.pagerduty_configs.clear();
        }
        let (d_took, d_tally, _, _, d_cpu) = driftline(&webhook_only, m, teams);
        println!(
            "driftline, webhook only: {m} alerts fired and resolved in {:.2} s ({d_cpu:.2} CPU s)",
            d_took.as_secs_f64()
        );
        let (am_took, am_tally, am_rss, am_cpu) = alertmanager(&bin, m, teams);
        // Alertmanager's clock includes one group_wait (1 s) and one
        // group_interval (5 s) of waiting that the engine's virtual clock skips.
        let am_busy = am_took
            .saturating_sub(Duration::from_secs(6))
            .max(Duration::from_millis(1));
        let am_rate = 2.0 * m as f64 / am_busy.as_secs_f64();
        let d_rate = 2.0 * m as f64 / d_took.as_secs_f64();
        let sets = |t: &Tally| {
            t.iter()
                .map(|(k, v)| (k.clone(), (v.0.clone(), v.1.clone())))
                .collect::<BTreeMap<_, _>>()
        };
        let same = sets(&d_tally) == sets(&am_tally);
        println!(
            "alertmanager: {m} alerts fired and resolved in {:.2} s (minus 6 s of timers) = {am_rate:.0} alert events/s ({am_cpu:.2} CPU s, HTTP ingest included); {} groups, {} webhook messages; peak RSS {} MB",
            am_took.as_secs_f64(),
            am_tally.len(),
            am_tally.values().map(|e| e.2).sum::<usize>(),
            am_rss / 1_000_000
        );
        println!(
            "same notified alerts per group: {same}; driftline/alertmanager throughput: {:.1}x by wall clock, {:.1}x per CPU second",
            d_rate / am_rate,
            am_cpu / d_cpu.max(1e-3)
        );
    }
}
