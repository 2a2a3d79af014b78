//! The delta engine: rsync signatures of the receiver's version (fast_rsync, MD4 blocks of
//! about √length), deltas computed by the sender over bounded windows of its file, and their
//! application into a temp file by positional reads of the basis. Memory stays bounded whatever
//! the file size: no file is ever read whole.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use fast_rsync::{Signature, SignatureOptions};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::refine::FineRange;

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
pub(crate) const STRONG_LEN: u32 = 8;
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
    let starts: Vec<u64> = (0..len.div_ceil(chunk)).map(|i| i * chunk).collect();
    // One chunk buffer per running task, reused for the chunks it takes.
    let parts: Vec<io::Result<Vec<u8>>> = starts
        .par_iter()
        .map_init(Vec::new, |buffer: &mut Vec<u8>, &start| {
            buffer.resize(chunk.min(len - start) as usize, 0);
            file.read_exact_at(buffer, start)?;
            let signed = Signature::calculate(buffer, options).into_serialized();
            Ok(signed[header..].to_vec())
        })
        .collect();
    for part in parts {
        out.extend_from_slice(&part?);
    }
    Ok(out)
}

/// Computes deltas of a file against a signature, a few bounded windows at a time.
///
/// The windows of a round are diffed on rayon's threads at once. Each window is diffed with
/// a margin of two blocks on both sides and its instructions are then cut to the window
/// itself: the lead-in lets the match find its alignment before the window starts, the
/// tail lets the block that straddles the window's end match, so cutting the file into
/// windows costs almost no literal data, and the cut instructions still cover every byte
/// exactly once.
pub struct DeltaReader {
    file: File,
    /// How the windows are matched; `None`: the file goes whole.
    matcher: Option<Matcher>,
    /// The signature's block size.
    block: u64,
    offset: u64,
    len: u64,
    /// One buffer per window of a round, kept from round to round.
    buffers: Vec<Vec<u8>>,
    /// A round's instructions waiting for the fine signatures of their literals
    /// ([`crate::refine`]).
    pending: Option<(Vec<DeltaOp>, crate::refine::Targets)>,
}

/// What a [`DeltaReader`] has next.
#[derive(Debug)]
pub enum Next {
    /// Instructions; none when the file is done.
    Ops(Vec<DeltaOp>),
    /// A round whose literals may match smaller blocks: the stretches of the basis to sign
    /// with them ([`DeltaReader::refine`] takes the signatures).
    Refine(Vec<FineRange>),
}

/// How the sender matches its file against the receiver's blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Matching {
    /// fast_rsync's `diff`: every block match is checked by its MD4.
    Strict,
    /// Where a run of matching blocks starts, the block is checked by its MD4 as in `Strict`;
    /// each block after it that continues the run in the basis is accepted on its rolling
    /// checksum alone. The MD4 of nearly every byte is saved; a false match (rare, and caught
    /// by the receiver's BLAKE3 check of the whole result) costs a second, strict transfer.
    Fast,
}

/// The receiver's signature, ready for one way of matching.
enum Matcher {
    /// For fast_rsync's `diff`.
    Strict(Signature),
    /// Looked up by [`Blocks::diff`].
    Fast(Blocks),
}

/// A [`Matcher`] ready for the windows of one round.
enum Round<'a> {
    Strict(fast_rsync::IndexedSignature<'a>),
    Fast(&'a Blocks),
}

/// The block size a serialized signature announces, which must be one this side would use
/// (a peer's signature sizes the windows' margins).
fn signature_block(signature: &[u8]) -> io::Result<u64> {
    let block = match signature.get(4..8) {
        Some(&[a, b, c, d]) => u64::from(u32::from_be_bytes([a, b, c, d])),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "signature: too short",
            ))
        }
    };
    if !(MIN_BLOCK..=MAX_BLOCK).contains(&block) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("signature block size {block} outside {MIN_BLOCK}..={MAX_BLOCK} bytes"),
        ));
    }
    Ok(block)
}

impl DeltaReader {
    /// A reader of `file` (`len` bytes) against `signature` (serialized; `None`: whole file).
    pub fn new(
        file: File,
        len: u64,
        signature: Option<Vec<u8>>,
        matching: Matching,
    ) -> io::Result<Self> {
        let (matcher, block) = match signature {
            None => (None, 0),
            Some(serialized) => {
                let block = signature_block(&serialized)?;
                let matcher = match matching {
                    Matching::Fast => Matcher::Fast(Blocks::new(&serialized)?),
                    Matching::Strict => Matcher::Strict(
                        Signature::deserialize(serialized)
                            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
                    ),
                };
                (Some(matcher), block)
            }
        };
        Ok(DeltaReader {
            file,
            matcher,
            block,
            offset: 0,
            len,
            buffers: Vec::new(),
            pending: None,
        })
    }

