//! Binary operators, as Prometheus 2.42's VectorBinop, VectorscalarBinop
//! and the set operators: arithmetic drops the metric name, a comparison
//! filters (or, with `bool`, answers 0/1), vectors match on every label
//! but the name unless `on`/`ignoring` say otherwise, and `group_left` /
//! `group_right` allow many-to-one matches.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::PromqlError;
use super::series::Labels;
use super::value::{Sample, Value, kind};

fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=")
}

/// `lhs op rhs`: the value and whether a comparison holds.
fn apply(op: &str, l: f64, r: f64) -> Result<(f64, bool), PromqlError> {
    Ok(match op {
        "+" => (l + r, true),
        "-" => (l - r, true),
        "*" => (l * r, true),
        "/" => (l / r, true),
        "%" => (l % r, true),
        "^" => (l.powf(r), true),
        "atan2" => (l.atan2(r), true),
        "==" => (l, l == r),
        "!=" => (l, l != r),
        ">" => (l, l > r),
        "<" => (l, l < r),
        ">=" => (l, l >= r),
        "<=" => (l, l <= r),
        other => return Err(PromqlError::unsupported(format!("operator {other}"))),
    })
}

pub fn binary(b: &BinaryExpr, lhs: Value, rhs: Value) -> Result<Value, PromqlError> {
    let op = b.op.to_string();
    let return_bool = b.return_bool();
    match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            let (v, keep) = apply(&op, l, r)?;
            Ok(Value::Scalar(if is_comparison(&op) {
                f64::from(u8::from(keep))
            } else {
                v
            }))
        }
        (Value::Vector(v), Value::Scalar(s)) => vector_scalar(&op, v, s, false, return_bool),
        (Value::Scalar(s), Value::Vector(v)) => vector_scalar(&op, v, s, true, return_bool),
        (Value::Vector(l), Value::Vector(r)) => match op.as_str() {
            "and" | "or" | "unless" => Ok(Value::Vector(set(&op, l, r, b))),
            _ => vector_vector(&op, l, r, b, return_bool),
        },
        (l, r) => Err(PromqlError::eval(format!(
            "operator {op} between {} and {}",
            kind(&l),
            kind(&r)
        ))),
    }
}

fn vector_scalar(
    op: &str,
    v: Vec<Sample>,
    s: f64,
    scalar_left: bool,
    return_bool: bool,
) -> Result<Value, PromqlError> {
    let mut out = Vec::with_capacity(v.len());
    for mut e in v {
        let (l, r) = if scalar_left {
            (s, e.value)
        } else {
            (e.value, s)
        };
        let (mut value, mut keep) = apply(op, l, r)?;
        // A comparison keeps the vector's value, whichever side it is on.
        if is_comparison(op) && scalar_left {
            value = r;
        }
        if return_bool {
            value = f64::from(u8::from(keep));
            keep = true;
        }
        if keep {
            if !is_comparison(op) || return_bool {
                e.labels = e.labels.without_name();
            }
            e.value = value;
            out.push(e);
        }
    }
    Ok(Value::Vector(out))
}

/// The labels two sides are matched on.
fn signature(labels: &Labels, matching: Option<&LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(on)) => labels.keep(&on.labels),
        Some(LabelModifier::Exclude(ignoring)) => labels.without(&ignoring.labels),
        None => labels.without(&[]),
    }
}

fn set(op: &str, l: Vec<Sample>, r: Vec<Sample>, b: &BinaryExpr) -> Vec<Sample> {
    let matching = b.modifier.as_ref().and_then(|m| m.matching.as_ref());
    match op {
        "and" => {
            if l.is_empty() || r.is_empty() {
                return Vec::new();
            }
            let right: HashSet<Labels> = r.iter().map(|s| signature(&s.labels, matching)).collect();
            l.into_iter()
                .filter(|s| right.contains(&signature(&s.labels, matching)))
                .collect()
        }
        "or" => {
            let left: HashSet<Labels> = l.iter().map(|s| signature(&s.labels, matching)).collect();
            let mut out = l;
            out.extend(
                r.into_iter()
                    .filter(|s| !left.contains(&signature(&s.labels, matching))),
            );
            out
        }
        _ => {
            let right: HashSet<Labels> = r.iter().map(|s| signature(&s.labels, matching)).collect();
            l.into_iter()
                .filter(|s| !right.contains(&signature(&s.labels, matching)))
                .collect()
        }
    }
}

fn vector_vector(
    op: &str,
    l: Vec<Sample>,
    r: Vec<Sample>,
    b: &BinaryExpr,
    return_bool: bool,
) -> Result<Value, PromqlError> {
    let modifier = b.modifier.as_ref();
    let matching = modifier.and_then(|m| m.matching.as_ref());
    let card = modifier
        .map(|m| m.card.clone())
        .unwrap_or(VectorMatchCardinality::OneToOne);
    // One-to-many is many-to-one with the sides swapped.
    let (many, one, swapped) = match card {
        VectorMatchCardinality::OneToMany(_) => (r, l, true),
        _ => (l, r, false),
    };
    let mut one_side: HashMap<Labels, Sample> = HashMap::new();
    for s in one {
        let sig = signature(&s.labels, matching);
        if one_side.contains_key(&sig) {
            return Err(PromqlError::eval(format!(
                "found duplicate series for the match group {sig} on the {} hand-side of the operation; \
                 many-to-many matching not allowed: matching labels must be unique on one side",
                if swapped { "left" } else { "right" }
            )));
        }
        one_side.insert(sig, s);
    }
    let include: &[String] = card.labels().map(|l| l.labels.as_slice()).unwrap_or(&[]);
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    let mut matched: HashSet<Labels> = HashSet::new();
    let mut out = Vec::new();
    for s in many {
        let sig = signature(&s.labels, matching);
        let Some(other) = one_side.get(&sig) else {
            continue;
        };
        let (lv, rv) = if swapped {
            (other.value, s.value)
        } else {
            (s.value, other.value)
        };
        let (mut value, mut keep) = apply(op, lv, rv)?;
        if return_bool {
            value = f64::from(u8::from(keep));
            keep = true;
        }
        if !keep {
            continue;
        }
        let mut labels = s.labels.clone();
        if !is_comparison(op) || return_bool {
            labels = labels.without_name();
        }
        if one_to_one {
            labels = match matching {
                Some(LabelModifier::Include(on)) => labels.keep(&on.labels),
                Some(LabelModifier::Exclude(ignoring)) => {
                    let mut kept = labels.without(&ignoring.labels);
                    if let Some(n) = labels.name() {
                        kept.set(driftline_pipeline::telemetry::METRIC_NAME_LABEL, n);
                    }
                    kept
                }
                None => labels,
            };
            if !matched.insert(sig.clone()) {
                return Err(PromqlError::eval(format!(
                    "multiple matches for labels {sig}: many-to-one matching must be explicit (group_left/group_right)"
                )));
            }
        } else {
            for name in include {
                labels.set(name, other.labels.get(name).unwrap_or(""));
            }
            if !matched.insert(labels.clone()) {
                return Err(PromqlError::eval(format!(
                    "multiple matches for labels {labels}: grouping labels must ensure unique matches"
                )));
            }
        }
        out.push(Sample { labels, value });
    }
    Ok(Value::Vector(out))
}
