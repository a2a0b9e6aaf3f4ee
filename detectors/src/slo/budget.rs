//! The error budget remaining over each SLO's period, kept as running
//! state rather than read back from 30 days of samples at every step.
//! As Sloth defines it, the period's error ratio is the average of the
//! shortest window's ratio over the period
//! (`sum_over_time(ratio_rate5m[30d]) / count_over_time(…)`): each step's
//! ratio is added to an hourly bucket, and buckets older than the period
//! fall off, so the period edge is exact to the hour.

use std::collections::{BTreeMap, VecDeque};

use super::promql::Labels;

const HOUR_MS: i64 = 3_600_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    hour: i64,
    sum: f64,
    count: u32,
}

/// Per SLO split: its hourly sums of ratios over the period.
#[derive(Default)]
pub struct PeriodRatios {
    splits: BTreeMap<(usize, Labels), VecDeque<Bucket>>,
}

impl PeriodRatios {
    /// Adds one step's ratio for a split; a NaN (no traffic in the
    /// window) adds nothing. `forget_old` drops what falls out of the
    /// period.
    pub fn observe(&mut self, slo: usize, labels: &Labels, at: i64, ratio: f64) {
        if ratio.is_nan() {
            return;
        }
        let buckets = self.splits.entry((slo, labels.clone())).or_default();
        let hour = at.div_euclid(HOUR_MS);
        match buckets.back_mut() {
            Some(b) if b.hour == hour => {
                b.sum += ratio;
                b.count += 1;
            }
            _ => buckets.push_back(Bucket {
                hour,
                sum: ratio,
                count: 1,
            }),
        }
    }

    /// The split's average ratio over the period, when any was observed.
    pub fn average(&self, slo: usize, labels: &Labels) -> Option<f64> {
        let buckets = self.splits.get(&(slo, labels.clone()))?;
        let (sum, count) = buckets
            .iter()
            .fold((0.0, 0u64), |(s, c), b| (s + b.sum, c + u64::from(b.count)));
        (count > 0).then(|| sum / count as f64)
    }

    /// Forgets hours past each split's period, and splits with nothing
    /// left (a split that stopped reporting, such as a pod's label, does
    /// not stay forever).
    pub fn forget_old(&mut self, at: i64, period_ms: &dyn Fn(usize) -> i64) {
        self.splits.retain(|(slo, _), buckets| {
            drop_before(buckets, at - period_ms(*slo));
            !buckets.is_empty()
        });
    }
}

/// Drops the hours that end at or before `edge`.
fn drop_before(buckets: &mut VecDeque<Bucket>, edge: i64) {
    while buckets
        .front()
        .is_some_and(|b| (b.hour + 1) * HOUR_MS <= edge)
    {
        buckets.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_covers_the_period_and_old_hours_fall_off() {
        let mut p = PeriodRatios::default();
        let l = Labels::default();
        let day = 24 * HOUR_MS;
        // One day at 1 %, then one day at 3 %, a step a minute.
        for m in 0..(2 * 24 * 60) {
            let r = if m < 24 * 60 { 0.01 } else { 0.03 };
            p.forget_old(m * 60_000, &|_| 2 * day);
            p.observe(0, &l, m * 60_000, r);
        }
        assert!((p.average(0, &l).unwrap() - 0.02).abs() < 1e-12);
        // A day later with a one-day period: only the 3 % day is left.
        p.forget_old(2 * day + 60_000, &|_| day);
        p.observe(0, &l, 2 * day + 60_000, f64::NAN);
        let avg = p.average(0, &l).unwrap();
        assert!((avg - 0.03).abs() < 1e-12, "{avg}");
        assert_eq!(p.average(1, &l), None);
        // Nothing observed for two days: the split is gone.
        p.forget_old(4 * day + 60_000, &|_| day);
        assert_eq!(p.average(0, &l), None);
        assert!(p.splits.is_empty());
    }
}