    /// What comes next: with [`Matching::Fast`], a round whose literals may match smaller
    /// blocks first asks for their fine signatures ([`Next::Refine`], then
    /// [`DeltaReader::refine`]); otherwise the round's instructions, none when the file is done.
    pub fn next_round(&mut self) -> io::Result<Next> {
        if self.pending.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the next round asked for before the fine signatures of the last",
            ));
        }
        let at_file_start = self.offset == 0;
        let ops = self.next_ops()?;
        if matches!(self.matcher, Some(Matcher::Fast(_))) {
            let targets = crate::refine::plan(&ops, at_file_start, self.block);
            if !targets.is_empty() {
                let ranges = targets.iter().map(|(_, range)| *range).collect();
                self.pending = Some((ops, targets));
                return Ok(Next::Refine(ranges));
            }
        }
        Ok(Next::Ops(ops))
    }

    /// The instructions of the round that asked for `signatures` ([`Next::Refine`]), its
    /// literals matched against them.
    pub fn refine(&mut self, signatures: Vec<Vec<u8>>) -> io::Result<Vec<DeltaOp>> {
        let Some((ops, targets)) = self.pending.take() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "fine signatures that no round asked for",
            ));
        };
        crate::refine::apply(ops, &targets, signatures)
    }

    /// The next round's instructions without a second round of smaller blocks; empty when
    /// the file is done.
    pub fn next_ops(&mut self) -> io::Result<Vec<DeltaOp>> {
        if self.offset >= self.len {
            return Ok(Vec::new());
        }
        let Some(matcher) = &self.matcher else {
            // Whole file: literal chunks.
            let size = (self.len - self.offset).min(crate::fsx::CHUNK as u64 * 4) as usize;
            let mut data = vec![0u8; size];
            self.file.read_exact_at(&mut data, self.offset)?;
            self.offset += size as u64;
            return Ok(vec![DeltaOp::Literal(data)]);
        };
        // Strict matching's index is built once a round, for all its windows.
        let round = match matcher {
            Matcher::Strict(signature) => Round::Strict(signature.index()),
            Matcher::Fast(blocks) => Round::Fast(blocks),
        };
        let margin = 2 * self.block;
        let threads = rayon::current_num_threads().clamp(1, MAX_PARALLEL_WINDOWS) as u64;
        let window = WINDOW as u64;
        let starts: Vec<u64> = (0..threads)
            .map(|i| self.offset + i * window)
            .filter(|start| *start < self.len)
            .collect();
        let (file, len) = (&self.file, self.len);
        self.buffers.resize_with(starts.len(), Vec::new);
        let parts: Vec<io::Result<Vec<DeltaOp>>> = starts
            .par_iter()
            .zip(self.buffers.par_iter_mut())
            .map(|(&start, buffer)| {
                let end = (start + window).min(len);
                let from = start.saturating_sub(margin);
                let to = (end + margin).min(len);
                buffer.resize((to - from) as usize, 0);
                file.read_exact_at(buffer, from)?;
                let buffer = &buffer[..];
                let ops = match &round {
                    Round::Strict(index) => {
                        let mut encoded = Vec::with_capacity(buffer.len() / 8);
                        fast_rsync::diff(index, buffer, &mut encoded).map_err(|e| {
                            io::Error::new(io::ErrorKind::InvalidData, e.to_string())
                        })?;
                        parse_delta(&encoded)?
                    }
                    Round::Fast(blocks) => blocks.diff(buffer),
                };
                cut(ops, from, start, end)
            })
            .collect();
        let mut ops: Vec<DeltaOp> = Vec::new();
        for part in parts {
            for op in part? {
                push_merged(&mut ops, op);
            }
        }
        self.offset = starts
            .last()
            .map_or(self.len, |last| (last + window).min(self.len));
        Ok(ops)
    }
}

/// Windows diffed at once (each holds one window of the file in memory).
const MAX_PARALLEL_WINDOWS: usize = 4;

