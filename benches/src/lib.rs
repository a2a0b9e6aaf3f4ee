//! Data generators shared by benchmarks and tests: a synthetic estate of N
//! declared resources (Terraform v4 state files) and N observed items (AWS
//! Config snapshot files) in the shapes real ones have, with 1% drift:
//! a third changed, a third missing, a third unmanaged.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

#[cfg(feature = "alerts")]
pub mod alerts;
pub mod focus;

/// Instances per state file and items per snapshot file, as real estates
/// are split across many states.
pub const PER_FILE: usize = 100_000;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";

fn tags(i: usize) -> Value {
    let team = ["payments", "search", "platform"][i % 3];
    json!({"Name": format!("res-{i}"), "team": team, "env": "prod", "service": format!("svc-{}", i % 50)})
}

fn taglist(t: &Value) -> Value {
    Value::Array(
        t.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

/// The declared attributes and observed item of resource `i`, and the
/// Terraform type, name and index.
fn resource(i: usize, drift: bool) -> (&'static str, Value, ConfigItem) {
    let t = tags(i);
    let mut ot = t.clone();
    if drift {
        ot["team"] = json!("someone-else");
    }
    match i % 4 {
        0 => {
            let id = format!("i-{i:017x}");
            let arn = format!("arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{id}");
            let declared = json!({"id": id, "arn": arn, "ami": "ami-0c1c30571d2dba5ce", "instance_type": "t3.medium",
                "subnet_id": format!("subnet-{:08x}", i % 64), "key_name": "ops", "vpc_security_group_ids": [format!("sg-{:08x}", i % 32)],
                "ebs_optimized": true, "source_dest_check": true, "monitoring": false, "private_ip": format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255),
                "availability_zone": "eu-west-1a", "root_block_device": [{"volume_size": 20, "volume_type": "gp3", "encrypted": true}],
                "tags": t, "tags_all": t, "user_data": null, "credit_specification": [{"cpu_credits": "unlimited"}]});
            let observed = item(
                "AWS::EC2::Instance",
                &id,
                Some(&arn),
                json!({"instanceId": id, "imageId": "ami-0c1c30571d2dba5ce",
                "instanceType": if drift { "t3.large" } else { "t3.medium" }, "subnetId": format!("subnet-{:08x}", i % 64), "keyName": "ops",
                "securityGroups": [{"groupName": "web", "groupId": format!("sg-{:08x}", i % 32)}], "ebsOptimized": true, "sourceDestCheck": true,
                "monitoring": {"state": "disabled"}, "privateIpAddress": format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255),
                "state": {"code": 16, "name": "running"}, "placement": {"availabilityZone": "eu-west-1a", "tenancy": "default"},
                "architecture": "x86_64", "rootDeviceName": "/dev/xvda", "tags": taglist(&ot)}),
                json!({}),
                &ot,
            );
            ("aws_instance", declared, observed)
        }
        1 => {
            let id = format!("sg-{i:017x}");
            let arn = format!("arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{id}");
            let declared = json!({"id": id, "arn": arn, "name": format!("sg-{i}"), "description": "Managed by Terraform", "vpc_id": "vpc-0a1b2c3d",
                "ingress": [{"from_port": 443, "to_port": 443, "protocol": "tcp", "cidr_blocks": ["10.0.0.0/8"], "ipv6_cidr_blocks": [], "prefix_list_ids": [], "security_groups": [], "self": false, "description": ""}],
                "egress": [{"from_port": 0, "to_port": 0, "protocol": "-1", "cidr_blocks": ["0.0.0.0/0"], "ipv6_cidr_blocks": [], "prefix_list_ids": [], "security_groups": [], "self": false, "description": ""}],
                "owner_id": ACCOUNT, "revoke_rules_on_delete": false, "tags": t, "tags_all": t});
            let cidr = if drift { "0.0.0.0/0" } else { "10.0.0.0/8" };
            let observed = item(
                "AWS::EC2::SecurityGroup",
                &id,
                Some(&arn),
                json!({"groupId": id, "groupName": format!("sg-{i}"), "description": "Managed by Terraform",
                "vpcId": "vpc-0a1b2c3d", "ownerId": ACCOUNT,
                "ipPermissions": [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "ipv4Ranges": [{"cidrIp": cidr}], "ipRanges": [cidr], "ipv6Ranges": [], "prefixListIds": [], "userIdGroupPairs": []}],
                "ipPermissionsEgress": [{"ipProtocol": "-1", "ipv4Ranges": [{"cidrIp": "0.0.0.0/0"}], "ipRanges": ["0.0.0.0/0"], "ipv6Ranges": [], "prefixListIds": [], "userIdGroupPairs": []}],
                "tags": taglist(&ot)}),
                json!({}),
                &ot,
            );
            ("aws_security_group", declared, observed)
        }
        2 => {
            let id = format!("bucket-{i:010}");
            let arn = format!("arn:aws:s3:::{id}");
            let declared = json!({"id": id, "bucket": id, "arn": arn, "region": REGION, "acl": "private", "force_destroy": false,
                "versioning": [{"enabled": true, "mfa_delete": false}], "policy": "", "tags": t, "tags_all": t,
                "server_side_encryption_configuration": [{"rule": [{"apply_server_side_encryption_by_default": [{"sse_algorithm": "AES256", "kms_master_key_id": ""}]}]}]});
            let o = item(
                "AWS::S3::Bucket",
                &id,
                Some(&arn),
                json!({"name": id, "owner": {"id": "8ac813c84b8ad4d9f3e35f80aaeb254f"}, "creationDate": "2024-03-01T10:00:00.000Z"}),
                json!({"BucketVersioningConfiguration": {"status": if drift { "Suspended" } else { "Enabled" }, "isMfaDeleteEnabled": null},
                "ServerSideEncryptionConfiguration": {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}}),
                &ot,
            );
            ("aws_s3_bucket", declared, o)
        }
        _ => {
            let id = format!("subnet-{i:017x}");
            let arn = format!("arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{id}");
            let cidr = format!("10.{}.{}.0/24", i >> 16 & 255, i >> 8 & 255);
            let declared = json!({"id": id, "arn": arn, "vpc_id": "vpc-0a1b2c3d", "cidr_block": cidr, "availability_zone": "eu-west-1b",
                "map_public_ip_on_launch": false, "assign_ipv6_address_on_creation": false, "owner_id": ACCOUNT, "tags": t, "tags_all": t});
            let observed = item(
                "AWS::EC2::Subnet",
                &id,
                Some(&arn),
                json!({"subnetId": id, "vpcId": "vpc-0a1b2c3d", "cidrBlock": cidr,
                "availabilityZone": "eu-west-1b", "mapPublicIpOnLaunch": drift, "availableIpAddressCount": 251, "state": "available", "tags": taglist(&ot)}),
                json!({}),
                &ot,
            );
            ("aws_subnet", declared, observed)
        }
    }
}

