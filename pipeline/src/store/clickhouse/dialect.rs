//! What a query needs to run the same on ClickHouse 18.16 as on DataFusion
//! and current ClickHouse, and its answer back as Arrow.
//!
//! ClickHouse 18.16 compares a `DateTime` with a string only when the
//! string is exactly `YYYY-MM-DD hh:mm:ss`: `BillingPeriodStart >=
//! '2024-09-01'`, as FOCUS's examples write it, fails there. So a date or
//! ISO 8601 literal compared with a column is rewritten to that form before
//! the query is sent (current releases read both forms alike).

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Builder, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Value, visit_expressions_mut};
use datafusion::sql::sqlparser::dialect::ClickHouseDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde_json::Value as Json;

/// `2024-09-01`, `2024-09-01T10:00:00Z`, … → `2024-09-01 10:00:00`.
fn datetime_literal(text: &str) -> Option<String> {
    let looks_like_date = text.len() >= 10
        && text.as_bytes()[4] == b'-'
        && text.as_bytes()[7] == b'-'
        && text[..4].bytes().all(|b| b.is_ascii_digit());
    if !looks_like_date {
        return None;
    }
    let ms = crate::time::parse_iso8601_ms(text)?;
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)?;
    Some(t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn is_column(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
}

/// The query with date literals compared to columns in 18.16's form; the
/// text unchanged when there are none (or it does not parse here: the
/// server then says what is wrong).
pub fn for_clickhouse(sql: &str) -> String {
    let Ok(mut statements) = Parser::parse_sql(&ClickHouseDialect {}, sql) else {
        return sql.to_string();
    };
    let mut changed = false;
    let _ = visit_expressions_mut(&mut statements, |e| {
        if let Expr::BinaryOp { left, op, right } = e
            && matches!(
                op,
                BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq
            )
        {
            let (left_is_column, right_is_column) = (is_column(left), is_column(right));
            for (side, other_is_column) in [
                (&mut **left, right_is_column),
                (&mut **right, left_is_column),
            ] {
                if !other_is_column {
                    continue;
                }
                if let Expr::Value(v) = side
                    && let Value::SingleQuotedString(s) = &mut v.value
                    && let Some(fixed) = datetime_literal(s)
                    && *s != fixed
                {
                    *s = fixed;
                    changed = true;
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    if !changed {
        return sql.to_string();
    }
    statements
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A `FORMAT JSONCompact` answer as one batch: integers as Int64, floats as
/// Float64, string arrays as lists, everything else as text (other arrays
/// and tuples as JSON), and at most
/// `max_rows` rows (the second value says whether there were more).
pub fn json_compact_batch(body: &[u8], max_rows: usize) -> Result<(RecordBatch, bool), String> {
    let doc: Json = serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    let meta = doc["meta"].as_array().ok_or("answer has no meta")?;
    let data = doc["data"].as_array().cloned().unwrap_or_default();
    let truncated = data.len() > max_rows;
    let rows = &data[..data.len().min(max_rows)];
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (i, m) in meta.iter().enumerate() {
        let name = m["name"].as_str().unwrap_or_default();
        let ty = m["type"].as_str().unwrap_or_default();
        let base = ty
            .strip_prefix("Nullable(")
            .and_then(|t| t.strip_suffix(')'))
            .unwrap_or(ty);
        let cell = |r: &Json| r.get(i).cloned().unwrap_or(Json::Null);
        let (data_type, array): (DataType, ArrayRef) =
            if base.starts_with("Int") || base.starts_with("UInt") {
                let mut b = Int64Builder::new();
                for r in rows {
                    match cell(r) {
                        Json::Number(n) => b.append_option(n.as_i64()),
                        Json::String(s) => b.append_option(s.parse().ok()),
                        _ => b.append_null(),
                    }
                }
                (DataType::Int64, Arc::new(b.finish()))
            } else if base.starts_with("Float") || base.starts_with("Decimal") {
                let mut b = Float64Builder::new();
                for r in rows {
                    match cell(r) {
                        Json::Number(n) => b.append_option(n.as_f64()),
                        Json::String(s) => b.append_option(s.parse().ok()),
                        _ => b.append_null(),
                    }
                }
                (DataType::Float64, Arc::new(b.finish()))
            } else if base == "Array(String)" || base == "Array(Nullable(String))" {
                // Lists stay lists, as the Parquet store answers them.
                let mut b = arrow::array::ListBuilder::new(StringBuilder::new());
                for r in rows {
                    match cell(r) {
                        Json::Array(items) => {
                            for item in items {
                                b.values().append_option(item.as_str());
                            }
                            b.append(true);
                        }
                        _ => b.append(false),
                    }
                }
                let list = b.finish();
                (
                    arrow::array::Array::data_type(&list).clone(),
                    Arc::new(list),
                )
            } else {
                let mut b = StringBuilder::new();
                for r in rows {
                    match cell(r) {
                        Json::Null => b.append_null(),
                        Json::String(s) => b.append_value(s),
                        other => b.append_value(other.to_string()),
                    }
                }
                (DataType::Utf8, Arc::new(b.finish()))
            };
        fields.push(Field::new(name, data_type, true));
        columns.push(array);
    }
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())?;
    Ok((batch, truncated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_literals_compared_with_columns_take_the_old_form() {
        let q = "SELECT SUM(BilledCost) FROM focus_data_table WHERE BillingPeriodStart >= '2024-09-01' AND BillingPeriodEnd < '2024-10-01T00:00:00Z' AND ServiceName = 'x'";
        let fixed = for_clickhouse(q);
        assert!(
            fixed.contains("BillingPeriodStart >= '2024-09-01 00:00:00'"),
            "{fixed}"
        );
        assert!(
            fixed.contains("BillingPeriodEnd < '2024-10-01 00:00:00'"),
            "{fixed}"
        );
        assert!(fixed.contains("ServiceName = 'x'"), "{fixed}");
        // Nothing to change: the text as written.
        let plain = "SELECT tag_key FROM cost_by_tag ARRAY JOIN x AS y";
        assert_eq!(for_clickhouse(plain), plain);
        assert_eq!(
            for_clickhouse("SELECT '2024-09-01' AS d"),
            "SELECT '2024-09-01' AS d"
        );
    }

    #[test]
    fn json_compact_answers_become_typed_columns() {
        let body = br#"{"meta":[{"name":"n","type":"UInt64"},{"name":"c","type":"Nullable(Float64)"},{"name":"s","type":"String"},{"name":"a","type":"Array(String)"}],
            "data":[["3", 1.5, "x", ["p","q"]], [4, null, "y", []]], "rows": 2}"#;
        let (b, truncated) = json_compact_batch(body, 1).unwrap();
        assert!(truncated);
        assert_eq!(b.num_rows(), 1);
        assert_eq!(b.schema().field(0).data_type(), &DataType::Int64);
        assert_eq!(b.schema().field(1).data_type(), &DataType::Float64);
        use arrow::array::AsArray;
        let list = b.column(3).as_list::<i32>();
        assert_eq!(list.value(0).as_string::<i32>().value(1), "q");
    }
}
