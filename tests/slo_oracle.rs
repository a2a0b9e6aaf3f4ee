//! The SLO oracle: generated scenarios (steady, fast burn, slow burn,
//! recovery, a gap in the data, counter resets) evaluated by
//! `driftline slo eval` and, as Sloth-style recording and alerting rules
//! with no `for`, by Prometheus's own `promtool test rules`. The firing
//! alerts must agree at every one-minute step.
//!
//! The spec, the rules, each scenario's samples and the expected alerts
//! live in `tests/data/slo/`. `DRIFTLINE_REGENERATE_ORACLE=1` rewrites
//! them from the scenarios below and driftline's answers; without it the
//! test checks that the files are what the scenarios make, that driftline
//! still answers `expected.json`, and that promtool agrees with it.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

const STEPS: usize = 480;
const PER_ROUTE_PER_MIN: f64 = 600.0;
const ROUTES: [&str; 2] = ["/checkout", "/search"];

/// One scenario: each route's error ratio per minute (`None`: no scrape
/// that minute), and the minutes at which every counter restarts.
struct Scenario {
    name: &'static str,
    ratio: fn(&str, usize) -> Option<f64>,
    resets: &'static [usize],
}

fn background(_: &str, _: usize) -> Option<f64> {
    Some(0.002)
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "steady",
        ratio: background,
        resets: &[],
    },
    Scenario {
        name: "fast_burn",
        ratio: |route, m| {
            Some(if route == "/checkout" && (120..150).contains(&m) {
                0.4
            } else {
                0.002
            })
        },
        resets: &[],
    },
    Scenario {
        name: "slow_burn",
        ratio: |route, m| {
            Some(if route == "/search" && m >= 60 {
                0.05
            } else {
                0.002
            })
        },
        resets: &[],
    },
    Scenario {
        name: "recovery",
        ratio: |_, m| Some(if (60..80).contains(&m) { 0.5 } else { 0.0 }),
        resets: &[],
    },
    Scenario {
        name: "gap",
        ratio: |route, m| {
            if (130..146).contains(&m) {
                None
            } else if route == "/checkout" && (120..170).contains(&m) {
                Some(0.4)
            } else {
                Some(0.002)
            }
        },
        resets: &[],
    },
    Scenario {
        name: "counter_reset",
        ratio: |route, m| {
            Some(if route == "/checkout" && (120..180).contains(&m) {
                0.3
            } else {
                0.002
            })
        },
        resets: &[135, 300],
    },
];

fn data() -> PathBuf {
    common::finops::repo().join("tests/data/slo")
}

/// Each series' value per minute (`None`: not scraped).
fn series(s: &Scenario) -> BTreeMap<(String, &'static str), Vec<Option<f64>>> {
    let mut out = BTreeMap::new();
    for route in ROUTES {
        let (mut ok, mut bad) = (0.0f64, 0.0f64);
        let mut ok_values = Vec::new();
        let mut bad_values = Vec::new();
        for m in 0..=STEPS {
            if s.resets.contains(&m) {
                (ok, bad) = (0.0, 0.0);
            }
            let r = (s.ratio)(route, m);
            let errors = (PER_ROUTE_PER_MIN * r.unwrap_or(0.002)).round();
            ok += PER_ROUTE_PER_MIN - errors;
            bad += errors;
            ok_values.push(r.map(|_| ok));
            bad_values.push(r.map(|_| bad));
        }
        out.insert((route.to_string(), "200"), ok_values);
        out.insert((route.to_string(), "500"), bad_values);
    }
    out
}

fn openmetrics(s: &Scenario) -> String {
    let mut t = String::from("# TYPE http_requests counter\n");
    for ((route, code), values) in series(s) {
        for (m, v) in values.iter().enumerate() {
            if let Some(v) = v {
                writeln!(
                    t,
                    "http_requests_total{{job=\"api\",route=\"{route}\",code=\"{code}\"}} {v} {}",
                    m * 60
                )
                .unwrap();
            }
        }
    }
    t.push_str("# EOF\n");
    t
}

fn yaml_map(m: &BTreeMap<String, String>, indent: &str) -> String {
    m.iter()
        .map(|(k, v)| format!("{indent}{k}: {}\n", serde_json::to_string(v).unwrap()))
        .collect()
}

