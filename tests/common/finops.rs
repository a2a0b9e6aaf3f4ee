//! The FinOps tests' helpers: the two stores a test runs on, the demo
//! estate loaded into one, queries through the real binary, and the demo
//! export, README questions and FOCUS examples read apart from driftline.
// Shared by several test binaries, each using part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

pub fn demo_export() -> PathBuf {
    repo().join("examples/estate/cost/focus-2024-09.csv")
}

/// Where a test's tables live.
pub enum Store {
    Parquet(tempfile::TempDir),
    /// A database of the test's own on the test ClickHouse server.
    ClickHouse(String),
}

impl Store {
    pub fn name(&self) -> &'static str {
        match self {
            Store::Parquet(_) => "parquet",
            Store::ClickHouse(_) => "clickhouse",
        }
    }

    /// The store opened in this process, as `run` opens it (`scratch`
    /// holds ClickHouse's spool).
    pub fn open(&self, scratch: &Path) -> std::sync::Arc<dyn driftline_pipeline::Store> {
        let config = driftline_pipeline::store::StoreConfig {
            clickhouse: match self {
                Store::ClickHouse(url) => Some(url.clone()),
                Store::Parquet(_) => None,
            },
            ..Default::default()
        };
        let dir = match self {
            Store::Parquet(d) => d.path(),
            Store::ClickHouse(_) => scratch,
        };
        driftline_pipeline::store::open(&config, dir, &Default::default()).unwrap()
    }

    /// The flags that select this store.
    pub fn args(&self) -> Vec<String> {
        match self {
            Store::Parquet(dir) => vec!["--data-dir".into(), dir.path().display().to_string()],
            Store::ClickHouse(url) => vec!["--clickhouse".into(), url.clone()],
        }
    }
}

/// Both stores for `test` (ClickHouse only when the test stack runs one;
/// without it the test says so, and fails under CI).
pub fn stores(test: &str) -> Vec<Store> {
    let mut out = vec![Store::Parquet(tempfile::tempdir().unwrap())];
    match std::env::var("DRIFTLINE_TEST_CLICKHOUSE") {
        Ok(server) => {
            let db = format!("finops_{test}_{}", std::process::id());
            // A database left by an earlier run of the same name starts over.
            let _ = std::process::Command::new("curl")
                .args([
                    "-s",
                    "--data-binary",
                    &format!("DROP DATABASE IF EXISTS {db}"),
                    &server,
                ])
                .output();
            out.push(Store::ClickHouse(format!("{server}/?database={db}")));
        }
        Err(_) => super::no_peer("no ClickHouse server", "deploy/local/test-stack.sh"),
    }
    out
}

/// Loads the demo estate's findings (from a scan) and its cost into `store`.
pub fn load_demo(store: &Store) {
    let estate = repo().join("examples/estate");
    let scan = scan_estate(
        store,
        &estate,
        &estate.join(".driftignore"),
        &["--output", "json"],
    );
    assert_eq!(
        scan.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&scan.stderr)
    );
    let import = super::driftline()
        .args(["cost", "import"])
        .arg(estate.join("cost"))
        .args(store.args())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&import.stdout);
    assert_eq!(
        import.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&import.stderr)
    );
    assert!(stdout.contains("imported 630 cost rows"), "{stdout}");
}

/// Runs a query; JSON rows.
pub fn sql(store: &Store, query: &str) -> Vec<Value> {
    super::sql_rows(&store.args(), query)
}

/// `driftline scan` of `estate` with `ignore` as its .driftignore, on
/// `store`, with `extra` flags; drift makes it exit 1, so 0 or 1 pass.
pub fn scan_estate(
    store: &Store,
    estate: &Path,
    ignore: &Path,
    extra: &[&str],
) -> std::process::Output {
    let out = super::driftline()
        .arg("scan")
        .args(extra)
        .arg("--state")
        .arg(estate.join("terraform"))
        .arg("--observed")
        .arg(estate.join("aws-config"))
        .arg("--driftignore")
        .arg(ignore)
        .args(store.args())
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// The export read independently of driftline: (service, effective cost,
/// billed cost, tags, resource id) per row.
pub struct Row {
    pub service: String,
    pub effective: f64,
    pub billed: f64,
    pub tags: BTreeMap<String, String>,
    pub resource: String,
}

pub fn export_rows() -> Vec<Row> {
    let mut r = csv::Reader::from_path(demo_export()).unwrap();
    let headers = r.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (service, effective, billed, tags, resource) = (
        col("ServiceName"),
        col("EffectiveCost"),
        col("BilledCost"),
        col("Tags"),
        col("ResourceId"),
    );
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            Row {
                service: rec[service].to_string(),
                effective: rec[effective].parse().unwrap(),
                billed: rec[billed].parse().unwrap(),
                tags: serde_json::from_str(&rec[tags]).unwrap_or_default(),
                resource: rec[resource].to_string(),
            }
        })
        .collect()
}

/// The portable examples from the FOCUS use-case library
/// (focus.finops.org/use-cases), their `?` bound to literals, and whether
/// the demo data may give them no rows.
pub fn focus_examples() -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(repo().join("tests/support/focus_examples.sql")).unwrap();
    text.split("\n\n")
        .filter(|e| e.contains("SELECT"))
        .map(|example| {
            let (params, query): (Vec<&str>, Vec<&str>) =
                example.lines().partition(|l| l.starts_with("-- params:"));
            let mut bound = query
                .into_iter()
                .filter(|l| !l.starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            let params = params
                .first()
                .map(|p| {
                    p.trim_start_matches("-- params:")
                        .split('|')
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            for p in params {
                bound = bound.replacen('?', p.trim(), 1);
            }
            assert!(!bound.contains('?'), "unbound parameter: {bound}");
            (bound, example.contains("-- may be empty"))
        })
        .collect()
}

/// The SQL of the README's numbered FinOps questions.
pub fn readme_questions() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme.find("<!-- finops-questions").unwrap();
    let end = readme.find("<!-- /finops-questions -->").unwrap();
    readme[start..end]
        .split("```sql")
        .skip(1)
        .map(|block| block.split("```").next().unwrap().trim().to_string())
        .collect()
}
