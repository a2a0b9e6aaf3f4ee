//! The command line as a user runs it: exit codes, outputs, error paths,
//! and that a secret never reaches any output.

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

fn demo_json(extra: &[&str]) -> (i32, Value, String) {
    let estate = common::estate();
    let mut cmd = common::driftline();
    cmd.args(["scan", "--state"])
        .arg(estate.join("terraform"))
        .arg("--observed")
        .arg(estate.join("aws-config"))
        .args(["--output", "json"])
        .args(extra);
    let out = cmd.output().unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn findings(v: &Value) -> BTreeSet<(String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let who = f["address"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| f["resource_id"].as_str().unwrap().to_string());
            (f["class"].as_str().unwrap().to_string(), who)
        })
        .collect()
}

/// The finding whose `field` equals `value`.
fn finding<'a>(v: &'a Value, field: &str, value: &str) -> &'a Value {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f[field] == value)
        .unwrap_or_else(|| panic!("no finding with {field} = {value}"))
}

#[test]
fn demo_estate_finds_each_class_and_only_the_planted_drift() {
    let driftignore = common::estate().join(".driftignore");
    let (code, v, stderr) = demo_json(&["--driftignore", driftignore.to_str().unwrap()]);
    assert_eq!(code, 1, "drift → exit 1; stderr: {stderr}");
    let expected: BTreeSet<(String, String)> = [
        ("changed", "aws_instance.web[1]"),
        ("changed", "aws_security_group.web"),
        ("changed", "aws_s3_bucket.assets"),
        ("missing", "aws_ebs_volume.data[1]"),
        ("missing", "aws_sqs_queue.orders_dlq"),
        ("unmanaged", "acme-prod-exports-tmp"),
        ("unmanaged", "AIDA2EXAMPLEUSER00002"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(findings(&v), expected);
    let sg = finding(&v, "address", "aws_security_group.web");
    assert_eq!(sg["diffs"][0]["path"], "ingress");
    assert!(
        sg["diffs"][0]["observed"]
            .to_string()
            .contains("tcp:22-22:cidr:0.0.0.0/0")
    );
    assert_eq!(sg["remediation"][0]["action"], "revert");
    assert_eq!(
        sg["remediation"][0]["command"],
        "terraform apply -target='aws_security_group.web'"
    );
    let web1 = finding(&v, "address", "aws_instance.web[1]");
    let paths: BTreeSet<&str> = web1["diffs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, BTreeSet::from(["instance_type", "tags.team"]));
    let user = finding(&v, "resource_id", "AIDA2EXAMPLEUSER00002");
    assert_eq!(user["remediation"][0]["action"], "adopt");
    assert!(
        user["remediation"][0]["command"]
            .as_str()
            .unwrap()
            .contains("to = aws_iam_user.alice_tmp")
    );
    for f in v["findings"].as_array().unwrap() {
        assert!(
            f["resource_key"]
                .as_str()
                .unwrap()
                .starts_with("aws/123456789012/"),
            "{f}"
        );
        assert_eq!(f["fingerprint"].as_str().unwrap().len(), 32);
    }
    // Coverage: 3 of 5 buckets managed (one unmanaged, one ignored still counts as unmanaged).
    let s3 = v["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource_type"] == "AWS::S3::Bucket")
        .unwrap();
    assert_eq!(
        (s3["managed"].as_u64(), s3["unmanaged"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(
        v["summary"]["not_comparable"]["aws_iam_role_policy_attachment"],
        1
    );
}

#[test]
fn driftignore_resource_and_attribute_rules() {
    let (_, without, _) = demo_json(&[]);
    assert!(findings(&without).contains(&("unmanaged".into(), "acme-scratch-alice".into())));
    let dir = tempfile::tempdir().unwrap();
    let ig = dir.path().join(".driftignore");
    std::fs::write(&ig, "aws_s3_bucket.acme-scratch-*\naws_instance.i-0web1a1b2c3d4e5f67.tags.team\naws_iam_user.alice\\.tmp\n").unwrap();
    let (_, with, _) = demo_json(&["--driftignore", ig.to_str().unwrap()]);
    let f = findings(&with);
    assert!(!f.contains(&("unmanaged".into(), "acme-scratch-alice".into())));
    assert!(
        !f.contains(&("unmanaged".into(), "AIDA2EXAMPLEUSER00002".into())),
        "escaped dot matches alice.tmp"
    );
    let web1 = finding(&with, "address", "aws_instance.web[1]");
    assert_eq!(
        web1["diffs"].as_array().unwrap().len(),
        1,
        "tags.team ignored, instance_type kept"
    );
    std::fs::write(&ig, "*\n").unwrap();
    let (code, all, _) = demo_json(&["--driftignore", ig.to_str().unwrap()]);
    assert_eq!(code, 0, "no drift → exit 0");
    assert!(all["findings"].as_array().unwrap().is_empty());
}

#[test]
fn an_unreadable_file_is_named_and_the_scan_goes_on() {
    let estate = common::estate();
    let encrypted = common::fixtures()
        .join("tfstate/extras/x05_AlexsLemonade__refinebio.git-crypt.tfstate.bin");
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        "{\n  \"configurationItems\": [\n    {\"resourceType\": \"AWS::S3::Bucket\",,}\n  ]\n}\n",
    )
    .unwrap();
    let out = common::driftline()
        .args(["scan", "--output", "json", "--state"])
        .arg(estate.join("terraform"))
        .arg(&encrypted)
        .arg("/nonexistent/terraform.tfstate")
        .arg("--observed")
        .arg(estate.join("aws-config"))
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&encrypted.display().to_string()) && stderr.contains("encrypted"),
        "{stderr}"
    );
    assert!(
        stderr.contains("/nonexistent/terraform.tfstate: no such file"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}: invalid JSON at line 3", broken.display())),
        "{stderr}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        findings(&v).contains(&("changed".into(), "aws_security_group.web".into())),
        "the rest still scanned"
    );
    // What the broken file held is unknown: a resource no item was read for
    // is not called missing (one recorded as deleted still is), and the
    // file is named as a scope that could not be read.
    let f = findings(&v);
    assert!(
        !f.contains(&("missing".into(), "aws_sqs_queue.orders_dlq".into())),
        "{v:#}"
    );
    assert!(
        f.contains(&("missing".into(), "aws_ebs_volume.data[1]".into())),
        "{v:#}"
    );
    let unobserved = v["unobserved"].as_array().unwrap();
    assert!(
        unobserved
            .iter()
            .any(|u| u["source"] == broken.display().to_string() && u["affected"] == 1),
        "{v:#}"
    );
    // Neither is a state that could not be read: nothing is called unmanaged.
    assert!(!f.iter().any(|(class, _)| class == "unmanaged"), "{v:#}");
    assert!(
        unobserved
            .iter()
            .any(|u| u["side"] == "declared" && u["source"] == "/nonexistent/terraform.tfstate"),
        "{v:#}"
    );
    assert_eq!(v["errors"].as_array().unwrap().len(), 3);
}

#[test]
fn sarif_is_2_1_0_with_one_result_per_finding() {
    let estate = common::estate();
    let out = common::driftline()
        .args(["scan", "--output", "sarif", "--state"])
        .arg(estate.join("terraform"))
        .arg("--observed")
        .arg(estate.join("aws-config"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "driftline");
    let (_, j, _) = demo_json(&[]);
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), j["findings"].as_array().unwrap().len());
    let rule_ids: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for r in results {
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rule_ids[idx], r["ruleId"].as_str().unwrap());
        assert!(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].is_string());
        assert!(["error", "warning"].contains(&r["level"].as_str().unwrap()));
    }
}

