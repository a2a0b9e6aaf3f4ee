//! How the loaders read a local file: whole while the files held whole
//! stay within a budget, streamed through a buffer otherwise.
//!
//! serde_json parses a slice about twice as fast as a reader (measured on
//! the scan bench's 80–100 MB files: 0.8 s against 1.6 s to a `Value`), so
//! holding a file pays for itself. The budget is shared by every thread
//! reading, so what a bulk read holds does not grow with the cores. A bulk
//! read (a scan) holds what it read as tables until it compares, over half
//! its input: its budget is an eighth of its input, so holding files whole
//! adds a share to that rather than a fixed amount (at 1 M resources, both
//! files a scan reads at once; at 100 k, none of its two 80–100 MB files).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the files read whole may hold at once, together.
const WHOLE_FILES_BUDGET: u64 = 128 << 20;

/// A bulk read of N bytes may hold N / this whole at once...
const BULK_READ_SHARE: u64 = 8;
/// ...within these bounds.
const BULK_READ_BUDGET: std::ops::RangeInclusive<u64> = (16 << 20)..=(1 << 30);

/// The buffer a file is streamed through.
const READ_BUFFER: usize = 1 << 20;

/// A budget of bytes, and what of it is in use.
struct Budget {
    limit: AtomicU64,
    held: AtomicU64,
}

/// The budget every loader's whole files share.
static WHOLE_FILES: Budget = Budget::new(WHOLE_FILES_BUDGET);

impl Budget {
    const fn new(limit: u64) -> Self {
        Self {
            limit: AtomicU64::new(limit),
            held: AtomicU64::new(0),
        }
    }

    /// Takes `len` bytes of the budget, if they are free.
    fn reserve(&'static self, len: u64) -> Option<HeldBytes> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held + len <= self.limit.load(Ordering::Acquire)).then_some(held + len)
            })
            .ok()?;
        Some(HeldBytes {
            bytes: Vec::new(),
            counted: len,
            budget: self,
        })
    }

    fn open(&'static self, path: &Path) -> std::io::Result<SourceFile> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        match self.reserve(len) {
            Some(mut held) => {
                held.bytes.reserve_exact(len as usize + 1);
                std::io::Read::read_to_end(&mut &file, &mut held.bytes)?;
                Ok(SourceFile::Whole(held))
            }
            None => Ok(SourceFile::Streamed(BufReader::with_capacity(
                READ_BUFFER,
                file,
            ))),
        }
    }
}

/// A file opened for one of the JSON loaders.
pub(crate) enum SourceFile {
    Whole(HeldBytes),
    Streamed(BufReader<std::fs::File>),
}

/// A file's bytes, counted against the budget until dropped.
pub(crate) struct HeldBytes {
    bytes: Vec<u8>,
    counted: u64,
    budget: &'static Budget,
}

impl HeldBytes {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for HeldBytes {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.counted, Ordering::AcqRel);
    }
}

/// Sets the budget for a bulk read of `total` bytes of files (see the
/// module's note).
pub(crate) fn bulk_read(total: u64) {
    let budget =
        (total / BULK_READ_SHARE).clamp(*BULK_READ_BUDGET.start(), *BULK_READ_BUDGET.end());
    WHOLE_FILES.limit.store(budget, Ordering::Release);
}

impl SourceFile {
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        WHOLE_FILES.open(path)
    }

    /// The first bytes, to tell encrypted or binary files from JSON.
    pub(crate) fn prefix(&mut self) -> std::io::Result<&[u8]> {
        match self {
            Self::Whole(held) => Ok(held.bytes()),
            Self::Streamed(reader) => reader.fill_buf(),
        }
    }
}

/// Runs `$read` with `$de` bound to a serde_json deserializer over `$file`:
/// a slice when it was read whole, the reader otherwise. A macro because
/// the two deserializers are different types.
macro_rules! with_deserializer {
    ($file:expr, |$de:ident| $read:expr) => {
        match $file {
            $crate::file_read::SourceFile::Whole(held) => {
                let $de = &mut serde_json::Deserializer::from_slice(held.bytes());
                $read
            }
            $crate::file_read::SourceFile::Streamed(reader) => {
                let $de = &mut serde_json::Deserializer::from_reader(reader);
                $read
            }
        }
    };
}
pub(crate) use with_deserializer;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_held_whole_only_within_the_budget() {
        static BUDGET: Budget = Budget::new(5);
        let dir = tempfile::tempdir().unwrap();
        let (three, four) = (dir.path().join("3.json"), dir.path().join("4.json"));
        std::fs::write(&three, b"[1]").unwrap();
        std::fs::write(&four, b"[12]").unwrap();
        let a = BUDGET.open(&three).unwrap();
        let SourceFile::Whole(held) = &a else {
            panic!("a file within the budget is read whole")
        };
        assert_eq!(held.bytes(), b"[1]");
        // Three of five bytes are held: the next file streams.
        assert!(matches!(
            BUDGET.open(&four).unwrap(),
            SourceFile::Streamed(_)
        ));
        // Dropping a held file gives its bytes back.
        drop(a);
        assert!(matches!(BUDGET.open(&four).unwrap(), SourceFile::Whole(_)));
        assert_eq!(BUDGET.held.load(Ordering::Acquire), 0);
    }
}
