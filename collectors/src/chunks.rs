//! Records published in chunks while a loader reads a file, so a bulk read
//! holds one chunk per file in flight instead of every record of the file.

use driftline_pipeline::{Record, RecordSink, Topic};

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
    pub(crate) fn new(out: &'a dyn RecordSink, topic: Topic) -> Self {
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
    pub(crate) fn finish(mut self) -> Result<usize, String> {
        self.flush();
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.published),
        }
    }
}
