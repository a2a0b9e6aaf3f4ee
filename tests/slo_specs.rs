//! SLO specs from the command line: the examples the project ships load,
//! and a broken spec is refused with its file, path and reason.

mod common;

use common::driftline;
use common::finops::repo;

#[test]
fn the_shipped_examples_load_and_broken_specs_are_refused() {
    let out = driftline()
        .args(["check", "--slo"])
        .arg(repo().join("examples/slo"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SLO specs ok: 3 SLOs"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(repo().join("examples/slo/checkout.yaml"))
        .unwrap()
        .replace("objective: 99.9", "objective: 199.9");
    std::fs::write(&bad, text).unwrap();
    let out = driftline()
        .args(["check", "--slo"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml: slos[0].objective: 199.9 is not a percentage in (0, 100]"),
        "{err}"
    );
}

#[test]
fn slo_eval_reports_where_the_samples_are_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let samples = dir.path().join("s.om");
    std::fs::write(&samples, "http_requests_total{job=\"checkout\"} 1\n# EOF\n").unwrap();
    let out = driftline()
        .args(["slo", "eval", "--spec"])
        .arg(repo().join("examples/slo/checkout.yaml"))
        .arg("--samples")
        .arg(&samples)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("s.om: sample http_requests_total has no timestamp"),
        "{err}"
    );
    std::fs::write(
        &samples,
        "http_requests_total{job=\"checkout\" 1 0\n# EOF\n",
    )
    .unwrap();
    let out = driftline()
        .args(["slo", "eval", "--spec"])
        .arg(repo().join("examples/slo/checkout.yaml"))
        .arg("--samples")
        .arg(&samples)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("s.om: line 1:"), "{err}");
}
