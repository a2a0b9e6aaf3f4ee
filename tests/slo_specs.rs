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

/// `slo eval` of the checkout example over `samples`: its stderr.
fn eval_errors(samples: &std::path::Path) -> String {
    let out = driftline()
        .args(["slo", "eval", "--spec"])
        .arg(repo().join("examples/slo/checkout.yaml"))
        .arg("--samples")
        .arg(samples)
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn slo_eval_reports_where_the_samples_are_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let samples = dir.path().join("s.om");
    std::fs::write(&samples, "http_requests_total{job=\"checkout\"} 1\n# EOF\n").unwrap();
    let err = eval_errors(&samples);
    assert!(
        err.contains("s.om: sample http_requests_total has no timestamp"),
        "{err}"
    );
    std::fs::write(
        &samples,
        "http_requests_total{job=\"checkout\" 1 0\n# EOF\n",
    )
    .unwrap();
    let err = eval_errors(&samples);
    assert!(err.contains("s.om: line 1:"), "{err}");
}

/// One day of one request a second to `checkout`, one in 2000 failing:
/// written straight into the store's `metric_samples`.
fn day_of_checkout(store: &common::finops::Store, dir: &std::path::Path) -> i64 {
    use driftline_pipeline::telemetry::prompb::{Label, Sample, TimeSeries, WriteRequest};
    use driftline_pipeline::telemetry::tables::{METRIC_SAMPLES, MetricRows};
    let s = store.open(dir);
    let start = 1_767_225_600_000i64; // 2026-01-01T00:00:00Z
    let minutes = 24 * 60;
    let series = |code: &str, per_minute: f64| TimeSeries {
        labels: vec![
            Label::new("__name__", "http_requests_total"),
            Label::new("code", code),
            Label::new("job", "checkout"),
        ],
        samples: (0..=minutes)
            .map(|m| Sample {
                value: per_minute * m as f64,
                timestamp: start + m * 60_000,
            })
            .collect(),
        ..Default::default()
    };
    let mut rows = MetricRows::default();
    rows.push_request(
        "test",
        &WriteRequest {
            timeseries: vec![series("200", 59.97), series("500", 0.03)],
            metadata: vec![],
        },
    );
    s.append(METRIC_SAMPLES, &rows.finish().unwrap()).unwrap();
    start + minutes * 60_000
}

