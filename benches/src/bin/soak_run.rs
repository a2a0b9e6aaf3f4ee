//! The soak: `driftline run` on the embedded default under a steady stream
//! of snapshots for a long time, its resident memory sampled as it goes.
//! A service whose memory grows under a steady load fails in production
//! after hours, not in a test: this is the check, run by hand (not in CI).
//!
//! The load is the one `stream_e2e` measures latency under: a 1000-item
//! AWS Config snapshot file in a watched folder, rewritten every 200 ms
//! with new capture times (5000 changed snapshots/s), beside a Terraform
//! state that declares half of those buckets.
//!
//! cargo build --release -p driftline -p driftline-benches --bin soak_run
//! $CARGO_TARGET_DIR/release/soak_run --minutes 60 --sample-secs 60
//!
//! Prints one row per sample (RSS, high-water mark, snapshots written) and
//! the growth between the second quarter's and the last quarter's mean RSS
//! (the first quarter is warm-up: tables fill, the allocator settles).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use driftline_benches::{peak_rss_of, rss_of};

struct Args {
    driftline: PathBuf,
    minutes: u64,
    sample_secs: u64,
    items: usize,
    every_ms: u64,
}

fn args() -> Args {
    let mut a = Args {
        driftline: std::env::current_exe()
            .expect("own path")
            .with_file_name("driftline"),
        minutes: 60,
        sample_secs: 60,
        items: 1000,
        every_ms: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        let num = || value.parse::<u64>().expect("a number");
        match flag.as_str() {
            "--driftline" => a.driftline = PathBuf::from(&value),
            "--minutes" => a.minutes = num(),
            "--sample-secs" => a.sample_secs = num(),
            "--items" => a.items = num() as usize,
            "--every-ms" => a.every_ms = num(),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn bucket(i: usize) -> String {
    format!("soak-{i:05}")
}

fn item(id: &str, captured: u64) -> serde_json::Value {
    serde_json::json!({
        "version": "1.3", "accountId": "123456789012", "configurationItemCaptureTime": captured,
        "configurationItemStatus": "OK", "configurationStateId": captured.to_string(),
        "arn": format!("arn:aws:s3:::{id}"), "resourceType": "AWS::S3::Bucket", "resourceId": id,
        "resourceName": id, "awsRegion": "eu-west-1", "availabilityZone": "Regional",
        "tags": {"team": "core"}, "relationships": [],
        "configuration": {"name": id}, "supplementaryConfiguration": {}
    })
}

/// A state declaring every other bucket, so the load has both managed
/// (compared on every change) and unmanaged resources.
fn state(items: usize) -> serde_json::Value {
    let resources: Vec<_> = (0..items)
        .step_by(2)
        .map(|i| {
            let id = bucket(i);
            serde_json::json!({"mode": "managed", "type": "aws_s3_bucket", "name": format!("b{i}"),
                "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
                "instances": [{"attributes": {"id": id, "bucket": id, "arn": format!("arn:aws:s3:::{id}"),
                    "region": "eu-west-1", "tags": {"team": "core"}, "tags_all": {"team": "core"}}}]})
        })
        .collect();
    serde_json::json!({"version": 4, "terraform_version": "1.9.8", "serial": 1, "lineage": "soak",
        "outputs": {}, "resources": resources})
}

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write snapshot");
    std::fs::rename(&tmp, path).expect("rename snapshot");
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn mean(xs: &[u64]) -> f64 {
    xs.iter().sum::<u64>() as f64 / xs.len().max(1) as f64
}

fn main() {
    let a = args();
    assert!(
        a.driftline.exists(),
        "build the driftline binary first: {} is missing",
        a.driftline.display()
    );
    let dir = std::env::temp_dir().join(format!("driftline-soak-{}", std::process::id()));
    let (state_dir, obs_dir) = (dir.join("terraform"), dir.join("aws-config"));
    std::fs::create_dir_all(&state_dir).expect("state folder");
    std::fs::create_dir_all(&obs_dir).expect("observed folder");
    write_atomically(&state_dir.join("soak.tfstate"), &state(a.items).to_string());
    let child = Command::new(&a.driftline)
        .args(["run", "--watch-state"])
        .arg(&state_dir)
        .arg("--watch-observed")
        .arg(&obs_dir)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--listen", ""])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("driftline.log")).expect("log file"))
        .spawn()
        .expect("driftline starts");
    let pid = child.id();

    let stop_load = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, written) = (stop_load.clone(), written.clone());
        let (path, items, every) = (obs_dir.join("snapshot.json"), a.items, a.every_ms);
        std::thread::spawn(move || {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                round += 1;
                let captured = 1_700_000_000_000 + round;
                let list: Vec<_> = (0..items).map(|i| item(&bucket(i), captured)).collect();
                write_atomically(
                    &path,
                    &serde_json::json!({"configurationItems": list}).to_string(),
                );
                written.fetch_add(items as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(every).saturating_sub(t.elapsed()));
            }
        })
    };

    println!("| minute | RSS | high-water | snapshots written | rate |");
    println!("|---|---|---|---|---|");
    let started = Instant::now();
    let total = Duration::from_secs(a.minutes * 60);
    let mut samples = Vec::new();
    let mut last_written = 0;
    while started.elapsed() < total {
        std::thread::sleep(Duration::from_secs(a.sample_secs));
        let Some(rss) = rss_of(&pid.to_string()) else {
            panic!(
                "driftline exited early; see {}",
                dir.join("driftline.log").display()
            );
        };
        let hwm = peak_rss_of(&pid.to_string()).unwrap_or(0);
        let w = written.load(Ordering::Relaxed);
        println!(
            "| {:.1} | {:.0} MB | {:.0} MB | {w} | {:.0}/s |",
            started.elapsed().as_secs_f64() / 60.0,
            rss as f64 / 1e6,
            hwm as f64 / 1e6,
            (w - last_written) as f64 / a.sample_secs as f64
        );
        last_written = w;
        samples.push(rss);
    }
    stop_load.store(true, Ordering::Relaxed);
    let _ = load.join();
    let hwm = peak_rss_of(&pid.to_string()).unwrap_or(0);
    stop(child);
    if samples.is_empty() {
        println!("\nno sample taken: run for at least --sample-secs");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let q = samples.len() / 4;
    let (settled, last) = (
        mean(&samples[q..(2 * q).max(q + 1).min(samples.len())]),
        mean(&samples[samples.len() - q.max(1)..]),
    );
    println!(
        "\n{} minutes, {} snapshots: mean RSS {:.0} MB in the second quarter, {:.0} MB in the last ({:+.1}%); high-water {:.0} MB",
        a.minutes,
        written.load(Ordering::Relaxed),
        settled / 1e6,
        last / 1e6,
        (last / settled - 1.0) * 100.0,
        hwm as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
}
