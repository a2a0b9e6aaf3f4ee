//! sum, count, min, max, avg (and group, stddev, stdvar) with `by` and
//! `without`, as Prometheus 2.42 aggregates: `without` also drops the
//! metric name, `by` keeps only the labels named.

use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::PromqlError;
use super::series::Labels;
use super::value::{Sample, Value};

pub const SUPPORTED: &[&str] = &[
    "sum", "count", "min", "max", "avg", "group", "stddev", "stdvar",
];

struct Group {
    labels: Labels,
    value: f64,
    mean: f64,
    count: f64,
}

pub fn aggregate(a: &AggregateExpr, input: Vec<Sample>) -> Result<Value, PromqlError> {
    let op = a.op.to_string();
    if !SUPPORTED.contains(&op.as_str()) {
        return Err(PromqlError::unsupported(format!("aggregation {op}")));
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut index: foldhash::HashMap<Labels, usize> = Default::default();
    for s in input {
        let labels = match &a.modifier {
            Some(LabelModifier::Include(l)) => s.labels.keep(&l.labels),
            Some(LabelModifier::Exclude(l)) => s.labels.without(&l.labels),
            None => Labels::default(),
        };
        let v = s.value;
        let Some(&i) = index.get(&labels) else {
            index.insert(labels.clone(), groups.len());
            groups.push(Group {
                labels,
                value: v,
                mean: v,
                count: 1.0,
            });
            if op == "stddev" || op == "stdvar" {
                let g = groups.last_mut().expect("just pushed");
                g.value = 0.0;
            }
            continue;
        };
        let g = &mut groups[i];
        match op.as_str() {
            "sum" => g.value += v,
            "avg" => {
                g.count += 1.0;
                if g.mean.is_infinite() {
                    if v.is_infinite() && (g.mean > 0.0) == (v > 0.0) {
                        continue;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        continue;
                    }
                }
                g.mean += v / g.count - g.mean / g.count;
            }
            "max" if g.value < v || g.value.is_nan() => g.value = v,
            "min" if g.value > v || g.value.is_nan() => g.value = v,
            "count" => g.count += 1.0,
            "stddev" | "stdvar" => {
                g.count += 1.0;
                let delta = v - g.mean;
                g.mean += delta / g.count;
                g.value += delta * (v - g.mean);
            }
            _ => {}
        }
    }
    Ok(Value::Vector(
        groups
            .into_iter()
            .map(|g| Sample {
                value: match op.as_str() {
                    "avg" => g.mean,
                    "count" => g.count,
                    "group" => 1.0,
                    "stdvar" => g.value / g.count,
                    "stddev" => (g.value / g.count).sqrt(),
                    _ => g.value,
                },
                labels: g.labels,
            })
            .collect(),
    ))
}
