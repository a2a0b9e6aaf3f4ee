//! Multi-window, multi-burn-rate decisions, made as Sloth's rules make
//! them: for each window the error ratio (the recording rule
//! `slo:sli_error:ratio_rate<window>`); a severity fires for a label set
//! when, for any of its pairs, both windows' ratios exceed
//! `factor × error budget`. No `for`: a decision holds for its step.

use std::collections::BTreeMap;

use super::promql::{Evaluator, Labels, PromqlError, Query, SeriesSet};
use super::spec::{BurnPair, Slo, SloSet, promql_duration};

pub use super::spec::Severity;

/// One SLO alert firing at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    /// Index into the `SloSet`'s SLOs.
    pub slo: usize,
    pub severity: Severity,
    /// The SLI's own labels for this split (empty for a plain SLO).
    pub labels: Labels,
    /// Burn rate (error ratio over budget) per window, e.g. `5m` → 16.2.
    pub burn_rates: BTreeMap<String, f64>,
}

/// One SLO split's error ratio per window (milliseconds) at one step,
/// firing or not: what the detector's gauges show.
#[derive(Debug, Clone, PartialEq)]
pub struct Ratios {
    pub slo: usize,
    pub labels: Labels,
    pub by_window: BTreeMap<i64, f64>,
}

/// Everything one step decides.
#[derive(Debug, Default)]
pub struct Decision {
    pub firing: Vec<Firing>,
    pub ratios: Vec<Ratios>,
}

#[derive(Debug, thiserror::Error)]
#[error("SLO {slo}: window {window}: {source}")]
pub struct BurnError {
    pub slo: String,
    pub window: String,
    pub source: PromqlError,
}

/// One SLO's conditions and its ratio query per window, parsed once;
/// with a traffic guard, its total query per long window too.
struct Plan {
    pairs: Vec<BurnPair>,
    queries: BTreeMap<i64, Query>,
    totals: BTreeMap<i64, Query>,
}

pub struct BurnRates {
    set: SloSet,
    plans: Vec<Plan>,
}

impl BurnRates {
    pub fn new(set: &SloSet) -> Result<Self, BurnError> {
        let mut plans = Vec::with_capacity(set.slos.len());
        for slo in &set.slos {
            let pairs = slo.burn_pairs(&set.windows);
            let parse = |w: i64, text: String| {
                Query::parse(&text)
                    .map(|q| q.group_by(&slo.group_by))
                    .map_err(|source| BurnError {
                        slo: slo.id.clone(),
                        window: promql_duration(w),
                        source,
                    })
            };
            let mut queries = BTreeMap::new();
            let mut totals = BTreeMap::new();
            for p in &pairs {
                for w in [p.short_ms, p.long_ms] {
                    if let std::collections::btree_map::Entry::Vacant(e) = queries.entry(w) {
                        e.insert(parse(w, slo.sli.ratio_query(&promql_duration(w)))?);
                    }
                }
                if slo.min_events > 0.0
                    && !totals.contains_key(&p.long_ms)
                    && let Some(total) = slo.sli.total_query(&promql_duration(p.long_ms))
                {
                    totals.insert(p.long_ms, parse(p.long_ms, total)?);
                }
            }
            plans.push(Plan {
                pairs,
                queries,
                totals,
            });
        }
        Ok(Self {
            set: set.clone(),
            plans,
        })
    }

    pub fn slos(&self) -> &[Slo] {
        &self.set.slos
    }

    /// SLO `i`'s period.
    pub fn period_ms(&self, i: usize) -> i64 {
        self.set.period_ms(&self.set.slos[i])
    }

    /// What fires at `at`, for every SLO, given the series up to then.
    /// `interval_ms` is the evaluation interval (subqueries' default step).
    pub fn step(
        &self,
        series: &SeriesSet,
        at: i64,
        interval_ms: i64,
    ) -> Result<Vec<Firing>, BurnError> {
        Ok(self.decide(series, at, interval_ms)?.firing)
    }

    /// What fires at `at`, and every split's ratio per window.
    pub fn decide(
        &self,
        series: &SeriesSet,
        at: i64,
        interval_ms: i64,
    ) -> Result<Decision, BurnError> {
        let ev = Evaluator::new(series, interval_ms);
        let mut out = Decision::default();
        for (i, (slo, plan)) in self.set.slos.iter().zip(&self.plans).enumerate() {
            let by_labels = |w: i64, q: &Query| -> Result<BTreeMap<Labels, f64>, BurnError> {
                let fail = |source| BurnError {
                    slo: slo.id.clone(),
                    window: promql_duration(w),
                    source,
                };
                Ok(q.eval(&ev, at)
                    .map_err(fail)?
                    .by_labels()
                    .into_iter()
                    .collect())
            };
            let mut ratios: BTreeMap<i64, BTreeMap<Labels, f64>> = BTreeMap::new();
            for (&w, q) in &plan.queries {
                ratios.insert(w, by_labels(w, q)?);
            }
            // Events per long window: the total rate times its seconds.
            let mut events: BTreeMap<i64, BTreeMap<Labels, f64>> = BTreeMap::new();
            for (&w, q) in &plan.totals {
                let per_second = by_labels(w, q)?;
                events.insert(
                    w,
                    per_second
                        .into_iter()
                        .map(|(l, r)| (l, r * w as f64 / 1000.0))
                        .collect(),
                );
            }
            let guard = Guard {
                min_events: slo.min_events,
                events: &events,
            };
            let budget = slo.error_budget();
            for severity in [Severity::Page, Severity::Ticket] {
                let pairs: Vec<&BurnPair> = plan
                    .pairs
                    .iter()
                    .filter(|p| p.severity == severity)
                    .collect();
                for labels in firing(&pairs, &ratios, budget, &guard) {
                    let burn_rates = ratios
                        .iter()
                        .filter_map(|(w, r)| {
                            r.get(&labels).map(|v| (promql_duration(*w), v / budget))
                        })
                        .collect();
                    out.firing.push(Firing {
                        slo: i,
                        severity,
                        labels,
                        burn_rates,
                    });
                }
            }
            let mut by_labels: BTreeMap<&Labels, BTreeMap<i64, f64>> = BTreeMap::new();
            for (w, r) in &ratios {
                for (labels, v) in r {
                    by_labels.entry(labels).or_default().insert(*w, *v);
                }
            }
            out.ratios
                .extend(by_labels.into_iter().map(|(labels, by_window)| Ratios {
                    slo: i,
                    labels: labels.clone(),
                    by_window,
                }));
        }
        Ok(out)
    }
}

