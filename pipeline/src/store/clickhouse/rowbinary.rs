//! Arrow batches as ClickHouse RowBinary, for `INSERT … FORMAT RowBinary`.
//! The `clickhouse` crate encodes typed rows; driftline's tables travel as
//! Arrow batches whose schema is the table's, so this writes the few types
//! those tables use, column by column in the schema's order (the INSERT
//! names the columns in that order).

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Int64Type, TimeUnit};
use arrow::record_batch::RecordBatch;

/// The ClickHouse type an Arrow field is stored as; `None` for a type no
/// driftline table uses.
pub fn clickhouse_type(field: &Field) -> Option<String> {
    let base = match field.data_type() {
        DataType::Utf8 => "String".to_string(),
        DataType::Float64 => "Float64".into(),
        DataType::Int64 => "Int64".into(),
        DataType::Int32 => "Int32".into(),
        DataType::UInt64 => "UInt64".into(),
        DataType::Boolean => "UInt8".into(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => "DateTime".into(),
        DataType::List(item) if item.data_type() == &DataType::Utf8 => {
            return Some("Array(String)".into());
        }
        _ => return None,
    };
    Some(if field.is_nullable() {
        format!("Nullable({base})")
    } else {
        base
    })
}

/// LEB128, as RowBinary writes lengths.
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

/// The batch as RowBinary, each row ending with `batch_id` (the
/// `driftline_batch` column) when given; `Err` names a column of a type no
/// table uses.
pub fn encode(batch: &RecordBatch, batch_id: Option<&str>) -> Result<Vec<u8>, String> {
    let schema = batch.schema();
    for f in schema.fields() {
        if clickhouse_type(f).is_none() {
            return Err(format!(
                "column {}: {} has no ClickHouse type here",
                f.name(),
                f.data_type()
            ));
        }
    }
    let mut out = Vec::with_capacity(batch.num_rows() * batch.num_columns() * 8);
    for row in 0..batch.num_rows() {
        for (field, col) in schema.fields().iter().zip(batch.columns()) {
            // Arrays cannot be Nullable in ClickHouse: a null list is empty.
            if field.is_nullable() && !matches!(field.data_type(), DataType::List(_)) {
                if col.is_null(row) {
                    out.push(1);
                    continue;
                }
                out.push(0);
            }
            value(&mut out, col.as_ref(), row);
        }
        if let Some(id) = batch_id {
            string(&mut out, id);
        }
    }
    Ok(out)
}

/// One non-null value (a null in a non-nullable column writes the type's
/// default, as ClickHouse would).
fn value(out: &mut Vec<u8>, col: &dyn Array, row: usize) {
    let null = col.is_null(row);
    match col.data_type() {
        DataType::Utf8 => string(
            out,
            if null {
                ""
            } else {
                col.as_string::<i32>().value(row)
            },
        ),
        DataType::Float64 => {
            let v = if null {
                0.0
            } else {
                col.as_primitive::<Float64Type>().value(row)
            };
            out.extend_from_slice(&v.to_le_bytes());
        }
        DataType::Int64 => {
            let v = if null {
                0
            } else {
                col.as_primitive::<Int64Type>().value(row)
            };
            out.extend_from_slice(&v.to_le_bytes());
        }
        DataType::Int32 => {
            let v = if null {
                0
            } else {
                col.as_primitive::<Int32Type>().value(row)
            };
            out.extend_from_slice(&v.to_le_bytes());
        }
        DataType::UInt64 => {
            let v = if null {
                0
            } else {
                col.as_primitive::<arrow::datatypes::UInt64Type>()
                    .value(row)
            };
            out.extend_from_slice(&v.to_le_bytes());
        }
        DataType::Boolean => out.push(u8::from(!null && col.as_boolean().value(row))),
        DataType::Timestamp(_, _) => {
            let ms = if null {
                0
            } else {
                col.as_primitive::<arrow::datatypes::TimestampMillisecondType>()
                    .value(row)
            };
            // DateTime is seconds in a UInt32: before 1970 or after 2106
            // cannot be stored; clamp rather than wrap.
            let secs = (ms.div_euclid(1000)).clamp(0, u32::MAX as i64) as u32;
            out.extend_from_slice(&secs.to_le_bytes());
        }
        DataType::List(_) => {
            if null {
                varint(out, 0);
                return;
            }
            let list = col.as_list::<i32>();
            let items = list.value(row);
            let items = items.as_string::<i32>();
            varint(out, items.len() as u64);
            for i in 0..items.len() {
                string(out, if items.is_null(i) { "" } else { items.value(i) });
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn writes_rowbinary_as_clickhouse_reads_it() {
        let mut varints = Vec::new();
        varint(&mut varints, 300);
        assert_eq!(varints, [0xac, 0x02]);
        let batch = RecordBatch::try_new(
            Arc::new(arrow::datatypes::Schema::new(vec![
                Field::new("s", DataType::Utf8, true),
                Field::new("n", DataType::Int64, false),
            ])),
            vec![
                Arc::new(arrow::array::StringArray::from(vec![Some("ab"), None])),
                Arc::new(arrow::array::Int64Array::from(vec![1, 2])),
            ],
        )
        .unwrap();
        let mut want = vec![0, 2, b'a', b'b'];
        want.extend_from_slice(&1i64.to_le_bytes());
        want.push(1);
        want.extend_from_slice(&2i64.to_le_bytes());
        assert_eq!(encode(&batch, None).unwrap(), want);
        let with_id = encode(&batch.slice(1, 1), Some("b")).unwrap();
        let mut want = vec![1];
        want.extend_from_slice(&2i64.to_le_bytes());
        want.extend_from_slice(&[1, b'b']);
        assert_eq!(with_id, want);
    }
}
