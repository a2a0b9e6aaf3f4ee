//! Following files as they grow, rotate and get truncated, with the read
//! offsets checkpointed so a restart neither loses nor repeats a line.
//!
//! A file is known by its device and inode, plus a hash of its first bytes
//! (an inode can be reused after a delete). Rename rotation: the old inode
//! keeps being read to its end under its new name for a few passes while
//! the new file at the path starts at 0. Truncation (copytruncate): a file
//! shorter than its offset starts again at 0. Only whole lines are taken;
//! a partial last line waits for its newline. Offsets move (and are
//! written, atomically) only after the caller has published the lines.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Most bytes read from one file in one pass.
const READ_MAX: usize = 8 << 20;
/// Longest line kept; a longer one is refused as a whole.
pub const LINE_MAX: usize = 1 << 20;
/// Passes a rotated-away file is still read after it stopped growing.
const ROTATED_PASSES: u32 = 3;
/// Bytes of a file's head that identify it with its inode.
const HEAD_BYTES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileId {
    dev: u64,
    ino: u64,
}

/// What the checkpoint file holds per file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Mark {
    path: PathBuf,
    /// Byte offset of the next unread line.
    offset: u64,
    /// Lines read so far (for errors that name a line).
    line: u64,
    /// xxHash64 of the first `HEAD_BYTES` (or fewer) bytes when first seen.
    head: u64,
    head_len: usize,
}

struct Tracked {
    file: File,
    mark: Mark,
    /// Found at a watched path in the last pass.
    current: bool,
    /// Passes without new data since it rotated away.
    idle: u32,
}

/// A whole line read, with where it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub path: PathBuf,
    /// 1-based.
    pub number: u64,
    /// `Err` when the line was longer than `LINE_MAX`.
    pub text: Result<String, String>,
}

/// Where reading moved to, applied by `advance` once the lines are safe.
pub struct Progress(Vec<(FileId, u64, u64)>);

pub struct FileTail {
    patterns: Vec<String>,
    checkpoint: PathBuf,
    from_end: bool,
    files: HashMap<FileId, Tracked>,
    saved: HashMap<String, Mark>,
}

fn id_key(id: FileId) -> String {
    format!("{}:{}", id.dev, id.ino)
}

fn head_hash(file: &mut File, len: usize) -> std::io::Result<u64> {
    let mut buf = vec![0u8; len];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut buf)?;
    Ok(xxhash_rust::xxh64::xxh64(&buf, 0))
}

impl FileTail {
    /// Follows the files `patterns` (paths or globs) match; offsets are kept
    /// in `checkpoint`. A file first seen starts at its beginning, or at
    /// its end when `from_end`.
    pub fn new(patterns: Vec<String>, checkpoint: PathBuf, from_end: bool) -> Self {
        let saved = std::fs::read(&checkpoint)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            patterns,
            checkpoint,
            from_end,
            files: HashMap::new(),
            saved,
        }
    }

    fn matched(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for p in &self.patterns {
            match glob::glob(p) {
                Ok(paths) => out.extend(paths.flatten().filter(|p| p.is_file())),
                Err(_) => out.push(PathBuf::from(p)),
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Opens a newly seen file, resuming where a checkpoint left it.
    fn open(&self, path: &Path, id: FileId) -> std::io::Result<Tracked> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut mark = Mark {
            path: path.to_path_buf(),
            ..Default::default()
        };
        if let Some(saved) = self.saved.get(&id_key(id)) {
            let same = saved.head_len as u64 <= len
                && saved.head_len > 0
                && head_hash(&mut file, saved.head_len)? == saved.head;
            if same && saved.offset <= len {
                mark = Mark {
                    path: path.to_path_buf(),
                    ..saved.clone()
                };
            }
        } else if self.from_end {
            mark.offset = len;
        }
        Ok(Tracked {
            file,
            mark,
            current: true,
            idle: 0,
        })
    }

    /// Reads the whole new lines of every followed file. Nothing moves
    /// until `advance` gets the returned progress.
    pub fn read(&mut self) -> (Vec<Line>, Progress, Vec<(PathBuf, String)>) {
        let mut errors = Vec::new();
        for t in self.files.values_mut() {
            t.current = false;
        }
        for path in self.matched() {
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    errors.push((path, e.to_string()));
                    continue;
                }
            };
            let id = FileId {
                dev: meta.dev(),
                ino: meta.ino(),
            };
            if let Some(t) = self.files.get_mut(&id) {
                t.current = true;
                t.mark.path = path;
                continue;
            }
            match self.open(&path, id) {
                Ok(t) => {
                    self.files.insert(id, t);
                }
                Err(e) => errors.push((path, format!("cannot open: {e}"))),
            }
        }
        let mut lines = Vec::new();
        let mut progress = Vec::new();
        for (id, t) in self.files.iter_mut() {
            match read_lines(t) {
                Ok((new, offset, line)) => {
                    if new.is_empty() {
                        t.idle += 1;
                    } else {
                        t.idle = 0;
                    }
                    if offset != t.mark.offset || line != t.mark.line {
                        progress.push((*id, offset, line));
                    }
                    lines.extend(new);
                }
                Err(e) => errors.push((t.mark.path.clone(), e.to_string())),
            }
        }
        (lines, Progress(progress), errors)
    }

    /// Moves the offsets `read` reported and writes the checkpoint; closes
    /// rotated-away files that have stopped growing.
    pub fn advance(&mut self, progress: Progress) -> std::io::Result<()> {
        for (id, offset, line) in progress.0 {
            if let Some(t) = self.files.get_mut(&id) {
                t.mark.offset = offset;
                t.mark.line = line;
                if t.mark.head_len < HEAD_BYTES {
                    let len = (offset as usize).min(HEAD_BYTES);
                    if len > t.mark.head_len {
                        t.mark.head = head_hash(&mut t.file, len)?;
                        t.mark.head_len = len;
                    }
                }
            }
        }
        self.files
            .retain(|_, t| t.current || t.idle < ROTATED_PASSES);
        self.saved = self
            .files
            .iter()
            .map(|(id, t)| (id_key(*id), t.mark.clone()))
            .collect();
        if let Some(dir) = self.checkpoint.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.checkpoint.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.saved)?)?;
        std::fs::rename(&tmp, &self.checkpoint)
    }
}

