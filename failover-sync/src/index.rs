//! The index of last-synced state of one replica (what Unison calls the archive), kept in the
//! state directory as one file replaced atomically (temp file, fsync, rename, fsync of the
//! directory) and checked by a BLAKE3 checksum when read.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::entry::Entry;
use crate::error::SyncError;
use crate::path::RelPath;

/// The first bytes of an index file.
const MAGIC: &[u8; 8] = b"FOSYNCIX";
/// The format version; another version is read as "no index" (everything is compared anew and
/// nothing is deleted until the next sync has recorded a new index), except versions 1 and 2,
/// read with no owners or no extended attributes ([`legacy`]). Version 2 added the owner of each
/// entry, version 3 its extended attributes.
const VERSION: u32 = 3;

/// Version 1 of the format (before owners were kept): read, never written. Its entries have no
/// owner (`None`: not known), which agrees with any owner, so the first run after an upgrade
/// sees no owner change and records the owners it finds.
mod legacy {
    use serde::Deserialize;

    use crate::entry::{Entry, Kind, StatKey};
    use crate::path::RelPath;

    /// The format version.
    pub(super) const VERSION: u32 = 1;

    #[derive(Deserialize)]
    struct EntryV1 {
        kind: Kind,
        mode: u32,
        mtime_ns: i64,
        stat: StatKey,
    }

    #[derive(Deserialize)]
    pub(super) struct IndexV1 {
        entries: Vec<(RelPath, EntryV1)>,
        written_at_ns: i64,
    }

    /// Version 2 (owners, no extended attributes): read, never written. Its entries' attributes
    /// are not known (`None`), which agrees with any.
    pub(super) const VERSION_2: u32 = 2;

    #[derive(Deserialize)]
    struct EntryV2 {
        kind: Kind,
        mode: u32,
        owner: Option<Box<crate::entry::Owner>>,
        mtime_ns: i64,
        stat: StatKey,
    }

    #[derive(Deserialize)]
    pub(super) struct IndexV2 {
        entries: Vec<(RelPath, EntryV2)>,
        written_at_ns: i64,
    }

    impl From<IndexV2> for super::Index {
        fn from(old: IndexV2) -> Self {
            super::Index {
                entries: old
                    .entries
                    .into_iter()
                    .map(|(path, e)| {
                        let entry = Entry {
                            kind: e.kind,
                            mode: e.mode,
                            owner: e.owner,
                            mtime_ns: e.mtime_ns,
                            stat: e.stat,
                            xattrs: None,
                        };
                        (path, entry)
                    })
                    .collect(),
                written_at_ns: old.written_at_ns,
                xattrs: crate::xattrs::XattrKinds::OFF,
            }
        }
    }

    impl From<IndexV1> for super::Index {
        fn from(old: IndexV1) -> Self {
            super::Index {
                entries: old
                    .entries
                    .into_iter()
                    .map(|(path, e)| {
                        let entry = Entry {
                            kind: e.kind,
                            mode: e.mode,
                            owner: None,
                            mtime_ns: e.mtime_ns,
                            stat: e.stat,
                            xattrs: None,
                        };
                        (path, entry)
                    })
                    .collect(),
                written_at_ns: old.written_at_ns,
                xattrs: crate::xattrs::XattrKinds::OFF,
            }
        }
    }
}

/// The last-synced state of one replica.
///
/// The entries are a vector sorted by path (the same bytes on disk as the map of earlier
/// builds): a run reads them in order, merges them with the scan in order, and looks single
/// paths up by binary search, with no tree to build.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Each path as it was on this replica right after the last sync that reached it, sorted
    /// by path, each path once (see `sorted_entries`).
    pub entries: Vec<(RelPath, Entry)>,
    /// When it was written (ns since the epoch): hashes of files whose ctime is later than a
    /// second before this are not trusted.
    pub written_at_ns: i64,
    /// Which extended attributes its entries hold (a scan mirroring others reads them anew).
    pub xattrs: crate::xattrs::XattrKinds,
}

/// What reading an index found.
#[derive(Debug)]
pub enum Loaded {
    /// No index yet: the first sync of this replica.
    Missing,
    /// A valid index.
    Found(Index),
    /// An unreadable or damaged index: treated as missing, with this explanation.
    Damaged(String),
}

