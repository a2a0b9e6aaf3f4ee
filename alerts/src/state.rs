//! The alert state log: every change to alerts, the notification log,
//! silences, the outbox and remediation proposals, appended as JSON lines
//! and synced before the findings they came from are committed. A restart
//! (even after `kill -9`) reads it back; it is rewritten compacted when it
//! has grown well past the live state.

use std::fs::{File, OpenOptions};
use std::io::Write;
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
    /// The file's length: where the next append starts.
    len: u64,
}

/// The entries of a log file, and the length of its whole lines. Only the
/// last line may be torn: every append ends in a newline and is synced
/// before the next.
fn read_log(path: &Path) -> Result<(Vec<JournalEntry>, u64), AlertError> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    let mut records = Vec::new();
    let mut good_len = 0;
    let mut start = 0;
    let mut number = 0;
    while start < bytes.len() {
        number += 1;
        let (line, next) = match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => (&bytes[start..start + i], start + i + 1),
            None => (&bytes[start..], bytes.len()),
        };
        let whole = next > start + line.len();
        if line.iter().all(u8::is_ascii_whitespace) {
            if whole {
                good_len = next as u64;
            }
        } else {
            match serde_json::from_slice::<JournalEntry>(line) {
                Ok(r) if whole => {
                    records.push(r);
                    good_len = next as u64;
                }
                Err(e) if next < bytes.len() => {
                    return Err(AlertError::State {
                        path: format!("{}:{number}", path.display()),
                        reason: e.to_string(),
                    });
                }
                // The last line, cut before its newline or inside it.
                _ => {
                    tracing::warn!(path = %path.display(), line = number, "dropping a torn last line of the alert state log");
                }
            }
        }
        start = next;
    }
    Ok((records, good_len))
}