/// The complete lines after `t`'s offset, and the offset and line count
/// after them. A file now shorter than the offset was truncated: it is
/// read again from the start.
fn read_lines(t: &mut Tracked) -> std::io::Result<(Vec<Line>, u64, u64)> {
    let len = t.file.metadata()?.len();
    let (mut offset, mut number) = (t.mark.offset, t.mark.line);
    if len < offset {
        tracing::info!(path = %t.mark.path.display(), "file truncated; reading it from the start");
        offset = 0;
        number = 0;
        t.mark.head_len = 0;
    }
    if len == offset {
        return Ok((Vec::new(), offset, number));
    }
    let want = ((len - offset) as usize).min(READ_MAX);
    let mut buf = vec![0u8; want];
    t.file.seek(SeekFrom::Start(offset))?;
    let got = t.file.read(&mut buf)?;
    buf.truncate(got);
    let mut lines = Vec::new();
    let mut start = 0;
    while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
        let raw = &buf[start..start + nl];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        number += 1;
        let text = if raw.len() > LINE_MAX {
            Err(format!("line longer than {LINE_MAX} bytes"))
        } else {
            Ok(String::from_utf8_lossy(raw).into_owned())
        };
        lines.push(Line {
            path: t.mark.path.clone(),
            number,
            text,
        });
        start += nl + 1;
    }
    // A line longer than a whole read has no newline in the buffer: skip
    // past it rather than wait for ever.
    if start == 0 && got == READ_MAX {
        number += 1;
        lines.push(Line {
            path: t.mark.path.clone(),
            number,
            text: Err(format!("line longer than {LINE_MAX} bytes")),
        });
        start = got;
    }
    Ok((lines, offset + start as u64, number))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn texts(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.text.clone().unwrap()).collect()
    }

    fn pass(t: &mut FileTail) -> Vec<String> {
        let (lines, progress, errors) = t.read();
        assert!(errors.is_empty(), "{errors:?}");
        t.advance(progress).unwrap();
        texts(&lines)
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn rotation_truncation_and_restart_lose_and_repeat_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let ck = dir.path().join("state/ck.json");
        let pattern = vec![log.display().to_string()];
        let mut t = FileTail::new(pattern.clone(), ck.clone(), false);
        append(&log, "a\nb\npart");
        assert_eq!(pass(&mut t), vec!["a", "b"]);
        append(&log, "ial\n");
        assert_eq!(pass(&mut t), vec!["partial"]);
        // Rename rotation: the writer adds to the old file before reopening.
        std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        append(&dir.path().join("app.log.1"), "c\n");
        append(&log, "d\n");
        let mut got = pass(&mut t);
        got.sort();
        assert_eq!(got, vec!["c", "d"]);
        // Restart: a new tail resumes from the checkpoint.
        drop(t);
        let mut t = FileTail::new(pattern.clone(), ck.clone(), false);
        append(&log, "e\n");
        assert_eq!(pass(&mut t), vec!["e"]);
        // Copytruncate.
        std::fs::write(&log, "").unwrap();
        append(&log, "f\n");
        assert_eq!(pass(&mut t), vec!["f"]);
        assert!(pass(&mut t).is_empty());
        // A file replaced by another with the same name and no shared head
        // is read from its start.
        std::fs::remove_file(&log).unwrap();
        append(&log, "g\nh\n");
        drop(t);
        let mut t = FileTail::new(pattern, ck, false);
        assert_eq!(pass(&mut t), vec!["g", "h"]);
    }

    #[test]
    fn lines_count_and_unpublished_reads_are_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        append(&log, "1\n2\n");
        let mut t = FileTail::new(
            vec![log.display().to_string()],
            dir.path().join("ck"),
            false,
        );
        let (lines, _progress, _) = t.read();
        assert_eq!(lines[1].number, 2);
        // Not advanced (the publish failed): the same lines again.
        let (again, progress, _) = t.read();
        assert_eq!(texts(&again), vec!["1", "2"]);
        t.advance(progress).unwrap();
        append(&log, "3\n");
        let (lines, _, _) = t.read();
        assert_eq!((lines[0].number, texts(&lines)), (3, vec!["3".to_string()]));
    }
}