fn item(
    rtype: &'static str,
    id: &str,
    arn: Option<&str>,
    configuration: Value,
    supplementary: Value,
    tags: &Value,
) -> ConfigItem {
    ConfigItem {
        version: "1.3",
        resource_id: id.to_string(),
        arn: arn.map(str::to_string),
        account_id: ACCOUNT,
        configuration_item_capture_time: "2026-11-20T09:00:00.000Z",
        configuration_state_id: "1763629200000",
        configuration_item_status: "OK",
        related_events: [],
        aws_region: REGION,
        availability_zone: "Not Applicable",
        resource_type: rtype,
        tags: tags.clone(),
        relationships: [],
        configuration,
        supplementary_configuration: supplementary,
    }
}

/// A configuration item with its keys in the order of AWS Config's own
/// snapshot files (its documented example): the type before the
/// configuration.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigItem {
    version: &'static str,
    resource_id: String,
    arn: Option<String>,
    account_id: &'static str,
    configuration_item_capture_time: &'static str,
    configuration_state_id: &'static str,
    configuration_item_status: &'static str,
    related_events: [Value; 0],
    aws_region: &'static str,
    availability_zone: &'static str,
    resource_type: &'static str,
    tags: Value,
    relationships: [Value; 0],
    configuration: Value,
    supplementary_configuration: Value,
}

