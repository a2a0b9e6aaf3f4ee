//! The operations tables and KPIs on both stores: resource histories
//! (versions, deletions, latest views), finding episodes with drift rate
//! and time to remediate, and alert events with their outcomes.

mod common;

use common::finops::{Store, close, load_demo, num, repo, scan_estate, sql, stores};
use serde_json::Value;

fn count(store: &Store, query: &str) -> i64 {
    sql(store, query)[0]["n"].as_i64().unwrap()
}

/// Copies the demo estate, so a test can take resources away.
fn estate_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(repo().join("examples/estate/."))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn scan(store: &Store, estate: &std::path::Path, ignore: &std::path::Path) -> String {
    let out = scan_estate(store, estate, ignore, &[]);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn resource_histories_keep_each_version_once_and_each_deletion() {
    for store in stores("history") {
        resource_histories_on(&store);
    }
}

fn resource_histories_on(store: &Store) {
    let estate = estate_copy();
    let ignore = estate.path().join(".driftignore");
    scan(store, estate.path(), &ignore);
    let declared = count(store, "SELECT COUNT(*) AS n FROM resources_declared");
    let observed = count(store, "SELECT COUNT(*) AS n FROM resources_observed");
    let history = count(
        store,
        "SELECT COUNT(*) AS n FROM resources_observed_history",
    );
    assert!(declared > 20 && observed > 20, "{declared} {observed}");
    assert_eq!(history, observed, "{}", store.name());
    // The same estate again: nothing new to keep.
    scan(store, estate.path(), &ignore);
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) AS n FROM resources_observed_history"
        ),
        history
    );
    assert_eq!(
        count(store, "SELECT COUNT(*) AS n FROM resources_declared"),
        declared
    );
    // Tags are columns: the demo's VPC belongs to payments.
    let vpc = sql(
        store,
        "SELECT tag_keys, tag_values FROM resources_declared WHERE resource_type = 'AWS::EC2::VPC'",
    );
    assert_eq!(vpc.len(), 1, "{vpc:?}");
    let list = |v: &Value| -> Vec<String> {
        let v = match v {
            Value::String(s) => serde_json::from_str(s).unwrap(),
            other => other.clone(),
        };
        serde_json::from_value(v).unwrap()
    };
    let (keys, values) = (list(&vpc[0]["tag_keys"]), list(&vpc[0]["tag_values"]));
    let team = keys.iter().position(|k| k == "team").unwrap();
    assert_eq!(values[team], "payments");

    // One configuration item gone from the recorder's snapshot: one deletion.
    let snapshot = estate.path().join("aws-config/snapshot.json");
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&snapshot).unwrap()).unwrap();
    doc["configurationItems"]
        .as_array_mut()
        .unwrap()
        .pop()
        .unwrap();
    std::fs::write(&snapshot, serde_json::to_string(&doc).unwrap()).unwrap();
    scan(store, estate.path(), &ignore);
    assert_eq!(
        count(store, "SELECT COUNT(*) AS n FROM resources_observed"),
        observed - 1,
        "{}",
        store.name()
    );
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) AS n FROM resources_observed_history WHERE deleted"
        ),
        1
    );
}

#[test]
fn drift_rate_and_time_to_remediate_follow_the_findings() {
    let mut answers = Vec::new();
    for store in stores("kpis") {
        answers.push(kpis_on(&store));
    }
    // The same figures from both stores.
    if answers.len() == 2 {
        assert_eq!(answers[0], answers[1]);
    }
}

/// Drift rows: (account, resource type, managed, drifted).
type DriftRows = Vec<(String, String, i64, i64)>;

