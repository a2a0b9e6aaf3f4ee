//! End-to-end scan benchmark: generates N declared + N observed resources
//! with 1% drift, times a plain serde_json parse of every input file (on all
//! cores, as the scan gets), then runs `driftline scan` on the same files and
//! reports resources/s, its peak RSS (from `/usr/bin/time`), and the
//! scan/parse ratio.
//!
//! cargo build --release -p driftline -p driftline-benches
//! target/release/scan_e2e 100000 1000000
//!
//! `DRIFTLINE_BENCH_DIR` says where the inputs go; `DRIFTLINE_BENCH_KEEP=1`
//! keeps them afterwards (to profile `driftline scan` on them).
//! `DRIFTLINE_BENCH_SAMPLES` (default 3) times the parse and the scan that
//! many times, one after the other, and reports the medians: this shared
//! VM's speed swings by a fifth between runs.
//!
//! The parse runs in a process of its own each time (`scan_e2e --parse
//! FILE...`), as the scan does: repeated in one process, it reused the
//! memory its first run had faulted in and took half the time (0.9 s
//! against 1.9 s at 100 k), which no scan could.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use driftline_benches::{generate, output_with_peak_rss};

// The same allocator as the driftline binary, so the parse baseline is fair.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn parse_all(files: &[PathBuf]) -> usize {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..cores)
            .map(|_| {
                s.spawn(|| {
                    let mut values = 0usize;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(f) = files.get(i) else { break };
                        let bytes = std::fs::read(f).expect("read input");
                        let v: serde_json::Value =
                            serde_json::from_slice(&bytes).expect("valid JSON");
                        values += v.as_object().map(|m| m.len()).unwrap_or(0);
                    }
                    values
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    })
}

/// One `driftline scan` of the inputs in `dir`: its output, peak RSS and time.
fn run_scan(
    driftline: &std::path::Path,
    dir: &std::path::Path,
) -> (std::process::Output, u64, std::time::Duration) {
    let mut cmd = Command::new(driftline);
    cmd.args(["scan", "--output", "json", "--state"])
        .arg(dir.join("state"))
        .arg("--observed")
        .arg(dir.join("observed"))
        .env("DRIFTLINE_HASH_SALT", "bench");
    let t = Instant::now();
    let (out, rss) = output_with_peak_rss(&cmd).expect("run driftline under /usr/bin/time");
    (out, rss, t.elapsed())
}

/// The middle one of `times`.
fn median(mut times: Vec<std::time::Duration>) -> std::time::Duration {
    times.sort();
    times[times.len() / 2]
}

/// One parse of `files` in a child process: its time and peak RSS.
fn run_parse(exe: &std::path::Path, files: &[PathBuf]) -> (std::time::Duration, u64) {
    let mut cmd = Command::new(exe);
    cmd.arg("--parse").args(files);
    let t = Instant::now();
    let (out, rss) = output_with_peak_rss(&cmd).expect("run the parse under /usr/bin/time");
    assert!(
        out.status.success(),
        "the parse failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (t.elapsed(), rss)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--parse") {
        let files: Vec<PathBuf> = args[2..].iter().map(PathBuf::from).collect();
        println!("{}", parse_all(&files));
        return;
    }
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000]
    } else {
        sizes
    };
    let exe = std::env::current_exe().expect("own path");
    let driftline = exe.with_file_name("driftline");
    assert!(
        driftline.exists(),
        "build the driftline binary first: {} is missing",
        driftline.display()
    );
    let work = std::env::var("DRIFTLINE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("driftline-bench"));
    println!(
        "| N | input | parse (serde_json) | scan | resources/s | scan/parse | parse peak RSS | scan peak RSS | findings |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let dir = work.join(n.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        let g = generate(&dir, n).expect("generate inputs");
        let mut files = g.state_files.clone();
        files.extend(g.observed_files.clone());
        // The inputs just written are still being flushed to disk: both
        // timings start once that is done, so neither pays for it.
        let _ = Command::new("sync").status();

        let samples: usize = std::env::var("DRIFTLINE_BENCH_SAMPLES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3)
            .max(1);
        let (mut parses, mut scans, mut rss, mut parse_rss) = (Vec::new(), Vec::new(), 0, 0);
        let mut out = None;
        for _ in 0..samples {
            let (parse, r) = run_parse(&exe, &files);
            parses.push(parse);
            parse_rss = parse_rss.max(r);
            let (o, r, scan) = run_scan(&driftline, &dir);
            rss = rss.max(r);
            scans.push(scan);
            out = Some(o);
        }
        let out = out.expect("one sample at least");
        let (parse, scan) = (median(parses), median(scans));
        assert_eq!(
            out.status.code(),
            Some(1),
            "drift expected: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
        let s = &report["summary"];
        let found = (
            s["changed"].as_u64().unwrap_or(0),
            s["missing"].as_u64().unwrap_or(0),
            s["unmanaged"].as_u64().unwrap_or(0),
        );
        assert_eq!(
            found,
            (g.changed as u64, g.missing as u64, g.unmanaged as u64),
            "the scan finds exactly the planted drift"
        );
        println!(
            "| {n} | {:.0} MB | {:.2} s | {:.2} s | {:.0} | {:.2} | {:.0} MB | {:.0} MB | {} changed, {} missing, {} unmanaged |",
            g.bytes as f64 / 1e6,
            parse.as_secs_f64(),
            scan.as_secs_f64(),
            (2 * n) as f64 / scan.as_secs_f64(),
            scan.as_secs_f64() / parse.as_secs_f64(),
            parse_rss as f64 / 1e6,
            rss as f64 / 1e6,
            found.0,
            found.1,
            found.2
        );
        // DRIFTLINE_BENCH_KEEP=1 leaves the inputs for a profiler.
        if std::env::var_os("DRIFTLINE_BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
