//! Writing files: into a temp file beside the target (from deltas or whole), checked against
//! the sender's hash, staged, then fsynced in parallel and renamed into place by a flush.

use std::fs::File;
use std::io::BufWriter;
use std::os::fd::AsFd;

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags, Timespec, Timestamps};

use super::{temp_name, LocalReplica, PendingWrite, Staged, FSYNC_THREADS};
use crate::delta::{Applier, DeltaOp};
use crate::entry::{Entry, Kind, MODE_MASK};
use crate::fsx;
use crate::path::RelPath;
use crate::protocol::{BatchResponse, Failure, Handle};
use crate::versions::Why;

/// Bytes a large write grows by before the next early sync starts.
const EARLY_SYNC_BYTES: u64 = 32 << 20;

impl PendingWrite {
    /// With large files the final fsync would wait for all the data to reach the disk at
    /// once: a sync in the background while the rest arrives starts the write-back early,
    /// so the final one finds little left. Its outcome does not matter: the final fsync,
    /// before the rename, is the one that counts.
    fn sync_early(&mut self) {
        let written = self.applier.written();
        if written - self.synced_at < EARLY_SYNC_BYTES
            || self.early_sync.as_ref().is_some_and(|t| !t.is_finished())
        {
            return;
        }
        self.finish_early_sync();
        if let Ok(file) = self.applier.writer().get_ref().try_clone() {
            self.synced_at = written;
            self.early_sync = std::thread::Builder::new()
                .name("early-sync".to_owned())
                .spawn(move || {
                    let _ = file.sync_data();
                })
                .ok();
        }
    }

    /// Gives the write up: its temp file is removed.
    pub(super) fn discard(mut self) {
        self.finish_early_sync();
        let _ = rustix::fs::unlinkat(&self.dir, self.temp.as_str(), AtFlags::empty());
    }

    /// Waits for the early sync, if one runs.
    fn finish_early_sync(&mut self) {
        if let Some(thread) = self.early_sync.take() {
            let _ = thread.join();
        }
    }
}

impl LocalReplica {
    pub(super) fn write_begin(
        &mut self,
        path: RelPath,
        replace: Option<Entry>,
        basis: Option<(RelPath, Entry)>,
        target: Entry,
    ) -> BatchResponse {
        if !matches!(target.kind, Kind::File { .. }) {
            return BatchResponse::Failed(Failure::Invalid("write of a non-file".to_owned()));
        }
        if replace.as_ref().is_some_and(Entry::is_dir) {
            return BatchResponse::Failed(Failure::Invalid(
                "a file cannot be written over a directory".to_owned(),
            ));
        }
        let (dir, name) = match fsx::open_parent(self.root.as_fd(), &path) {
            Ok(found) => found,
            Err(e) => return self.io_failure(&path, e),
        };
        if let Err(response) = self.check_current(&dir, name, &path, replace.as_ref()) {
            return response;
        }
        let basis = match basis {
            Some((basis_path, expect)) => match self.open_expected(&basis_path, &expect) {
                Ok(file) => Some(file),
                Err(response) => return response,
            },
            None => None,
        };
        let temp = temp_name();
        let file = match rustix::fs::openat(
            &dir,
            temp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        ) {
            Ok(fd) => File::from(fd),
            Err(e) => return self.io_failure(&path, e.into()),
        };
        let applier = match Applier::new(BufWriter::with_capacity(fsx::CHUNK, file), basis) {
            Ok(applier) => applier,
            Err(e) => {
                let _ = rustix::fs::unlinkat(&dir, temp.as_str(), AtFlags::empty());
                return self.io_failure(&path, e);
            }
        };
        let handle = self.handle_id();
        self.writes.insert(
            handle,
            PendingWrite {
                path,
                dir,
                temp,
                applier,
                replace,
                target,
                synced_at: 0,
                early_sync: None,
            },
        );
        BatchResponse::Opened(handle)
    }

    pub(super) fn write_ops(
        &mut self,
        handle: Handle,
        ops: &[crate::delta::DeltaOp],
    ) -> BatchResponse {
        let Some(write) = self.writes.get_mut(&handle) else {
            return BatchResponse::Failed(Failure::Invalid(format!("no open write {handle}")));
        };
        match write.applier.apply(ops, write.target.size()) {
            Ok(()) => {
                if self.config.fsync {
                    write.sync_early();
                }
                BatchResponse::Done
            }
            Err(e) => {
                let Some(write) = self.writes.remove(&handle) else {
                    return BatchResponse::Done;
                };
                let path = write.path.clone();
                write.discard();
                if e.kind() == std::io::ErrorKind::InvalidData {
                    BatchResponse::Failed(Failure::Invalid(format!("{path}: {e}")))
                } else {
                    self.io_failure(&path, e)
                }
            }
        }
    }

