//! A kept row's texts, packed small. The rows of one side look alike: the
//! same attribute names, types, ARN prefixes and tag keys, over and over.
//! Once a side has seen a couple of MiB of rows, a zstd dictionary trained
//! on them packs each new row to a fraction of its text, and a million
//! resources fit in the memory a hundred thousand took. Rows kept before
//! the dictionary exists stay as written, and so does a row that would not
//! get smaller.

use zstd::bulk::{Compressor, Decompressor};
use zstd::zstd_safe::CParameter;

/// Rows taken as the dictionary's training samples.
const SAMPLE_BYTES: usize = 2 << 20;
/// How big the dictionary may grow.
const DICTIONARY_BYTES: usize = 64 << 10;
/// Small rows with a dictionary: level 3 packs nearly as well as 9 at a
/// fraction of the time.
const LEVEL: i32 = 3;

/// Every zstd frame starts with these four bytes; a packed row leaves them
/// out and puts them back before it is read.
const MAGIC: [u8; 4] = 0xFD2F_B528u32.to_le_bytes();

const AS_WRITTEN: u8 = 0;
const PACKED: u8 = 1;

enum State {
    Sampling {
        bytes: Vec<u8>,
        sizes: Vec<usize>,
    },
    Trained(Box<(Compressor<'static>, Decompressor<'static>)>),
    /// Training failed (too few or too alike samples): rows stay as written.
    AsWritten,
}

/// One side's packing. Not shared: each side has its own dictionary.
pub(super) struct Packing {
    state: State,
    sample_bytes: usize,
    scratch: Vec<u8>,
}

/// A packed row that does not unpack: memory this process wrote itself
/// was corrupted, or this code has a bug.
#[derive(Debug, thiserror::Error)]
#[error("a kept row does not unpack: {0}")]
pub(super) struct UnpackError(String);

impl Default for Packing {
    fn default() -> Self {
        Self::with_sample_bytes(SAMPLE_BYTES)
    }
}

impl Packing {
    pub(super) fn with_sample_bytes(sample_bytes: usize) -> Self {
        Self {
            state: State::Sampling {
                bytes: Vec::new(),
                sizes: Vec::new(),
            },
            sample_bytes,
            scratch: Vec::new(),
        }
    }

    /// Whether rows are being packed with a dictionary.
    #[cfg(test)]
    pub(super) fn trained(&self) -> bool {
        matches!(self.state, State::Trained(_))
    }

    pub(super) fn pack(&mut self, raw: &[u8]) -> Box<[u8]> {
        let as_written = || [&[AS_WRITTEN], raw].concat().into_boxed_slice();
        match &mut self.state {
            State::Sampling { bytes, sizes } => {
                bytes.extend_from_slice(raw);
                sizes.push(raw.len());
                if bytes.len() >= self.sample_bytes {
                    self.state = train(bytes, sizes);
                }
                as_written()
            }
            State::AsWritten => as_written(),
            State::Trained(codec) => {
                let (compressor, _) = &mut **codec;
                // zstd writes from the buffer's start, so the frame has
                // its own buffer and the row is put together after.
                let frame = &mut self.scratch;
                frame.clear();
                frame.reserve(zstd::zstd_safe::compress_bound(raw.len()));
                match compressor.compress_to_buffer(raw, frame) {
                    Ok(_) if frame.starts_with(&MAGIC) && frame.len() - MAGIC.len() < raw.len() => {
                        let mut head = vec![PACKED];
                        put_len(&mut head, raw.len());
                        // Sized exactly: a million of these are kept.
                        [head.as_slice(), &frame[MAGIC.len()..]]
                            .concat()
                            .into_boxed_slice()
                    }
                    _ => as_written(),
                }
            }
        }
    }

