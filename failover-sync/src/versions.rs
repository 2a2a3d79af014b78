//! Versions: what the mirror replaced or deleted on this replica, kept in its state directory
//! (never in the root), pruned by age and total size, listed and restored.
//!
//! The area is per node: `STATE_DIR/versions/<node>/<path>/<UTC time>_<why>_<hash>`, where
//! `<path>` is the mirrored path made a directory, `<why>` is `replaced` or `deleted` and
//! `<hash>` the first 16 hex digits of the version's BLAKE3. Every regular file beneath
//! `versions/<node>/` is a version, and its directory names its path (a real path component is
//! always a directory there), so the layout needs no catalogue. A version is a hard link to the
//! replaced inode (the mirror never writes in place, so nothing changes it afterwards), or a
//! copy when the state directory is on another file system. Only regular files are kept:
//! directories and symlinks hold nothing that a version would save.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};

use crate::entry::{Entry, MODE_MASK};
use crate::error::SyncError;
use crate::fsx;
use crate::path::RelPath;
use crate::xattrs::XattrKinds;

/// How long versions are kept, unless configured otherwise (30 days).
pub const DEFAULT_KEEP_VERSIONS_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Most bytes the versions of one node take, unless configured otherwise (1 GiB).
pub const DEFAULT_VERSIONS_MAX_BYTES: u64 = 1 << 30;

/// How long versions are kept and how much room they may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionPolicy {
    /// A version older than this is removed.
    pub keep_for: Duration,
    /// Past this many bytes in all, the oldest versions are removed.
    pub max_bytes: u64,
}

impl Default for VersionPolicy {
    fn default() -> Self {
        VersionPolicy {
            keep_for: DEFAULT_KEEP_VERSIONS_FOR,
            max_bytes: DEFAULT_VERSIONS_MAX_BYTES,
        }
    }
}

/// Why a version was kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// The mirror (or a restore) wrote another version over it.
    Replaced,
    /// The mirror deleted it.
    Deleted,
}

impl Why {
    /// The word in the version's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Replaced => "replaced",
            Why::Deleted => "deleted",
        }
    }
}

/// One kept version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// The path it was at, relative to the root.
    pub path: RelPath,
    /// Its name in the versions area (`<UTC time>_<why>_<hash>`): what `restore` is given.
    pub name: String,
    /// When it was replaced or deleted.
    pub kept_at: SystemTime,
    /// Why it was kept.
    pub why: Why,
    /// Its size in bytes.
    pub size: u64,
    /// Where it is.
    pub file: PathBuf,
}

/// What [`Versions::prune`] removed and kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Versions removed.
    pub removed: u64,
    /// Their bytes.
    pub removed_bytes: u64,
    /// Versions kept.
    pub kept: u64,
    /// Their bytes.
    pub kept_bytes: u64,
}

/// The versions area of one node.
#[derive(Clone, Debug)]
pub struct Versions {
    dir: PathBuf,
    policy: VersionPolicy,
}

impl Versions {
    /// The versions of `node` in `state_dir` (the mirror's state directory), kept by `policy`.
    pub fn new(state_dir: &Path, node: &str, policy: VersionPolicy) -> Self {
        Versions {
            dir: state_dir
                .join("versions")
                .join(crate::replica::sanitize(node)),
            policy,
        }
    }

