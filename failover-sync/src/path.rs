//! `RelPath`: a validated path relative to a replica's root, the only kind of path that crosses
//! between replicas.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::SyncError;

/// Prefix of the mirror's own temp files; such names are never scanned, sent or accepted.
pub const TEMP_PREFIX: &str = ".failover-sync-tmp-";

/// Prefix of the temp file a `versions restore` writes before renaming it into place. It is a
/// [`TEMP_PREFIX`] name (never scanned or sent), but a scan leaves a young one alone: the restore
/// runs in another process than the mirror, which holds the replica's lock and would otherwise
/// take the file away between its write and its rename.
pub(crate) const RESTORE_TEMP_PREFIX: &str = ".failover-sync-tmp-restore-";

/// A path relative to a replica's root: `/`-separated, no empty, `.` or `..` component, not
/// absolute, no NUL, valid UTF-8, not one of the mirror's temp files.
///
/// Parsing is the validation: a `RelPath` that exists is safe to join to a root (it can still
/// name a symlink, which the replica never writes through).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RelPath(String);

impl RelPath {
    /// Validates `path`.
    pub fn new(path: impl Into<String>) -> Result<Self, SyncError> {
        let path = path.into();
        let unsafe_path = |reason| SyncError::UnsafePath {
            path: path.clone(),
            reason,
        };
        if path.is_empty() {
            return Err(unsafe_path("empty path"));
        }
        if path.starts_with('/') {
            return Err(unsafe_path("absolute path"));
        }
        if path.contains('\0') {
            return Err(unsafe_path("NUL byte in path"));
        }
        if path.len() > 4096 {
            return Err(unsafe_path("longer than 4096 bytes"));
        }
        for component in path.split('/') {
            match component {
                "" => return Err(unsafe_path("empty component (`//` or trailing `/`)")),
                "." | ".." => return Err(unsafe_path("`.` or `..` component")),
                name if name.starts_with(TEMP_PREFIX) => {
                    return Err(unsafe_path("names a temp file of the mirror"))
                }
                _ => {}
            }
        }
        Ok(RelPath(path))
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The parent, or `None` at the top level.
    pub fn parent(&self) -> Option<RelPath> {
        self.0.rfind('/').map(|at| RelPath(self.0[..at].to_owned()))
    }

    /// The parents from the nearest to the top level.
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        let text = self.0.as_str();
        text.char_indices()
            .rev()
            .filter(|(_, c)| *c == '/')
            .map(move |(at, _)| &text[..at])
    }

    /// `parent/name` (or `name` at the top level) where `name` is one valid component.
    pub fn sibling(&self, name: &str) -> Result<RelPath, SyncError> {
        match self.parent() {
            Some(parent) => RelPath::new(format!("{}/{name}", parent.0)),
            None => RelPath::new(name.to_owned()),
        }
    }

    /// `self/name`, where `name` is one valid component.
    pub fn join(&self, name: &str) -> Result<RelPath, SyncError> {
        RelPath::new(format!("{}/{name}", self.0))
    }

    /// `self/name` (or `name` when `parent` is `None`), checking only `name` (the parent is
    /// valid already): what a directory scan does for every entry it reads.
    pub(crate) fn child(parent: Option<&RelPath>, name: &str) -> Result<RelPath, SyncError> {
        let valid = !name.is_empty()
            && name != "."
            && name != ".."
            && !name.contains(['/', '\0'])
            && !name.starts_with(TEMP_PREFIX);
        let Some(parent) = parent else {
            return RelPath::new(name);
        };
        if !valid || parent.0.len() + 1 + name.len() > 4096 {
            // The full check, for its message.
            return RelPath::new(format!("{}/{name}", parent.0));
        }
        let mut path = String::with_capacity(parent.0.len() + 1 + name.len());
        path.push_str(&parent.0);
        path.push('/');
        path.push_str(name);
        Ok(RelPath(path))
    }

    /// Whether `self` is `scope` or beneath it.
    pub fn is_within(&self, scope: &RelPath) -> bool {
        self.0 == scope.0
            || (self.0.len() > scope.0.len()
                && self.0.starts_with(&scope.0)
                && self.0.as_bytes()[scope.0.len()] == b'/')
    }
}

/// `paths` sorted, without duplicates and without any path beneath another of them: a scope
/// whose parts do not overlap.
pub fn minimal_scope(paths: impl IntoIterator<Item = RelPath>) -> Vec<RelPath> {
    let sorted: std::collections::BTreeSet<RelPath> = paths.into_iter().collect();
    let mut scope: Vec<RelPath> = Vec::with_capacity(sorted.len());
    for path in sorted {
        // Sorted order puts `a/b` after `a` but `a.txt` between them: check every ancestor.
        let covered = path
            .ancestors()
            .any(|a| scope.binary_search_by(|s| s.as_str().cmp(a)).is_ok());
        if !covered {
            scope.push(path);
        }
    }
    scope.sort();
    scope
}

impl std::borrow::Borrow<str> for RelPath {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for RelPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        RelPath::new(text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn traversal_and_malformed_paths_are_rejected() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            "a\0b",
            ".failover-sync-tmp-1",
            "d/.failover-sync-tmp-x",
        ] {
            assert!(RelPath::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "a/b.txt", ".htaccess", "a/..b", "x/...", "é/ü"] {
            assert!(RelPath::new(good).is_ok(), "{good:?} rejected");
        }
    }

    #[test]
    fn deserializing_validates() {
        let bytes = postcard::to_allocvec(&"../../etc/passwd").unwrap();
        assert!(postcard::from_bytes::<RelPath>(&bytes).is_err());
    }

    #[test]
    fn scopes_do_not_overlap() {
        let p = |s: &str| RelPath::new(s).unwrap();
        assert!(p("a/b").is_within(&p("a")));
        assert!(p("a").is_within(&p("a")));
        assert!(!p("ab").is_within(&p("a")));
        assert!(!p("a").is_within(&p("a/b")));
        let scope = minimal_scope([p("a/b/c"), p("a.txt"), p("a"), p("b/x"), p("a/z"), p("b")]);
        assert_eq!(scope, [p("a"), p("a.txt"), p("b")]);
    }

    #[test]
    fn relatives() {
        let path = RelPath::new("a/b/c.txt").unwrap();
        assert_eq!(path.file_name(), "c.txt");
        assert_eq!(path.parent().unwrap().as_str(), "a/b");
        assert_eq!(path.ancestors().collect::<Vec<_>>(), ["a/b", "a"]);
        assert_eq!(path.sibling("d").unwrap().as_str(), "a/b/d");
        assert_eq!(RelPath::new("top").unwrap().parent(), None);
    }
}
