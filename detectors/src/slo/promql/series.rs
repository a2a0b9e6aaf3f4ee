//! Series in memory: what PromQL selects from. Each series keeps its
//! points in time order with a running count of counter resets, so a
//! range selector is a slice found by two binary searches and `rate`
//! over a window without a reset needs only its ends: evaluating a 3-day
//! window costs what a 5-minute one does, instead of a rescan of every
//! point in it at every step. Staleness markers are kept apart; they end
//! a series for the lookback, as in Prometheus's TSDB.

use driftline_pipeline::telemetry::{METRIC_NAME_LABEL, is_stale_nan};
use promql_parser::label::{MatchOp, Matchers};

pub use super::labels::Labels;

/// One time point: milliseconds since the epoch and its value.
pub type Point = (i64, f64);

pub struct Series {
    pub labels: Labels,
    /// The points that are not staleness markers, in time order.
    points: Vec<Point>,
    /// `resets[i]`: how many points in `points[..=i]` are lower than the
    /// point before them (a counter reset). Only differences are read,
    /// so trimming old points leaves the rest valid.
    resets: Vec<u32>,
    /// Staleness markers' timestamps, in time order.
    stale: Vec<i64>,
}

/// The points of one series in a window, and how many counter resets
/// lie between them.
pub struct Slice<'a> {
    pub points: &'a [Point],
    pub resets: u32,
}

impl Series {
    fn new(labels: Labels) -> Self {
        Self {
            labels,
            points: Vec::new(),
            resets: Vec::new(),
            stale: Vec::new(),
        }
    }

    fn newest(&self) -> Option<i64> {
        match (self.points.last(), self.stale.last()) {
            (Some(p), Some(s)) => Some(p.0.max(*s)),
            (Some(p), None) => Some(p.0),
            (None, s) => s.copied(),
        }
    }

    fn push(&mut self, t: i64, v: f64) -> bool {
        match self.newest() {
            Some(newest) if newest > t => return false,
            Some(newest) if newest == t => {
                // A repeat of the newest timestamp replaces its value.
                if self.points.last().is_some_and(|p| p.0 == t) {
                    self.points.pop();
                    self.resets.pop();
                } else {
                    self.stale.pop();
                }
            }
            _ => {}
        }
        if is_stale_nan(v) {
            self.stale.push(t);
            return true;
        }
        let before = self.resets.last().copied().unwrap_or(0);
        let reset = self.points.last().is_some_and(|p| v < p.1);
        self.points.push((t, v));
        self.resets.push(before + u32::from(reset));
        true
    }

    /// Forgets points older than `before`, in batches: a range reads
    /// between its own bounds, so older points only cost memory, and
    /// shifting every point out by one at each step would cost a copy of
    /// the whole window per step.
    fn trim(&mut self, before: i64) {
        let n = self.points.partition_point(|p| p.0 < before);
        if n == self.points.len() || n * 4 >= self.points.len() {
            self.points.drain(..n);
            self.resets.drain(..n);
        }
        let n = self.stale.partition_point(|t| *t < before);
        if n == self.stale.len() || n * 4 >= self.stale.len() {
            self.stale.drain(..n);
        }
    }

    fn is_empty(&self) -> bool {
        self.points.is_empty() && self.stale.is_empty()
    }

    /// The points in `[from, to]` (both ends included, as Prometheus 2.x
    /// selects ranges), staleness markers left out, with the resets
    /// between them.
    pub fn range(&self, from: i64, to: i64) -> Slice<'_> {
        let start = self.points.partition_point(|p| p.0 < from);
        let end = self.points.partition_point(|p| p.0 <= to);
        let resets = if end > start + 1 {
            self.resets[end - 1] - self.resets[start]
        } else {
            0
        };
        Slice {
            points: &self.points[start..end.max(start)],
            resets,
        }
    }

    /// The newest point at or before `at` and no older than `lookback`
    /// before it, unless a staleness marker came after it.
    pub fn at(&self, at: i64, lookback: i64) -> Option<f64> {
        let end = self.points.partition_point(|p| p.0 <= at);
        let (t, v) = *self.points[..end].last()?;
        let marks = self.stale.partition_point(|s| *s <= at);
        let ended = marks > 0 && self.stale[marks - 1] > t;
        (t >= at - lookback && !ended).then_some(v)
    }

    /// Points held, staleness markers included (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.points.len() + self.stale.len()
    }
}

