//! Scanning a replica: every directory, regular file and symlink beneath the root, minus the
//! excludes, with BLAKE3 hashes reused from the index when size, mtime, inode and ctime show
//! that a file did not change.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType};

use crate::entry::{Entry, Hash, Kind};
use crate::error::SyncError;
use crate::fsx;
use crate::index::{beneath, lookup};
use crate::path::{RelPath, RESTORE_TEMP_PREFIX, TEMP_PREFIX};

/// Exclude rules in gitignore syntax (`*.log`, `/cache/`, `!keep.log`), matched against paths
/// relative to the root. The mirror's temp files are always excluded.
#[derive(Clone, Debug)]
pub struct Excludes {
    matcher: Gitignore,
    /// Exact paths always excluded (the state directory when it lies inside the root).
    fixed: Vec<String>,
}

impl Excludes {
    /// Compiles `patterns` (one gitignore line each).
    pub fn new(patterns: &[String]) -> Result<Self, SyncError> {
        let mut builder = GitignoreBuilder::new("/");
        for pattern in patterns {
            builder
                .add_line(None, pattern)
                .map_err(|e| SyncError::Exclude {
                    pattern: pattern.clone(),
                    reason: e.to_string(),
                })?;
        }
        let matcher = builder.build().map_err(|e| SyncError::Exclude {
            pattern: patterns.join(" "),
            reason: e.to_string(),
        })?;
        Ok(Excludes {
            matcher,
            fixed: Vec::new(),
        })
    }

    /// No excludes besides the mirror's own files.
    pub fn none() -> Self {
        Excludes {
            matcher: Gitignore::empty(),
            fixed: Vec::new(),
        }
    }

    /// Also excludes the exact path `rel` (and what is beneath it).
    pub fn with_fixed(mut self, rel: String) -> Self {
        self.fixed.push(rel);
        self
    }

    /// Whether `path` (a directory when `is_dir`) is excluded, knowing that its parents are
    /// not: what a scan that never descends into an excluded directory asks.
    fn is_excluded_in_scan(&self, path: &str, is_dir: bool) -> bool {
        self.fixed.iter().any(|fixed| path == fixed)
            || path
                .rsplit('/')
                .next()
                .is_some_and(|name| name.starts_with(TEMP_PREFIX))
            || self.matcher.matched(path, is_dir).is_ignore()
    }

    /// Whether `path` (a directory when `is_dir`) is excluded. A directory's exclusion covers
    /// everything beneath it.
    pub fn is_excluded(&self, path: &str, is_dir: bool) -> bool {
        if self.fixed.iter().any(|fixed| {
            path == fixed
                || (path.starts_with(fixed.as_str())
                    && path.as_bytes().get(fixed.len()) == Some(&b'/'))
        }) {
            return true;
        }
        if path
            .rsplit('/')
            .next()
            .is_some_and(|name| name.starts_with(TEMP_PREFIX))
        {
            return true;
        }
        self.matcher
            .matched_path_or_any_parents(path, is_dir)
            .is_ignore()
    }
}

/// The outcome of a scan.
#[derive(Debug, Default)]
pub(crate) struct Scanned {
    /// Every path found, in no particular order.
    pub entries: Vec<(RelPath, Entry)>,
    /// Paths that could not be read or represented, with the reason.
    pub problems: Vec<(String, String)>,
    /// Bytes hashed (files whose size, mtime, inode or ctime changed since the index).
    pub hashed_bytes: u64,
    /// Files hashed only because of [`Previous::trust_before_ns`], found as the index holds
    /// them and changed before [`Previous::refresh_before_ns`].
    pub refresh: u64,
}

impl Scanned {
    fn merge(&mut self, other: Scanned) {
        self.entries.extend(other.entries);
        self.problems.extend(other.problems);
        self.hashed_bytes += other.hashed_bytes;
        self.refresh += other.refresh;
    }
}

