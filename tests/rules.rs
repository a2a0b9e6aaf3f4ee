//! Policy and tagging rules as SQL files: the shipped ones on the demo
//! estate (with cost rows from either store) and on items made to break
//! them, and `driftline check --rules` on broken rules.

mod common;

use common::finops::{Store, export_rows, repo, scan_estate, stores};
use serde_json::Value;

/// The estate copied, with an unencrypted volume and a public bucket added
/// to the recorder's snapshot.
fn estate_with_violations() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        std::process::Command::new("cp")
            .arg("-r")
            .arg(repo().join("examples/estate/."))
            .arg(dir.path())
            .status()
            .unwrap()
            .success()
    );
    let snapshot = dir.path().join("aws-config/snapshot.json");
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&snapshot).unwrap()).unwrap();
    let items = doc["configurationItems"].as_array_mut().unwrap();
    let item = |rtype: &str, id: &str, configuration: Value, supplementary: Value| {
        serde_json::json!({
            "version": "1.3", "accountId": "123456789012",
            "configurationItemCaptureTime": "2026-11-20T10:00:00.000Z",
            "configurationItemStatus": "OK", "resourceType": rtype, "resourceId": id,
            "resourceName": id, "awsRegion": "eu-west-1",
            "tags": {"team": "payments", "env": "prod"},
            "configuration": configuration, "supplementaryConfiguration": supplementary,
            "relationships": []
        })
    };
    items.push(item(
        "AWS::EC2::Volume",
        "vol-0plain000000000001",
        serde_json::json!({"volumeId": "vol-0plain000000000001", "size": 8, "encrypted": false}),
        serde_json::json!({}),
    ));
    items.push(item(
        "AWS::S3::Bucket",
        "acme-public-site",
        serde_json::json!({"name": "acme-public-site"}),
        serde_json::json!({
            "BucketPolicy": {"policyText": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::acme-public-site/*\"}]}"}
        }),
    ));
    // A bucket with the same policy but every public access block on is not public.
    items.push(item(
        "AWS::S3::Bucket",
        "acme-blocked-site",
        serde_json::json!({"name": "acme-blocked-site"}),
        serde_json::json!({
            "BucketPolicy": {"policyText": "{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\"}]}"},
            "PublicAccessBlockConfiguration": {"blockPublicAcls": true, "ignorePublicAcls": true,
                                               "blockPublicPolicy": true, "restrictPublicBuckets": true}
        }),
    ));
    std::fs::write(&snapshot, serde_json::to_string(&doc).unwrap()).unwrap();
    dir
}

/// (rule, resource id, summary) of each policy finding a scan reports.
fn policy_findings(store: &Store, estate: &std::path::Path) -> Vec<(String, String, String)> {
    common::succeeded(
        common::driftline()
            .args(["cost", "import"])
            .arg(estate.join("cost"))
            .args(store.args())
            .output()
            .unwrap(),
    );
    let out = scan_estate(
        store,
        estate,
        &estate.join(".driftignore"),
        &["--output", "json", "--rules", "shipped"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found: Vec<(String, String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["class"] == "policy")
        .map(|f| {
            (
                f["source"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("rule:")
                    .to_string(),
                f["resource_id"].as_str().unwrap().to_string(),
                f["summary"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn the_shipped_rules_find_what_the_estate_breaks() {
    for store in stores("rules") {
        let estate = estate_with_violations();
        let found = policy_findings(&store, estate.path());
        let ids = |rule: &str| -> Vec<&str> {
            found
                .iter()
                .filter(|(r, _, _)| r == rule)
                .map(|(_, id, _)| id.as_str())
                .collect()
        };
        assert_eq!(
            ids("security_group_open_admin_ports"),
            ["sg-0web1234567890abc"],
            "{}: {found:#?}",
            store.name()
        );
        assert_eq!(ids("ebs_volume_unencrypted"), ["vol-0plain000000000001"]);
        assert_eq!(ids("s3_bucket_public"), ["acme-public-site"]);
        // The buckets nobody tagged lack both default required tags.
        let untagged = ids("required_tags");
        for bucket in ["acme-prod-exports-tmp", "acme-scratch-alice"] {
            assert_eq!(
                untagged.iter().filter(|id| **id == bucket).count(),
                2,
                "{untagged:?}"
            );
        }
        assert!(!untagged.contains(&"acme-prod-assets"));

        // The untagged share of the account's spend, from the export itself.
        let rows = export_rows();
        let total: f64 = rows.iter().map(|r| r.effective).sum();
        let untagged: f64 = rows
            .iter()
            .filter(|r| !(r.tags.contains_key("team") && r.tags.contains_key("env")))
            .map(|r| r.effective)
            .sum();
        let share = format!("untagged spend is {:.1}%", 100.0 * untagged / total);
        let spend = found
            .iter()
            .find(|(r, _, _)| r == "untagged_spend_share")
            .unwrap_or_else(|| panic!("{}: no untagged spend finding: {found:#?}", store.name()));
        assert!(spend.2.starts_with(&share), "{} vs {share}", spend.2);
    }
}

#[test]
fn check_names_each_broken_rule() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a_ok.sql"), "SELECT resource_key, resource_type, resource_id, account, region, 'x' AS summary FROM resources_observed").unwrap();
    std::fs::write(
        dir.path().join("b_dml.sql"),
        "DELETE FROM resources_observed",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c_column.sql"),
        "SELECT resource_key FROM resources_observed",
    )
    .unwrap();
    let out = common::driftline()
        .args(["check", "--rules"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("b_dml.sql") && err.contains("only queries"),
        "{err}"
    );
    assert!(
        err.contains("c_column.sql") && err.contains("`resource_type`"),
        "{err}"
    );
    assert!(!err.contains("a_ok.sql"), "{err}");
    let ok = common::driftline()
        .args(["check", "--rules", "shipped"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn run_evaluates_rules_as_inputs_change_and_reloads_edited_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let estate = tmp.path().join("estate");
    common::copy_dir(&common::estate(), &estate);
    let rules = tmp.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let ports = repo().join("detectors/rules/security_group_open_admin_ports.sql");
    std::fs::copy(&ports, rules.join("admin_ports.sql")).unwrap();
    let config = tmp.path().join("driftline.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n[watch]\nstate = [\"{}\"]\nobserved = [\"{}\"]\n\
             [drift]\ndriftignore = \"{}\"\nrules = \"rules\"\nrules_interval_secs = 1\n",
            estate.join("terraform").display(),
            estate.join("aws-config").display(),
            estate.join(".driftignore").display()
        ),
    )
    .unwrap();
    let findings = tmp.path().join("findings.jsonl");
    let svc = common::Service::start(
        &["--config", config.to_str().unwrap()],
        &findings,
        &tmp.path().join("run.log"),
    );
    let policy = || -> Vec<Value> {
        common::finding_events(&findings)
            .into_iter()
            .filter(|e| e["class"] == "policy")
            .collect()
    };
    common::wait_for(60, "the open SSH port's policy finding", || {
        !policy().is_empty()
    });
    let first = &policy()[0];
    assert_eq!(first["event"], "new");
    assert_eq!(first["resource_id"], "sg-0web1234567890abc");
    assert_eq!(first["source"], "rule:admin_ports");
    // The rule edited to look at RDP only: its finding resolves, no restart.
    let text = std::fs::read_to_string(&ports)
        .unwrap()
        .replace("(VALUES (22), (3389))", "(VALUES (3389))");
    std::fs::write(rules.join("admin_ports.sql"), text).unwrap();
    common::wait_for(30, "the finding to resolve after the edit", || {
        policy().iter().any(|e| e["event"] == "resolved")
    });
    assert_eq!(policy().len(), 2, "{:#?}", policy());
    let status = svc.stop();
    assert!(status.success(), "{status:?}");
}