    /// Where the versions are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps the regular file `name` in `dir` (the replica's `path`, believed to be `entry`)
    /// as a version, before the mirror replaces or deletes it.
    pub(crate) fn keep(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        path: &RelPath,
        entry: &Entry,
        why: Why,
    ) -> io::Result<PathBuf> {
        let place = self.dir.join(path.as_str());
        std::fs::create_dir_all(&place)?;
        let place_fd = rustix::fs::open(
            &place,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let hash: String = entry
            .hash()
            .map(|h| h.0[..8].iter().map(|b| format!("{b:02x}")).collect())
            .unwrap_or_default();
        for attempt in 0..5 {
            let at = humantime::format_rfc3339_nanos(SystemTime::now());
            let version = format!("{at}_{}_{hash}", why.as_str());
            match rustix::fs::linkat(dir, name, &place_fd, version.as_str(), AtFlags::empty()) {
                Ok(()) => return Ok(place.join(version)),
                Err(rustix::io::Errno::EXIST) if attempt < 4 => continue,
                // Another file system, or one without hard links: a copy.
                Err(
                    rustix::io::Errno::XDEV | rustix::io::Errno::PERM | rustix::io::Errno::MLINK,
                ) => {
                    copy_version(dir, name, place_fd.as_fd(), &version)?;
                    return Ok(place.join(version));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{}: no free version name", place.display()),
        ))
    }

    /// Every version of `under` and beneath it (everything when `None`), by path, oldest
    /// first.
    pub fn list(&self, under: Option<&RelPath>) -> Result<Vec<Version>, SyncError> {
        let start = match under {
            Some(path) => self.dir.join(path.as_str()),
            None => self.dir.clone(),
        };
        let mut found = Vec::new();
        self.walk(&start, &mut found)?;
        found.sort_by(|a, b| (&a.path, a.kept_at).cmp(&(&b.path, b.kept_at)));
        Ok(found)
    }

    fn walk(&self, dir: &Path, found: &mut Vec<Version>) -> Result<(), SyncError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(SyncError::io(dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| SyncError::io(dir, e))?;
            let file = entry.path();
            let meta = entry.metadata().map_err(|e| SyncError::io(&file, e))?;
            if meta.is_dir() {
                self.walk(&file, found)?;
            } else if meta.is_file() {
                if let Some(version) = self.version_at(&file, meta.len()) {
                    found.push(version);
                }
            }
        }
        Ok(())
    }

    /// The version stored at `file`, if its name and place are one's.
    fn version_at(&self, file: &Path, size: u64) -> Option<Version> {
        let name = file.file_name()?.to_str()?;
        let mut parts = name.splitn(3, '_');
        let kept_at = humantime::parse_rfc3339(parts.next()?).ok()?;
        let why = match parts.next()? {
            "replaced" => Why::Replaced,
            "deleted" => Why::Deleted,
            _ => return None,
        };
        let path = file.parent()?.strip_prefix(&self.dir).ok()?.to_str()?;
        Some(Version {
            path: RelPath::new(path).ok()?,
            name: name.to_owned(),
            kept_at,
            why,
            size,
            file: file.to_path_buf(),
        })
    }

    /// Removes the versions older than the policy's `keep_for`, then the oldest until the rest
    /// fit in `max_bytes`, and the directories left empty.
    pub fn prune(&self, now: SystemTime) -> Result<Pruned, SyncError> {
        let mut all = self.list(None)?;
        all.sort_by_key(|v| v.kept_at);
        let mut total: u64 = all.iter().map(|v| v.size).sum();
        let mut pruned = Pruned::default();
        for version in &all {
            let too_old = now
                .duration_since(version.kept_at)
                .is_ok_and(|age| age > self.policy.keep_for);
            if too_old || total > self.policy.max_bytes {
                match std::fs::remove_file(&version.file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(SyncError::io(&version.file, e)),
                }
                total -= version.size;
                pruned.removed += 1;
                pruned.removed_bytes += version.size;
            } else {
                pruned.kept += 1;
                pruned.kept_bytes += version.size;
            }
        }
        if pruned.removed > 0 {
            remove_empty_dirs(&self.dir);
        }
        Ok(pruned)
    }

    /// Puts `version` back at its path beneath `root` (its missing directories made), the way
    /// an edit would: written to a temp file beside it and renamed, so that a running mirror
    /// sees a change and carries it to the other side. The file there now, if any, is kept as a
    /// version first, so a restore can be undone too. Its mtime is now (caches must see a new
    /// version), its mode, owner, `user.*` attributes and ACLs the version's.
    pub fn restore(&self, root: &Path, version: &Version) -> Result<(), SyncError> {
        let root_fd = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SyncError::io(root, e.into()))?;
        let shown = root.join(version.path.as_str());
        let io = |e: io::Error| SyncError::io(&shown, e);
        make_parents(root_fd.as_fd(), &version.path).map_err(io)?;
        let (dir, name) = fsx::open_parent(root_fd.as_fd(), &version.path).map_err(io)?;
        let current = fsx::current_entry(dir.as_fd(), name).map_err(io)?;
        if let Some(entry) = &current {
            if !matches!(entry.kind, crate::entry::Kind::File { .. }) {
                return Err(SyncError::Root {
                    path: shown.clone(),
                    reason: "is not a regular file now; move it away, then restore again"
                        .to_owned(),
                });
            }
        }
        let mut source = File::open(&version.file).map_err(|e| SyncError::io(&version.file, e))?;
        let meta = source
            .metadata()
            .map_err(|e| SyncError::io(&version.file, e))?;
        let temp = crate::replica::restore_temp_name();
        let made = write_temp(dir.as_fd(), &temp, &mut source, &meta).and_then(|()| {
            if let Some(entry) = &current {
                self.keep(dir.as_fd(), name, &version.path, entry, Why::Replaced)?;
            }
            let flags = if current.is_some() {
                RenameFlags::empty()
            } else {
                RenameFlags::NOREPLACE
            };
            Ok(rustix::fs::renameat_with(
                &dir,
                temp.as_str(),
                &dir,
                name,
                flags,
            )?)
        });
        if let Err(e) = made {
            let _ = rustix::fs::unlinkat(&dir, temp.as_str(), AtFlags::empty());
            return Err(io(e));
        }
        Ok(())
    }
}

