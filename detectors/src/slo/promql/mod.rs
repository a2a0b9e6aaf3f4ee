//! The part of PromQL that SLI queries use, parsed with `promql-parser`
//! and evaluated over series held in memory (`SeriesSet`), following
//! Prometheus 2.42's semantics (the oracle tests compare with promtool).
//!
//! `Query::parse` refuses, up front, anything the evaluator does not
//! implement, so a spec that loads is a spec that evaluates.

mod aggregate;
mod binary;
mod eval;
mod functions;
mod labels;
mod series;
mod value;

pub use eval::Evaluator;
pub use series::{Labels, Point, Series, SeriesSet};
pub use value::{Range, Sample, Value};

use promql_parser::parser::Expr;

/// Prometheus's default lookback for instant selectors.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromqlError {
    #[error("{0}")]
    Parse(String),
    #[error("{0} is not supported")]
    Unsupported(String),
    #[error("{0}")]
    Eval(String),
}

impl PromqlError {
    pub(crate) fn unsupported(what: impl Into<String>) -> Self {
        Self::Unsupported(what.into())
    }

    pub(crate) fn eval(reason: impl Into<String>) -> Self {
        Self::Eval(reason.into())
    }
}

/// A parsed query and its text.
#[derive(Debug, Clone)]
pub struct Query {
    pub text: String,
    pub expr: Expr,
}

impl Query {
    pub fn parse(text: &str) -> Result<Self, PromqlError> {
        let expr = promql_parser::parser::parse(text).map_err(PromqlError::Parse)?;
        check(&expr)?;
        Ok(Self {
            text: text.to_string(),
            expr,
        })
    }

    /// Splits the query by `labels`: every aggregation at its top (not
    /// inside a function or another aggregation) keeps them as well, so
    /// `sum(rate(x[5m])) / sum(rate(y[5m]))` answers one ratio per value.
    /// An aggregation `without` labels already keeps them.
    pub fn group_by(mut self, labels: &[String]) -> Self {
        fn walk(e: &mut Expr, labels: &[String]) {
            use promql_parser::label::Labels as Names;
            use promql_parser::parser::LabelModifier;
            match e {
                Expr::Aggregate(a) => match &mut a.modifier {
                    None => {
                        a.modifier = Some(LabelModifier::Include(Names {
                            labels: labels.to_vec(),
                        }))
                    }
                    Some(LabelModifier::Include(names)) => {
                        for l in labels {
                            if !names.labels.contains(l) {
                                names.labels.push(l.clone());
                            }
                        }
                    }
                    Some(LabelModifier::Exclude(_)) => {}
                },
                Expr::Binary(b) => {
                    walk(&mut b.lhs, labels);
                    walk(&mut b.rhs, labels);
                }
                Expr::Paren(p) => walk(&mut p.expr, labels),
                Expr::Unary(u) => walk(&mut u.expr, labels),
                _ => {}
            }
        }
        if !labels.is_empty() {
            walk(&mut self.expr, labels);
            self.text = self.expr.to_string();
        }
        self
    }

    /// The metric names the query selects, or `None` when a selector
    /// names none (it may select any metric).
    pub fn metric_names(&self) -> Option<Vec<String>> {
        fn walk(e: &Expr, out: &mut Vec<String>) -> bool {
            use promql_parser::label::MatchOp;
            let selector = |vs: &promql_parser::parser::VectorSelector, out: &mut Vec<String>| {
                let name = vs.name.clone().or_else(|| {
                    vs.matchers
                        .matchers
                        .iter()
                        .find(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal))
                        .map(|m| m.value.clone())
                });
                match name {
                    Some(n) => {
                        out.push(n);
                        true
                    }
                    None => false,
                }
            };
            match e {
                Expr::VectorSelector(vs) => selector(vs, out),
                Expr::MatrixSelector(m) => selector(&m.vs, out),
                Expr::Aggregate(a) => walk(&a.expr, out),
                Expr::Unary(u) => walk(&u.expr, out),
                Expr::Binary(b) => walk(&b.lhs, out) & walk(&b.rhs, out),
                Expr::Paren(p) => walk(&p.expr, out),
                Expr::Subquery(s) => walk(&s.expr, out),
                Expr::Call(c) => c.args.args.iter().all(|a| walk(a, out)),
                Expr::NumberLiteral(_) | Expr::StringLiteral(_) => true,
                Expr::Extension(_) => false,
            }
        }
        let mut out = Vec::new();
        walk(&self.expr, &mut out).then(|| {
            out.sort();
            out.dedup();
            out
        })
    }

    /// The query's value at `at` (milliseconds).
    pub fn eval(&self, ev: &Evaluator, at: i64) -> Result<Value, PromqlError> {
        ev.eval(&self.expr, at)
    }
}

/// Refuses what `Evaluator` does not implement.
fn check(e: &Expr) -> Result<(), PromqlError> {
    match e {
        Expr::Aggregate(a) => {
            let op = a.op.to_string();
            if !aggregate::SUPPORTED.contains(&op.as_str()) {
                return Err(PromqlError::unsupported(format!("aggregation {op}")));
            }
            check(&a.expr)
        }
        Expr::Unary(u) => check(&u.expr),
        Expr::Binary(b) => {
            check(&b.lhs)?;
            check(&b.rhs)
        }
        Expr::Paren(p) => check(&p.expr),
        Expr::Subquery(s) => check(&s.expr),
        Expr::Call(c) => {
            if !functions::SUPPORTED.contains(&c.func.name) {
                return Err(PromqlError::unsupported(format!(
                    "function {}()",
                    c.func.name
                )));
            }
            c.args.args.iter().try_for_each(|a| check(a))
        }
        Expr::Extension(_) => Err(PromqlError::unsupported("extension expressions")),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests;