#[test]
fn a_seeded_secret_never_appears_in_any_output() {
    // The demo state holds the RDS password and a random_password result
    // (both marked sensitive) and nothing else knows them.
    let secret = "correct-horse-battery-staple";
    let estate = common::estate();
    let raw = std::fs::read_to_string(estate.join("terraform/terraform.tfstate")).unwrap();
    assert!(raw.contains(secret), "the fixture really holds the secret");
    let mut runs: Vec<Vec<String>> = Vec::new();
    for output in ["table", "json", "sarif"] {
        runs.push(vec![
            "scan".into(),
            "--output".into(),
            output.into(),
            "--state".into(),
            estate.join("terraform").display().to_string(),
            "--observed".into(),
            estate.join("aws-config").display().to_string(),
        ]);
    }
    for output in ["table", "json"] {
        runs.push(vec![
            "state".into(),
            "list".into(),
            "--output".into(),
            output.into(),
            estate.join("terraform").display().to_string(),
        ]);
    }
    runs.push(vec!["demo".into(), "--output".into(), "json".into()]);
    for args in runs {
        let out = common::driftline()
            .args(&args)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(secret), "secret leaked by {args:?}");
        assert!(
            !all.contains("correct-horse"),
            "part of the secret leaked by {args:?}"
        );
    }
    // The hash stands in for it, and names the path.
    let out = common::driftline()
        .args(["state", "list", "--output", "json"])
        .arg(estate.join("terraform"))
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let db = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "aws_db_instance.orders")
        .unwrap();
    assert_eq!(db["sensitive_paths"], serde_json::json!(["password"]));
}

