//! The embedded store: each table as Parquet files under a data directory
//! (one file per appended batch, written to a temporary name, synced, then
//! renamed, so a crash never leaves half a file under a table). A running
//! service appends many small batches, so `maintain` compacts: the small
//! files of a table, but the newest, become one, named to sort where they
//! were, so append order holds. A journal (`compaction_journal.rs`) makes
//! a compaction cut short finish or undo itself when the store opens.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::compaction_journal::{Journal, remove_if_present, sync_dir};
use super::parquet_columns::write_row_group;
use super::sql::{QueryLimits, QueryResult, check_read_only};
use super::views::{FinOpsConfig, datafusion_views};
use super::{Store, StoreError};

/// Parquet files under `{data_dir}/{table}/`.
pub struct ParquetStore {
    dir: PathBuf,
    seq: AtomicU64,
    finops: FinOpsConfig,
}

fn write_failed(table: &str, e: parquet::errors::ParquetError) -> StoreError {
    StoreError::Write {
        table: table.to_string(),
        reason: e.to_string(),
    }
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

impl ParquetStore {
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        for table in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))?.flatten() {
            let table_dir = table.path();
            if table_dir.is_dir() {
                Journal::recover(&table_dir).map_err(|e| io(&table_dir, e))?;
            }
        }
        Ok(Self {
            dir,
            seq: AtomicU64::new(0),
            finops: FinOpsConfig::default(),
        })
    }

    /// The tag keys the FinOps views use.
    pub fn with_finops(mut self, finops: FinOpsConfig) -> Self {
        self.finops = finops;
        self
    }

    pub fn table_dir(&self, table: &str) -> PathBuf {
        self.dir.join(table)
    }

    /// Every table that holds at least one file, by name.
    pub fn tables(&self) -> Vec<String> {
        let mut tables: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(String::from))
            .filter(|t| !self.files(t).is_empty())
            .collect();
        tables.sort();
        tables
    }

    /// The Parquet files of a table, oldest first: those a compaction in
    /// progress replaced are left out.
    pub fn files(&self, table: &str) -> Vec<PathBuf> {
        let dir = self.table_dir(table);
        let hidden = Journal::hidden(&dir);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| !hidden.iter().any(|h| e.file_name() == h.as_str()))
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .collect();
        files.sort();
        files
    }
}

/// Files a table may hold before `maintain` compacts it.
const COMPACT_AT: usize = 32;
/// The newest files compaction leaves alone: a writer may still be adding
/// beside them, and they will be merged next time.
const KEEP_NEWEST: usize = 4;
/// A file at least this large is left as it is.
const SMALL_FILE: u64 = 64 * 1024 * 1024;

impl ParquetStore {
    /// Writes `batches` as one Parquet file named `name` under `table`.
    /// Batches are taken one at a time, so compaction holds one input
    /// batch and the encoded row group, never every file it merges.
    fn write_file(
        &self,
        table: &str,
        name: &str,
        batches: impl IntoIterator<Item = Result<RecordBatch, StoreError>>,
        journal: Option<&Journal>,
    ) -> Result<(), StoreError> {
        let mut batches = batches.into_iter().peekable();
        let schema = match batches.peek() {
            None => return Ok(()),
            Some(Err(_)) => return batches.next().map_or(Ok(()), |b| b.map(drop)),
            Some(Ok(first)) => first.schema(),
        };
        self.write_atomically(table, name, schema, journal, |mut w| {
            for b in batches {
                w.write(&b?).map_err(|e| write_failed(table, e))?;
            }
            w.into_inner().map_err(|e| write_failed(table, e))
        })
    }

    /// Writes a file under `table` named `name`, its content encoded by
    /// `encode` through the writer it is handed: to a temporary name,
    /// synced, then renamed into place (after `journal`, when given, is
    /// written).
    fn write_atomically(
        &self,
        table: &str,
        name: &str,
        schema: SchemaRef,
        journal: Option<&Journal>,
        encode: impl FnOnce(ArrowWriter<File>) -> Result<File, StoreError>,
    ) -> Result<(), StoreError> {
        let dir = self.table_dir(table);
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let tmp = dir.join(format!(".{name}.tmp"));
        let path = dir.join(format!("{name}.parquet"));
        let written = (|| {
            let file = File::create(&tmp).map_err(|e| io(&tmp, e))?;
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .build();
            let w = ArrowWriter::try_new(file, schema, Some(props))
                .map_err(|e| write_failed(table, e))?;
            let file = encode(w)?;
            file.sync_all().map_err(|e| io(&tmp, e))?;
            match journal {
                Some(j) => j.write(&dir).map_err(|e| io(&dir, e)),
                None => Ok(()),
            }
        })();
        if let Err(e) = written {
            // A half-written temporary is never read; do not leave it.
            let _ = std::fs::remove_file(&tmp);
            return Err(match e {
                // The encoder's errors name neither the file nor, for a
                // failed write (a full disk), more than "External".
                StoreError::Write { table, reason } => StoreError::Write {
                    table,
                    reason: format!(
                        "cannot write {}: {}",
                        path.display(),
                        reason.strip_prefix("External: ").unwrap_or(&reason)
                    ),
                },
                other => other,
            });
        }
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        sync_dir(&dir).map_err(|e| io(&dir, e))
    }

