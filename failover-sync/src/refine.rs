//! The delta's second round: where the first round (blocks of about √length) left literal
//! data between two copies, the receiver signs the part of its basis between those copies with
//! much smaller blocks, and the sender matches the literal against that signature, so an edit
//! of a few hundred bytes costs about itself instead of a whole large block.
//!
//! Only the stretches that differed are signed again: for a 256 MiB file with 100 small edits
//! the second signature is ~100 KiB, against the 16 KiB × 100 of literal data it saves.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use fast_rsync::{Signature, SignatureOptions};
use serde::{Deserialize, Serialize};

use crate::delta::{push_merged, Blocks, DeltaOp, STRONG_LEN};

/// A stretch of the receiver's basis to sign with small blocks: where the sender believes the
/// old version of one literal of its delta lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FineRange {
    /// Offset in the basis.
    pub offset: u64,
    /// Bytes from there (cut at the basis's end by the receiver).
    pub len: u64,
    /// The block size to sign it with.
    pub block: u32,
}

/// The literals of a round to match again (by their index among its instructions), each with
/// the stretch of the basis to sign for it.
pub(crate) type Targets = Vec<(usize, FineRange)>;

/// Literal data shorter than this is sent as it is: a second round trip would save little.
const MIN_LITERAL: u64 = 1024;
/// Smallest and largest fine block.
const MIN_FINE_BLOCK: u32 = 64;
const MAX_FINE_BLOCK: u32 = 4096;
/// Largest stretch signed again (larger ones are rewrites, not edits).
const MAX_RANGE: u64 = 8 << 20;
/// Most stretches in one request, and most bytes signed for one (bounds what a peer's request
/// can make the receiver read).
const MAX_RANGES: usize = 4096;
const MAX_SIGNED: u64 = 256 << 20;

/// The literals of `ops` worth a second round, each with the stretch of the basis to sign:
/// from the end of the copy before the literal to the start of the copy after it (the basis
/// bytes the edit replaced), or, without a copy after it, as long as the literal and one
/// coarse block. `at_file_start`: `ops` begin at the file's first byte (a literal first then
/// faces the basis's start).
pub(crate) fn plan(ops: &[DeltaOp], at_file_start: bool, block: u64) -> Targets {
    let mut targets = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let DeltaOp::Literal(data) = op else {
            continue;
        };
        let literal = data.len() as u64;
        if literal < MIN_LITERAL {
            continue;
        }
        let start = match i.checked_sub(1).map(|before| &ops[before]) {
            Some(DeltaOp::Copy { offset, len }) => offset + len,
            None if at_file_start => 0,
            _ => continue,
        };
        let end = match ops.get(i + 1) {
            Some(DeltaOp::Copy { offset, .. })
                if *offset >= start && *offset - start <= literal + 2 * block =>
            {
                *offset
            }
            _ => start + literal + block,
        };
        let len = end - start;
        if len == 0 || len > MAX_RANGE {
            continue;
        }
        let fine = fine_block(len);
        if literal < 2 * u64::from(fine) {
            continue;
        }
        targets.push((
            i,
            FineRange {
                offset: start,
                len,
                block: fine,
            },
        ));
        if targets.len() == MAX_RANGES {
            break;
        }
    }
    targets
}

/// The block size that costs least for a stretch of `len` bytes: each block costs 12 bytes of
/// signature, and each edit about one block of literal data, so about √(12 · len).
fn fine_block(len: u64) -> u32 {
    let root = (12 * len).isqrt() / 16 * 16;
    root.clamp(u64::from(MIN_FINE_BLOCK), u64::from(MAX_FINE_BLOCK)) as u32
}

/// The receiver's side: the fine signatures of `ranges` of `file` (`file_len` bytes), one per
/// range in order (a range past the end signs nothing).
pub(crate) fn sign(file: &File, file_len: u64, ranges: &[FineRange]) -> io::Result<Vec<Vec<u8>>> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    if ranges.len() > MAX_RANGES {
        return Err(invalid(format!(
            "{} ranges to sign (at most {MAX_RANGES})",
            ranges.len()
        )));
    }
    let mut signed = 0u64;
    let mut buffer = Vec::new();
    let mut out = Vec::with_capacity(ranges.len());
    for range in ranges {
        if !(MIN_FINE_BLOCK..=MAX_FINE_BLOCK).contains(&range.block) {
            return Err(invalid(format!(
                "fine block size {} outside {MIN_FINE_BLOCK}..={MAX_FINE_BLOCK}",
                range.block
            )));
        }
        if range.len > MAX_RANGE {
            return Err(invalid(format!(
                "range of {} bytes to sign (at most {MAX_RANGE})",
                range.len
            )));
        }
        let start = range.offset.min(file_len);
        let end = range.offset.saturating_add(range.len).min(file_len);
        signed += end - start;
        if signed > MAX_SIGNED {
            return Err(invalid(format!(
                "more than {MAX_SIGNED} bytes to sign in one request"
            )));
        }
        buffer.resize((end - start) as usize, 0);
        file.read_exact_at(&mut buffer, start)?;
        let options = SignatureOptions {
            block_size: range.block,
            crypto_hash_size: STRONG_LEN,
        };
        out.push(Signature::calculate(&buffer, options).into_serialized());
    }
    Ok(out)
}