/// What the scan may reuse from the index.
pub(crate) struct Previous<'a> {
    /// The index's entries, sorted by path.
    pub entries: &'a [(RelPath, Entry)],
    /// Entries whose ctime is at or after this are hashed again (a change in the same clock
    /// tick as the last scan would not show in the times).
    pub trust_before_ns: i64,
    /// A second before this scan began: a file hashed only because of `trust_before_ns`,
    /// unchanged, whose ctime is before this, would be trusted by an index written now.
    pub refresh_before_ns: i64,
}

impl Previous<'_> {
    /// The hash `entries` holds for a file of this `stat` that can be reused as it is
    /// (`Ok`), or, when it cannot, the hash to compare with once the file is hashed again:
    /// `Err(Some(hash))` when only the trust window stood in the way and the file is old
    /// enough to be trusted by an index written now (see [`Scanned::refresh`]).
    fn known(
        &self,
        entries: &[(RelPath, Entry)],
        path: &str,
        stat: &rustix::fs::Stat,
    ) -> Result<Hash, Option<Hash>> {
        let size = stat.st_size as u64;
        let key = fsx::stat_key(stat);
        match lookup(entries, path).map(|old| (old, &old.kind)) {
            Some((old, Kind::File { size: s, hash }))
                if *s == size && old.mtime_ns == fsx::mtime_ns(stat) && old.stat == key =>
            {
                if key.ctime_ns < self.trust_before_ns {
                    Ok(*hash)
                } else {
                    Err((key.ctime_ns < self.refresh_before_ns).then_some(*hash))
                }
            }
            _ => Err(None),
        }
    }
}

/// How long a restore's temp file is left alone by scans.
const RESTORE_TEMP_MAX_AGE_SECS: i64 = 3600;

/// Whether a restore temp file changed last at `ctime` (seconds) is stale at `now`.
fn is_stale(ctime: i64, now: i64) -> bool {
    now.saturating_sub(ctime) > RESTORE_TEMP_MAX_AGE_SECS
}

/// Scans the tree beneath `root`. Leftover temp files of an interrupted run are removed (the
/// caller holds the replica's lock, so no other run is writing them), except a restore's that
/// is younger than an hour (`versions restore` writes without the lock).
pub(crate) fn scan(root: BorrowedFd<'_>, excludes: &Excludes, previous: &Previous<'_>) -> Scanned {
    match fsx::open_dir(root, None) {
        Ok(dir) => scan_dir(dir, None, excludes, previous),
        Err(e) => Scanned {
            problems: vec![(String::from("."), e.to_string())],
            ..Scanned::default()
        },
    }
}

/// Scans only the paths of `scope` and what lies beneath them: a path that does not exist (or
/// lies beneath a symlink or an excluded directory) is simply absent.
pub(crate) fn scan_scope(
    root: BorrowedFd<'_>,
    scope: &[RelPath],
    excludes: &Excludes,
    previous: &Previous<'_>,
) -> Scanned {
    let parts: Vec<Scanned> = scope
        .par_iter()
        .map(|path| scan_one(root, path, excludes, previous))
        .collect();
    let mut out = Scanned::default();
    for part in parts {
        out.merge(part);
    }
    out
}

