//! `driftline slo report`: each SLO's error budget over its current
//! period, from the samples a store holds. The period's error ratio is
//! the SLI's ratio over the whole period (its rates over `[30d]`, say),
//! the budget remaining `1 - ratio / budget`: 100 % untouched, 0 % spent,
//! below zero overspent.

use std::collections::BTreeMap;

use arrow::array::{Array, RecordBatch};

use super::answer::Answer;
use super::burn::{BurnError, BurnRates};
use super::promql::{Evaluator, Labels, Query, SeriesSet};
use super::spec::{SloSet, promql_duration};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Budget {
    pub slo: String,
    pub service: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub objective: f64,
    pub period: String,
    /// The share of events that failed over the period.
    pub error_ratio: f64,
    /// `1 - error_ratio / budget`.
    pub budget_remaining: f64,
    /// Alerts firing now.
    pub firing: Vec<String>,
}

/// The longest period of any SLO: how far back the report reads.
pub fn longest_period_ms(set: &SloSet) -> i64 {
    set.slos
        .iter()
        .map(|s| set.period_ms(s))
        .max()
        .unwrap_or(set.windows.period_ms)
}

/// The metric names every SLO's queries select; `None` when one selects
/// by labels only (then every metric must be read).
pub fn metric_names(set: &SloSet) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for s in &set.slos {
        let q = Query::parse(&s.sli.ratio_query("5m")).ok()?;
        names.extend(q.metric_names()?);
    }
    names.sort();
    names.dedup();
    Some(names)
}

/// Most samples one read takes: 30 days of one-minute samples for 460
/// series. Past it the read is refused rather than answered from part.
pub const MAX_SAMPLES: usize = 20_000_000;

/// The samples of `names` (every metric when `None`) in `[from, to]` from
/// the store, as series; refused past `MAX_SAMPLES`.
pub fn read_series(
    store: &dyn driftline_pipeline::Store,
    names: Option<&[String]>,
    from_ms: i64,
    to_ms: i64,
) -> Result<SeriesSet, String> {
    let limits = driftline_pipeline::store::QueryLimits {
        timeout: std::time::Duration::from_secs(300),
        max_rows: MAX_SAMPLES,
    };
    let answer = store
        .query(&samples_sql(names, from_ms, to_ms), &limits)
        .map_err(|e| format!("reading metric_samples: {e}"))?;
    if answer.truncated {
        return Err(format!(
            "the SLOs' metrics hold more than {MAX_SAMPLES} samples over the window; \
             read fewer SLOs at a time"
        ));
    }
    series_from(&answer.batches)
}

/// SQL both stores answer: the samples of `names` in `[from, to]`, each
/// series in time order.
fn samples_sql(names: Option<&[String]>, from_ms: i64, to_ms: i64) -> String {
    let filter = match names {
        Some(n) => {
            let quoted: Vec<String> = n
                .iter()
                .map(|n| format!("'{}'", n.replace('\'', "''")))
                .collect();
            format!(" AND metric_name IN ({})", quoted.join(", "))
        }
        None => String::new(),
    };
    format!(
        "SELECT metric_name, label_keys, label_values, timestamp_ms, value FROM metric_samples \
         WHERE timestamp_ms >= {from_ms} AND timestamp_ms <= {to_ms}{filter} ORDER BY timestamp_ms"
    )
}

/// The rows `samples_sql` answers, as series. Staleness markers (NaN, or
/// null where a store cannot answer NaN) are left out.
fn series_from(batches: &[RecordBatch]) -> Result<SeriesSet, String> {
    let mut set = SeriesSet::default();
    for b in batches {
        let a = Answer {
            batch: b,
            table: "metric_samples",
        };
        let names = a.text("metric_name")?;
        let labels = a.pairs("label_keys", "label_values")?;
        let ts = a.int64("timestamp_ms")?;
        let vs = a.float64("value")?;
        for i in 0..b.num_rows() {
            if vs.is_null(i) || vs.value(i).is_nan() {
                continue;
            }
            let mut pairs = labels.at(i);
            pairs.push(("__name__".into(), names.value(i).to_string()));
            // A repeat or a late sample of a series is skipped, as the
            // TSDB would refuse it.
            set.push(Labels::new(pairs), ts.value(i), vs.value(i));
        }
    }
    Ok(set)
}

/// Every SLO's (and split's) budget at `at`.
pub fn budgets(
    set: &SloSet,
    series: &SeriesSet,
    at: i64,
    interval_ms: i64,
) -> Result<Vec<Budget>, BurnError> {
    let ev = Evaluator::new(series, interval_ms);
    let firing = BurnRates::new(set)?.step(series, at, interval_ms)?;
    let mut out = Vec::new();
    for (i, slo) in set.slos.iter().enumerate() {
        let period = set.period_ms(slo);
        let window = promql_duration(period);
        let fail = |source| BurnError {
            slo: slo.id.clone(),
            window: window.clone(),
            source,
        };
        let q = Query::parse(&slo.sli.ratio_query(&window))
            .map_err(fail)?
            .group_by(&slo.group_by);
        let ratios = q.eval(&ev, at).map_err(fail)?.by_labels();
        for (labels, ratio) in ratios {
            let firing_now: Vec<String> = firing
                .iter()
                .filter(|f| f.slo == i && f.labels == labels)
                .map(|f| f.severity.as_str().to_string())
                .collect();
            out.push(Budget {
                slo: slo.name.clone(),
                service: slo.service.clone(),
                labels: labels.pairs().iter().cloned().collect(),
                objective: slo.objective,
                period: window.clone(),
                error_ratio: ratio,
                budget_remaining: 1.0 - ratio / slo.error_budget(),
                firing: firing_now,
            });
        }
    }
    Ok(out)
}