/// What a generated estate holds.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    pub state_files: Vec<PathBuf>,
    pub observed_files: Vec<PathBuf>,
    pub changed: usize,
    pub missing: usize,
    pub unmanaged: usize,
    pub bytes: u64,
}

/// Writes `n` declared and `n` observed resources under `dir`.
pub fn generate(dir: &Path, n: usize) -> std::io::Result<Generated> {
    std::fs::create_dir_all(dir.join("state"))?;
    std::fs::create_dir_all(dir.join("observed"))?;
    let mut g = Generated::default();
    for (file_no, start) in (0..n).step_by(PER_FILE).enumerate() {
        let end = (start + PER_FILE).min(n);
        let sp = dir.join(format!("state/part-{file_no:03}.tfstate"));
        let op = dir.join(format!("observed/snapshot-{file_no:03}.json"));
        let mut s = BufWriter::new(std::fs::File::create(&sp)?);
        let mut o = BufWriter::new(std::fs::File::create(&op)?);
        write!(
            s,
            r#"{{"version":4,"terraform_version":"1.9.8","serial":{file_no},"lineage":"bench-{file_no}","outputs":{{}},"resources":["#
        )?;
        write!(
            o,
            r#"{{"fileVersion":"1.0","configSnapshotId":"bench-{file_no}","configurationItems":["#
        )?;
        let (mut first_s, mut first_o) = (true, true);
        for i in start..end {
            // 1% drift: one in 300 changed, one in 300 missing, one in 300 unmanaged.
            let (changed, missing, unmanaged) = (i % 300 == 0, i % 300 == 1, i % 300 == 2);
            let (tf_type, declared, observed) = resource(i, changed);
            g.changed += changed as usize;
            g.missing += missing as usize;
            g.unmanaged += unmanaged as usize;
            if !unmanaged {
                let r = StateResource {
                    mode: "managed",
                    tf_type,
                    name: format!("r{i}"),
                    provider: "provider[\"registry.terraform.io/hashicorp/aws\"]",
                    instances: [StateInstance {
                        schema_version: 1,
                        attributes: declared,
                        sensitive_attributes: [],
                        private: "bnVsbA==",
                    }],
                };
                if !first_s {
                    s.write_all(b",")?;
                }
                first_s = false;
                serde_json::to_writer(&mut s, &r)?;
            }
            if !missing {
                if !first_o {
                    o.write_all(b",")?;
                }
                first_o = false;
                serde_json::to_writer(&mut o, &observed)?;
            }
        }
        s.write_all(b"]}")?;
        o.write_all(b"]}")?;
        s.flush()?;
        o.flush()?;
        g.bytes += sp.metadata()?.len() + op.metadata()?.len();
        g.state_files.push(sp);
        g.observed_files.push(op);
    }
    Ok(g)
}

/// A state resource with its keys in the order Terraform writes them (a
/// `json!` object would sort them, putting `instances` before `type`).
#[derive(serde::Serialize)]
struct StateResource<'a> {
    mode: &'a str,
    #[serde(rename = "type")]
    tf_type: &'a str,
    name: String,
    provider: &'a str,
    instances: [StateInstance<'a>; 1],
}

#[derive(serde::Serialize)]
struct StateInstance<'a> {
    schema_version: u32,
    attributes: Value,
    sensitive_attributes: [Value; 0],
    private: &'a str,
}

/// Peak resident memory (VmHWM) of process `pid`, in bytes; `None` once
/// it has exited.
pub fn peak_rss_of(pid: &str) -> Option<u64> {
    status_bytes(pid, "VmHWM:")
}

/// Resident memory (VmRSS) of process `pid` now, in bytes; `None` once it
/// has exited.
pub fn rss_of(pid: &str) -> Option<u64> {
    status_bytes(pid, "VmRSS:")
}

