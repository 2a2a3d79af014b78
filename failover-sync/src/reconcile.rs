//! Reconciliation: from both replicas' current trees and their last-synced state, what to do
//! with each path. Pure: no I/O, no clock (the time used to name conflict copies of symlinks is
//! passed in), so every rule is tested on plain values.

use std::collections::{BTreeMap, BTreeSet};

use crate::entry::{conflict_name, is_conflict_copy, Entry};
use crate::path::RelPath;

/// One of the two replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The first (`DIR_A`, or this server).
    A,
    /// The second (`DIR_B`, or the peer).
    B,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    /// 0 for A, 1 for B.
    pub fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// What to do with one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Both sides are the same (or both absent): nothing to do but record it.
    Equal,
    /// Make the other side like `from` (which may be absent: a deletion).
    Take {
        /// The side whose version wins.
        from: Side,
    },
    /// Changed on both sides: `winner` keeps the name; the loser's version is kept at `copy`
    /// (on both sides), or overwritten when `copy` is `None` (a conflict copy's own conflict).
    Conflict {
        /// The side whose version keeps the name.
        winner: Side,
        /// Where the other version is kept.
        copy: Option<RelPath>,
    },
}

/// One path's state and decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The path.
    pub path: RelPath,
    /// Now on A and B.
    pub now: [Option<Entry>; 2],
    /// At the last sync, on A and B.
    pub base: [Option<Entry>; 2],
    /// What to do.
    pub decision: Decision,
}

impl Item {
    /// The entry that ends up at the path on both sides.
    pub fn result(&self) -> Option<&Entry> {
        match &self.decision {
            Decision::Equal => self.now[0].as_ref(),
            Decision::Take { from } => self.now[from.index()].as_ref(),
            Decision::Conflict { winner, .. } => self.now[winner.index()].as_ref(),
        }
    }
}

/// The plan of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every path either side has or had, sorted (parents before children).
    pub items: Vec<Item>,
    /// Files and symlinks the plan deletes, on either side.
    pub deletions: u64,
    /// Files and symlinks at the last sync (both sides agreed).
    pub base_files: u64,
}

/// The inputs of [`reconcile`] for one side.
pub struct SideState<'a> {
    /// The node name (conflict copies and tie-breaks).
    pub node: &'a str,
    /// The tree now.
    pub now: &'a BTreeMap<RelPath, Entry>,
    /// The tree at the last sync.
    pub base: &'a BTreeMap<RelPath, Entry>,
}

fn same(a: Option<&Entry>, b: Option<&Entry>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same_content(b),
        _ => false,
    }
}

/// Decides every path. `now_ns` names the conflict copies of versions that have no mtime
/// (symlinks).
pub fn reconcile(a: &SideState<'_>, b: &SideState<'_>, now_ns: i64) -> Plan {
    let sides = [a, b];
    let paths: BTreeSet<&RelPath> = a
        .now
        .keys()
        .chain(b.now.keys())
        .chain(a.base.keys())
        .chain(b.base.keys())
        .collect();
    // Names taken on either side, so that conflict copies never collide.
    let mut taken: BTreeSet<RelPath> = a.now.keys().chain(b.now.keys()).cloned().collect();
    let mut items: BTreeMap<RelPath, Item> = BTreeMap::new();
    let mut base_files = 0;
    for path in paths {
        let now = [a.now.get(path).cloned(), b.now.get(path).cloned()];
        let base_entries = [a.base.get(path).cloned(), b.base.get(path).cloned()];
        // The last-synced state counts only when both replicas recorded the same.
        let base = match &base_entries {
            [Some(x), Some(y)] if x.same_content(y) => Some(x),
            _ => None,
        };
        if base.is_some_and(|e| !e.is_dir()) {
            base_files += 1;
        }
        let changed = [!same(now[0].as_ref(), base), !same(now[1].as_ref(), base)];
        let decision = if same(now[0].as_ref(), now[1].as_ref()) {
            Decision::Equal
        } else if !changed[0] {
            Decision::Take { from: Side::B }
        } else if !changed[1] {
            Decision::Take { from: Side::A }
        } else {
            match (&now[0], &now[1]) {
                // An edit beats a deletion.
                (None, _) => Decision::Take { from: Side::B },
                (_, None) => Decision::Take { from: Side::A },
                (Some(x), Some(y)) => {
                    let winner = if x.is_dir() != y.is_dir() {
                        // A directory keeps the name (it may hold many versions).
                        if x.is_dir() {
                            Side::A
                        } else {
                            Side::B
                        }
                    } else if x.mtime_ns != y.mtime_ns {
                        if x.mtime_ns > y.mtime_ns {
                            Side::A
                        } else {
                            Side::B
                        }
                    } else if a.node <= b.node {
                        Side::A
                    } else {
                        Side::B
                    };
                    let loser = sides[winner.other().index()];
                    let loser_entry = if winner == Side::A { y } else { x };
                    if x.same_data(y) {
                        // Only the mode differs: nothing to keep.
                        Decision::Take { from: winner }
                    } else {
                        let copy = (!is_conflict_copy(path.file_name())).then(|| {
                            let at = if loser_entry.mtime_ns != 0 {
                                loser_entry.mtime_ns
                            } else {
                                now_ns
                            };
                            free_copy_name(path, loser.node, at, &mut taken)
                        });
                        Decision::Conflict {
                            winner,
                            copy: copy.flatten(),
                        }
                    }
                }
            }
        };
        items.insert(
            path.clone(),
            Item {
                path: path.clone(),
                now,
                base: base_entries,
                decision,
            },
        );
    }
    keep_parents_of_survivors(&mut items, sides, now_ns, &mut taken);
    let mut deletions = 0;
    for item in items.values() {
        let result = item.result();
        for side in [Side::A, Side::B] {
            let was = item.now[side.index()].as_ref();
            if result.is_none() && was.is_some_and(|e| !e.is_dir()) {
                deletions += 1;
            }
        }
    }
    Plan {
        items: items.into_values().collect(),
        deletions,
        base_files,
    }
}

