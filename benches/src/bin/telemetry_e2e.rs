//! The telemetry ingest benchmark, in one run:
//!
//! 1. remote-write: the same stream of snappy `WriteRequest`s (S series ×
//!    R rounds, one sample per series per round, `--chunk` series per
//!    request, `--senders` connections each owning its series so every
//!    series arrives in order) pushed into `driftline run` (embedded bus
//!    and Parquet store) and into Prometheus 2.42 started with
//!    `--web.enable-remote-write-receiver`. For each: seconds until every
//!    request was acknowledged, samples/s, 503 retries, and the server's
//!    peak RSS over its whole life (under GNU time). driftline's time also
//!    counts its drain into the store after SIGTERM, and its rows are
//!    counted back with `driftline sql`.
//! 2. log files: `--log-lines` JSON lines tailed from a file into the
//!    store: lines/s (until SIGTERM's drain finished) and peak RSS.
//!
//!   telemetry_e2e --driftline target/release/driftline [--prometheus prometheus]
//!       [--series 10000] [--rounds 200] [--chunk 1250] [--senders 4] [--log-lines 1000000]
//!       [--config driftline.toml]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use driftline_benches::TimedServer;
use driftline_pipeline::telemetry::prompb;
use prost::Message;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    driftline: PathBuf,
    prometheus: String,
    series: usize,
    rounds: usize,
    chunk: usize,
    senders: usize,
    log_lines: usize,
    /// A driftline.toml for the remote-write run (to try `[bus]` settings).
    config: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        driftline: PathBuf::from("target/release/driftline"),
        prometheus: "prometheus".into(),
        series: 10_000,
        rounds: 200,
        chunk: 1250,
        senders: 4,
        log_lines: 1_000_000,
        config: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let mut number = |what: &str| {
            value()
                .parse::<usize>()
                .unwrap_or_else(|_| panic!("{what} N"))
        };
        match flag.as_str() {
            "--driftline" => a.driftline = value().into(),
            "--prometheus" => a.prometheus = value(),
            "--series" => a.series = number("--series"),
            "--rounds" => a.rounds = number("--rounds"),
            "--chunk" => a.chunk = number("--chunk"),
            "--senders" => a.senders = number("--senders"),
            "--log-lines" => a.log_lines = number("--log-lines"),
            "--config" => a.config = Some(value()),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        a.series.is_multiple_of(a.chunk) && (a.series / a.chunk).is_multiple_of(a.senders),
        "--series must split into --chunk-sized requests, a whole number per sender"
    );
    a
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    format!("127.0.0.1:{}", l.local_addr().unwrap().port())
}

/// Each sender's bodies, in order. Sender `i` owns every chunk `c` with
/// `c % senders == i`, so each series' samples go in time order.
fn bodies(a: &Args) -> Vec<Vec<Vec<u8>>> {
    let chunks = a.series / a.chunk;
    let start = driftline_pipeline::now_ms() - 3_600_000;
    let mut out = vec![Vec::new(); a.senders];
    for round in 0..a.rounds {
        let ts = start + round as i64 * 15_000;
        for c in 0..chunks {
            let timeseries = (c * a.chunk..(c + 1) * a.chunk)
                .map(|s| prompb::TimeSeries {
                    labels: vec![
                        prompb::Label {
                            name: "__name__".into(),
                            value: format!("bench_metric_{}", s % 50),
                        },
                        prompb::Label {
                            name: "instance".into(),
                            value: format!("host-{}:9100", s / 50),
                        },
                        prompb::Label {
                            name: "job".into(),
                            value: "node".into(),
                        },
                    ],
                    samples: vec![prompb::Sample {
                        value: (round * 7 + s) as f64,
                        timestamp: ts,
                    }],
                    ..Default::default()
                })
                .collect();
            let req = prompb::WriteRequest {
                timeseries,
                metadata: vec![],
            };
            let body = snap::raw::Encoder::new()
                .compress_vec(&req.encode_to_vec())
                .expect("snappy");
            out[c % a.senders].push(body);
        }
    }
    out
}

