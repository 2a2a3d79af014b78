//! The delta engine: rsync signatures of the receiver's version (fast_rsync, MD4 blocks of
//! about √length), deltas computed by the sender over bounded windows of its file, and their
//! application into a temp file by positional reads of the basis. Memory stays bounded whatever
//! the file size: no file is ever read whole.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use fast_rsync::{Signature, SignatureOptions};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// One instruction of a delta.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeltaOp {
    /// Copy `len` bytes from the receiver's basis at `offset`.
    Copy {
        /// Offset in the basis.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// Bytes the receiver does not have.
    Literal(Vec<u8>),
}

impl DeltaOp {
    /// Bytes this instruction takes on the wire (literal data plus a small header).
    pub fn wire_len(&self) -> u64 {
        match self {
            DeltaOp::Copy { .. } => 17,
            DeltaOp::Literal(data) => data.len() as u64 + 5,
        }
    }

    /// Bytes of the target this instruction produces.
    pub fn output_len(&self) -> u64 {
        match self {
            DeltaOp::Copy { len, .. } => *len,
            DeltaOp::Literal(data) => data.len() as u64,
        }
    }
}

/// Bytes of MD4 kept per block: a false match is caught by the final BLAKE3 check (and the
/// file is then sent whole), so 8 bytes are plenty.
const STRONG_LEN: u32 = 8;
/// Smallest block.
const MIN_BLOCK: u64 = 1024;
/// Largest block (rsync's limit too).
const MAX_BLOCK: u64 = 128 << 10;
/// Bytes of the basis signed per task.
const SIGNATURE_CHUNK: u64 = 8 << 20;
/// Bytes of the sender's file examined per delta window.
pub const WINDOW: usize = 16 << 20;

/// The block size for a basis of `len` bytes: about √len, a multiple of 64, clamped to
/// 1 KiB – 128 KiB.
pub fn block_size(len: u64) -> u32 {
    let root = len.isqrt() / 64 * 64;
    root.clamp(MIN_BLOCK, MAX_BLOCK) as u32
}

/// The serialized fast_rsync signature of `file` (`len` bytes), computed chunk by chunk on
/// rayon's threads (a few chunks in memory at a time).
pub fn signature(file: &File, len: u64) -> io::Result<Vec<u8>> {
    let block = block_size(len);
    let options = SignatureOptions {
        block_size: block,
        crypto_hash_size: STRONG_LEN,
    };
    let chunk = SIGNATURE_CHUNK / u64::from(block) * u64::from(block);
    let mut out = Signature::calculate(&[], options).into_serialized();
    let header = out.len();
    let batch = rayon::current_num_threads().max(1) as u64;
    let mut offset = 0;
    while offset < len {
        let starts: Vec<u64> = (0..batch)
            .map(|i| offset + i * chunk)
            .filter(|start| *start < len)
            .collect();
        let parts: Vec<io::Result<Vec<u8>>> = starts
            .par_iter()
            .map(|&start| {
                let mut buffer = vec![0u8; chunk.min(len - start) as usize];
                file.read_exact_at(&mut buffer, start)?;
                let signed = Signature::calculate(&buffer, options).into_serialized();
                Ok(signed[header..].to_vec())
            })
            .collect();
        for part in parts {
            out.extend_from_slice(&part?);
        }
        offset += batch * chunk;
    }
    Ok(out)
}

/// Computes deltas of a file against a signature, one bounded window at a time.
pub struct DeltaReader {
    file: File,
    signature: Option<Signature>,
    offset: u64,
    len: u64,
    buffer: Vec<u8>,
}

impl DeltaReader {
    /// A reader of `file` (`len` bytes) against `signature` (serialized; `None`: whole file).
    pub fn new(file: File, len: u64, signature: Option<Vec<u8>>) -> io::Result<Self> {
        let signature = signature
            .map(Signature::deserialize)
            .transpose()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(DeltaReader {
            file,
            signature,
            offset: 0,
            len,
            buffer: Vec::new(),
        })
    }

