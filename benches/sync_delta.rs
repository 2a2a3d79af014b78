//! Criterion bench of the mirror's delta engine on a 64 MiB file with 50 scattered edits:
//! the receiver's signature, the sender's delta (fast matching, and strict: fast_rsync's
//! `diff`, every block checked by MD4), and applying it into a new file.

use std::fs::File;
use std::io::{Seek, Write};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use failover::sync::{signature, Applier, DeltaReader, Matching};

const SIZE: usize = 64 << 20;

fn data() -> (Vec<u8>, Vec<u8>) {
    let mut state = 42u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let old: Vec<u8> = (0..SIZE).map(|_| next() as u8).collect();
    let mut new = old.clone();
    for _ in 0..50 {
        let at = next() as usize % (new.len() - 1024);
        let len = 16 + next() as usize % 500;
        match next() % 3 {
            0 => new[at..at + len].iter_mut().for_each(|b| *b ^= 0x5a),
            1 => new
                .splice(at..at, std::iter::repeat_n(7u8, len))
                .for_each(drop),
            _ => new.drain(at..at + len).for_each(drop),
        }
    }
    (old, new)
}

fn file_with(bytes: &[u8]) -> File {
    let mut file = tempfile::tempfile().expect("temp file");
    file.write_all(bytes).expect("write");
    file.rewind().expect("rewind");
    file
}

fn delta_ops(
    new: &File,
    len: u64,
    sig: Vec<u8>,
    matching: Matching,
) -> Vec<Vec<failover::sync::DeltaOp>> {
    let mut reader = DeltaReader::new(new.try_clone().expect("clone"), len, Some(sig), matching)
        .expect("reader");
    let mut windows = Vec::new();
    loop {
        let ops = reader.next_ops().expect("delta");
        if ops.is_empty() {
            return windows;
        }
        windows.push(ops);
    }
}

fn bench(c: &mut Criterion) {
    let (old, new) = data();
    let (old_file, new_file) = (file_with(&old), file_with(&new));
    let sig = signature(&old_file, old.len() as u64).expect("signature");
    let windows = delta_ops(&new_file, new.len() as u64, sig.clone(), Matching::Fast);
    let literal: usize = windows
        .iter()
        .flatten()
        .map(|op| match op {
            failover::sync::DeltaOp::Literal(data) => data.len(),
            _ => 0,
        })
        .sum();
    eprintln!(
        "64 MiB, 50 edits: signature {} B, literal {literal} B",
        sig.len()
    );
    let mut group = c.benchmark_group("delta_64MiB");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.bench_function("signature", |b| {
        b.iter(|| signature(&old_file, old.len() as u64).expect("signature"))
    });
    group.bench_function("delta", |b| {
        b.iter(|| delta_ops(&new_file, new.len() as u64, sig.clone(), Matching::Fast))
    });
    group.bench_function("delta_strict", |b| {
        b.iter(|| delta_ops(&new_file, new.len() as u64, sig.clone(), Matching::Strict))
    });
    group.bench_function("apply", |b| {
        b.iter(|| {
            let out = std::io::sink();
            let mut applier =
                Applier::new(out, Some(old_file.try_clone().expect("clone"))).expect("applier");
            for ops in &windows {
                applier.apply(ops, new.len() as u64).expect("apply");
            }
            applier.finish().0
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