struct SloDef {
    id: &'static str,
    slo: &'static str,
    alert: &'static str,
    objective: f64,
    by_route: bool,
    ticket: bool,
}

const SLOS: [SloDef; 2] = [
    SloDef {
        id: "api-availability",
        slo: "availability",
        alert: "ApiAvailability",
        objective: 99.0,
        by_route: false,
        ticket: true,
    },
    SloDef {
        id: "api-availability-by-route",
        slo: "availability-by-route",
        alert: "ApiRouteAvailability",
        objective: 99.5,
        by_route: true,
        ticket: false,
    },
];

/// A window pair: short, long, burn-rate factor.
type Pair = (&'static str, &'static str, f64);

/// Google's 30-day windows: (severity, [quick, slow]).
fn windows() -> [(&'static str, [Pair; 2]); 2] {
    // Sloth's arithmetic: percent × period hours / 100 / long hours.
    let f = |percent: f64, long_hours: f64| percent * 720.0 / 100.0 / long_hours;
    [
        (
            "page",
            [("5m", "1h", f(2.0, 1.0)), ("30m", "6h", f(5.0, 6.0))],
        ),
        (
            "ticket",
            [("2h", "1d", f(10.0, 24.0)), ("6h", "3d", f(10.0, 72.0))],
        ),
    ]
}

/// The rules Sloth would generate for spec.yaml (one group, recordings
/// before the alerts that read them).
fn rules() -> String {
    let mut t = String::from(
        "# Sloth-style rules for tests/data/slo/spec.yaml, written by tests/slo_oracle.rs.\ngroups:\n- name: sloth-slo-oracle\n  rules:\n",
    );
    for d in &SLOS {
        let by = if d.by_route { "sum by (route) " } else { "sum" };
        let by = by.trim_end();
        for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d"] {
            writeln!(t, "  - record: slo:sli_error:ratio_rate{w}").unwrap();
            writeln!(
                t,
                "    expr: ({by}(rate(http_requests_total{{job=\"api\",code=~\"5..\"}}[{w}]))) / ({by}(rate(http_requests_total{{job=\"api\"}}[{w}])))"
            )
            .unwrap();
            let labels = BTreeMap::from([
                ("owner".to_string(), "platform".to_string()),
                ("sloth_id".into(), d.id.into()),
                ("sloth_service".into(), "api".into()),
                ("sloth_slo".into(), d.slo.into()),
                ("sloth_window".into(), w.into()),
            ]);
            t.push_str("    labels:\n");
            t.push_str(&yaml_map(&labels, "      "));
        }
        let budget = (100.0 - d.objective) / 100.0;
        for (severity, pairs) in windows() {
            if severity == "ticket" && !d.ticket {
                continue;
            }
            let sel = format!(
                "{{sloth_id=\"{}\", sloth_service=\"api\", sloth_slo=\"{}\"}}",
                d.id, d.slo
            );
            let cond = |w: &str, f: f64| {
                format!(
                    "max(slo:sli_error:ratio_rate{w}{sel} > ({f} * {budget})) without (sloth_window)"
                )
            };
            let exprs: Vec<String> = pairs
                .iter()
                .map(|(s, l, f)| format!("({} and {})", cond(s, *f), cond(l, *f)))
                .collect();
            writeln!(t, "  - alert: {}", d.alert).unwrap();
            writeln!(t, "    expr: {}", exprs.join(" or ")).unwrap();
            t.push_str("    labels:\n");
            writeln!(t, "      severity: {severity}").unwrap();
            writeln!(t, "      sloth_severity: {severity}").unwrap();
        }
    }
    t
}

