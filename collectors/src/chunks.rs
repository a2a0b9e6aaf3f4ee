//! Records published in chunks while a loader reads a file, so a bulk read
//! holds one chunk per file in flight instead of every record of the file.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use driftline_pipeline::{Record, RecordSink, Topic};

use crate::{CollectReport, ProgressFn, SourceError};

/// Reads `files` one per core with `read`, which pushes each record it
/// decodes; they reach `out` on `topic` in chunks while the file is read,
/// so memory is bounded by the chunks in flight, not by the files' sizes.
/// Returns each file's outcome, in order; how many records it published
/// (or why publishing stopped) is counted into `report`. A file that
/// breaks part way has published what came before the break.
pub(crate) fn stream_files<R: Send>(
    files: &[PathBuf],
    out: &dyn RecordSink,
    topic: Topic,
    progress: ProgressFn<'_>,
    report: &mut CollectReport,
    read: impl Fn(&Path, &mut Chunks<'_>) -> R + Sync,
) -> Vec<R> {
    let results = crate::parallel_map(files, |path| {
        let mut chunks = Chunks::new(out, topic);
        let reading = READING.take();
        let started = std::time::Instant::now();
        let r = read(path, &mut chunks);
        drop(reading);
        progress(path, path.metadata().map(|m| m.len()).unwrap_or(0));
        let published = chunks.finish();
        tracing::debug!(
            file = %path.display(),
            records = published.as_ref().ok(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "file read"
        );
        (r, published)
    });
    files
        .iter()
        .zip(results)
        .map(|(path, (r, published))| {
            match published {
                Ok(n) => report.published += n,
                Err(reason) => report.errors.push(SourceError {
                    source: path.display().to_string(),
                    reason,
                }),
            }
            r
        })
        .collect()
}

/// Files read at once, across every collector reading: one a core. The
/// collectors of one pass each read on every core, and more files at once
/// than cores would not be read faster, only held at once.
static READING: Slots = Slots::new();

struct Slots {
    taken: Mutex<usize>,
    freed: Condvar,
}

/// A slot taken, given back when dropped.
struct Slot<'a>(&'a Slots);

impl Slots {
    const fn new() -> Self {
        Self {
            taken: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free slot.
    fn take(&self) -> Slot<'_> {
        let limit = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        while *taken >= limit {
            taken = self.freed.wait(taken).unwrap_or_else(|e| e.into_inner());
        }
        *taken += 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.taken.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.0.freed.notify_one();
    }
}

/// Records per publish: large enough that the sink's per-call cost does
/// not show, small enough that a chunk is a few megabytes.
const CHUNK: usize = 2048;

pub(crate) struct Chunks<'a> {
    out: &'a dyn RecordSink,
    topic: Topic,
    chunk: Vec<Record>,
    published: usize,
    /// The first publish that failed; what follows it is not sent.
    error: Option<String>,
}

impl<'a> Chunks<'a> {
    fn new(out: &'a dyn RecordSink, topic: Topic) -> Self {
        Self {
            out,
            topic,
            chunk: Vec::with_capacity(CHUNK),
            published: 0,
            error: None,
        }
    }

    pub(crate) fn push(&mut self, record: Record) {
        if self.error.is_some() {
            return;
        }
        self.chunk.push(record);
        if self.chunk.len() >= CHUNK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.chunk.is_empty() || self.error.is_some() {
            return;
        }
        let records = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        let n = records.len();
        match self.out.publish(self.topic, records) {
            Ok(()) => self.published += n,
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Publishes what is left: the records published, or the first error.
    fn finish(mut self) -> Result<usize, String> {
        self.flush();
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.published),
        }
    }
}