impl Index {
    /// Reads the index at `path`.
    pub fn load(path: &Path) -> Result<Loaded, SyncError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Missing),
            Err(e) => return Err(SyncError::io(path, e)),
        };
        Ok(match Self::decode(&bytes) {
            Ok(index) => Loaded::Found(index),
            Err(reason) => Loaded::Damaged(format!(
                "{}: {reason}; it is ignored (nothing will be deleted this run) and rewritten",
                path.display()
            )),
        })
    }

    fn decode(bytes: &[u8]) -> Result<Index, String> {
        let header = MAGIC.len() + 4 + 32;
        if bytes.len() < header || &bytes[..MAGIC.len()] != MAGIC {
            return Err("not an index file".to_owned());
        }
        let mut version = [0u8; 4];
        version.copy_from_slice(&bytes[8..12]);
        let version = u32::from_le_bytes(version);
        if version != VERSION && version != legacy::VERSION && version != legacy::VERSION_2 {
            return Err(format!(
                "index format {version} (this build reads {} to {VERSION})",
                legacy::VERSION
            ));
        }
        let payload = &bytes[header..];
        if blake3::hash(payload).as_bytes() != &bytes[12..header] {
            return Err("checksum mismatch (damaged)".to_owned());
        }
        let mut index: Index = if version == legacy::VERSION {
            postcard::from_bytes::<legacy::IndexV1>(payload)
                .map(Index::from)
                .map_err(|e| format!("cannot decode: {e}"))?
        } else if version == legacy::VERSION_2 {
            postcard::from_bytes::<legacy::IndexV2>(payload)
                .map(Index::from)
                .map_err(|e| format!("cannot decode: {e}"))?
        } else {
            postcard::from_bytes(payload).map_err(|e| format!("cannot decode: {e}"))?
        };
        index.entries = sorted_entries(std::mem::take(&mut index.entries));
        Ok(index)
    }

    /// The entry of `path`.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        lookup(&self.entries, path)
    }

    /// Writes the index to `path` atomically and durably.
    pub fn store(&self, path: &Path) -> Result<(), SyncError> {
        let payload = postcard::to_allocvec(self)
            .map_err(|e| SyncError::io(path, std::io::Error::other(e)))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let temp = temp_path(path);
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&temp)?;
            file.write_all(MAGIC)?;
            file.write_all(&VERSION.to_le_bytes())?;
            file.write_all(blake3::hash(&payload).as_bytes())?;
            file.write_all(&payload)?;
            file.sync_all()?;
            std::fs::rename(&temp, path)?;
            File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            SyncError::io(path, e)
        })
    }
}

/// `entries` sorted by path, each path once (the last of equal paths wins). Cheap when they
/// are sorted already.
pub fn sorted_entries(mut entries: Vec<(RelPath, Entry)>) -> Vec<(RelPath, Entry)> {
    if entries.windows(2).all(|w| w[0].0 < w[1].0) {
        return entries;
    }
    // Stable: of equal paths the one pushed last stays last, and is kept.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(RelPath, Entry)> = Vec::with_capacity(entries.len());
    for item in entries {
        match out.last_mut() {
            Some(last) if last.0 == item.0 => *last = item,
            _ => out.push(item),
        }
    }
    out
}

/// The entry of `path` in `entries` (sorted by path).
pub fn lookup<'e>(entries: &'e [(RelPath, Entry)], path: &str) -> Option<&'e Entry> {
    entries
        .binary_search_by(|(p, _)| p.as_str().cmp(path))
        .ok()
        .map(|at| &entries[at].1)
}

/// The entries of `entries` (sorted by path) at `scope` or beneath it, in order: `scope`
/// itself, then the one contiguous run of paths that start with `scope/`.
pub fn within<'e>(
    entries: &'e [(RelPath, Entry)],
    scope: &RelPath,
) -> impl Iterator<Item = &'e (RelPath, Entry)> {
    let exact = entries
        .binary_search_by(|(p, _)| p.as_str().cmp(scope.as_str()))
        .ok()
        .map(|at| &entries[at]);
    exact.into_iter().chain(beneath(entries, scope))
}

/// The entries of `entries` (sorted by path) strictly beneath `dir`: the one contiguous run
/// of paths from `dir/` up to (not including) `dir0` (`0` follows `/`).
pub fn beneath<'e>(entries: &'e [(RelPath, Entry)], dir: &RelPath) -> &'e [(RelPath, Entry)] {
    let dir = dir.as_str().as_bytes();
    let start = entries.partition_point(|(p, _)| below(p.as_str().as_bytes(), dir, b'/'));
    let end = entries.partition_point(|(p, _)| below(p.as_str().as_bytes(), dir, b'0'));
    &entries[start..end.max(start)]
}

