//! Alert engine semantics in virtual time.

use std::time::Duration;

use driftline_alerts::config::{
    AlertRule, PagerDutyConfig, ReceiverConfig, RouteConfig, WebhookConfig,
};
use driftline_alerts::engine::{AlertEngine, AlertInput, Notification};
use driftline_alerts::labels::{Labels, parse_matchers};
use driftline_alerts::{AlertState, AlertsConfig, Silence};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn input(fp: &str, l: &[(&str, &str)], firing: bool, at: i64) -> AlertInput {
    AlertInput {
        fingerprint: fp.into(),
        labels: labels(l),
        annotations: Labels::new(),
        details: serde_json::Value::Null,
        firing,
        at_ms: at,
    }
}

fn config() -> AlertsConfig {
    AlertsConfig {
        route: RouteConfig {
            receiver: Some("hook".into()),
            group_by: Some(vec!["team".into()]),
            group_wait: Some(Duration::from_secs(10)),
            group_interval: Some(Duration::from_secs(60)),
            repeat_interval: Some(Duration::from_secs(3600)),
            ..RouteConfig::default()
        },
        receivers: vec![ReceiverConfig {
            name: "hook".into(),
            webhook_configs: vec![WebhookConfig {
                url: "http://127.0.0.1:1/".into(),
                send_resolved: true,
                max_alerts: 0,
            }],
            pagerduty_configs: vec![PagerDutyConfig {
                routing_key_env: "X".into(),
                url: "http://127.0.0.1:1/".into(),
                send_resolved: true,
                client: "driftline".into(),
            }],
            ..Default::default()
        }],
        ..AlertsConfig::default()
    }
}

fn hooks(ns: &[Notification]) -> Vec<(Vec<String>, Vec<String>)> {
    ns.iter()
        .filter(|n| !n.integration.per_alert())
        .map(|n| {
            let f = n
                .alerts
                .iter()
                .filter(|a| a.state != AlertState::Resolved)
                .map(|a| a.fingerprint().to_string())
                .collect();
            let r = n
                .alerts
                .iter()
                .filter(|a| a.state == AlertState::Resolved)
                .map(|a| a.fingerprint().to_string())
                .collect();
            (f, r)
        })
        .collect()
}

fn pd(ns: &[Notification]) -> (Vec<String>, Vec<String>) {
    let mut t = Vec::new();
    let mut r = Vec::new();
    for n in ns.iter().filter(|n| n.integration.per_alert()) {
        t.extend(n.pick(&n.trigger).map(|a| a.fingerprint().to_string()));
        r.extend(n.pick(&n.resolve).map(|a| a.fingerprint().to_string()));
    }
    (t, r)
}

const S: i64 = 1000;

#[test]
fn group_wait_interval_and_resolve_like_alertmanager() {
    let mut e = AlertEngine::new(&config());
    e.ingest(input("a", &[("team", "x"), ("alertname", "A")], true, 0), 0);
    e.ingest(
        input("b", &[("team", "x"), ("alertname", "B")], true, 1),
        5 * S,
    );
    assert!(e.tick(9 * S).is_empty(), "group_wait not over");
    let n = e.tick(10 * S);
    assert_eq!(hooks(&n), vec![(vec!["a".into(), "b".into()], vec![])]);
    assert_eq!(pd(&n), (vec!["a".into(), "b".into()], vec![]));
    // A third alert waits for the next group_interval boundary (70 s).
    e.ingest(
        input("c", &[("team", "x"), ("alertname", "C")], true, 2),
        20 * S,
    );
    assert!(e.tick(69 * S).is_empty());
    let n = e.tick(70 * S);
    assert_eq!(
        hooks(&n),
        vec![(vec!["a".into(), "b".into(), "c".into()], vec![])]
    );
    assert_eq!(
        pd(&n),
        (vec!["c".into()], vec![]),
        "PagerDuty triggers only the new alert"
    );
    // Nothing changes: no notification until repeat_interval.
    assert!(e.tick(130 * S).is_empty());
    // a resolves: told at the next boundary, then it leaves the group.
    e.ingest(
        input("a", &[("team", "x"), ("alertname", "A")], false, 3),
        140 * S,
    );
    let n = e.tick(190 * S);
    assert_eq!(
        hooks(&n),
        vec![(vec!["b".into(), "c".into()], vec!["a".into()])]
    );
    assert_eq!(pd(&n), (vec![], vec!["a".into()]));
    assert!(e.tick(250 * S).is_empty());
    // Replaying old events changes nothing.
    assert!(!e.ingest(
        input("a", &[("team", "x"), ("alertname", "A")], true, 0),
        260 * S
    ));
    assert!(!e.ingest(
        input("a", &[("team", "x"), ("alertname", "A")], false, 3),
        260 * S
    ));
    // repeat_interval re-sends the group (not PagerDuty triggers).
    let n = e.tick(3900 * S);
    assert_eq!(hooks(&n).len(), 1);
    assert_eq!(pd(&n), (vec![], vec![]));
}

