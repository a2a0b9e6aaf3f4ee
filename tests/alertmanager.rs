//! Alertmanager (Debian's prometheus-alertmanager 0.25) as the reference
//! peer: its PagerDuty sender must pass our Events v2 receiver, and fed the
//! same alerts as driftline it must send the same notifications. Under CI a
//! missing Alertmanager fails these tests.

mod common;
#[path = "common/pagerduty.rs"]
mod pagerduty;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

struct Alertmanager {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alertmanager(config: &str) -> Option<Alertmanager> {
    let bin = std::env::var("DRIFTLINE_TEST_ALERTMANAGER")
        .unwrap_or_else(|_| "prometheus-alertmanager".into());
    if Command::new(&bin).arg("--version").output().is_err() {
        no_peer(
            &format!("no Alertmanager ({bin} is not installed)"),
            "./scripts/test.sh",
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("am.yml"), config).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(&bin)
        .arg(format!(
            "--config.file={}",
            dir.path().join("am.yml").display()
        ))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("am.log")).unwrap())
        .spawn()
        .expect("alertmanager starts");
    let am = Alertmanager {
        child,
        addr,
        _dir: dir,
    };
    wait_for(20, "Alertmanager to be ready", || {
        http_get(&am.addr, "/-/ready").is_ok_and(|(c, _)| c == 200)
    });
    Some(am)
}

fn post(addr: &str, path: &str, body: &Value) -> (u16, String) {
    http_post(addr, path, body).unwrap()
}

fn now_rfc3339() -> String {
    driftline_pipeline::format_epoch_ms(driftline_pipeline::now_ms())
}

#[test]
fn alertmanagers_pagerduty_events_pass_our_receiver() {
    let pd = pagerduty::Receiver::start();
    let Some(am) = alertmanager(&format!(
        "route:\n  receiver: pd\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n- name: pd\n  pagerduty_configs:\n  - routing_key: R0UTINGKEY0123456789abcdefABCDEF\n    url: {}\n    send_resolved: true\n",
        pd.url
    )) else {
        return;
    };
    let alert = json!([{"labels": {"alertname": "DriftChanged", "team": "payments"}, "annotations": {"summary": "sg-1 changed"}}]);
    assert_eq!(post(&am.addr, "/api/v2/alerts", &alert).0, 200);
    wait_for(30, "Alertmanager's trigger", || pd.count("trigger") >= 1);
    let resolved = json!([{"labels": {"alertname": "DriftChanged", "team": "payments"}, "endsAt": now_rfc3339()}]);
    assert_eq!(post(&am.addr, "/api/v2/alerts", &resolved).0, 200);
    wait_for(30, "Alertmanager's resolve", || pd.count("resolve") >= 1);
    let seen = pd.seen.lock().unwrap();
    assert!(
        seen.refused.is_empty(),
        "our receiver refused Alertmanager: {:?}",
        seen.refused
    );
    assert_eq!(seen.accepted[0]["payload"]["severity"], "error");
}

/// `team/alertname/severity` → labels.
fn labels(spec: &str) -> Value {
    let p: Vec<&str> = spec.split('/').collect();
    json!({"team": p[0], "alertname": p[1], "severity": p[2]})
}

/// (receiver, group labels) → [(status, firing alertnames, resolved alertnames)].
type Seen = BTreeMap<String, Vec<(String, Vec<String>, Vec<String>)>>;

fn notifications(hooks: &[(String, Value)], prefix: &str) -> Seen {
    let mut out: Seen = BTreeMap::new();
    for (path, body) in hooks.iter().filter(|(p, _)| p.starts_with(prefix)) {
        let receiver = path.trim_start_matches(prefix);
        let key = format!("{receiver} {}", body["groupLabels"]);
        let mut firing = Vec::new();
        let mut resolved = Vec::new();
        for a in body["alerts"].as_array().unwrap() {
            let name = a["labels"]["alertname"].as_str().unwrap().to_string();
            if a["status"] == "resolved" {
                resolved.push(name);
            } else {
                firing.push(name);
            }
        }
        firing.sort();
        resolved.sort();
        out.entry(key).or_default().push((
            body["status"].as_str().unwrap().to_string(),
            firing,
            resolved,
        ));
    }
    out
}

