//! SLOs on the stream: `driftline run` watches the demo estate (whose
//! security group has drifted; every resource is tagged
//! `service=checkout`) and evaluates a checkout SLO over remote-written
//! samples every interval. When the budget burns, exactly one SLO page
//! reaches PagerDuty, with the drift as its probable cause, and it
//! resolves when the burn stops. The windows are seconds long (an
//! `AlertWindows` document over a one-hour period) so the test runs in
//! real time.

mod common;
#[path = "common/pagerduty.rs"]
mod pagerduty;

use std::time::{Duration, Instant};

use common::{Service, wait_for};
use driftline_pipeline::telemetry::prompb;
use pagerduty::{KEY, Receiver};
use prost::Message;

const SPEC: &str = r#"version: "prometheus/v1"
service: checkout
slos:
  - name: availability
    objective: 90
    sli:
      events:
        error_query: sum(rate(checkout_requests_total{code="500"}[{{.window}}]))
        total_query: sum(rate(checkout_requests_total[{{.window}}]))
    alerting:
      name: CheckoutAvailability
      annotations:
        runbook: https://runbooks.example/checkout
      ticket_alert:
        disable: true
---
apiVersion: sloth.slok.dev/v1
kind: AlertWindows
spec:
  sloPeriod: 1h
  page:
    quick: {errorBudgetPercent: 10, shortWindow: 5s, longWindow: 1m}
    slow: {errorBudgetPercent: 20, shortWindow: 10s, longWindow: 2m}
  ticket:
    quick: {errorBudgetPercent: 50, shortWindow: 30s, longWindow: 5m}
    slow: {errorBudgetPercent: 100, shortWindow: 1m, longWindow: 10m}
"#;

/// The checkout's two counters, pushed as Prometheus would remote-write
/// them.
struct Shop {
    ok: f64,
    failed: f64,
}

impl Shop {
    fn push(&mut self, addr: &str, failing: bool) {
        if failing {
            self.failed += 10.0;
        } else {
            self.ok += 10.0;
        }
        let now = driftline_pipeline::now_ms();
        let series = |code: &str, v: f64| prompb::TimeSeries {
            labels: vec![
                prompb::Label::new("__name__", "checkout_requests_total"),
                prompb::Label::new("code", code),
                prompb::Label::new("job", "checkout"),
            ],
            samples: vec![prompb::Sample {
                value: v,
                timestamp: now,
            }],
            ..Default::default()
        };
        let req = prompb::WriteRequest {
            timeseries: vec![series("200", self.ok), series("500", self.failed)],
            metadata: vec![],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap();
        let (code, _, text) = common::http_post_bytes(
            addr,
            "/api/v1/write",
            &[
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "snappy"),
            ],
            &body,
        )
        .unwrap();
        assert_eq!(code, 204, "{text}");
    }

    /// Pushes every 500 ms until `done` or `secs` pass.
    fn until(&mut self, addr: &str, failing: bool, secs: u64, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.push(addr, failing);
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// The dedup keys of the SLO's triggers.
fn slo_keys(pd: &Receiver) -> Vec<String> {
    pd.seen
        .lock()
        .unwrap()
        .accepted
        .iter()
        .filter(|e| e["payload"]["class"] == "CheckoutAvailability")
        .filter_map(|e| e["dedup_key"].as_str().map(String::from))
        .collect()
}

#[test]
fn a_burning_slo_pages_once_with_the_drift_as_probable_cause_and_resolves() {
    let pd = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let estate = tmp.path().join("estate");
    common::copy_dir(&common::estate(), &estate);
    let spec = tmp.path().join("checkout.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let cfg = tmp.path().join("driftline.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"data_dir = "{d}"
[watch]
state = ["{e}/terraform"]
observed = ["{e}/aws-config"]
[drift]
driftignore = "{e}/.driftignore"
[slo]
specs = ["{s}"]
interval = "1s"
[alerts.route]
receiver = "oncall"
group_by = ["alertname"]
group_wait = "1s"
group_interval = "1s"
repeat_interval = "1h"
[alerts_delivery]
initial_backoff = "200ms"
max_backoff = "1s"
"#,
            d = tmp.path().join("data").display(),
            e = estate.display(),
            s = spec.display()
        ),
    )
    .unwrap();
    let findings = tmp.path().join("findings.jsonl");
    let svc = Service::start_env(
        &pagerduty::run_args(cfg.to_str().unwrap(), &pd.url),
        &findings,
        &tmp.path().join("run.log"),
        &[("PD_KEY", KEY)],
    );
    wait_for(20, "the listener", || {
        common::http_get(&svc.listen, "/healthz").is_ok_and(|(c, _)| c == 200)
    });
    // The estate's drift is found (and paged, as drift) first.
    wait_for(60, "the estate's seven findings", || {
        common::finding_events(&findings).len() >= 7
    });
    // The SLO's events: its triggers, and resolves that name their keys.
    let slo_events = |action: &str| -> Vec<serde_json::Value> {
        let keys = slo_keys(&pd);
        pd.seen
            .lock()
            .unwrap()
            .accepted
            .iter()
            .filter(|e| e["event_action"] == action)
            .filter(|e| {
                e["dedup_key"]
                    .as_str()
                    .is_some_and(|k| keys.iter().any(|s| s == k))
            })
            .cloned()
            .collect()
    };
    let mut shop = Shop {
        ok: 0.0,
        failed: 0.0,
    };
    // Healthy traffic: no SLO page.
    for _ in 0..6 {
        shop.push(&svc.listen, false);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(slo_events("trigger").is_empty(), "{:?}", pd.actions());
    // Every request fails: the 5s and 1m windows pass 6 × 10 %.
    shop.until(&svc.listen, true, 40, "the page", || {
        !slo_events("trigger").is_empty()
    });
    // Healthy again: it resolves.
    shop.until(&svc.listen, false, 90, "the resolve", || {
        !slo_events("resolve").is_empty()
    });
    std::thread::sleep(Duration::from_secs(2));
    let triggers = slo_events("trigger");
    assert_eq!(triggers.len(), 1, "{:?}", pd.actions());
    assert_eq!(slo_events("resolve").len(), 1, "{:?}", pd.actions());
    let page = &triggers[0];
    assert_eq!(page["payload"]["severity"], "critical", "{page}");
    let summary = page["payload"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("checkout SLO availability (90%) burns its error budget too fast"),
        "{summary}"
    );
    let details = &page["payload"]["custom_details"];
    assert_eq!(
        details["labels"]["slo"], "checkout-availability",
        "{details}"
    );
    assert_eq!(details["labels"]["severity"], "page", "{details}");
    assert_eq!(
        details["annotations"]["runbook"], "https://runbooks.example/checkout",
        "{details}"
    );
    assert!(
        details["burn_rates"]["5s"].as_f64().unwrap() > 6.0,
        "{details}"
    );
    // The probable cause: the security group's drift, with its paths.
    let causes = details["probable_cause"].as_array().unwrap();
    let sg = causes
        .iter()
        .find(|c| c["resource_type"] == "AWS::EC2::SecurityGroup")
        .unwrap_or_else(|| panic!("no security group among {causes:#?}"));
    assert_eq!(sg["class"], "changed", "{sg}");
    assert!(!sg["diffs"].as_array().unwrap().is_empty(), "{sg}");
    assert!(
        details["annotations"]["probable_cause"].is_string(),
        "{details}"
    );
    assert!(pd.seen.lock().unwrap().refused.is_empty());
    assert!(svc.stop().success());
}