    /// The text `pack` was given, in `out`.
    pub(super) fn unpack<'a>(
        &mut self,
        packed: &'a [u8],
        out: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], UnpackError> {
        match packed.split_first() {
            Some((&AS_WRITTEN, raw)) => Ok(raw),
            Some((&PACKED, rest)) => {
                let State::Trained(codec) = &mut self.state else {
                    return Err(UnpackError("packed before there was a dictionary".into()));
                };
                let (_, decompressor) = &mut **codec;
                let (len, frame) = take_len(rest).ok_or_else(|| UnpackError("no length".into()))?;
                self.scratch.clear();
                self.scratch.extend_from_slice(&MAGIC);
                self.scratch.extend_from_slice(frame);
                out.clear();
                out.reserve(len);
                let n = decompressor
                    .decompress_to_buffer(self.scratch.as_slice(), out)
                    .map_err(|e| UnpackError(e.to_string()))?;
                if n != len {
                    return Err(UnpackError(format!("{n} bytes where {len} were packed")));
                }
                Ok(out.as_slice())
            }
            _ => Err(UnpackError("unknown packing".into())),
        }
    }
}

fn train(bytes: &[u8], sizes: &[usize]) -> State {
    let started = std::time::Instant::now();
    let trained = zstd::dict::from_continuous(bytes, sizes, DICTIONARY_BYTES).and_then(|dict| {
        let mut compressor = Compressor::with_dictionary(LEVEL, &dict)?;
        // The length is kept beside the frame; the checksum and the
        // dictionary's id would only repeat what this process knows.
        compressor.set_parameter(CParameter::ContentSizeFlag(false))?;
        compressor.set_parameter(CParameter::ChecksumFlag(false))?;
        compressor.set_parameter(CParameter::DictIdFlag(false))?;
        let decompressor = Decompressor::with_dictionary(&dict)?;
        Ok((dict.len(), compressor, decompressor))
    });
    match trained {
        Ok((size, compressor, decompressor)) => {
            tracing::debug!(
                samples = sizes.len(),
                dictionary_bytes = size,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "row dictionary trained"
            );
            State::Trained(Box::new((compressor, decompressor)))
        }
        Err(e) => {
            tracing::debug!(error = %e, "no row dictionary: rows kept as written");
            State::AsWritten
        }
    }
}

/// Appends `n` as a LEB128 varint.
pub(super) fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A LEB128 varint off the front of `bytes`, and what follows it.
pub(super) fn take_len(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut n = 0usize;
    for (i, b) in bytes.iter().enumerate().take(10) {
        n |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize) -> Vec<u8> {
        format!(
            r#"{{"instance_type":"t3.medium","ami":"ami-0c1c30571d2dba5ce","subnet_id":"subnet-{:08x}","private_ip":"10.0.{}.{}","tags":{{"Name":"res-{i}","team":"payments"}}}}"#,
            i % 64,
            i >> 8 & 255,
            i & 255
        )
        .into_bytes()
    }

    #[test]
    fn rows_read_back_as_written_before_and_after_the_dictionary() {
        let mut packing = Packing::with_sample_bytes(64 << 10);
        let mut packed = Vec::new();
        for i in 0..5_000 {
            packed.push((i, packing.pack(&row(i))));
        }
        assert!(packing.trained());
        let (early, late) = (&packed[0].1, &packed[4_999].1);
        assert_eq!(early[0], AS_WRITTEN);
        assert_eq!(late[0], PACKED);
        assert!(
            late.len() * 3 < row(4_999).len(),
            "{} bytes packed from {}",
            late.len(),
            row(4_999).len()
        );
        let mut out = Vec::new();
        for (i, p) in &packed {
            assert_eq!(packing.unpack(p, &mut out).unwrap(), row(*i).as_slice());
        }
    }

    #[test]
    fn too_few_samples_leave_rows_as_written() {
        let mut packing = Packing::with_sample_bytes(10);
        let p = packing.pack(b"{}");
        assert!(!packing.trained());
        let p2 = packing.pack(b"{\"a\":1}");
        let mut out = Vec::new();
        assert_eq!(packing.unpack(&p, &mut out).unwrap(), b"{}");
        assert_eq!(packing.unpack(&p2, &mut out).unwrap(), b"{\"a\":1}");
        assert!(packing.unpack(&[7, 1, 2], &mut out).is_err());
    }

    #[test]
    fn lengths_round_trip() {
        for n in [0, 1, 127, 128, 300, 1 << 20, usize::MAX >> 1] {
            let mut v = Vec::new();
            put_len(&mut v, n);
            v.push(42);
            assert_eq!(take_len(&v), Some((n, &[42u8][..])));
        }
    }
}
