//! Lints what can be linted here of `deploy/`: the systemd unit with
//! `systemd-analyze verify`, the Kubernetes manifests and the compose file
//! as YAML with the fields a cluster needs. (The TOML configs are loaded by
//! the config tests.) Under CI a missing linter fails the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn required(tool: &str) -> bool {
    common::no_peer(
        &format!("{tool} is not available"),
        "deploy/local/test-stack.sh install",
    );
    false
}

#[test]
fn systemd_unit_verifies() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        required("systemd-analyze");
        return;
    }
    // verify checks that ExecStart exists: point it at the binary under test.
    let unit = std::fs::read_to_string(deploy().join("systemd/driftline.service")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("driftline.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/driftline", env!("CARGO_BIN_EXE_driftline")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    // Only findings about this unit count (the host's own units may warn).
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("driftline.service"))
        .collect();
    assert!(out.status.success() && ours.is_empty(), "{text}");
}

const CHECK: &str = r#"
import sys, yaml, os
root = sys.argv[1]
k8s = os.path.join(root, "kubernetes")
kust = yaml.safe_load(open(os.path.join(k8s, "kustomization.yaml")))
files = set(kust["configMapGenerator"][0]["files"])
for f in files:
    assert os.path.isfile(os.path.join(k8s, f)), f"missing config {f}"
kinds = []
for name in kust["resources"]:
    for doc in yaml.safe_load_all(open(os.path.join(k8s, name))):
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], name
        kinds.append(doc["kind"])
        if doc["kind"] == "Deployment":
            spec = doc["spec"]
            assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items(), name
            c = spec["template"]["spec"]["containers"][0]
            cfg = c["args"][c["args"].index("--config") + 1]
            assert os.path.basename(cfg) in files, f"{name}: {cfg} not generated"
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", name
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            mounts = {m["name"] for m in c["volumeMounts"]}
            vols = {v["name"] for v in spec["template"]["spec"]["volumes"]}
            assert mounts <= vols, f"{name}: mounts {mounts - vols} have no volume"
assert kinds.count("Deployment") == 2, kinds
compose = yaml.safe_load(open(os.path.join(root, "compose", "docker-compose.yml")))
services = compose["services"]
for s in ["redpanda", "clickhouse", "grafana", "driftline"]:
    assert s in services, s
assert os.path.isfile(os.path.join(root, "compose", "driftline.toml"))
print("ok")
"#;

#[test]
fn kubernetes_and_compose_manifests_are_sound() {
    let python = std::env::var("DRIFTLINE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_yaml = Command::new(&python)
        .args(["-c", "import yaml"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_yaml {
        required("python with PyYAML");
        return;
    }
    let out = Command::new(&python)
        .args(["-c", CHECK])
        .arg(deploy())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