/// Runs a `list` command with JSON output; it must exit 0.
fn list_ok(args: &[std::path::PathBuf]) -> (Value, String) {
    let out = common::driftline()
        .args(args)
        .args(["--output", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

#[test]
fn state_and_observed_lists_name_every_instance() {
    let f = common::fixtures();
    let (v, _) = list_ok(&[
        "state".into(),
        "list".into(),
        f.join("tfstate/017_1ucra__3tierSIEMterraform.tfstate.json"),
        f.join("tfstate/020_IvanKuznecov__aws_spark_cluster.tfstate.json"),
    ]);
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 160 + 80);
    for key in [
        "address",
        "mode",
        "type",
        "provider",
        "id",
        "index_key",
        "status",
        "deposed",
    ] {
        assert!(rows.iter().all(|r| r.get(key).is_some()), "missing {key}");
    }
    assert_eq!(rows.iter().filter(|r| r["deposed"] == true).count(), 33);
    assert!(
        rows.iter()
            .any(|r| r["address"].as_str().unwrap().starts_with("module.")
                && r["address"].as_str().unwrap().contains("[\""))
    );
    assert!(
        rows.iter()
            .any(|r| r["mode"] == "data" && r["address"].as_str().unwrap().contains("data."))
    );

    let (v, stderr) = list_ok(&["observed".into(), "list".into(), f.join("awsconfig")]);
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("skipped: a resource property schema"))
            .count(),
        14
    );
    for row in v.as_array().unwrap() {
        for key in [
            "resource_key",
            "resource_type",
            "resource_id",
            "arn",
            "account",
            "region",
            "status",
            "captured_at",
        ] {
            assert!(row.get(key).is_some(), "missing {key} in {row}");
        }
    }
}

#[test]
fn demo_prints_the_scan_report_and_exits_zero() {
    let out = common::driftline().arg("demo").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "changed    aws_security_group.web",
        "missing    aws_sqs_queue.orders_dlq",
        "unmanaged",
        "IaC coverage",
        "terraform apply -target=",
    ] {
        assert!(
            text.contains(needle),
            "demo output lacks {needle:?}:\n{text}"
        );
    }
    // The SLO story: exactly one page, after the security group's change,
    // carrying that change first among its probable causes.
    let slo = &text[text.find("SLOs (").expect("demo has an SLO part")..];
    assert_eq!(
        slo.matches("PAGE CheckoutHighErrorRate").count(),
        1,
        "{slo}"
    );
    let cause = slo.find("probable cause").expect(slo);
    let first = slo[cause..].lines().nth(1).unwrap();
    assert!(
        first.contains("changed: aws_security_group.web (sg-"),
        "{first}\n{slo}"
    );
    assert!(slo[cause..].contains("ingress: declared"), "{slo}");
    let (_, scan, _) = demo_json(&[
        "--driftignore",
        common::estate().join(".driftignore").to_str().unwrap(),
    ]);
    let out = common::driftline()
        .args(["demo", "--output", "json"])
        .output()
        .unwrap();
    let demo: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        findings(&demo),
        findings(&scan),
        "demo reports what scan reports"
    );
}

/// A scan that only compares reads each document cut to the keys the
/// comparison reads (`KeptKeys`); one that records into a store reads them
/// whole. Over the test estate and every real-world fixture, the two find
/// the same drift and count the same resources.
#[test]
fn a_comparing_scan_finds_what_a_scan_reading_whole_documents_finds() {
    let estate = common::estate();
    let fixtures = common::fixtures();
    let scan = |extra: &[&std::ffi::OsStr]| {
        let out = common::driftline()
            .args(["scan", "--output", "json", "--state"])
            .arg(estate.join("terraform"))
            .arg(fixtures.join("tfstate"))
            .arg("--observed")
            .arg(estate.join("aws-config"))
            .arg(fixtures.join("awsconfig"))
            .args(extra)
            .env("DRIFTLINE_HASH_SALT", "cut")
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (v["findings"].clone(), v["summary"].clone())
    };
    let (cut, cut_summary) = scan(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (whole, whole_summary) = scan(&["--data-dir".as_ref(), dir.path().as_os_str()]);
    assert!(
        cut.as_array().is_some_and(|f| f.len() > 10),
        "{cut_summary}"
    );
    assert_eq!(cut, whole);
    assert_eq!(cut_summary, whole_summary);
}
