//! AWS Config change notifications pushed to a running driftline (SNS
//! envelopes, EventBridge events, oversized-item notices completed from the
//! API), against a real AWS API peer (moto on 127.0.0.1).

#[path = "common/aws.rs"]
mod aws;
mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use aws::*;
use common::*;
use serde_json::{Value, json};

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
