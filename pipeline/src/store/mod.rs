//! The `Store` door: tables that outlive the process. One implementation
//! per file — Parquet (`parquet_store.rs`, the embedded default) now, ClickHouse
//! next — and the findings writer that fills the `finding_events` table
//! (`findings.rs`).

mod findings;
mod parquet_store;

use arrow::record_batch::RecordBatch;
use thiserror::Error;

pub use findings::{FindingsOut, FindingsWriter};
pub use parquet_store::ParquetStore;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("table {table}: {reason}")]
    Write { table: String, reason: String },
    #[error("table {table}: cannot read {path}: {reason}")]
    Read {
        table: String,
        path: String,
        reason: String,
    },
}

/// Where tables live: rows appended durably, and read back whole (the
/// SQL side queries what `read` returns).
pub trait Store: Send + Sync {
    /// Appends rows to `table`; returns once they are durable.
    fn append(&self, table: &str, batch: &RecordBatch) -> Result<(), StoreError>;

    /// Every row of `table`, in the order appended (none for a table never
    /// written).
    fn read(&self, table: &str) -> Result<Vec<RecordBatch>, StoreError>;
}