/// The sender's side: `ops` with each literal of `targets` matched against its fine signature
/// (an empty signature: the receiver could not sign it, the literal stays).
pub(crate) fn apply(
    ops: Vec<DeltaOp>,
    targets: &[(usize, FineRange)],
    signatures: Vec<Vec<u8>>,
) -> io::Result<Vec<DeltaOp>> {
    if signatures.len() != targets.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} fine signatures for {} ranges",
                signatures.len(),
                targets.len()
            ),
        ));
    }
    let mut refined: Vec<Option<Vec<DeltaOp>>> = vec![None; ops.len()];
    for ((index, range), signature) in targets.iter().zip(signatures) {
        if signature.is_empty() {
            continue;
        }
        let blocks = Blocks::new(&signature)?;
        if blocks.block_size() != range.block as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a fine signature of {}-byte blocks for a range asked with {}",
                    blocks.block_size(),
                    range.block
                ),
            ));
        }
        let Some(DeltaOp::Literal(data)) = ops.get(*index) else {
            continue;
        };
        let matched = blocks
            .diff(data)
            .into_iter()
            .map(|op| match op {
                DeltaOp::Copy { offset, len } => DeltaOp::Copy {
                    offset: offset + range.offset,
                    len,
                },
                literal => literal,
            })
            .collect();
        refined[*index] = Some(matched);
    }
    let mut out = Vec::with_capacity(ops.len());
    for (op, replacement) in ops.into_iter().zip(refined) {
        match replacement {
            Some(parts) => parts
                .into_iter()
                .for_each(|part| push_merged(&mut out, part)),
            None => push_merged(&mut out, op),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    fn literal(len: usize) -> DeltaOp {
        DeltaOp::Literal(vec![7; len])
    }

    #[test]
    fn a_literal_between_two_copies_asks_for_the_basis_between_them() {
        let ops = vec![
            DeltaOp::Copy {
                offset: 0,
                len: 16384,
            },
            literal(16600),
            DeltaOp::Copy {
                offset: 32768,
                len: 16384,
            },
        ];
        let targets = plan(&ops, true, 16384);
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].0, 1);
        assert_eq!((targets[0].1.offset, targets[0].1.len), (16384, 16384));
        assert_eq!(targets[0].1.block, fine_block(16384));
        assert_eq!(fine_block(16384), 432);
    }

    #[test]
    fn short_literals_and_unplaceable_ones_are_left_alone() {
        let ops = vec![
            literal(5000),
            DeltaOp::Copy {
                offset: 6000,
                len: 64,
            },
            literal(100),
        ];
        // Not at the file's start: the first literal has nothing before it to place it by.
        assert!(plan(&ops, false, 1024).is_empty());
        // At the start it faces the basis's first bytes; the short one is still left.
        let targets = plan(&ops, true, 1024);
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].1.offset, 0);
    }

    #[test]
    fn a_peer_asking_too_much_is_refused_with_what_was_wrong() {
        let file = tempfile::tempfile().unwrap();
        let too_big = FineRange {
            offset: 0,
            len: MAX_RANGE + 1,
            block: 512,
        };
        let err = sign(&file, 0, &[too_big]).unwrap_err();
        assert!(err.to_string().contains("range of"), "{err}");
        let odd_block = FineRange {
            offset: 0,
            len: 10,
            block: 3,
        };
        let err = sign(&file, 0, &[odd_block]).unwrap_err();
        assert!(err.to_string().contains("fine block size 3"), "{err}");
        let err = apply(vec![literal(2000)], &[], vec![vec![1]]).unwrap_err();
        assert!(err.to_string().contains("1 fine signatures for 0"), "{err}");
    }

    #[test]
    fn an_edit_inside_a_large_block_costs_about_itself_after_the_second_round() {
        // Basis: 64 KiB of varied bytes; target: the same with 300 bytes overwritten in the
        // middle of the second 16 KiB block.
        let basis: Vec<u8> = (0..65536u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut target = basis.clone();
        target[20000..20300].fill(0xAB);
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &basis).unwrap();
        let ops = vec![
            DeltaOp::Copy {
                offset: 0,
                len: 16384,
            },
            DeltaOp::Literal(target[16384..32768].to_vec()),
            DeltaOp::Copy {
                offset: 32768,
                len: 32768,
            },
        ];
        let targets = plan(&ops, true, 16384);
        let signatures = sign(
            &file,
            basis.len() as u64,
            &targets.iter().map(|t| t.1).collect::<Vec<_>>(),
        )
        .unwrap();
        let refined = apply(ops, &targets, signatures).unwrap();
        let literal: usize = refined
            .iter()
            .map(|op| match op {
                DeltaOp::Literal(data) => data.len(),
                DeltaOp::Copy { .. } => 0,
            })
            .sum();
        // The edit, the parts of the two small blocks it touched, and the stretch's last
        // (partial) block, which is never matched.
        assert!(
            literal <= 300 + 3 * 432,
            "{literal} bytes of literal data left"
        );
        assert!(
            refined.len() > 3,
            "the literal was matched in parts: {refined:?}"
        );
        // The refined instructions still make the target.
        let mut made = Vec::new();
        for op in &refined {
            match op {
                DeltaOp::Literal(data) => made.extend_from_slice(data),
                DeltaOp::Copy { offset, len } => {
                    made.extend_from_slice(&basis[*offset as usize..(*offset + *len) as usize])
                }
            }
        }
        assert_eq!(made, target);
    }
}
