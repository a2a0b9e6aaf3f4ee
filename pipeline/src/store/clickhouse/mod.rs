//! The production store: ClickHouse over HTTP (the `clickhouse` crate).
//! Opening it runs the versioned migrations (`migrations/NNNN_*.sql`, each
//! once, recorded in `driftline_schema_migrations`) and (re)defines the
//! views of `views.rs`. Rows go in as Native blocks (`native.rs`), one
//! INSERT per appended batch; queries run with `readonly=1`, a time limit
//! and a row limit, their dates put in the form 18.16 reads
//! (`dialect.rs`). The DDL keeps to what both 18.16 and current releases
//! accept: no Map, no DateTime64, no TTL, no Nullable sort keys.

mod dialect;
mod native;
mod spool;
mod types;

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arrow::record_batch::RecordBatch;

use super::sql::{QueryLimits, QueryResult, check_read_only_with};
use super::views::{FinOpsConfig, clickhouse_views};
use super::{Store, StoreError};

pub use types::clickhouse_type;

/// The schema, one step per file, applied in order and never edited once
/// released: a change is a new file.
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "focus_data_table",
        include_str!("migrations/0001_focus_data_table.sql"),
    ),
    (
        2,
        "finding_events",
        include_str!("migrations/0002_finding_events.sql"),
    ),
    (
        3,
        "dead_letters",
        include_str!("migrations/0003_dead_letters.sql"),
    ),
    (
        4,
        "batch_ids",
        include_str!("migrations/0004_batch_ids.sql"),
    ),
    (
        5,
        "remediation_audit",
        include_str!("migrations/0005_remediation_audit.sql"),
    ),
    (
        6,
        "finding_event_times_and_tags",
        include_str!("migrations/0006_finding_event_times_and_tags.sql"),
    ),
    (
        7,
        "resources_history",
        include_str!("migrations/0007_resources_history.sql"),
    ),
    (
        8,
        "alert_events",
        include_str!("migrations/0008_alert_events.sql"),
    ),
    (
        9,
        "telemetry",
        include_str!("migrations/0009_telemetry.sql"),
    ),
];

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS driftline_schema_migrations \
     (version UInt32, name String, applied_at DateTime) ENGINE = MergeTree() ORDER BY version";

/// Tables in ClickHouse at `url`: `http://host:8123`, or
/// `http://host:8123/?database=NAME` for a database other than `default`
/// (created when missing).
pub struct ClickHouseStore {
    client: ::clickhouse::Client,
    rt: tokio::runtime::Runtime,
    url: String,
    /// Batches waiting for ClickHouse, in order.
    spool: spool::Spool,
    /// One append or replay at a time, so batches land in order.
    order: Mutex<()>,
    seq: AtomicU64,
    /// In an outage now (logged once when it starts and once when it ends).
    down: AtomicBool,
}

/// A failed call that may succeed later: the server could not be reached
/// or did not answer in time. Anything else (a server exception) is the
/// batch's own fault and is returned.
fn unreachable(e: &::clickhouse::error::Error) -> bool {
    matches!(
        e,
        ::clickhouse::error::Error::Network(_) | ::clickhouse::error::Error::TimedOut
    )
}

fn failed(url: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io {
        path: url.to_string(),
        reason: e.to_string(),
    }
}