/// One HTTP/1.1 request on a kept-alive connection: the status.
fn post(conn: &mut BufReader<TcpStream>, addr: &str, path: &str, body: &[u8]) -> (u16, String) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // One write: a request split over two segments waits out Nagle and
    // delayed ACKs (40 ms a request) and would measure that instead.
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    conn.get_mut().write_all(&request).expect("send");
    let mut line = String::new();
    conn.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        conn.read_line(&mut h).expect("header");
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut text = vec![0u8; length];
    conn.read_exact(&mut text).expect("body");
    (status, String::from_utf8_lossy(&text).into_owned())
}

/// Pushes every sender's bodies at once; returns the time and the retries.
fn push_all(addr: &str, per_sender: &[Vec<Vec<u8>>]) -> (Duration, u64) {
    let retries = AtomicU64::new(0);
    let t = Instant::now();
    std::thread::scope(|scope| {
        for bodies in per_sender {
            let retries = &retries;
            scope.spawn(move || {
                let stream = TcpStream::connect(addr).expect("connect");
                stream.set_nodelay(true).expect("TCP_NODELAY");
                let mut conn = BufReader::new(stream);
                for body in bodies {
                    loop {
                        let (status, text) = post(&mut conn, addr, "/api/v1/write", body);
                        match status {
                            200..=299 => break,
                            429 | 503 => {
                                retries.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(5));
                            }
                            other => panic!("HTTP {other}: {text}"),
                        }
                    }
                }
            });
        }
    });
    (t.elapsed(), retries.load(Ordering::Relaxed))
}

fn wait_http(addr: &str, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(addr) {
            let _ = write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            );
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            if text.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{addr}{path} never answered 200");
}

