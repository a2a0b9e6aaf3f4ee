//! The `Store` door: tables that outlive the process, appended to and
//! queried in SQL. One implementation per file — Parquet queried by
//! DataFusion (`parquet_store.rs`, the embedded default) now, ClickHouse
//! next — the findings writer that fills the `finding_events` table
//! (`findings.rs`), the read-only check and limits every query goes
//! through (`sql.rs`), and the views every store defines (`views.rs`).

pub mod clickhouse;
mod compaction_journal;
mod dead_letters_writer;
mod findings;
mod ops_views;
mod parquet_columns;
mod parquet_store;
mod resources_writer;
mod scan_record;
pub mod sql;
pub mod tables;
mod telemetry_writer;
pub mod views;

use arrow::record_batch::RecordBatch;
use thiserror::Error;

pub use clickhouse::ClickHouseStore;
pub use dead_letters_writer::DeadLettersWriter;
pub use findings::{FindingsOut, FindingsWriter};
pub use parquet_store::ParquetStore;
pub use resources_writer::ResourcesWriter;
pub use scan_record::{Recorded, RecordedResources, open_findings, record_resources, record_scan};
pub use sql::{QueryLimits, QueryResult};
pub use telemetry_writer::TelemetryWriter;
pub use views::FinOpsConfig;

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
    /// A statement the SQL side does not run (not a query, or unparsable).
    #[error("{reason}")]
    Refused { reason: String },
    #[error("query failed: {reason}")]
    Query { reason: String },
    #[error("query timed out after {0:?}")]
    Timeout(std::time::Duration),
}

/// `[store]` in driftline.toml: ClickHouse when `clickhouse` names a
/// server, else the Parquet store under the data directory.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `http://host:8123` (the HTTP interface).
    pub clickhouse: Option<String>,
    /// How often a running service asks the store to tidy up (`maintain`:
    /// the Parquet store compacts small files, ClickHouse's replays its
    /// spool).
    pub maintain_interval_secs: u64,
    /// Most bytes of batches kept on disk (`{data_dir}/clickhouse-spool`)
    /// while ClickHouse is unreachable.
    pub spool_max_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            clickhouse: None,
            maintain_interval_secs: 300,
            spool_max_bytes: 1 << 30,
        }
    }
}

/// The store `config` names: ClickHouse (migrated, views defined), or
/// Parquet under `data_dir`.
pub fn open(
    config: &StoreConfig,
    data_dir: &std::path::Path,
    finops: &FinOpsConfig,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(match &config.clickhouse {
        Some(url) => std::sync::Arc::new(ClickHouseStore::open(
            url,
            finops,
            data_dir.join("clickhouse-spool"),
            config.spool_max_bytes,
        )?),
        None => std::sync::Arc::new(ParquetStore::open(data_dir)?.with_finops(finops.clone())),
    })
}

/// Where tables live: rows appended durably, read back whole, and queried
/// in SQL.
pub trait Store: Send + Sync {
    /// Appends rows to `table`; returns once they are durable.
    fn append(&self, table: &str, batch: &RecordBatch) -> Result<(), StoreError>;

    /// Every row of `table`, in the order appended (none for a table never
    /// written).
    fn read(&self, table: &str) -> Result<Vec<RecordBatch>, StoreError>;

    /// Runs one read-only query (`sql::check_read_only`) over the tables
    /// and views, within `limits`.
    fn query(&self, sql: &str, limits: &QueryLimits) -> Result<QueryResult, StoreError>;

    /// Housekeeping a running service asks for now and then (the Parquet
    /// store compacts its small files); nothing by default.
    fn maintain(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Delivers what the store holds back (ClickHouse's spool) if it can,
    /// before the process exits; nothing by default.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