/// Copies the regular file `name` in `dir` to `version` in `place`, with its mode, owner and
/// mtime, fsynced.
fn copy_version(
    dir: BorrowedFd<'_>,
    name: &str,
    place: BorrowedFd<'_>,
    version: &str,
) -> io::Result<()> {
    let mut source = fsx::open_file(dir, name)?;
    let stat = rustix::fs::fstat(&source)?;
    let fd = rustix::fs::openat(
        place,
        version,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let mut copy = File::from(fd);
    let copied = io::copy(&mut source, &mut copy).and_then(|_| {
        rustix::fs::fchmod(&copy, Mode::from_raw_mode(stat.st_mode & MODE_MASK))?;
        let _ = rustix::fs::fchown(
            &copy,
            Some(rustix::fs::Uid::from_raw(stat.st_uid)),
            Some(rustix::fs::Gid::from_raw(stat.st_gid)),
        );
        copy.set_modified(SystemTime::UNIX_EPOCH + mtime_of(&stat))?;
        copy.sync_all()
    });
    if copied.is_err() {
        let _ = rustix::fs::unlinkat(place, version, AtFlags::empty());
    }
    copied
}

fn mtime_of(stat: &rustix::fs::Stat) -> Duration {
    let ns = fsx::mtime_ns(stat).max(0) as u64;
    Duration::from_nanos(ns)
}

/// Writes `source` into the new temp file `temp` in `dir` with `meta`'s mode and owner.
fn write_temp(
    dir: BorrowedFd<'_>,
    temp: &str,
    source: &mut File,
    meta: &std::fs::Metadata,
) -> io::Result<()> {
    let fd = rustix::fs::openat(
        dir,
        temp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let mut file = File::from(fd);
    io::copy(source, &mut file)?;
    let _ = rustix::fs::fchown(
        &file,
        Some(rustix::fs::Uid::from_raw(meta.uid())),
        Some(rustix::fs::Gid::from_raw(meta.gid())),
    );
    file.set_permissions(std::fs::Permissions::from_mode(
        meta.permissions().mode() & MODE_MASK,
    ))?;
    // Its user.* attributes and ACLs too (after the mode: an ACL sets the group bits), where
    // the root's file system holds them; the mirror carries them on if it mirrors them.
    let every = XattrKinds {
        user: true,
        acls: true,
    };
    if let Ok(kept) = crate::xattrs::read(source.as_fd(), every) {
        match crate::xattrs::apply(file.as_fd(), every, &kept) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTSUP.raw_os_error()) => {}
            Err(e) => return Err(e),
        }
    }
    file.sync_all()
}

/// Makes the missing parents of `path` beneath `root` (mode 0755), never through a symlink.
fn make_parents(root: BorrowedFd<'_>, path: &RelPath) -> io::Result<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    let mut made = String::new();
    for component in parent.as_str().split('/') {
        let dir = fsx::open_dir(root, (!made.is_empty()).then_some(made.as_str()))?;
        match rustix::fs::mkdirat(&dir, component, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        if !made.is_empty() {
            made.push('/');
        }
        made.push_str(component);
    }
    // A symlink or file where a directory is needed is refused here.
    fsx::open_dir(root, Some(parent.as_str())).map(drop)
}

/// Removes the empty directories beneath `dir` (not `dir` itself); best effort.
fn remove_empty_dirs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let path = entry.path();
            remove_empty_dirs(&path);
            let _ = std::fs::remove_dir(&path);
        }
    }
}