fn scan_one(
    root: BorrowedFd<'_>,
    path: &RelPath,
    excludes: &Excludes,
    previous: &Previous<'_>,
) -> Scanned {
    let mut out = Scanned::default();
    let absent = |e: &std::io::Error| {
        matches!(
            e.raw_os_error(),
            Some(2) | Some(20) | Some(40) // ENOENT, ENOTDIR, ELOOP (a symlink on the way)
        ) || e.kind() == std::io::ErrorKind::NotFound
    };
    let (dir, name) = match fsx::open_parent(root, path) {
        Ok(found) => found,
        Err(e) if absent(&e) => return out,
        Err(e) => {
            out.problems.push((path.to_string(), e.to_string()));
            return out;
        }
    };
    let stat = match fsx::lstat(dir.as_fd(), name) {
        Ok(Some(stat)) => stat,
        Ok(None) => return out,
        Err(e) => {
            out.problems.push((path.to_string(), e.to_string()));
            return out;
        }
    };
    let file_type = fsx::file_type(&stat);
    if excludes.is_excluded(path.as_str(), file_type == FileType::Directory) {
        return out;
    }
    match file_type {
        FileType::Directory => {
            out.entries
                .push((path.clone(), fsx::entry_from(&stat, Kind::Dir)));
            match rustix::fs::openat(
                &dir,
                name,
                rustix::fs::OFlags::RDONLY
                    | rustix::fs::OFlags::DIRECTORY
                    | rustix::fs::OFlags::NOFOLLOW
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            ) {
                Ok(sub) => out.merge(scan_dir(sub, Some(path), excludes, previous)),
                Err(e) => out.problems.push((path.to_string(), e.to_string())),
            }
        }
        FileType::Symlink => match fsx::read_link(dir.as_fd(), name) {
            Ok(target) => out.entries.push((
                path.clone(),
                fsx::entry_from(&stat, Kind::Symlink { target }),
            )),
            Err(e) => out.problems.push((path.to_string(), e.to_string())),
        },
        FileType::RegularFile => match previous.known(previous.entries, path.as_str(), &stat) {
            Ok(hash) => out.entries.push((
                path.clone(),
                fsx::entry_from(
                    &stat,
                    Kind::File {
                        size: stat.st_size as u64,
                        hash,
                    },
                ),
            )),
            Err(expected) => match fsx::current_entry(dir.as_fd(), name) {
                Ok(Some(entry)) => {
                    out.hashed_bytes += entry.size();
                    if expected.is_some() && entry.hash() == expected {
                        out.refresh += 1;
                    }
                    out.entries.push((path.clone(), entry));
                }
                Ok(None) => {}
                Err(e) => out.problems.push((path.to_string(), e.to_string())),
            },
        },
        _ => out.problems.push((
            path.to_string(),
            "not a regular file, directory or symlink; skipped".to_owned(),
        )),
    }
    out
}

/// A hashed file, and whether it was found as the index holds it.
type Hashed = (RelPath, Entry, bool);

/// A file whose hash must be computed.
struct ToHash {
    path: RelPath,
    name: String,
    /// The index's hash, when a match means the index should be refreshed.
    expected: Option<Hash>,
}

/// Scans the directory `dir` (at `prefix`, the root when `None`) and, in parallel, the
/// directories beneath it.
fn scan_dir(
    dir: OwnedFd,
    prefix: Option<&RelPath>,
    excludes: &Excludes,
    previous: &Previous<'_>,
) -> Scanned {
    let mut out = Scanned::default();
    let listing = Listing {
        dir: dir.as_fd(),
        prefix,
        excludes,
        previous,
        // What the index holds beneath this directory: each lookup searches only that.
        known_here: match prefix {
            Some(prefix) => beneath(previous.entries, prefix),
            None => previous.entries,
        },
    };
    let listed = listing.list(&mut out);
    hash_files(dir.as_fd(), listed.to_hash, &mut out);
    for child in scan_subdirs(dir.as_fd(), listed.subdirs, excludes, previous) {
        out.merge(child);
    }
    out
}

/// One directory being listed.
struct Listing<'a> {
    dir: BorrowedFd<'a>,
    prefix: Option<&'a RelPath>,
    excludes: &'a Excludes,
    previous: &'a Previous<'a>,
    /// The index's entries beneath this directory.
    known_here: &'a [(RelPath, Entry)],
}

/// What listing a directory leaves for later.
#[derive(Default)]
struct Listed {
    /// Directories to descend into: their path and name.
    subdirs: Vec<(RelPath, String)>,
    /// Files whose hash must be computed.
    to_hash: Vec<ToHash>,
}