/// A conflict-copy name beside `path` that neither side uses.
fn free_copy_name(
    path: &RelPath,
    node: &str,
    at_ns: i64,
    taken: &mut BTreeSet<RelPath>,
) -> Option<RelPath> {
    for suffix in 0..1000 {
        let name = conflict_name(path.file_name(), node, at_ns, suffix);
        let candidate = path.sibling(&name).ok()?;
        if !taken.contains(&candidate) {
            taken.insert(candidate.clone());
            return Some(candidate);
        }
    }
    None
}

/// A path that survives needs its parents as directories on both sides: a directory deleted
/// (or replaced by a file) on one side while the other side changed something inside it is
/// kept (an edit beats a deletion), and a file that took its name is kept as a conflict copy.
fn keep_parents_of_survivors(
    items: &mut BTreeMap<RelPath, Item>,
    sides: [&SideState<'_>; 2],
    now_ns: i64,
    taken: &mut BTreeSet<RelPath>,
) {
    let survivors: Vec<(RelPath, Side)> = items
        .values()
        .filter_map(|item| {
            let source = match &item.decision {
                Decision::Equal => Side::A,
                Decision::Take { from } => *from,
                Decision::Conflict { winner, .. } => *winner,
            };
            item.result().map(|_| (item.path.clone(), source))
        })
        .collect();
    for (path, source) in survivors {
        for parent in path.ancestors() {
            let Ok(parent) = RelPath::new(parent) else {
                continue;
            };
            let Some(item) = items.get_mut(&parent) else {
                continue;
            };
            if item.result().is_some_and(Entry::is_dir) {
                continue;
            }
            // The side the survivor comes from has this parent as a directory.
            let dir_side = if item.now[source.index()].as_ref().is_some_and(Entry::is_dir) {
                source
            } else {
                source.other()
            };
            let other = dir_side.other();
            let other_now = item.now[other.index()].as_ref();
            let base = match &item.base {
                [Some(x), Some(y)] if x.same_content(y) => Some(x),
                _ => None,
            };
            item.decision = match other_now {
                Some(entry) if !entry.is_dir() && !same(Some(entry), base) => {
                    let at = if entry.mtime_ns != 0 {
                        entry.mtime_ns
                    } else {
                        now_ns
                    };
                    Decision::Conflict {
                        winner: dir_side,
                        copy: free_copy_name(&parent, sides[other.index()].node, at, taken),
                    }
                }
                _ => Decision::Take { from: dir_side },
            };
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use crate::entry::{Hash, Kind, StatKey};

    fn file(content: &str, mtime: i64) -> Entry {
        Entry {
            kind: Kind::File {
                size: content.len() as u64,
                hash: Hash::of(content.as_bytes()),
            },
            mode: 0o644,
            mtime_ns: mtime,
            stat: StatKey::default(),
        }
    }

    fn dir() -> Entry {
        Entry {
            kind: Kind::Dir,
            mode: 0o755,
            mtime_ns: 0,
            stat: StatKey::default(),
        }
    }

    fn tree(entries: &[(&str, Entry)]) -> BTreeMap<RelPath, Entry> {
        entries
            .iter()
            .map(|(p, e)| (RelPath::new(*p).unwrap(), e.clone()))
            .collect()
    }

    fn plan(
        a_now: &[(&str, Entry)],
        b_now: &[(&str, Entry)],
        base: &[(&str, Entry)],
    ) -> BTreeMap<String, Decision> {
        let (an, bn, base) = (tree(a_now), tree(b_now), tree(base));
        let a = SideState {
            node: "alpha",
            now: &an,
            base: &base,
        };
        let b = SideState {
            node: "beta",
            now: &bn,
            base: &base,
        };
        reconcile(&a, &b, 0)
            .items
            .into_iter()
            .map(|i| (i.path.to_string(), i.decision))
            .collect()
    }

    #[test]
    fn one_sided_changes_propagate() {
        let old = file("old", 1);
        let new = file("new", 2);
        let p = plan(
            &[
                ("edited", new.clone()),
                ("same", old.clone()),
                ("fresh", new.clone()),
            ],
            &[
                ("edited", old.clone()),
                ("same", old.clone()),
                ("gone", old.clone()),
            ],
            &[
                ("edited", old.clone()),
                ("same", old.clone()),
                ("gone", old.clone()),
            ],
        );
        assert_eq!(p["edited"], Decision::Take { from: Side::A });
        assert_eq!(p["same"], Decision::Equal);
        assert_eq!(p["fresh"], Decision::Take { from: Side::A });
        // Deleted on A, unchanged on B: the deletion propagates.
        assert_eq!(p["gone"], Decision::Take { from: Side::A });
    }

    #[test]
    fn newer_mtime_keeps_the_name_and_the_other_is_copied() {
        let p = plan(
            &[("f.txt", file("a", 10))],
            &[("f.txt", file("b", 20))],
            &[("f.txt", file("base", 1))],
        );
        match &p["f.txt"] {
            Decision::Conflict {
                winner: Side::B,
                copy: Some(copy),
            } => assert!(copy.as_str().starts_with("f.conflict-alpha-1970")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn equal_mtimes_are_decided_by_the_node_name() {
        let p = plan(&[("f", file("a", 5))], &[("f", file("b", 5))], &[]);
        assert!(matches!(
            p["f"],
            Decision::Conflict {
                winner: Side::A,
                copy: Some(_)
            }
        ));
    }

    #[test]
    fn same_new_content_on_both_sides_is_not_a_conflict() {
        let p = plan(&[("f", file("x", 5))], &[("f", file("x", 9))], &[]);
        assert_eq!(p["f"], Decision::Equal);
    }

    #[test]
    fn an_edit_beats_a_deletion() {
        let p = plan(&[], &[("f", file("edited", 9))], &[("f", file("base", 1))]);
        assert_eq!(p["f"], Decision::Take { from: Side::B });
    }

    #[test]
    fn a_conflict_copy_gets_no_conflict_copy() {
        let name = "f.conflict-beta-20261122T153045Z.txt";
        let p = plan(&[(name, file("a", 10))], &[(name, file("b", 20))], &[]);
        assert_eq!(
            p[name],
            Decision::Conflict {
                winner: Side::B,
                copy: None
            }
        );
    }

    #[test]
    fn a_deleted_directory_with_an_edit_inside_is_kept() {
        let p = plan(
            &[],
            &[
                ("d", dir()),
                ("d/kept", file("new", 5)),
                ("d/old", file("o", 1)),
            ],
            &[("d", dir()), ("d/old", file("o", 1))],
        );
        assert_eq!(p["d"], Decision::Take { from: Side::B });
        assert_eq!(p["d/kept"], Decision::Take { from: Side::B });
        assert_eq!(p["d/old"], Decision::Take { from: Side::A });
    }

    #[test]
    fn a_directory_beats_a_file_of_the_same_name() {
        let p = plan(
            &[("x", file("f", 99))],
            &[("x", dir()), ("x/in", file("i", 1))],
            &[],
        );
        assert!(matches!(
            p["x"],
            Decision::Conflict {
                winner: Side::B,
                copy: Some(_)
            }
        ));
    }

    #[test]
    fn mode_only_changes_propagate_without_copies() {
        let mut x = file("same", 1);
        x.mode = 0o600;
        let p = plan(
            &[("f", x)],
            &[("f", file("same", 1))],
            &[("f", file("same", 1))],
        );
        assert_eq!(p["f"], Decision::Take { from: Side::A });
    }

    #[test]
    fn deletions_are_counted_against_the_base() {
        let (an, bn) = (tree(&[]), tree(&[("a", file("1", 1)), ("b", file("2", 1))]));
        let base = tree(&[("a", file("1", 1)), ("b", file("2", 1))]);
        let plan = reconcile(
            &SideState {
                node: "a",
                now: &an,
                base: &base,
            },
            &SideState {
                node: "b",
                now: &bn,
                base: &base,
            },
            0,
        );
        assert_eq!((plan.deletions, plan.base_files), (2, 2));
    }
}
