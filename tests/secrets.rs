//! Secrets seeded into every input a scan and a cost import read — a value
//! Terraform marks sensitive, an attribute named like a secret, a Lambda
//! function's `DB_PASSWORD` in an AWS Config item, a FOCUS tag named like
//! a secret — appear in no output: not the commands' answers, logs or
//! errors, no table of either store, and not `run`'s pages, API answers,
//! finding events or log.

mod common;
#[path = "common/pagerduty.rs"]
mod pagerduty;

use std::path::Path;

use common::*;

/// Each seeded value, and where it was put.
const SEEDED: &[(&str, &str)] = &[
    // Already in the example estate, under `sensitive_attributes`.
    (
        "correct-horse-battery-staple",
        "a Terraform sensitive value",
    ),
    (
        "tf-named-s3cret-value",
        "a Terraform attribute named like a secret",
    ),
    ("aws-lambda-s3cret-value", "an AWS Config Lambda variable"),
    ("focus-tag-s3cret-value", "a FOCUS tag named like a secret"),
];

/// The example estate with the secrets seeded in.
fn seeded_estate(dir: &Path) {
    copy_dir(&common::estate(), dir);
    let state_path = dir.join("terraform/terraform.tfstate");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    for r in state["resources"].as_array_mut().unwrap() {
        if r["type"] == "aws_lambda_function" {
            r["instances"][0]["attributes"]["environment"] = serde_json::json!([
                {"variables": {"DB_TOKEN": "tf-named-s3cret-value"}}
            ]);
        }
    }
    std::fs::write(&state_path, state.to_string()).unwrap();
    let snapshot_path = dir.join("aws-config/snapshot.json");
    let mut snapshot: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&snapshot_path).unwrap()).unwrap();
    for item in snapshot["configurationItems"].as_array_mut().unwrap() {
        if item["resourceType"] == "AWS::Lambda::Function" {
            item["configuration"]["environment"] = serde_json::json!({
                "variables": {"DB_PASSWORD": "aws-lambda-s3cret-value"}
            });
        }
    }
    std::fs::write(&snapshot_path, snapshot.to_string()).unwrap();
    let cost_path = dir.join("cost/focus-2024-09.csv");
    let csv = std::fs::read_to_string(&cost_path).unwrap();
    let seeded = csv.replacen(
        r#""{""env"":""prod"","#,
        r#""{""api_token"":""focus-tag-s3cret-value"",""env"":""prod"","#,
        1,
    );
    assert_ne!(seeded, csv, "the cost export's first tags were found");
    std::fs::write(&cost_path, seeded).unwrap();
}

/// Fails naming the output and the seed when any seeded value is in `text`.
fn assert_clean(what: &str, text: &str) {
    for (secret, seeded_as) in SEEDED {
        assert!(
            !text.contains(secret),
            "{seeded_as} ({secret}) appears in {what}"
        );
    }
}

/// Runs `driftline ARGS`, checks its output, and returns its stdout.
fn clean_run(args: &[&str]) -> String {
    let out = driftline().args(args).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_clean(
        &format!("the output of driftline {}", args.join(" ")),
        &stdout,
    );
    assert_clean(&format!("the log of driftline {}", args.join(" ")), &stderr);
    stdout
}

/// Reads table `t` of the Parquet store in `data` whole; it must hold rows
/// and no seeded secret.
fn read_table_clean(data: &Path, t: &str) {
    let rows = clean_run(&[
        "sql",
        &format!("SELECT * FROM {t}"),
        "--output",
        "json",
        "--data-dir",
        &data.display().to_string(),
    ]);
    assert!(rows.len() > 2, "{t} is empty");
}

