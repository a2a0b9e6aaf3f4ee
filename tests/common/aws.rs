//! The AWS API peer (moto, started by `deploy/local/test-stack.sh` through
//! tests/support/moto_server.py) and a helper that drives it with boto3.
// Shared by several test binaries, each using part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// Fake credentials; the secret must never show up in driftline's output.
pub const ACCESS_KEY: &str = "AKIADRIFTLINETEST";
pub const SECRET_KEY: &str = "dl-secret-9f3b2c7e-never-logged";
pub const ACCOUNT: &str = "123456789012";

pub struct Moto {
    pub endpoint: String,
    python: String,
    /// The file the peer reads its refusals from (see moto_server.py).
    faults: Option<String>,
}

/// Tests run as threads of one process and share the faults file.
static FAULTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Moto {
    /// The running peer, or `None` outside CI when none was started.
    pub fn get() -> Option<Moto> {
        match (
            std::env::var("DRIFTLINE_TEST_MOTO"),
            std::env::var("DRIFTLINE_TEST_PYTHON"),
        ) {
            (Ok(endpoint), Ok(python)) => Some(Moto {
                endpoint,
                python,
                faults: std::env::var("DRIFTLINE_TEST_MOTO_FAULTS").ok(),
            }),
            _ => {
                crate::common::no_peer(
                    "no AWS API peer (DRIFTLINE_TEST_MOTO / DRIFTLINE_TEST_PYTHON are not set)",
                    "./scripts/test.sh",
                );
                None
            }
        }
    }

    /// The standard AWS environment pointing at the peer.
    pub fn env(&self, region: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", region.into()),
            // Never read the developer's own ~/.aws.
            ("AWS_CONFIG_FILE", "/nonexistent".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// Makes calls `[[service, region, operation, {params}], …]` with boto3.
    pub fn call(&self, calls: Value) -> Vec<Value> {
        use std::io::Write;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/aws.py");
        let mut child = std::process::Command::new(&self.python)
            .arg(script)
            .envs(self.env("us-east-1"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python starts");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(calls.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "AWS calls failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Removes buckets (and their objects) an earlier run left behind.
    pub fn drop_buckets(&self, names: &[&str], prefix: Option<&str>) {
        self.call(
            json!([["driftline", "us-east-1", "drop_buckets", {"names": names, "prefix": prefix}]]),
        );
    }

    /// A Config recorder in `region`, so driftline reads it.
    pub fn recorder(&self, region: &str) {
        self.recorder_with(
            region,
            json!({"name": "default", "roleARN": format!("arn:aws:iam::{ACCOUNT}:role/config")}),
        );
    }

    /// Puts `recorder` in `region` and starts it (a recorder that is not
    /// recording leaves AWS Config's data out of date, and driftline says so).
    fn recorder_with(&self, region: &str, recorder: Value) {
        self.call(json!([
            ["config", region, "put_configuration_recorder", {"ConfigurationRecorder": recorder}],
            ["config", region, "put_delivery_channel", {
                "DeliveryChannel": {"name": "default", "s3BucketName": "dl-config-delivery"}
            }],
            ["config", region, "start_configuration_recorder", {"ConfigurationRecorderName": "default"}]
        ]));
    }

    /// From now on every AWS Config call `operation` (`*`: any) in
    /// `region` is refused with `code`, as AWS refuses a role that lost a
    /// permission.
    pub fn refuse(&self, region: &str, operation: &str, code: &str, message: &str) {
        self.edit_faults(|faults| {
            faults.push(
                json!({"region": region, "operation": operation, "code": code, "message": message}),
            );
        });
    }

    /// Ends every refusal in `region`.
    pub fn allow(&self, region: &str) {
        self.edit_faults(|faults| faults.retain(|f| f["region"] != region));
    }

    fn edit_faults(&self, edit: impl FnOnce(&mut Vec<Value>)) {
        let path = self
            .faults
            .as_deref()
            .expect("DRIFTLINE_TEST_MOTO_FAULTS is set by test-stack.sh start");
        let _one_at_a_time = FAULTS.lock().unwrap_or_else(|e| e.into_inner());
        let mut faults: Vec<Value> = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        edit(&mut faults);
        // Whole or not at all: the peer reads it on every call.
        let tmp = format!("{path}.{}", std::process::id());
        std::fs::write(&tmp, serde_json::to_vec(&faults).unwrap()).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    /// A recorder in `region` that records every supported type but these.
    pub fn recorder_excluding(&self, region: &str, types: &[&str]) {
        self.recorder_with(
            region,
            json!({
                "name": "default",
                "roleARN": format!("arn:aws:iam::{ACCOUNT}:role/config"),
                "recordingGroup": {
                    "allSupported": false,
                    "includeGlobalResourceTypes": false,
                    "exclusionByResourceTypes": {"resourceTypes": types},
                    "recordingStrategy": {"useOnly": "EXCLUSION_BY_RESOURCE_TYPES"}
                }
            }),
        );
    }

    pub fn bucket(&self, region: &str, name: &str, tags: &[(&str, &str)]) {
        let mut calls = vec![json!(["s3", region, "create_bucket", {
            "Bucket": name, "CreateBucketConfiguration": {"LocationConstraint": region}
        }])];
        if !tags.is_empty() {
            calls.push(tag_call(region, name, tags));
        }
        self.call(Value::Array(calls));
    }

    pub fn tag(&self, region: &str, name: &str, tags: &[(&str, &str)]) {
        self.call(json!([tag_call(region, name, tags)]));
    }

    pub fn delete_bucket(&self, region: &str, name: &str) {
        self.call(json!([["s3", region, "delete_bucket", {"Bucket": name}]]));
    }

    pub fn put_object(&self, region: &str, bucket: &str, key: &str, body: &str) {
        self.call(
            json!([["s3", region, "put_object", {"Bucket": bucket, "Key": key, "Body": body}]]),
        );
    }
}

fn tag_call(region: &str, name: &str, tags: &[(&str, &str)]) -> Value {
    let set: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    json!(["s3", region, "put_bucket_tagging", {"Bucket": name, "Tagging": {"TagSet": set}}])
}

/// A declared S3 bucket: name, region, tags.
pub type Bucket<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// A Terraform v4 state declaring these S3 buckets.
pub fn bucket_state(serial: u64, buckets: &[Bucket<'_>]) -> String {
    let resources: Vec<Value> = buckets
        .iter()
        .map(|(name, region, tags)| {
            let tags: serde_json::Map<String, Value> = tags
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            json!({
                "mode": "managed", "type": "aws_s3_bucket", "name": name.replace('-', "_"),
                "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
                "instances": [{"schema_version": 0, "attributes": {
                    "id": name, "bucket": name, "arn": format!("arn:aws:s3:::{name}"),
                    "region": region, "tags": tags, "tags_all": tags
                }, "sensitive_attributes": []}]
            })
        })
        .collect();
    json!({"version": 4, "terraform_version": "1.9.8", "serial": serial,
           "lineage": "3f1c0c9e-driftline-test", "outputs": {}, "resources": resources})
    .to_string()
}

pub fn findings_of(stdout: &[u8]) -> Vec<Value> {
    let v: Value = serde_json::from_slice(stdout).expect("scan prints JSON");
    v["findings"].as_array().cloned().unwrap_or_default()
}

pub fn has(findings: &[Value], class: &str, resource_id: &str) -> bool {
    findings.iter().any(|f| {
        f["class"] == class
            && f["resource_key"]
                .as_str()
                .is_some_and(|k| k.ends_with(&format!("/{resource_id}")))
    })
}

/// `driftline run --config CFG` with the AWS environment (plus `extra`).
pub fn start_run(
    moto: &Moto,
    region: &str,
    cfg: &std::path::Path,
    dir: &std::path::Path,
    extra: &[(&'static str, String)],
) -> crate::common::Service {
    let mut env = moto.env(region);
    env.extend(extra.iter().cloned());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    crate::common::Service::start_env(
        &["--config", cfg.to_str().unwrap()],
        &dir.join("findings.jsonl"),
        &dir.join("run.log"),
        &env,
    )
}

/// `driftline run` with only a config file: state in S3, AWS Config polled.
pub fn run_config(
    dir: &std::path::Path,
    region: &str,
    state: &str,
    extra: &str,
) -> std::path::PathBuf {
    let p = dir.join("driftline.toml");
    std::fs::write(
        &p,
        format!(
            r#"data_dir = "data"
[watch]
state = ["{state}"]
observed = ["aws-config:{region}"]
interval_ms = 300
remote_interval_ms = 500
account = "{ACCOUNT}"

[aws_config]
resource_types = ["AWS::S3::Bucket"]
requests_per_second = 50
burst = 20
poll_interval_secs = 1
{extra}
"#
        ),
    )
    .unwrap();
    p
}

pub fn events_for<'a>(events: &'a [Value], event: &str, class: &str, id: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| {
            e["event"] == event
                && e["class"] == class
                && e["resource_key"]
                    .as_str()
                    .is_some_and(|k| k.ends_with(&format!("/{id}")))
        })
        .collect()
}

/// A tiny HTTP server: answers every request with `respond`, records them.
pub struct Peer {
    pub addr: String,
    pub requests: Arc<Mutex<Vec<String>>>,
    pub hits: Arc<AtomicUsize>,
}

pub fn peer(respond: impl Fn(&str) -> String + Send + 'static) -> Peer {
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