    /// Merges a table's small files, but the newest, into one; returns how
    /// many files it merged (0 when the table is small enough).
    pub fn compact(&self, table: &str) -> Result<usize, StoreError> {
        let dir = self.table_dir(table);
        Journal::recover(&dir).map_err(|e| io(&dir, e))?;
        let files = self.files(table);
        if files.len() < COMPACT_AT {
            return Ok(0);
        }
        let merge: Vec<PathBuf> = files[..files.len() - KEEP_NEWEST]
            .iter()
            .filter(|f| f.metadata().map(|m| m.len() < SMALL_FILE).unwrap_or(false))
            .cloned()
            .collect();
        if merge.len() < 2 {
            return Ok(0);
        }
        // Named after the first file it replaces, so it sorts where they
        // were (`part-X-c` < `part-X.parquet` < every later part).
        let stem = merge[0]
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let batches = merge.iter().map(|path| file_batches(table, path)).flat_map(
            |reader| -> Box<dyn Iterator<Item = _>> {
                match reader {
                    Ok(batches) => Box::new(batches),
                    Err(e) => Box::new(std::iter::once(Err(e))),
                }
            },
        );
        let name = format!("{stem}-c");
        let journal = Journal {
            merged: format!("{name}.parquet"),
            replaced: merge
                .iter()
                .filter_map(|p| p.file_name()?.to_str().map(String::from))
                .collect(),
        };
        self.write_file(table, &name, batches, Some(&journal))?;
        for path in &merge {
            // Another process opening the store may have finished this
            // compaction already (`Journal::recover`).
            remove_if_present(path).map_err(|e| io(path, e))?;
        }
        Journal::remove(&dir).map_err(|e| io(&dir, e))?;
        tracing::info!(table, merged = merge.len(), "compacted Parquet files");
        Ok(merge.len())
    }
}

/// The batches of one file, read as they are asked for; failures name the
/// table and the file.
fn file_batches(
    table: &str,
    path: &Path,
) -> Result<impl Iterator<Item = Result<RecordBatch, StoreError>> + use<>, StoreError> {
    let fail = {
        let (table, path) = (table.to_string(), path.display().to_string());
        move |reason: String| StoreError::Read {
            table: table.clone(),
            path: path.clone(),
            reason,
        }
    };
    let file = File::open(path).map_err(|e| fail(e.to_string()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| fail(e.to_string()))?;
    Ok(reader.map(move |b| b.map_err(|e| fail(e.to_string()))))
}

/// Every batch of one file.
fn read_file(table: &str, path: &Path) -> Result<Vec<RecordBatch>, StoreError> {
    file_batches(table, path)?.collect()
}

impl Store for ParquetStore {
    fn append(&self, table: &str, batch: &RecordBatch) -> Result<(), StoreError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let name = format!(
            "part-{:013}-{}-{:06}",
            crate::time::now_ms(),
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        self.write_atomically(table, &name, batch.schema(), None, |w| {
            write_row_group(w, batch).map_err(|e| write_failed(table, e))
        })
    }

    fn maintain(&self) -> Result<(), StoreError> {
        for t in self.tables() {
            self.compact(&t)?;
        }
        Ok(())
    }

    fn read(&self, table: &str) -> Result<Vec<RecordBatch>, StoreError> {
        let mut out = Vec::new();
        for path in self.files(table) {
            out.extend(read_file(table, &path)?);
        }
        Ok(out)
    }

    fn query(&self, sql: &str, limits: &QueryLimits) -> Result<QueryResult, StoreError> {
        check_read_only(sql)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Query {
                reason: e.to_string(),
            })?;
        rt.block_on(async {
            let run = async {
                let ctx = self.session().await?;
                // The check above already refused these; DataFusion refuses
                // them again should the two parsers ever disagree.
                let options = datafusion::execution::context::SQLOptions::new()
                    .with_allow_ddl(false)
                    .with_allow_dml(false)
                    .with_allow_statements(false);
                let df =
                    ctx.sql_with_options(sql, options)
                        .await
                        .map_err(|e| StoreError::Query {
                            reason: e.to_string(),
                        })?;
                collect_limited(df, limits.max_rows)
                    .await
                    .map_err(|e| StoreError::Query {
                        reason: e.to_string(),
                    })
            };
            tokio::time::timeout(limits.timeout, run)
                .await
                .map_err(|_| StoreError::Timeout(limits.timeout))?
        })
    }
}