/// A `kB` field of `/proc/{pid}/status`, in bytes.
fn status_bytes(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kb| kb * 1024)
}

/// CPU time (user + system) process `pid` has used so far, in seconds,
/// from `/proc/{pid}/stat`; `None` once it has exited. Timers cost none of
/// it, so it compares work with work where wall clocks include waiting.
pub fn cpu_seconds_of(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), from field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks as f64 / per_second as f64)
}

/// Peak resident memory of this process (VmHWM), in bytes.
pub fn peak_rss_self() -> u64 {
    peak_rss_of("self").unwrap_or(0)
}

/// `cmd` run under GNU time (`/usr/bin/time -f %M -o measured`), which
/// writes its peak resident memory in kB to `measured` when it exits.
///
/// Not `getrusage(RUSAGE_CHILDREN)`: Linux folds the memory a spawned child
/// shared with this process before `exec` into the child's maximum, so a
/// bench that parsed its inputs first would report its own peak.
fn under_time(cmd: &std::process::Command, measured: &Path) -> std::process::Command {
    let mut timed = std::process::Command::new("/usr/bin/time");
    timed
        .args(["-f", "%M", "-o"])
        .arg(measured)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    timed
}

/// The peak RSS in bytes GNU time wrote to `measured`.
fn read_peak(measured: &Path) -> std::io::Result<u64> {
    let kb: u64 = std::fs::read_to_string(measured)?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .ok_or_else(|| std::io::Error::other("GNU time wrote no peak RSS"))?;
    let _ = std::fs::remove_file(measured);
    Ok(kb * 1024)
}

/// Runs `cmd` to completion under GNU time and returns its output and
/// peak resident memory in bytes.
pub fn output_with_peak_rss(
    cmd: &std::process::Command,
) -> std::io::Result<(std::process::Output, u64)> {
    let measured = std::env::temp_dir().join(format!("driftline-peak-{}", std::process::id()));
    let out = under_time(cmd, &measured).output()?;
    Ok((out, read_peak(&measured)?))
}

/// A server started under GNU time, so that its peak RSS over its whole
/// life (the drain after SIGTERM included) is known once it has stopped.
pub struct TimedServer {
    time: std::process::Child,
    measured: PathBuf,
}

impl TimedServer {
    /// Starts `cmd`; `configure` sets what only the caller knows (stdio).
    pub fn spawn(
        cmd: &std::process::Command,
        configure: impl FnOnce(&mut std::process::Command),
    ) -> std::io::Result<Self> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let measured = std::env::temp_dir().join(format!(
            "driftline-server-peak-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut timed = under_time(cmd, &measured);
        configure(&mut timed);
        Ok(Self {
            time: timed.spawn()?,
            measured,
        })
    }

    /// The server's own process id (GNU time's only child).
    pub fn pid(&self) -> Option<u32> {
        let time = self.time.id();
        std::fs::read_to_string(format!("/proc/{time}/task/{time}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Stops the server with SIGTERM, waits for it, and answers its peak
    /// RSS in bytes.
    pub fn terminate(mut self) -> std::io::Result<u64> {
        let pid = self
            .pid()
            .ok_or_else(|| std::io::Error::other("the server under GNU time is gone"))?;
        // SAFETY: kill only sends a signal to the process we started.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        self.time.wait()?;
        read_peak(&self.measured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_one_percent_drift() {
        let dir = std::env::temp_dir().join(format!("driftline-gen-{}", std::process::id()));
        let g = generate(&dir, 3000).unwrap();
        assert_eq!((g.changed, g.missing, g.unmanaged), (10, 10, 10));
        let state: Value =
            serde_json::from_slice(&std::fs::read(&g.state_files[0]).unwrap()).unwrap();
        assert_eq!(state["resources"].as_array().unwrap().len(), 2990);
        let obs: Value =
            serde_json::from_slice(&std::fs::read(&g.observed_files[0]).unwrap()).unwrap();
        assert_eq!(obs["configurationItems"].as_array().unwrap().len(), 2990);
        std::fs::remove_dir_all(dir).ok();
    }
}
