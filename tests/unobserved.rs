//! Unknown is not drift: a source that cannot read its scope (no
//! recorder, access denied, a type the recorder leaves out, an unreadable
//! state file) never turns what it hides into `missing`, `changed` or
//! `unmanaged` findings. It raises one `source_unavailable` finding (one
//! page) instead, and `scan` names it with the reason.
//!
//! The AWS cases run against moto (test-stack.sh), refusing calls on demand
//! through its launcher; each test works in regions of its own.

#[path = "common/aws.rs"]
mod aws;
mod common;
#[path = "common/pagerduty.rs"]
mod pagerduty;

use std::path::Path;
use std::time::Duration;

use aws::*;
use common::*;
use serde_json::{Value, json};

/// A declared SNS topic, in the shape of a Terraform v4 state resource.
fn topic_resource(name: &str, region: &str) -> Value {
    let arn = format!("arn:aws:sns:{region}:{ACCOUNT}:{name}");
    json!({
        "mode": "managed", "type": "aws_sns_topic", "name": name.replace('-', "_"),
        "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
        "instances": [{"schema_version": 0, "attributes": {
            "id": arn, "arn": arn, "name": name, "display_name": "", "policy": null,
            "kms_master_key_id": "", "tags": {}, "tags_all": {}
        }, "sensitive_attributes": []}]
    })
}

/// Unobserved scopes of a scan's JSON output that match `region`.
fn unobserved_in<'a>(doc: &'a Value, region: &str) -> Vec<&'a Value> {
    doc["unobserved"]
        .as_array()
        .map(|a| a.iter().filter(|u| u["region"] == region).collect())
        .unwrap_or_default()
}

