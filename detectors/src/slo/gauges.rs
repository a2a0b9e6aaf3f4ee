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
    pub fn show(
        &mut self,
        rates: &BurnRates,
        period_ms: &dyn Fn(usize) -> i64,
        d: &Decision,
        at: i64,
    ) {
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
                self.period
                    .observe(r.slo, &r.labels, at, *shortest, period_ms(r.slo));
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
        self.period.forget_empty();
        for (family, labels) in self.set.difference(&now) {
            let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
            let _ = FAMILIES[*family].remove_label_values(&refs);
        }
        self.set = now;
    }
}
