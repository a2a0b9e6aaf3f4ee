//! SLOs on the stream: `driftline run` watches the demo estate (whose
//! security group has drifted; every resource is tagged
//! `service=checkout`) and evaluates a checkout SLO every interval over
//! the samples a real Prometheus (Debian's 2.42) scrapes from the
//! checkout's counters and remote-writes to it. When the budget burns, exactly one SLO page
//! reaches PagerDuty, with the drift as its probable cause, and it
//! resolves when the burn stops. The windows are seconds long (an
//! `AlertWindows` document over a one-hour period) so the test runs in
//! real time.

mod common;
#[path = "common/pagerduty.rs"]
mod pagerduty;

use std::time::{Duration, Instant};

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::{Service, prometheus, wait_for};
use pagerduty::{KEY, Receiver};

const SPEC: &str = r#"version: "prometheus/v1"
service: checkout
slos:
  - name: availability
    objective: 90
    sli:
      events:
        error_query: sum(rate(checkout_requests_total{job="checkout",code="500"}[{{.window}}]))
        total_query: sum(rate(checkout_requests_total{job="checkout"}[{{.window}}]))
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

/// The checkout's two request counters, served on `/metrics` for
/// Prometheus to scrape; `failing` decides which one grows (20 a second).
struct Checkout {
    addr: String,
    failing: Arc<AtomicBool>,
}

impl Checkout {
    fn serve() -> Checkout {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let failing = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Mutex::new((0u64, 0u64)));
        {
            let (failing, counts) = (failing.clone(), counts.clone());
            std::thread::spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(100));
                    let mut c = counts.lock().unwrap();
                    if failing.load(Ordering::Relaxed) {
                        c.1 += 2;
                    } else {
                        c.0 += 2;
                    }
                }
            });
        }
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let (ok, failed) = *counts.lock().unwrap();
                let body = format!(
                    "# TYPE checkout_requests_total counter\n\
                     checkout_requests_total{{code=\"200\"}} {ok}\n\
                     checkout_requests_total{{code=\"500\"}} {failed}\n"
                );
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Checkout { addr, failing }
    }

    /// Waits, `failing` or not, until `done` (at most `secs`).
    fn until(&self, failing: bool, secs: u64, what: &str, done: impl Fn() -> bool) {
        self.failing.store(failing, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(250));
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
    let checkout = Checkout::serve();
    let config = format!(
        "global:\n  scrape_interval: 1s\n\
         scrape_configs:\n  - job_name: checkout\n    static_configs:\n      - targets: ['{}']\n\
         remote_write:\n  - url: http://{}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n      max_shards: 2\n",
        checkout.addr, svc.listen
    );
    let Some(_prom) = prometheus::start(None, &config, &[]) else {
        return;
    };
    // Healthy traffic for a few scrapes: no SLO page.
    std::thread::sleep(Duration::from_secs(6));
    assert!(slo_events("trigger").is_empty(), "{:?}", pd.actions());
    // Every request fails: the 5s and 1m windows pass 6 × 10 %.
    checkout.until(true, 60, "the page", || !slo_events("trigger").is_empty());
    // What the SLO dashboard reads: the burn and the alert on /metrics.
    let metric = |name: &str| -> Vec<String> {
        let (_, body) = common::http_get(&svc.listen, "/metrics").unwrap();
        body.lines()
            .filter(|l| l.starts_with(name) && l.contains(r#"slo="checkout-availability""#))
            .map(String::from)
            .collect()
    };
    let firing = metric("driftline_slo_alerts_firing");
    assert!(
        firing
            .iter()
            .any(|l| l.contains(r#"severity="page""#) && l.ends_with(" 1")),
        "{firing:?}"
    );
    assert!(
        metric("driftline_slo_burn_rate")
            .iter()
            .any(|l| l.contains(r#"window="5s""#)),
        "{:?}",
        metric("driftline_slo_burn_rate")
    );
    assert_eq!(metric("driftline_slo_error_budget_remaining").len(), 1);
    // Healthy again: it resolves.
    checkout.until(false, 120, "the resolve", || {
        !slo_events("resolve").is_empty()
    });
    assert!(
        !metric("driftline_slo_alerts_firing")
            .iter()
            .any(|l| l.contains(r#"severity="page""#)),
        "resolved, yet {:?}",
        metric("driftline_slo_alerts_firing")
    );
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
