//! File-system access beneath a replica's root through directory handles: no path from the
//! other side is ever resolved through a symlink or outside the root.

// `stat`'s field types differ between architectures: the casts are needed on some of them.
#![allow(clippy::unnecessary_cast)]

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};

use crate::entry::{Entry, Hash, Kind, Owner, StatKey, MODE_MASK};
use crate::path::RelPath;

/// Flags for opening a directory that must not be a symlink.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Opens the directory `rel` beneath `root` without following any symlink (`None`: the root).
pub(crate) fn open_dir(root: BorrowedFd<'_>, rel: Option<&str>) -> io::Result<OwnedFd> {
    let Some(rel) = rel else {
        return Ok(rustix::fs::openat(root, ".", dir_flags(), Mode::empty())?);
    };
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(root, rel, dir_flags(), Mode::empty(), resolve) {
        // ENOSYS: kernels before 5.6. EPERM: container seccomp profiles from before openat2
        // refuse it so. (A real EPERM comes again from the walk below.)
        Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {}
        other => return Ok(other?),
    }
    // Without openat2: one component at a time, each opened with O_NOFOLLOW.
    let mut dir = rustix::fs::openat(root, ".", dir_flags(), Mode::empty())?;
    for component in rel.split('/') {
        dir = rustix::fs::openat(&dir, component, dir_flags(), Mode::empty())?;
    }
    Ok(dir)
}

/// Opens the parent directory of `path` beneath `root`; returns it with the last component.
pub(crate) fn open_parent<'p>(
    root: BorrowedFd<'_>,
    path: &'p RelPath,
) -> io::Result<(OwnedFd, &'p str)> {
    let text = path.as_str();
    match text.rfind('/') {
        Some(at) => Ok((open_dir(root, Some(&text[..at]))?, &text[at + 1..])),
        None => Ok((open_dir(root, None)?, text)),
    }
}

/// `lstat` of `name` in `dir`; `None` when it does not exist.
pub(crate) fn lstat(dir: BorrowedFd<'_>, name: &str) -> io::Result<Option<Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(stat)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Nanoseconds since the epoch from a `stat` time.
fn nanos(seconds: i64, nanoseconds: u64) -> i64 {
    seconds
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::try_from(nanoseconds).unwrap_or(0))
}

/// The file type of a `stat`.
pub(crate) fn file_type(stat: &Stat) -> FileType {
    FileType::from_raw_mode(stat.st_mode as _)
}

/// The parts of an entry that come from `stat` alone.
pub(crate) fn stat_key(stat: &Stat) -> StatKey {
    StatKey {
        dev: stat.st_dev as u64,
        ino: stat.st_ino as u64,
        ctime_ns: nanos(stat.st_ctime as i64, stat.st_ctime_nsec as u64),
    }
}

/// Modification time of a `stat`, in nanoseconds.
pub(crate) fn mtime_ns(stat: &Stat) -> i64 {
    nanos(stat.st_mtime as i64, stat.st_mtime_nsec as u64)
}

/// Builds an entry from `stat` and the kind (which carries what `stat` does not know).
pub(crate) fn entry_from(stat: &Stat, kind: Kind) -> Entry {
    let (mode, mtime_ns) = match kind {
        Kind::File { .. } => (stat.st_mode as u32 & MODE_MASK, mtime_ns(stat)),
        Kind::Dir => (stat.st_mode as u32 & MODE_MASK, 0),
        Kind::Symlink { .. } => (0, 0),
    };
    Entry {
        kind,
        mode,
        owner: Some(Box::new(Owner::numeric(
            stat.st_uid as u32,
            stat.st_gid as u32,
        ))),
        mtime_ns,
        stat: stat_key(stat),
        xattrs: None,
    }
}

fn ids(owner: (u32, u32)) -> (rustix::fs::Uid, rustix::fs::Gid) {
    (
        rustix::fs::Uid::from_raw(owner.0),
        rustix::fs::Gid::from_raw(owner.1),
    )
}

/// Gives the open file or directory `fd` to `owner` (`(uid, gid)`; `None`: left as it is).
pub(crate) fn chown_fd(fd: BorrowedFd<'_>, owner: Option<(u32, u32)>) -> rustix::io::Result<()> {
    let Some(owner) = owner else {
        return Ok(());
    };
    let (uid, gid) = ids(owner);
    rustix::fs::fchown(fd, Some(uid), Some(gid))
}

/// Gives `name` in `dir` to `owner` without following it when it is a symlink (`lchown`).
pub(crate) fn chown_at(
    dir: BorrowedFd<'_>,
    name: &str,
    owner: Option<(u32, u32)>,
) -> rustix::io::Result<()> {
    let Some(owner) = owner else {
        return Ok(());
    };
    let (uid, gid) = ids(owner);
    rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
}

/// Reads the target of the symlink `name` in `dir`.
pub(crate) fn read_link(dir: BorrowedFd<'_>, name: &str) -> io::Result<String> {
    let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
    target.into_string().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "symlink target is not valid UTF-8; rename its target",
        )
    })
}

/// Opens the regular file `name` in `dir` for reading (never through a symlink).
pub(crate) fn open_file(dir: BorrowedFd<'_>, name: &str) -> io::Result<File> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    let stat = rustix::fs::fstat(&fd)?;
    if file_type(&stat) != FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(File::from(fd))
}

/// Size of the read buffer when hashing and copying.
pub(crate) const CHUNK: usize = 1 << 20;

/// Files at least this large are hashed on several threads.
const PARALLEL_HASH_MIN: u64 = 8 << 20;

/// BLAKE3 of an open file's whole content, read in bounded chunks. Returns the hash and the
/// number of bytes read.
pub(crate) fn hash_file(file: &mut File, size_hint: u64) -> io::Result<(Hash, u64)> {
    let mut hasher = blake3::Hasher::new();
    let parallel = size_hint >= PARALLEL_HASH_MIN;
    let mut buffer = vec![
        0u8;
        if parallel {
            4 * CHUNK
        } else {
            CHUNK.min(size_hint as usize + 1).max(4096)
        }
    ];
    let mut total = 0u64;
    loop {
        let read = read_full(file, &mut buffer)?;
        if read == 0 {
            break;
        }
        total += read as u64;
        if parallel {
            hasher.update_rayon(&buffer[..read]);
        } else {
            hasher.update(&buffer[..read]);
        }
        if read < buffer.len() {
            break;
        }
    }
    Ok((hasher.finalize().into(), total))
}

/// Reads until `buffer` is full or the end of the file.
pub(crate) fn read_full(file: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The current entry of `name` in `dir`, hashing a regular file; `None` when absent.
pub(crate) fn current_entry(dir: BorrowedFd<'_>, name: &str) -> io::Result<Option<Entry>> {
    let Some(stat) = lstat(dir, name)? else {
        return Ok(None);
    };
    let kind = match file_type(&stat) {
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Symlink {
            target: read_link(dir, name)?,
        },
        FileType::RegularFile => {
            let mut file = open_file(dir, name)?;
            let stat = rustix::fs::fstat(file.as_fd())?;
            let (hash, size) = hash_file(&mut file, stat.st_size as u64)?;
            return Ok(Some(entry_from(&stat, Kind::File { size, hash })));
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file, directory or symlink",
            ))
        }
    };
    Ok(Some(entry_from(&stat, kind)))
}

/// Nanoseconds since the epoch, now.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