/// The minimum-traffic guard: a pair may fire only when its long window
/// saw at least `min_events` events.
struct Guard<'a> {
    min_events: f64,
    events: &'a BTreeMap<i64, BTreeMap<Labels, f64>>,
}

impl Guard<'_> {
    fn allows(&self, long_ms: i64, labels: &Labels) -> bool {
        self.min_events <= 0.0
            || self
                .events
                .get(&long_ms)
                .and_then(|e| e.get(labels))
                .is_some_and(|n| *n >= self.min_events)
    }
}

/// The label sets for which any pair holds:
/// `(short > f × budget) and (long > f × budget)`, the pairs joined with
/// `or`, each only where the guard allows it.
fn firing(
    pairs: &[&BurnPair],
    ratios: &BTreeMap<i64, BTreeMap<Labels, f64>>,
    budget: f64,
    guard: &Guard,
) -> Vec<Labels> {
    let empty = BTreeMap::new();
    let mut out: Vec<Labels> = Vec::new();
    for p in pairs {
        let threshold = p.factor * budget;
        let short = ratios.get(&p.short_ms).unwrap_or(&empty);
        let long = ratios.get(&p.long_ms).unwrap_or(&empty);
        for (labels, r) in short {
            if *r > threshold
                && long.get(labels).is_some_and(|l| *l > threshold)
                && guard.allows(p.long_ms, labels)
                && !out.contains(labels)
            {
                out.push(labels.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::spec::{Alert, Alerting, Sli, Tuning};

    fn slo() -> SloSet {
        let alert = Some(Alert {
            labels: Default::default(),
            annotations: Default::default(),
        });
        SloSet {
            slos: vec![Slo {
                id: "shop-availability".into(),
                service: "shop".into(),
                name: "availability".into(),
                description: String::new(),
                objective: 99.0,
                sli: Sli::Events {
                    error: "sum(rate(req_total{code=\"500\"}[{{.window}}]))".into(),
                    total: "sum(rate(req_total[{{.window}}]))".into(),
                },
                labels: Default::default(),
                alerting: Alerting {
                    name: "ShopAvailability".into(),
                    labels: Default::default(),
                    annotations: Default::default(),
                    page: alert,
                    ticket: None,
                },
                period_ms: None,
                conditions: Vec::new(),
                group_by: Vec::new(),
                min_events: 0.0,
                resources: Vec::new(),
            }],
            windows: Default::default(),
        }
    }

    /// Two hours, one request a minute per route, every other one failing
    /// on /a and none on /b.
    fn quiet_night() -> SeriesSet {
        let mut s = SeriesSet::default();
        for m in 0..=120i64 {
            for (route, code, v) in [
                ("/a", "200", (m + 1) / 2),
                ("/a", "500", m / 2),
                ("/b", "200", m),
                ("/b", "500", 0),
            ] {
                let labels = Labels::new(vec![
                    ("__name__".into(), "req_total".into()),
                    ("route".into(), route.into()),
                    ("code".into(), code.into()),
                ]);
                s.push(labels, m * 60_000, v as f64);
            }
        }
        s
    }

    #[test]
    fn the_traffic_guard_keeps_a_quiet_night_from_paging() {
        let series = quiet_night();
        let mut set = slo();
        let fired = BurnRates::new(&set)
            .unwrap()
            .step(&series, 7_200_000, 60_000)
            .unwrap();
        assert_eq!(fired.len(), 1, "25 % errors page without a guard");
        set.tune(&[Tuning {
            slo: None,
            min_events: 1000.0,
            ..Default::default()
        }])
        .unwrap();
        let fired = BurnRates::new(&set)
            .unwrap()
            .step(&series, 7_200_000, 60_000)
            .unwrap();
        assert!(fired.is_empty(), "{fired:?}");
    }

    #[test]
    fn group_by_pages_for_the_route_that_burns() {
        let series = quiet_night();
        let mut set = slo();
        set.tune(&[Tuning {
            slo: Some("shop-availability".into()),
            group_by: vec!["route".into()],
            min_events: 0.0,
            resources: Vec::new(),
        }])
        .unwrap();
        let fired = BurnRates::new(&set)
            .unwrap()
            .step(&series, 7_200_000, 60_000)
            .unwrap();
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0].labels.get("route"), Some("/a"));
        assert!(
            fired[0].burn_rates["5m"] > 40.0,
            "{:?}",
            fired[0].burn_rates
        );
        let e = set
            .tune(&[Tuning {
                slo: Some("nope".into()),
                ..Default::default()
            }])
            .unwrap_err();
        assert!(e.contains("no SLO \"nope\""), "{e}");
    }
}