#[test]
fn for_duration_holds_pending_and_a_short_blip_pages_nobody() {
    let mut c = config();
    c.rules = vec![AlertRule {
        matchers: parse_matchers(r#"team="x""#).unwrap(),
        for_: Duration::from_secs(30),
        severity: Some("critical".into()),
    }];
    let mut e = AlertEngine::new(&c);
    e.ingest(input("blip", &[("team", "x")], true, 0), 0);
    e.ingest(input("blip", &[("team", "x")], false, 1), 20 * S);
    e.ingest(input("real", &[("team", "x")], true, 2), 0);
    assert!(e.tick(29 * S).is_empty());
    assert_eq!(e.alert("real").unwrap().state, AlertState::Pending);
    assert!(
        e.tick(30 * S).is_empty(),
        "fires at 30 s, then waits group_wait"
    );
    let n = e.tick(40 * S);
    assert_eq!(pd(&n), (vec!["real".into()], vec![]));
    assert_eq!(n[0].alerts[0].labels().get("severity"), Some("critical"));
}

#[test]
fn silences_and_inhibition_mute() {
    let mut e = AlertEngine::new(&config());
    let s = Silence::new(
        parse_matchers(r#"alertname="Noisy""#).unwrap(),
        0,
        100 * S,
        "me",
        "known",
        0,
    )
    .unwrap();
    e.add_silence(s.clone());
    e.ingest(
        input("n", &[("team", "x"), ("alertname", "Noisy")], true, 0),
        0,
    );
    let key = [("team", "x"), ("resource_key", "aws/1/r/T/i")];
    e.ingest(
        input("m", &[key[0], key[1], ("class", "missing")], true, 0),
        0,
    );
    e.ingest(
        input("c", &[key[0], key[1], ("class", "changed")], true, 0),
        0,
    );
    e.ingest(
        input(
            "c2",
            &[
                key[0],
                ("resource_key", "aws/1/r/T/other"),
                ("class", "changed"),
            ],
            true,
            0,
        ),
        0,
    );
    let n = e.tick(10 * S);
    assert_eq!(hooks(&n), vec![(vec!["c2".into(), "m".into()], vec![])]);
    // The missing resource recovers: its changed finding is no longer inhibited.
    e.ingest(
        input("m", &[key[0], key[1], ("class", "missing")], false, 1),
        20 * S,
    );
    let n = e.tick(70 * S);
    assert_eq!(pd(&n), (vec!["c".into()], vec!["m".into()]));
    // The silence expires: the noisy alert is told.
    assert!(e.expire_silence(&s.id, 80 * S));
    let n = e.tick(130 * S);
    assert_eq!(pd(&n), (vec!["n".into()], vec![]));
}

#[test]
fn silencing_a_paged_alert_acknowledges_it_once() {
    let mut e = AlertEngine::new(&config());
    e.ingest(
        input("p", &[("team", "x"), ("alertname", "Disk")], true, 0),
        0,
    );
    assert_eq!(pd(&e.tick(10 * S)).0, vec!["p".to_string()]);
    let s = Silence::new(
        parse_matchers(r#"alertname="Disk""#).unwrap(),
        20 * S,
        1000 * S,
        "me",
        "on it",
        20 * S,
    )
    .unwrap();
    e.add_silence(s);
    let acks = |ns: &[Notification]| -> Vec<String> {
        ns.iter()
            .flat_map(|n| n.pick(&n.acknowledge).map(|a| a.fingerprint().to_string()))
            .collect()
    };
    assert_eq!(acks(&e.tick(70 * S)), vec!["p".to_string()]);
    assert!(acks(&e.tick(130 * S)).is_empty(), "acknowledged once");
    // It recovers under the silence: PagerDuty's incident is still resolved.
    e.ingest(
        input("p", &[("team", "x"), ("alertname", "Disk")], false, 1),
        140 * S,
    );
    assert_eq!(pd(&e.tick(190 * S)), (vec![], vec!["p".to_string()]));
    assert!(pd(&e.tick(250 * S)).1.is_empty(), "resolved once");
}

#[test]
fn flapping_alert_pages_once_and_resolves_after_calm() {
    let mut c = config();
    c.flap.window = Duration::from_secs(600);
    c.flap.max_transitions = 2;
    let mut e = AlertEngine::new(&c);
    let l = [("team", "x")];
    let mut t = 0;
    let mut triggers = 0;
    let mut resolves = 0;
    for i in 0..20 {
        e.ingest(input("f", &l, i % 2 == 0, i), t);
        t += 70 * S;
        let (tr, rs) = pd(&e.tick(t));
        triggers += tr.len();
        resolves += rs.len();
    }
    assert!(e.alert("f").unwrap().flapping, "marked flapping");
    assert!(triggers <= 3, "flapping is damped: {triggers} triggers");
    assert!(resolves < triggers);
    // It settles (last input at i=19 was a resolve): resolve after the window.
    let (_, rs) = pd(&e.tick(t + 601 * S));
    let (_, rs2) = pd(&e.tick(t + 661 * S));
    assert_eq!(
        rs.len() + rs2.len() + resolves,
        triggers,
        "every trigger resolved once"
    );
}

#[test]
fn restored_engine_does_not_page_twice() {
    let mut e = AlertEngine::new(&config());
    e.ingest(input("a", &[("team", "x")], true, 0), 0);
    assert_eq!(pd(&e.tick(10 * S)).0, vec!["a".to_string()]);
    let snap = e.snapshot();
    let mut e2 = AlertEngine::new(&config());
    e2.restore(snap, 20 * S);
    assert!(e2.tick(40 * S).iter().all(|n| n.trigger.is_empty()));
    assert!(
        !e2.ingest(input("a", &[("team", "x")], true, 0), 50 * S),
        "replayed event"
    );
    e2.ingest(input("a", &[("team", "x")], false, 5), 60 * S);
    let (t, r) = pd(&e2.tick(200 * S));
    assert_eq!((t.len(), r), (0, vec!["a".to_string()]));
}

/// The wall clock stepped back an hour, then forward a day, then back: no
/// alert fires before its `for`, none pages twice, and none waits for the
/// clock to catch up with a time it had already shown.
#[test]
fn clock_jumps_neither_page_twice_nor_hold_pages_back() {
    let mut c = config();
    c.rules = vec![AlertRule {
        matchers: parse_matchers(r#"team="x""#).unwrap(),
        for_: Duration::from_secs(30),
        severity: None,
    }];
    let mut e = AlertEngine::new(&c);
    let t0 = 1_800_000_000 * S;
    let a = |firing, at| input("a", &[("team", "x")], firing, at);
    e.ingest(a(true, 0), t0);
    // Back an hour before `for` is over: not firing early, nor ever stuck.
    assert!(e.tick(t0 - 3600 * S).is_empty());
    assert!(e.tick(t0 - 3600 * S + 40 * S).is_empty());
    assert_eq!(e.alert("a").unwrap().state, AlertState::Pending);
    let mut paged = Vec::new();
    for t in [t0 + 30 * S, t0 + 40 * S] {
        paged.extend(e.tick(t));
    }
    assert_eq!(pd(&paged), (vec!["a".into()], vec![]), "{paged:?}");
    // Forward a day: the group repeats once; PagerDuty is not triggered again.
    let n = e.tick(t0 + 86_400 * S);
    assert_eq!(pd(&n), (vec![], vec![]));
    assert_eq!(hooks(&n).len(), 1);
    // Back to before that: nothing repeats, nothing resolves.
    assert!(e.tick(t0 + 100 * S).is_empty());
    assert_eq!(e.alert("a").unwrap().state, AlertState::Firing);
    // A resolution while the clock is behind the last notification is
    // told within a group interval, not a day later.
    e.ingest(a(false, 1), t0 + 110 * S);
    let mut told = Vec::new();
    for t in (120..=240).step_by(10) {
        told.extend(e.tick(t0 + t * S));
    }
    assert_eq!(pd(&told), (vec![], vec!["a".into()]), "{told:?}");
}
