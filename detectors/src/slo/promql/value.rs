//! What an expression evaluates to: scalars, strings, instant vectors
//! and range vectors (with the window rate's extrapolation needs), and the
//! arguments a function call gets.

use std::borrow::Cow;

use super::series::{Labels, Point};

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

/// One series of a range vector. A selector's ranges borrow the stored
/// points and know their counter resets; a subquery's are built.
#[derive(Debug, Clone, PartialEq)]
pub struct Range<'a> {
    pub labels: Cow<'a, Labels>,
    pub points: Cow<'a, [Point]>,
    /// Counter resets between the points, when already counted.
    pub resets: Option<u32>,
}

impl Range<'_> {
    pub fn into_owned(self) -> Range<'static> {
        Range {
            labels: Cow::Owned(self.labels.into_owned()),
            points: Cow::Owned(self.points.into_owned()),
            resets: self.resets,
        }
    }
}

/// A range vector with the window it was selected over, which rate's
/// extrapolation needs.
pub struct Window<'a> {
    pub series: Vec<Range<'a>>,
    /// `[from, to]`, milliseconds.
    pub from: i64,
    pub to: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    String(String),
    Vector(Vec<Sample>),
    Matrix(Vec<Range<'static>>),
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
pub enum Arg<'a> {
    Value(Value),
    Window(Window<'a>),
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Scalar(_) => "scalar",
        Value::String(_) => "string",
        Value::Vector(_) => "instant vector",
        Value::Matrix(_) => "range vector",
    }
}