#[test]
fn seeded_secrets_reach_no_output_and_no_store() {
    let tmp = tempfile::tempdir().unwrap();
    let estate = tmp.path().join("estate");
    seeded_estate(&estate);
    let arg = |p: &Path| p.display().to_string();
    let (state, observed, cost) = (
        arg(&estate.join("terraform")),
        arg(&estate.join("aws-config")),
        arg(&estate.join("cost")),
    );
    let stores = common::finops::stores("secrets");
    for store in &stores {
        let store_args = store.args();
        let store_args: Vec<&str> = store_args.iter().map(String::as_str).collect();
        for output in ["json", "table"] {
            let mut args = vec![
                "scan",
                "--state",
                &state,
                "--observed",
                &observed,
                "--output",
                output,
            ];
            args.extend(["--rules", "shipped", "--log-level", "debug"]);
            args.extend(&store_args);
            clean_run(&args);
        }
        let mut args = vec!["cost", "import", &cost, "--log-level", "debug"];
        args.extend(&store_args);
        clean_run(&args);
    }
    let data = stores
        .iter()
        .find_map(|s| match s {
            common::finops::Store::Parquet(dir) => Some(dir.path().to_path_buf()),
            _ => None,
        })
        .unwrap();
    let clickhouse = stores.iter().find_map(|s| match s {
        common::finops::Store::ClickHouse(url) => Some(url.clone()),
        _ => None,
    });
    // Every table of the embedded store, read back whole.
    let tables: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|t| !t.starts_with('.') && !t.contains("spool"))
        .collect();
    assert!(tables.iter().any(|t| t == "focus_data_table"), "{tables:?}");
    assert!(
        tables.iter().any(|t| t == "resources_declared_history"),
        "{tables:?}"
    );
    for t in &tables {
        read_table_clean(&data, t);
    }
    // Every file of the data directory, as bytes (the JSON-lines logs).
    for f in walk(&data) {
        let bytes = std::fs::read(&f).unwrap();
        assert_clean(&f.display().to_string(), &String::from_utf8_lossy(&bytes));
    }
    // Every table of ClickHouse's database, read back whole.
    if let Some(url) = clickhouse {
        let query = |sql: &str| {
            let out = std::process::Command::new("curl")
                .args(["-sf", "--data-binary", sql, &url])
                .output()
                .unwrap();
            assert!(out.status.success(), "{sql}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let tables = query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() \
             AND engine NOT LIKE '%View%'",
        );
        assert!(tables.lines().any(|t| t == "focus_data_table"), "{tables}");
        for t in tables.lines() {
            assert_clean(
                &format!("ClickHouse table {t}"),
                &query(&format!("SELECT * FROM {t} FORMAT JSONEachRow")),
            );
        }
    }
}

#[test]
fn seeded_secrets_reach_no_page_and_no_api_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let estate = tmp.path().join("estate");
    seeded_estate(&estate);
    let pd = pagerduty::Receiver::start();
    let data = tmp.path().join("data");
    let cfg = tmp.path().join("driftline.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {data:?}\n[watch]\nstate = [{s:?}]\nobserved = [{o:?}]\ninterval_ms = 50\n\
             [drift]\ndriftignore = {i:?}\n\
             [alerts.route]\nreceiver = \"oncall\"\ngroup_wait = \"1s\"\ngroup_interval = \"1s\"\n",
            s = estate.join("terraform"),
            o = estate.join("aws-config"),
            i = estate.join(".driftignore"),
        ),
    )
    .unwrap();
    let (findings, log) = (
        tmp.path().join("findings.jsonl"),
        tmp.path().join("run.log"),
    );
    let svc = Service::start_env(
        &pagerduty::run_args(cfg.to_str().unwrap(), &pd.url),
        &findings,
        &log,
        &[
            ("PD_KEY", pagerduty::KEY),
            (
                "RUST_LOG",
                "info,driftline=debug,driftline_collectors=debug,driftline_detectors=debug,\
             driftline_alerts=debug,driftline_pipeline=debug",
            ),
        ],
    );
    wait_for(90, "the estate's pages", || pd.count("trigger") >= 6);
    for path in [
        "/api/alerts",
        "/api/remediations",
        "/api/silences",
        "/metrics",
    ] {
        let (status, body) = http_get(&svc.listen, path).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        assert_clean(&format!("GET {path}"), &body);
    }
    for raw in &pd.seen.lock().unwrap().raw {
        assert_clean("a PagerDuty event", raw);
    }
    assert!(svc.stop().success());
    assert_clean(
        "the finding events",
        &std::fs::read_to_string(&findings).unwrap(),
    );
    assert_clean("run's log", &std::fs::read_to_string(&log).unwrap());
    for t in [
        "resources_declared_history",
        "resources_observed_history",
        "finding_events",
        "alert_events",
    ] {
        read_table_clean(&data, t);
    }
}
