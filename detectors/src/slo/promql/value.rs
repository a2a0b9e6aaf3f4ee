//! What an expression evaluates to: scalars, strings, instant vectors
//! and range vectors (with the window rate's extrapolation needs), and the
//! arguments a function call gets.

use super::series::{Labels, Point};

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

/// One series of a range vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub labels: Labels,
    pub points: Vec<Point>,
}

/// A range vector with the window it was selected over, which rate's
/// extrapolation needs.
pub struct Window {
    pub series: Vec<Range>,
    /// `[from, to]`, milliseconds.
    pub from: i64,
    pub to: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    String(String),
    Vector(Vec<Sample>),
    Matrix(Vec<Range>),
}

impl Value {
    /// Each element's labels (without the metric name) and value; a
    /// scalar is one element without labels.
    pub fn by_labels(self) -> Vec<(Labels, f64)> {
        match self {
            Value::Vector(v) => v
                .into_iter()
                .map(|s| (s.labels.without_name(), s.value))
                .collect(),
            Value::Scalar(v) => vec![(Labels::default(), v)],
            Value::String(_) | Value::Matrix(_) => Vec::new(),
        }
    }
}

/// A function's argument, evaluated as its parameter's type asks: a
/// range vector with its window, or any other value.
pub enum Arg {
    Value(Value),
    Window(Window),
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Scalar(_) => "scalar",
        Value::String(_) => "string",
        Value::Vector(_) => "instant vector",
        Value::Matrix(_) => "range vector",
    }
}