/// promtool's test file: the input series and, at every step, the alerts
/// `expected` says are firing.
fn promtool_test(s: &Scenario, expected: &Value) -> String {
    let mut t = format!(
        "# Scenario {}: written by tests/slo_oracle.rs from expected.json.\nrule_files: [../../rules.yaml]\nevaluation_interval: 1m\ntests:\n- interval: 1m\n  input_series:\n",
        s.name
    );
    for ((route, code), values) in series(s) {
        let vs: Vec<String> = values
            .iter()
            .map(|v| v.map_or("_".to_string(), |v| v.to_string()))
            .collect();
        writeln!(
            t,
            "  - series: 'http_requests_total{{job=\"api\",route=\"{route}\",code=\"{code}\"}}'\n    values: '{}'",
            vs.join(" ")
        )
        .unwrap();
    }
    t.push_str("  alert_rule_test:\n");
    let alerts = expected["alerts"].as_array().unwrap();
    let ms = |v: &Value| {
        v.as_str()
            .map(|s| driftline_pipeline::time::parse_iso8601_ms(s).unwrap())
    };
    for m in 0..=STEPS {
        let at = m as i64 * 60_000;
        for d in &SLOS {
            writeln!(t, "  - eval_time: {m}m\n    alertname: {}", d.alert).unwrap();
            let firing: Vec<&Value> = alerts
                .iter()
                .filter(|a| a["slo"] == d.slo)
                .filter(|a| ms(&a["start"]).unwrap() <= at && ms(&a["end"]).is_none_or(|e| at < e))
                .collect();
            if firing.is_empty() {
                t.push_str("    exp_alerts: []\n");
                continue;
            }
            t.push_str("    exp_alerts:\n");
            for a in firing {
                let severity = a["severity"].as_str().unwrap();
                let mut labels = BTreeMap::from([
                    ("owner".to_string(), "platform".to_string()),
                    ("severity".into(), severity.into()),
                    ("sloth_id".into(), d.id.into()),
                    ("sloth_service".into(), "api".into()),
                    ("sloth_severity".into(), severity.into()),
                    ("sloth_slo".into(), d.slo.into()),
                ]);
                if let Some(l) = a["labels"].as_object() {
                    for (k, v) in l {
                        labels.insert(k.clone(), v.as_str().unwrap().into());
                    }
                }
                t.push_str("    - exp_labels:\n");
                t.push_str(&yaml_map(&labels, "        "));
            }
        }
    }
    t
}

fn slo_eval(samples: &Path) -> Value {
    let out = common::driftline()
        .args([
            "slo", "eval", "--step", "1m", "--from", "0", "--output", "json", "--spec",
        ])
        .arg(data().join("spec.yaml"))
        .arg("--samples")
        .arg(samples)
        .arg("--to")
        .arg((STEPS * 60).to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "slo eval: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `path` holds `text`; with DRIFTLINE_REGENERATE_ORACLE it is written.
fn check_file(path: &Path, text: &str) {
    if std::env::var("DRIFTLINE_REGENERATE_ORACLE").is_ok() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        return;
    }
    let held = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (DRIFTLINE_REGENERATE_ORACLE=1 writes it)",
            path.display()
        )
    });
    assert!(
        held == text,
        "{} is not what the scenario makes (DRIFTLINE_REGENERATE_ORACLE=1 rewrites it)",
        path.display()
    );
}

#[test]
fn slo_alerts_agree_with_promtool_at_every_step() {
    check_file(&data().join("rules.yaml"), &rules());
    let mut fired = 0;
    for s in SCENARIOS {
        let dir = data().join("scenarios").join(s.name);
        let samples = dir.join("samples.om");
        check_file(&samples, &openmetrics(s));
        let answer = slo_eval(&samples);
        let text = serde_json::to_string_pretty(&answer).unwrap() + "\n";
        check_file(&dir.join("expected.json"), &text);
        fired += answer["alerts"].as_array().unwrap().len();
        let test = promtool_test(s, &answer);
        check_file(&dir.join("promtool.yaml"), &test);
        let out = match std::process::Command::new("promtool")
            .args(["test", "rules", "promtool.yaml"])
            .current_dir(&dir)
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                common::no_peer(
                    &format!("promtool is not installed ({e})"),
                    "deploy/local/test-stack.sh",
                );
                return;
            }
        };
        assert!(
            out.status.success(),
            "scenario {}: promtool disagrees with driftline:\n{}{}",
            s.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The scenarios exercise alerts, not only their absence.
    assert!(
        fired >= 5,
        "only {fired} alert intervals over all scenarios"
    );
}

#[test]
fn steady_traffic_within_budget_never_alerts() {
    let held = std::fs::read_to_string(data().join("scenarios/steady/expected.json")).unwrap();
    let v: Value = serde_json::from_str(&held).unwrap();
    assert_eq!(v["alerts"], serde_json::json!([]));
}
