//! The functions SLI queries use, computed as Prometheus 2.42 computes
//! them (promql/functions.go): rate's extrapolation and counter resets,
//! Kahan sums over time, histogram_quantile's bucket interpolation.

use promql_parser::parser::{Call, Expr};

use super::PromqlError;
use super::series::{Labels, Point};
use super::value::{Arg, Range, Sample, Value, Window, kind};

/// Every function `call` evaluates; `check` refuses the others up front.
pub const SUPPORTED: &[&str] = &[
    "rate",
    "increase",
    "irate",
    "delta",
    "sum_over_time",
    "avg_over_time",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "last_over_time",
    "histogram_quantile",
    "vector",
    "scalar",
    "time",
    "abs",
    "ceil",
    "floor",
    "clamp_min",
    "clamp_max",
    "absent",
];

/// A call's evaluated arguments, taken by position and type.
struct Args<'a> {
    name: &'static str,
    args: Vec<Option<Arg<'a>>>,
}

impl<'a> Args<'a> {
    fn take(&mut self, i: usize) -> Result<Arg<'a>, PromqlError> {
        self.args
            .get_mut(i)
            .and_then(Option::take)
            .ok_or_else(|| PromqlError::eval(format!("{} needs argument {}", self.name, i + 1)))
    }

    fn wrong(&self, i: usize, want: &str, got: &str) -> PromqlError {
        PromqlError::eval(format!(
            "{}: argument {} must be {want}, not {got}",
            self.name,
            i + 1
        ))
    }

    fn window(&mut self, i: usize) -> Result<Window<'a>, PromqlError> {
        match self.take(i)? {
            Arg::Window(w) => Ok(w),
            Arg::Value(v) => Err(self.wrong(i, "a range vector", kind(&v))),
        }
    }

    fn vector(&mut self, i: usize) -> Result<Vec<Sample>, PromqlError> {
        match self.take(i)? {
            Arg::Value(Value::Vector(v)) => Ok(v),
            Arg::Value(v) => Err(self.wrong(i, "an instant vector", kind(&v))),
            Arg::Window(_) => Err(self.wrong(i, "an instant vector", "a range vector")),
        }
    }

    fn scalar(&mut self, i: usize) -> Result<f64, PromqlError> {
        match self.take(i)? {
            Arg::Value(Value::Scalar(v)) => Ok(v),
            Arg::Value(v) => Err(self.wrong(i, "a scalar", kind(&v))),
            Arg::Window(_) => Err(self.wrong(i, "a scalar", "a range vector")),
        }
    }
}

/// One value per series of a window.
fn over_window(w: Window, f: &dyn Fn(&[Point]) -> f64) -> Value {
    Value::Vector(
        w.series
            .into_iter()
            .map(|r| Sample {
                value: f(&r.points),
                labels: Labels::cow_without_name(r.labels),
            })
            .collect(),
    )
}

