//! The data directory filling up: the embedded store and the alert state
//! log on a small tmpfs. A write that does not fit is a clear error naming
//! the file and the reason; what was written before stays readable, no
//! temporary or half line is left, and writing goes on once space returns.
//! Mounting needs root, as under CI.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::record_batch::RecordBatch;
use driftline_alerts::state::{Journal, JournalEntry};
use driftline_pipeline::{ParquetStore, Store};

/// A tmpfs mounted on a fresh folder, with a filler file that can be
/// removed to give space back; unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            common::no_peer("a tmpfs mount (needs root)", "CI, which runs as root");
            return None;
        }
        std::fs::write(dir.path().join("filler"), vec![0u8; 1280 << 10]).unwrap();
        Some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Gives the filler's space back.
    fn free_some(&self) {
        std::fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// About 100 KB of rows that do not compress.
fn incompressible_batch() -> RecordBatch {
    let rows: Vec<String> = (0..100)
        .map(|_| {
            (0..500)
                .map(|_| format!("{:02x}", fastrand::u8(..)))
                .collect()
        })
        .collect();
    let col: ArrayRef = Arc::new(StringArray::from(rows));
    RecordBatch::try_from_iter([("blob", col)]).unwrap()
}

fn rows(store: &ParquetStore) -> usize {
    store
        .read("t")
        .expect("every file is whole")
        .iter()
        .map(|b| b.num_rows())
        .sum()
}

fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_none_or(|x| x != "parquet"))
        .collect()
}

#[test]
fn a_full_disk_stops_parquet_appends_and_compaction_cleanly() {
    let Some(disk) = SmallDisk::mount("2m") else {
        return;
    };
    let store = ParquetStore::open(disk.path().join("data")).unwrap();
    // Small files first, so that compaction is due once the disk is full.
    let tiny =
        RecordBatch::try_from_iter([("blob", Arc::new(StringArray::from(vec!["x"])) as ArrayRef)])
            .unwrap();
    for _ in 0..32 {
        store.append("t", &tiny).unwrap();
    }
    let mut acknowledged = 32;
    let error = loop {
        let batch = incompressible_batch();
        match store.append("t", &batch) {
            Ok(()) => acknowledged += batch.num_rows(),
            Err(e) => break e.to_string(),
        }
        assert!(acknowledged < 100_000, "2 MiB never filled up");
    };
    assert!(acknowledged > 0);
    assert!(
        error.contains("No space left on device") && error.contains("/data/t/"),
        "the error names the file and the reason: {error}"
    );
    // What was acknowledged is read back whole; nothing half-written stays.
    assert_eq!(rows(&store), acknowledged);
    assert_eq!(leftovers(&store.table_dir("t")), Vec::<PathBuf>::new());
    // Compaction cannot write its merged file either: the files stay.
    let files = store.files("t");
    let e = store.compact("t").unwrap_err().to_string();
    assert!(e.contains("No space left on device"), "{e}");
    assert_eq!(store.files("t"), files);
    assert_eq!(rows(&store), acknowledged);
    assert_eq!(leftovers(&store.table_dir("t")), Vec::<PathBuf>::new());
    // Space returns: writing goes on, and a reopened store reads it all.
    disk.free_some();
    let batch = incompressible_batch();
    store.append("t", &batch).unwrap();
    acknowledged += batch.num_rows();
    let reopened = ParquetStore::open(disk.path().join("data")).unwrap();
    assert_eq!(rows(&reopened), acknowledged);
    assert!(reopened.compact("t").unwrap() > 0);
    assert_eq!(rows(&reopened), acknowledged);
}

#[test]
fn a_full_disk_stops_state_log_appends_without_a_torn_line() {
    let Some(disk) = SmallDisk::mount("2m") else {
        return;
    };
    let dir = disk.path().join("alerts");
    let (journal, _) = Journal::open(&dir).unwrap();
    // Entries of about 64 KB, so a write fails part way through one.
    let entry = |id| JournalEntry::Dead {
        id,
        reason: "r".repeat(64 << 10),
    };
    let mut acknowledged = Vec::new();
    let error = loop {
        let id = acknowledged.len() as u64;
        match journal.append(&[entry(id)]) {
            Ok(()) => acknowledged.push(id),
            Err(e) => break e.to_string(),
        }
        assert!(acknowledged.len() < 1000, "2 MiB never filled up");
    };
    assert!(
        error.contains("alert-state.jsonl") && error.contains("No space left on device"),
        "{error}"
    );
    // Compacting needs room for a copy: it fails and leaves the log alone.
    let snapshot: Vec<JournalEntry> = acknowledged.iter().map(|&id| entry(id)).collect();
    assert!(journal.compact(&snapshot).is_err());
    let ids = |entries: Vec<JournalEntry>| -> Vec<u64> {
        entries
            .into_iter()
            .map(|e| match e {
                JournalEntry::Dead { id, .. } => id,
                other => panic!("not written here: {other:?}"),
            })
            .collect()
    };
    drop(journal);
    // Reopened full: every acknowledged entry, and no half line.
    let (journal, entries) = Journal::open(&dir).unwrap();
    assert_eq!(ids(entries), acknowledged);
    // Space returns: appends and compaction go on.
    disk.free_some();
    let next = acknowledged.len() as u64;
    journal.append(&[entry(next)]).unwrap();
    acknowledged.push(next);
    let snapshot: Vec<JournalEntry> = acknowledged.iter().map(|&id| entry(id)).collect();
    journal.compact(&snapshot).unwrap();
    drop(journal);
    let (_, entries) = Journal::open(&dir).unwrap();
    assert_eq!(ids(entries), acknowledged);
}