/// Every series an evaluation can select, indexed by metric name and by
/// label pair (Prometheus's postings), so a selector with an equality
/// matcher reads only the series that carry its pair.
#[derive(Default)]
pub struct SeriesSet {
    series: Vec<Series>,
    by_labels: foldhash::HashMap<Labels, usize>,
    /// Label name → value → the series carrying that pair.
    postings: foldhash::HashMap<String, foldhash::HashMap<String, Vec<usize>>>,
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
                self.index(&labels, i);
                self.by_labels.insert(labels.clone(), i);
                self.series.push(Series::new(labels));
                i
            }
        };
        self.series[i].push(t, v)
    }

    fn index(&mut self, labels: &Labels, i: usize) {
        for (name, value) in labels.pairs() {
            self.postings
                .entry(name.clone())
                .or_default()
                .entry(value.clone())
                .or_default()
                .push(i);
        }
    }

    /// Forgets every point older than `before`, and series left empty.
    pub fn trim(&mut self, before: i64) {
        for s in &mut self.series {
            s.trim(before);
        }
        if self.series.iter().any(Series::is_empty) {
            let kept: Vec<Series> = std::mem::take(&mut self.series)
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            self.by_labels.clear();
            self.postings.clear();
            for (i, s) in kept.iter().enumerate() {
                self.by_labels.insert(s.labels.clone(), i);
                self.index(&s.labels, i);
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

    /// Points held over every series, staleness markers included (tests).
    #[cfg(test)]
    fn points(&self) -> usize {
        self.series.iter().map(Series::len).sum()
    }

    /// The earliest and latest point held.
    pub fn span(&self) -> Option<(i64, i64)> {
        let first = self
            .series
            .iter()
            .filter_map(|s| {
                let p = s.points.first().map(|p| p.0);
                let m = s.stale.first().copied();
                p.into_iter().chain(m).min()
            })
            .min()?;
        let last = self.series.iter().filter_map(Series::newest).max()?;
        Some((first, last))
    }

    /// The series a selector names. The shortest posting list among its
    /// name and equality matchers is the candidates; every matcher then
    /// filters them.
    pub fn select<'s: 'm, 'm>(
        &'s self,
        name: Option<&str>,
        matchers: &'m Matchers,
    ) -> Box<dyn Iterator<Item = &'s Series> + 'm> {
        let mut candidates: Option<&Vec<usize>> = None;
        let mut narrow = |pair: (&str, &str)| {
            let list = self.postings.get(pair.0).and_then(|v| v.get(pair.1));
            let list = list.unwrap_or(const { &Vec::new() });
            if candidates.is_none_or(|c| list.len() < c.len()) {
                candidates = Some(list);
            }
        };
        if let Some(n) = name {
            narrow((METRIC_NAME_LABEL, n));
        }
        if matchers.or_matchers.is_empty() {
            for m in &matchers.matchers {
                // `l=""` also matches series without `l`: no posting list.
                if matches!(m.op, MatchOp::Equal) && !m.value.is_empty() {
                    narrow((&m.name, &m.value));
                }
            }
        }
        match candidates {
            Some(list) => Box::new(
                list.iter()
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

#[cfg(test)]
mod tests {
    use super::*;
    use driftline_pipeline::telemetry::stale_nan;

    fn labels(v: &str) -> Labels {
        Labels::new(vec![
            ("__name__".into(), "c".into()),
            ("route".into(), v.into()),
        ])
    }

    #[test]
    fn a_range_counts_the_resets_inside_it_only() {
        let mut s = SeriesSet::default();
        for (t, v) in [(0, 5.0), (1, 1.0), (2, 3.0), (3, 2.0), (4, 4.0)] {
            assert!(s.push(labels("/a"), t, v));
        }
        let series = &s.series[0];
        // Resets at t=1 and t=3.
        assert_eq!(series.range(0, 4).resets, 2);
        assert_eq!(series.range(1, 4).resets, 1, "t=1 resets from t=0");
        assert_eq!(series.range(1, 2).resets, 0);
        assert_eq!(series.range(2, 3).points.len(), 2);
        assert_eq!(series.range(5, 9).points.len(), 0);
        s.trim(2);
        assert_eq!(s.series[0].range(0, 4).resets, 1);
        assert_eq!(s.points(), 3);
    }

    #[test]
    fn staleness_ends_a_series_and_a_repeat_replaces() {
        let mut s = SeriesSet::default();
        assert!(s.push(labels("/a"), 0, 1.0));
        assert!(s.push(labels("/a"), 10, stale_nan()));
        assert!(!s.push(labels("/a"), 5, 2.0), "older than the marker");
        let series = &s.series[0];
        assert_eq!(series.at(9, 100), Some(1.0));
        assert_eq!(series.at(10, 100), None);
        assert!(s.push(labels("/a"), 10, 7.0), "replaces the marker");
        assert_eq!(s.series[0].at(10, 100), Some(7.0));
        assert!(s.push(labels("/a"), 10, 6.0));
        assert_eq!(s.series[0].range(0, 10).resets, 0, "6 replaced 7");
        assert_eq!(s.points(), 2);
    }

    #[test]
    fn select_reads_the_posting_list_and_then_every_matcher() {
        let mut s = SeriesSet::default();
        for route in ["/a", "/b", "/c"] {
            s.push(labels(route), 0, 1.0);
        }
        let q = promql_parser::parser::parse(r#"c{route="/b"}"#).unwrap();
        let promql_parser::parser::Expr::VectorSelector(vs) = q else {
            unreachable!()
        };
        let got: Vec<_> = s
            .select(vs.name.as_deref(), &vs.matchers)
            .map(|s| s.labels.get("route").unwrap())
            .collect();
        assert_eq!(got, ["/b"]);
        let q = promql_parser::parser::parse(r#"c{route=~"/(a|c)"}"#).unwrap();
        let promql_parser::parser::Expr::VectorSelector(vs) = q else {
            unreachable!()
        };
        assert_eq!(s.select(vs.name.as_deref(), &vs.matchers).count(), 2);
    }
}