/// Whether `path` sorts before `dir` followed by the byte `tail`.
fn below(path: &[u8], dir: &[u8], tail: u8) -> bool {
    let n = dir.len();
    match path[..path.len().min(n)].cmp(dir) {
        std::cmp::Ordering::Equal => path.get(n).is_none_or(|b| *b < tail),
        order => order == std::cmp::Ordering::Less,
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use crate::entry::{Kind, StatKey};

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        assert!(matches!(Index::load(&path).unwrap(), Loaded::Missing));
        let mut index = Index {
            written_at_ns: 42,
            ..Index::default()
        };
        index.entries.push((
            RelPath::new("a/b").unwrap(),
            Entry {
                kind: Kind::Symlink {
                    target: "../c".to_owned(),
                },
                mode: 0,
                owner: None,
                mtime_ns: 0,
                stat: StatKey::default(),
                xattrs: None,
            },
        ));
        index.store(&path).unwrap();
        match Index::load(&path).unwrap() {
            Loaded::Found(read) => assert_eq!(read, index),
            other => panic!("{other:?}"),
        }
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(Index::load(&path).unwrap(), Loaded::Damaged(_)));
    }

    #[test]
    fn an_index_of_version_1_loads_with_no_owners() {
        #[derive(Serialize)]
        struct EntryV1 {
            kind: Kind,
            mode: u32,
            mtime_ns: i64,
            stat: StatKey,
        }
        let file = Kind::File {
            size: 5,
            hash: crate::entry::Hash::of(b"hello"),
        };
        let old: (Vec<(RelPath, EntryV1)>, i64) = (
            vec![(
                RelPath::new("index.html").unwrap(),
                EntryV1 {
                    kind: file.clone(),
                    mode: 0o644,
                    mtime_ns: 7,
                    stat: StatKey::default(),
                },
            )],
            42,
        );
        let payload = postcard::to_allocvec(&old).unwrap();
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(blake3::hash(&payload).as_bytes());
        bytes.extend_from_slice(&payload);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.index");
        std::fs::write(&path, &bytes).unwrap();
        let Loaded::Found(index) = Index::load(&path).unwrap() else {
            panic!("a version 1 index must load");
        };
        assert_eq!(index.written_at_ns, 42);
        let entry = index.get("index.html").unwrap();
        assert_eq!(
            (entry.kind.clone(), entry.mode, entry.owner.clone()),
            (file, 0o644, None)
        );
        // Format 4 (a later build) is not read.
        bytes[8..12].copy_from_slice(&4u32.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(Index::load(&path).unwrap(), Loaded::Damaged(_)));
    }

    #[test]
    fn an_index_of_version_2_loads_with_owners_and_attributes_unknown() {
        #[derive(Serialize)]
        struct EntryV2 {
            kind: Kind,
            mode: u32,
            owner: Option<Box<crate::entry::Owner>>,
            mtime_ns: i64,
            stat: StatKey,
        }
        let owner = Some(Box::new(crate::entry::Owner::numeric(33, 33)));
        let old: (Vec<(RelPath, EntryV2)>, i64) = (
            vec![(
                RelPath::new("www").unwrap(),
                EntryV2 {
                    kind: Kind::Dir,
                    mode: 0o755,
                    owner: owner.clone(),
                    mtime_ns: 0,
                    stat: StatKey::default(),
                },
            )],
            42,
        );
        let payload = postcard::to_allocvec(&old).unwrap();
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(blake3::hash(&payload).as_bytes());
        bytes.extend_from_slice(&payload);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.index");
        std::fs::write(&path, &bytes).unwrap();
        let Loaded::Found(index) = Index::load(&path).unwrap() else {
            panic!("a version 2 index must load");
        };
        let entry = index.get("www").unwrap();
        assert_eq!((entry.owner.clone(), entry.xattrs.clone()), (owner, None));
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

    #[test]
    fn the_vector_has_the_bytes_of_the_map_of_earlier_builds() {
        let paths = ["a", "a.txt", "a/b", "b"];
        let map: std::collections::BTreeMap<RelPath, Entry> = paths
            .iter()
            .map(|p| (RelPath::new(*p).unwrap(), dir()))
            .collect();
        let vector: Vec<(RelPath, Entry)> = map.clone().into_iter().collect();
        assert_eq!(
            postcard::to_allocvec(&map).unwrap(),
            postcard::to_allocvec(&vector).unwrap()
        );
    }

    #[test]
    fn unsorted_or_repeated_entries_are_put_in_order() {
        let e = |p: &str, mode| {
            let mut entry = dir();
            entry.mode = mode;
            (RelPath::new(p).unwrap(), entry)
        };
        let sorted = sorted_entries(vec![e("b", 1), e("a", 1), e("b", 2), e("a/x", 1)]);
        let shown: Vec<(&str, u32)> = sorted.iter().map(|(p, e)| (p.as_str(), e.mode)).collect();
        assert_eq!(shown, [("a", 1), ("a/x", 1), ("b", 2)]);
    }

    #[test]
    fn lookups_and_scopes() {
        let entries = sorted_entries(
            ["a", "a.txt", "a/b", "a/b/c", "ab", "b"]
                .iter()
                .map(|p| (RelPath::new(*p).unwrap(), dir()))
                .collect(),
        );
        assert!(lookup(&entries, "a/b").is_some());
        assert!(lookup(&entries, "a/c").is_none());
        let scope = |s: &str| -> Vec<&str> {
            within(&entries, &RelPath::new(s).unwrap())
                .map(|(p, _)| p.as_str())
                .collect()
        };
        assert_eq!(scope("a"), ["a", "a/b", "a/b/c"]);
        assert_eq!(scope("a/b"), ["a/b", "a/b/c"]);
        assert_eq!(scope("zz"), Vec::<&str>::new());
        let under = |s: &str| -> Vec<&str> {
            beneath(&entries, &RelPath::new(s).unwrap())
                .iter()
                .map(|(p, _)| p.as_str())
                .collect()
        };
        assert_eq!(under("a"), ["a/b", "a/b/c"]);
        assert_eq!(under("a/b/c"), Vec::<&str>::new());
        assert_eq!(under("0"), Vec::<&str>::new());
    }
}