#[test]
fn slo_report_reads_the_budget_from_either_store() {
    for store in common::finops::stores("slo_report") {
        let dir = tempfile::tempdir().unwrap();
        let at = day_of_checkout(&store, dir.path());
        let out = driftline()
            .args(["slo", "report", "--output", "json", "--spec"])
            .arg(repo().join("examples/slo/checkout.yaml"))
            .args(store.args())
            .args(["--at", &(at / 1000).to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            store.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let slos = v["slos"].as_array().unwrap();
        let availability = slos
            .iter()
            .find(|s| s["slo"] == "requests-availability")
            .unwrap_or_else(|| panic!("{}: {v}", store.name()));
        // 0.03 of 60 a minute fail: 0.05 % of a 0.1 % budget, half spent.
        let ratio = availability["error_ratio"].as_f64().unwrap();
        assert!((ratio - 0.0005).abs() < 1e-9, "{}: {ratio}", store.name());
        let remaining = availability["budget_remaining"].as_f64().unwrap();
        assert!(
            (remaining - 0.5).abs() < 1e-6,
            "{}: {remaining}",
            store.name()
        );
        assert_eq!(availability["period"], "30d");
        assert_eq!(availability["firing"], serde_json::json!([]));
    }
}

/// The probable cause's configuration changes, read from the store's
/// observed history.
mod configuration_changes {
    use driftline_pipeline::store::tables::{Side, history_batch, row_facts};
    use driftline_pipeline::{ConfigStatus, ObservedResource};
    use serde_json::json;

    use driftline_detectors::slo::cause::{CauseScope, probable_cause, read_evidence};
    use driftline_pipeline::Store;

    const CAUSE_MIN: i64 = 60_000;

    fn item(id: &str, service: &str, cidr: &str) -> ObservedResource {
        ObservedResource {
            resource_key: format!("aws/1/eu-west-1/AWS::EC2::SecurityGroup/{id}"),
            type_id: "AWS::EC2::SecurityGroup".into(),
            account: "1".into(),
            region: "eu-west-1".into(),
            resource_type: "AWS::EC2::SecurityGroup".into(),
            resource_id: id.into(),
            resource_name: None,
            arn: None,
            status: ConfigStatus::Ok,
            captured_at: None,
            configuration_state_id: None,
            configuration: json!({"groupId": id, "ipPermissions": [{"ipRanges": [cidr]}], "vpcId": "vpc-1"}),
            supplementary_configuration: json!({}),
            tags: json!({"service": service}),
            relationships: json!([]),
            summary_only: false,
            source: "test".into(),
        }
    }

    fn observe(store: &dyn Store, items: &[ObservedResource], at: i64) {
        let refs: Vec<&ObservedResource> = items.iter().collect();
        let batch = driftline_pipeline::schema::observed_batch(&refs).unwrap();
        let facts = row_facts(Side::Observed, &batch).unwrap();
        let rows = history_batch(Side::Observed, &batch, &facts, None, &[], at).unwrap();
        store.append("resources_observed_history", &rows).unwrap();
    }

    /// A new version of an observed configuration (here a security group
    /// opened to the world, through Terraform or not) is a probable cause,
    /// with its paths before and after, read the same from either store.
    #[test]
    fn a_configuration_change_is_a_probable_cause_on_either_store() {
        for s in crate::common::finops::stores("slo_cause") {
            let dir = tempfile::tempdir().unwrap();
            let handle = s.open(dir.path());
            let store = handle.as_ref();
            let t0 = 1_800_000_000_000;
            observe(
                store,
                &[
                    item("sg-web", "checkout", "10.0.0.0/8"),
                    item("sg-other", "search", "10.0.0.0/8"),
                ],
                t0,
            );
            // Ten minutes later: checkout's group opens to the world (through
            // Terraform or not), search's changes too, and a new group appears.
            observe(
                store,
                &[
                    item("sg-web", "checkout", "0.0.0.0/0"),
                    item("sg-other", "search", "0.0.0.0/0"),
                    item("sg-new", "checkout", "10.0.0.0/8"),
                ],
                t0 + 10 * CAUSE_MIN,
            );
            let scope = CauseScope {
                tag: "service".into(),
                service: "checkout".into(),
                resources: Vec::new(),
            };
            let evidence = read_evidence(store, t0 + 5 * CAUSE_MIN, t0 + 20 * CAUSE_MIN).unwrap();
            let causes = probable_cause(store, &evidence, &scope).unwrap();
            assert_eq!(causes.len(), 1, "{causes:#?}");
            let c = &causes[0];
            assert_eq!(c.class, "configuration_change");
            assert_eq!(c.resource_id, "sg-web");
            assert_eq!(
                c.at,
                driftline_pipeline::time::format_epoch_ms(t0 + 10 * CAUSE_MIN)
            );
            assert_eq!(c.changes.len(), 1, "{c:#?}");
            assert_eq!(c.changes[0].path, "ipPermissions");
            assert_eq!(c.changes[0].before, json!([{"ipRanges": ["10.0.0.0/8"]}]));
            assert_eq!(c.changes[0].after, json!([{"ipRanges": ["0.0.0.0/0"]}]));
            // Before the change the window holds nothing for checkout.
            let evidence = read_evidence(store, t0 - 5 * CAUSE_MIN, t0 + 5 * CAUSE_MIN).unwrap();
            assert!(probable_cause(store, &evidence, &scope).unwrap().is_empty());
        }
    }
}