/// (drift rows, findings resolved per class) after a scan that finds the
/// demo's drift and one that resolves all of it.
fn kpis_on(store: &Store) -> (DriftRows, Vec<(String, i64)>) {
    load_demo(store);
    let open = count(store, "SELECT COUNT(*) AS n FROM findings");
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) AS n FROM finding_episodes WHERE resolved_at_ms IS NULL"
        ),
        open
    );
    // The security groups: two declared, one edited in the console.
    let sg = sql(
        store,
        "SELECT managed, drifted, drift_rate FROM drift_rate \
         WHERE resource_type = 'AWS::EC2::SecurityGroup' AND account = '123456789012'",
    );
    assert_eq!(sg.len(), 1, "{}: {sg:?}", store.name());
    assert_eq!(sg[0]["managed"].as_i64(), Some(2));
    assert_eq!(sg[0]["drifted"].as_i64(), Some(1));
    assert!(close(num(&sg[0]["drift_rate"]), 0.5));

    // Everything ignored: every finding resolves, and is remediated today.
    let ignore_all = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ignore_all.path(), "*\n").unwrap();
    let stderr = scan(store, &repo().join("examples/estate"), ignore_all.path());
    assert!(
        stderr.contains(&format!("0 new, {open} resolved")),
        "{stderr}"
    );
    let by_class = sql(
        store,
        "SELECT class, SUM(resolved) AS n, MIN(p50_seconds) AS p50, MAX(p90_seconds) AS p90 \
         FROM time_to_remediate GROUP BY class ORDER BY class",
    );
    let total: i64 = by_class.iter().map(|r| r["n"].as_i64().unwrap()).sum();
    assert_eq!(total, open, "{}: {by_class:?}", store.name());
    for r in &by_class {
        assert!(
            num(&r["p50"]) >= 0.0 && num(&r["p90"]) >= num(&r["p50"]),
            "{r}"
        );
    }
    // Resolved today, still counted as drifted today; tomorrow's rate is 0.
    let rows = sql(
        store,
        "SELECT account, resource_type, managed, drifted FROM drift_rate \
         WHERE drifted > 0 ORDER BY account, resource_type",
    );
    let drift = rows
        .iter()
        .map(|r| {
            (
                r["account"].as_str().unwrap().to_string(),
                r["resource_type"].as_str().unwrap().to_string(),
                r["managed"].as_i64().unwrap(),
                r["drifted"].as_i64().unwrap(),
            )
        })
        .collect();
    let classes = by_class
        .iter()
        .map(|r| {
            (
                r["class"].as_str().unwrap().to_string(),
                r["n"].as_i64().unwrap(),
            )
        })
        .collect();
    (drift, classes)
}

#[test]
fn alert_outcomes_name_what_ended_each_page() {
    for store in stores("outcomes") {
        alert_outcomes_on(&store);
    }
}

fn alert_outcomes_on(store: &Store) {
    common::ops::page_three_alerts(store);
    let rows = sql(
        store,
        "SELECT fingerprint, outcome, actionable, team FROM alert_outcomes ORDER BY fingerprint",
    );
    let got: Vec<(String, String, i64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["fingerprint"].as_str().unwrap().into(),
                r["outcome"].as_str().unwrap().into(),
                r["actionable"].as_i64().unwrap(),
                r["team"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    let want =
        |fp: &str, o: &str, a: i64, t: &str| (fp.to_string(), o.to_string(), a, t.to_string());
    assert_eq!(
        got,
        vec![
            want("fp-i-a", "resolved", 1, "web"),
            want("fp-i-b", "silenced", 0, "web"),
            want("fp-i-c", "remediated", 1, "db"),
        ],
        "{}",
        store.name()
    );
    // The hook's proposal and run are audited in the same store.
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) AS n FROM remediation_audit WHERE action = 'run' AND exit_code = 0"
        ),
        1,
        "{}",
        store.name()
    );
    let share = sql(store, "SELECT AVG(actionable) AS share FROM alert_outcomes");
    assert!(close(num(&share[0]["share"]), 2.0 / 3.0));
    let states = sql(
        store,
        "SELECT fingerprint, state FROM alerts ORDER BY fingerprint",
    );
    let states: Vec<&str> = states
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["resolved", "firing", "firing"], "{}", store.name());
}
