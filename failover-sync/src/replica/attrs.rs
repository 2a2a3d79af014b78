//! Extended attributes and ACLs on a replica, when the conversation mirrors them: what its file
//! system holds (probed once), the attributes of scanned and installed entries, and setting
//! them on what the replica writes.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use rayon::prelude::*;

use super::LocalReplica;
use crate::entry::{Entry, Kind};
use crate::fsx;
use crate::index::lookup;
use crate::path::RelPath;
use crate::protocol::{BatchRequest, BatchResponse, Handle};
use crate::scan::Previous;
use crate::xattrs::{self, XattrKinds, Xattrs};

impl LocalReplica {
    /// What of `asked` this replica's file system holds, and why not all when it does not
    /// (probed once per kinds asked).
    pub(super) fn probe_xattrs(&mut self, asked: XattrKinds) -> (XattrKinds, Option<String>) {
        if let Some((probed, held, why)) = &self.xattr_probe {
            if *probed == asked {
                return (*held, why.clone());
            }
        }
        let (held, why) = xattrs::probe(self.root.as_fd(), asked);
        let why = why.map(|why| {
            format!(
                "{}: {why}; mount it with them (ext4, xfs and recent tmpfs hold both), or set \
                 xattrs/acls = false",
                self.config.root.display()
            )
        });
        self.xattr_probe = Some((asked, held, why.clone()));
        (held, why)
    }

    /// The attributes of the files and directories of a scan: the index's (`previous`, when it
    /// holds the kinds mirrored now) where the path's identity and ctime are what it holds
    /// (setting an attribute moves the ctime; the same trust window as for hashes), else read.
    pub(super) fn fill_scanned(
        &self,
        entries: &mut [(RelPath, Entry)],
        previous: Option<&Previous<'_>>,
    ) {
        if self.xattrs.is_off() {
            return;
        }
        entries.par_iter_mut().for_each(|(path, entry)| {
            if matches!(entry.kind, Kind::Symlink { .. }) {
                return;
            }
            let known = previous.and_then(|previous| {
                lookup(previous.entries, path.as_str()).filter(|old| {
                    old.stat == entry.stat
                        && entry.stat.ctime_ns < previous.trust_before_ns
                        && old.xattrs.is_some()
                })
            });
            entry.xattrs = match known {
                Some(old) => old.xattrs.clone(),
                None => self.attrs_of(path),
            };
        });
    }

    /// The paths whose entries an answer to `request` carries (by handle for a flush).
    pub(super) fn installed_paths(&self, request: &BatchRequest) -> Vec<(Option<Handle>, RelPath)> {
        match request {
            BatchRequest::Mkdir { path, .. } | BatchRequest::Chmod { path, .. } => {
                vec![(None, path.clone())]
            }
            BatchRequest::Rename { to, .. } => vec![(None, to.clone())],
            BatchRequest::Flush => self
                .staged
                .iter()
                .map(|s| (Some(s.handle), s.path.clone()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Fills the attributes of the entries of `response` (an answer to a request whose
    /// [`Self::installed_paths`] are `paths`).
    pub(super) fn fill_installed(
        &self,
        response: &mut BatchResponse,
        paths: &[(Option<Handle>, RelPath)],
    ) {
        let fill = |entry: &mut Entry, path: &RelPath| {
            if !matches!(entry.kind, Kind::Symlink { .. }) {
                entry.xattrs = self.attrs_of(path);
            }
        };
        match response {
            BatchResponse::Installed(entry) => {
                if let [(None, path)] = paths {
                    fill(entry, path);
                }
            }
            BatchResponse::Flushed(results) => {
                for (handle, result) in results.iter_mut() {
                    let path = paths.iter().find(|(h, _)| *h == Some(*handle));
                    if let (Ok(entry), Some((_, path))) = (result, path) {
                        fill(entry, path);
                    }
                }
            }
            _ => {}
        }
    }

    /// The mirrored attributes of `path` now (`None` when they cannot be read: not known).
    fn attrs_of(&self, path: &RelPath) -> Option<Box<Xattrs>> {
        let read = || -> io::Result<Xattrs> {
            let (dir, name) = fsx::open_parent(self.root.as_fd(), path)?;
            let fd = xattrs::open(dir.as_fd(), name)?;
            xattrs::read(fd.as_fd(), self.xattrs)
        };
        match read() {
            Ok(found) => Some(Box::new(found)),
            Err(e) => {
                tracing::warn!(
                    "mirror: extended attributes of {} not read: {e}",
                    self.shown(path)
                );
                None
            }
        }
    }

    /// Sets `wanted` (when known and mirrored) on the open file or directory `fd`.
    pub(super) fn apply_xattrs(
        &self,
        fd: BorrowedFd<'_>,
        wanted: Option<&Xattrs>,
    ) -> io::Result<()> {
        match wanted {
            Some(wanted) if !self.xattrs.is_off() => xattrs::apply(fd, self.xattrs, wanted),
            _ => Ok(()),
        }
    }
}
