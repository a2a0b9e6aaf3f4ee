//! The live collectors against a real AWS API peer (moto on 127.0.0.1,
//! reached through the Rust AWS SDKs with an endpoint override): AWS Config
//! inventory and incremental passes, Terraform state in S3 (with a
//! workspace) and behind an HTTP backend, and AWS errors (change
//! notifications: `aws_notifications.rs`). Each test works in its own
//! region so they can run at once.

#[path = "common/aws.rs"]
mod aws;
mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use aws::*;
use common::*;
use serde_json::{Value, json};

#[test]
fn scan_reads_state_from_s3_and_the_live_config_api() {
    let Some(moto) = Moto::get() else { return };
    let region = "eu-west-3";
    moto.drop_buckets(&[], Some("dl-scan-"));
    moto.recorder(region);
    moto.bucket(region, "dl-scan-managed", &[("Owner", "team-a")]);
    moto.bucket(region, "dl-scan-deleted", &[]);
    moto.bucket(region, "dl-scan-unmanaged", &[]);
    moto.bucket(region, "dl-scan-ws", &[]);
    // The state lives in another region, which driftline does not inventory.
    moto.bucket("us-west-1", "dl-scan-state", &[]);
    moto.put_object(
        "us-west-1",
        "dl-scan-state",
        "prod/terraform.tfstate",
        &bucket_state(
            7,
            &[
                ("dl-scan-managed", region, &[("Owner", "team-a")]),
                ("dl-scan-deleted", region, &[]),
            ],
        ),
    );
    // A second workspace of the same backend, at env:/staging/KEY.
    moto.put_object(
        "us-west-1",
        "dl-scan-state",
        "env:/staging/prod/terraform.tfstate",
        &bucket_state(2, &[("dl-scan-ws", region, &[])]),
    );
    // Out of band: a tag changed and a bucket deleted.
    moto.tag(region, "dl-scan-managed", &[("Owner", "team-b")]);
    moto.delete_bucket(region, "dl-scan-deleted");

    let out = driftline()
        .envs(moto.env(region))
        .args([
            "scan",
            "--state",
            "s3://dl-scan-state/prod/terraform.tfstate",
        ])
        // ap-northeast-3 has no recorder: an error, and the other region goes on.
        .args(["--observed", &format!("aws-config:{region},ap-northeast-3")])
        .args(["--account", ACCOUNT, "--output", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "the recorder-less region is an error: {stderr}"
    );
    assert!(
        stderr.contains("ap-northeast-3: AWS Config has no configuration recorder here"),
        "{stderr}"
    );
    let f = findings_of(&out.stdout);
    let changed = f
        .iter()
        .find(|f| f["class"] == "changed")
        .unwrap_or_else(|| panic!("a changed finding: {stdout}"));
    assert!(
        changed["resource_key"]
            .as_str()
            .unwrap()
            .ends_with("/dl-scan-managed")
    );
    assert_eq!(changed["diffs"][0]["path"], "tags.Owner", "{changed}");
    assert_eq!(changed["diffs"][0]["declared"], "team-a");
    assert_eq!(changed["diffs"][0]["observed"], "team-b");
    assert!(has(&f, "missing", "dl-scan-deleted"), "{stdout}");
    assert!(has(&f, "unmanaged", "dl-scan-unmanaged"), "{stdout}");
    // Declared in the staging workspace: managed, so not unmanaged.
    assert!(!has(&f, "unmanaged", "dl-scan-ws"), "{stdout}");
    assert_eq!(f.len(), 3, "{stdout}");
    assert!(!stdout.contains(SECRET_KEY) && !stderr.contains(SECRET_KEY));

    // The lists read the same remote sources.
    let out = driftline()
        .envs(moto.env(region))
        .args([
            "state",
            "list",
            "s3://dl-scan-state/prod/terraform.tfstate",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let sources: Vec<&str> = rows.iter().filter_map(|r| r["source"].as_str()).collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(sources.contains(&"s3://dl-scan-state/env:/staging/prod/terraform.tfstate"));
}

#[test]
fn run_turns_out_of_band_changes_into_findings() {
    let Some(moto) = Moto::get() else { return };
    let region = "eu-central-1";
    moto.drop_buckets(&[], Some("dl-run-"));
    moto.recorder(region);
    moto.bucket(region, "dl-run-app", &[("Owner", "team-a")]);
    moto.bucket("us-west-1", "dl-run-state", &[]);
    let state = |serial, extra: bool| {
        let mut b: Vec<Bucket<'_>> = vec![("dl-run-app", region, &[("Owner", "team-a")])];
        if extra {
            b.push(("dl-run-extra", region, &[]));
        }
        bucket_state(serial, &b)
    };
    moto.put_object("us-west-1", "dl-run-state", "app.tfstate", &state(1, false));

    let tmp = tempfile::tempdir().unwrap();
    let cfg = run_config(tmp.path(), region, "s3://dl-run-state/app.tfstate", "");
    let findings = tmp.path().join("findings.jsonl");
    let svc = start_run(&moto, region, &cfg, tmp.path(), &[]);
    wait_for(30, "/readyz", || {
        http_get(&svc.listen, "/readyz").is_ok_and(|(c, _)| c == 200)
    });
    // In step: nothing to report.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        finding_events(&findings).is_empty(),
        "{:?}",
        finding_events(&findings)
    );

    // A bucket created out of band → unmanaged.
    moto.bucket(region, "dl-run-extra", &[]);
    wait_for(20, "unmanaged dl-run-extra", || {
        !events_for(
            &finding_events(&findings),
            "new",
            "unmanaged",
            "dl-run-extra",
        )
        .is_empty()
    });
    // A tag changed out of band → changed.
    moto.tag(region, "dl-run-app", &[("Owner", "team-b")]);
    wait_for(20, "changed dl-run-app", || {
        !events_for(&finding_events(&findings), "new", "changed", "dl-run-app").is_empty()
    });
    // The state adopts the new bucket (serial 2) → the unmanaged finding resolves.
    moto.put_object("us-west-1", "dl-run-state", "app.tfstate", &state(2, true));
    wait_for(20, "unmanaged dl-run-extra resolved", || {
        !events_for(
            &finding_events(&findings),
            "resolved",
            "unmanaged",
            "dl-run-extra",
        )
        .is_empty()
    });
    // A bucket deleted out of band → missing.
    moto.delete_bucket(region, "dl-run-app");
    wait_for(20, "missing dl-run-app", || {
        !events_for(&finding_events(&findings), "new", "missing", "dl-run-app").is_empty()
    });

    let (_, metrics) = http_get(&svc.listen, "/metrics").unwrap();
    assert!(
        metrics.contains("driftline_state_reads_total{backend=\"s3\",outcome=\"read\"} 2"),
        "two state versions read once each:\n{metrics}"
    );
    assert!(metrics.contains(&format!(
        "driftline_cloud_api_calls_total{{api=\"config\",operation=\"GetResourceConfigHistory\",outcome=\"ok\",region=\"{region}\"}}"
    )), "a changed resource is completed from its history:\n{metrics}");
    let log = std::fs::read_to_string(&svc.log).unwrap();
    assert!(svc.stop().success());
    assert!(!log.contains(SECRET_KEY));
    for e in walk(&tmp.path().join("data")) {
        let bytes = std::fs::read(&e).unwrap();
        assert!(
            !bytes
                .windows(SECRET_KEY.len())
                .any(|w| w == SECRET_KEY.as_bytes()),
            "{} holds the secret key",
            e.display()
        );
    }
}

/// The value of one sample in Prometheus text.
fn sample(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[test]
fn full_inventory_costs_n_over_100_batch_calls_plus_list_pages() {
    let Some(moto) = Moto::get() else { return };
    let region = "ap-south-1";
    let n = 250;
    moto.drop_buckets(&[], Some("dl-cost-"));
    moto.recorder(region);
    let calls: Vec<Value> = (0..n)
        .map(|i| {
            json!(["s3", region, "create_bucket", {
                "Bucket": format!("dl-cost-{i:04}"),
                "CreateBucketConfiguration": {"LocationConstraint": region}
            }])
        })
        .collect();
    moto.call(Value::Array(calls));
    let tmp = tempfile::tempdir().unwrap();
    let states = tmp.path().join("states");
    std::fs::create_dir(&states).unwrap();
    let cfg = run_config(tmp.path(), region, states.to_str().unwrap(), "");
    // One pass only: the incremental passes would add their own calls.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("poll_interval_secs = 1", "poll_interval_secs = 3600");
    std::fs::write(&cfg, text).unwrap();
    let findings = tmp.path().join("findings.jsonl");
    let svc = start_run(&moto, region, &cfg, tmp.path(), &[]);
    wait_for(60, "the first inventory's findings", || {
        finding_events(&findings).len() == n
    });
    let (_, m) = http_get(&svc.listen, "/metrics").unwrap();
    let calls = |op: &str| {
        sample(
            &m,
            &format!(
                "driftline_cloud_api_calls_total{{api=\"config\",operation=\"{op}\",outcome=\"ok\",region=\"{region}\"}}"
            ),
        )
        .unwrap_or(0.0)
    };
    let pages = n.div_ceil(100) as f64;
    assert_eq!(calls("ListDiscoveredResources"), pages, "{m}");
    assert_eq!(calls("BatchGetResourceConfig"), pages, "{m}");
    assert_eq!(calls("DescribeConfigurationRecorderStatus"), 1.0, "{m}");
    // Which types the recorder records (its recording group), once a pass.
    assert_eq!(calls("DescribeConfigurationRecorders"), 1.0, "{m}");
    assert_eq!(calls("GetResourceConfigHistory"), 0.0, "{m}");
    eprintln!(
        "full inventory of {n} resources: {} list pages + {} batch calls",
        calls("ListDiscoveredResources"),
        calls("BatchGetResourceConfig")
    );
    assert!(svc.stop().success());
}

fn aws_error(code: &str, message: &str) -> String {
    let body = json!({"__type": code, "message": message}).to_string();
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {code}\r\nx-amzn-RequestId: 0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn aws_errors_name_the_call_region_and_reason() {
    // Errors need no moto: a peer that answers as AWS does when it refuses.
    let tmp = tempfile::tempdir().unwrap();
    let states = tmp.path().join("states");
    std::fs::create_dir(&states).unwrap();
    let cfg = tmp.path().join("driftline.toml");
    std::fs::write(
        &cfg,
        "[watch]\nstate = [\"states\"]\nobserved = [\"aws-config\"]\n[aws_config]\nmax_attempts = 3\nrequests_per_second = 100\n",
    )
    .unwrap();
    let scan = |peer: &Peer| {
        driftline()
            .env("AWS_ENDPOINT_URL", format!("http://{}", peer.addr))
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_REGION")
            .args(["scan", "--config", cfg.to_str().unwrap()])
            .args(["--state", states.to_str().unwrap()])
            .args(["--observed", "aws-config:eu-west-1,eu-north-1"])
            .output()
            .unwrap()
    };

    let denied = peer(|_| {
        aws_error(
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: config:DescribeConfigurationRecorderStatus",
        )
    });
    let out = scan(&denied);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // Both regions are tried and reported, each by name.
    for region in ["eu-west-1", "eu-north-1"] {
        assert!(
            stderr.contains(&format!(
                "DescribeConfigurationRecorderStatus in {region}: access denied (AccessDeniedException)"
            )),
            "{stderr}"
        );
    }
    assert!(!stderr.contains(SECRET_KEY));
    // Access denied is not retried.
    assert_eq!(denied.hits.load(Ordering::SeqCst), 2);
    // The SDK signed the calls with the key id; the secret never travels.
    let heads = denied.requests.lock().unwrap().join("\n");
    assert!(heads.contains(ACCESS_KEY) && !heads.contains(SECRET_KEY));

    let throttled = peer(|_| aws_error("ThrottlingException", "Rate exceeded"));
    let out = scan(&throttled);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("DescribeConfigurationRecorderStatus in eu-west-1: still throttled after the retries (ThrottlingException): Rate exceeded"),
        "{stderr}"
    );
    // max_attempts = 3 per region, with backoff between them.
    assert_eq!(throttled.hits.load(Ordering::SeqCst), 6);
}

#[test]
fn http_backend_state_with_basic_auth() {
    let state = bucket_state(4, &[("dl-http-bucket", "eu-west-1", &[])]);
    let server = peer(move |head| {
        // driftline:tf-http-pw-7731
        if head.contains("Authorization: Basic ZHJpZnRsaW5lOnRmLWh0dHAtcHctNzczMQ==")
            || head.contains("authorization: Basic ZHJpZnRsaW5lOnRmLWh0dHAtcHctNzczMQ==")
        {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{state}",
                state.len()
            )
        } else {
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
        }
    });
    let url = format!("http://{}/state/prod", server.addr);
    let out = driftline()
        .env("TF_HTTP_USERNAME", "driftline")
        .env("TF_HTTP_PASSWORD", "tf-http-pw-7731")
        .args(["state", "list", &url, "--output", "json"])
        .output()
        .unwrap();
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["address"], "aws_s3_bucket.dl_http_bucket");
    assert_eq!(rows[0]["serial"], 4);

    let out = driftline()
        .env_remove("TF_HTTP_USERNAME")
        .args(["state", "list", &url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains(&format!(
            "{url}: GET answered 401 Unauthorized (check TF_HTTP_USERNAME / TF_HTTP_PASSWORD)"
        )),
        "{stderr}"
    );
    // Credentials in the URL are refused without being echoed.
    let out = driftline()
        .args([
            "state",
            "list",
            &format!("http://u:tf-http-pw-7731@{}/s", server.addr),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("TF_HTTP_PASSWORD") && !stderr.contains("tf-http-pw-7731"),
        "{stderr}"
    );
}

#[test]
fn aggregator_mode_reads_every_region_through_one_aggregator() {
    let Some(moto) = Moto::get() else { return };
    moto.drop_buckets(&[], Some("dl-agg-"));
    moto.call(
        json!([["config", "us-east-1", "put_configuration_aggregator", {
            "ConfigurationAggregatorName": "dl-org",
            "AccountAggregationSources": [{"AccountIds": [ACCOUNT], "AllAwsRegions": true}]
        }]]),
    );
    moto.bucket("ca-central-1", "dl-agg-canada", &[]);
    moto.bucket("eu-north-1", "dl-agg-stockholm", &[]);
    let out = driftline()
        .envs(moto.env("us-east-1"))
        .args([
            "observed",
            "list",
            "aws-config-aggregator:dl-org",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let region_of = |id: &str| {
        rows.iter()
            .find(|r| r["resource_id"] == id)
            .map(|r| r["region"].as_str().unwrap().to_string())
    };
    assert_eq!(region_of("dl-agg-canada").as_deref(), Some("ca-central-1"));
    assert_eq!(region_of("dl-agg-stockholm").as_deref(), Some("eu-north-1"));
    assert!(
        rows.iter()
            .all(|r| r["source"] == "aws-config-aggregator://dl-org")
    );

    // An aggregator that does not exist: the call, the scope and AWS's reason.
    let out = driftline()
        .envs(moto.env("us-east-1"))
        .args(["observed", "list", "aws-config-aggregator:dl-nope"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("ListAggregateDiscoveredResources in aggregator:dl-nope: NoSuchConfigurationAggregatorException"),
        "{stderr}"
    );
}

#[test]
fn check_validates_the_config_and_names_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("driftline.toml");
    let check = |text: &str| {
        std::fs::write(&cfg, text).unwrap();
        let out = driftline()
            .args(["check", "--config", cfg.to_str().unwrap()])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let good = "[watch]\nstate = [\"s3://acme-tfstate/prod.tfstate\"]\nobserved = [\"aws-config\"]\n\
                [aws_config]\nregions = [\"eu-west-1\"]\n";
    let (code, text) = check(good);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(": ok"), "{text}");
    for (bad, key) in [
        (
            "[watch]\nobserved = [\"aws-config\"]\n[aws_config]\nregions = [\"eu-west-1\", \"Frankfurt\"]\n",
            "aws_config.regions[1]: \"Frankfurt\" is not an AWS region name",
        ),
        (
            "[watch]\nobserved = [\"aws-config\"]\n[aws_config]\nregionz = [\"eu-west-1\"]\n",
            "unknown field `regionz`",
        ),
        (
            "[watch]\nobserved = [\"aws-config\"]\n[aws_config]\nrequests_per_second = 0\n",
            "aws_config.requests_per_second: must be a positive number",
        ),
        (
            "[watch]\nstate = [\"s3://only-a-bucket\"]\n",
            "watch.state[0]: s3://only-a-bucket: an S3 state is s3://BUCKET/KEY",
        ),
    ] {
        let (code, text) = check(bad);
        assert_eq!(code, Some(2), "{bad}: {text}");
        assert!(text.contains(key), "{bad}: {text}");
    }
}