impl ClickHouseStore {
    /// Connects, migrates and defines the views; an unreachable server or a
    /// failing migration is the error, naming the URL. Batches ClickHouse
    /// cannot take later wait in `spool_dir`, up to `spool_max_bytes`.
    pub fn open(
        url: &str,
        finops: &FinOpsConfig,
        spool_dir: PathBuf,
        spool_max_bytes: u64,
    ) -> Result<Self, StoreError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("clickhouse")
            .enable_all()
            .build()
            .map_err(|e| failed(url, e))?;
        let (server, database) = match url.split_once('?') {
            Some((server, query)) => (
                server.trim_end_matches('/'),
                query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("database="))
                    .map(String::from),
            ),
            None => (url.trim_end_matches('/'), None),
        };
        // 18.16 predates RowBinaryWithNamesAndTypes: no schema validation.
        let client = ::clickhouse::Client::default()
            .with_url(server)
            .with_validation(false);
        let mut store = Self {
            client,
            rt,
            url: url.to_string(),
            spool: spool::Spool::open(spool_dir, spool_max_bytes)?,
            order: Mutex::new(()),
            seq: AtomicU64::new(0),
            down: AtomicBool::new(false),
        };
        if let Some(db) = database {
            if !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(failed(
                    url,
                    format!("database name {db:?}: letters, digits and _ only"),
                ));
            }
            store.execute(&format!("CREATE DATABASE IF NOT EXISTS {db}"))?;
            store.client = store.client.clone().with_database(db);
        }
        store.migrate()?;
        store.define_views(finops)?;
        // What an earlier process could not deliver goes first.
        let _order = store.order.lock().unwrap_or_else(|e| e.into_inner());
        store.replay()?;
        drop(_order);
        Ok(store)
    }

    fn execute(&self, sql: &str) -> Result<(), StoreError> {
        self.rt
            .block_on(self.client.query(sql).execute())
            .map_err(|e| failed(&self.url, format!("{e} (in: {})", first_line(sql))))
    }

    /// A query's answer as tab-separated text.
    fn fetch_text(&self, sql: &str) -> Result<String, ::clickhouse::error::Error> {
        let body = self.rt.block_on(async {
            self.client
                .query(sql)
                .fetch_bytes("TabSeparated")?
                .collect()
                .await
        })?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// The versions already applied.
    pub fn applied(&self) -> Result<Vec<u32>, StoreError> {
        let text = self
            .fetch_text("SELECT version FROM driftline_schema_migrations ORDER BY version")
            .map_err(|e| failed(&self.url, e))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    fn migrate(&self) -> Result<(), StoreError> {
        self.execute(MIGRATIONS_TABLE)?;
        let applied = self.applied()?;
        for (version, name, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            // A migration may hold several statements, each ending in `;`.
            for statement in sql.split(";\n").filter(|s| {
                s.lines()
                    .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
            }) {
                self.execute(statement)?;
            }
            self.execute(&format!(
                "INSERT INTO driftline_schema_migrations (version, name, applied_at) \
                 VALUES ({version}, '{name}', now())"
            ))?;
            tracing::info!(version, name, "ClickHouse migration applied");
        }
        Ok(())
    }

    fn define_views(&self, finops: &FinOpsConfig) -> Result<(), StoreError> {
        for (name, select) in clickhouse_views(finops) {
            // 18.16 has no CREATE OR REPLACE VIEW.
            self.execute(&format!("DROP TABLE IF EXISTS {name}"))?;
            self.execute(&format!("CREATE VIEW {name} AS {select}"))?;
        }
        Ok(())
    }
}

fn first_line(sql: &str) -> String {
    let line = sql
        .lines()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
        .unwrap_or("");
    line.chars().take(80).collect()
}

impl ClickHouseStore {
    /// One INSERT of a batch's rows, in the format its header names.
    fn insert(
        &self,
        header: &spool::Header,
        rows: bytes::Bytes,
    ) -> Result<(), ::clickhouse::error::Error> {
        let sql = format!(
            "INSERT INTO {} {} FORMAT {}",
            header.table, header.columns, header.format
        );
        self.rt.block_on(async {
            let mut insert = self.client.insert_formatted_with(sql);
            insert.send(rows).await?;
            insert.end().await
        })
    }

    /// Whether a batch's rows are already in its table (an INSERT whose
    /// answer was lost may have landed).
    fn landed(&self, header: &spool::Header) -> Result<bool, ::clickhouse::error::Error> {
        let sql = format!(
            "SELECT count() FROM {} WHERE driftline_batch = '{}'",
            header.table,
            header.batch_id.replace('\'', "")
        );
        Ok(self.fetch_text(&sql)?.trim() != "0")
    }

    fn note_outage(&self, e: &::clickhouse::error::Error) {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                url = %self.url,
                spool = %self.spool.dir().display(),
                error = %e,
                "ClickHouse unreachable; keeping batches on disk until it returns"
            );
        }
    }

    /// Sends spooled batches in order until one cannot go yet. A batch the
    /// server refuses outright is moved aside (`*.refused`), named in the
    /// log, so it cannot block the rest.
    fn replay(&self) -> Result<(), StoreError> {
        let pending = self.spool.pending();
        if pending.is_empty() {
            return Ok(());
        }
        let mut sent = 0;
        for path in pending {
            let (header, rows) = match self.spool.load(&path) {
                Ok(loaded) => loaded,
                Err(e) => {
                    let aside = path.with_extension("damaged");
                    tracing::error!(error = %e, file = %aside.display(), "damaged spool file; set aside");
                    std::fs::rename(&path, &aside).map_err(|io| StoreError::Io {
                        path: path.display().to_string(),
                        reason: io.to_string(),
                    })?;
                    continue;
                }
            };
            let result = match self.landed(&header) {
                Ok(true) => Ok(()),
                Ok(false) => self.insert(&header, rows.into()),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    self.spool.remove(&path)?;
                    sent += 1;
                }
                Err(e) if unreachable(&e) => {
                    self.note_outage(&e);
                    return Ok(());
                }
                Err(e) => {
                    let aside = path.with_extension("refused");
                    tracing::error!(table = %header.table, batch = %header.batch_id, error = %e, file = %aside.display(), "ClickHouse refused a spooled batch; set aside");
                    std::fs::rename(&path, &aside).map_err(|io| StoreError::Io {
                        path: path.display().to_string(),
                        reason: io.to_string(),
                    })?;
                }
            }
        }
        if self.down.swap(false, Ordering::Relaxed) || sent > 0 {
            tracing::info!(url = %self.url, replayed = sent, "ClickHouse is back; spooled batches delivered");
        }
        Ok(())
    }
}

