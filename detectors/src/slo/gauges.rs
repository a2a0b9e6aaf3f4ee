//! What the SLO detector shows on `/metrics` after every decision, for
//! the SLO dashboard: each split's error ratio and burn rate per window,
//! its error budget remaining over the period, and the alerts firing.
//! A split or an alert that is gone is removed, not left at its last
//! value.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use driftline_pipeline::metrics::float_gauge;
use prometheus::GaugeVec;

use super::budget::PeriodRatios;
use super::burn::{BurnRates, Decision};
use super::promql::Labels;
use super::spec::promql_duration;

/// The families, in the order of the names below.
static FAMILIES: LazyLock<[GaugeVec; 5]> = LazyLock::new(|| {
    [
        float_gauge(
            "driftline_slo_error_ratio",
            "Share of events that failed over the window (the SLI's complement).",
            &["slo", "service", "split", "window"],
        ),
        float_gauge(
            "driftline_slo_burn_rate",
            "Error ratio over the window divided by the error budget.",
            &["slo", "service", "split", "window"],
        ),
        float_gauge(
            "driftline_slo_error_budget_remaining",
            "Share of the period's error budget left: 1 untouched, 0 spent, below 0 overspent.",
            &["slo", "service", "split"],
        ),
        float_gauge(
            "driftline_slo_objective_ratio",
            "The SLO's objective as a ratio (0.999 for 99.9 %).",
            &["slo", "service"],
        ),
        float_gauge(
            "driftline_slo_alerts_firing",
            "1 while the SLO's alert of this severity fires.",
            &["slo", "service", "split", "severity"],
        ),
    ]
});
const ERROR_RATIO: usize = 0;
const BURN_RATE: usize = 1;
const BUDGET_REMAINING: usize = 2;
const OBJECTIVE: usize = 3;
const FIRING: usize = 4;

/// A split's labels as one label value: `route="/a",code="5xx"`.
fn split(labels: &Labels) -> String {
    labels
        .pairs()
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The label sets set last time, to remove those not set again.
#[derive(Default)]
pub struct Gauges {
    set: BTreeSet<(usize, Vec<String>)>,
    period: PeriodRatios,
}

impl Gauges {
    /// Shows one decision taken at `at`.
    pub fn show(&mut self, rates: &BurnRates, d: &Decision, at: i64) {
        self.period.forget_old(at, &|slo| rates.period_ms(slo));
        let mut now: BTreeSet<(usize, Vec<String>)> = BTreeSet::new();
        let mut put = |family: usize, labels: Vec<String>, v: f64| {
            let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
            FAMILIES[family].with_label_values(&refs).set(v);
            now.insert((family, labels));
        };
        for slo in rates.slos() {
            put(
                OBJECTIVE,
                vec![slo.id.clone(), slo.service.clone()],
                slo.objective / 100.0,
            );
        }
        for r in &d.ratios {
            let slo = &rates.slos()[r.slo];
            let budget = slo.error_budget();
            let s = split(&r.labels);
            for (w, ratio) in &r.by_window {
                let base = vec![
                    slo.id.clone(),
                    slo.service.clone(),
                    s.clone(),
                    promql_duration(*w),
                ];
                put(ERROR_RATIO, base.clone(), *ratio);
                put(BURN_RATE, base, ratio / budget);
            }
            // Sloth's period ratio averages the shortest window's.
            if let Some((_, shortest)) = r.by_window.iter().next() {
                self.period.observe(r.slo, &r.labels, at, *shortest);
            }
            if let Some(avg) = self.period.average(r.slo, &r.labels) {
                put(
                    BUDGET_REMAINING,
                    vec![slo.id.clone(), slo.service.clone(), s],
                    1.0 - avg / budget,
                );
            }
        }
        for firing in &d.firing {
            let slo = &rates.slos()[firing.slo];
            put(
                FIRING,
                vec![
                    slo.id.clone(),
                    slo.service.clone(),
                    split(&firing.labels),
                    firing.severity.as_str().to_string(),
                ],
                1.0,
            );
        }
        for (family, labels) in self.set.difference(&now) {
            let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
            let _ = FAMILIES[*family].remove_label_values(&refs);
        }
        self.set = now;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::slo::burn::{Firing, Ratios, Severity};

    #[test]
    fn a_decision_is_shown_and_what_is_gone_is_removed() {
        let set = crate::slo::spec::load_test_spec(
            "gauges.yaml",
            r#"version: "prometheus/v1"
service: gaugetest
slos:
  - name: availability
    objective: 99
    sli:
      events:
        error_query: sum by (route) (rate(req_total{code="500"}[{{.window}}]))
        total_query: sum by (route) (rate(req_total[{{.window}}]))
    alerting:
      name: GaugeTest
"#,
        );
        let rates = BurnRates::new(&set).unwrap();
        let route = Labels::new(vec![("route".into(), "/a".into())]);
        let decision = Decision {
            firing: vec![Firing {
                slo: 0,
                severity: Severity::Page,
                labels: route.clone(),
                burn_rates: BTreeMap::new(),
            }],
            ratios: vec![Ratios {
                slo: 0,
                labels: route,
                by_window: BTreeMap::from([(300_000, 0.2), (3_600_000, 0.05)]),
            }],
        };
        let mut g = Gauges::default();
        g.show(&rates, &decision, 0);
        let text = driftline_pipeline::metrics::render();
        let line = |name: &str, labels: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with(name)
                        && l.contains(r#"slo="gaugetest-availability""#)
                        && l.contains(labels)
                })
                .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        };
        let split = r#"split="route=\"/a\"""#;
        assert_eq!(
            line(
                "driftline_slo_burn_rate",
                &format!(r#"{split},window="5m""#)
            ),
            Some(20.0),
            "{text}"
        );
        assert_eq!(
            line(
                "driftline_slo_error_ratio",
                &format!(r#"{split},window="1h""#)
            ),
            Some(0.05)
        );
        // Sloth's period ratio: the shortest window's, averaged: 1 - 0.2 / 0.01.
        assert_eq!(
            line("driftline_slo_error_budget_remaining", split),
            Some(-19.0)
        );
        assert_eq!(
            line("driftline_slo_alerts_firing", r#"severity="page""#),
            Some(1.0)
        );
        // The next decision: nothing for the split any more.
        g.show(&rates, &Decision::default(), 60_000);
        let text = driftline_pipeline::metrics::render();
        assert!(
            !text.lines().any(|l| l.contains("gaugetest-availability")
                && !l.starts_with("driftline_slo_objective_ratio")),
            "{text}"
        );
    }
}
