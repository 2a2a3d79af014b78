//! What the mirror knows about one path: its kind, content hash, mode, owner and times.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::xattrs::{xattrs_agree, Xattrs};

/// Permission bits the mirror keeps: rwx for user, group, other, and the sticky bit. Setuid and
/// setgid are never propagated (a replica must not be able to plant a setuid program).
pub const MODE_MASK: u32 = 0o1777;

/// A BLAKE3 hash of a file's content.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The hash of `data`.
    pub fn of(data: &[u8]) -> Self {
        Hash(*blake3::hash(data).as_bytes())
    }
}

impl From<blake3::Hash> for Hash {
    fn from(hash: blake3::Hash) -> Self {
        Hash(*hash.as_bytes())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// The kind of a path and what identifies its content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// A regular file.
    File {
        /// Length in bytes.
        size: u64,
        /// BLAKE3 of the content.
        hash: Hash,
    },
    /// A directory.
    Dir,
    /// A symbolic link, kept as a link (never followed).
    Symlink {
        /// What the link points at, verbatim.
        target: String,
    },
}

/// Local identity of a file used to skip re-hashing it: when size, mtime, inode and ctime are
/// what the index holds, the content is taken to be what the index holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatKey {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Status change time, nanoseconds since the Unix epoch.
    pub ctime_ns: i64,
}

/// Who owns a path: the numeric ids as the replica that scanned it sees them and, when owners
/// are mapped by name ([`crate::Owners::Names`]), the names of those ids there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The owning user's id on the scanning replica.
    pub uid: u32,
    /// The owning group's id on the scanning replica.
    pub gid: u32,
    /// The user's name there (`None`: numeric mapping, or the id has no name). Shared:
    /// a scan gives every entry of one owner the same name.
    pub user: Option<Arc<str>>,
    /// The group's name there.
    pub group: Option<Arc<str>>,
}

impl Owner {
    /// Numeric ids, no names.
    pub fn numeric(uid: u32, gid: u32) -> Self {
        Owner {
            uid,
            gid,
            user: None,
            group: None,
        }
    }

    /// The same owner as far as the mirror is concerned: for the user and for the group, the
    /// names when both sides know one, else the numbers (a name missing on one side was
    /// installed there by its number, rsync's fallback).
    pub fn same_as(&self, other: &Owner) -> bool {
        same_id(
            self.uid,
            self.user.as_deref(),
            other.uid,
            other.user.as_deref(),
        ) && same_id(
            self.gid,
            self.group.as_deref(),
            other.gid,
            other.group.as_deref(),
        )
    }
}

fn same_id(a: u32, a_name: Option<&str>, b: u32, b_name: Option<&str>) -> bool {
    match (a_name, b_name) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Whether two optional owners agree: `None` is "not known" (an index written before owners
/// were kept, or a run that does not keep them) and agrees with anything.
pub fn owners_agree(a: Option<&Owner>, b: Option<&Owner>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.same_as(b),
        _ => true,
    }
}

/// One path of a replica as scanned (or as recorded at the last sync).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Kind and content.
    pub kind: Kind,
    /// Permission bits (`MODE_MASK`); 0 for symlinks.
    pub mode: u32,
    /// Owner and group, when the run keeps them (`None`: not kept, or not known).
    pub owner: Option<Box<Owner>>,
    /// Modification time, nanoseconds since the Unix epoch (files; 0 for others, whose times
    /// are not mirrored).
    pub mtime_ns: i64,
    /// Local identity (meaningful on the replica that scanned it only).
    pub stat: StatKey,
    /// Extended attributes and ACLs, when the run mirrors them (`None`: not mirrored, or not
    /// known; agrees with any, as owners do).
    pub xattrs: Option<Box<Xattrs>>,
}

impl Entry {
    /// Same content as far as the mirror is concerned: kind, hash or link target, mode, and
    /// owner and extended attributes when both know them ([`owners_agree`], [`xattrs_agree`]).
    /// Times and local identity do not count.
    pub fn same_content(&self, other: &Entry) -> bool {
        self.kind == other.kind
            && self.mode == other.mode
            && owners_agree(self.owner.as_deref(), other.owner.as_deref())
            && xattrs_agree(self.xattrs.as_deref(), other.xattrs.as_deref())
    }

