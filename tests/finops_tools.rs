//! FinOps against the FOCUS tools and a current ClickHouse: exports made by
//! focus-data-toolkit load without losing a row, the demo export passes
//! focus-validator, and every ClickHouse statement runs on chdb 26.x too.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::finops::*;

/// The FOCUS tools' folder (`focus-toolkit`, `focus-validator`), which
/// `deploy/local/test-stack.sh` installs.
fn focus_tools() -> Option<PathBuf> {
    match std::env::var("DRIFTLINE_TEST_FOCUS_BIN") {
        Ok(dir) => Some(PathBuf::from(dir)),
        Err(_) => {
            common::no_peer("no FOCUS tools", "deploy/local/test-stack.sh");
            None
        }
    }
}

#[test]
fn exports_from_focus_data_toolkit_load_without_losing_a_row() {
    for store in stores("toolkit") {
        exports_from_focus_data_toolkit_load_without_losing_a_row_on(&store);
    }
}

fn exports_from_focus_data_toolkit_load_without_losing_a_row_on(store: &Store) {
    let Some(tools) = focus_tools() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let exports = tmp.path().join("exports");
    for provider in ["aws", "azure", "gcp"] {
        for version in ["1.2", "1.3"] {
            let out = std::process::Command::new(tools.join("focus-toolkit"))
                .args([
                    "generate",
                    "--provider",
                    provider,
                    "--focus-version",
                    version,
                ])
                .args(["--rows", "400", "--seed", "11", "--out"])
                .arg(exports.join(format!("{provider}-{version}")))
                .output()
                .unwrap();
            common::succeeded(out);
        }
    }
    // FOCUS 1.3 adds a contract-commitment dataset beside cost and usage:
    // not cost rows, so refused by name.
    let (usage, other): (Vec<PathBuf>, Vec<PathBuf>) = common::walk(&exports)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .partition(|p| p.to_string_lossy().contains("cost_and_usage"));
    assert_eq!((usage.len(), other.len()), (6, 3));
    let refused = common::driftline()
        .args(["cost", "import"])
        .arg(&other[0])
        .arg("--data-dir")
        .arg(tmp.path().join("refused"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not a FOCUS cost and usage export"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // What the files hold, read apart from driftline.
    let mut want_rows = 0;
    let mut want_billed: BTreeMap<String, f64> = BTreeMap::new();
    for file in &usage {
        let mut r = csv::Reader::from_path(file).unwrap();
        let h = r.headers().unwrap().clone();
        let (provider, billed) = (
            h.iter().position(|c| c == "ProviderName").unwrap(),
            h.iter().position(|c| c == "BilledCost").unwrap(),
        );
        for rec in r.records() {
            let rec = rec.unwrap();
            want_rows += 1;
            *want_billed.entry(rec[provider].to_string()).or_default() +=
                rec[billed].parse::<f64>().unwrap_or(0.0);
        }
    }
    assert_eq!(want_rows, 2400);
    let out = common::driftline()
        .args(["cost", "import"])
        .args(&usage)
        .args(store.args())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = sql(
        store,
        "SELECT ProviderName, COUNT(*) AS n, SUM(BilledCost) AS billed FROM focus_data_table GROUP BY ProviderName",
    );
    let got_rows: i64 = rows.iter().map(|r| r["n"].as_i64().unwrap()).sum();
    assert_eq!(got_rows, want_rows);
    for r in &rows {
        let p = r["ProviderName"].as_str().unwrap();
        assert!(
            (num(&r["billed"]) - want_billed[p]).abs() < 1e-6,
            "{p}: {r}"
        );
    }
}

#[test]
fn the_demo_export_passes_focus_validator() {
    let Some(tools) = focus_tools() else { return };
    let out = std::process::Command::new(tools.join("focus-validator"))
        .args(["--validate-version", "1.0", "--data-file"])
        .arg(demo_export())
        .arg("--override-file")
        .arg(repo().join("tests/support/focus_validator_overrides.yaml"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("Checklist") || text.contains("failed") || text.contains("Validation"),
        "{text}"
    );
    let failed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_suffix(" failed:"))
        .collect();
    // Data-type checks cannot be overridden in focus-validator 1.0.0, and
    // these three fail for any FOCUS 1.0 export (see the overrides file).
    let validator_defects = [
        "BillingAccountId_IsString",
        "SubAccountId_IsString",
        "BillingCurrency_IsCurrencyCode",
    ];
    let real: Vec<&&str> = failed
        .iter()
        .filter(|f| !validator_defects.contains(f))
        .collect();
    assert!(real.is_empty(), "focus-validator: {real:?}\n{text}");
}

/// Every migration, view, README question, FOCUS example and dashboard
/// panel query (macros expanded as the Grafana plugin does), as the
/// ClickHouse store sends them, also runs on a current ClickHouse engine
/// (chdb 26.x), not only on Debian's 18.16 server.
#[test]
fn clickhouse_statements_run_on_current_clickhouse() {
    use driftline_pipeline::store::clickhouse::{MIGRATIONS, for_clickhouse};
    use driftline_pipeline::store::views::clickhouse_views;
    let Ok(python) = std::env::var("DRIFTLINE_TEST_CHDB_PYTHON") else {
        common::no_peer("no chdb", "deploy/local/test-stack.sh");
        return;
    };
    let mut statements = Vec::new();
    let mut add =
        |what: String, sql: String| statements.push(serde_json::json!({"what": what, "sql": sql}));
    for (version, name, sql) in MIGRATIONS {
        add(format!("migration {version} {name}"), sql.to_string());
    }
    let views = clickhouse_views(&Default::default());
    for (name, select) in &views {
        add(
            format!("view {name}"),
            format!("CREATE VIEW {name} AS {select}"),
        );
    }
    // A view is only proven when it answers.
    for (name, _) in &views {
        add(
            format!("query of view {name}"),
            format!("SELECT * FROM {name} LIMIT 1"),
        );
    }
    for (i, q) in readme_questions().into_iter().enumerate() {
        add(format!("README question {}", i + 1), for_clickhouse(&q));
    }
    for (q, _) in focus_examples() {
        add("FOCUS example".into(), for_clickhouse(&q));
    }
    for q in common::dashboards::queries()
        .into_iter()
        .filter(|q| q.datasource == "grafana-clickhouse-datasource")
    {
        let sql = common::dashboards::expand_macros(&q.text, 1_704_067_200, 1_900_000_000, 3600);
        add(format!("dashboard panel {}", q.place), sql);
    }
    let n = statements.len();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&statements).unwrap()).unwrap();
    let out = std::process::Command::new(python)
        .arg(repo().join("tests/support/chdb_check.py"))
        .arg(file.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("{n} of {n} statements ran")),
        "{text}"
    );
}
