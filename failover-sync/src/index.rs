//! The index of last-synced state of one replica (what Unison calls the archive), kept in the
//! state directory as one file replaced atomically (temp file, fsync, rename, fsync of the
//! directory) and checked by a BLAKE3 checksum when read.

use std::collections::BTreeMap;
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
/// nothing is deleted until the next sync has recorded a new index).
const VERSION: u32 = 1;

/// The last-synced state of one replica.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Each path as it was on this replica right after the last sync that reached it.
    pub entries: BTreeMap<RelPath, Entry>,
    /// When it was written (ns since the epoch): hashes of files whose ctime is later than a
    /// second before this are not trusted.
    pub written_at_ns: i64,
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
        if u32::from_le_bytes(version) != VERSION {
            return Err(format!(
                "index format {} (this build reads {VERSION})",
                u32::from_le_bytes(version)
            ));
        }
        let payload = &bytes[header..];
        if blake3::hash(payload).as_bytes() != &bytes[12..header] {
            return Err("checksum mismatch (damaged)".to_owned());
        }
        postcard::from_bytes(payload).map_err(|e| format!("cannot decode: {e}"))
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
        index.entries.insert(
            RelPath::new("a/b").unwrap(),
            Entry {
                kind: Kind::Symlink {
                    target: "../c".to_owned(),
                },
                mode: 0,
                mtime_ns: 0,
                stat: StatKey::default(),
            },
        );
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
}
