//! Changes to the tree besides file contents: deletions, directories, symlinks, renames,
//! modes and owners, each checked against what the engine believes is there.

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags, Timespec, Timestamps};

use super::{temp_name, LocalReplica};
use crate::entry::{Entry, Kind, Owner, MODE_MASK};
use crate::fsx;
use crate::path::RelPath;
use crate::protocol::{BatchResponse, Failure};
use crate::versions::Why;
use crate::xattrs::Xattrs;

impl LocalReplica {
    pub(super) fn delete(&mut self, path: &RelPath, expect: &Entry) -> BatchResponse {
        let (dir, name) = match fsx::open_parent(self.root.as_fd(), path) {
            Ok(found) => found,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BatchResponse::Done,
            Err(e) => return self.io_failure(path, e),
        };
        if let Err(response) = self.check_current(&dir, name, path, Some(expect)) {
            return response;
        }
        let flags = if expect.is_dir() {
            AtFlags::REMOVEDIR
        } else {
            AtFlags::empty()
        };
        let kept = match self.keep_version(&dir, name, path, Some(expect), Why::Deleted) {
            Ok(kept) => kept,
            Err(response) => return response,
        };
        let unlinked = rustix::fs::unlinkat(&dir, name, flags);
        if let (Err(_), Some(kept)) = (&unlinked, kept) {
            let _ = std::fs::remove_file(kept);
        }
        match unlinked {
            Ok(()) => {
                self.touched(path);
                BatchResponse::Done
            }
            Err(rustix::io::Errno::NOTEMPTY) => BatchResponse::Failed(Failure::Io(format!(
                "{}: directory not empty (it holds excluded or new files); left in place",
                self.shown(path)
            ))),
            Err(e) => self.io_failure(path, e.into()),
        }
    }