impl Listing<'_> {
    /// The path of `name` in this directory, for a problem report.
    fn shown(&self, name: &str) -> String {
        match self.prefix {
            Some(prefix) => format!("{prefix}/{name}"),
            None => name.to_owned(),
        }
    }

    /// Reads the directory: symlinks and files the index vouches for go to `out` (with the
    /// problems met); directories and files to hash are returned. Leftover temp files are
    /// removed.
    fn list(&self, out: &mut Scanned) -> Listed {
        let mut listed = Listed::default();
        let reader = match rustix::fs::Dir::read_from(self.dir) {
            Ok(reader) => reader,
            Err(e) => {
                out.problems.push((self.shown(""), e.to_string()));
                return listed;
            }
        };
        for item in reader {
            let item = match item {
                Ok(item) => item,
                Err(e) => {
                    out.problems.push((self.shown(""), e.to_string()));
                    break;
                }
            };
            let raw = item.file_name().to_bytes();
            if raw == b"." || raw == b".." {
                continue;
            }
            let Ok(name) = std::str::from_utf8(raw) else {
                out.problems.push((
                    self.shown(&String::from_utf8_lossy(raw)),
                    "name is not valid UTF-8; skipped (rename it)".to_owned(),
                ));
                continue;
            };
            if name.starts_with(TEMP_PREFIX) {
                // A leftover of an interrupted run: never a version anyone made. A restore's
                // file is another process's work in progress until it is an hour old.
                if !name.starts_with(RESTORE_TEMP_PREFIX) || self.restore_temp_is_stale(name) {
                    let _ = rustix::fs::unlinkat(self.dir, name, AtFlags::empty());
                }
                continue;
            }
            match RelPath::child(self.prefix, name) {
                Ok(path) => self.add(path, name, &mut listed, out),
                Err(e) => out.problems.push((self.shown(name), e.to_string())),
            }
        }
        listed
    }

    /// Whether the restore temp file `name` was last changed more than
    /// [`RESTORE_TEMP_MAX_AGE_SECS`] seconds ago (its ctime, which nobody can set back): a restore that was
    /// killed, not one writing now. Gone already or unreadable: not stale.
    fn restore_temp_is_stale(&self, name: &str) -> bool {
        let Ok(Some(stat)) = fsx::lstat(self.dir, name) else {
            return false;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        #[allow(clippy::unnecessary_cast)] // c_long on some targets
        let ctime = stat.st_ctime as i64;
        is_stale(ctime, now)
    }

    /// Adds the entry `name` (at `path`) unless it is excluded: to `out` when it is complete
    /// now, to `listed` when it needs a descent or a hash.
    fn add(&self, path: RelPath, name: &str, listed: &mut Listed, out: &mut Scanned) {
        let stat = match fsx::lstat(self.dir, name) {
            Ok(Some(stat)) => stat,
            Ok(None) => return,
            Err(e) => {
                out.problems.push((path.to_string(), e.to_string()));
                return;
            }
        };
        let file_type = fsx::file_type(&stat);
        if self
            .excludes
            .is_excluded_in_scan(path.as_str(), file_type == FileType::Directory)
        {
            return;
        }
        match file_type {
            FileType::Directory => {
                out.entries
                    .push((path.clone(), fsx::entry_from(&stat, Kind::Dir)));
                listed.subdirs.push((path, name.to_owned()));
            }
            FileType::Symlink => match fsx::read_link(self.dir, name) {
                Ok(target) => out
                    .entries
                    .push((path, fsx::entry_from(&stat, Kind::Symlink { target }))),
                Err(e) => out.problems.push((path.to_string(), e.to_string())),
            },
            FileType::RegularFile => {
                match self.previous.known(self.known_here, path.as_str(), &stat) {
                    Ok(hash) => out.entries.push((
                        path,
                        fsx::entry_from(
                            &stat,
                            Kind::File {
                                size: stat.st_size as u64,
                                hash,
                            },
                        ),
                    )),
                    Err(expected) => listed.to_hash.push(ToHash {
                        path,
                        name: name.to_owned(),
                        expected,
                    }),
                }
            }
            _ => out.problems.push((
                path.to_string(),
                "not a regular file, directory or symlink; skipped".to_owned(),
            )),
        }
    }
}

