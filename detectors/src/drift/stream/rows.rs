//! The snapshots the streaming detector keeps: one owned, compact row per
//! resource and side, not a slice of the batch it was decoded in. A slice
//! keeps its whole batch alive (every document of every message in the
//! poll) for as long as any one of its rows is the latest; a row here holds
//! only itself, with its documents cut to what the comparison reads.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::row::{OwnedRow, RowConverter, SortField};
use driftline_pipeline::schema::{DECLARED_SCHEMA, OBSERVED_SCHEMA};

use super::{Side, col};
use crate::drift::projection::DriftProjection;
use crate::mappings::Mappings;

/// One kept snapshot: its columns in Arrow's row format, and what deciding
/// whether its group is frozen reads.
pub(super) struct Row {
    data: OwnedRow,
    pub(super) account: Box<str>,
    pub(super) region: Box<str>,
    /// The AWS Config type (declared rows: the type in their `type_id`).
    pub(super) resource_type: Box<str>,
    /// AWS Config says it does not record this resource.
    pub(super) not_recorded: bool,
}

/// Turns decoded rows into kept rows and kept rows back into batches.
pub(super) struct Rows {
    projection: DriftProjection,
    declared: RowConverter,
    observed: RowConverter,
    /// The last decoded batch, projected and encoded whole: a poll's
    /// messages arrive one by one but are converted column by column.
    encoded: Option<(Side, RecordBatch, arrow::row::Rows)>,
}

fn converter(schema: &SchemaRef) -> RowConverter {
    let fields = schema
        .fields()
        .iter()
        .map(|f| SortField::new(f.data_type().clone()))
        .collect();
    RowConverter::new(fields).expect("the snapshot schemas hold row-encodable types")
}

fn text<'a>(batch: &'a RecordBatch, name: &str, index: usize) -> &'a str {
    col(batch, name)
        .filter(|c| c.is_valid(index))
        .map_or("", |c| c.value(index))
}

impl Rows {
    pub(super) fn new(mappings: &Mappings) -> Self {
        Self {
            projection: DriftProjection::new(mappings),
            declared: converter(&DECLARED_SCHEMA),
            observed: converter(&OBSERVED_SCHEMA),
            encoded: None,
        }
    }

    fn side(&self, side: Side) -> (&RowConverter, &SchemaRef) {
        match side {
            Side::Declared => (&self.declared, &DECLARED_SCHEMA),
            Side::Observed => (&self.observed, &OBSERVED_SCHEMA),
        }
    }

    /// `batch`'s columns with its documents cut to what is compared.
    fn projected(&self, side: Side, batch: &RecordBatch) -> Vec<ArrayRef> {
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        let (_, schema) = self.side(side);
        let mut cut =
            |name: &str, type_column: &str, project: &dyn Fn(&str, &str) -> Option<String>| {
                let (Ok(i), Some(docs), Some(types)) = (
                    schema.index_of(name),
                    col(batch, name),
                    col(batch, type_column),
                ) else {
                    return;
                };
                let cut: StringArray = docs
                    .iter()
                    .zip(types.iter())
                    .map(|(doc, ty)| {
                        doc.map(|d| project(ty.unwrap_or(""), d).unwrap_or_else(|| d.to_string()))
                    })
                    .collect();
                columns[i] = Arc::new(cut);
            };
        let p = &self.projection;
        match side {
            Side::Declared => cut("attributes", "tf_type", &|ty, t| p.attributes_text(ty, t)),
            Side::Observed => {
                cut("configuration", "resource_type", &|ty, t| {
                    p.configuration_text(ty, t)
                });
                cut("supplementary_configuration", "resource_type", &|ty, t| {
                    p.supplementary_text(ty, t)
                });
            }
        }
        columns
    }

    /// Row `index` of `batch` (decoded against `side`'s schema), kept.
    pub(super) fn keep(
        &mut self,
        side: Side,
        batch: &RecordBatch,
        index: usize,
    ) -> Result<Row, ArrowError> {
        let same = |(s, b, _): &(Side, RecordBatch, arrow::row::Rows)| {
            *s == side
                && b.num_rows() == batch.num_rows()
                && b.num_columns() > 0
                && batch.num_columns() > 0
                && Arc::ptr_eq(b.column(0), batch.column(0))
        };
        if !self.encoded.as_ref().is_some_and(same) {
            let columns = self.projected(side, batch);
            let (converter, _) = self.side(side);
            let encoded = converter.convert_columns(&columns)?;
            self.encoded = Some((side, batch.clone(), encoded));
        }
        let (_, _, encoded) = self.encoded.as_ref().expect("encoded above");
        let kept_type = match side {
            Side::Declared => {
                let tid = text(batch, "type_id", index);
                tid.split_once('/').map_or(tid, |(t, _)| t)
            }
            Side::Observed => text(batch, "resource_type", index),
        };
        Ok(Row {
            data: encoded.row(index).owned(),
            account: text(batch, "account", index).into(),
            region: text(batch, "region", index).into(),
            resource_type: kept_type.into(),
            not_recorded: side == Side::Observed
                && text(batch, "status", index) == "ResourceNotRecorded",
        })
    }

    /// Lets the last decoded batch go (its poll is applied).
    pub(super) fn release(&mut self) {
        self.encoded = None;
    }

    /// The rows as one batch of `side`'s schema.
    pub(super) fn batch(&self, side: Side, rows: &[&Row]) -> Result<RecordBatch, ArrowError> {
        let (converter, schema) = self.side(side);
        if rows.is_empty() {
            return Ok(RecordBatch::new_empty(schema.clone()));
        }
        let columns = converter.convert_rows(rows.iter().map(|r| r.data.row()))?;
        RecordBatch::try_new(schema.clone(), columns)
    }
}

/// One side's snapshots of a resource, by record key, in key order. Nearly
/// always one: a vector of exactly that, where a map would allocate a
/// node for eleven per resource.
#[derive(Default)]
pub(super) struct Snapshots(Vec<(Box<str>, Row)>);

impl Snapshots {
    pub(super) fn insert(&mut self, key: &str, row: Row) {
        match self.0.binary_search_by(|(k, _)| (**k).cmp(key)) {
            Ok(i) => self.0[i].1 = row,
            Err(i) => {
                self.0.reserve_exact(1);
                self.0.insert(i, (key.into(), row));
            }
        }
    }

    pub(super) fn remove(&mut self, key: &str) {
        if let Ok(i) = self.0.binary_search_by(|(k, _)| (**k).cmp(key)) {
            self.0.remove(i);
        }
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Row> {
        self.0.iter().map(|(_, r)| r)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