/// `driftline run` on a free address, under GNU time for its peak RSS.
fn driftline(a: &Args, dir: &Path, extra: &[&str]) -> (TimedServer, String) {
    let listen = free_addr();
    let mut cmd = Command::new(&a.driftline);
    cmd.args(["run", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--listen", &listen])
        .args(extra);
    let log = std::fs::File::create(dir.join("driftline.log")).unwrap();
    let server = TimedServer::spawn(&cmd, |c| {
        c.stdout(Stdio::null()).stderr(log);
    })
    .expect("driftline starts");
    wait_http(&listen, "/healthz");
    (server, listen)
}

fn count_rows(a: &Args, dir: &Path, query: &str) -> i64 {
    let out = Command::new(&a.driftline)
        .args(["sql", query, "--output", "json", "--data-dir"])
        .arg(dir.join("data"))
        .output()
        .expect("driftline sql");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    rows[0]["n"].as_i64().unwrap_or(-1)
}

fn mb(b: u64) -> u64 {
    b / (1 << 20)
}

fn main() {
    let a = args();
    let samples = a.series * a.rounds;
    let per_sender = bodies(&a);
    let bytes: usize = per_sender.iter().flatten().map(Vec::len).sum();
    println!(
        "remote-write stream: {} series × {} rounds = {samples} samples in {} requests ({} MB snappy), {} senders",
        a.series,
        a.rounds,
        per_sender.iter().map(Vec::len).sum::<usize>(),
        mb(bytes as u64),
        a.senders
    );
    println!(
        "\n| receiver | acknowledged in | samples/s | stored in | 503 retries | peak RSS |\n|---|---|---|---|---|---|"
    );

    // driftline: acknowledged, then drained into the store by SIGTERM.
    let dir = tempfile::tempdir().unwrap();
    let config: Vec<&str> = match &a.config {
        Some(c) => vec!["--config", c],
        None => Vec::new(),
    };
    let (child, listen) = driftline(&a, dir.path(), &config);
    let start = Instant::now();
    let (acked, retries) = push_all(&listen, &per_sender);
    let d_peak = child.terminate().expect("driftline stops");
    let stored = start.elapsed();
    let rows = count_rows(&a, dir.path(), "SELECT count(*) AS n FROM metric_samples");
    assert_eq!(
        rows, samples as i64,
        "driftline stored {rows} of {samples} samples"
    );
    let d_rate = samples as f64 / stored.as_secs_f64();
    println!(
        "| driftline (embedded) | {:.2} s | {:.0} (stored) | {:.2} s | {retries} | {} MB |",
        acked.as_secs_f64(),
        d_rate,
        stored.as_secs_f64(),
        mb(d_peak)
    );

    // Prometheus's own receiver, the same stream.
    let pdir = tempfile::tempdir().unwrap();
    std::fs::write(pdir.path().join("p.yml"), "global: {}\n").unwrap();
    let paddr = free_addr();
    let mut cmd = Command::new(&a.prometheus);
    cmd.arg(format!(
        "--config.file={}",
        pdir.path().join("p.yml").display()
    ))
    .arg(format!(
        "--storage.tsdb.path={}",
        pdir.path().join("data").display()
    ))
    .arg(format!("--web.listen-address={paddr}"))
    .arg("--web.enable-remote-write-receiver");
    let log = std::fs::File::create(pdir.path().join("prometheus.log")).unwrap();
    let prom = TimedServer::spawn(&cmd, |c| {
        c.stdout(Stdio::null()).stderr(log);
    })
    .expect("prometheus starts");
    wait_http(&paddr, "/-/ready");
    let (p_acked, p_retries) = push_all(&paddr, &per_sender);
    let p_peak = prom.terminate().expect("prometheus stops");
    let p_rate = samples as f64 / p_acked.as_secs_f64();
    println!(
        "| Prometheus 2.42 receiver | {:.2} s | {:.0} (in head) | — | {p_retries} | {} MB |",
        p_acked.as_secs_f64(),
        p_rate,
        mb(p_peak)
    );
    println!(
        "\ndriftline / Prometheus: {:.2}× the samples/s (driftline counted until stored), {:.2}× the peak RSS",
        d_rate / p_rate,
        d_peak as f64 / p_peak.max(1) as f64
    );

    // Log files.
    if a.log_lines > 0 {
        let ldir = tempfile::tempdir().unwrap();
        let log = ldir.path().join("app.log");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
        for i in 0..a.log_lines {
            writeln!(
                f,
                r#"{{"ts":"2026-12-03T10:00:00.{:03}Z","level":"info","msg":"request {i} served","route":"/api/{}","status":200,"duration_ms":{}}}"#,
                i % 1000,
                i % 37,
                i % 250
            )
            .unwrap();
        }
        f.flush().unwrap();
        drop(f);
        let size = std::fs::metadata(&log).unwrap().len();
        let config = ldir.path().join("driftline.toml");
        std::fs::write(
            &config,
            format!(
                "[logs]\npoll_interval_ms = 50\n[[logs.files]]\npaths = [\"{}\"]\nformat = \"json\"\nservice = \"bench\"\n",
                log.display()
            ),
        )
        .unwrap();
        let start = Instant::now();
        let (child, listen) = driftline(
            &a,
            ldir.path(),
            &["--config", &config.display().to_string()],
        );
        let want = format!(
            "driftline_ingest_log_records_total{{source=\"file\"}} {}",
            a.log_lines
        );
        let deadline = Instant::now() + Duration::from_secs(1800);
        loop {
            let mut s = TcpStream::connect(&listen).expect("connect");
            let _ = write!(
                s,
                "GET /metrics HTTP/1.1\r\nHost: {listen}\r\nConnection: close\r\n\r\n"
            );
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            if text.contains(&want) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "log lines not all read in 30 min"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let read = start.elapsed();
        let peak = child.terminate().expect("driftline stops");
        let stored = start.elapsed();
        let rows = count_rows(&a, ldir.path(), "SELECT count(*) AS n FROM log_records");
        assert_eq!(
            rows, a.log_lines as i64,
            "stored {rows} of {} lines",
            a.log_lines
        );
        println!(
            "\n| log file ({} lines, {} MB JSON) | read onto the bus | stored | lines/s (stored) | peak RSS |\n|---|---|---|---|---|\n| driftline | {:.2} s | {:.2} s | {:.0} | {} MB |",
            a.log_lines,
            mb(size),
            read.as_secs_f64(),
            stored.as_secs_f64(),
            a.log_lines as f64 / stored.as_secs_f64(),
            mb(peak)
        );
    }
}