    /// Checks the written file and stages it for the next flush.
    pub(super) fn write_commit(&mut self, handle: Handle) -> BatchResponse {
        let Some(mut write) = self.writes.remove(&handle) else {
            return BatchResponse::Failed(Failure::Invalid(format!("no open write {handle}")));
        };
        write.finish_early_sync();
        let PendingWrite {
            path,
            dir,
            temp,
            applier,
            replace,
            target,
            ..
        } = write;
        let remove_temp = || {
            let _ = rustix::fs::unlinkat(&dir, temp.as_str(), AtFlags::empty());
        };
        let owner = self.owners.resolve(target.owner.as_deref());
        let written = applier.written();
        let (hash, writer) = applier.finish();
        let file = match writer.into_inner() {
            Ok(file) => file,
            Err(e) => {
                remove_temp();
                return self.io_failure(&path, e.into_error());
            }
        };
        if written != target.size() || Some(hash.into()) != target.hash() {
            remove_temp();
            return BatchResponse::Failed(Failure::HashMismatch);
        }
        let finish = || -> std::io::Result<()> {
            rustix::fs::fchmod(&file, Mode::from_raw_mode(target.mode & MODE_MASK))?;
            let mtime = Timespec {
                tv_sec: target.mtime_ns.div_euclid(1_000_000_000),
                tv_nsec: target.mtime_ns.rem_euclid(1_000_000_000) as _,
            };
            let omit = Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_OMIT,
            };
            rustix::fs::futimens(
                &file,
                &Timestamps {
                    last_access: omit,
                    last_modification: mtime,
                },
            )?;
            // After the mode: an ACL sets the group bits (its mask) as the sender has them.
            self.apply_xattrs(file.as_fd(), target.xattrs.as_deref())?;
            // Last: the mirror owns the temp file until then (CAP_CHOWN is all it needs).
            fsx::chown_fd(file.as_fd(), owner)?;
            Ok(())
        };
        if let Err(e) = finish() {
            remove_temp();
            return self.io_failure(&path, e);
        }
        self.staged.push(Staged {
            handle,
            path,
            dir,
            temp,
            file,
            replace,
            kind: target.kind,
        });
        BatchResponse::Staged
    }

    pub(super) fn flush(&mut self) -> BatchResponse {
        let staged = std::mem::take(&mut self.staged);
        let synced: Vec<std::io::Result<()>> = if self.config.fsync {
            let chunk = staged.len().div_ceil(FSYNC_THREADS).max(1);
            std::thread::scope(|scope| {
                let workers: Vec<_> = staged
                    .chunks(chunk)
                    .map(|part| {
                        scope.spawn(move || {
                            part.iter().map(|s| s.file.sync_all()).collect::<Vec<_>>()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|w| {
                        w.join().unwrap_or_else(|_| {
                            vec![Err(std::io::Error::other("fsync thread panicked"))]
                        })
                    })
                    .collect()
            })
        } else {
            staged.iter().map(|_| Ok(())).collect()
        };
        let mut results = Vec::with_capacity(staged.len());
        for (item, synced) in staged.into_iter().zip(synced) {
            let result = self.install_staged(&item, synced);
            if result.is_err() {
                let _ = rustix::fs::unlinkat(&item.dir, item.temp.as_str(), AtFlags::empty());
            }
            results.push((item.handle, result));
        }
        BatchResponse::Flushed(results)
    }

    fn install_staged(
        &mut self,
        item: &Staged,
        synced: std::io::Result<()>,
    ) -> Result<Entry, Failure> {
        let failure = |this: &Self, e: std::io::Error| match this.io_failure(&item.path, e) {
            BatchResponse::Failed(failure) => failure,
            _ => Failure::Io(item.path.to_string()),
        };
        synced.map_err(|e| failure(self, e))?;
        let name = item.path.file_name();
        if let Err(response) =
            self.check_current(&item.dir, name, &item.path, item.replace.as_ref())
        {
            return Err(match response {
                BatchResponse::Failed(failure) => failure,
                _ => Failure::Changed,
            });
        }
        let kept = self
            .keep_version(
                &item.dir,
                name,
                &item.path,
                item.replace.as_ref(),
                Why::Replaced,
            )
            .map_err(|response| match response {
                BatchResponse::Failed(failure) => failure,
                _ => Failure::Changed,
            })?;
        let renamed = match item.replace {
            None => rustix::fs::renameat_with(
                &item.dir,
                item.temp.as_str(),
                &item.dir,
                name,
                RenameFlags::NOREPLACE,
            ),
            Some(_) => rustix::fs::renameat(&item.dir, item.temp.as_str(), &item.dir, name),
        };
        if let (Err(_), Some(kept)) = (&renamed, kept) {
            let _ = std::fs::remove_file(kept);
        }
        match renamed {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => return Err(Failure::Changed),
            Err(e) => return Err(failure(self, e.into())),
        }
        self.touched(&item.path);
        let stat = rustix::fs::fstat(&item.file).map_err(|e| failure(self, e.into()))?;
        Ok(fsx::entry_from(&stat, item.kind.clone()))
    }

    pub(super) fn write_whole(
        &mut self,
        path: RelPath,
        replace: Option<Entry>,
        target: Entry,
        data: Vec<u8>,
    ) -> BatchResponse {
        let handle = match self.write_begin(path, replace, None, target) {
            BatchResponse::Opened(handle) => handle,
            other => return other,
        };
        if !data.is_empty() {
            match self.write_ops(handle, &[DeltaOp::Literal(data)]) {
                BatchResponse::Done => {}
                other => return other,
            }
        }
        match self.write_commit(handle) {
            BatchResponse::Staged => BatchResponse::StagedAs(handle),
            other => other,
        }
    }

    /// Gives up the open read or write `handle` (a write's temp file is removed).
    pub(super) fn abort(&mut self, handle: Handle) -> BatchResponse {
        self.reads.remove(&handle);
        if let Some(write) = self.writes.remove(&handle) {
            write.discard();
        }
        BatchResponse::Done
    }
}
