//! The live collectors against a real AWS API peer (moto on 127.0.0.1,
//! reached through the Rust AWS SDKs with an endpoint override): AWS Config
//! inventory and incremental passes, Terraform state in S3 (with a
//! workspace) and behind an HTTP backend, change notifications, and AWS
//! errors. Each test works in its own region so they can run at once.

#[path = "common/aws.rs"]
mod aws;
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// A tiny HTTP server: answers every request with `respond`, records them.
struct Peer {
    addr: String,
    requests: Arc<Mutex<Vec<String>>>,
    hits: Arc<AtomicUsize>,
}

fn peer(respond: impl Fn(&str) -> String + Send + 'static) -> Peer {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let hits = Arc::new(AtomicUsize::new(0));
    let (r, h) = (requests.clone(), hits.clone());
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            let mut len = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            h.fetch_add(1, Ordering::SeqCst);
            let reply = respond(&head);
            r.lock().unwrap().push(head);
            let mut s = s;
            let _ = s.write_all(reply.as_bytes());
        }
    });
    Peer {
        addr,
        requests,
        hits,
    }
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

fn post(addr: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain; charset=UTF-8\r\nx-amz-sns-message-type: Notification\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        code,
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}

fn sns(kind: &str, message: &str, extra: Value) -> String {
    let mut v = json!({
        "Type": kind,
        "MessageId": "5b3e0a5e-0000-4000-8000-000000000001",
        "TopicArn": "arn:aws:sns:sa-east-1:123456789012:config-changes",
        "Subject": "[AWS Config:sa-east-1] AWS::S3::Bucket dl-note-big Updated in Account 123456789012",
        "Message": message,
        "Timestamp": "2026-11-21T10:00:01.000Z",
        "SignatureVersion": "1",
        "Signature": "c2lnbmF0dXJl",
        "SigningCertURL": "https://sns.sa-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
    });
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    v.to_string()
}

