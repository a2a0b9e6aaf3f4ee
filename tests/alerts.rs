//! Alerts end to end on the embedded default: findings → alert engine →
//! PagerDuty Events v2 (a local receiver that checks every field), with
//! retries, silences from the CLI, and an approved remediation.

mod common;
#[path = "common/pagerduty.rs"]
mod pagerduty;

use std::path::Path;
use std::time::Duration;

use common::*;
use pagerduty::{KEY, Receiver};

fn config(dir: &Path, estate: &Path, extra: &str) -> std::path::PathBuf {
    let p = dir.join("driftline.toml");
    std::fs::write(
        &p,
        format!(
            r#"data_dir = "data"
[watch]
state = ["{s}"]
observed = ["{o}"]
interval_ms = 50
[drift]
driftignore = "{i}"
[alerts]
external_url = "http://driftline.example"
dashboard_url = "https://grafana.example/d/drift"
[alerts.route]
receiver = "oncall"
group_by = ["alertname"]
group_wait = "1s"
group_interval = "1s"
repeat_interval = "1h"
[alerts_delivery]
initial_backoff = "200ms"
max_backoff = "1s"
{extra}"#,
            s = estate.join("terraform").display(),
            o = estate.join("aws-config").display(),
            i = estate.join(".driftignore").display(),
        ),
    )
    .unwrap();
    p
}

