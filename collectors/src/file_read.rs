//! How the loaders read a local file: whole while the files held whole
//! stay within a budget; past it, mapped into memory in a bulk read and
//! streamed through a buffer otherwise.
//!
//! serde_json parses a slice about twice as fast as a reader (measured on
//! the scan bench's 80–100 MB files: 0.8 s against 1.6 s to a `Value`), so
//! holding a file pays for itself. The budget is shared by every thread
//! reading, so what a bulk read holds does not grow with the cores. A bulk
//! read (a scan) holds what it read as tables until it compares, over half
//! its input: its budget is an eighth of its input, so holding files whole
//! adds a share to that rather than a fixed amount (at 1 M resources, both
//! files a scan reads at once; at 100 k, none of its two 80–100 MB files).
//!
//! A bulk read maps a file over the budget instead and still parses it as a
//! slice: the loaders cut each element of its big array out as text
//! (`Elements::Mapped`), parse it on its own, and release the pages behind
//! it, so the file costs a window of memory, not its size. Only a bulk read
//! maps: a mapped file that another process truncates kills the reader
//! (SIGBUS), and a scan reads files at rest that its user named, where the
//! services read files as they are written.

use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::de::{DeserializeSeed, Error as _, SeqAccess};
use serde_json::value::RawValue;

/// What the files read whole may hold at once, together.
const WHOLE_FILES_BUDGET: u64 = 128 << 20;

/// A bulk read of N bytes may hold N / this whole at once...
const BULK_READ_SHARE: u64 = 8;
/// ...within these bounds.
const BULK_READ_BUDGET: std::ops::RangeInclusive<u64> = (16 << 20)..=(1 << 30);

/// The buffer a file is streamed through.
const READ_BUFFER: usize = 1 << 20;

/// A mapped file's pages are released behind the parser this many bytes
/// at a time (a multiple of every page size).
const RELEASE_STEP: usize = 8 << 20;

/// A budget of bytes, and what of it is in use.
struct Budget {
    limit: AtomicU64,
    held: AtomicU64,
    /// Set by a bulk read: files over the budget are mapped, not streamed.
    map_over: AtomicBool,
}

/// The budget every loader's whole files share.
static WHOLE_FILES: Budget = Budget::new(WHOLE_FILES_BUDGET);

impl Budget {
    const fn new(limit: u64) -> Self {
        Self {
            limit: AtomicU64::new(limit),
            held: AtomicU64::new(0),
            map_over: AtomicBool::new(false),
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
            None if self.map_over.load(Ordering::Acquire) => {
                Ok(SourceFile::Mapped(MappedFile::map(&file)?))
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
    Mapped(MappedFile),
    Streamed(BufReader<std::fs::File>),
}

/// A file mapped into memory, its pages released behind the parser.
pub(crate) struct MappedFile {
    map: memmap2::Mmap,
    /// The pages before this offset were released.
    released: Cell<usize>,
    /// Elements to read in the parser's stream before the next is cut out
    /// as text (`Elements::next`).
    until_cut: Cell<usize>,
}

impl MappedFile {
    /// Maps `file`, which the caller knows to be at rest (see the module's
    /// note).
    pub(crate) fn map(file: &std::fs::File) -> std::io::Result<Self> {
        // SAFETY: the map is only read, and the file is at rest.
        let map = unsafe { memmap2::Mmap::map(file)? };
        // Read ahead harder; a failed hint changes nothing.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Self {
            map,
            released: Cell::new(0),
            until_cut: Cell::new(0),
        })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Where `text`, a part of the map, starts in it.
    fn offset_of(&self, text: &str) -> usize {
        text.as_ptr() as usize - self.map.as_ptr() as usize
    }

    /// Releases the pages before the end of `element`, a step at a time.
    fn passed(&self, element: &str) {
        let end = self.offset_of(element) + element.len();
        let released = self.released.get();
        let upto = end / RELEASE_STEP * RELEASE_STEP;
        if upto > released {
            self.release(released..upto);
            self.released.set(upto);
        }
    }

    fn release(&self, pages: std::ops::Range<usize>) {
        if pages.is_empty() {
            return;
        }
        // SAFETY: the map is a read-only private map of a file: a released
        // page that is read again is read from the file anew, so nothing
        // that still points into it sees other bytes.
        let _ = unsafe {
            self.map.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                pages.start,
                pages.len(),
            )
        };
    }

    /// The map as text if it is all UTF-8, checked a step at a time with
    /// the pages released behind, so that the check never holds the file.
    /// The parser then reads the pages again, from the page cache.
    pub(crate) fn text(&self) -> Result<&str, std::str::Utf8Error> {
        let (mut at, mut released) = (0, 0);
        while at < self.map.len() {
            let end = (at + RELEASE_STEP).min(self.map.len());
            // A character cut by the step's end is checked with the next.
            at = match std::str::from_utf8(&self.map[at..end]) {
                Ok(_) => end,
                Err(e) if e.error_len().is_none() && end < self.map.len() => at + e.valid_up_to(),
                Err(e) => return Err(e),
            };
            let upto = at / RELEASE_STEP * RELEASE_STEP;
            self.release(released..upto);
            released = released.max(upto);
        }
        // SAFETY: every byte was checked above.
        Ok(unsafe { std::str::from_utf8_unchecked(&self.map) })
    }

    /// `e`, raised parsing `element` on its own, with its position in the
    /// file.
    fn locate(&self, element: &str, e: &serde_json::Error) -> String {
        let start = self.offset_of(element);
        let before = &self.map[..start];
        let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
        let lines_before = memchr::memchr_iter(b'\n', before).count();
        let (line, column) = match e.line() {
            0 | 1 => (lines_before + 1, start - line_start + e.column().max(1)),
            l => (lines_before + l, e.column()),
        };
        let message = e.to_string();
        let reason = message
            .strip_suffix(&format!(" at line {} column {}", e.line(), e.column()))
            .unwrap_or(&message);
        // serde_json takes the position back out of the message.
        format!("{reason} at line {line} column {column}")
    }
}

/// `bytes` written to a file and mapped, for the loaders' tests.
#[cfg(test)]
pub(crate) fn mapped_copy(bytes: &[u8]) -> MappedFile {
    let mut file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut file, bytes).unwrap();
    MappedFile::map(&file).unwrap()
}