#[test]
fn notifications_in_every_envelope_reach_the_bus() {
    let Some(moto) = Moto::get() else { return };
    let region = "sa-east-1";
    moto.drop_buckets(&[], Some("dl-note-"));
    moto.recorder(region);
    moto.bucket(region, "dl-note-big", &[("Owner", "payments")]);
    let tmp = tempfile::tempdir().unwrap();
    let states = tmp.path().join("states");
    std::fs::create_dir(&states).unwrap();
    let cfg = run_config(
        tmp.path(),
        region,
        states.to_str().unwrap(),
        "[aws_config.notifications]\nenabled = true\ntoken_env = \"DL_NOTIFY_TOKEN\"\nsubscribe_url_hosts = [\"127.0.0.1\"]\ntopic_arns = [\"arn:aws:sns:*:123456789012:*\"]\n",
    );
    // Incremental passes would find the bucket too: only the push may.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("poll_interval_secs = 1", "poll_interval_secs = 3600");
    std::fs::write(&cfg, text).unwrap();
    let findings = tmp.path().join("findings.jsonl");
    // The bucket is created after the first inventory (below), so only the
    // notification can bring it.
    moto.delete_bucket(region, "dl-note-big");
    let svc = start_run(
        &moto,
        region,
        &cfg,
        tmp.path(),
        &[("DL_NOTIFY_TOKEN", "tok-4471".into())],
    );
    wait_for(30, "/readyz", || {
        http_get(&svc.listen, "/readyz").is_ok_and(|(c, _)| c == 200)
    });
    moto.bucket(region, "dl-note-big", &[("Owner", "payments")]);
    let path = "/aws-config/notifications?token=tok-4471";

    // No token, no entry.
    assert_eq!(post(&svc.listen, "/aws-config/notifications", "{}").0, 401);

    // SNS's handshake: driftline fetches the SubscribeURL.
    let sns_peer =
        peer(|_| "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string());
    let confirm = sns(
        "SubscriptionConfirmation",
        "You have chosen to subscribe to the topic…",
        json!({"Token": "2336412f37", "SubscribeURL": format!("http://{}/?Action=ConfirmSubscription&Token=2336412f37", sns_peer.addr)}),
    );
    let (code, body) = post(&svc.listen, path, &confirm);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("confirmed"), "{body}");
    assert!(
        sns_peer.requests.lock().unwrap()[0]
            .starts_with("GET /?Action=ConfirmSubscription&Token=2336412f37")
    );
    // A SubscribeURL elsewhere is refused (no requests to arbitrary hosts).
    let evil = sns(
        "SubscriptionConfirmation",
        "x",
        json!({"SubscribeURL": "https://attacker.example/confirm"}),
    );
    assert_eq!(post(&svc.listen, path, &evil).0, 403);

    // Oversized: only a summary arrives; BatchGetResourceConfig completes it.
    let summary = json!({
        "configurationItemSummary": {
            "changeType": "UPDATE", "configurationItemVersion": "1.3",
            "configurationItemCaptureTime": "2026-11-21T10:00:00.000Z", "configurationStateId": 1,
            "awsAccountId": ACCOUNT, "configurationItemStatus": "OK", "resourceType": "AWS::S3::Bucket",
            "resourceId": "dl-note-big", "resourceName": "dl-note-big", "ARN": "arn:aws:s3:::dl-note-big",
            "awsRegion": region, "availabilityZone": "Regional", "configurationStateMd5Hash": ""
        },
        "s3DeliverySummary": {"s3BucketLocation": "config-bucket/AWSLogs/123456789012/Config/sa-east-1/big.json.gz"},
        "notificationCreationTime": "2026-11-21T10:00:01.000Z",
        "messageType": "OversizedConfigurationItemChangeNotification",
        "recordVersion": "1.0"
    });
    let started = Instant::now();
    let (code, body) = post(
        &svc.listen,
        path,
        &sns("Notification", &summary.to_string(), json!({})),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body.trim(), "published 1");
    let mut latency = None;
    wait_for(5, "unmanaged dl-note-big", || {
        let ev = finding_events(&findings);
        let hit = events_for(&ev, "new", "unmanaged", "dl-note-big");
        if let Some(e) = hit.first() {
            latency.get_or_insert(started.elapsed());
            // The tags come from the completed item: a summary has none.
            assert_eq!(e["tags"]["Owner"], "payments", "{e}");
            true
        } else {
            false
        }
    });
    let latency = latency.unwrap();
    eprintln!("oversized notification → finding event: {latency:?}");
    assert!(latency < Duration::from_secs(1), "{latency:?}");

    // Every envelope shape in the recorded real-world items is accepted.
    let dir = fixtures().join("awsconfig");
    let mut published = 0;
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        n += 1;
        let (code, body) = post(&svc.listen, path, &std::fs::read_to_string(&p).unwrap());
        assert_eq!(code, 200, "{}: {body}", p.display());
        if let Some(k) = body.trim().strip_prefix("published ") {
            published += k.parse::<usize>().unwrap();
        } else {
            assert!(body.starts_with("ignored: "), "{}: {body}", p.display());
        }
    }
    eprintln!("{n} recorded files posted, {published} items published");
    assert!(n > 100 && published > 100, "{n} files, {published} items");

    // Garbage is a 400 (SNS stops retrying) and a dead letter, not a crash.
    let (code, body) = post(
        &svc.listen,
        path,
        "{\"Type\": \"Notification\", \"TopicArn\": \"arn:aws:sns:sa-east-1:123456789012:config-changes\", \"Message\": \"{not json",
    );
    assert_eq!(code, 400, "{body}");
    // A topic driftline was not told about is refused.
    let other = sns(
        "Notification",
        "{}",
        json!({"TopicArn": "arn:aws:sns:sa-east-1:999999999999:other"}),
    );
    assert_eq!(post(&svc.listen, path, &other).0, 403);
    assert!(svc.stop().success());
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