/// The part of `ops` (which produce the file's bytes from `at` on) that produces the bytes
/// `start..end`, a copy or literal across either end cut there.
fn cut(ops: Vec<DeltaOp>, mut at: u64, start: u64, end: u64) -> io::Result<Vec<DeltaOp>> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let len = op.output_len();
        let (lo, hi) = (at.max(start), (at + len).min(end));
        if lo < hi {
            let (skip, keep) = (lo - at, hi - lo);
            out.push(match op {
                DeltaOp::Copy { offset, .. } => DeltaOp::Copy {
                    offset: offset + skip,
                    len: keep,
                },
                DeltaOp::Literal(mut data) => {
                    if skip > 0 || keep < len {
                        data.truncate((skip + keep) as usize);
                        data.drain(..skip as usize);
                    }
                    DeltaOp::Literal(data)
                }
            });
        }
        at += len;
    }
    let produced: u64 = out.iter().map(DeltaOp::output_len).sum();
    if produced != end.saturating_sub(start) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a delta window does not cover its bytes",
        ));
    }
    Ok(out)
}

/// Appends `op`, joining it to the last instruction when both copy adjacent ranges or both
/// are literal data.
pub(crate) fn push_merged(ops: &mut Vec<DeltaOp>, op: DeltaOp) {
    match (ops.last_mut(), op) {
        (Some(DeltaOp::Copy { offset, len }), DeltaOp::Copy { offset: o, len: l })
            if *offset + *len == o =>
        {
            *len += l;
        }
        (Some(DeltaOp::Literal(data)), DeltaOp::Literal(more)) => data.extend_from_slice(&more),
        (_, op) => ops.push(op),
    }
}

/// The blocks of a serialized fast_rsync signature, looked up by rolling checksum.
pub(crate) struct Blocks {
    size: usize,
    /// Each block's rolling checksum and truncated MD4, in basis order.
    sums: Vec<(u32, [u8; 16])>,
    strong_len: usize,
    /// Rolling checksum → the blocks with it (the last block, maybe shorter, left out).
    by_sum: HashMap<u32, Vec<u32>, SumHasher>,
}

/// Maps of rolling checksums, which are spread well enough to need only a multiply (the
/// search looks one up at every byte of a changed region).
type SumHasher = std::hash::BuildHasherDefault<MultiplyHasher>;

/// A hasher of `u32` keys by one multiply.
#[derive(Default)]
struct MultiplyHasher(u64);

