//! Batches ClickHouse could not take yet, kept on disk in order until it
//! can. Each is one file — a JSON header line (table, columns, batch id,
//! format), then the encoded rows — written to a temporary name, synced, then
//! renamed, so a crash leaves whole batches only. The spool is bounded: a
//! batch that would pass `max_bytes` is refused, and the caller (a stage)
//! keeps it and tries again, so the bus holds the rest.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::IntGaugeVec;
use serde::{Deserialize, Serialize};

use super::super::StoreError;

static SPOOLED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    crate::metrics::gauge(
        "driftline_store_spool_batches",
        "Batches waiting on disk for ClickHouse to take them.",
        &["unit"],
    )
});

/// What a spooled batch is, before its rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub table: String,
    /// `(`a`, `b`, …)` as the INSERT names them.
    pub columns: String,
    pub batch_id: String,
    /// How the rows are encoded: `Native`; batches spooled before this
    /// field existed are `RowBinary`.
    #[serde(default = "row_binary")]
    pub format: String,
}

/// The format batches are sent and spooled in now.
pub const NATIVE: &str = "Native";

fn row_binary() -> String {
    "RowBinary".into()
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    seq: AtomicU64,
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

impl Spool {
    /// The spool in `dir`, created on the first batch it keeps (a query or
    /// a scan against a healthy server leaves no folder behind).
    pub fn open(dir: PathBuf, max_bytes: u64) -> Result<Self, StoreError> {
        let spool = Self {
            dir,
            max_bytes,
            seq: AtomicU64::new(0),
        };
        // Continue numbering after what an earlier process left.
        let next = spool
            .pending()
            .last()
            .and_then(|p| p.file_stem()?.to_str()?.parse::<u64>().ok())
            .map_or(0, |n| n + 1);
        spool.seq.store(next, Ordering::Relaxed);
        spool.publish_size();
        Ok(spool)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Spooled batches, oldest first.
    pub fn pending(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "spool"))
            .collect();
        files.sort();
        files
    }

    /// (batches, bytes) waiting.
    fn usage(&self) -> (usize, u64) {
        let files = self.pending();
        let bytes = files
            .iter()
            .filter_map(|p| p.metadata().ok())
            .map(|m| m.len())
            .sum();
        (files.len(), bytes)
    }

    fn publish_size(&self) {
        let (batches, bytes) = self.usage();
        SPOOLED.with_label_values(&["batches"]).set(batches as i64);
        SPOOLED.with_label_values(&["bytes"]).set(bytes as i64);
    }

    /// Keeps a batch until ClickHouse takes it.
    pub fn push(&self, header: &Header, rows: &[u8]) -> Result<(), StoreError> {
        let head = serde_json::to_vec(header).unwrap_or_default();
        let size = (head.len() + 1 + rows.len()) as u64;
        if self.usage().1 + size > self.max_bytes {
            return Err(StoreError::Write {
                table: header.table.clone(),
                reason: format!(
                    "ClickHouse is unreachable and the spool at {} is full ({} bytes); keeping the batch upstream",
                    self.dir.display(),
                    self.max_bytes
                ),
            });
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{n:016}.spool"));
        let tmp = self.dir.join(format!(".{n:016}.tmp"));
        let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        f.write_all(&head)
            .and_then(|_| f.write_all(b"\n"))
            .and_then(|_| f.write_all(rows))
            .and_then(|_| f.sync_all())
            .map_err(|e| io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(&self.dir, e))?;
        self.publish_size();
        Ok(())
    }

    /// A spooled batch's header and rows.
    pub fn load(&self, path: &Path) -> Result<(Header, Vec<u8>), StoreError> {
        let f = std::fs::File::open(path).map_err(|e| io(path, e))?;
        let mut reader = std::io::BufReader::new(f);
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| io(path, e))?;
        let header: Header = serde_json::from_str(line.trim_end()).map_err(|e| StoreError::Io {
            path: path.display().to_string(),
            reason: format!("damaged spool header: {e}"),
        })?;
        let mut rows = Vec::new();
        reader.read_to_end(&mut rows).map_err(|e| io(path, e))?;
        Ok((header, rows))
    }

    pub fn remove(&self, path: &Path) -> Result<(), StoreError> {
        std::fs::remove_file(path).map_err(|e| io(path, e))?;
        self.publish_size();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_batches_in_order_within_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("spool"), 200).unwrap();
        assert!(
            !dir.path().join("spool").exists(),
            "created when first needed"
        );
        let header = |id: &str| Header {
            table: "t".into(),
            columns: "(`a`)".into(),
            batch_id: id.into(),
            format: NATIVE.into(),
        };
        spool.push(&header("b1"), b"one").unwrap();
        spool.push(&header("b2"), b"two").unwrap();
        let e = spool
            .push(&header("b3"), &[0; 200])
            .unwrap_err()
            .to_string();
        assert!(e.contains("spool") && e.contains("full"), "{e}");
        // A new process continues after what is there, in order.
        let again = Spool::open(dir.path().join("spool"), 200).unwrap();
        let pending = again.pending();
        assert_eq!(pending.len(), 2);
        let (h, rows) = again.load(&pending[0]).unwrap();
        assert_eq!((h.batch_id.as_str(), rows.as_slice()), ("b1", &b"one"[..]));
        again.remove(&pending[0]).unwrap();
        again.push(&header("b4"), b"four").unwrap();
        let ids: Vec<String> = again
            .pending()
            .iter()
            .map(|p| again.load(p).unwrap().0.batch_id)
            .collect();
        assert_eq!(ids, ["b2", "b4"]);
    }
}