#[cfg(test)]
impl MappedFile {
    pub(crate) fn released(&self) -> usize {
        self.released.get()
    }
}

/// How a loader reads the elements of a file's big array
/// (`configurationItems`, `resources`).
#[derive(Clone, Copy)]
pub(crate) enum Elements<'m> {
    /// In the parser's stream, as the rest of the document.
    InStream,
    /// Cut out of a mapped file as text and parsed on their own, so that
    /// the pages before each can be released once it is read.
    Mapped(&'m MappedFile),
}

/// Bytes read between two elements cut out as text: how far behind the
/// parser the released pages stay.
const CUT_EVERY_BYTES: usize = 1 << 20;

impl Elements<'_> {
    /// The next element of `seq`, through `seed`.
    pub(crate) fn next<'de, A, S, T>(self, seq: &mut A, seed: S) -> Result<Option<T>, A::Error>
    where
        A: SeqAccess<'de>,
        S: for<'a> DeserializeSeed<'a, Value = T>,
    {
        let Self::Mapped(file) = self else {
            return seq.next_element_seed(seed);
        };
        // Cutting an element out as text is a second pass over it (a tenth
        // of reading an item). Only where the parser is, which the text
        // tells, needs it: an element is cut out once a megabyte or so,
        // and the others are read in the stream, which names lines in the
        // file as well.
        if let Some(left) = file.until_cut.get().checked_sub(1) {
            file.until_cut.set(left);
            return seq.next_element_seed(seed);
        }
        // The element borrows from the map: a mapped file is parsed as a
        // slice.
        let Some(raw) = seq.next_element::<&RawValue>()? else {
            return Ok(None);
        };
        let text = raw.get();
        let mut de = serde_json::Deserializer::from_str(text);
        let value = seed
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|e| A::Error::custom(file.locate(text, &e)))?;
        file.passed(text);
        file.until_cut.set(CUT_EVERY_BYTES / text.len().max(1));
        Ok(Some(value))
    }
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
    WHOLE_FILES.map_over.store(true, Ordering::Release);
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
            Self::Mapped(mapped) => Ok(mapped.bytes()),
            Self::Streamed(reader) => reader.fill_buf(),
        }
    }
}

/// Runs `$read` with `$de` bound to a serde_json deserializer over `$file`
/// and `$elements` to how its big array's elements are read: a slice when
/// it was read whole or mapped, the reader otherwise. A macro because the
/// two deserializers are different types.
macro_rules! with_deserializer {
    // Text checked as UTF-8 once, as a whole, is not checked again string
    // by string as the parser meets it (6% of a scan); bytes that are not
    // UTF-8 are parsed as they are, for the parser's own error.
    (@slice $checked:expr, $bytes:expr, $how:expr, |$de:ident, $elements:ident| $read:expr) => {
        match $checked {
            Ok(text) => {
                let $de = &mut serde_json::Deserializer::from_str(text);
                let $elements = $how;
                $read
            }
            Err(_) => {
                let $de = &mut serde_json::Deserializer::from_slice($bytes);
                let $elements = $how;
                $read
            }
        }
    };
    ($file:expr, |$de:ident, $elements:ident| $read:expr) => {
        match $file {
            $crate::file_read::SourceFile::Whole(held) => $crate::file_read::with_deserializer!(
                @slice std::str::from_utf8(held.bytes()),
                held.bytes(),
                $crate::file_read::Elements::InStream,
                |$de, $elements| $read
            ),
            $crate::file_read::SourceFile::Mapped(mapped) => $crate::file_read::with_deserializer!(
                @slice mapped.text(),
                mapped.bytes(),
                $crate::file_read::Elements::Mapped(&mapped),
                |$de, $elements| $read
            ),
            $crate::file_read::SourceFile::Streamed(reader) => {
                let $de = &mut serde_json::Deserializer::from_reader(reader);
                let $elements = $crate::file_read::Elements::InStream;
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
    fn a_mapped_file_is_text_only_if_every_byte_is_utf8_across_steps() {
        // A three-byte character across the first step's end.
        let mut bytes = vec![b'a'; RELEASE_STEP - 1];
        bytes.extend("€ and then some".as_bytes());
        let mapped = mapped_copy(&bytes);
        assert_eq!(mapped.text().unwrap().len(), bytes.len());
        bytes.push(0xff);
        assert!(mapped_copy(&bytes).text().is_err());
        bytes.pop();
        bytes.extend(&[0xe2, 0x82]);
        assert!(mapped_copy(&bytes).text().is_err(), "cut at the end");
    }

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
