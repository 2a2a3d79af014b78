//! Property test: random creates, edits, deletes, renames, mode changes and new directories on
//! both replicas, then one sync: the replicas are identical, every version written since the
//! last sync exists on both sides (under its name or as a conflict copy), and a second sync
//! does nothing.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{contents, snapshot, Pair, Snap};
use proptest::prelude::*;

const NAMES: &[&str] = &["a", "b", "c.txt", "d/e", "d/f.html", "d/g/h", "i/j"];

#[derive(Clone, Debug)]
enum Op {
    Write(usize),
    Delete(usize),
    Rename(usize, usize),
    Chmod(usize, bool),
    Mkdir(usize),
    RemoveTree(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let name = 0..NAMES.len();
    prop_oneof![
        3 => name.clone().prop_map(Op::Write),
        2 => name.clone().prop_map(Op::Delete),
        2 => (name.clone(), name.clone()).prop_map(|(a, b)| Op::Rename(a, b)),
        1 => (name.clone(), any::<bool>()).prop_map(|(a, x)| Op::Chmod(a, x)),
        1 => name.clone().prop_map(Op::Mkdir),
        1 => name.prop_map(Op::RemoveTree),
    ]
}

/// Applies `op` where it makes sense (an op on a missing path does nothing). Each write has
/// content no other write has.
fn apply(root: &Path, op: &Op, counter: &mut u32, tag: &str) {
    let path = |i: usize| root.join(NAMES[i]);
    match op {
        Op::Write(i) => {
            *counter += 1;
            let target = path(*i);
            if let Some(parent) = target.parent() {
                if std::fs::create_dir_all(parent).is_err() {
                    return;
                }
            }
            if target.is_dir() {
                return;
            }
            let _ = std::fs::write(&target, format!("{tag} write {counter}"));
        }
        Op::Delete(i) => {
            let _ = std::fs::remove_file(path(*i));
        }
        Op::Rename(from, to) => {
            let (from, to) = (path(*from), path(*to));
            if from.is_file() && !to.exists() {
                if let Some(parent) = to.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let _ = std::fs::rename(from, to);
            }
        }
        Op::Chmod(i, executable) => {
            let mode = if *executable { 0o755 } else { 0o600 };
            if path(*i).is_file() {
                let _ = std::fs::set_permissions(path(*i), std::fs::Permissions::from_mode(mode));
            }
        }
        Op::Mkdir(i) => {
            let _ = std::fs::create_dir_all(path(*i));
        }
        Op::RemoveTree(i) => {
            if let Some(top) = Path::new(NAMES[*i]).components().next() {
                let top = root.join(top);
                if top.is_dir() {
                    let _ = std::fs::remove_dir_all(top);
                }
            }
        }
    }
}

fn versions_since(
    root: &Path,
    base: &std::collections::BTreeMap<String, Snap>,
) -> BTreeSet<Vec<u8>> {
    snapshot(root)
        .into_iter()
        .filter_map(|(path, snap)| match &snap {
            Snap::File { content, .. } if base.get(&path) != Some(&snap) => Some(content.clone()),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_on_both_sides_converge_without_losing_a_version(
        initial in prop::collection::vec(op(), 0..8),
        on_a in prop::collection::vec(op(), 0..12),
        on_b in prop::collection::vec(op(), 0..12),
    ) {
        let pair = Pair::new();
        let mut counter = 0;
        for op in &initial {
            apply(pair.a(), op, &mut counter, "initial");
        }
        pair.sync_converged();
        let base = snapshot(pair.a());
        for op in &on_a {
            apply(pair.a(), op, &mut counter, "a");
        }
        for op in &on_b {
            apply(pair.b(), op, &mut counter, "b");
        }
        let mut written: BTreeSet<Vec<u8>> = versions_since(pair.a(), &base);
        written.extend(versions_since(pair.b(), &base));

        pair.sync_converged();

        let kept: BTreeSet<Vec<u8>> = contents(pair.a()).into_iter().collect();
        for version in &written {
            prop_assert!(
                kept.contains(version),
                "lost {:?}; now: {:?}",
                String::from_utf8_lossy(version),
                snapshot(pair.a()).keys().collect::<Vec<_>>()
            );
        }
    }
}
