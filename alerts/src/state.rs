//! The alert state log: every change to alerts, the notification log,
//! silences, the outbox and remediation proposals, appended as JSON lines
//! and synced before the findings they came from are committed. A restart
//! (even after `kill -9`) reads it back; it is rewritten compacted when it
//! has grown well past the live state.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::AlertError;
use crate::engine::StateChange;
use crate::outbox::message::OutboxMessage;
use crate::remediation::Proposal;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalEntry {
    Engine(StateChange),
    Enqueued(OutboxMessage),
    Sent { id: u64 },
    Dead { id: u64, reason: String },
    Proposal(Box<Proposal>),
}

pub struct Journal {
    path: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    file: File,
    lines: usize,
}

fn io(path: &Path, e: std::io::Error) -> AlertError {
    AlertError::State {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

impl Journal {
    /// Opens (or creates) `{dir}/alert-state.jsonl` and returns what it holds.
    /// A torn last line (a crash mid-write) is dropped; a bad line elsewhere
    /// is an error naming the line.
    pub fn open(dir: &Path) -> Result<(Self, Vec<JournalEntry>), AlertError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let path = dir.join("alert-state.jsonl");
        let mut records = Vec::new();
        if path.exists() {
            let f = File::open(&path).map_err(|e| io(&path, e))?;
            let lines: Vec<String> = BufReader::new(f)
                .lines()
                .collect::<Result<_, _>>()
                .map_err(|e| io(&path, e))?;
            let n = lines.len();
            for (i, line) in lines.iter().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<JournalEntry>(line) {
                    Ok(r) => records.push(r),
                    Err(_) if i + 1 == n => {
                        tracing::warn!(path = %path.display(), line = i + 1, "dropping a torn last line of the alert state log");
                    }
                    Err(e) => {
                        return Err(AlertError::State {
                            path: format!("{}:{}", path.display(), i + 1),
                            reason: e.to_string(),
                        });
                    }
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        let lines = records.len();
        Ok((
            Self {
                path,
                inner: Mutex::new(Inner { file, lines }),
            },
            records,
        ))
    }

    /// Appends records and syncs them to disk.
    pub fn append(&self, records: &[JournalEntry]) -> Result<(), AlertError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(records.len() * 256);
        for r in records {
            serde_json::to_writer(&mut buf, r).map_err(|e| AlertError::State {
                path: self.path.display().to_string(),
                reason: e.to_string(),
            })?;
            buf.push(b'\n');
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.file.write_all(&buf).map_err(|e| io(&self.path, e))?;
        inner.file.sync_data().map_err(|e| io(&self.path, e))?;
        inner.lines += records.len();
        Ok(())
    }

    pub fn lines(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).lines
    }

    /// Replaces the log with `snapshot` (written aside, synced, renamed).
    pub fn compact(&self, snapshot: &[JournalEntry]) -> Result<(), AlertError> {
        let tmp = self.path.with_extension("jsonl.tmp");
        {
            let mut f = File::create(&tmp).map_err(|e| io(&tmp, e))?;
            let mut buf = Vec::new();
            for r in snapshot {
                serde_json::to_writer(&mut buf, r).map_err(|e| AlertError::State {
                    path: tmp.display().to_string(),
                    reason: e.to_string(),
                })?;
                buf.push(b'\n');
            }
            f.write_all(&buf).map_err(|e| io(&tmp, e))?;
            f.sync_all().map_err(|e| io(&tmp, e))?;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::rename(&tmp, &self.path).map_err(|e| io(&self.path, e))?;
        if let Some(dir) = self.path.parent()
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        inner.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| io(&self.path, e))?;
        inner.lines = snapshot.len();
        Ok(())
    }
}
