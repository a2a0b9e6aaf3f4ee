//! The ClickHouse type each Arrow type driftline's tables use is stored
//! as: what the migrations create (a test holds them to it) and what the
//! Native blocks name (`native.rs`).

use arrow::datatypes::{DataType, Field, TimeUnit};

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