/// Hashes the files of `to_hash` in `dir` in parallel; their entries go to `out`.
fn hash_files(dir: BorrowedFd<'_>, to_hash: Vec<ToHash>, out: &mut Scanned) {
    let hashed: Vec<Result<Hashed, (String, String)>> = to_hash
        .into_par_iter()
        .map(|item| match fsx::current_entry(dir, &item.name) {
            Ok(Some(entry)) => {
                let unchanged = item.expected.is_some() && entry.hash() == item.expected;
                Ok((item.path, entry, unchanged))
            }
            Ok(None) => Err((item.path.to_string(), "vanished during the scan".to_owned())),
            Err(e) => Err((item.path.to_string(), e.to_string())),
        })
        .collect();
    for result in hashed {
        match result {
            Ok((path, entry, unchanged)) => {
                out.hashed_bytes += entry.size();
                out.refresh += u64::from(unchanged);
                out.entries.push((path, entry));
            }
            // Vanished during the scan: simply not there.
            Err((_, reason)) if reason == "vanished during the scan" => {}
            Err(problem) => out.problems.push(problem),
        }
    }
}

/// Scans the directories `subdirs` of `dir` in parallel.
fn scan_subdirs(
    dir: BorrowedFd<'_>,
    subdirs: Vec<(RelPath, String)>,
    excludes: &Excludes,
    previous: &Previous<'_>,
) -> Vec<Scanned> {
    subdirs
        .into_par_iter()
        .map(|(path, name)| {
            match rustix::fs::openat(
                dir,
                name.as_str(),
                rustix::fs::OFlags::RDONLY
                    | rustix::fs::OFlags::DIRECTORY
                    | rustix::fs::OFlags::NOFOLLOW
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            ) {
                Ok(sub) => scan_dir(sub, Some(&path), excludes, previous),
                Err(e) => Scanned {
                    problems: vec![(path.to_string(), e.to_string())],
                    ..Scanned::default()
                },
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn gitignore_syntax() {
        let excludes = Excludes::new(&[
            "*.log".to_owned(),
            "/cache/".to_owned(),
            "!keep.log".to_owned(),
        ])
        .unwrap();
        assert!(excludes.is_excluded("a.log", false));
        assert!(excludes.is_excluded("deep/b.log", false));
        assert!(!excludes.is_excluded("keep.log", false));
        assert!(excludes.is_excluded("cache", true));
        assert!(excludes.is_excluded("cache/x.html", false));
        assert!(!excludes.is_excluded("sub/cache", true));
        assert!(!excludes.is_excluded("index.php", false));
        assert!(excludes.is_excluded("d/.failover-sync-tmp-3-1", false));
    }

    #[test]
    fn a_young_restore_file_is_left_alone_and_every_other_temp_file_removed() {
        let root = tempfile::tempdir().unwrap();
        let restoring = format!("{RESTORE_TEMP_PREFIX}77-0");
        let leftover = format!("{TEMP_PREFIX}77-1");
        std::fs::write(root.path().join(&restoring), b"old version").unwrap();
        std::fs::write(root.path().join(&leftover), b"half").unwrap();
        std::fs::write(root.path().join("index.php"), b"<?php").unwrap();
        let dir = std::fs::File::open(root.path()).unwrap();
        let excludes = Excludes::new(&[]).unwrap();
        let scanned = scan(
            std::os::fd::AsFd::as_fd(&dir),
            &excludes,
            &Previous {
                entries: &[],
                trust_before_ns: 0,
                refresh_before_ns: 0,
            },
        );
        assert!(
            root.path().join(&restoring).exists(),
            "a restore in progress was removed"
        );
        assert!(!root.path().join(&leftover).exists(), "a leftover stayed");
        let names: Vec<String> = scanned.entries.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(names, ["index.php"]);
    }

    #[test]
    fn a_restore_file_is_stale_after_an_hour() {
        assert!(!is_stale(1_000_000, 1_000_000));
        assert!(!is_stale(1_000_000, 1_000_000 + RESTORE_TEMP_MAX_AGE_SECS));
        assert!(is_stale(1_000_000, 1_000_001 + RESTORE_TEMP_MAX_AGE_SECS));
        // A clock set back never makes a file stale.
        assert!(!is_stale(1_000_000, 10));
    }
}