fn io(path: &Path, e: std::io::Error) -> AlertError {
    AlertError::State {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

impl Journal {
    /// Opens (or creates) `{dir}/alert-state.jsonl` and returns what it holds.
    /// A torn last line (a crash mid-write) is dropped and cut off the file,
    /// so the next append starts a line of its own; a bad line elsewhere is
    /// an error naming the line.
    pub fn open(dir: &Path) -> Result<(Self, Vec<JournalEntry>), AlertError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let path = dir.join("alert-state.jsonl");
        let (records, good_len) = if path.exists() {
            read_log(&path)?
        } else {
            (Vec::new(), 0)
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        if file.metadata().map_err(|e| io(&path, e))?.len() != good_len {
            file.set_len(good_len).map_err(|e| io(&path, e))?;
            file.sync_data().map_err(|e| io(&path, e))?;
        }
        let lines = records.len();
        Ok((
            Self {
                path,
                inner: Mutex::new(Inner {
                    file,
                    lines,
                    len: good_len,
                }),
            },
            records,
        ))
    }

    /// Appends records and syncs them to disk. A write that fails part way
    /// (a full disk) is cut back off, so the log never holds half a line
    /// before a whole one.
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
        let written = inner
            .file
            .write_all(&buf)
            .and_then(|()| inner.file.sync_data());
        if let Err(e) = written {
            let _ = inner.file.set_len(inner.len);
            return Err(io(&self.path, e));
        }
        inner.lines += records.len();
        inner.len += buf.len() as u64;
        Ok(())
    }

    pub fn lines(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).lines
    }

    /// Replaces the log with `snapshot` (written aside, synced, renamed).
    pub fn compact(&self, snapshot: &[JournalEntry]) -> Result<(), AlertError> {
        let tmp = self.path.with_extension("jsonl.tmp");
        let written = (|| {
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
            Ok(buf.len() as u64)
        })();
        // A copy that did not fit (a full disk) must not keep the space.
        let written = written.inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
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
        inner.len = written;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(entries: &[JournalEntry]) -> Vec<u64> {
        entries
            .iter()
            .map(|e| match e {
                JournalEntry::Sent { id } => *id,
                other => panic!("not a Sent entry: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_torn_last_line_is_cut_off_so_the_next_append_starts_clean() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path()).unwrap();
        journal
            .append(&[JournalEntry::Sent { id: 1 }, JournalEntry::Sent { id: 2 }])
            .unwrap();
        drop(journal);
        // A crash mid-write: half a line, cut inside a multi-byte character.
        let path = dir.path().join("alert-state.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"sent\":{\"id\":3,\"x\":\"\xc3").unwrap();
        drop(f);

        let (journal, entries) = Journal::open(dir.path()).unwrap();
        assert_eq!(ids(&entries), [1, 2]);
        journal.append(&[JournalEntry::Sent { id: 4 }]).unwrap();
        drop(journal);
        let (_, entries) = Journal::open(dir.path()).unwrap();
        assert_eq!(
            ids(&entries),
            [1, 2, 4],
            "the append after a torn line is whole"
        );
    }

    #[test]
    fn a_bad_line_before_the_last_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alert-state.jsonl");
        std::fs::write(
            &path,
            "{\"sent\":{\"id\":1}}\nnot json\n{\"sent\":{\"id\":2}}\n",
        )
        .unwrap();
        let Err(e) = Journal::open(dir.path()) else {
            panic!("a corrupt line in the middle opened");
        };
        assert!(e.to_string().contains("alert-state.jsonl:2"), "{e}");
    }

    /// The child process of the test below (the same test, run again with
    /// `DRIFTLINE_TEST_STATE` set): appends an entry at a time, counting
    /// from `DRIFTLINE_TEST_FIRST`, and compacts the log (all it holds,
    /// rewritten) every 16 appends, printing each entry once its append
    /// returned, until killed.
    fn child_appends_and_compacts_until_killed(dir: std::ffi::OsString) -> ! {
        let first: u64 = std::env::var("DRIFTLINE_TEST_FIRST")
            .unwrap()
            .parse()
            .unwrap();
        let (journal, mut held) = Journal::open(Path::new(&dir)).unwrap();
        for id in first.. {
            journal.append(&[JournalEntry::Sent { id }]).unwrap();
            held.push(JournalEntry::Sent { id });
            println!("appended {id}");
            if id % 16 == 0 {
                journal.compact(&held).unwrap();
            }
        }
        unreachable!("counted past u64::MAX")
    }

    #[test]
    fn a_kill_during_compaction_leaves_the_old_log_or_the_new() {
        use std::io::BufRead as _;
        if let Some(dir) = std::env::var_os("DRIFTLINE_TEST_STATE") {
            child_appends_and_compacts_until_killed(dir);
        }
        let dir = tempfile::tempdir().unwrap();
        let mut acknowledged: Vec<u64> = Vec::new();
        for round in 0..30u64 {
            let mut child = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "state::tests::a_kill_during_compaction_leaves_the_old_log_or_the_new",
                    "--exact",
                    "--nocapture",
                ])
                .env("DRIFTLINE_TEST_STATE", dir.path())
                .env("DRIFTLINE_TEST_FIRST", (round * 1_000_000).to_string())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
            let parse = |line: &str| line.strip_prefix("appended ").map(|n| n.parse().unwrap());
            let wait_for = fastrand::usize(20..60);
            let mut seen = 0;
            while seen < wait_for {
                let line = lines.next().expect("the child appends").unwrap();
                if let Some(id) = parse(&line) {
                    acknowledged.push(id);
                    seen += 1;
                }
            }
            std::thread::sleep(std::time::Duration::from_micros(fastrand::u64(0..3_000)));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            acknowledged.extend(lines.map_while(Result::ok).filter_map(|l| parse(&l)));
            let in_flight = acknowledged.last().unwrap() + 1;
            // Reopening reads every acknowledged entry once, in order, and
            // maybe the one in flight.
            let (_, entries) = Journal::open(dir.path()).unwrap();
            let mut got = ids(&entries);
            if got.last() == Some(&in_flight) {
                got.pop();
            }
            assert!(
                got == acknowledged,
                "round {round}: {} entries read back, {} acknowledged",
                got.len(),
                acknowledged.len()
            );
            // The entry in flight, if it landed, is taken as acknowledged.
            acknowledged = ids(&entries);
        }
    }
}
