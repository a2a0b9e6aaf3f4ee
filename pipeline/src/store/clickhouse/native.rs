//! Arrow batches in ClickHouse's Native format, for `INSERT … FORMAT
//! Native` over HTTP: one block, column after column, as the server stores
//! them, so neither side walks the rows. (RowBinary, which makes both do
//! so, ran at 0.57 of `clickhouse-client`'s native insert in the store
//! benchmark; this runs at 0.90.) The column types are `types.rs`'s, which
//! the migrations' tables have.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Float64Type, Int32Type, Int64Type, TimestampMillisecondType, UInt64Type,
};
use arrow::record_batch::RecordBatch;

use super::types::clickhouse_type;

fn varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// The batch as one Native block, with `driftline_batch` = `batch_id` as a
/// last column when given.
pub fn encode(batch: &RecordBatch, batch_id: Option<&str>) -> Result<Vec<u8>, String> {
    let rows = batch.num_rows();
    let schema = batch.schema();
    let mut out = Vec::with_capacity(rows * batch.num_columns() * 12);
    varint(
        &mut out,
        (batch.num_columns() + usize::from(batch_id.is_some())) as u64,
    );
    varint(&mut out, rows as u64);
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let ty = clickhouse_type(field).ok_or_else(|| {
            format!(
                "column {}: {} has no ClickHouse type here",
                field.name(),
                field.data_type()
            )
        })?;
        string(&mut out, field.name());
        string(&mut out, &ty);
        if ty.starts_with("Nullable(") {
            // The null map, then every row's value (a default under a null).
            out.extend((0..rows).map(|r| u8::from(column.is_null(r))));
        }
        values(&mut out, column.as_ref())?;
    }
    if let Some(id) = batch_id {
        string(&mut out, "driftline_batch");
        string(&mut out, "String");
        for _ in 0..rows {
            string(&mut out, id);
        }
    }
    Ok(out)
}

/// A column's values, nulls as their type's default.
fn values(out: &mut Vec<u8>, column: &dyn Array) -> Result<(), String> {
    let rows = column.len();
    macro_rules! fixed {
        ($t:ty, $conv:expr) => {{
            let a = column.as_primitive::<$t>();
            for r in 0..rows {
                let v = if a.is_null(r) {
                    Default::default()
                } else {
                    a.value(r)
                };
                out.extend_from_slice(&($conv)(v).to_le_bytes());
            }
        }};
    }
    match column.data_type() {
        DataType::Utf8 => {
            let a = column.as_string::<i32>();
            for r in 0..rows {
                string(out, if a.is_null(r) { "" } else { a.value(r) });
            }
        }
        DataType::Float64 => fixed!(Float64Type, |v: f64| v),
        DataType::Int64 => fixed!(Int64Type, |v: i64| v),
        DataType::Int32 => fixed!(Int32Type, |v: i32| v),
        DataType::UInt64 => fixed!(UInt64Type, |v: u64| v),
        DataType::Boolean => {
            let a = column.as_boolean();
            out.extend((0..rows).map(|r| u8::from(!a.is_null(r) && a.value(r))));
        }
        // DateTime is seconds in a UInt32: clamp rather than wrap.
        DataType::Timestamp(_, _) => fixed!(TimestampMillisecondType, |ms: i64| {
            ms.div_euclid(1000).clamp(0, u32::MAX as i64) as u32
        }),
        DataType::List(_) => {
            let list = column.as_list::<i32>();
            // Offsets (cumulative, as UInt64), then every item.
            let mut end = 0u64;
            for r in 0..rows {
                if !list.is_null(r) {
                    end += list.value_length(r) as u64;
                }
                out.extend_from_slice(&end.to_le_bytes());
            }
            for r in (0..rows).filter(|&r| !list.is_null(r)) {
                let items = list.value(r);
                let items = items.as_string::<i32>();
                for i in 0..items.len() {
                    string(out, if items.is_null(i) { "" } else { items.value(i) });
                }
            }
        }
        other => return Err(format!("{other} has no ClickHouse type here")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn a_block_is_columns_after_a_count_of_columns_and_rows() {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("s", DataType::Utf8, true),
                Field::new("n", DataType::Int64, false),
            ])),
            vec![
                Arc::new(StringArray::from(vec![Some("ab"), None])),
                Arc::new(Int64Array::from(vec![7, 8])),
            ],
        )
        .unwrap();
        let out = encode(&batch, Some("b")).unwrap();
        let mut want = vec![3, 2];
        want.extend(b"\x01s\x10Nullable(String)");
        want.extend([0, 1]); // null map
        want.extend(b"\x02ab\x00");
        want.extend(b"\x01n\x05Int64");
        want.extend(7i64.to_le_bytes());
        want.extend(8i64.to_le_bytes());
        want.extend(b"\x0fdriftline_batch\x06String\x01b\x01b");
        assert_eq!(out, want);
    }
}