impl Store for ClickHouseStore {
    fn append(&self, table: &str, batch: &RecordBatch) -> Result<(), StoreError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let write = |reason: String| StoreError::Write {
            table: table.to_string(),
            reason,
        };
        let batch_id = format!(
            "{}-{}-{}",
            crate::time::now_ms(),
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        let rows: bytes::Bytes = native::encode(batch, Some(&batch_id))
            .map_err(write)?
            .into();
        let mut columns: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| format!("`{}`", f.name()))
            .collect();
        columns.push("`driftline_batch`".into());
        let header = spool::Header {
            table: table.to_string(),
            columns: format!("({})", columns.join(", ")),
            batch_id,
            format: spool::NATIVE.into(),
        };
        let _order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        self.replay()?;
        // Behind a spooled batch, a new one waits its turn.
        if !self.spool.pending().is_empty() {
            return self.spool.push(&header, &rows);
        }
        match self.insert(&header, rows.clone()) {
            Ok(()) => Ok(()),
            Err(e) if unreachable(&e) => {
                self.note_outage(&e);
                self.spool.push(&header, &rows)?;
                // Often the server only closed a pooled connection: one
                // replay at once (which checks by batch id whether the rows
                // landed) delivers the batch now rather than with the next
                // append, which at shutdown never comes.
                self.replay()
            }
            Err(e) => Err(write(e.to_string())),
        }
    }

    fn maintain(&self) -> Result<(), StoreError> {
        let _order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        self.replay()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.maintain()?;
        let left = self.spool.pending().len();
        if left > 0 {
            tracing::warn!(
                batches = left,
                spool = %self.spool.dir().display(),
                "ClickHouse unreachable at shutdown; the spooled batches are delivered after the next start"
            );
        }
        Ok(())
    }

    fn read(&self, table: &str) -> Result<Vec<RecordBatch>, StoreError> {
        let limits = QueryLimits {
            max_rows: usize::MAX - 1,
            timeout: Duration::from_secs(300),
        };
        Ok(self
            .run(&format!("SELECT * FROM {table}"), &limits)?
            .batches)
    }

    fn query(&self, sql: &str, limits: &QueryLimits) -> Result<QueryResult, StoreError> {
        check_read_only_with(
            sql,
            &datafusion::sql::sqlparser::dialect::ClickHouseDialect {},
        )?;
        self.run(sql, limits)
    }
}

