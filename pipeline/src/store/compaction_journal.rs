//! A table's compaction journal: the files a merged file replaces, written
//! before the merged file is renamed into place and removed once they are
//! gone. A compaction cut short (killed, or the disk full) is then finished
//! or undone when the store next opens, and readers in the meantime skip
//! the replaced files, so no row is read twice or lost.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// In each table's folder; a dot file, so never taken for a table's data.
const JOURNAL: &str = ".compaction.json";

#[derive(Serialize, Deserialize)]
pub(super) struct Journal {
    /// The merged file's name, in the table's folder.
    pub(super) merged: String,
    /// The names of the files it replaces.
    pub(super) replaced: Vec<String>,
}

impl Journal {
    /// The table's journal, when a compaction of it did not finish.
    pub(super) fn read(table_dir: &Path) -> Option<Self> {
        let text = std::fs::read(table_dir.join(JOURNAL)).ok()?;
        // Written aside and renamed: it is whole, or absent.
        serde_json::from_slice(&text).ok()
    }

    /// Writes the journal aside, syncs it and renames it into place.
    pub(super) fn write(&self, table_dir: &Path) -> std::io::Result<()> {
        let tmp = table_dir.join(format!("{JOURNAL}.tmp"));
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, table_dir.join(JOURNAL))?;
        sync_dir(table_dir)
    }

    /// The files readers must skip: those replaced by a merged file that is
    /// already in place.
    pub(super) fn hidden(table_dir: &Path) -> Vec<String> {
        match Self::read(table_dir) {
            Some(j) if table_dir.join(&j.merged).exists() => j.replaced,
            _ => Vec::new(),
        }
    }

    /// Finishes a compaction whose merged file is in place (the files it
    /// replaces are removed), or undoes one whose merged file never was
    /// (its temporary is removed; the files it would replace stay).
    pub(super) fn recover(table_dir: &Path) -> std::io::Result<()> {
        // A journal cut short while it was written was never in force.
        remove_if_present(&table_dir.join(format!("{JOURNAL}.tmp")))?;
        let Some(j) = Self::read(table_dir) else {
            return Ok(());
        };
        if table_dir.join(&j.merged).exists() {
            for name in &j.replaced {
                remove_if_present(&table_dir.join(name))?;
            }
        } else if let Some(stem) = j.merged.strip_suffix(".parquet") {
            remove_if_present(&table_dir.join(format!(".{stem}.tmp")))?;
        }
        sync_dir(table_dir)?;
        Self::remove(table_dir)
    }

    /// Ends a compaction: the replaced files are gone.
    pub(super) fn remove(table_dir: &Path) -> std::io::Result<()> {
        remove_if_present(&table_dir.join(JOURNAL))?;
        sync_dir(table_dir)
    }
}

/// Removes `path`; one already gone is not an error.
pub(super) fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Makes a folder's renames and removals durable.
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
