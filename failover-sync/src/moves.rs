//! Renames and moves found in a plan: a file that one side deleted at one path and created at
//! another with the same BLAKE3 is renamed on the other side instead of sent again. Pure: it
//! reads the plan's items and says which pairs are moves.

use std::collections::HashMap;

use crate::entry::{Entry, Hash, Kind};
use crate::path::RelPath;
use crate::reconcile::{Item, PathAction, Side};

/// One rename the run makes on `side` instead of a deletion of `from` and a copy to `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    /// Where the rename happens (the side that did not make the change).
    pub side: Side,
    /// The path it leaves (deleted on the other side).
    pub from: RelPath,
    /// What `from` is on `side` now (the replica checks it before renaming).
    pub expect: Entry,
    /// The path it takes (created on the other side with the same content).
    pub to: RelPath,
}

/// The moves in `items` (a plan): each deletion of a file on one side paired with a creation,
/// on the same side, of a file with the same hash, preferring one of the same name (a renamed
/// directory keeps its files' names). Empty files are left out: they cost nothing to create,
/// and every one has the same hash.
pub fn find_moves(items: &[Item]) -> Vec<Move> {
    // Deletions on each receiving side, by hash: (path, entry there), in path order.
    let mut gone: HashMap<(usize, Hash), Vec<(&RelPath, &Entry)>> = HashMap::new();
    for item in items {
        let PathAction::Take { from } = item.action else {
            continue;
        };
        let to = from.other();
        if let (None, Some(there)) = (&item.now[from.index()], &item.now[to.index()]) {
            if let Some(hash) = moveable(there) {
                gone.entry((to.index(), hash))
                    .or_default()
                    .push((&item.path, there));
            }
        }
    }
    if gone.is_empty() {
        return Vec::new();
    }
    let mut moves = Vec::new();
    for item in items {
        let PathAction::Take { from } = item.action else {
            continue;
        };
        let to = from.other();
        let (Some(source), None) = (&item.now[from.index()], &item.now[to.index()]) else {
            continue;
        };
        let Some(hash) = moveable(source) else {
            continue;
        };
        let Some(candidates) = gone.get_mut(&(to.index(), hash)) else {
            continue;
        };
        if candidates.is_empty() {
            continue;
        }
        let name = item.path.file_name();
        let at = candidates
            .iter()
            .position(|(path, _)| path.file_name() == name)
            .unwrap_or(0);
        let (path, entry) = candidates.remove(at);
        moves.push(Move {
            side: to,
            from: path.clone(),
            expect: entry.clone(),
            to: item.path.clone(),
        });
    }
    moves
}

/// The hash of a file worth moving (not empty).
fn moveable(entry: &Entry) -> Option<Hash> {
    match entry.kind {
        Kind::File { size, hash } if size > 0 => Some(hash),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(content: &str) -> Entry {
        Entry {
            kind: Kind::File {
                size: content.len() as u64,
                hash: Hash::of(content.as_bytes()),
            },
            mode: 0o644,
            owner: None,
            mtime_ns: 1,
            stat: Default::default(),
            xattrs: None,
        }
    }

    fn take(path: &str, from: Side, now_from: Option<Entry>, now_other: Option<Entry>) -> Item {
        let mut now = [None, None];
        now[from.index()] = now_from;
        now[from.other().index()] = now_other;
        Item {
            path: RelPath::new(path).expect("a valid path"),
            now,
            base: [None, None],
            action: PathAction::Take { from },
        }
    }

    #[test]
    fn a_deletion_and_a_creation_of_the_same_content_on_one_side_are_a_move() {
        let items = vec![
            take("new/a.txt", Side::A, Some(file("alpha")), None),
            take("new/b.txt", Side::A, Some(file("beta")), None),
            take("old/a.txt", Side::A, None, Some(file("alpha"))),
            take("old/b.txt", Side::A, None, Some(file("beta"))),
            take("other.txt", Side::A, Some(file("gamma")), None),
        ];
        let moves = find_moves(&items);
        let pairs: Vec<(Side, &str, &str)> = moves
            .iter()
            .map(|m| (m.side, m.from.as_str(), m.to.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                (Side::B, "old/a.txt", "new/a.txt"),
                (Side::B, "old/b.txt", "new/b.txt")
            ]
        );
        assert_eq!(moves[0].expect, file("alpha"));
    }

    #[test]
    fn same_content_under_several_names_pairs_by_name_first_and_each_deletion_once() {
        let items = vec![
            take("a/logo.png", Side::B, Some(file("png")), None),
            take("b/copy.png", Side::B, Some(file("png")), None),
            take("c/logo.png", Side::B, Some(file("png")), None),
            take("old/copy.png", Side::B, None, Some(file("png"))),
            take("old/logo.png", Side::B, None, Some(file("png"))),
        ];
        let pairs: Vec<(String, String)> = find_moves(&items)
            .into_iter()
            .map(|m| (m.from.to_string(), m.to.to_string()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("old/logo.png".to_owned(), "a/logo.png".to_owned()),
                ("old/copy.png".to_owned(), "b/copy.png".to_owned()),
            ]
        );
    }

    #[test]
    fn no_move_across_sides_nor_of_empty_files_nor_over_an_existing_file() {
        let items = vec![
            // Deleted on B's side (taken from B), created on A: different receiving sides.
            take("new.txt", Side::A, Some(file("same")), None),
            take("old.txt", Side::B, None, Some(file("same"))),
            // Empty files.
            take("empty-new", Side::A, Some(file("")), None),
            take("empty-old", Side::A, None, Some(file(""))),
            // A replacement, not a creation.
            take("replaced.txt", Side::B, Some(file("x")), Some(file("y"))),
            take("gone.txt", Side::B, None, Some(file("x"))),
        ];
        assert!(find_moves(&items).is_empty());
    }
}
