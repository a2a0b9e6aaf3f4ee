//! Log files in, end to end: `driftline run` follows JSON, logfmt and
//! plain-text files through a rename rotation, a copytruncate and two
//! restarts; afterwards every line written is in `log_records` exactly
//! once, and a line that is not JSON is a dead letter naming its line.

mod common;

use std::io::Write;
use std::path::Path;

use common::{Service, sql_rows, wait_for};

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn json_lines(from: usize, to: usize) -> Vec<String> {
    (from..to)
        .map(|i| format!(r#"{{"ts":"2026-12-03T10:00:{:02}Z","level":"info","msg":"json {i}","request":"r{i}"}}"#, i % 60))
        .collect()
}

fn logfmt_lines(from: usize, to: usize) -> Vec<String> {
    (from..to)
        .map(|i| format!(r#"time=1764756000 level=warn msg="logfmt {i}" service=billing"#))
        .collect()
}

fn plain_lines(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!("ERROR plain {i}")).collect()
}

fn store(dir: &Path) -> Vec<String> {
    vec!["--data-dir".into(), dir.display().to_string()]
}

fn count(dir: &Path, query: &str) -> i64 {
    sql_rows(&store(dir), query)[0]["n"].as_i64().unwrap_or(0)
}

#[test]
fn tailing_survives_rotation_truncation_and_restarts_without_loss_or_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("driftline.toml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = "{data}"
[logs]
poll_interval_ms = 50
[[logs.files]]
paths = ["{logs}/app.log"]
format = "json"
service = "api"
[[logs.files]]
paths = ["{logs}/billing-*.log"]
format = "logfmt"
[[logs.files]]
paths = ["{logs}/plain.log"]
format = "regex"
pattern = '^(?P<level>[A-Z]+) (?P<msg>.*)$'
service = "worker"
"#,
            data = data.display(),
            logs = logs.display()
        ),
    )
    .unwrap();
    let start = || Service::start_ready(&["--config", &config.display().to_string()], dir.path());
    let app = logs.join("app.log");
    let plain = logs.join("plain.log");
    let billing = logs.join("billing-1.log");
    append(&app, &json_lines(0, 100));
    append(&plain, &plain_lines(0, 50));
    append(&billing, &logfmt_lines(0, 20));
    append(&app, &["this is not json".to_string()]);

    let svc = start();
    wait_for(30, "the first lines in the store", || {
        count(&data, "SELECT count(*) AS n FROM log_records") >= 170
    });
    // Rename rotation while running; the writer still appends to the old
    // file before it reopens.
    std::fs::rename(&app, logs.join("app.log.1")).unwrap();
    append(&logs.join("app.log.1"), &json_lines(100, 110));
    append(&app, &json_lines(110, 150));
    // Copytruncate of the plain log.
    wait_for(30, "the rotated lines", || {
        count(
            &data,
            "SELECT count(*) AS n FROM log_records WHERE service_name = 'api'",
        ) >= 150
    });
    std::fs::write(&plain, "").unwrap();
    append(&plain, &plain_lines(50, 60));
    wait_for(30, "the truncated file's new lines", || {
        count(
            &data,
            "SELECT count(*) AS n FROM log_records WHERE service_name = 'worker'",
        ) >= 60
    });
    assert!(svc.stop().success());

    // Written while stopped, and after a restart.
    append(&app, &json_lines(150, 180));
    append(&billing, &logfmt_lines(20, 25));
    let svc = start();
    append(&plain, &plain_lines(60, 70));
    append(&logs.join("billing-2.log"), &logfmt_lines(25, 30));
    wait_for(30, "the lines written around the restart", || {
        count(&data, "SELECT count(*) AS n FROM log_records") >= 180 + 70 + 30
    });
    assert!(svc.stop().success());
    // One more restart with nothing new: nothing is read twice.
    let svc = start();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(svc.stop().success());

    let per_service = sql_rows(
        &store(&data),
        "SELECT service_name, count(*) AS n, count(DISTINCT body) AS d FROM log_records GROUP BY service_name ORDER BY service_name",
    );
    let got: Vec<(String, i64, i64)> = per_service
        .iter()
        .map(|r| {
            (
                r["service_name"].as_str().unwrap().to_string(),
                r["n"].as_i64().unwrap(),
                r["d"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("api".into(), 180, 180),
            ("billing".into(), 30, 30),
            ("worker".into(), 70, 70),
        ]
    );
    let row = &sql_rows(
        &store(&data),
        "SELECT timestamp_ms, severity_number, attribute_keys, attribute_values, source FROM log_records WHERE body = 'json 7'",
    )[0];
    assert_eq!(row["timestamp_ms"].as_i64(), Some(1_796_292_007_000));
    assert_eq!(row["severity_number"].as_i64(), Some(9));
    assert!(row["attribute_values"].to_string().contains("r7"));
    assert!(row["source"].as_str().unwrap().ends_with("app.log"));
    let plain_row = &sql_rows(
        &store(&data),
        "SELECT severity_number FROM log_records WHERE body = 'plain 3'",
    )[0];
    assert_eq!(plain_row["severity_number"].as_i64(), Some(17));
    let dead = sql_rows(&store(&data), "SELECT source, reason FROM dead_letters");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0]["source"].as_str().unwrap().ends_with("app.log"));
    assert!(
        dead[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("line 101: not JSON"),
        "{dead:?}"
    );
}
