//! Multi-window, multi-burn-rate decisions, made as Sloth's rules make
//! them: for each window the error ratio (the recording rule
//! `slo:sli_error:ratio_rate<window>`); a severity fires for a label set
//! when, for its quick or its slow pair, both windows' ratios exceed
//! `factor × error budget`. No `for`: a decision holds for its step.

use std::collections::BTreeMap;

use super::promql::{Evaluator, LOOKBACK_MS, Labels, PromqlError, Query, SeriesSet, Value};
use super::spec::{AlertWindows, QuickSlow, Slo, SloSet, promql_duration};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Page,
    Ticket,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

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

/// The SLOs' ratio queries, parsed once.
pub struct BurnRates<'a> {
    set: &'a SloSet,
    /// Per SLO: window length (ms) → its ratio query.
    queries: Vec<BTreeMap<i64, Query>>,
}

impl<'a> BurnRates<'a> {
    pub fn new(set: &'a SloSet) -> Result<Self, BurnError> {
        let lengths = set.windows.lengths();
        let mut queries = Vec::with_capacity(set.slos.len());
        for slo in &set.slos {
            let mut by_window = BTreeMap::new();
            for &w in &lengths {
                let window = promql_duration(w);
                let q =
                    Query::parse(&slo.sli.ratio_query(&window)).map_err(|source| BurnError {
                        slo: slo.id.clone(),
                        window: window.clone(),
                        source,
                    })?;
                by_window.insert(w, q);
            }
            queries.push(by_window);
        }
        Ok(Self { set, queries })
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
        let windows: &AlertWindows = &self.set.windows;
        let mut out = Vec::new();
        for (i, slo) in self.set.slos.iter().enumerate() {
            let mut ratios: BTreeMap<i64, BTreeMap<Labels, f64>> = BTreeMap::new();
            for (&w, q) in &self.queries[i] {
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
            for (severity, enabled, pairs) in [
                (Severity::Page, slo.alerting.page.is_some(), windows.page),
                (
                    Severity::Ticket,
                    slo.alerting.ticket.is_some(),
                    windows.ticket,
                ),
            ] {
                if !enabled {
                    continue;
                }
                for labels in firing(windows, &pairs, &ratios, budget) {
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

/// The label sets for which the quick or the slow pair holds:
/// `(short > f × budget) and (long > f × budget)`, the pairs joined with
/// `or`.
fn firing(
    windows: &AlertWindows,
    pairs: &QuickSlow,
    ratios: &BTreeMap<i64, BTreeMap<Labels, f64>>,
    budget: f64,
) -> Vec<Labels> {
    let empty = BTreeMap::new();
    let mut out: Vec<Labels> = Vec::new();
    for w in [pairs.quick, pairs.slow] {
        let threshold = windows.factor(&w) * budget;
        let short = ratios.get(&w.short_ms).unwrap_or(&empty);
        let long = ratios.get(&w.long_ms).unwrap_or(&empty);
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
