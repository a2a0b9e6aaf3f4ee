//! FOCUS cost data and the SQL side, through the real binary, on both
//! stores — the embedded Parquet one and Debian's ClickHouse 18.16 server
//! the test stack starts (each test in a database of its own): `cost
//! import` (clean and messy exports), `sql` (read-only, limits, outputs),
//! `POST /api/sql`, the FinOps views, the README's ten questions with their
//! figures recomputed from the export itself, and FOCUS's own example
//! queries run unchanged. The FOCUS tools and chdb: `finops_tools.rs`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::finops::*;
use serde_json::Value;

#[test]
fn readme_questions_give_the_figures_the_export_holds() {
    for store in stores("readme") {
        readme_questions_give_the_figures_the_export_holds_on(&store);
    }
}

fn readme_questions_give_the_figures_the_export_holds_on(store: &Store) {
    load_demo(store);
    let questions = readme_questions();
    assert_eq!(questions.len(), 10);
    let answers: Vec<Vec<Value>> = questions.iter().map(|q| sql(store, q)).collect();
    for (q, a) in questions.iter().zip(&answers) {
        assert!(!a.is_empty(), "no rows: {q}");
    }
    let rows = export_rows();

    // 1. Per service.
    let mut billed: BTreeMap<&str, f64> = BTreeMap::new();
    for r in &rows {
        *billed.entry(&r.service).or_default() += r.billed;
    }
    assert_eq!(answers[0].len(), billed.len());
    for a in &answers[0] {
        let s = a["ServiceName"].as_str().unwrap();
        assert!(close(num(&a["billed"]), billed[s]), "{s}: {a}");
    }

    // 2. Per team, rows without a team tag as (untagged).
    let mut team: BTreeMap<String, f64> = BTreeMap::new();
    for r in &rows {
        let t = r
            .tags
            .get("team")
            .cloned()
            .unwrap_or_else(|| "(untagged)".into());
        *team.entry(t).or_default() += r.effective;
    }
    let got: BTreeMap<String, f64> = answers[1]
        .iter()
        .map(|a| (a["team"].as_str().unwrap().to_string(), num(&a["total"])))
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        team.keys().collect::<Vec<_>>()
    );
    for (t, c) in &team {
        assert!(close(got[t], *c), "{t}: {} vs {c}", got[t]);
    }

    // 4. Tagged share per key: every key that appears is required.
    let total: f64 = rows.iter().map(|r| r.effective).sum();
    for a in &answers[3] {
        let key = a["tag_key"].as_str().unwrap();
        let tagged: f64 = rows
            .iter()
            .filter(|r| r.tags.contains_key(key))
            .map(|r| r.effective)
            .sum();
        assert!(
            close(num(&a["tagged_pct"]), 100.0 * tagged / total),
            "{key}: {a}"
        );
    }
    // The demo is below the 95% goal: untagged resources and the tax rows.
    assert!(answers[3].iter().all(|a| num(&a["tagged_pct"]) < 95.0));

    // 6. Unmanaged: the one bucket the scan reports unmanaged (the other
    // is in .driftignore), at its month of cost.
    let bucket: f64 = rows
        .iter()
        .filter(|r| r.resource.ends_with(":::acme-prod-exports-tmp"))
        .map(|r| r.effective)
        .sum();
    assert_eq!(answers[5].len(), 1, "{:?}", answers[5]);
    assert_eq!(answers[5][0]["resource_id"], "acme-prod-exports-tmp");
    assert!(close(num(&answers[5][0]["cost"]), bucket));
    assert!(close(bucket, 7.5), "0.25/day for 30 days: {bucket}");

    // 7. Drifted: the changed instance and bucket (the security group is free).
    let drifted: BTreeMap<String, f64> = answers[6]
        .iter()
        .map(|a| {
            (
                a["resource_id"].as_str().unwrap().to_string(),
                num(&a["cost"]),
            )
        })
        .collect();
    assert_eq!(
        drifted.keys().collect::<Vec<_>>(),
        ["acme-prod-assets", "i-0web1a1b2c3d4e5f67"]
    );
    for (id, c) in &drifted {
        let want: f64 = rows
            .iter()
            .filter(|r| {
                r.resource.ends_with(&format!("/{id}")) || r.resource.ends_with(&format!(":{id}"))
            })
            .map(|r| r.effective)
            .sum();
        assert!(close(*c, want), "{id}: {c} vs {want}");
    }

    // 8. Ten resources, most expensive first.
    assert_eq!(answers[7].len(), 10);
    let costs: Vec<f64> = answers[7].iter().map(|a| num(&a["total"])).collect();
    assert!(costs.windows(2).all(|w| w[0] >= w[1]));

    // 9. One row per day of September.
    assert_eq!(answers[8].len(), 30);
}

