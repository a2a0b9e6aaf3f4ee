//! The store and FinOps benchmark, in one run:
//!
//! 1. `driftline cost import` of an N-row FOCUS export (default 1 M), into
//!    the embedded Parquet store and into ClickHouse: rows/s and peak RSS;
//! 2. the ClickHouse store's insert (`Store::append` of the export's Arrow
//!    batches, over HTTP) next to `clickhouse-client` inserting
//!    the same rows, both in ClickHouse's Native format: rows/s and the
//!    ratio;
//! 3. `driftline sql` on the FinOps views over 10 × N cost rows, on both
//!    stores: seconds and peak RSS per query.
//!
//!   store_e2e --driftline target/release/driftline --clickhouse http://127.0.0.1:8123 \
//!       --tcp-port 9000 [--rows 1000000] [--scale 10] [--client clickhouse-client]

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driftline_pipeline::store::{
    ClickHouseStore, FinOpsConfig, QueryLimits, QueryResult, Store, StoreError,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    driftline: PathBuf,
    clickhouse: String,
    tcp_port: String,
    client: String,
    rows: usize,
    scale: usize,
}

fn args() -> Args {
    let mut a = Args {
        driftline: PathBuf::from("target/release/driftline"),
        clickhouse: String::new(),
        tcp_port: "9000".into(),
        client: "clickhouse-client".into(),
        rows: 1_000_000,
        scale: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--driftline" => a.driftline = value().into(),
            "--clickhouse" => a.clickhouse = value(),
            "--tcp-port" => a.tcp_port = value(),
            "--client" => a.client = value(),
            "--rows" => a.rows = value().parse().expect("--rows N"),
            "--scale" => a.scale = value().parse().expect("--scale N"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!a.clickhouse.is_empty(), "--clickhouse URL is required");
    a
}

/// Runs `cmd` to the end: wall time, its own peak RSS, and its stdout. The
/// peak is the child's VmHWM, sampled every 5 ms until it exits (a high-water
/// mark, so only growth in its last 5 ms could be missed): the rusage of a
/// reaped child would also count the memory of this process it was forked
/// from.
fn measured(cmd: &mut Command) -> (Duration, u64, String) {
    let started = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(h) = driftline_benches::peak_rss_of(&pid.to_string()) {
                    peak = peak.max(h);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let out = child.wait_with_output().expect("wait");
    let elapsed = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap_or(0);
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        elapsed,
        peak,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A store that keeps what is appended, to time the real store's appends
/// of exactly those batches afterwards.
#[derive(Default)]
struct Captured(Mutex<Vec<arrow::record_batch::RecordBatch>>);

impl Store for Captured {
    fn append(
        &self,
        table: &str,
        batch: &arrow::record_batch::RecordBatch,
    ) -> Result<(), StoreError> {
        if table == "focus_data_table" {
            self.0.lock().unwrap().push(batch.clone());
        }
        Ok(())
    }
    fn read(&self, _: &str) -> Result<Vec<arrow::record_batch::RecordBatch>, StoreError> {
        Ok(Vec::new())
    }
    fn query(&self, _: &str, _: &QueryLimits) -> Result<QueryResult, StoreError> {
        // Nothing imported yet, as far as the import can tell.
        Ok(QueryResult::default())
    }
}

fn clickhouse_sql(url: &str, sql: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body", "--data-binary", sql, url])
        .output()
        .expect("curl");
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{sql}: {body}");
    body
}

fn mb(bytes: u64) -> u64 {
    bytes / (1024 * 1024)
}

fn main() {
    let a = args();
    let work = tempfile::tempdir().expect("temp dir");
    let export = work.path().join("focus-bench.csv");
    let resources = driftline_benches::focus::synthetic(a.rows.div_ceil(30));
    let file = std::fs::File::create(&export).expect("export");
    let rows = driftline_benches::focus::write_month(
        &mut std::io::BufWriter::new(file),
        "123456789012",
        &resources,
    )
    .expect("write export");
    let size = std::fs::metadata(&export).map(|m| m.len()).unwrap_or(0);
    println!(
        "export: {rows} rows, {} MB ({})",
        mb(size),
        export.display()
    );
    let base = a.clickhouse.trim_end_matches('/').to_string();
    for db in ["bench_import", "bench_store"] {
        clickhouse_sql(&base, &format!("DROP DATABASE IF EXISTS {db}"));
        clickhouse_sql(&base, &format!("CREATE DATABASE {db}"));
    }
    let import_ch = format!("{base}/?database=bench_import");
    let store_ch = format!("{base}/?database=bench_store");

    // 1. cost import, both stores.
    println!("\n1. driftline cost import ({rows} rows)");
    println!("| store | seconds | rows/s | peak RSS |\n|---|---|---|---|");
    let data = work.path().join("data");
    for (name, store_args) in [
        (
            "embedded (Parquet)",
            vec!["--data-dir".to_string(), data.display().to_string()],
        ),
        (
            "ClickHouse",
            vec!["--clickhouse".to_string(), import_ch.clone()],
        ),
    ] {
        let (t, rss, out) = measured(
            Command::new(&a.driftline)
                .args(["cost", "import"])
                .arg(&export)
                .args(&store_args)
                .current_dir(work.path()),
        );
        assert!(out.contains(&format!("imported {rows} cost rows")), "{out}");
        println!(
            "| {name} | {:.2} | {:.0} | {} MB |",
            t.as_secs_f64(),
            rows as f64 / t.as_secs_f64(),
            mb(rss)
        );
    }

    // 2. The store's insert next to clickhouse-client's native one.
    println!("\n2. insert the same {rows} rows into ClickHouse");
    let captured = Arc::new(Captured::default());
    let report = driftline_collectors::cost::CostImport::new(vec![export.display().to_string()])
        .run(&*captured, &|_, _| {});
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let batches = std::mem::take(&mut *captured.0.lock().unwrap());
    let store = ClickHouseStore::open(
        &store_ch,
        &FinOpsConfig::default(),
        work.path().join("spool"),
        1 << 30,
    )
    .expect("ClickHouse store");
    let started = Instant::now();
    for b in &batches {
        store.append("focus_data_table", b).expect("append");
    }
    let ours = started.elapsed();
    let native = work.path().join("rows.native");
    let dump = Command::new(&a.client)
        .args(["--port", &a.tcp_port, "--query"])
        .arg("SELECT * FROM bench_store.focus_data_table FORMAT Native")
        .stdout(std::fs::File::create(&native).expect("native file"))
        .status()
        .expect("clickhouse-client");
    assert!(dump.success());
    clickhouse_sql(
        &base,
        "CREATE TABLE bench_store.native AS bench_store.focus_data_table",
    );
    let started = Instant::now();
    let load = Command::new(&a.client)
        .args(["--port", &a.tcp_port, "--query"])
        .arg("INSERT INTO bench_store.native FORMAT Native")
        .stdin(std::fs::File::open(&native).expect("native file"))
        .status()
        .expect("clickhouse-client");
    let theirs = started.elapsed();
    assert!(load.success());
    let count = |t: &str| {
        clickhouse_sql(&base, &format!("SELECT count() FROM bench_store.{t}"))
            .trim()
            .parse::<usize>()
            .unwrap()
    };
    assert_eq!((count("focus_data_table"), count("native")), (rows, rows));
    let (r_ours, r_theirs) = (
        rows as f64 / ours.as_secs_f64(),
        rows as f64 / theirs.as_secs_f64(),
    );
    println!("| inserter | seconds | rows/s |\n|---|---|---|");
    println!(
        "| driftline ClickHouseStore::append (Native over HTTP, {} batches) | {:.2} | {r_ours:.0} |",
        batches.len(),
        ours.as_secs_f64()
    );
    println!(
        "| clickhouse-client, Native format | {:.2} | {r_theirs:.0} |",
        theirs.as_secs_f64()
    );
    println!(
        "ratio driftline / clickhouse-client: {:.2} (goal ≥ 0.8)",
        r_ours / r_theirs
    );

    // 3. FinOps SQL over scale × N rows.
    let big = rows * a.scale;
    println!("\n3. driftline sql over {big} cost rows");
    let table = data.join("focus_data_table");
    let parts: Vec<PathBuf> = std::fs::read_dir(&table)
        .expect("Parquet table")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    for copy in 1..a.scale {
        for p in &parts {
            let name = p.file_stem().unwrap().to_string_lossy();
            std::fs::copy(p, table.join(format!("{name}-copy{copy}.parquet"))).expect("copy");
        }
    }
    clickhouse_sql(
        &base,
        "CREATE TABLE bench_import.one AS bench_import.focus_data_table",
    );
    clickhouse_sql(
        &base,
        "INSERT INTO bench_import.one SELECT * FROM bench_import.focus_data_table",
    );
    for _ in 1..a.scale {
        clickhouse_sql(
            &base,
            "INSERT INTO bench_import.focus_data_table SELECT * FROM bench_import.one",
        );
    }
    let queries = [
        (
            "spend by service",
            "SELECT service, SUM(cost) AS spend FROM cost_by_service GROUP BY service ORDER BY spend DESC",
        ),
        (
            "tagging coverage",
            "SELECT tag_key, SUM(tagged_cost) / SUM(cost) AS tagged_share FROM tagging_coverage GROUP BY tag_key ORDER BY tag_key",
        ),
        (
            "top tag values",
            "SELECT tag_key, tag_value, SUM(cost) AS spend FROM cost_by_tag GROUP BY tag_key, tag_value ORDER BY spend DESC LIMIT 20",
        ),
        (
            "FOCUS: cost by account, second half",
            "SELECT SubAccountId, SUM(EffectiveCost) AS cost FROM focus_data_table WHERE ChargePeriodStart >= '2024-09-15' GROUP BY SubAccountId",
        ),
    ];
    println!("| query | store | seconds | peak RSS |\n|---|---|---|---|");
    let mut answers: Vec<Vec<String>> = Vec::new();
    for (what, sql) in queries {
        for (name, store_args) in [
            (
                "embedded",
                vec!["--data-dir".to_string(), data.display().to_string()],
            ),
            (
                "ClickHouse",
                vec!["--clickhouse".to_string(), import_ch.clone()],
            ),
        ] {
            let (t, rss, out) = measured(
                Command::new(&a.driftline)
                    .args(["sql", "--output", "csv", "--timeout-secs", "600", sql])
                    .args(&store_args)
                    .current_dir(work.path()),
            );
            println!(
                "| {what} | {name} | {:.2} | {} MB |",
                t.as_secs_f64(),
                mb(rss)
            );
            answers.push(out.lines().map(String::from).collect());
        }
    }
    // Both stores agree on every answer's size (first column values).
    for pair in answers.chunks(2) {
        assert_eq!(pair[0].len(), pair[1].len(), "{pair:?}");
    }
}
