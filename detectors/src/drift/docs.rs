//! The documents the diff reads, kept out of the join. A row's attributes
//! (declared) and configuration (observed) are most of its bytes, and a
//! hash join copies every column it carries: so the registered tables
//! carry a reference (`attributes_ref`, `configuration_ref`: batch << 32 |
//! row) and the diff and the finding read the text where it already lies.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::DetectorError;

/// The text columns of the registered batches, by batch.
#[derive(Debug, Default)]
pub(super) struct Docs {
    attributes: Vec<StringArray>,
    configuration: Vec<StringArray>,
    supplementary: Vec<StringArray>,
}

fn at(arrays: &[StringArray], r: u64) -> Option<&str> {
    let a = arrays.get((r >> 32) as usize)?;
    let i = (r & 0xffff_ffff) as usize;
    (i < a.len() && a.is_valid(i)).then(|| a.value(i))
}

impl Docs {
    pub(super) fn attributes(&self, r: u64) -> Option<&str> {
        at(&self.attributes, r)
    }

    pub(super) fn configuration(&self, r: u64) -> Option<&str> {
        at(&self.configuration, r)
    }

    pub(super) fn supplementary(&self, r: u64) -> Option<&str> {
        at(&self.supplementary, r)
    }
}

/// Columns of the snapshot schemas the join reads; the rest stay out.
/// The resource key is not among them: it is `aws/{account}/{region}/{type
/// id}` (`join_key`), which the join writes for its own rows, so a table of
/// a million rows does not hold 70 MB of it a side.
pub(super) const DECLARED_JOINED: &[&str] = &[
    "type_id", "account", "region", "address", "tf_type", "id", "deposed", "source",
];
pub(super) const OBSERVED_JOINED: &[&str] = &[
    "type_id",
    "account",
    "region",
    "resource_type",
    "resource_id",
    "resource_name",
    "arn",
    "status",
    "tags",
    "summary_only",
    "source",
];

/// A row's compared values' digest (`digest.rs`), where the batch was
/// built with one; null otherwise, and the pair is diffed in full.
pub(super) const COMPARED_DIGEST: &str = "compared_digest";

/// `b` with only the `joined` columns, the digest and a reference column
/// `name`; its
/// `texts` columns go to `out`, one array per batch.
fn split(
    b: &RecordBatch,
    joined: &[&str],
    name: &str,
    texts: &mut [(&str, &mut Vec<StringArray>)],
) -> Result<RecordBatch, DetectorError> {
    let index = texts.first().map(|(_, v)| v.len()).unwrap_or(0) as u64;
    for (column, out) in texts.iter_mut() {
        let a = b
            .column_by_name(column)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| {
                DetectorError::Internal(format!("snapshot batch has no text column {column}"))
            })?;
        out.push(a.clone());
    }
    let mut fields = Vec::with_capacity(joined.len() + 1);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(joined.len() + 1);
    let schema = b.schema();
    for c in joined {
        let (i, f) = schema
            .column_with_name(c)
            .ok_or_else(|| DetectorError::Internal(format!("snapshot batch has no column {c}")))?;
        fields.push(f.clone());
        columns.push(b.column(i).clone());
    }
    fields.push(Field::new(COMPARED_DIGEST, DataType::UInt64, true));
    columns.push(match b.column_by_name(COMPARED_DIGEST) {
        Some(c) => c.clone(),
        None => arrow::array::new_null_array(&DataType::UInt64, b.num_rows()),
    });
    fields.push(Field::new(name, DataType::UInt64, false));
    columns.push(Arc::new(UInt64Array::from_iter_values(
        (0..b.num_rows() as u64).map(|i| index << 32 | i),
    )));
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// The comparable rows' batches split into the joined columns and the
/// documents: (the documents, `declared`'s batches, `observed`'s).
pub(super) fn split_documents(
    declared: Vec<RecordBatch>,
    observed: Vec<RecordBatch>,
) -> Result<(Docs, Vec<RecordBatch>, Vec<RecordBatch>), DetectorError> {
    let mut docs = Docs::default();
    let mut slim_d = Vec::with_capacity(declared.len());
    for b in declared.iter().filter(|b| b.num_rows() > 0) {
        slim_d.push(split(
            b,
            DECLARED_JOINED,
            "attributes_ref",
            &mut [("attributes", &mut docs.attributes)],
        )?);
    }
    let mut slim_o = Vec::with_capacity(observed.len());
    for b in observed.iter().filter(|b| b.num_rows() > 0) {
        slim_o.push(split(
            b,
            OBSERVED_JOINED,
            "configuration_ref",
            &mut [
                ("configuration", &mut docs.configuration),
                ("supplementary_configuration", &mut docs.supplementary),
            ],
        )?);
    }
    Ok((docs, slim_d, slim_o))
}

fn slim_schema(full: &Schema, joined: &[&str], name: &str) -> Arc<Schema> {
    let mut fields: Vec<Field> = joined
        .iter()
        .filter_map(|c| full.field_with_name(c).ok().cloned())
        .collect();
    fields.push(Field::new(COMPARED_DIGEST, DataType::UInt64, true));
    fields.push(Field::new(name, DataType::UInt64, false));
    Arc::new(Schema::new(fields))
}

pub(super) fn declared_schema() -> Arc<Schema> {
    slim_schema(
        &driftline_pipeline::schema::DECLARED_SCHEMA,
        DECLARED_JOINED,
        "attributes_ref",
    )
}

pub(super) fn observed_schema() -> Arc<Schema> {
    slim_schema(
        &driftline_pipeline::schema::OBSERVED_SCHEMA,
        OBSERVED_JOINED,
        "configuration_ref",
    )
}