    /// Removes `replace` (a file or symlink that is still what the engine saw) at `name`.
    fn remove_replaced(
        &mut self,
        dir: &OwnedFd,
        name: &str,
        path: &RelPath,
        replace: Option<&Entry>,
    ) -> Result<(), BatchResponse> {
        self.check_current(dir, name, path, replace)?;
        if replace.is_some() {
            let kept = self.keep_version(dir, name, path, replace, Why::Replaced)?;
            if let Err(e) = rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
                if let Some(kept) = kept {
                    let _ = std::fs::remove_file(kept);
                }
                return Err(self.io_failure(path, e.into()));
            }
        }
        Ok(())
    }

    /// Makes `path` a directory with `(mode, owner, extended attributes)`.
    pub(super) fn mkdir(
        &mut self,
        path: &RelPath,
        (mode, owner, xattrs): (u32, Option<&Owner>, Option<&Xattrs>),
        replace: Option<&Entry>,
    ) -> BatchResponse {
        let owner = self.owners.resolve(owner);
        let (dir, name) = match fsx::open_parent(self.root.as_fd(), path) {
            Ok(found) => found,
            Err(e) => return self.io_failure(path, e),
        };
        let mode = Mode::from_raw_mode(mode & MODE_MASK);
        if !replace.is_some_and(Entry::is_dir) {
            if let Err(response) = self.remove_replaced(&dir, name, path, replace) {
                return response;
            }
            match rustix::fs::mkdirat(&dir, name, mode) {
                Ok(()) => {}
                Err(rustix::io::Errno::EXIST) => return BatchResponse::Failed(Failure::Changed),
                Err(e) => return self.io_failure(path, e.into()),
            }
        }
        self.touched(path);
        let made = rustix::fs::openat(
            &dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(std::io::Error::from)
        .and_then(|fd| {
            rustix::fs::fchmod(&fd, mode)?;
            self.apply_xattrs(fd.as_fd(), xattrs)?;
            fsx::chown_fd(fd.as_fd(), owner)?;
            Ok(rustix::fs::fstat(&fd)?)
        });
        match made {
            Ok(stat) => BatchResponse::Installed(fsx::entry_from(&stat, Kind::Dir)),
            Err(e) => self.io_failure(path, e),
        }
    }

    pub(super) fn symlink(
        &mut self,
        path: &RelPath,
        target: &str,
        owner: Option<&Owner>,
        replace: Option<&Entry>,
    ) -> BatchResponse {
        let owner = self.owners.resolve(owner);
        if replace.is_some_and(Entry::is_dir) {
            return BatchResponse::Failed(Failure::Invalid(
                "a symlink cannot be written over a directory".to_owned(),
            ));
        }
        let (dir, name) = match fsx::open_parent(self.root.as_fd(), path) {
            Ok(found) => found,
            Err(e) => return self.io_failure(path, e),
        };
        if let Err(response) = self.check_current(&dir, name, path, replace) {
            return response;
        }
        let kept = match self.keep_version(&dir, name, path, replace, Why::Replaced) {
            Ok(kept) => kept,
            Err(response) => return response,
        };
        let temp = temp_name();
        if let Err(e) = rustix::fs::symlinkat(target, &dir, temp.as_str()) {
            return self.io_failure(path, e.into());
        }
        // The link itself gets its owner (`lchown`) before it takes the name.
        if let Err(e) = fsx::chown_at(dir.as_fd(), temp.as_str(), owner) {
            let _ = rustix::fs::unlinkat(&dir, temp.as_str(), AtFlags::empty());
            if let Some(kept) = kept {
                let _ = std::fs::remove_file(kept);
            }
            return self.io_failure(path, e.into());
        }
        let renamed = match replace {
            None => {
                rustix::fs::renameat_with(&dir, temp.as_str(), &dir, name, RenameFlags::NOREPLACE)
            }
            Some(_) => rustix::fs::renameat(&dir, temp.as_str(), &dir, name),
        };
        if let Err(e) = renamed {
            let _ = rustix::fs::unlinkat(&dir, temp.as_str(), AtFlags::empty());
            if let Some(kept) = kept {
                let _ = std::fs::remove_file(kept);
            }
            if e == rustix::io::Errno::EXIST {
                return BatchResponse::Failed(Failure::Changed);
            }
            return self.io_failure(path, e.into());
        }
        self.touched(path);
        match fsx::lstat(dir.as_fd(), name) {
            Ok(Some(stat)) => BatchResponse::Installed(fsx::entry_from(
                &stat,
                Kind::Symlink {
                    target: target.to_owned(),
                },
            )),
            Ok(None) => BatchResponse::Failed(Failure::Changed),
            Err(e) => self.io_failure(path, e),
        }
    }

    /// Sets `(mode, owner, extended attributes)` and (files) the mtime of `path`.
    pub(super) fn chmod(
        &mut self,
        path: &RelPath,
        expect: &Entry,
        (mode, owner, xattrs): (u32, Option<&Owner>, Option<&Xattrs>),
        mtime_ns: i64,
    ) -> BatchResponse {
        let owner = self.owners.resolve(owner);
        let mode = Mode::from_raw_mode(mode & MODE_MASK);
        let result = match &expect.kind {
            Kind::File { .. } => {
                let file = match self.open_expected(path, expect) {
                    Ok(file) => file,
                    Err(response) => return response,
                };
                let mtime = Timespec {
                    tv_sec: mtime_ns.div_euclid(1_000_000_000),
                    tv_nsec: mtime_ns.rem_euclid(1_000_000_000) as _,
                };
                let omit = Timespec {
                    tv_sec: 0,
                    tv_nsec: rustix::fs::UTIME_OMIT,
                };
                rustix::fs::fchmod(&file, mode)
                    .and_then(|()| {
                        rustix::fs::futimens(
                            &file,
                            &Timestamps {
                                last_access: omit,
                                last_modification: mtime,
                            },
                        )
                    })
                    .map_err(std::io::Error::from)
                    .and_then(|()| self.apply_xattrs(file.as_fd(), xattrs))
                    .and_then(|()| Ok(fsx::chown_fd(file.as_fd(), owner)?))
                    .and_then(|()| Ok(rustix::fs::fstat(&file)?))
            }
            Kind::Dir => fsx::open_dir(self.root.as_fd(), Some(path.as_str())).and_then(|fd| {
                rustix::fs::fchmod(&fd, mode)?;
                self.apply_xattrs(fd.as_fd(), xattrs)?;
                fsx::chown_fd(fd.as_fd(), owner)?;
                Ok(rustix::fs::fstat(&fd)?)
            }),
            Kind::Symlink { .. } if owner.is_none() => {
                return BatchResponse::Installed(expect.clone())
            }
            Kind::Symlink { .. } => return self.chown_symlink(path, expect, owner),
        };
        match result {
            Ok(stat) => BatchResponse::Installed(fsx::entry_from(&stat, expect.kind.clone())),
            Err(e) => self.io_failure(path, e),
        }
    }

    /// Gives the symlink `path` (still `expect`) to `owner`, never following it.
    fn chown_symlink(
        &mut self,
        path: &RelPath,
        expect: &Entry,
        owner: Option<(u32, u32)>,
    ) -> BatchResponse {
        let (dir, name) = match fsx::open_parent(self.root.as_fd(), path) {
            Ok(found) => found,
            Err(e) => return self.io_failure(path, e),
        };
        if let Err(response) = self.check_current(&dir, name, path, Some(expect)) {
            return response;
        }
        if let Err(e) = fsx::chown_at(dir.as_fd(), name, owner) {
            return self.io_failure(path, e.into());
        }
        match fsx::lstat(dir.as_fd(), name) {
            Ok(Some(stat)) => BatchResponse::Installed(fsx::entry_from(&stat, expect.kind.clone())),
            Ok(None) => BatchResponse::Failed(Failure::Changed),
            Err(e) => self.io_failure(path, e),
        }
    }

    pub(super) fn rename(&mut self, from: &RelPath, to: &RelPath, expect: &Entry) -> BatchResponse {
        let (from_dir, from_name) = match fsx::open_parent(self.root.as_fd(), from) {
            Ok(found) => found,
            Err(e) => return self.io_failure(from, e),
        };
        if let Err(response) = self.check_current(&from_dir, from_name, from, Some(expect)) {
            return response;
        }
        let (to_dir, to_name) = match fsx::open_parent(self.root.as_fd(), to) {
            Ok(found) => found,
            Err(e) => return self.io_failure(to, e),
        };
        match rustix::fs::renameat_with(
            &from_dir,
            from_name,
            &to_dir,
            to_name,
            RenameFlags::NOREPLACE,
        ) {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => return BatchResponse::Failed(Failure::Changed),
            Err(e) => return self.io_failure(to, e.into()),
        }
        self.touched(from);
        self.touched(to);
        match fsx::lstat(to_dir.as_fd(), to_name) {
            Ok(Some(stat)) => BatchResponse::Installed(fsx::entry_from(&stat, expect.kind.clone())),
            Ok(None) => BatchResponse::Failed(Failure::Changed),
            Err(e) => self.io_failure(to, e),
        }
    }
}
