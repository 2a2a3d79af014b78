//! Reconciliation: from both replicas' current trees and their last-synced state, what to do
//! with each path. Pure: no I/O, no clock (the time used to name conflict copies of symlinks is
//! passed in), so every rule is tested on plain values.

use std::collections::BTreeSet;

use crate::entry::{conflict_name, is_conflict_copy, Entry};
use crate::index::lookup;
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
pub enum PathAction {
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

/// One path's state and action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The path.
    pub path: RelPath,
    /// Now on A and B.
    pub now: [Option<Entry>; 2],
    /// At the last sync, on A and B.
    pub base: [Option<Entry>; 2],
    /// What to do.
    pub action: PathAction,
}

impl Item {
    /// The entry that ends up at the path on both sides.
    pub fn result(&self) -> Option<&Entry> {
        match &self.action {
            PathAction::Equal => self.now[0].as_ref(),
            PathAction::Take { from } => self.now[from.index()].as_ref(),
            PathAction::Conflict { winner, .. } => self.now[winner.index()].as_ref(),
        }
    }
}

/// The plan of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every path with something to do, sorted (parents before children). A path either side
    /// has or had that is not here is the same on both sides ([`PathAction::Equal`]): a run
    /// after few changes carries few items.
    pub items: Vec<Item>,
    /// Paths the same on both sides (not in `items`).
    pub equal: u64,
    /// Per side, whether some path the same on both sides differs from what that side's
    /// last-synced state holds for it (its times or identity moved, or it is new or gone on
    /// both sides): that side's index must be written even when nothing else changes.
    pub equal_changed: [bool; 2],
    /// Files and symlinks the plan deletes, on either side.
    pub deletions: u64,
    /// Files and symlinks at the last sync (both sides agreed).
    pub base_files: u64,
}

/// The inputs of [`reconcile`] for one side.
pub struct SideState<'a> {
    /// The node name (conflict copies and tie-breaks).
    pub node: &'a str,
    /// The tree now, sorted by path, each path once (as `index::sorted_entries`
    /// makes it).
    pub now: &'a [(RelPath, Entry)],
    /// The tree at the last sync, sorted the same way.
    pub base: &'a [(RelPath, Entry)],
}

fn same(a: Option<&Entry>, b: Option<&Entry>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same_content(b),
        _ => false,
    }
}

/// Names in use on either side, so that conflict copies never collide: the two current trees
/// (searched, not copied) and the copies named so far.
struct Taken<'a> {
    now: [&'a [(RelPath, Entry)]; 2],
    named: BTreeSet<RelPath>,
}

impl Taken<'_> {
    fn contains(&self, path: &RelPath) -> bool {
        self.named.contains(path)
            || self
                .now
                .iter()
                .any(|tree| lookup(tree, path.as_str()).is_some())
    }
}

/// Decides every path. `now_ns` names the conflict copies of versions that have no mtime
/// (symlinks).
///
/// The four trees are walked together in path order (a merge, like `comm`): one pass, no
/// tree built, the plan comes out sorted.
pub fn reconcile(a: &SideState<'_>, b: &SideState<'_>, now_ns: i64) -> Plan {
    let sides = [a, b];
    let mut merge = Merge {
        lists: [a.now, b.now, a.base, b.base],
        at: [0; 4],
    };
    let mut taken = Taken {
        now: [a.now, b.now],
        named: BTreeSet::new(),
    };
    let capacity = merge.lists.iter().map(|l| l.len()).max().unwrap_or(0);
    let mut items: Vec<Item> = Vec::with_capacity(capacity);
    let mut base_files = 0;
    let mut equal = 0;
    let mut equal_changed = [false, false];
    while let Some((path, found)) = merge.next_path() {
        let now = [found[0], found[1]];
        // The last-synced state counts only when both replicas recorded the same.
        let base = match (found[2], found[3]) {
            (Some(x), Some(y)) if x.same_content(y) => Some(x),
            _ => None,
        };
        if base.is_some_and(|e| !e.is_dir()) {
            base_files += 1;
        }
        if same(now[0], now[1]) {
            equal += 1;
            for side in 0..2 {
                if found[side] != found[side + 2] {
                    equal_changed[side] = true;
                }
            }
            continue;
        }
        let action = decide(path, now, base, sides, now_ns, &mut taken);
        items.push(Item {
            path: path.clone(),
            now: [now[0].cloned(), now[1].cloned()],
            base: [found[2].cloned(), found[3].cloned()],
            action,
        });
    }
    keep_parents_of_survivors(&mut items, sides, now_ns, &mut taken);
    let deletions = count_deletions(&items);
    Plan {
        items,
        equal,
        equal_changed,
        deletions,
        base_files,
    }
}

