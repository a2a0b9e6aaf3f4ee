//! A store's answer read by column name and type, as `slo report`, the
//! detector's start and the probable cause read `metric_samples` and
//! `finding_events`; a column missing or of another type names the table.

use arrow::array::{
    Array, AsArray, Float64Array, GenericListArray, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{Float64Type, Int64Type};

pub(super) struct Answer<'a> {
    pub batch: &'a RecordBatch,
    pub table: &'static str,
}

impl<'a> Answer<'a> {
    fn column(&self, name: &str) -> Result<&'a dyn Array, String> {
        self.batch
            .column_by_name(name)
            .map(|c| c.as_ref())
            .ok_or_else(|| format!("the {} answer has no column {name}", self.table))
    }

    fn wrong(&self, name: &str, want: &str) -> String {
        format!("{}.{name} is not {want}", self.table)
    }

    pub fn text(&self, name: &str) -> Result<&'a StringArray, String> {
        self.column(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| self.wrong(name, "text"))
    }

    pub fn int64(&self, name: &str) -> Result<&'a Int64Array, String> {
        self.column(name)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| self.wrong(name, "Int64"))
    }

    pub fn float64(&self, name: &str) -> Result<&'a Float64Array, String> {
        self.column(name)?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| self.wrong(name, "Float64"))
    }

    /// Two parallel list columns (`label_keys`/`label_values`,
    /// `tag_keys`/`tag_values`) as the pairs of each row.
    pub fn pairs(&self, keys: &str, values: &str) -> Result<Pairs<'a>, String> {
        let list = |name: &str| {
            self.column(name)?
                .as_list_opt::<i32>()
                .ok_or_else(|| self.wrong(name, "a list"))
        };
        Ok(Pairs {
            keys: list(keys)?,
            values: list(values)?,
        })
    }
}

pub(super) struct Pairs<'a> {
    keys: &'a GenericListArray<i32>,
    values: &'a GenericListArray<i32>,
}

impl Pairs<'_> {
    /// Row `i`'s pairs (none where the lists are null).
    pub fn at(&self, i: usize) -> Vec<(String, String)> {
        if self.keys.is_null(i) || self.values.is_null(i) {
            return Vec::new();
        }
        let (k, v) = (self.keys.value(i), self.values.value(i));
        let (k, v) = (k.as_string::<i32>(), v.as_string::<i32>());
        (0..k.len().min(v.len()))
            .map(|j| (k.value(j).to_string(), v.value(j).to_string()))
            .collect()
    }
}
