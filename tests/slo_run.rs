//! SLOs on the stream: `driftline run --slo` evaluates a spec over
//! remote-written samples every interval and pages PagerDuty once when the
//! budget burns, then resolves when it stops. The windows are seconds
//! long (an `AlertWindows` document over a one-hour period) so the test
//! runs in real time.

mod common;
#[path = "common/pagerduty.rs"]
mod pagerduty;

use std::time::{Duration, Instant};

use common::{Service, wait_for};
use driftline_pipeline::telemetry::prompb;
use pagerduty::{KEY, Receiver};
use prost::Message;

const SPEC: &str = r#"version: "prometheus/v1"
service: shop
slos:
  - name: availability
    objective: 90
    sli:
      events:
        error_query: sum(rate(shop_requests_total{code="500"}[{{.window}}]))
        total_query: sum(rate(shop_requests_total[{{.window}}]))
    alerting:
      name: ShopAvailability
      annotations:
        runbook: https://runbooks.example/shop
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

/// The shop's two counters, pushed as Prometheus would remote-write them.
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
                prompb::Label::new("__name__", "shop_requests_total"),
                prompb::Label::new("code", code),
                prompb::Label::new("job", "shop"),
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

#[test]
fn a_burning_slo_pages_once_and_resolves() {
    let pd = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("shop.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let cfg = tmp.path().join("driftline.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"data_dir = "{d}"
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
            s = spec.display()
        ),
    )
    .unwrap();
    let svc = Service::start_env(
        &pagerduty::run_args(cfg.to_str().unwrap(), &pd.url),
        &tmp.path().join("findings.jsonl"),
        &tmp.path().join("run.log"),
        &[("PD_KEY", KEY)],
    );
    wait_for(20, "the listener", || {
        common::http_get(&svc.listen, "/healthz").is_ok_and(|(c, _)| c == 200)
    });
    let mut shop = Shop {
        ok: 0.0,
        failed: 0.0,
    };
    // Healthy traffic first: nothing pages.
    for _ in 0..6 {
        shop.push(&svc.listen, false);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(pd.count("trigger"), 0, "{:?}", pd.actions());
    // Every request fails: the 5s and 1m windows pass 6 × 10 %.
    shop.until(&svc.listen, true, 40, "the page", || {
        pd.count("trigger") >= 1
    });
    // Healthy again: it resolves.
    shop.until(&svc.listen, false, 90, "the resolve", || {
        pd.count("resolve") >= 1
    });
    std::thread::sleep(Duration::from_secs(2));
    let actions = pd.actions();
    assert_eq!(pd.count("trigger"), 1, "{actions:?}");
    assert_eq!(pd.count("resolve"), 1, "{actions:?}");
    let seen = pd.seen.lock().unwrap();
    let page = &seen.accepted[0];
    assert_eq!(page["payload"]["severity"], "critical", "{page}");
    let summary = page["payload"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("shop SLO availability (90%) burns its error budget too fast"),
        "{summary}"
    );
    assert_eq!(page["payload"]["class"], "ShopAvailability", "{page}");
    let details = &page["payload"]["custom_details"];
    assert_eq!(details["labels"]["slo"], "shop-availability", "{details}");
    assert_eq!(details["labels"]["severity"], "page", "{details}");
    assert_eq!(
        details["annotations"]["runbook"], "https://runbooks.example/shop",
        "{details}"
    );
    assert!(
        details["burn_rates"]["5s"].as_f64().unwrap() > 6.0,
        "{details}"
    );
    assert!(seen.refused.is_empty(), "{:?}", seen.refused);
    drop(seen);
    assert!(svc.stop().success());
}
