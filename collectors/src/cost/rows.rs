//! Rows of `focus_data_table`, built column by column. A row is checked
//! whole before any of it is appended, so a bad row leaves no trace in the
//! table and goes to the dead letters with its reason.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, ListBuilder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::record_batch::RecordBatch;

use super::tags::{parse_tags, tags_json};
use driftline_pipeline::focus::{FOCUS_COLUMNS, Kind, schema};

/// One row as text, before it is checked: a value per FOCUS column (null
/// when absent or `NULL`), the raw `Tags`, and the other columns.
#[derive(Default)]
pub struct RawRow<'a> {
    pub focus: Vec<Option<&'a str>>,
    pub tags: Option<&'a str>,
    pub extra: Vec<(&'a str, &'a str)>,
}

impl RawRow<'_> {
    pub fn new() -> Self {
        Self {
            focus: vec![None; FOCUS_COLUMNS.len()],
            tags: None,
            extra: Vec::new(),
        }
    }
}

/// A checked value.
enum Value {
    Null,
    Text(String),
    Decimal(f64),
    Millis(i64),
}

/// What a cell's text means: `NULL` and the empty string are null.
pub fn cell(text: &str) -> Option<&str> {
    let t = text.trim();
    (!t.is_empty() && t != "NULL" && t != "null").then_some(text)
}

fn check(kind: Kind, name: &str, text: &str) -> Result<Value, String> {
    let t = text.trim();
    Ok(match kind {
        Kind::Text | Kind::Json => Value::Text(text.to_string()),
        Kind::Decimal => match t.parse::<f64>() {
            Ok(v) if v.is_finite() => Value::Decimal(v),
            _ => return Err(format!("{name}: {t:?} is not a decimal number")),
        },
        Kind::DateTime => match driftline_pipeline::parse_iso8601_ms(t) {
            Some(ms) => Value::Millis(ms),
            None => return Err(format!("{name}: {t:?} is not a date/time")),
        },
    })
}

enum Column {
    Text(StringBuilder),
    Decimal(Float64Builder),
    DateTime(TimestampMillisecondBuilder),
}

/// Builds one batch of `focus_data_table`.
pub struct Rows {
    columns: Vec<Column>,
    tags: StringBuilder,
    tag_keys: ListBuilder<StringBuilder>,
    tag_values: ListBuilder<StringBuilder>,
    extra: StringBuilder,
    file: StringBuilder,
    line: Int64Builder,
    len: usize,
}

impl Default for Rows {
    fn default() -> Self {
        Self::new()
    }
}

impl Rows {
    pub fn new() -> Self {
        let columns = FOCUS_COLUMNS
            .iter()
            .map(|(_, kind)| match kind {
                Kind::Text | Kind::Json => Column::Text(StringBuilder::new()),
                Kind::Decimal => Column::Decimal(Float64Builder::new()),
                Kind::DateTime => Column::DateTime(
                    TimestampMillisecondBuilder::new()
                        .with_timezone(driftline_pipeline::focus::UTC),
                ),
            })
            .collect();
        Self {
            columns,
            tags: StringBuilder::new(),
            tag_keys: ListBuilder::new(StringBuilder::new()),
            tag_values: ListBuilder::new(StringBuilder::new()),
            extra: StringBuilder::new(),
            file: StringBuilder::new(),
            line: Int64Builder::new(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks a row and appends it; `Err` says why it was not.
    pub fn push(&mut self, row: &RawRow<'_>, file: &str, line: u64) -> Result<(), String> {
        let values = FOCUS_COLUMNS
            .iter()
            .zip(&row.focus)
            .map(|((name, kind), v)| match v.and_then(cell) {
                None => Ok(Value::Null),
                Some(text) => check(*kind, name, text),
            })
            .collect::<Result<Vec<Value>, String>>()?;
        let tags = match row.tags.and_then(cell) {
            Some(t) => Some(parse_tags(t)?),
            None => None,
        };
        for (column, value) in self.columns.iter_mut().zip(values) {
            match (column, value) {
                (Column::Text(b), Value::Text(s)) => b.append_value(s),
                (Column::Decimal(b), Value::Decimal(v)) => b.append_value(v),
                (Column::DateTime(b), Value::Millis(ms)) => b.append_value(ms),
                (Column::Text(b), _) => b.append_null(),
                (Column::Decimal(b), _) => b.append_null(),
                (Column::DateTime(b), _) => b.append_null(),
            }
        }
        match &tags {
            Some(t) => self.tags.append_value(tags_json(t)),
            None => self.tags.append_null(),
        }
        let tags = tags.unwrap_or_default();
        for (k, v) in &tags {
            self.tag_keys.values().append_value(k);
            self.tag_values.values().append_value(v);
        }
        self.tag_keys.append(true);
        self.tag_values.append(true);
        if row.extra.is_empty() {
            self.extra.append_null();
        } else {
            let m: serde_json::Map<String, serde_json::Value> = row
                .extra
                .iter()
                .filter_map(|(k, v)| Some((k.trim().to_string(), cell(v)?.into())))
                .collect();
            self.extra
                .append_value(serde_json::Value::Object(m).to_string());
        }
        self.file.append_value(file);
        self.line.append_value(line as i64);
        self.len += 1;
        Ok(())
    }

    /// The rows so far as one batch; the builder starts over.
    pub fn finish(&mut self) -> Result<RecordBatch, arrow::error::ArrowError> {
        let mut arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| -> ArrayRef {
                match c {
                    Column::Text(b) => Arc::new(b.finish()),
                    Column::Decimal(b) => Arc::new(b.finish()),
                    Column::DateTime(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        arrays.push(Arc::new(self.tags.finish()));
        arrays.push(Arc::new(self.tag_keys.finish()));
        arrays.push(Arc::new(self.tag_values.finish()));
        arrays.push(Arc::new(self.extra.finish()));
        arrays.push(Arc::new(self.file.finish()));
        arrays.push(Arc::new(self.line.finish()));
        self.len = 0;
        RecordBatch::try_new(schema(), arrays)
    }
}
