//! Records published in chunks while a loader reads a file, so a bulk read
//! holds one chunk per file in flight instead of every record of the file.

use std::path::{Path, PathBuf};

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
        let r = read(path, &mut chunks);
        progress(path, path.metadata().map(|m| m.len()).unwrap_or(0));
        (r, chunks.finish())
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
