//! Instant evaluation of a parsed expression at one timestamp, with
//! Prometheus 2.x's rules: a 5-minute lookback (inclusive at both ends),
//! staleness markers that end a series, ranges `[t - range, t]`, and
//! subqueries stepped at multiples of their step (the evaluation
//! interval when none is given).

use std::borrow::Cow;

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{AtModifier, Expr, Offset, SubqueryExpr, VectorSelector};

use super::series::{Labels, Point, SeriesSet};
use super::value::{Arg, Range, Sample, Value, Window, kind};
use super::{PromqlError, aggregate, binary, functions};

pub struct Evaluator<'a> {
    pub series: &'a SeriesSet,
    /// How far back an instant selector looks for a point (5 m).
    pub lookback_ms: i64,
    /// The default subquery step: the rule evaluation interval.
    pub interval_ms: i64,
}

impl<'a> Evaluator<'a> {
    /// Prometheus's defaults: a 5-minute lookback; `interval_ms` is the
    /// rule evaluation interval.
    pub fn new(series: &'a SeriesSet, interval_ms: i64) -> Self {
        Self {
            series,
            lookback_ms: super::LOOKBACK_MS,
            interval_ms,
        }
    }
}

fn ms(d: &std::time::Duration) -> i64 {
    d.as_millis() as i64
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => ms(d),
        Some(Offset::Neg(d)) => -ms(d),
    }
}

/// The time a selector reads at: `@` pins it, `offset` moves it back.
fn reference_time(at: &Option<AtModifier>, offset: &Option<Offset>, ts: i64) -> i64 {
    let base = match at {
        Some(AtModifier::At(t)) => match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => ms(&d),
            Err(e) => -ms(&e.duration()),
        },
        // An instant evaluation starts and ends at `ts`.
        Some(AtModifier::Start) | Some(AtModifier::End) | None => ts,
    };
    base - offset_ms(offset)
}

impl<'a> Evaluator<'a> {
    pub fn eval(&self, expr: &Expr, ts: i64) -> Result<Value, PromqlError> {
        Ok(match expr {
            Expr::NumberLiteral(n) => Value::Scalar(n.val),
            Expr::StringLiteral(s) => Value::String(s.val.clone()),
            Expr::Paren(p) => self.eval(&p.expr, ts)?,
            Expr::Unary(u) => match self.eval(&u.expr, ts)? {
                Value::Scalar(v) => Value::Scalar(-v),
                Value::Vector(v) => Value::Vector(
                    v.into_iter()
                        .map(|s| Sample {
                            labels: s.labels.without_name(),
                            value: -s.value,
                        })
                        .collect(),
                ),
                other => return Err(PromqlError::eval(format!("cannot negate {other:?}"))),
            },
            Expr::VectorSelector(vs) => Value::Vector(self.instant(vs, ts)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => Value::Matrix(
                self.window(expr, ts)?
                    .series
                    .into_iter()
                    .map(Range::into_owned)
                    .collect(),
            ),
            Expr::Call(c) => {
                // Each argument as its parameter's type asks.
                let mut args = Vec::with_capacity(c.args.args.len());
                for (i, a) in c.args.args.iter().enumerate() {
                    let t = c.func.arg_types.get(i).or(c.func.arg_types.last());
                    args.push(if matches!(t, Some(ValueType::Matrix)) {
                        Arg::Window(self.window(a, ts)?)
                    } else {
                        Arg::Value(self.eval(a, ts)?)
                    });
                }
                functions::call(c, args, ts)?
            }
            Expr::Aggregate(a) => aggregate::aggregate(a, self.vector(&a.expr, ts)?)?,
            Expr::Binary(b) => binary::binary(b, self.eval(&b.lhs, ts)?, self.eval(&b.rhs, ts)?)?,
            Expr::Extension(_) => return Err(PromqlError::unsupported("extension expressions")),
        })
    }

    /// An expression that must give an instant vector.
    pub fn vector(&self, expr: &Expr, ts: i64) -> Result<Vec<Sample>, PromqlError> {
        match self.eval(expr, ts)? {
            Value::Vector(v) => Ok(v),
            other => Err(PromqlError::eval(format!(
                "expected an instant vector, got {}",
                kind(&other)
            ))),
        }
    }

    /// An expression that must give a scalar.
    pub fn scalar(&self, expr: &Expr, ts: i64) -> Result<f64, PromqlError> {
        match self.eval(expr, ts)? {
            Value::Scalar(v) => Ok(v),
            other => Err(PromqlError::eval(format!(
                "expected a scalar, got {}",
                kind(&other)
            ))),
        }
    }

    fn instant(&self, vs: &VectorSelector, ts: i64) -> Vec<Sample> {
        let t = reference_time(&vs.at, &vs.offset, ts);
        self.series
            .select(vs.name.as_deref(), &vs.matchers)
            .filter_map(|s| {
                s.at(t, self.lookback_ms).map(|value| Sample {
                    labels: s.labels.clone(),
                    value,
                })
            })
            .collect()
    }

    /// A range vector: a matrix selector or a subquery, with its window.
    pub fn window(&self, expr: &Expr, ts: i64) -> Result<Window<'a>, PromqlError> {
        match expr {
            Expr::Paren(p) => self.window(&p.expr, ts),
            Expr::MatrixSelector(m) => {
                let to = reference_time(&m.vs.at, &m.vs.offset, ts);
                let from = to - ms(&m.range);
                let series = self
                    .series
                    .select(m.vs.name.as_deref(), &m.vs.matchers)
                    .filter_map(|s| {
                        let slice = s.range(from, to);
                        (!slice.points.is_empty()).then_some(Range {
                            labels: Cow::Borrowed(&s.labels),
                            points: Cow::Borrowed(slice.points),
                            resets: Some(slice.resets),
                        })
                    })
                    .collect();
                Ok(Window { series, from, to })
            }
            Expr::Subquery(sq) => self.subquery(sq, ts),
            other => Err(PromqlError::eval(format!(
                "expected a range vector, got {}",
                other.value_type()
            ))),
        }
    }

    fn subquery(&self, sq: &SubqueryExpr, ts: i64) -> Result<Window<'a>, PromqlError> {
        let to = reference_time(&sq.at, &sq.offset, ts);
        let from = to - ms(&sq.range);
        let step = sq.step.as_ref().map(ms).unwrap_or(self.interval_ms);
        if step <= 0 {
            return Err(PromqlError::eval("a subquery step must be positive"));
        }
        // The first multiple of the step at or after `from`.
        let mut t = from.div_euclid(step) * step;
        if t < from {
            t += step;
        }
        let mut series: Vec<(Labels, Vec<Point>)> = Vec::new();
        let mut index: std::collections::HashMap<Labels, usize> = Default::default();
        while t <= to {
            for s in self.vector(&sq.expr, t)? {
                let i = *index.entry(s.labels.clone()).or_insert_with(|| {
                    series.push((s.labels, Vec::new()));
                    series.len() - 1
                });
                series[i].1.push((t, s.value));
            }
            t += step;
        }
        let series = series
            .into_iter()
            .map(|(labels, points)| Range {
                labels: Cow::Owned(labels),
                points: Cow::Owned(points),
                resets: None,
            })
            .collect();
        Ok(Window { series, from, to })
    }
}