#[test]
fn driftline_notifies_what_alertmanager_notifies() {
    let scenario: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/side-by-side.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let hooks = pagerduty::Receiver::start();
    let base = hooks.url.trim_end_matches("/v2/enqueue").to_string();
    let s = |p: &str| scenario.pointer(p).unwrap().as_str().unwrap().to_string();
    let list = |p: &str| -> Vec<String> {
        scenario
            .pointer(p)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let (gw, gi) = (
        scenario["group_wait_s"].as_u64().unwrap(),
        scenario["group_interval_s"].as_u64().unwrap(),
    );
    let q = |v: &[String]| {
        v.iter()
            .map(|x| format!("\"{x}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (root_rcv, child_rcv) = (s("/root/receiver"), s("/child/receiver"));
    let child_m = format!("{}=\"{}\"", s("/child/matcher/0"), s("/child/matcher/1"));
    let src = format!("{}=\"{}\"", s("/inhibit/source/0"), s("/inhibit/source/1"));
    let tgt = format!("{}=\"{}\"", s("/inhibit/target/0"), s("/inhibit/target/1"));
    let Some(am) = alertmanager(&format!(
        "route:\n  receiver: {root_rcv}\n  group_by: [{}]\n  group_wait: {gw}s\n  group_interval: {gi}s\n  repeat_interval: 1h\n  routes:\n  - matchers: ['{child_m}']\n    receiver: {child_rcv}\n    group_by: [{}]\n\
         receivers:\n- name: {root_rcv}\n  webhook_configs:\n  - url: {base}/hook/am/{root_rcv}\n- name: {child_rcv}\n  webhook_configs:\n  - url: {base}/hook/am/{child_rcv}\n\
         inhibit_rules:\n- source_matchers: ['{src}']\n  target_matchers: ['{tgt}']\n  equal: [{}]\n",
        q(&list("/root/group_by")),
        q(&list("/child/group_by")),
        q(&list("/inhibit/equal")),
    )) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("driftline.toml");
    std::fs::write(
        &cfg,
        format!(
            "roles = [\"alert\"]\ndata_dir = \"data\"\n[alerts]\n\
             [alerts.route]\nreceiver = \"{root_rcv}\"\ngroup_by = [{}]\ngroup_wait = \"{gw}s\"\ngroup_interval = \"{gi}s\"\nrepeat_interval = \"1h\"\n\
             [[alerts.route.routes]]\nmatchers = ['{child_m}']\nreceiver = \"{child_rcv}\"\ngroup_by = [{}]\n\
             [[alerts.receivers]]\nname = \"{root_rcv}\"\n[[alerts.receivers.webhook_configs]]\nurl = \"{base}/hook/dl/{root_rcv}\"\n\
             [[alerts.receivers]]\nname = \"{child_rcv}\"\n[[alerts.receivers.webhook_configs]]\nurl = \"{base}/hook/dl/{child_rcv}\"\n\
             [[alerts.inhibit_rules]]\nsource_matchers = ['{src}']\ntarget_matchers = ['{tgt}']\nequal = [{}]\n",
            q(&list("/root/group_by")),
            q(&list("/child/group_by")),
            q(&list("/inhibit/equal")),
        ),
    )
    .unwrap();
    let dl = Service::start(
        &["--config", cfg.to_str().unwrap()],
        &tmp.path().join("f.jsonl"),
        &tmp.path().join("run.log"),
    );
    wait_for(20, "driftline to be ready", || {
        http_get(&dl.listen, "/readyz").is_ok_and(|(c, _)| c == 200)
    });

    // The same silence on both.
    let (sn, sv) = (s("/silence/0"), s("/silence/1"));
    let ends = driftline_pipeline::format_epoch_ms(driftline_pipeline::now_ms() + 3_600_000);
    let am_silence = json!({"matchers": [{"name": sn, "value": sv, "isRegex": false, "isEqual": true}],
        "startsAt": now_rfc3339(), "endsAt": ends, "createdBy": "test", "comment": "side by side"});
    assert_eq!(post(&am.addr, "/api/v2/silences", &am_silence).0, 200);
    let dl_silence = json!({"matchers": format!("{sn}=\"{sv}\""), "duration": "1h", "createdBy": "test", "comment": "side by side"});
    let (code, body) = post(&dl.listen, "/api/silences", &dl_silence);
    assert_eq!(code, 200, "{body}");

    let started = Instant::now();
    for step in scenario["steps"].as_array().unwrap() {
        let at = Duration::from_secs_f64(step["at"].as_f64().unwrap());
        if let Some(wait) = at.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let now = now_rfc3339();
        let mut alerts = Vec::new();
        for a in step["fire"].as_array().into_iter().flatten() {
            alerts.push(json!({"labels": labels(a.as_str().unwrap())}));
        }
        for a in step["resolve"].as_array().into_iter().flatten() {
            alerts.push(json!({"labels": labels(a.as_str().unwrap()), "endsAt": now}));
        }
        let body = Value::Array(alerts);
        assert_eq!(post(&am.addr, "/api/v2/alerts", &body).0, 200);
        let (code, text) = post(&dl.listen, "/api/v2/alerts", &body);
        assert_eq!(code, 200, "{text}");
    }
    std::thread::sleep(Duration::from_secs(scenario["settle_s"].as_u64().unwrap()));
    let seen = hooks.seen.lock().unwrap().hooks.clone();
    let am_seen = notifications(&seen, "/hook/am/");
    let dl_seen = notifications(&seen, "/hook/dl/");
    assert!(
        am_seen.values().map(Vec::len).sum::<usize>() >= 6,
        "Alertmanager sent too little: {am_seen:#?}"
    );
    eprintln!("Alertmanager sent: {am_seen:#?}");
    assert_eq!(dl_seen, am_seen, "driftline (left) vs Alertmanager (right)");
    assert!(dl.stop().success());
}