/// A call, its arguments evaluated in order (`eval.rs`).
pub fn call(c: &Call, args: Vec<Arg<'_>>, ts: i64) -> Result<Value, PromqlError> {
    let mut a = Args {
        name: c.func.name,
        args: args.into_iter().map(Some).collect(),
    };
    Ok(match c.func.name {
        "rate" => extrapolated(a.window(0)?, true, true),
        "increase" => extrapolated(a.window(0)?, true, false),
        "delta" => extrapolated(a.window(0)?, false, false),
        "irate" => {
            let w = a.window(0)?;
            Value::Vector(w.series.into_iter().filter_map(irate).collect())
        }
        "sum_over_time" => over_window(a.window(0)?, &|p| kahan_sum(p.iter().map(|p| p.1))),
        "avg_over_time" => over_window(a.window(0)?, &avg_over_time),
        "count_over_time" => over_window(a.window(0)?, &|p| p.len() as f64),
        "min_over_time" => over_window(a.window(0)?, &|p| {
            p.iter()
                .map(|p| p.1)
                .fold(f64::NAN, |m, v| if m > v || m.is_nan() { v } else { m })
        }),
        "max_over_time" => over_window(a.window(0)?, &|p| {
            p.iter()
                .map(|p| p.1)
                .fold(f64::NAN, |m, v| if m < v || m.is_nan() { v } else { m })
        }),
        "last_over_time" => {
            let w = a.window(0)?;
            // The only *_over_time that keeps the metric name.
            Value::Vector(
                w.series
                    .into_iter()
                    .filter_map(|r| {
                        r.points.last().map(|p| Sample {
                            value: p.1,
                            labels: r.labels.into_owned(),
                        })
                    })
                    .collect(),
            )
        }
        "histogram_quantile" => {
            let q = a.scalar(0)?;
            Value::Vector(histogram_quantile(q, a.vector(1)?))
        }
        "vector" => Value::Vector(vec![Sample {
            labels: Labels::default(),
            value: a.scalar(0)?,
        }]),
        "scalar" => {
            let v = a.vector(0)?;
            Value::Scalar(if v.len() == 1 { v[0].value } else { f64::NAN })
        }
        "time" => Value::Scalar(ts as f64 / 1000.0),
        "abs" => map_values(a.vector(0)?, f64::abs),
        "ceil" => map_values(a.vector(0)?, f64::ceil),
        "floor" => map_values(a.vector(0)?, f64::floor),
        "clamp_min" => {
            let min = a.scalar(1)?;
            map_values(a.vector(0)?, |v| v.max(min))
        }
        "clamp_max" => {
            let max = a.scalar(1)?;
            map_values(a.vector(0)?, |v| v.min(max))
        }
        "absent" => {
            if !a.vector(0)?.is_empty() {
                Value::Vector(Vec::new())
            } else {
                Value::Vector(vec![Sample {
                    labels: c
                        .args
                        .args
                        .first()
                        .map(|e| absent_labels(e))
                        .unwrap_or_default(),
                    value: 1.0,
                }])
            }
        }
        other => return Err(PromqlError::unsupported(format!("function {other}()"))),
    })
}

fn map_values(v: Vec<Sample>, f: impl Fn(f64) -> f64) -> Value {
    Value::Vector(
        v.into_iter()
            .map(|s| Sample {
                value: f(s.value),
                labels: s.labels.without_name(),
            })
            .collect(),
    )
}

/// absent()'s labels: the equality matchers of a plain selector.
fn absent_labels(e: &Expr) -> Labels {
    use promql_parser::label::MatchOp;
    match e {
        Expr::VectorSelector(vs) => {
            let mut pairs: Vec<(String, String)> = Vec::new();
            for m in &vs.matchers.matchers {
                if m.name == driftline_pipeline::telemetry::METRIC_NAME_LABEL {
                    continue;
                }
                if matches!(m.op, MatchOp::Equal) {
                    if pairs.iter().any(|(n, _)| *n == m.name) {
                        // Two equality matchers on one label: Prometheus
                        // drops the label.
                        pairs.retain(|(n, _)| *n != m.name);
                    } else {
                        pairs.push((m.name.clone(), m.value.clone()));
                    }
                }
            }
            Labels::new(pairs)
        }
        _ => Labels::default(),
    }
}

/// rate, increase and delta: Prometheus's extrapolatedRate. A range
/// that knows it holds no counter reset is read at its ends only.
fn extrapolated(w: Window, is_counter: bool, is_rate: bool) -> Value {
    let range_s = (w.to - w.from) as f64 / 1000.0;
    let out = w
        .series
        .into_iter()
        .filter_map(
            |Range {
                 labels,
                 points,
                 resets,
             }| {
                if points.len() < 2 {
                    return None;
                }
                let (first, last) = (points[0], points[points.len() - 1]);
                let mut result = last.1 - first.1;
                if is_counter && resets != Some(0) {
                    let mut prev = first.1;
                    for p in &points[1..] {
                        if p.1 < prev {
                            result += prev;
                        }
                        prev = p.1;
                    }
                }
                let mut to_start = (first.0 - w.from) as f64 / 1000.0;
                let to_end = (w.to - last.0) as f64 / 1000.0;
                let sampled = (last.0 - first.0) as f64 / 1000.0;
                let average = sampled / (points.len() - 1) as f64;
                if is_counter && result > 0.0 && first.1 >= 0.0 {
                    // A counter starts at zero: extrapolate no further back
                    // than where it would have been zero.
                    let to_zero = sampled * (first.1 / result);
                    if to_zero < to_start {
                        to_start = to_zero;
                    }
                }
                let threshold = average * 1.1;
                let mut interval = sampled;
                interval += if to_start < threshold {
                    to_start
                } else {
                    average / 2.0
                };
                interval += if to_end < threshold {
                    to_end
                } else {
                    average / 2.0
                };
                result *= interval / sampled;
                if is_rate {
                    result /= range_s;
                }
                Some(Sample {
                    labels: Labels::cow_without_name(labels),
                    value: result,
                })
            },
        )
        .collect();
    Value::Vector(out)
}