    /// The next window's instructions; empty when the file is done.
    pub fn next_ops(&mut self) -> io::Result<Vec<DeltaOp>> {
        if self.offset >= self.len {
            return Ok(Vec::new());
        }
        let Some(signature) = &self.signature else {
            // Whole file: literal chunks.
            let size = (self.len - self.offset).min(crate::fsx::CHUNK as u64 * 4) as usize;
            let mut data = vec![0u8; size];
            self.file.read_exact_at(&mut data, self.offset)?;
            self.offset += size as u64;
            return Ok(vec![DeltaOp::Literal(data)]);
        };
        let size = (self.len - self.offset).min(WINDOW as u64) as usize;
        self.buffer.resize(size, 0);
        self.file.read_exact_at(&mut self.buffer, self.offset)?;
        let last_window = self.offset + size as u64 >= self.len;
        let mut encoded = Vec::with_capacity(size / 8);
        fast_rsync::diff(&signature.index(), &self.buffer, &mut encoded)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let mut ops = parse_delta(&encoded)?;
        let mut consumed = size as u64;
        // An unmatched tail may be the start of a block that continues in the next window:
        // leave it to the next window instead of sending it as literal data now.
        if !last_window {
            if let Some(DeltaOp::Literal(tail)) = ops.last() {
                let tail_len = tail.len() as u64;
                if tail_len < consumed / 2 {
                    consumed -= tail_len;
                    ops.pop();
                }
            }
        }
        self.offset += consumed;
        Ok(ops)
    }
}

/// Parses fast_rsync's (librsync's) delta format into instructions.
fn parse_delta(bytes: &[u8]) -> io::Result<Vec<DeltaOp>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed delta");
    let mut ops = Vec::new();
    let mut at = 4; // magic
    let read_int = |at: &mut usize, width: usize| -> io::Result<u64> {
        let slice = bytes.get(*at..*at + width).ok_or_else(bad)?;
        *at += width;
        Ok(slice.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    };
    loop {
        let command = *bytes.get(at).ok_or_else(bad)?;
        at += 1;
        match command {
            0 => return Ok(ops),
            1..=0x40 => {
                let len = usize::from(command);
                let data = bytes.get(at..at + len).ok_or_else(bad)?;
                at += len;
                ops.push(DeltaOp::Literal(data.to_vec()));
            }
            0x41..=0x44 => {
                let width = 1 << (command - 0x41);
                let len = usize::try_from(read_int(&mut at, width)?).map_err(|_| bad())?;
                let data = bytes.get(at..at + len).ok_or_else(bad)?;
                at += len;
                ops.push(DeltaOp::Literal(data.to_vec()));
            }
            0x45..=0x54 => {
                let class = command - 0x45;
                let offset = read_int(&mut at, 1 << (class / 4))?;
                let len = read_int(&mut at, 1 << (class % 4))?;
                ops.push(DeltaOp::Copy { offset, len });
            }
            _ => return Err(bad()),
        }
    }
}

/// Applies instructions against a basis, writing the output to `out` and hashing it.
pub struct Applier<W: Write> {
    out: W,
    basis: Option<File>,
    basis_len: u64,
    hasher: blake3::Hasher,
    written: u64,
    buffer: Vec<u8>,
}

impl<W: Write> Applier<W> {
    /// An applier writing to `out`, copying from `basis` (`None`: only literals are valid).
    pub fn new(out: W, basis: Option<File>) -> io::Result<Self> {
        let basis_len = match &basis {
            Some(file) => file.metadata()?.len(),
            None => 0,
        };
        Ok(Applier {
            out,
            basis,
            basis_len,
            hasher: blake3::Hasher::new(),
            written: 0,
            buffer: Vec::new(),
        })
    }