impl ParquetStore {
    /// A DataFusion session over every table and view. FOCUS's column
    /// names are mixed case and its examples write them unquoted, so
    /// identifiers are taken as written, not lower-cased.
    async fn session(&self) -> Result<datafusion::prelude::SessionContext, StoreError> {
        use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
        let query = |e: datafusion::error::DataFusionError| StoreError::Query {
            reason: e.to_string(),
        };
        let config = SessionConfig::new()
            .set_bool("datafusion.sql_parser.enable_ident_normalization", false);
        let ctx = SessionContext::new_with_config(config);
        let tables = self.tables();
        let known = super::tables::every_table();
        for t in &tables {
            let dir = self.table_dir(t);
            // A known table is read with its schema as this build writes it:
            // files from before a column was added read it as null.
            let schema = known
                .iter()
                .find(|(name, _)| name == t)
                .map(|(_, s)| s.clone());
            let mut options = ParquetReadOptions::default();
            if let Some(schema) = &schema {
                options = options.schema(schema);
            }
            ctx.register_parquet(t, dir.to_string_lossy().as_ref(), options)
                .await
                .map_err(query)?;
        }
        for (name, schema) in known {
            if !tables.iter().any(|t| t == name) {
                let empty = datafusion::datasource::MemTable::try_new(schema, vec![vec![]])
                    .map_err(query)?;
                ctx.register_table(name, std::sync::Arc::new(empty))
                    .map_err(query)?;
            }
        }
        for view in datafusion_views(&self.finops) {
            ctx.sql(&view).await.map_err(query)?;
        }
        Ok(ctx)
    }
}