#[test]
fn focus_example_queries_run_unchanged() {
    for store in stores("focus") {
        focus_example_queries_run_unchanged_on(&store);
    }
}

fn focus_example_queries_run_unchanged_on(store: &Store) {
    load_demo(store);
    let mut ran = 0;
    for (bound, may_be_empty) in focus_examples() {
        let rows = sql(store, &bound);
        assert!(!rows.is_empty() || may_be_empty, "no rows: {bound}");
        ran += 1;
    }
    assert!(ran >= 10, "{ran} examples");
    // One figure checked: billed cost per service category adds up to the export.
    let by_category = sql(
        store,
        "SELECT ProviderName, BillingCurrency, BillingPeriodStart, ServiceCategory, SUM(BilledCost) AS TotalBilledCost \
         FROM focus_data_table WHERE BillingPeriodStart >= '2024-09-01' and BillingPeriodEnd <= '2024-10-01' \
         GROUP BY ProviderName, BillingCurrency, BillingPeriodStart, ServiceCategory ORDER BY TotalBilledCost DESC",
    );
    let sum: f64 = by_category.iter().map(|r| num(&r["TotalBilledCost"])).sum();
    let want: f64 = export_rows().iter().map(|r| r.billed).sum();
    assert!(close(sum, want), "{sum} vs {want}");
}

#[test]
fn a_messy_export_loads_every_good_row_and_names_each_bad_one() {
    for store in stores("messy") {
        a_messy_export_loads_every_good_row_and_names_each_bad_one_on(&store);
    }
}

fn a_messy_export_loads_every_good_row_and_names_each_bad_one_on(store: &Store) {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("messy.csv");
    std::fs::write(
        &export,
        "BilledCost,EffectiveCost,ChargePeriodStart,ServiceName,Tags,x_Project\n\
         1,1,2024-09-01 00:00:00,EC2,\"{\"\" team \"\":\"\"a\"\"}\",p1\n\
         2,2,2024-09-01T00:00:00Z,S3,NULL,p2\n\
         x,3,2024-09-01T00:00:00Z,S3,NULL,p3\n\
         4,4,2024-09-01T00:00:00Z,S3,{broken,p4\n\
         5,5,2024-09-01T00:00:00Z,S3,NULL,p5\n",
    )
    .unwrap();
    let out = common::driftline()
        .args(["cost", "import"])
        .arg(&export)
        .args(store.args())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 3 cost rows"));
    let messy = export.display().to_string();
    assert!(
        stderr.contains(&format!(
            "{messy}:4: BilledCost: \"x\" is not a decimal number"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{messy}:5: Tags: not a JSON object")),
        "{stderr}"
    );
    let dead = sql(
        store,
        "SELECT source, reason FROM dead_letters ORDER BY source",
    );
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0]["source"], format!("{messy}:4"));
    let rows = sql(
        store,
        "SELECT Tags, x_Extra, x_SourceLine FROM focus_data_table ORDER BY x_SourceLine",
    );
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["Tags"], r#"{"team":"a"}"#);
    assert_eq!(rows[0]["x_Extra"], r#"{"x_Project":"p1"}"#);
}

#[test]
fn sql_is_read_only_limited_and_speaks_three_formats() {
    for store in stores("limits") {
        sql_is_read_only_limited_and_speaks_three_formats_on(&store);
    }
}

fn sql_is_read_only_limited_and_speaks_three_formats_on(store: &Store) {
    load_demo(store);
    for statement in [
        "DROP TABLE focus_data_table",
        "INSERT INTO focus_data_table (BilledCost) VALUES (1)",
        "CREATE TABLE t AS SELECT 1",
        "SELECT 1; DELETE FROM focus_data_table",
    ] {
        let out = common::driftline()
            .args(["sql", statement])
            .args(store.args())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{statement}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("only queries") || stderr.contains("one query"),
            "{statement}: {stderr}"
        );
    }
    // Nothing changed.
    assert_eq!(
        sql(store, "SELECT COUNT(*) AS n FROM focus_data_table")[0]["n"],
        630
    );

    let limited = common::driftline()
        .args([
            "sql",
            "SELECT * FROM focus_data_table",
            "--max-rows",
            "5",
            "--output",
            "csv",
        ])
        .args(store.args())
        .output()
        .unwrap();
    assert_eq!(limited.status.code(), Some(0));
    let csv_text = String::from_utf8_lossy(&limited.stdout);
    assert_eq!(csv_text.lines().count(), 6, "header and five rows");
    assert!(
        csv_text.starts_with("AvailabilityZone,BilledCost,"),
        "{csv_text}"
    );
    assert!(String::from_utf8_lossy(&limited.stderr).contains("only the first 5 rows"));

    let table = common::driftline()
        .args(["sql", "SELECT ServiceName, COUNT(*) AS n FROM focus_data_table GROUP BY ServiceName ORDER BY ServiceName"])
        .args(store.args())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.lines().next().unwrap().starts_with("ServiceName"),
        "{table}"
    );
    assert!(table.contains("Amazon DynamoDB"), "{table}");

    // JSON: an array of objects keyed by column name; timestamps as text.
    let rows = sql(
        store,
        "SELECT ChargePeriodStart, BilledCost FROM focus_data_table ORDER BY ChargePeriodStart LIMIT 1",
    );
    let want = match store {
        Store::Parquet(_) => "2024-09-01T00:00:00Z",
        Store::ClickHouse(_) => "2024-09-01 00:00:00",
    };
    assert_eq!(rows[0]["ChargePeriodStart"], want);
}

