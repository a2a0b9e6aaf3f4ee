//! Series in memory: what PromQL selects from. Each series is its sorted
//! label set and its points in time order; staleness markers are kept as
//! points (they end a series for the lookback, as in Prometheus's TSDB).

use std::collections::HashMap;

use driftline_pipeline::telemetry::{METRIC_NAME_LABEL, is_stale_nan};
use promql_parser::label::Matchers;

/// A sorted label set, `__name__` included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    pub fn new(mut pairs: Vec<(String, String)>) -> Self {
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        pairs.retain(|(_, v)| !v.is_empty());
        Self(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn name(&self) -> Option<&str> {
        self.get(METRIC_NAME_LABEL)
    }

    /// The same labels without `__name__`.
    pub fn without_name(mut self) -> Self {
        self.0.retain(|(n, _)| n != METRIC_NAME_LABEL);
        self
    }

    /// Only the labels named.
    pub fn keep(&self, names: &[String]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|(n, _)| names.iter().any(|k| k == n))
                .cloned()
                .collect(),
        )
    }

    /// Every label but those named (and `__name__`).
    pub fn without(&self, names: &[String]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|(n, _)| n != METRIC_NAME_LABEL && !names.iter().any(|k| k == n))
                .cloned()
                .collect(),
        )
    }

    /// Sets (or, with an empty value, removes) one label.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].1 = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, (name.to_string(), value.to_string())),
        }
    }

    fn matches(&self, matchers: &Matchers) -> bool {
        let all = |ms: &[promql_parser::label::Matcher]| {
            ms.iter()
                .all(|m| m.is_match(self.get(&m.name).unwrap_or("")))
        };
        if matchers.or_matchers.is_empty() {
            all(&matchers.matchers)
        } else {
            matchers.or_matchers.iter().any(|ms| all(ms))
        }
    }
}

impl std::fmt::Display for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.name().unwrap_or("");
        write!(f, "{name}{{")?;
        let mut first = true;
        for (n, v) in self.0.iter().filter(|(n, _)| n != METRIC_NAME_LABEL) {
            if !first {
                write!(f, ", ")?;
            }
            first = false;
            write!(f, "{n}={v:?}")?;
        }
        write!(f, "}}")
    }
}

/// One time point: milliseconds since the epoch and its value.
pub type Point = (i64, f64);

pub struct Series {
    pub labels: Labels,
    /// In time order; a staleness marker is a point whose value is the
    /// stale NaN.
    pub points: Vec<Point>,
}

impl Series {
    /// The points in `[from, to]` (both ends included, as Prometheus 2.x
    /// selects ranges), staleness markers left out.
    pub fn range(&self, from: i64, to: i64) -> impl Iterator<Item = Point> + '_ {
        let start = self.points.partition_point(|p| p.0 < from);
        self.points[start..]
            .iter()
            .take_while(move |p| p.0 <= to)
            .filter(|p| !is_stale_nan(p.1))
            .copied()
    }

    /// The newest point at or before `at` and no older than `lookback`
    /// before it, unless that point is a staleness marker.
    pub fn at(&self, at: i64, lookback: i64) -> Option<f64> {
        let end = self.points.partition_point(|p| p.0 <= at);
        let (t, v) = *self.points[..end].last()?;
        (t >= at - lookback && !is_stale_nan(v)).then_some(v)
    }
}

/// Every series an evaluation can select, indexed by metric name.
#[derive(Default)]
pub struct SeriesSet {
    series: Vec<Series>,
    by_labels: HashMap<Labels, usize>,
    by_name: HashMap<String, Vec<usize>>,
}

impl SeriesSet {
    /// Adds a point. Points of one series must come in time order; one
    /// older than the series' newest is refused (`false`), as Prometheus
    /// refuses out-of-order samples, and a repeat of the newest timestamp
    /// replaces its value.
    pub fn push(&mut self, labels: Labels, t: i64, v: f64) -> bool {
        let i = match self.by_labels.get(&labels) {
            Some(i) => *i,
            None => {
                let i = self.series.len();
                self.by_name
                    .entry(labels.name().unwrap_or("").to_string())
                    .or_default()
                    .push(i);
                self.by_labels.insert(labels.clone(), i);
                self.series.push(Series {
                    labels,
                    points: Vec::new(),
                });
                i
            }
        };
        let points = &mut self.series[i].points;
        match points.last_mut() {
            Some(last) if last.0 > t => return false,
            Some(last) if last.0 == t => last.1 = v,
            _ => points.push((t, v)),
        }
        true
    }

    /// Forgets every point older than `before`, and series left empty.
    pub fn trim(&mut self, before: i64) {
        for s in &mut self.series {
            let n = s.points.partition_point(|p| p.0 < before);
            s.points.drain(..n);
        }
        if self.series.iter().any(|s| s.points.is_empty()) {
            let kept: Vec<Series> = std::mem::take(&mut self.series)
                .into_iter()
                .filter(|s| !s.points.is_empty())
                .collect();
            self.by_labels.clear();
            self.by_name.clear();
            for (i, s) in kept.iter().enumerate() {
                self.by_labels.insert(s.labels.clone(), i);
                self.by_name
                    .entry(s.labels.name().unwrap_or("").to_string())
                    .or_default()
                    .push(i);
            }
            self.series = kept;
        }
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The earliest and latest point held.
    pub fn span(&self) -> Option<(i64, i64)> {
        let first = self
            .series
            .iter()
            .filter_map(|s| s.points.first())
            .map(|p| p.0)
            .min()?;
        let last = self
            .series
            .iter()
            .filter_map(|s| s.points.last())
            .map(|p| p.0)
            .max()?;
        Some((first, last))
    }

    /// The series a selector names.
    pub fn select<'a>(
        &'a self,
        name: Option<&str>,
        matchers: &'a Matchers,
    ) -> Box<dyn Iterator<Item = &'a Series> + 'a> {
        match name {
            Some(n) => Box::new(
                self.by_name
                    .get(n)
                    .into_iter()
                    .flatten()
                    .map(|i| &self.series[*i])
                    .filter(move |s| s.labels.matches(matchers)),
            ),
            None => Box::new(
                self.series
                    .iter()
                    .filter(move |s| s.labels.matches(matchers)),
            ),
        }
    }
}
