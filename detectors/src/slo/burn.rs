//! Multi-window, multi-burn-rate decisions, made as Sloth's rules make
//! them: for each window the error ratio (the recording rule
//! `slo:sli_error:ratio_rate<window>`); a severity fires for a label set
//! when, for any of its pairs, both windows' ratios exceed
//! `factor × error budget`. No `for`: a decision holds for its step.

use std::collections::BTreeMap;

use super::promql::{Evaluator, LOOKBACK_MS, Labels, PromqlError, Query, SeriesSet, Value};
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

#[derive(Debug, thiserror::Error)]
#[error("SLO {slo}: window {window}: {source}")]
pub struct BurnError {
    pub slo: String,
    pub window: String,
    pub source: PromqlError,
}

/// One SLO's conditions and its ratio query per window, parsed once.
struct Plan {
    pairs: Vec<BurnPair>,
    queries: BTreeMap<i64, Query>,
}

pub struct BurnRates<'a> {
    set: &'a SloSet,
    plans: Vec<Plan>,
}

impl<'a> BurnRates<'a> {
    pub fn new(set: &'a SloSet) -> Result<Self, BurnError> {
        let mut plans = Vec::with_capacity(set.slos.len());
        for slo in &set.slos {
            let pairs = slo.burn_pairs(&set.windows);
            let mut queries = BTreeMap::new();
            for w in pairs.iter().flat_map(|p| [p.short_ms, p.long_ms]) {
                if queries.contains_key(&w) {
                    continue;
                }
                let window = promql_duration(w);
                let q =
                    Query::parse(&slo.sli.ratio_query(&window)).map_err(|source| BurnError {
                        slo: slo.id.clone(),
                        window: window.clone(),
                        source,
                    })?;
                queries.insert(w, q);
            }
            plans.push(Plan { pairs, queries });
        }
        Ok(Self { set, plans })
    }

    pub fn slos(&self) -> &[Slo] {
        &self.set.slos
    }

    /// What fires at `at`, for every SLO, given the series up to then.
    /// `interval_ms` is the evaluation interval (subqueries' default step).
    pub fn step(
        &self,
        series: &SeriesSet,
        at: i64,
        interval_ms: i64,
    ) -> Result<Vec<Firing>, BurnError> {
        let ev = Evaluator {
            series,
            lookback_ms: LOOKBACK_MS,
            interval_ms,
        };
        let mut out = Vec::new();
        for (i, (slo, plan)) in self.set.slos.iter().zip(&self.plans).enumerate() {
            let mut ratios: BTreeMap<i64, BTreeMap<Labels, f64>> = BTreeMap::new();
            for (&w, q) in &plan.queries {
                let fail = |source| BurnError {
                    slo: slo.id.clone(),
                    window: promql_duration(w),
                    source,
                };
                let v = match q.eval(&ev, at).map_err(fail)? {
                    Value::Vector(v) => v
                        .into_iter()
                        .map(|s| (s.labels.without_name(), s.value))
                        .collect(),
                    Value::Scalar(v) => BTreeMap::from([(Labels::default(), v)]),
                    _ => BTreeMap::new(),
                };
                ratios.insert(w, v);
            }
            let budget = slo.error_budget();
            for severity in [Severity::Page, Severity::Ticket] {
                let pairs: Vec<&BurnPair> = plan
                    .pairs
                    .iter()
                    .filter(|p| p.severity == severity)
                    .collect();
                for labels in firing(&pairs, &ratios, budget) {
                    let burn_rates = ratios
                        .iter()
                        .filter_map(|(w, r)| {
                            r.get(&labels).map(|v| (promql_duration(*w), v / budget))
                        })
                        .collect();
                    out.push(Firing {
                        slo: i,
                        severity,
                        labels,
                        burn_rates,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// The label sets for which any pair holds:
/// `(short > f × budget) and (long > f × budget)`, the pairs joined with
/// `or`.
fn firing(
    pairs: &[&BurnPair],
    ratios: &BTreeMap<i64, BTreeMap<Labels, f64>>,
    budget: f64,
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
                && !out.contains(labels)
            {
                out.push(labels.clone());
            }
        }
    }
    out
}