fn irate(r: Range) -> Option<Sample> {
    let n = r.points.len();
    if n < 2 {
        return None;
    }
    let (prev, last) = (r.points[n - 2], r.points[n - 1]);
    let mut value = if last.1 < prev.1 {
        last.1
    } else {
        last.1 - prev.1
    };
    let interval = last.0 - prev.0;
    if interval == 0 {
        return None;
    }
    value /= interval as f64 / 1000.0;
    Some(Sample {
        labels: Labels::cow_without_name(r.labels),
        value,
    })
}

/// Neumaier's compensated sum, as sum_over_time adds.
fn kahan_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for v in values {
        (sum, c) = kahan_inc(v, sum, c);
    }
    if sum.is_infinite() { sum } else { sum + c }
}

fn kahan_inc(inc: f64, sum: f64, mut c: f64) -> (f64, f64) {
    let t = sum + inc;
    if sum.abs() >= inc.abs() {
        c += (sum - t) + inc;
    } else {
        c += (inc - t) + sum;
    }
    (t, c)
}

fn avg_over_time(points: &[Point]) -> f64 {
    let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
    for p in points {
        count += 1.0;
        let v = p.1;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_inc(v / count - mean / count, mean, c);
    }
    if mean.is_infinite() { mean } else { mean + c }
}

/// histogram_quantile over classic `_bucket` series: grouped by every
/// label but `le` (and the name), each group interpolated linearly
/// within the bucket that holds the rank.
fn histogram_quantile(q: f64, v: Vec<Sample>) -> Vec<Sample> {
    let mut groups: Vec<(Labels, Vec<(f64, f64)>)> = Vec::new();
    let mut index: std::collections::HashMap<Labels, usize> = Default::default();
    for s in v {
        let Some(le) = s.labels.get("le").and_then(parse_bound) else {
            // Prometheus skips a bucket without a valid `le`.
            continue;
        };
        let key = s.labels.without(&["le".to_string()]);
        let i = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push((le, s.value));
    }
    groups
        .into_iter()
        .map(|(labels, buckets)| Sample {
            labels,
            value: bucket_quantile(q, buckets),
        })
        .collect()
}

fn parse_bound(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Buckets with one bound are one bucket; counts never fall.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == b.0 => last.1 += b.1,
            _ => merged.push(b),
        }
    }
    let mut max = f64::NEG_INFINITY;
    for b in &mut merged {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = merged[..merged.len() - 1].partition_point(|b| b.1 < rank);
    if b == merged.len() - 1 {
        return merged[merged.len() - 2].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let mut start = 0.0;
    let end = merged[b].0;
    let mut count = merged[b].1;
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_quantile_interpolates_like_prometheus() {
        let b = vec![(0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (f64::INFINITY, 40.0)];
        // rank 20 falls in (0.1, 0.5]: 0.1 + 0.4 * (10 / 20).
        assert!((bucket_quantile(0.5, b.clone()) - 0.3).abs() < 1e-12);
        // The top rank in +Inf answers the highest finite bound.
        assert_eq!(
            bucket_quantile(1.0, vec![(1.0, 1.0), (f64::INFINITY, 2.0)]),
            1.0
        );
        assert!(
            bucket_quantile(0.5, vec![(1.0, 1.0)]).is_nan(),
            "no +Inf bucket"
        );
        assert_eq!(bucket_quantile(-1.0, b.clone()), f64::NEG_INFINITY);
    }

    #[test]
    fn kahan_sum_keeps_small_terms() {
        let v = [1e16, 1.0, -1e16];
        assert_eq!(kahan_sum(v.into_iter()), 1.0);
    }
}