    /// Applies `ops`; a copy outside the basis is an error (a malformed or hostile delta).
    pub fn apply(&mut self, ops: &[DeltaOp], limit: u64) -> io::Result<()> {
        for op in ops {
            if self.written.saturating_add(op.output_len()) > limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "delta produces more data than the announced size",
                ));
            }
            match op {
                DeltaOp::Literal(data) => self.emit_literal(data)?,
                DeltaOp::Copy { offset, len } => {
                    let basis = self.basis.as_ref().ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "copy without a basis")
                    })?;
                    if offset
                        .checked_add(*len)
                        .is_none_or(|end| end > self.basis_len)
                    {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "copy beyond the end of the basis",
                        ));
                    }
                    let mut done = 0;
                    while done < *len {
                        let part = (*len - done).min(crate::fsx::CHUNK as u64) as usize;
                        self.buffer.resize(part, 0);
                        basis.read_exact_at(&mut self.buffer, offset + done)?;
                        self.out.write_all(&self.buffer)?;
                        self.hasher.update(&self.buffer);
                        done += part as u64;
                    }
                    self.written += len;
                }
            }
        }
        Ok(())
    }

    fn emit_literal(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)?;
        self.hasher.update(data);
        self.written += data.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The hash of everything written, and the writer.
    pub fn finish(self) -> (blake3::Hash, W) {
        (self.hasher.finalize(), self.out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use std::io::Seek;

    fn file_with(data: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(data).unwrap();
        file.rewind().unwrap();
        file
    }

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 33) as u8
            })
            .collect()
    }

    fn round_trip(old: &[u8], new: &[u8]) -> (Vec<u8>, u64) {
        let basis = file_with(old);
        let signature = signature(&basis, old.len() as u64).unwrap();
        let mut reader =
            DeltaReader::new(file_with(new), new.len() as u64, Some(signature)).unwrap();
        let mut applier = Applier::new(Vec::new(), Some(basis)).unwrap();
        let mut literal = 0;
        loop {
            let ops = reader.next_ops().unwrap();
            if ops.is_empty() {
                break;
            }
            for op in &ops {
                if let DeltaOp::Literal(data) = op {
                    literal += data.len() as u64;
                }
            }
            applier.apply(&ops, new.len() as u64).unwrap();
        }
        let (hash, out) = applier.finish();
        assert_eq!(hash, blake3::hash(new));
        (out, literal)
    }

    #[test]
    fn block_sizes_follow_the_square_root() {
        assert_eq!(block_size(0), 1024);
        assert_eq!(block_size(256 << 20), 16384);
        assert_eq!(block_size(1 << 40), 128 << 10);
    }

    #[test]
    fn deltas_reproduce_the_new_file_and_send_little() {
        let old = pseudo_random(3 * WINDOW + 12345, 1);
        let mut new = old.clone();
        new[100_000..100_010].copy_from_slice(b"0123456789");
        new.splice(WINDOW + 7..WINDOW + 7, b"inserted".iter().copied());
        new.drain(2 * WINDOW..2 * WINDOW + 5000);
        let (out, literal) = round_trip(&old, &new);
        assert_eq!(out, new);
        // Three edits: a few blocks each, not megabytes.
        assert!(
            literal < 8 * u64::from(block_size(old.len() as u64)),
            "{literal}"
        );
    }

    #[test]
    fn unrelated_and_empty_inputs() {
        assert_eq!(round_trip(b"", b"abc").0, b"abc");
        assert_eq!(round_trip(b"abc", b"").0, b"");
        let a = pseudo_random(50_000, 2);
        let b = pseudo_random(70_000, 3);
        assert_eq!(round_trip(&a, &b).0, b);
    }

    #[test]
    fn hostile_copies_are_rejected() {
        let mut applier = Applier::new(Vec::new(), Some(file_with(b"short"))).unwrap();
        let op = DeltaOp::Copy { offset: 3, len: 10 };
        assert!(applier.apply(&[op], 100).is_err());
        let mut applier = Applier::new(Vec::new(), None).unwrap();
        assert!(applier
            .apply(&[DeltaOp::Copy { offset: 0, len: 1 }], 100)
            .is_err());
        let mut applier = Applier::new(Vec::new(), None).unwrap();
        assert!(applier.apply(&[DeltaOp::Literal(vec![0; 10])], 5).is_err());
        assert!(parse_delta(&[0, 0, 0, 0, 0x99]).is_err());
        assert!(parse_delta(&[0, 0, 0, 0, 0x44, 255]).is_err());
    }
}
