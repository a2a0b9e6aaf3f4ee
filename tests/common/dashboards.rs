//! The dashboards' queries, read from `dashboards/*.json`, and the
//! ClickHouse plugin's macros expanded as the plugin expands them.
// Shared by several test binaries, each using part of it.
#![allow(dead_code)]

use serde_json::Value;

use super::finops::repo;

/// Every dashboard: (file name, JSON).
pub fn dashboards() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(repo().join("dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, json)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// One panel query: where it is, and its text.
pub struct PanelQuery {
    pub place: String,
    pub datasource: String,
    pub text: String,
}

/// Every target of every panel, and every annotation's.
pub fn queries() -> Vec<PanelQuery> {
    let mut out = Vec::new();
    for (file, d) in dashboards() {
        for a in d["annotations"]["list"].as_array().into_iter().flatten() {
            let target = &a["target"];
            out.push(PanelQuery {
                place: format!("{file}: annotation {}", a["name"].as_str().unwrap_or("?")),
                datasource: a["datasource"]["type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                text: target["rawSql"]
                    .as_str()
                    .or(target["expr"].as_str())
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        for panel in d["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let datasource = target["datasource"]["type"]
                    .as_str()
                    .or(panel["datasource"]["type"].as_str())
                    .unwrap_or_default()
                    .to_string();
                let text = target["rawSql"]
                    .as_str()
                    .or(target["expr"].as_str())
                    .unwrap_or_default()
                    .to_string();
                out.push(PanelQuery {
                    place: format!("{file}: {}", panel["title"].as_str().unwrap_or("?")),
                    datasource,
                    text,
                });
            }
        }
    }
    out
}

/// The text between the parentheses that open at `open` (nested ones
/// included), and the index after the closing one.
fn argument(sql: &str, open: usize) -> (String, usize) {
    let mut depth = 0;
    for (i, c) in sql[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return (sql[open + 1..open + i].to_string(), open + i + 1);
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced macro call in {sql}");
}

/// `sql` with the grafana-clickhouse-datasource macros expanded for the
/// range [from, to] (Unix seconds) and an interval of `interval_s`, as the
/// plugin (v4) writes them.
pub fn expand_macros(sql: &str, from: i64, to: i64, interval_s: i64) -> String {
    let day = |t: i64| driftline_pipeline::format_epoch_ms(t * 1000)[..10].to_string();
    let mut out = sql.to_string();
    type Expand<'a> = &'a dyn Fn(&str) -> String;
    let calls: [(&str, Expand); 3] = [
        ("$__timeFilter(", &|c| {
            format!("{c} >= toDateTime({from}) AND {c} <= toDateTime({to})")
        }),
        ("$__dateFilter(", &|c| {
            format!(
                "{c} >= toDate('{}') AND {c} <= toDate('{}')",
                day(from),
                day(to)
            )
        }),
        ("$__timeInterval(", &|c| {
            format!("toStartOfInterval(toDateTime({c}), INTERVAL {interval_s} second)")
        }),
    ];
    for (name, expand) in calls {
        while let Some(at) = out.find(name) {
            let (arg, end) = argument(&out, at + name.len() - 1);
            out = format!("{}{}{}", &out[..at], expand(arg.trim()), &out[end..]);
        }
    }
    out = out
        .replace("$__fromTime", &format!("toDateTime({from})"))
        .replace("$__toTime", &format!("toDateTime({to})"))
        .replace("$__interval_s", &interval_s.to_string());
    assert!(
        !out.contains("$__"),
        "a macro this test does not know: {out}"
    );
    out
}
