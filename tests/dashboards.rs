//! The Grafana dashboards (`dashboards/`): each type-checks against
//! Grafana's own `Dashboard` type, every SQL panel answers on the real
//! ClickHouse loaded with the demo data, and every PromQL expression passes
//! `promtool check rules`.

mod common;

use common::dashboards::{dashboards, expand_macros, queries};
use common::finops::{Store, load_demo, repo, scan_estate, stores};

/// Type-checks `dashboards` (name, JSON) with `tsc --strict` against
/// `Dashboard` from `@grafana/schema`; the compiler's output on failure.
fn type_check(schema: &str, dashboards: &[(String, serde_json::Value)]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        std::path::Path::new(schema).join("node_modules"),
        dir.path().join("node_modules"),
    )
    .unwrap();
    let mut files = Vec::new();
    for (i, (name, json)) in dashboards.iter().enumerate() {
        let file = format!("dashboard_{i}.ts");
        // JSON holds a string enum as its value: the type says so too.
        let source = format!(
            "// {name}\nimport type {{ AnnotationQuery, Dashboard, DataQuery }} from '@grafana/schema';\n\
             type AsJson<T> = T extends string ? `${{T}}` : T extends Array<infer U> ? Array<AsJson<U>>\n\
               : T extends object ? {{ [K in keyof T]: AsJson<T[K]> }} : T;\n\
             // An annotation's target is its data source's query: DataQuery as\n\
             // the ClickHouse plugin extends it.\n\
             interface SqlQuery extends DataQuery {{ editorType: 'sql'; rawSql: string; format: number; }}\n\
             type Typed = Omit<Dashboard, 'annotations'>\n\
               & {{ annotations?: {{ list?: Array<AnnotationQuery<SqlQuery>> }} }};\n\
             const dashboard: AsJson<Typed> = {};\nexport default dashboard;\n",
            serde_json::to_string_pretty(json).unwrap()
        );
        std::fs::write(dir.path().join(&file), source).unwrap();
        files.push(file);
    }
    let tsconfig = serde_json::json!({
        "compilerOptions": {"strict": true, "noEmit": true, "module": "esnext",
                            "moduleResolution": "bundler", "target": "es2022", "skipLibCheck": true},
        "files": files,
    });
    std::fs::write(dir.path().join("tsconfig.json"), tsconfig.to_string()).unwrap();
    let out =
        std::process::Command::new(std::path::Path::new(schema).join("node_modules/.bin/tsc"))
            .args(["-p", "."])
            .current_dir(dir.path())
            .output()
            .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr))
    }
}

#[test]
fn dashboards_type_check_against_grafanas_dashboard_type() {
    let Ok(schema) = std::env::var("DRIFTLINE_TEST_GRAFANA_SCHEMA") else {
        common::no_peer("no @grafana/schema", "deploy/local/test-stack.sh");
        return;
    };
    let all = dashboards();
    assert_eq!(
        all.len(),
        5,
        "{:?}",
        all.iter().map(|d| &d.0).collect::<Vec<_>>()
    );
    type_check(&schema, &all).unwrap();
    // The check can fail: a panel whose grid width is text is refused.
    let mut broken = all[0].clone();
    broken.1["panels"][0]["gridPos"]["w"] = serde_json::json!("12");
    let err = type_check(&schema, &[broken]).unwrap_err();
    assert!(err.contains("TS2322"), "{err}");
    // So can an annotation whose SQL is misnamed.
    let (_, slo) = all.iter().find(|d| d.0 == "slo.json").unwrap();
    let mut broken = slo.clone();
    let target = broken["annotations"]["list"][0]["target"]
        .as_object_mut()
        .unwrap();
    let sql = target.remove("rawSql").unwrap();
    target.insert("sql".into(), sql);
    let err = type_check(&schema, &[("slo.json".into(), broken)]).unwrap_err();
    assert!(err.contains("TS2353"), "{err}");
}

/// ClickHouse loaded as a running estate leaves it: the demo's findings and
/// cost, one finding resolved since, and the on-call story's alerts.
fn load_estate(store: &Store) {
    load_demo(store);
    let ignore = tempfile::NamedTempFile::new().unwrap();
    let estate = repo().join("examples/estate");
    let mut rules = std::fs::read_to_string(estate.join(".driftignore")).unwrap();
    rules.push_str("\naws_sqs_queue.orders_dlq\n");
    std::fs::write(ignore.path(), rules).unwrap();
    let out = scan_estate(store, &estate, ignore.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("0 new, 1 resolved"), "{stderr}");
    common::ops::page_three_alerts(store);
    common::ops::record_slo_burn(store);
}

#[test]
fn every_sql_panel_answers_on_clickhouse_with_the_demo_data() {
    let Some(store) = stores("dashboards")
        .into_iter()
        .find(|s| matches!(s, Store::ClickHouse(_)))
    else {
        return; // stores() said why
    };
    load_estate(&store);
    let Store::ClickHouse(url) = &store else {
        unreachable!()
    };
    // The demo's cost is September 2024; its findings and alerts are today.
    let from = 1_704_067_200; // 2024-01-01
    let to = driftline_pipeline::now_ms() / 1000 + 86_400;
    let mut ran = 0;
    for q in queries()
        .into_iter()
        .filter(|q| q.datasource == "grafana-clickhouse-datasource")
    {
        // Sent as the plugin sends it: straight to the server, not through driftline.
        let sql = expand_macros(&q.text, from, to, 3600) + "\nFORMAT JSONCompact";
        let out = std::process::Command::new("curl")
            .args(["-sS", "--fail-with-body", "--data-binary", &sql, url])
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: {body}\n{sql}", q.place);
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            answer["rows"].as_u64().unwrap_or(0) > 0,
            "{}: no rows\n{sql}",
            q.place
        );
        ran += 1;
    }
    assert!(ran >= 15, "{ran} SQL panels");
}

#[test]
fn every_promql_expression_passes_promtool() {
    let exprs: Vec<(String, String)> = queries()
        .into_iter()
        .filter(|q| q.datasource == "prometheus")
        .map(|q| (q.place, q.text))
        .collect();
    assert!(exprs.len() >= 10, "{} PromQL panels", exprs.len());
    let mut rules = String::from("groups:\n  - name: driftline-dashboards\n    rules:\n");
    for (i, (place, expr)) in exprs.iter().enumerate() {
        rules.push_str(&format!(
            "      # {place}\n      - record: driftline:dashboard_panel_{i}\n        expr: {}\n",
            serde_json::to_string(expr).unwrap()
        ));
    }
    let file = tempfile::Builder::new().suffix(".yml").tempfile().unwrap();
    std::fs::write(file.path(), &rules).unwrap();
    let out = match std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(file.path())
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            common::no_peer(
                &format!("no promtool ({e})"),
                "deploy/local/test-stack.sh install",
            );
            return;
        }
    };
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{rules}");
    assert!(
        text.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{text}"
    );
}