impl ClickHouseStore {
    fn run(&self, sql: &str, limits: &QueryLimits) -> Result<QueryResult, StoreError> {
        let sql = dialect::for_clickhouse(sql.trim().trim_end_matches(';'));
        let secs = limits.timeout.as_secs().max(1);
        let query = self
            .client
            .query(&sql)
            .with_setting("readonly", "1")
            .with_setting("max_execution_time", secs.to_string())
            .with_setting(
                "max_result_rows",
                (limits.max_rows.saturating_add(1)).to_string(),
            )
            .with_setting("result_overflow_mode", "break")
            .with_setting("output_format_json_quote_64bit_integers", "0");
        let answer = self.rt.block_on(async {
            tokio::time::timeout(limits.timeout + Duration::from_secs(5), async {
                query.fetch_bytes("JSONCompact")?.collect().await
            })
            .await
        });
        let body = match answer {
            Err(_) => return Err(StoreError::Timeout(limits.timeout)),
            Ok(Err(e)) => {
                let text = e.to_string();
                if text.contains("Code: 159") || text.contains("TIMEOUT_EXCEEDED") {
                    return Err(StoreError::Timeout(limits.timeout));
                }
                return Err(StoreError::Query { reason: text });
            }
            Ok(Ok(body)) => body,
        };
        let (batch, truncated) = dialect::json_compact_batch(&body, limits.max_rows)
            .map_err(|reason| StoreError::Query { reason })?;
        Ok(QueryResult {
            batches: vec![batch],
            truncated,
        })
    }
}

/// What a query becomes before it is sent (for tests that run the same
/// text on another ClickHouse).
pub fn for_clickhouse(sql: &str) -> String {
    dialect::for_clickhouse(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each migration creates its table with the columns, in order and of
    /// the types, the Arrow schema the writers append has.
    #[test]
    fn migrations_match_the_tables_arrow_schemas() {
        let schemas = crate::store::tables::every_table();
        for (table, schema) in schemas {
            // The table's columns as every migration leaves them: those its
            // CREATE names, then those later ALTERs add.
            let mut columns: Vec<(String, String)> = Vec::new();
            for (_, _, sql) in MIGRATIONS {
                for statement in sql.split(";\n") {
                    let creates =
                        statement.contains(&format!("CREATE TABLE IF NOT EXISTS {table} ("));
                    let alters = format!("ALTER TABLE {table} ADD COLUMN ");
                    for l in statement.lines() {
                        let l = l.trim().trim_end_matches([',', ';']);
                        let rest = if creates {
                            l.strip_prefix('`')
                        } else {
                            l.strip_prefix(alters.as_str())
                                .and_then(|r| r.strip_prefix('`'))
                        };
                        let Some((name, ty)) = rest.and_then(|r| r.split_once("` ")) else {
                            continue;
                        };
                        // The store's own bookkeeping column, not the writers'.
                        if name != "driftline_batch" {
                            columns.push((name.to_string(), ty.to_string()));
                        }
                    }
                }
            }
            let want: Vec<(String, String)> = schema
                .fields()
                .iter()
                .map(|f| (f.name().clone(), clickhouse_type(f).unwrap()))
                .collect();
            assert_eq!(columns, want, "{table}");
        }
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.0).collect();
        assert!(
            versions.windows(2).all(|w| w[1] == w[0] + 1),
            "{versions:?}"
        );
    }
}
