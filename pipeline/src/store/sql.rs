//! The SQL side of the store: `driftline sql` and `POST /api/sql`. Only a
//! query is accepted — the text is parsed first and anything else (DDL,
//! DML, `SET`, several statements) is refused before it reaches an engine,
//! so nothing changes. Every query runs under a timeout and returns at most
//! a row limit (and says when it was cut).

use std::time::Duration;

use arrow::record_batch::RecordBatch;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect};

use super::StoreError;

/// How long a query may run and how many rows it may return.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    pub timeout: Duration,
    pub max_rows: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_rows: 100_000,
        }
    }
}

/// A query's rows, in order.
#[derive(Debug, Default)]
pub struct QueryResult {
    pub batches: Vec<RecordBatch>,
    /// More rows were there than `max_rows`: the rest were not returned.
    pub truncated: bool,
}

impl QueryResult {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    /// The column names, in order.
    pub fn columns(&self) -> Vec<String> {
        self.batches
            .first()
            .map(|b| {
                b.schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every row as text (null is empty; timestamps RFC 3339).
    pub fn cells(&self) -> Result<Vec<Vec<String>>, StoreError> {
        use arrow::util::display::{ArrayFormatter, FormatOptions};
        let options = FormatOptions::default().with_null("");
        let fail = |e: arrow::error::ArrowError| StoreError::Query {
            reason: e.to_string(),
        };
        let mut rows = Vec::with_capacity(self.rows());
        for b in &self.batches {
            let formatters = b
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail)?;
            for r in 0..b.num_rows() {
                rows.push(formatters.iter().map(|f| f.value(r).to_string()).collect());
            }
        }
        Ok(rows)
    }

    /// A JSON array of objects keyed by column name (null kept as null).
    pub fn to_json(&self) -> Result<serde_json::Value, StoreError> {
        let fail = |reason: String| StoreError::Query { reason };
        let mut buf = Vec::new();
        let mut w = arrow_json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow_json::writer::JsonArray>(&mut buf);
        for b in &self.batches {
            w.write(b).map_err(|e| fail(e.to_string()))?;
        }
        w.finish().map_err(|e| fail(e.to_string()))?;
        drop(w);
        if buf.is_empty() {
            return Ok(serde_json::Value::Array(Vec::new()));
        }
        serde_json::from_slice(&buf).map_err(|e| fail(e.to_string()))
    }
}

/// Accepts one query (`SELECT`, `WITH`, `VALUES`, set operations, and
/// `EXPLAIN` of one); anything else is refused with what it was.
pub fn check_read_only(sql: &str) -> Result<(), StoreError> {
    check_read_only_with(sql, &GenericDialect {})
}

/// `check_read_only`, parsing as `dialect` reads SQL (ClickHouse's
/// `ARRAY JOIN`, say).
pub fn check_read_only_with(sql: &str, dialect: &dyn Dialect) -> Result<(), StoreError> {
    let refuse = |reason: String| StoreError::Refused { reason };
    let statements = DFParser::parse_sql_with_dialect(sql, dialect)
        .map_err(|e| refuse(format!("cannot parse: {e}")))?;
    if statements.len() != 1 {
        return Err(refuse(format!(
            "one query at a time, not {} statements",
            statements.len()
        )));
    }
    let query = |s: &SqlStatement| matches!(s, SqlStatement::Query(_));
    match &statements[0] {
        Statement::Statement(s) if query(s) => Ok(()),
        Statement::Explain(e) if matches!(&*e.statement, Statement::Statement(s) if query(s)) => {
            Ok(())
        }
        Statement::Statement(s) => Err(refuse(format!(
            "read-only: only queries are accepted, not {}",
            first_words(&s.to_string())
        ))),
        other => Err(refuse(format!(
            "read-only: only queries are accepted, not {}",
            first_words(&other.to_string())
        ))),
    }
}

/// `CREATE TABLE`, `INSERT INTO`, … for an error message.
fn first_words(statement: &str) -> String {
    statement
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_query_passes() {
        for ok in [
            "SELECT 1",
            "select BilledCost from focus_data_table where BillingPeriodStart >= '2024-09-01'",
            "WITH x AS (SELECT 1 AS a) SELECT a FROM x UNION ALL SELECT 2",
            "EXPLAIN SELECT 1",
        ] {
            check_read_only(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, says) in [
            ("CREATE TABLE t (a INT)", "CREATE TABLE"),
            ("INSERT INTO t VALUES (1)", "INSERT INTO"),
            ("DROP TABLE focus_data_table", "DROP TABLE"),
            ("DELETE FROM t", "DELETE FROM"),
            ("SET datafusion.execution.batch_size = 1", "SET"),
            ("SELECT 1; DROP TABLE t", "2 statements"),
            ("COPY t TO '/tmp/x.csv'", "COPY"),
            ("EXPLAIN CREATE TABLE t (a INT)", "EXPLAIN"),
            ("SELEKT 1", "cannot parse"),
        ] {
            let e = check_read_only(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