fn api(svc: &Service, path: &str) -> serde_json::Value {
    let (code, body) = http_get(&svc.listen, path).unwrap();
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn cli(svc: &Service, args: &[&str]) -> String {
    let out = driftline()
        .args(args)
        .args(["--url", &format!("http://{}", svc.listen)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "driftline {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn pages_once_per_finding_resolves_on_recovery_silences_and_remediates() {
    let pd = Receiver::start();
    // PagerDuty throttles, then fails once: both are retried.
    pd.plan.lock().unwrap().extend([429, 500]);
    let tmp = tempfile::tempdir().unwrap();
    let estate = tmp.path().join("estate");
    copy_dir(&common::estate(), &estate);
    let marker = tmp.path().join("remediated");
    let cfg = config(
        tmp.path(),
        &estate,
        &format!(
            r#"[[alerts.remediation]]
name = "note-unmanaged"
matchers = ['class="unmanaged"']
kind = "command"
command = ["sh", "-c", "echo adopting {{resource_id}} && touch {}"]
"#,
            marker.display()
        ),
    );
    let findings = tmp.path().join("findings.jsonl");
    let svc = Service::start_env(
        &pagerduty::run_args(cfg.to_str().unwrap(), &pd.url),
        &findings,
        &tmp.path().join("run.log"),
        &[("PD_KEY", KEY)],
    );
    wait_for(60, "seven triggers", || pd.count("trigger") >= 7);
    let actions = pd.actions();
    let mut keys: Vec<&String> = actions.iter().map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 7, "one trigger per finding: {actions:?}");
    {
        let seen = pd.seen.lock().unwrap();
        let codes: Vec<u16> = seen.refused.iter().map(|r| r.0).collect();
        assert_eq!(
            codes,
            vec![429, 500],
            "only the forced refusals: {:?}",
            seen.refused
        );
        // Every field a page promises is there.
        let t = &seen.accepted[0];
        assert_eq!(t["client"], "driftline");
        assert_eq!(t["client_url"], "http://driftline.example");
        assert!(
            t["links"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["href"] == "https://grafana.example/d/drift")
        );
        let p = &t["payload"];
        for f in [
            "summary",
            "source",
            "severity",
            "timestamp",
            "component",
            "group",
            "class",
        ] {
            assert!(
                p[f].as_str().is_some_and(|s| !s.is_empty()),
                "payload.{f}: {t:#}"
            );
        }
        assert!(p["custom_details"]["remediation"].is_array(), "{t:#}");
        assert!(
            p["custom_details"]["labels"]["resource_key"].is_string(),
            "{t:#}"
        );
    }

    // The unmanaged bucket's remediation was proposed as a dry run only.
    wait_for(20, "a remediation proposal", || {
        api(&svc, "/api/remediations")
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    let proposals = api(&svc, "/api/remediations");
    let p = &proposals[0];
    assert_eq!(p["status"], "proposed");
    assert!(
        p["plan"]["output"].as_str().unwrap().starts_with("dry run"),
        "{p:#}"
    );
    assert!(!marker.exists(), "a dry run changes nothing");
    let fp = p["fingerprint"].as_str().unwrap().to_string();
    let out = cli(
        &svc,
        &["remediate", &fp[..8], "--approve", "--author", "alice"],
    );
    assert!(out.contains("succeeded"), "{out}");
    assert!(marker.exists(), "the approved run ran");
    let audit = audit_rows(&tmp.path().join("data/remediation_audit"), &fp);
    let actions: Vec<(String, String)> = audit.iter().map(|r| (r.0.clone(), r.1.clone())).collect();
    assert_eq!(
        actions,
        vec![
            ("proposed".into(), "driftline".into()),
            ("approved".into(), "alice".into()),
            ("run".into(), "alice".into())
        ]
    );
    assert_eq!(audit[2].2, Some(0), "exit code audited");

    // Drift fixed: exactly one resolve, for that finding.
    let snapshot = estate.join("aws-config/snapshot.json");
    let original = drop_observed_item(&snapshot, UNMANAGED_BUCKET);
    wait_for(30, "a resolve", || pd.count("resolve") >= 1);
    let resolved: Vec<(String, String)> = pd
        .actions()
        .into_iter()
        .filter(|(_, a)| a == "resolve")
        .collect();
    assert_eq!(resolved, vec![(fp.clone(), "resolve".to_string())]);

    // Silence it from the CLI; the drift comes back: nobody is paged.
    let id = cli(
        &svc,
        &[
            "silence",
            "add",
            &format!("resource_id=\"{UNMANAGED_BUCKET}\""),
            "--duration",
            "1h",
            "--author",
            "bob",
            "--comment",
            "cleanup in progress",
        ],
    );
    let id = id.trim().to_string();
    assert_eq!(id.len(), 32, "{id}");
    let listed = cli(&svc, &["silence", "list"]);
    assert!(
        listed.contains(&id) && listed.contains("cleanup in progress"),
        "{listed}"
    );
    std::fs::write(&snapshot, original).unwrap();
    wait_for(20, "the finding to reopen", || {
        finding_events(&findings)
            .iter()
            .filter(|e| e["resource_id"] == UNMANAGED_BUCKET)
            .count()
            >= 3
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pd.count("trigger"), 7, "silenced: {:?}", pd.actions());
    // Expire the silence: now it pages (once).
    cli(&svc, &["silence", "expire", &id]);
    wait_for(20, "the page after the silence", || {
        pd.count("trigger") >= 8
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(pd.count("trigger"), 8);
    assert_eq!(pd.count("resolve"), 1);

    // The routing key is nowhere but in the requests.
    let log = std::fs::read_to_string(tmp.path().join("run.log")).unwrap();
    assert!(!log.contains(KEY));
    for f in walk(&tmp.path().join("data")) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "routing key in {}",
            f.display()
        );
    }
    assert!(svc.stop().success());
}

/// `run` on a copy of the example estate in `dir`, paging `pd`.
fn page_from_estate(dir: &Path, pd: &Receiver) -> Service {
    let estate = dir.join("estate");
    copy_dir(&common::estate(), &estate);
    let cfg = config(dir, &estate, "");
    Service::start_env(
        &pagerduty::run_args(cfg.to_str().unwrap(), &pd.url),
        &dir.join("findings.jsonl"),
        &dir.join("run.log"),
        &[("PD_KEY", KEY)],
    )
}

#[test]
fn a_refused_event_is_dead_lettered_and_the_rest_delivered() {
    let pd = Receiver::start();
    pd.plan.lock().unwrap().push_back(400);
    let tmp = tempfile::tempdir().unwrap();
    let svc = page_from_estate(tmp.path(), &pd);
    wait_for(60, "six triggers", || pd.count("trigger") >= 6);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(pd.count("trigger"), 6, "the refused one is not retried");
    let (_, metrics) = http_get(&svc.listen, "/metrics").unwrap();
    assert!(
        metrics.contains(r#"driftline_notifications_total{integration="oncall/pagerduty/0",outcome="dead_letter"} 1"#),
        "{metrics}"
    );
    let log = std::fs::read_to_string(tmp.path().join("run.log")).unwrap();
    assert!(
        log.contains("forced by the test"),
        "PagerDuty's error text is kept"
    );
    assert!(!log.contains(KEY));
    assert!(svc.stop().success());
}

#[test]
fn scan_sends_one_trigger_per_finding() {
    let pd = Receiver::start();
    let estate = common::estate();
    let out = driftline()
        .env("PD_KEY", KEY)
        .args(["scan", "--state"])
        .arg(estate.join("terraform"))
        .arg("--observed")
        .arg(estate.join("aws-config"))
        .arg("--driftignore")
        .arg(estate.join(".driftignore"))
        .args(pagerduty::paging_args(&pd.url))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(pd.count("trigger"), 7);
    assert_eq!(pd.count("resolve"), 0);
    let missing = driftline()
        .args([
            "scan",
            "--state",
            "x",
            "--observed",
            "y",
            "--pagerduty-routing-key-env",
            "NO_SUCH_VAR",
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("NO_SUCH_VAR"));
}

/// (action, actor, exit code) of an alert's `remediation_audit` rows, by time.
fn audit_rows(dir: &Path, fingerprint: &str) -> Vec<(String, String, Option<i32>)> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int32Type, Int64Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let mut rows = Vec::new();
    for f in walk(dir) {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b = b.unwrap();
            let col = |name: &str| b.column_by_name(name).unwrap().clone();
            let (at, code) = (col("at_ms"), col("exit_code"));
            let (at, code) = (
                at.as_primitive::<Int64Type>(),
                code.as_primitive::<Int32Type>(),
            );
            let (action, actor, fp) = (col("action"), col("actor"), col("alert_fingerprint"));
            let (action, actor, fp) = (
                action.as_string::<i32>(),
                actor.as_string::<i32>(),
                fp.as_string::<i32>(),
            );
            for i in (0..b.num_rows()).filter(|i| fp.value(*i) == fingerprint) {
                rows.push((
                    at.value(i),
                    action.value(i).to_string(),
                    actor.value(i).to_string(),
                    (!code.is_null(i)).then(|| code.value(i)),
                ));
            }
        }
    }
    rows.sort_by_key(|r| r.0);
    rows.into_iter().map(|(_, a, b, c)| (a, b, c)).collect()
}

/// PagerDuty takes an event and never answers (the client's 10 s timeout
/// ends it), then answers 503, then 202: every finding pages exactly once,
/// and nothing is lost while it was down.
#[test]
fn a_hung_then_failing_pagerduty_is_waited_out_and_each_finding_pages_once() {
    let pd = Receiver::start();
    pd.plan.lock().unwrap().extend([pagerduty::HANG, 503]);
    let tmp = tempfile::tempdir().unwrap();
    let svc = page_from_estate(tmp.path(), &pd);
    wait_for(90, "seven triggers", || pd.count("trigger") >= 7);
    // Time for a stray retry to show itself.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let actions = pd.actions();
    let triggers: Vec<&String> = actions
        .iter()
        .filter(|(_, a)| a == "trigger")
        .map(|(k, _)| k)
        .collect();
    let mut keys = triggers.clone();
    keys.sort();
    keys.dedup();
    assert_eq!(
        (triggers.len(), keys.len()),
        (7, 7),
        "each finding triggered once: {actions:?}"
    );
    let refused: Vec<u16> = pd
        .seen
        .lock()
        .unwrap()
        .refused
        .iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(refused, [pagerduty::HANG, 503]);
    let log = std::fs::read_to_string(&svc.log).unwrap_or_default();
    assert!(!log.contains(KEY), "the routing key is never logged");
    assert!(svc.stop().success());
}
