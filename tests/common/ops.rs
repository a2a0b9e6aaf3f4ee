//! The operations tests' helpers: an on-call story told to the real alert
//! engine, leaving its rows in a store.
// Shared by several test binaries, each using part of it.
#![allow(dead_code)]

use std::sync::Arc;

use driftline_alerts::Alerting;
use driftline_pipeline::{Finding, FindingClass, FindingEvent, FindingEventKind};

use super::finops::Store;

pub fn finding(id: &str, class: FindingClass, team: &str) -> Finding {
    Finding {
        fingerprint: format!("fp-{id}"),
        detector: "drift".into(),
        class,
        resource_key: format!("aws/123456789012/eu-west-1/AWS::EC2::Instance/{id}"),
        resource_type: "AWS::EC2::Instance".into(),
        resource_id: id.into(),
        tf_type: None,
        address: None,
        source: None,
        account: "123456789012".into(),
        region: "eu-west-1".into(),
        diffs: Vec::new(),
        summary: format!("{id} drifted"),
        remediation: Vec::new(),
        tags: [("team".to_string(), team.to_string())].into(),
        reason: None,
        slo: None,
    }
}

/// Three alerts paged through one PagerDuty receiver (recorded when the
/// engine hands the pages to its outbox; nobody delivers them here): i-a's
/// drift is then reverted, i-b silenced by on-call, and i-c fixed by an
/// allow-listed remediation hook. Leaves `alert_events` and
/// `remediation_audit` rows in `store`.
pub fn page_three_alerts(store: &Store) {
    let data = tempfile::tempdir().unwrap();
    let opened = store.open(data.path());
    // One PagerDuty receiver (nobody delivers in this test: pages are
    // recorded when the engine sends them to the outbox), and a hook that
    // fixes missing instances without asking.
    let cfg: driftline_alerts::AlertsConfig = toml::from_str(
        r#"
        [route]
        receiver = "oncall"
        group_wait = "0s"
        [[receivers]]
        name = "oncall"
        [[receivers.pagerduty_configs]]
        routing_key_env = "PD_KEY"
        url = "http://127.0.0.1:9/v2/enqueue"
        [[remediation]]
        name = "recreate"
        matchers = ['class="missing"']
        kind = "command"
        command = ["true"]
        allow = true
        "#,
    )
    .unwrap();
    let env = |k: &str| (k == "PD_KEY").then(|| "k".repeat(32));
    let state = tempfile::tempdir().unwrap();
    let t0 = driftline_pipeline::now_ms();
    let (alerting, _delivery) = Alerting::open(
        &cfg,
        state.path(),
        &env,
        Default::default(),
        Some(Arc::clone(&opened)),
        t0,
    )
    .unwrap();
    let event = |kind, f: Finding, at| (FindingEvent::new(kind, at, f), at);
    alerting
        .apply_findings(
            &[
                event(
                    FindingEventKind::New,
                    finding("i-a", FindingClass::Changed, "web"),
                    t0,
                ),
                event(
                    FindingEventKind::New,
                    finding("i-b", FindingClass::Changed, "web"),
                    t0,
                ),
                event(
                    FindingEventKind::New,
                    finding("i-c", FindingClass::Missing, "db"),
                    t0,
                ),
            ],
            t0,
        )
        .unwrap();
    // i-a's drift is reverted; i-b is silenced by on-call.
    let t1 = t0 + 60_000;
    alerting
        .apply_findings(
            &[event(
                FindingEventKind::Resolved,
                finding("i-a", FindingClass::Changed, "web"),
                t1,
            )],
            t1,
        )
        .unwrap();
    let matchers = driftline_alerts::labels::parse_matchers("resource_id=\"i-b\"").unwrap();
    let silence =
        driftline_alerts::Silence::new(matchers, t1, t1 + 3_600_000, "oncall", "known", t1)
            .unwrap();
    alerting.add_silence(silence).unwrap();
    // The group's next flush (after its group_interval) acknowledges the page.
    alerting.tick(t1 + 10 * 60_000).unwrap();
}

/// One SLO page as the SLO detector publishes it, stored as the findings
/// sink stores it: a `new` `slo_burn` row in `finding_events`.
pub fn record_slo_burn(store: &Store) {
    let data = tempfile::tempdir().unwrap();
    let opened = store.open(data.path());
    let id = "checkout-requests-availability";
    let key = format!("slo/{id}/page/");
    let finding = Finding::slo_burn(
        key,
        "checkout SLO requests-availability (99.9%) burns its error budget too fast (80.0× over 5m)"
            .into(),
        driftline_pipeline::SloBurn {
            id: id.into(),
            name: "requests-availability".into(),
            service: "checkout".into(),
            severity: "page".into(),
            alert_name: "CheckoutHighErrorRate".into(),
            objective: 99.9,
            labels: Default::default(),
            annotations: Default::default(),
            burn_rates: [("5m".to_string(), 80.0), ("1h".to_string(), 20.0)].into(),
            probable_cause: Vec::new(),
        },
    );
    let event = FindingEvent::new(FindingEventKind::New, driftline_pipeline::now_ms(), finding);
    opened
        .append(
            "finding_events",
            &driftline_pipeline::schema::finding_events_batch(&[event]).unwrap(),
        )
        .unwrap();
}