#[test]
fn a_second_scan_resolves_what_it_no_longer_finds() {
    for store in stores("rescan") {
        a_second_scan_resolves_what_it_no_longer_finds_on(&store);
    }
}

fn a_second_scan_resolves_what_it_no_longer_finds_on(store: &Store) {
    load_demo(store);
    let open = || {
        sql(store, "SELECT COUNT(*) AS n FROM findings")[0]["n"]
            .as_i64()
            .unwrap()
    };
    let before = open();
    assert!(before > 0);
    // The same estate with everything ignored: every finding resolves.
    let ignore_all = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ignore_all.path(), "*\n").unwrap();
    let estate = repo().join("examples/estate");
    let out = scan_estate(store, &estate, ignore_all.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("0 new, {before} resolved")),
        "{stderr}"
    );
    assert_eq!(open(), 0);
}

/// A raw POST with an optional bearer token: (status, body).
fn post_sql(addr: &str, token: Option<&str>, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST /api/sql HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}

#[test]
fn api_sql_answers_behind_the_token() {
    for store in stores("api") {
        api_sql_answers_behind_the_token_on(&store);
    }
}

fn api_sql_answers_behind_the_token_on(store: &Store) {
    load_demo(store);
    let tmp = tempfile::tempdir().unwrap();
    let estate = repo().join("examples/estate");
    let arg = |p: PathBuf| p.display().to_string();
    let mut args = vec![
        "--watch-state".to_string(),
        arg(estate.join("terraform")),
        "--watch-observed".to_string(),
        arg(estate.join("aws-config")),
    ];
    args.extend(store.args());
    if let Store::ClickHouse(_) = store {
        // The alert state still lives in the data directory.
        args.extend(["--data-dir".to_string(), arg(tmp.path().join("data"))]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let svc = common::Service::start_env(
        &args,
        &tmp.path().join("findings.jsonl"),
        &tmp.path().join("run.log"),
        &[("DRIFTLINE_API_TOKEN", "finops-token")],
    );
    common::wait_for(60, "/readyz", || {
        common::http_get(&svc.listen, "/readyz").is_ok_and(|(s, _)| s == 200)
    });
    let query = r#"{"query": "SELECT ServiceName, SUM(EffectiveCost) AS cost FROM focus_data_table GROUP BY ServiceName ORDER BY cost DESC"}"#;
    assert_eq!(post_sql(&svc.listen, None, query).0, 401);
    assert_eq!(post_sql(&svc.listen, Some("wrong"), query).0, 401);
    let (status, body) = post_sql(&svc.listen, Some("finops-token"), query);
    assert_eq!(status, 200, "{body}");
    let rows: Vec<Value> = serde_json::from_str(&body).unwrap();
    let mut by_service: BTreeMap<String, f64> = BTreeMap::new();
    for r in export_rows() {
        *by_service.entry(r.service).or_default() += r.effective;
    }
    assert_eq!(rows.len(), by_service.len());
    for row in &rows {
        let s = row["ServiceName"].as_str().unwrap();
        assert!(close(num(&row["cost"]), by_service[s]), "{row}");
    }
    // Plain text works too; anything but a query is refused and changes nothing.
    let (status, body) = post_sql(
        &svc.listen,
        Some("finops-token"),
        "DROP TABLE focus_data_table",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("only queries"), "{body}");
    let (status, body) = post_sql(
        &svc.listen,
        Some("finops-token"),
        "SELECT COUNT(*) AS n FROM focus_data_table",
    );
    assert_eq!((status, body.as_str()), (200, r#"[{"n":630}]"#));
    assert!(svc.stop().success());
}
