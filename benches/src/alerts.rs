//! The alert stream the alert benchmarks share: N findings' labels over 3
//! classes and `teams` teams, and a route grouping them by `alertname,
//! team` to one receiver with a webhook and PagerDuty.

use std::time::Duration;

use driftline_alerts::AlertsConfig;
use driftline_alerts::config::{PagerDutyConfig, ReceiverConfig, RouteConfig, WebhookConfig};
use driftline_alerts::labels::Labels;

/// The alert classes, one per drift finding class.
const CLASSES: [&str; 3] = ["DriftChanged", "DriftMissing", "DriftUnmanaged"];

/// Alert `i`'s labels: its class, team, severity and resource.
pub fn labels(i: usize, teams: usize) -> Labels {
    let mut l = Labels::new();
    l.insert("alertname".into(), CLASSES[i % 3].into());
    l.insert("team".into(), format!("team-{:03}", (i / 3) % teams));
    l.insert("severity".into(), "warning".into());
    l.insert(
        "resource_key".into(),
        format!("aws/123456789012/eu-west-1/AWS::S3::Bucket/bucket-{i}"),
    );
    l
}

/// Grouped by `alertname, team`; 1 s wait, 5 s interval, 1 h repeat.
pub fn config() -> AlertsConfig {
    AlertsConfig {
        route: RouteConfig {
            receiver: Some("oncall".into()),
            group_by: Some(vec!["alertname".into(), "team".into()]),
            group_wait: Some(Duration::from_secs(1)),
            group_interval: Some(Duration::from_secs(5)),
            repeat_interval: Some(Duration::from_secs(3600)),
            ..RouteConfig::default()
        },
        receivers: vec![ReceiverConfig {
            name: "oncall".into(),
            webhook_configs: vec![WebhookConfig {
                url: "http://127.0.0.1:1/".into(),
                send_resolved: true,
                max_alerts: 0,
            }],
            pagerduty_configs: vec![PagerDutyConfig {
                routing_key_env: "-".into(),
                url: "http://127.0.0.1:1/".into(),
                send_resolved: true,
                client: "driftline".into(),
            }],
            ..Default::default()
        }],
        inhibit_rules: Vec::new(),
        ..AlertsConfig::default()
    }
}