fn classes_for(findings: &[Value], id: &str) -> Vec<String> {
    findings
        .iter()
        .filter(|f| {
            f["resource_key"]
                .as_str()
                .is_some_and(|k| k.ends_with(&format!("/{id}")))
        })
        .map(|f| f["class"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn scan_names_unreadable_scopes_and_finds_drift_where_it_can_read() {
    let Some(moto) = Moto::get() else { return };
    let ok = "eu-west-2";
    let no_recorder = "ap-southeast-1";
    let denied = "ap-southeast-2";
    let excluding = "us-east-2";
    moto.drop_buckets(&[], Some("dl-unobs-"));
    moto.recorder(ok);
    moto.recorder(denied);
    moto.recorder_excluding(excluding, &["AWS::SNS::Topic"]);
    // The role reading denied lost config:ListDiscoveredResources there.
    moto.refuse(
        denied,
        "ListDiscoveredResources",
        "AccessDeniedException",
        "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: config:ListDiscoveredResources",
    );
    moto.bucket(ok, "dl-unobs-ok-changed", &[("Owner", "team-b")]);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("terraform.tfstate");
    let mut doc: Value = serde_json::from_str(&bucket_state(
        3,
        &[
            ("dl-unobs-ok-changed", ok, &[("Owner", "team-a")]),
            ("dl-unobs-ok-gone", ok, &[]),
            ("dl-unobs-norec-a", no_recorder, &[]),
            ("dl-unobs-norec-b", no_recorder, &[]),
            ("dl-unobs-denied-a", denied, &[]),
            ("dl-unobs-excl-gone", excluding, &[]),
        ],
    ))
    .unwrap();
    doc["resources"]
        .as_array_mut()
        .unwrap()
        .push(topic_resource("dl-unobs-topic", excluding));
    std::fs::write(&state, doc.to_string()).unwrap();
    // The two types in play, read at the peer's pace rather than AWS's.
    let cfg = tmp.path().join("driftline.toml");
    std::fs::write(
        &cfg,
        "[aws_config]\nresource_types = [\"AWS::S3::Bucket\", \"AWS::SNS::Topic\"]\nrequests_per_second = 100\nburst = 50\n",
    )
    .unwrap();
    let scan_with = |output: &str, extra: &[&str]| {
        driftline()
            .envs(moto.env(ok))
            .env("PD_KEY", pagerduty::KEY)
            .args(["scan", "--config", cfg.to_str().unwrap()])
            .args(["--state", state.to_str().unwrap()])
            .args([
                "--observed",
                &format!("aws-config:{ok},{no_recorder},{denied},{excluding}"),
            ])
            .args(["--account", ACCOUNT, "--output", output])
            .args(extra)
            .output()
            .unwrap()
    };
    let scan = |output: &str| scan_with(output, &[]);

    let out = scan("json");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stderr}\n{stdout}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = report["findings"].as_array().unwrap();
    // Where it can read: exactly the true drift.
    assert_eq!(
        classes_for(f, "dl-unobs-ok-changed"),
        ["changed"],
        "{stdout}"
    );
    assert_eq!(classes_for(f, "dl-unobs-ok-gone"), ["missing"], "{stdout}");
    // The recorder leaves out topics, not buckets.
    assert_eq!(
        classes_for(f, "dl-unobs-excl-gone"),
        ["missing"],
        "{stdout}"
    );
    assert_eq!(f.len(), 3, "nothing else is drift: {stdout}");

    // Where it cannot: named, with the reason and what it withheld.
    let u = unobserved_in(&report, no_recorder);
    assert_eq!(u.len(), 1, "{stdout}");
    assert_eq!(
        u[0]["reason"],
        format!("region {no_recorder}: no configuration recorder")
    );
    assert_eq!(u[0]["source"], format!("aws-config://{no_recorder}"));
    assert_eq!(u[0]["affected"], 2);
    let u = unobserved_in(&report, denied);
    assert_eq!(u.len(), 1, "{stdout}");
    assert_eq!(
        u[0]["reason"],
        format!("region {denied}: AccessDeniedException on ListDiscoveredResources")
    );
    assert_eq!(u[0]["affected"], 1);
    let u = unobserved_in(&report, excluding);
    assert_eq!(u.len(), 1, "{stdout}");
    assert_eq!(u[0]["reason"], "type AWS::SNS::Topic not recorded");
    assert_eq!(u[0]["resource_type"], "AWS::SNS::Topic");
    assert_eq!(u[0]["affected"], 1);
    assert_eq!(u[0]["source_up"], true, "the region itself is read");
    assert_eq!(report["summary"]["unobserved"], 4, "{stdout}");

    // The table and SARIF say the same to people and code-scanning UIs.
    let out = scan("table");
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2));
    assert!(table.contains("Not observed"), "{table}");
    for reason in [
        format!("region {no_recorder}: no configuration recorder"),
        format!("region {denied}: AccessDeniedException on ListDiscoveredResources"),
        "type AWS::SNS::Topic not recorded".to_string(),
    ] {
        assert!(table.contains(&reason), "{reason} in:\n{table}");
    }
    assert!(!table.contains("dl-unobs-norec-a"), "{table}");
    let out = scan("sarif");
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let unobserved: Vec<&Value> = results
        .iter()
        .filter(|r| r["ruleId"] == "source/unobserved")
        .collect();
    assert_eq!(unobserved.len(), 3, "{sarif:#}");
    assert!(
        unobserved.iter().any(|r| r["message"]["text"]
            .as_str()
            .unwrap()
            .contains("no configuration recorder; 2 declared resources not called missing")),
        "{sarif:#}"
    );
    assert_eq!(
        sarif["runs"][0]["invocations"][0]["executionSuccessful"],
        false
    );

    // Paging from scan: one trigger per finding and one per outage, none
    // for what the outages hide.
    let pd = pagerduty::Receiver::start();
    let out = scan_with("json", &pagerduty::paging_args(&pd.url));
    assert_eq!(out.status.code(), Some(2));
    let seen = pd.seen.lock().unwrap();
    let classes: Vec<&str> = seen
        .accepted
        .iter()
        .map(|e| e["payload"]["class"].as_str().unwrap())
        .collect();
    assert_eq!(seen.accepted.len(), 5, "{classes:?}");
    assert_eq!(
        classes
            .iter()
            .filter(|c| **c == "SourceUnavailable")
            .count(),
        2,
        "{classes:?}"
    );
    drop(seen);
    moto.allow(denied);
}

/// Alerting settings for the outage test: quick groups, quick retries.
const PAGING: &str = r#"
[alerts.route]
receiver = "oncall"
group_by = ["alertname", "source"]
group_wait = "500ms"
group_interval = "500ms"
repeat_interval = "1h"
[alerts_delivery]
initial_backoff = "200ms"
max_backoff = "1s"
"#;