/// The four sorted lists (now on A and B, last synced on A and B) walked together.
struct Merge<'a> {
    lists: [&'a [(RelPath, Entry)]; 4],
    /// The next position in each list.
    at: [usize; 4],
}

impl<'a> Merge<'a> {
    /// The next path in any list, with its entry in each list that has it.
    fn next_path(&mut self) -> Option<(&'a RelPath, [Option<&'a Entry>; 4])> {
        let mut next: Option<&'a RelPath> = None;
        for (list, &i) in self.lists.iter().zip(&self.at) {
            if let Some((path, _)) = list.get(i) {
                if next.is_none_or(|n| path < n) {
                    next = Some(path);
                }
            }
        }
        let path = next?;
        let mut found: [Option<&'a Entry>; 4] = [None; 4];
        let positions = self.lists.iter().zip(self.at.iter_mut());
        for ((list, at), slot) in positions.zip(found.iter_mut()) {
            if let Some((p, entry)) = list.get(*at) {
                if p == path {
                    *slot = Some(entry);
                    *at += 1;
                }
            }
        }
        Some((path, found))
    }
}

/// What to do with a path that differs between the sides, given what it was at the last sync
/// (`base`): the side that did not change it takes the other's version; changed on both, an
/// edit beats a deletion, else the newer version keeps the name and the other is kept as a
/// conflict copy (unless only the mode or owner differs: then the newer version wins, and on
/// equal mtimes the node whose name sorts first; the data is the same, nothing is copied).
fn decide(
    path: &RelPath,
    now: [Option<&Entry>; 2],
    base: Option<&Entry>,
    sides: [&SideState<'_>; 2],
    now_ns: i64,
    taken: &mut Taken<'_>,
) -> PathAction {
    let changed = [!same(now[0], base), !same(now[1], base)];
    if let ([false, false], (Some(x), Some(y))) = (changed, (now[0], now[1])) {
        // Neither differs from the last sync, yet they differ: only in owners the last sync
        // did not record (an index from before owners were kept). The rule of an owner
        // change on both sides decides.
        return PathAction::Take {
            from: winner(x, y, sides),
        };
    }
    if !changed[0] {
        return PathAction::Take { from: Side::B };
    }
    if !changed[1] {
        return PathAction::Take { from: Side::A };
    }
    match (now[0], now[1]) {
        // An edit beats a deletion.
        (None, _) => PathAction::Take { from: Side::B },
        (_, None) => PathAction::Take { from: Side::A },
        (Some(x), Some(y)) => {
            let winner = winner(x, y, sides);
            let loser = sides[winner.other().index()];
            let loser_entry = if winner == Side::A { y } else { x };
            if x.same_data(y) {
                // Only the mode differs: nothing to keep.
                PathAction::Take { from: winner }
            } else {
                let copy = (!is_conflict_copy(path.file_name())).then(|| {
                    let at = if loser_entry.mtime_ns != 0 {
                        loser_entry.mtime_ns
                    } else {
                        now_ns
                    };
                    free_copy_name(path, loser.node, at, taken)
                });
                PathAction::Conflict {
                    winner,
                    copy: copy.flatten(),
                }
            }
        }
    }
}

/// The side whose version keeps the name when both changed: a directory (it may hold many
/// versions), else the newer mtime, else the node whose name sorts first.
fn winner(x: &Entry, y: &Entry, sides: [&SideState<'_>; 2]) -> Side {
    if x.is_dir() != y.is_dir() {
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
    } else if sides[0].node <= sides[1].node {
        Side::A
    } else {
        Side::B
    }
}

/// Files and symlinks the plan deletes, on either side.
fn count_deletions(items: &[Item]) -> u64 {
    let mut deletions = 0;
    for item in items {
        let result = item.result();
        for side in [Side::A, Side::B] {
            let was = item.now[side.index()].as_ref();
            if result.is_none() && was.is_some_and(|e| !e.is_dir()) {
                deletions += 1;
            }
        }
    }
    deletions
}

/// A conflict-copy name beside `path` that neither side uses.
fn free_copy_name(
    path: &RelPath,
    node: &str,
    at_ns: i64,
    taken: &mut Taken<'_>,
) -> Option<RelPath> {
    for suffix in 0..1000 {
        let name = conflict_name(path.file_name(), node, at_ns, suffix);
        let candidate = path.sibling(&name).ok()?;
        if !taken.contains(&candidate) {
            taken.named.insert(candidate.clone());
            return Some(candidate);
        }
    }
    None
}

/// A path that survives needs its parents as directories on both sides: a directory deleted
/// (or replaced by a file) on one side while the other side changed something inside it is
/// kept (an edit beats a deletion), and a file that took its name is kept as a conflict copy.
///
/// Only a survivor missing on one side can need this: one present on both sides has every
/// parent as a directory on both sides, and a directory on both sides stays one. A parent
/// not among the items is the same on both sides, hence a directory on both.
fn keep_parents_of_survivors(
    items: &mut [Item],
    sides: [&SideState<'_>; 2],
    now_ns: i64,
    taken: &mut Taken<'_>,
) {
    let survivors: Vec<(RelPath, Side)> = items
        .iter()
        .filter(|item| item.now[0].is_none() || item.now[1].is_none())
        .filter_map(|item| {
            let source = match &item.action {
                PathAction::Equal => Side::A,
                PathAction::Take { from } => *from,
                PathAction::Conflict { winner, .. } => *winner,
            };
            item.result().map(|_| (item.path.clone(), source))
        })
        .collect();
    for (path, source) in survivors {
        for parent in path.ancestors() {
            let Ok(at) = items.binary_search_by(|item| item.path.as_str().cmp(parent)) else {
                continue;
            };
            let item = &mut items[at];
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
            item.action = match other_now {
                Some(entry) if !entry.is_dir() && !same(Some(entry), base) => {
                    let at = if entry.mtime_ns != 0 {
                        entry.mtime_ns
                    } else {
                        now_ns
                    };
                    PathAction::Conflict {
                        winner: dir_side,
                        copy: free_copy_name(&item.path, sides[other.index()].node, at, taken),
                    }
                }
                _ => PathAction::Take { from: dir_side },
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
            owner: None,
            mtime_ns: mtime,
            stat: StatKey::default(),
            xattrs: None,
        }
    }

    fn dir() -> Entry {
        Entry {
            kind: Kind::Dir,
            mode: 0o755,
            owner: None,
            mtime_ns: 0,
            stat: StatKey::default(),
            xattrs: None,
        }
    }

    fn tree(entries: &[(&str, Entry)]) -> Vec<(RelPath, Entry)> {
        crate::index::sorted_entries(
            entries
                .iter()
                .map(|(p, e)| (RelPath::new(*p).unwrap(), e.clone()))
                .collect(),
        )
    }

    fn plan(
        a_now: &[(&str, Entry)],
        b_now: &[(&str, Entry)],
        base: &[(&str, Entry)],
    ) -> std::collections::BTreeMap<String, PathAction> {
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
        // Paths without an item are the same on both sides.
        let mut decisions: std::collections::BTreeMap<String, PathAction> = an
            .iter()
            .chain(&bn)
            .chain(&base)
            .map(|(p, _)| (p.to_string(), PathAction::Equal))
            .collect();
        let plan = reconcile(&a, &b, 0);
        assert!(plan.items.iter().all(|i| i.action != PathAction::Equal));
        decisions.extend(
            plan.items
                .into_iter()
                .map(|i| (i.path.to_string(), i.action)),
        );
        decisions
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
        assert_eq!(p["edited"], PathAction::Take { from: Side::A });
        assert_eq!(p["same"], PathAction::Equal);
        assert_eq!(p["fresh"], PathAction::Take { from: Side::A });
        // Deleted on A, unchanged on B: the deletion propagates.
        assert_eq!(p["gone"], PathAction::Take { from: Side::A });
    }

    #[test]
    fn newer_mtime_keeps_the_name_and_the_other_is_copied() {
        let p = plan(
            &[("f.txt", file("a", 10))],
            &[("f.txt", file("b", 20))],
            &[("f.txt", file("base", 1))],
        );
        match &p["f.txt"] {
            PathAction::Conflict {
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
            PathAction::Conflict {
                winner: Side::A,
                copy: Some(_)
            }
        ));
    }

    #[test]
    fn same_new_content_on_both_sides_is_not_a_conflict() {
        let p = plan(&[("f", file("x", 5))], &[("f", file("x", 9))], &[]);
        assert_eq!(p["f"], PathAction::Equal);
    }

    #[test]
    fn an_edit_beats_a_deletion() {
        let p = plan(&[], &[("f", file("edited", 9))], &[("f", file("base", 1))]);
        assert_eq!(p["f"], PathAction::Take { from: Side::B });
    }

    #[test]
    fn a_conflict_copy_gets_no_conflict_copy() {
        let name = "f.conflict-beta-20261122T153045Z.txt";
        let p = plan(&[(name, file("a", 10))], &[(name, file("b", 20))], &[]);
        assert_eq!(
            p[name],
            PathAction::Conflict {
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
        assert_eq!(p["d"], PathAction::Take { from: Side::B });
        assert_eq!(p["d/kept"], PathAction::Take { from: Side::B });
        assert_eq!(p["d/old"], PathAction::Take { from: Side::A });
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
            PathAction::Conflict {
                winner: Side::B,
                copy: Some(_)
            }
        ));
    }

    fn owned(mut entry: Entry, uid: u32, gid: u32) -> Entry {
        entry.owner = Some(Box::new(crate::entry::Owner::numeric(uid, gid)));
        entry
    }

    #[test]
    fn owner_changes_cross_and_never_make_conflict_copies() {
        let base = owned(file("same", 1), 33, 33);
        // A chown on one side is a change that crosses, either way.
        let chowned = owned(file("same", 1), 4242, 4242);
        let p = plan(
            &[("f", chowned.clone())],
            &[("f", base.clone())],
            &[("f", base.clone())],
        );
        assert_eq!(p["f"], PathAction::Take { from: Side::A });
        let p = plan(
            &[("f", base.clone())],
            &[("f", chowned.clone())],
            &[("f", base.clone())],
        );
        assert_eq!(p["f"], PathAction::Take { from: Side::B });
        // A chown on both sides: the newer mtime wins, then the first node name; no copy.
        let other = owned(file("same", 1), 0, 0);
        let p = plan(
            &[("f", chowned.clone())],
            &[("f", other.clone())],
            &[("f", base.clone())],
        );
        assert_eq!(p["f"], PathAction::Take { from: Side::A });
        let newer = owned(file("same", 1), 0, 0);
        let mut newer_b = newer;
        newer_b.mtime_ns = 2;
        let p = plan(
            &[("f", chowned.clone())],
            &[("f", newer_b)],
            &[("f", base.clone())],
        );
        assert_eq!(p["f"], PathAction::Take { from: Side::B });
        // A content edit on one side and a chown on the other: both changed, two versions.
        let edited = owned(file("edited", 5), 33, 33);
        let p = plan(&[("f", edited)], &[("f", chowned.clone())], &[("f", base)]);
        assert!(matches!(
            p["f"],
            PathAction::Conflict {
                winner: Side::A,
                copy: Some(_)
            }
        ));
    }

    #[test]
    fn an_index_without_owners_sees_no_owner_change() {
        // The last sync recorded no owners (an index from an older build).
        let old = file("same", 1);
        let (x, y) = (owned(file("same", 1), 33, 33), owned(file("same", 1), 0, 0));
        // Same everywhere but the owner: decided like a change on both sides, no copy.
        let p = plan(
            &[("f", x.clone())],
            &[("f", y.clone())],
            &[("f", old.clone())],
        );
        assert_eq!(p["f"], PathAction::Take { from: Side::A });
        // An edit on B with A untouched is still B's edit, whatever the owners.
        let edited = owned(file("edited", 5), 0, 0);
        let p = plan(&[("f", x)], &[("f", edited)], &[("f", old.clone())]);
        assert_eq!(p["f"], PathAction::Take { from: Side::B });
        // Same owner and data on both sides: nothing to do.
        let p = plan(&[("f", y.clone())], &[("f", y)], &[("f", old)]);
        assert_eq!(p["f"], PathAction::Equal);
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
        assert_eq!(p["f"], PathAction::Take { from: Side::A });
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