/// Collects at most `max_rows` rows of a query's stream.
async fn collect_limited(
    df: datafusion::dataframe::DataFrame,
    max_rows: usize,
) -> Result<QueryResult, datafusion::error::DataFusionError> {
    use futures::StreamExt;
    let mut stream = df.execute_stream().await?;
    let mut out = QueryResult::default();
    // No rows still has columns.
    out.batches.push(RecordBatch::new_empty(stream.schema()));
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let room = max_rows - rows;
        if batch.num_rows() > room {
            out.batches.push(batch.slice(0, room));
            out.truncated = true;
            break;
        }
        rows += batch.num_rows();
        out.batches.push(batch);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, StringArray};
    use std::sync::Arc;

    #[test]
    fn appends_are_whole_parquet_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = ParquetStore::open(dir.path()).unwrap();
        let col: ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
        let batch = RecordBatch::try_from_iter([("x", col)]).unwrap();
        store.append("t", &batch).unwrap();
        store.append("t", &batch.slice(0, 0)).unwrap();
        let files = store.files("t");
        assert_eq!(files.len(), 1);
        let read: Vec<RecordBatch> =
            ParquetRecordBatchReaderBuilder::try_new(File::open(&files[0]).unwrap())
                .unwrap()
                .build()
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(read, vec![batch.clone()]);
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(store.table_dir("t")).unwrap().count(), 1);
        // Read back through the door, in the order appended.
        store.append("t", &batch.slice(1, 1)).unwrap();
        let rows: usize = store.read("t").unwrap().iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 3);
        assert!(store.read("never-written").unwrap().is_empty());
        // A damaged file is named, with the table.
        std::fs::write(store.table_dir("t").join("part-9-bad.parquet"), b"nope").unwrap();
        let e = store.read("t").unwrap_err().to_string();
        assert!(
            e.starts_with("table t: cannot read ") && e.contains("part-9-bad.parquet"),
            "{e}"
        );
    }

    #[test]
    fn compaction_merges_small_files_and_keeps_append_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = ParquetStore::open(dir.path()).unwrap();
        let one = |i: i64| {
            let col: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![i]));
            RecordBatch::try_from_iter([("n", col)]).unwrap()
        };
        for i in 0..(COMPACT_AT as i64 - 1) {
            store.append("t", &one(i)).unwrap();
        }
        assert_eq!(store.compact("t").unwrap(), 0, "below the threshold");
        store.append("t", &one(COMPACT_AT as i64 - 1)).unwrap();
        assert_eq!(store.compact("t").unwrap(), COMPACT_AT - KEEP_NEWEST);
        assert_eq!(store.files("t").len(), KEEP_NEWEST + 1);
        // Later appends still come after the merged rows.
        store.append("t", &one(1000)).unwrap();
        let values: Vec<i64> = store
            .read("t")
            .unwrap()
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        let mut want: Vec<i64> = (0..COMPACT_AT as i64).collect();
        want.push(1000);
        assert_eq!(values, want);
        // The merged file is read through SQL like any other.
        let r = store
            .query("SELECT COUNT(*) AS c FROM t", &QueryLimits::default())
            .unwrap();
        assert_eq!(r.cells().unwrap(), [[(COMPACT_AT + 1).to_string()]]);
    }

    fn one_row(n: i64) -> RecordBatch {
        let col: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![n]));
        RecordBatch::try_from_iter([("n", col)]).unwrap()
    }

    fn values(store: &ParquetStore) -> Vec<i64> {
        let mut out = Vec::new();
        for b in store.read("t").unwrap() {
            let col = b.column(0).as_any();
            let col = col.downcast_ref::<arrow::array::Int64Array>().unwrap();
            out.extend(col.values().iter().copied());
        }
        out
    }

    /// The child process of the test below (the same test, run again with
    /// `DRIFTLINE_TEST_STORE` set): appends a row a file, counting from
    /// `DRIFTLINE_TEST_FIRST`, and compacts after every append (a merge
    /// every 28 files), printing each row once its append returned, until
    /// killed.
    fn child_appends_and_compacts_until_killed(dir: std::ffi::OsString) -> ! {
        let first: i64 = std::env::var("DRIFTLINE_TEST_FIRST")
            .unwrap()
            .parse()
            .unwrap();
        let store = ParquetStore::open(dir).unwrap();
        for n in first.. {
            store.append("t", &one_row(n)).unwrap();
            println!("appended {n}");
            store.compact("t").unwrap();
        }
        unreachable!("counted past i64::MAX")
    }

    #[test]
    fn compaction_cut_short_by_sigkill_loses_and_repeats_nothing() {
        use std::io::BufRead as _;
        if let Some(dir) = std::env::var_os("DRIFTLINE_TEST_STORE") {
            child_appends_and_compacts_until_killed(dir);
        }
        let dir = tempfile::tempdir().unwrap();
        let mut acknowledged = Vec::new();
        let mut at_most_once = Vec::new();
        for round in 0..40i64 {
            let first = round * 1_000_000;
            let mut child = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "store::parquet_store::tests::compaction_cut_short_by_sigkill_loses_and_repeats_nothing",
                    "--exact",
                    "--nocapture",
                ])
                .env("DRIFTLINE_TEST_STORE", dir.path())
                .env("DRIFTLINE_TEST_FIRST", first.to_string())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
            // Past the first merge, then at a random moment: often in a
            // compaction, as it takes longer than an append.
            let wait_for = fastrand::i64(30..90);
            let mut seen = 0;
            while seen < wait_for {
                let line = lines.next().expect("the child appends").unwrap();
                if let Some(n) = line.strip_prefix("appended ") {
                    acknowledged.push(n.parse::<i64>().unwrap());
                    seen += 1;
                }
            }
            std::thread::sleep(std::time::Duration::from_micros(fastrand::u64(0..15_000)));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            for line in lines.map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("appended ") {
                    acknowledged.push(n.parse().unwrap());
                }
            }
            // The append in flight may or may not have landed.
            let last = *acknowledged.last().unwrap();
            at_most_once.push(last + 1);
            // Opening the store finishes or undoes what was cut short.
            let store = ParquetStore::open(dir.path()).unwrap();
            let mut got = values(&store);
            let before = got.len();
            got.sort_unstable();
            got.dedup();
            assert_eq!(got.len(), before, "round {round}: a row was read twice");
            let mut want = acknowledged.clone();
            want.extend(at_most_once.iter().filter(|n| got.binary_search(n).is_ok()));
            want.sort_unstable();
            assert_eq!(got, want, "round {round}: rows lost or invented");
            let leftovers: Vec<_> = std::fs::read_dir(store.table_dir("t"))
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".compaction"))
                .collect();
            assert!(leftovers.is_empty(), "{leftovers:?}");
        }
    }
}
