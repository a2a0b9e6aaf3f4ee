//! How the loaders read a local file: whole when it is small enough to
//! hold, streamed through a buffer when it is not.
//!
//! serde_json parses a slice about twice as fast as a reader (measured on
//! the scan bench's 80–100 MB files: 0.8 s against 1.6 s to a `Value`), so
//! holding the file pays for itself; the cap bounds what a bulk read holds,
//! one file per core.

use std::io::{BufRead, BufReader};
use std::path::Path;

/// Files up to this size are read whole.
pub(crate) const WHOLE_FILE_MAX: u64 = 128 << 20;

/// The buffer a larger file is streamed through.
pub(crate) const READ_BUFFER: usize = 1 << 20;

/// A file opened for one of the JSON loaders.
pub(crate) enum SourceFile {
    Whole(Vec<u8>),
    Streamed(BufReader<std::fs::File>),
}

impl SourceFile {
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        if len <= WHOLE_FILE_MAX {
            let mut bytes = Vec::with_capacity(len as usize + 1);
            std::io::Read::read_to_end(&mut &file, &mut bytes)?;
            Ok(Self::Whole(bytes))
        } else {
            Ok(Self::Streamed(BufReader::with_capacity(READ_BUFFER, file)))
        }
    }

    /// The first bytes, to tell encrypted or binary files from JSON.
    pub(crate) fn prefix(&mut self) -> std::io::Result<&[u8]> {
        match self {
            Self::Whole(bytes) => Ok(bytes),
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
            $crate::file_read::SourceFile::Whole(bytes) => {
                let $de = &mut serde_json::Deserializer::from_slice(&bytes);
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