/// Finding events of `class` whose resource id is `id`, as `event` names.
fn events_of(events: &[Value], class: &str, id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["class"] == class && e["resource_id"] == id)
        .map(|e| e["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Accepted PagerDuty events whose summary mentions `needle`, as actions.
fn pages_about(pd: &pagerduty::Receiver, needle: &str) -> Vec<String> {
    let seen = pd.seen.lock().unwrap();
    let keys: Vec<String> = seen
        .accepted
        .iter()
        .filter(|e| {
            e["payload"]["summary"]
                .as_str()
                .is_some_and(|s| s.contains(needle))
        })
        .filter_map(|e| e["dedup_key"].as_str().map(String::from))
        .collect();
    seen.accepted
        .iter()
        .filter(|e| {
            e["dedup_key"]
                .as_str()
                .is_some_and(|k| keys.iter().any(|x| x == k))
        })
        .map(|e| e["event_action"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn run_freezes_a_failing_region_pages_the_outage_once_then_finds_the_true_drift() {
    let Some(moto) = Moto::get() else { return };
    let works = "ap-northeast-1";
    let no_recorder = "ap-northeast-2";
    moto.drop_buckets(&[], Some("dl-outage-"));
    moto.allow(works);
    moto.recorder(works);
    moto.bucket(works, "dl-outage-app", &[("Owner", "team-a")]);
    moto.bucket(works, "dl-outage-gone", &[]);
    moto.bucket(works, "dl-outage-extra", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let states = tmp.path().join("states");
    std::fs::create_dir(&states).unwrap();
    std::fs::write(
        states.join("app.tfstate"),
        bucket_state(
            1,
            &[
                ("dl-outage-app", works, &[("Owner", "team-a")]),
                ("dl-outage-gone", works, &[]),
                ("dl-outage-h1", no_recorder, &[]),
            ],
        ),
    )
    .unwrap();
    let cfg = run_config(
        tmp.path(),
        &format!("{works},{no_recorder}"),
        states.to_str().unwrap(),
        PAGING,
    );
    let pd = pagerduty::Receiver::start();
    let findings = tmp.path().join("findings.jsonl");
    let mut env = moto.env(works);
    env.push(("PD_KEY", pagerduty::KEY.into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let svc = Service::start_env(
        &pagerduty::run_args(cfg.to_str().unwrap(), &pd.url),
        &findings,
        &tmp.path().join("run.log"),
        &env,
    );
    let src_works = format!("aws-config://{works}");
    let src_norec = format!("aws-config://{no_recorder}");

    // The recorder-less region: one source_unavailable, no missing.
    wait_for(60, "the recorder-less region's outage", || {
        events_of(&finding_events(&findings), "source_unavailable", &src_norec) == ["new"]
    });
    wait_for(30, "the unmanaged extra bucket", || {
        events_of(&finding_events(&findings), "unmanaged", "dl-outage-extra") == ["new"]
    });
    std::thread::sleep(Duration::from_millis(1500));
    let events = finding_events(&findings);
    assert_eq!(events.len(), 2, "only those two: {events:#?}");
    wait_for(20, "the first outage paged", || {
        pages_about(&pd, &src_norec) == ["trigger"]
    });

    // The region that worked loses its permission.
    moto.refuse(works, "*", "AccessDeniedException", "not authorized");
    wait_for(30, "the working region's outage", || {
        events_of(&finding_events(&findings), "source_unavailable", &src_works) == ["new"]
    });
    let (_, m) = http_get(&svc.listen, "/metrics").unwrap();
    assert!(
        m.contains(&format!(
            "driftline_source_up{{account=\"{ACCOUNT}\",region=\"{works}\",source=\"{src_works}\"}} 0"
        )),
        "{m}"
    );
    assert!(m.contains("driftline_source_stale_seconds{"), "{m}");
    // Meanwhile, out of band: a tag changed, a declared bucket deleted, the
    // unmanaged bucket deleted. None of it is known yet, so nothing opens
    // or resolves.
    moto.tag(works, "dl-outage-app", &[("Owner", "team-b")]);
    moto.delete_bucket(works, "dl-outage-gone");
    moto.delete_bucket(works, "dl-outage-extra");
    std::thread::sleep(Duration::from_secs(4));
    let events = finding_events(&findings);
    assert_eq!(events.len(), 3, "frozen during the outage: {events:#?}");
    wait_for(20, "the second outage paged", || {
        pages_about(&pd, &src_works) == ["trigger"]
    });

    // Recovered: the outage resolves, then exactly the true drift.
    moto.allow(works);
    wait_for(30, "the outage resolved", || {
        events_of(&finding_events(&findings), "source_unavailable", &src_works)
            == ["new", "resolved"]
    });
    wait_for(30, "the true drift", || {
        let e = finding_events(&findings);
        events_of(&e, "changed", "dl-outage-app") == ["new"]
            && events_of(&e, "missing", "dl-outage-gone") == ["new"]
            && events_of(&e, "unmanaged", "dl-outage-extra") == ["new", "resolved"]
    });
    std::thread::sleep(Duration::from_millis(1500));
    let events = finding_events(&findings);
    assert_eq!(events.len(), 7, "{events:#?}");
    assert!(
        events_of(&events, "missing", "dl-outage-h1").is_empty(),
        "unknown is not missing: {events:#?}"
    );
    // One page per outage: triggered once, resolved once.
    wait_for(20, "the outage's resolve paged", || {
        pages_about(&pd, &src_works) == ["trigger", "resolve"]
    });
    assert_eq!(pages_about(&pd, &src_norec), ["trigger"]);
    {
        let seen = pd.seen.lock().unwrap();
        let outage = seen
            .accepted
            .iter()
            .find(|e| {
                e["payload"]["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains(&src_works))
            })
            .unwrap();
        let labels = &outage["payload"]["custom_details"]["labels"];
        assert_eq!(labels["alertname"], "SourceUnavailable", "{outage:#}");
        assert_eq!(labels["source"], src_works.as_str(), "{outage:#}");
        assert_eq!(labels["region"], works, "{outage:#}");
        assert_eq!(labels["account"], ACCOUNT, "{outage:#}");
        assert!(
            labels["reason"]
                .as_str()
                .unwrap()
                .contains("AccessDeniedException on DescribeConfigurationRecorderStatus"),
            "{outage:#}"
        );
        assert!(seen.refused.is_empty(), "{:?}", seen.refused);
    }
    let (_, m) = http_get(&svc.listen, "/metrics").unwrap();
    assert!(
        m.contains(&format!(
            "driftline_source_up{{account=\"{ACCOUNT}\",region=\"{works}\",source=\"{src_works}\"}} 1"
        )),
        "{m}"
    );
    assert!(svc.stop().success());
}

#[test]
fn an_unreadable_state_file_floods_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let estate = tmp.path().join("estate");
    copy_dir(&common::estate(), &estate);
    let state = estate.join("terraform/terraform.tfstate");
    let good = std::fs::read_to_string(&state).unwrap();
    std::fs::write(&state, "{\"version\": 4, \"resources\": [").unwrap();
    let source = state.display().to_string();

    // scan: exit 2, the state named, nothing called unmanaged, no coverage.
    let out = driftline()
        .args(["scan", "--state"])
        .arg(estate.join("terraform"))
        .arg("--observed")
        .arg(estate.join("aws-config"))
        .args(["--output", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"], json!([]), "{stdout}");
    assert_eq!(report["coverage"], json!([]), "{stdout}");
    assert!(report["summary"]["coverage_excluded"].as_u64().unwrap() > 0);
    let u = &report["unobserved"][0];
    assert_eq!(u["side"], "declared", "{stdout}");
    assert_eq!(u["source"], source.as_str(), "{stdout}");
    assert!(
        u["reason"].as_str().unwrap().starts_with("unreadable: "),
        "{u}"
    );
    assert_eq!(u["affected"], report["summary"]["unmanaged_withheld"]);
    assert!(u["affected"].as_u64().unwrap() > 30, "{u}");

    // run, with the state unreadable from the start: no unmanaged flood.
    // The service reports per watched input (the folder, naming the file),
    // so a restart's first pass overwrites what the last process said.
    let source = estate.join("terraform").display().to_string();
    let findings = tmp.path().join("findings.jsonl");
    let svc = run_on_estate(&estate, tmp.path());
    wait_for(60, "the state file's outage", || {
        events_of(&finding_events(&findings), "source_unavailable", &source) == ["new"]
    });
    std::thread::sleep(Duration::from_millis(1500));
    let events = finding_events(&findings);
    assert_eq!(events.len(), 1, "no unmanaged flood: {events:#?}");
    assert!(
        events[0]["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("unreadable: {}: ", state.display())),
        "{events:#?}"
    );
    let (_, m) = http_get(&svc.listen, "/metrics").unwrap();
    assert!(
        m.contains(&format!(
            "driftline_source_up{{account=\"-\",region=\"-\",source=\"{source}\"}} 0"
        )),
        "{m}"
    );

    // Readable again: the outage resolves and the estate's seven findings open.
    std::fs::write(&state, &good).unwrap();
    wait_for(30, "the seven findings", || {
        let e = finding_events(&findings);
        events_of(&e, "source_unavailable", &source) == ["new", "resolved"]
            && e.iter().filter(|e| e["detector"] == "drift").count() == 7
    });

    // Half-written again, now with a good version kept: it is stale, and
    // nothing opens or resolves.
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&state, "{\"version\": 4, \"resources\": [").unwrap();
    wait_for(30, "the second outage", || {
        events_of(&finding_events(&findings), "source_unavailable", &source)
            == ["new", "resolved", "new"]
    });
    let events = finding_events(&findings);
    let outage = events.last().unwrap();
    assert!(
        outage["summary"]
            .as_str()
            .unwrap()
            .contains("its last good reading is kept"),
        "{outage}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let after = finding_events(&findings);
    assert_eq!(after.len(), events.len(), "{after:#?}");
    assert!(svc.stop().success());
}

#[test]
fn an_item_aws_config_did_not_record_is_unobserved_not_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let estate = tmp.path().join("estate");
    copy_dir(&common::estate(), &estate);
    let snapshot = estate.join("aws-config/snapshot.json");
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&snapshot).unwrap()).unwrap();
    // A drifted, declared bucket and the unmanaged one, both as AWS Config
    // writes a resource it stopped recording.
    for item in doc["configurationItems"].as_array_mut().unwrap() {
        if ["acme-prod-assets", UNMANAGED_BUCKET].contains(&item["resourceId"].as_str().unwrap()) {
            item["configurationItemStatus"] = json!("ResourceNotRecorded");
        }
    }
    let scan = |estate: &Path| {
        driftline()
            .args(["scan", "--output", "json", "--state"])
            .arg(estate.join("terraform"))
            .arg("--observed")
            .arg(estate.join("aws-config"))
            .arg("--driftignore")
            .arg(estate.join(".driftignore"))
            .output()
            .unwrap()
    };
    let s3_unmanaged = |report: &Value| {
        report["coverage"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["resource_type"] == "AWS::S3::Bucket")
            .map(|c| c["unmanaged"].as_u64().unwrap())
    };
    let before: Value = serde_json::from_slice(&scan(&common::estate()).stdout).unwrap();
    std::fs::write(&snapshot, doc.to_string()).unwrap();
    let out = scan(&estate);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The rest of the estate's drift stands; the source itself was read.
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = report["findings"].as_array().unwrap();
    assert!(classes_for(f, "acme-prod-assets").is_empty(), "{stdout}");
    assert!(classes_for(f, UNMANAGED_BUCKET).is_empty(), "{stdout}");
    assert_eq!(f.len(), 5, "{stdout}");
    let u = &report["unobserved"][0];
    assert_eq!(
        u["reason"], "type AWS::S3::Bucket not recorded (ResourceNotRecorded)",
        "{stdout}"
    );
    assert_eq!(u["affected"], 1, "{stdout}");
    // Coverage counts only what AWS Config says exists.
    assert_eq!(
        s3_unmanaged(&report),
        s3_unmanaged(&before).map(|n| n - 1),
        "{stdout}"
    );
}

#[test]
fn a_type_the_recorder_stops_recording_is_not_deleted() {
    let Some(moto) = Moto::get() else { return };
    let region = "eu-south-1";
    moto.drop_buckets(&[], Some("dl-stoprec-"));
    moto.recorder(region);
    moto.bucket(region, "dl-stoprec-kept", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let states = tmp.path().join("states");
    std::fs::create_dir(&states).unwrap();
    std::fs::write(
        states.join("s.tfstate"),
        bucket_state(1, &[("dl-stoprec-kept", region, &[])]),
    )
    .unwrap();
    let cfg = run_config(tmp.path(), region, states.to_str().unwrap(), "");
    let findings = tmp.path().join("findings.jsonl");
    let mut env = moto.env(region);
    let env: Vec<(&str, &str)> = env.iter_mut().map(|(k, v)| (*k, v.as_str())).collect();
    let svc = Service::start_env(
        &["--config", cfg.to_str().unwrap()],
        &findings,
        &tmp.path().join("run.log"),
        &env,
    );
    wait_for(30, "/readyz", || {
        http_get(&svc.listen, "/readyz").is_ok_and(|(c, _)| c == 200)
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(finding_events(&findings).is_empty());
    // Someone narrows the recorder: buckets are no longer listed, but none
    // was deleted.
    moto.recorder_excluding(region, &["AWS::S3::Bucket"]);
    std::thread::sleep(Duration::from_secs(4));
    let events = finding_events(&findings);
    assert!(events.is_empty(), "not missing: {events:#?}");
    let log = std::fs::read_to_string(&svc.log).unwrap();
    assert!(svc.stop().success());
    assert!(
        log.contains("AWS Config pass"),
        "the region was read after the change: {log}"
    );
}