impl std::hash::Hasher for MultiplyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8 | u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.0 = (u64::from(value) | 1 << 32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Checks of one rolling checksum whose MD4 did not match, before that checksum is ignored
/// (a file built to collide cannot make the search hash every position).
const MAX_COLLISIONS: u32 = 1024;

/// Added to every byte by librsync's rolling checksum.
const ROLL_OFFSET: u16 = 31;

impl Blocks {
    pub(crate) fn new(signature: &[u8]) -> io::Result<Self> {
        let bad =
            |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("signature: {what}"));
        let header = signature.get(..12).ok_or_else(|| bad("too short"))?;
        let word = |at: usize| {
            u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let (size, strong_len) = (word(4) as usize, word(8) as usize);
        if size == 0 || strong_len == 0 || strong_len > 16 {
            return Err(bad("bad block or hash size"));
        }
        // Each block is its rolling checksum and its truncated MD4: a peer's signature that
        // ends inside a block is refused, not read past.
        if !(signature.len() - 12).is_multiple_of(4 + strong_len) {
            return Err(bad("it ends inside a block"));
        }
        let sums: Vec<(u32, [u8; 16])> = signature[12..]
            .chunks_exact(4 + strong_len)
            .map(|b| {
                let mut strong = [0u8; 16];
                strong[..strong_len].copy_from_slice(&b[4..]);
                (u32::from_be_bytes([b[0], b[1], b[2], b[3]]), strong)
            })
            .collect();
        let mut by_sum: HashMap<u32, Vec<u32>, SumHasher> = HashMap::default();
        let full = sums.len().saturating_sub(1);
        for (i, (sum, _)) in sums.iter().take(full).enumerate() {
            by_sum.entry(*sum).or_default().push(i as u32);
        }
        Ok(Blocks {
            size,
            sums,
            strong_len,
            by_sum,
        })
    }

    /// The signature's block size.
    pub(crate) fn block_size(&self) -> usize {
        self.size
    }

    /// Whether `data` is block `index` by its MD4.
    fn strong_match(&self, data: &[u8], index: u32) -> bool {
        use md4::Digest;
        let digest = md4::Md4::digest(data);
        self.sums[index as usize].1[..self.strong_len] == digest[..self.strong_len]
    }

    /// The instructions that make `data` from the basis ([`Matching::Fast`]).
    pub(crate) fn diff(&self, data: &[u8]) -> Vec<DeltaOp> {
        let size = self.size;
        let mut ops: Vec<DeltaOp> = Vec::new();
        let mut collisions: HashMap<u32, u32, SumHasher> = HashMap::default();
        let mut literal_from = 0;
        let mut here = 0;
        // The block the last match was, while a run goes on.
        let mut run: Option<u32> = None;
        let copy = |ops: &mut Vec<DeltaOp>, literal_from: usize, here: usize, index: u32| {
            if literal_from < here {
                push_merged(ops, DeltaOp::Literal(data[literal_from..here].to_vec()));
            }
            push_merged(
                ops,
                DeltaOp::Copy {
                    offset: u64::from(index) * size as u64,
                    len: size as u64,
                },
            );
        };
        while data.len() - here >= size {
            let mut sum = rolling_sum(&data[here..here + size]);
            if let Some(last) = run {
                let next = last + 1;
                // The next block of the run, never the basis's last one (it may be shorter).
                if (next as usize) + 1 < self.sums.len() && self.sums[next as usize].0 == sum {
                    copy(&mut ops, literal_from, here, next);
                    here += size;
                    literal_from = here;
                    run = Some(next);
                    continue;
                }
                run = None;
            }
            // Search byte by byte for a block that matches by checksum and MD4.
            loop {
                let candidates = self
                    .by_sum
                    .get(&sum)
                    .filter(|_| collisions.get(&sum).is_none_or(|n| *n < MAX_COLLISIONS));
                if let Some(candidates) = candidates {
                    let block = &data[here..here + size];
                    if let Some(&index) = candidates.iter().find(|&&i| self.strong_match(block, i))
                    {
                        copy(&mut ops, literal_from, here, index);
                        here += size;
                        literal_from = here;
                        run = Some(index);
                        break;
                    }
                    *collisions.entry(sum).or_insert(0) += 1;
                }
                if here + size >= data.len() {
                    here += 1;
                    break;
                }
                sum = roll(sum, size, data[here], data[here + size]);
                here += 1;
            }
        }
        if literal_from < data.len() {
            push_merged(&mut ops, DeltaOp::Literal(data[literal_from..].to_vec()));
        }
        ops
    }
}

/// librsync's rolling checksum of `block` (what fast_rsync's signatures hold).
///
/// `s1` is the sum of the bytes, `s2` the sum of the running sums, both modulo 2¹⁶, each
/// byte counted with 31 added. The bytes are taken 32 at a time in 32 lanes, each with its
/// own sum and sum of running sums (plain vector adds, no reduction per chunk); the lanes
/// are combined once at the end: a byte in lane `j` of chunk `c` of `C` weighs
/// `32 (C − c) − j`.
fn rolling_sum(block: &[u8]) -> u32 {
    const LANES: usize = 32;
    let mut sums = [0u16; LANES];
    let mut running = [0u16; LANES];
    let mut chunks = block.chunks_exact(LANES);
    for chunk in &mut chunks {
        for j in 0..LANES {
            sums[j] = sums[j].wrapping_add(u16::from(chunk[j]));
            running[j] = running[j].wrapping_add(sums[j]);
        }
    }
    let (mut s1, mut s2) = (0u16, 0u16);
    for j in 0..LANES {
        s1 = s1.wrapping_add(sums[j]);
        s2 = s2
            .wrapping_add(running[j].wrapping_mul(LANES as u16))
            .wrapping_sub(sums[j].wrapping_mul(j as u16));
    }
    for &byte in chunks.remainder() {
        s1 = s1.wrapping_add(u16::from(byte));
        s2 = s2.wrapping_add(s1);
    }
    let n = block.len() as u32;
    s1 = s1.wrapping_add((n as u16).wrapping_mul(ROLL_OFFSET));
    s2 =
        s2.wrapping_add(((n.wrapping_mul(n.wrapping_add(1)) / 2) as u16).wrapping_mul(ROLL_OFFSET));
    u32::from(s1) | (u32::from(s2) << 16)
}

/// The rolling checksum of a block of `size` bytes moved on by one byte: `out` leaves,
/// `inp` comes in.
fn roll(sum: u32, size: usize, out: u8, inp: u8) -> u32 {
    let (mut s1, mut s2) = (sum as u16, (sum >> 16) as u16);
    let (out, inp) = (u16::from(out), u16::from(inp));
    s1 = s1.wrapping_add(inp).wrapping_sub(out);
    s2 = s2
        .wrapping_add(s1)
        .wrapping_sub((size as u16).wrapping_mul(out.wrapping_add(ROLL_OFFSET)));
    u32::from(s1) | (u32::from(s2) << 16)
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

    /// The writer.
    pub fn writer(&self) -> &W {
        &self.out
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

    /// The output of a delta of `new` against `old`, its hash and its literal bytes.
    fn delta_with(old: &[u8], new: &[u8], matching: Matching) -> (Vec<u8>, blake3::Hash, u64) {
        let basis = file_with(old);
        let signature = signature(&basis, old.len() as u64).unwrap();
        let mut reader =
            DeltaReader::new(file_with(new), new.len() as u64, Some(signature), matching).unwrap();
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
        (out, hash, literal)
    }

    /// Both matchings reproduce `new`; the larger of their literal bytes.
    fn round_trip(old: &[u8], new: &[u8]) -> (Vec<u8>, u64) {
        let (out, hash, strict) = delta_with(old, new, Matching::Strict);
        assert_eq!(hash, blake3::hash(new));
        assert_eq!(out, new);
        let (out, hash, fast) = delta_with(old, new, Matching::Fast);
        assert_eq!(hash, blake3::hash(new));
        (out, strict.max(fast))
    }

    /// The rolling checksum fast_rsync put in a signature of `block` as one block.
    fn signed_sum(block: &[u8]) -> u32 {
        let options = SignatureOptions {
            block_size: block.len().max(1) as u32,
            crypto_hash_size: STRONG_LEN,
        };
        let signed = Signature::calculate(block, options).into_serialized();
        u32::from_be_bytes([signed[12], signed[13], signed[14], signed[15]])
    }

    #[test]
    fn rolling_sums_are_fast_rsyncs() {
        let data = pseudo_random(300_000, 9);
        for len in [1, 31, 32, 33, 64, 1000, 1024, 16_384, 65_537, 131_072] {
            assert_eq!(rolling_sum(&data[..len]), signed_sum(&data[..len]), "{len}");
            assert_eq!(
                rolling_sum(&vec![255; len]),
                signed_sum(&vec![255; len]),
                "{len}"
            );
        }
        // Rolled along byte by byte, the sum stays the sum of the window.
        let size = 1000;
        let mut sum = rolling_sum(&data[..size]);
        for at in 1..3000 {
            sum = roll(sum, size, data[at - 1], data[at + size - 1]);
            assert_eq!(sum, rolling_sum(&data[at..at + size]), "{at}");
        }
    }

    #[test]
    fn a_false_match_of_fast_matching_is_caught_by_the_hash_and_strict_matching_is_right() {
        // Blocks of 4 KiB: swapping two bytes 2048 apart that differ by 32 keeps the rolling
        // checksum ((32 · 2048) mod 2¹⁶ = 0), so fast matching takes the changed block as the
        // next one of the run.
        let mut old = pseudo_random(WINDOW, 4);
        let size = block_size(old.len() as u64) as usize;
        assert!(size > 2048);
        let at = 5 * size + 100;
        (old[at], old[at + 2048]) = (10, 42);
        let mut new = old.clone();
        (new[at], new[at + 2048]) = (42, 10);
        assert_ne!(new, old);
        assert_eq!(
            rolling_sum(&new[5 * size..6 * size]),
            rolling_sum(&old[5 * size..6 * size])
        );
        let (_, hash, _) = delta_with(&old, &new, Matching::Fast);
        assert_ne!(hash, blake3::hash(&new), "the false match goes unnoticed");
        let (out, hash, _) = delta_with(&old, &new, Matching::Strict);
        assert_eq!(hash, blake3::hash(&new));
        assert_eq!(out, new);
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

    #[test]
    fn a_signature_that_ends_inside_a_block_is_refused_by_both_matchings() {
        // Found by the mirror_message fuzz target: the last block of a peer's signature cut
        // short made fast matching panic.
        let old = pseudo_random(5000, 4);
        let mut signature = signature(&file_with(&old), old.len() as u64).unwrap();
        signature.truncate(signature.len() - 2);
        for matching in [Matching::Fast, Matching::Strict] {
            let reader = DeltaReader::new(file_with(&old), 5000, Some(signature.clone()), matching);
            let error = reader.err().expect("a truncated signature is an error");
            assert_eq!(
                error.kind(),
                io::ErrorKind::InvalidData,
                "{matching:?}: {error}"
            );
        }
    }
}