    /// Same bytes (or link target), whatever the mode and owner.
    pub fn same_data(&self, other: &Entry) -> bool {
        self.kind == other.kind
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir)
    }

    /// A regular file's size, 0 for others.
    pub fn size(&self) -> u64 {
        match self.kind {
            Kind::File { size, .. } => size,
            _ => 0,
        }
    }

    /// A regular file's hash.
    pub fn hash(&self) -> Option<Hash> {
        match self.kind {
            Kind::File { hash, .. } => Some(hash),
            _ => None,
        }
    }

    /// Whether this entry still describes what is on disk (the same file, not changed since):
    /// used before replacing or deleting it.
    pub fn still_matches(&self, now: &Entry) -> bool {
        match (&self.kind, &now.kind) {
            (Kind::File { size: a, .. }, Kind::File { size: b, .. }) => {
                a == b
                    && self.mtime_ns == now.mtime_ns
                    && self.stat.ino == now.stat.ino
                    && self.stat.ctime_ns == now.stat.ctime_ns
            }
            (Kind::Dir, Kind::Dir) => true,
            (Kind::Symlink { target: a }, Kind::Symlink { target: b }) => a == b,
            _ => false,
        }
    }
}

/// The `.conflict-` marker in the name of a conflict copy.
const CONFLICT_MARKER: &str = ".conflict-";

/// The name of the conflict copy of `name` holding `node`'s version from `at_ns` (UTC):
/// `NAME.conflict-<node>-<YYYYMMDDTHHMMSSZ>.EXT`. A `suffix` above 0 is added to the timestamp
/// when the first choice is taken.
pub fn conflict_name(name: &str, node: &str, at_ns: i64, suffix: u32) -> String {
    let seconds = u64::try_from(at_ns.div_euclid(1_000_000_000)).unwrap_or(0);
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
    let stamp: String = humantime::format_rfc3339_seconds(time)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let node: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stamp = if suffix == 0 {
        stamp
    } else {
        format!("{stamp}-{suffix}")
    };
    // `.htaccess` has no extension; `a.tar.gz` keeps `.gz` last so that it still opens.
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!(
            "{}{CONFLICT_MARKER}{node}-{stamp}{}",
            &name[..dot],
            &name[dot..]
        ),
        _ => format!("{name}{CONFLICT_MARKER}{node}-{stamp}"),
    }
}

/// Whether `name` is a conflict copy made by [`conflict_name`].
pub fn is_conflict_copy(name: &str) -> bool {
    let Some(at) = name.find(CONFLICT_MARKER) else {
        return false;
    };
    let rest = &name[at + CONFLICT_MARKER.len()..];
    // `<node>-YYYYMMDDTHHMMSSZ`: find a dash followed by the 16-character stamp.
    rest.match_indices('-').any(|(dash, _)| {
        let stamp = rest.as_bytes().get(dash + 1..dash + 17);
        stamp.is_some_and(|s| {
            s[..8].iter().all(u8::is_ascii_digit)
                && s[8] == b'T'
                && s[9..15].iter().all(u8::is_ascii_digit)
                && s[15] == b'Z'
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    const AT: i64 = 1_795_361_445_000_000_000; // 2026-11-22T15:30:45Z

    #[test]
    fn conflict_names_keep_the_extension_last() {
        assert_eq!(
            conflict_name("index.php", "b", AT, 0),
            "index.conflict-b-20261122T153045Z.php"
        );
        assert_eq!(
            conflict_name("a.tar.gz", "node 2", AT, 0),
            "a.tar.conflict-node_2-20261122T153045Z.gz"
        );
        assert_eq!(
            conflict_name(".htaccess", "a", AT, 0),
            ".htaccess.conflict-a-20261122T153045Z"
        );
        assert_eq!(
            conflict_name("README", "a", AT, 2),
            "README.conflict-a-20261122T153045Z-2"
        );
    }

    #[test]
    fn conflict_copies_are_recognised() {
        for name in ["index.php", "a.tar.gz", ".htaccess", "README"] {
            assert!(!is_conflict_copy(name));
            for suffix in [0, 3] {
                let copy = conflict_name(name, "web-1", AT, suffix);
                assert!(is_conflict_copy(&copy), "{copy}");
            }
        }
        assert!(!is_conflict_copy("notes.conflict-with-boss.txt"));
    }
}
