//! `LocalReplica`: one replica on this machine, answering the engine's requests. It owns the
//! replica's root (through a directory handle), its lock, its index and its open transfers.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags, RenameFlags, Timespec, Timestamps};

use crate::delta::{Applier, DeltaOp, DeltaReader};
use crate::echo::Echo;
use crate::entry::{Entry, Kind, MODE_MASK};
use crate::error::SyncError;
use crate::fsx;
use crate::index::{Index, Loaded};
use crate::path::{RelPath, TEMP_PREFIX};
use crate::protocol::{
    BatchRequest, BatchResponse, Failure, Handle, Handler, Request, Response, ScanReply,
    PROTOCOL_VERSION,
};
use crate::scan::{self, Excludes, Previous};

/// How one replica is set up.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaConfig {
    /// The directory mirrored. It must exist.
    pub root: PathBuf,
    /// This replica's node name (conflict copies are named after the node whose version they
    /// keep).
    pub node: String,
    /// Where the index and the lock are kept (created when missing).
    pub state_dir: PathBuf,
    /// Identifies the other side (its node name, or its root for a local pair): one index is
    /// kept per pair, like Unison's archives.
    pub peer: String,
    /// Exclude patterns in gitignore syntax.
    pub excludes: Vec<String>,
    /// fsync every installed file before its rename and the file system before the index is
    /// written (on by default; off only for throw-away trees).
    pub fsync: bool,
}

/// A replica on this machine.
pub struct LocalReplica {
    config: ReplicaConfig,
    root: OwnedFd,
    excludes: Excludes,
    index_path: PathBuf,
    _lock: File,
    reads: HashMap<Handle, DeltaReader>,
    writes: HashMap<Handle, PendingWrite>,
    next_handle: Handle,
    /// Directories whose entries this run changed: fsynced before the index is written.
    touched_dirs: BTreeSet<String>,
    /// Written and verified files waiting for the next flush.
    staged: Vec<Staged>,
    /// The index as last read or written (this replica holds the lock: nobody else writes it).
    cached_index: Option<std::sync::Arc<Index>>,
    /// Where the paths this replica changes are recorded for the watcher, if one watches.
    echo: Option<Echo>,
}

struct Staged {
    handle: Handle,
    path: RelPath,
    dir: OwnedFd,
    temp: String,
    file: File,
    replace: Option<Entry>,
    kind: Kind,
}

/// Threads that fsync staged files at once: concurrent fsyncs share journal commits.
const FSYNC_THREADS: usize = 16;

struct PendingWrite {
    path: RelPath,
    dir: OwnedFd,
    temp: String,
    applier: Applier<BufWriter<File>>,
    replace: Option<Entry>,
    target: Entry,
    /// Bytes written when the last early sync began.
    synced_at: u64,
    /// An early sync running in the background.
    early_sync: Option<std::thread::JoinHandle<()>>,
}

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
    fn discard(mut self) {
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

/// Temp files of this process are numbered by this counter.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_name() -> String {
    format!(
        "{TEMP_PREFIX}{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl LocalReplica {
    /// Opens the replica: checks the root, creates the state directory, takes the lock (one
    /// run at a time per replica and pair).
    pub fn open(config: ReplicaConfig) -> Result<Self, SyncError> {
        let root_path = std::fs::canonicalize(&config.root).map_err(|e| SyncError::Root {
            path: config.root.clone(),
            reason: if e.kind() == std::io::ErrorKind::NotFound {
                "does not exist; create it (mkdir -p) or fix the path".to_owned()
            } else {
                e.to_string()
            },
        })?;
        let root = rustix::fs::open(
            &root_path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SyncError::Root {
            path: config.root.clone(),
            reason: format!("cannot open as a directory: {e}"),
        })?;
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|e| SyncError::io(&config.state_dir, e))?;
        let state_dir = std::fs::canonicalize(&config.state_dir)
            .map_err(|e| SyncError::io(&config.state_dir, e))?;
        let id = blake3::hash(
            format!("{}\0{}\0{}", root_path.display(), config.node, config.peer).as_bytes(),
        )
        .to_hex();
        let stem = format!("{}-{}", sanitize(&config.node), &id.as_str()[..16]);
        let index_path = state_dir.join(format!("{stem}.index"));
        let lock_path = state_dir.join(format!("{stem}.lock"));
        let lock = File::create(&lock_path).map_err(|e| SyncError::io(&lock_path, e))?;
        rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive).map_err(|_| {
            SyncError::Root {
                path: config.root.clone(),
                reason: format!(
                    "another mirror run holds {}; wait for it to finish",
                    lock_path.display()
                ),
            }
        })?;
        let mut excludes = Excludes::new(&config.excludes)?;
        if let Ok(inside) = state_dir.strip_prefix(&root_path) {
            if let Some(text) = inside.to_str().filter(|t| !t.is_empty()) {
                excludes = excludes.with_fixed(text.to_owned());
            }
        }
        Ok(LocalReplica {
            config: ReplicaConfig {
                root: root_path,
                ..config
            },
            root,
            excludes,
            index_path,
            _lock: lock,
            reads: HashMap::new(),
            writes: HashMap::new(),
            next_handle: 1,
            touched_dirs: BTreeSet::new(),
            staged: Vec::new(),
            cached_index: None,
            echo: None,
        })
    }

    /// Records every path this replica changes in `echo`, so that a watcher of the same root
    /// can tell the mirror's own writes from other changes.
    pub fn set_echo(&mut self, echo: Echo) {
        self.echo = Some(echo);
    }

    /// A directory handle of the root.
    pub fn root_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// The index: the cached one, or read from the state directory (with why it was
    /// ignored, when it was).
    fn index(&mut self) -> Result<(std::sync::Arc<Index>, Option<String>), SyncError> {
        if let Some(index) = &self.cached_index {
            return Ok((index.clone(), None));
        }
        Ok(match Index::load(&self.index_path)? {
            Loaded::Found(index) => {
                let index = std::sync::Arc::new(index);
                self.cached_index = Some(index.clone());
                (index, None)
            }
            Loaded::Missing => (std::sync::Arc::default(), None),
            Loaded::Damaged(problem) => (std::sync::Arc::default(), Some(problem)),
        })
    }

    /// Drops what an interrupted conversation left open.
    fn reset(&mut self) {
        self.reads.clear();
        for (_, write) in self.writes.drain() {
            write.discard();
        }
        for staged in self.staged.drain(..) {
            let _ = rustix::fs::unlinkat(&staged.dir, staged.temp.as_str(), AtFlags::empty());
        }
    }

    /// The root (canonical).
    pub fn root(&self) -> &Path {
        &self.config.root
    }

    /// Where the index is kept.
    pub fn index_path(&self) -> &Path {
        &self.index_path
    }

    fn shown(&self, path: &RelPath) -> String {
        self.config.root.join(path.as_str()).display().to_string()
    }

    fn io_failure(&self, path: &RelPath, error: std::io::Error) -> BatchResponse {
        let hint = match error.raw_os_error() {
            Some(28) => "; free space on that disk and run again",
            Some(13) | Some(1) => "; check the owner and mode of the file and its directory",
            Some(40) | Some(20) => "; a symlink or file stands where a directory is needed",
            _ => "",
        };
        BatchResponse::Failed(Failure::Io(format!("{}: {error}{hint}", self.shown(path))))
    }

    /// Notes that the directory holding `path` changed.
    fn touched(&mut self, path: &RelPath) {
        let parent = path.parent().map(|p| p.to_string()).unwrap_or_default();
        self.touched_dirs.insert(parent);
    }

    fn handle_id(&mut self) -> Handle {
        let id = self.next_handle;
        self.next_handle += 1;
        id
    }

    fn scan(&mut self, scope: Option<&[RelPath]>) -> Result<BatchResponse, SyncError> {
        let (index, index_problem) = self.index()?;
        // A path excluded now is neither deleted nor copied: it leaves the index.
        let base: Vec<(RelPath, Entry)> = index
            .entries
            .iter()
            .filter(|(path, entry)| !self.excludes.is_excluded(path.as_str(), entry.is_dir()))
            .cloned()
            .collect();
        let index_files = base.iter().filter(|(_, e)| !e.is_dir()).count() as u64;
        let previous = Previous {
            entries: &base,
            trust_before_ns: index.written_at_ns.saturating_sub(1_000_000_000),
            refresh_before_ns: fsx::now_ns().saturating_sub(1_000_000_000),
        };
        let scanned = match scope {
            None => scan::scan(self.root.as_fd(), &self.excludes, &previous),
            Some(scope) => scan::scan_scope(self.root.as_fd(), scope, &self.excludes, &previous),
        };
        let mut current = scanned.entries;
        current.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let base: Vec<(RelPath, Entry)> = match scope {
            None => base,
            Some(scope) => in_scope(&base, scope),
        };
        Ok(BatchResponse::Scanned(ScanReply {
            current,
            base,
            index_problem,
            problems: scanned.problems,
            hashed_bytes: scanned.hashed_bytes,
            index_files,
            refresh: scanned.refresh,
        }))
    }

    /// Opens the regular file `path` and checks it is still `expect`.
    fn open_expected(&self, path: &RelPath, expect: &Entry) -> Result<File, BatchResponse> {
        let (dir, name) =
            fsx::open_parent(self.root.as_fd(), path).map_err(|e| self.io_failure(path, e))?;
        let file = match fsx::open_file(dir.as_fd(), name) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BatchResponse::Failed(Failure::Changed))
            }
            Err(e) => return Err(self.io_failure(path, e)),
        };
        let stat = rustix::fs::fstat(&file).map_err(|e| self.io_failure(path, e.into()))?;
        let now = fsx::entry_from(
            &stat,
            Kind::File {
                size: stat.st_size as u64,
                hash: expect.hash().unwrap_or(crate::entry::Hash([0; 32])),
            },
        );
        if !expect.still_matches(&now) {
            return Err(BatchResponse::Failed(Failure::Changed));
        }
        Ok(file)
    }

    /// Checks that `name` in `dir` is still `expect` (`None`: absent).
    fn check_current(
        &self,
        dir: &OwnedFd,
        name: &str,
        path: &RelPath,
        expect: Option<&Entry>,
    ) -> Result<(), BatchResponse> {
        let now = fsx::lstat(dir.as_fd(), name).map_err(|e| self.io_failure(path, e))?;
        let ok = match (now, expect) {
            (None, None) => true,
            (Some(stat), Some(expect)) => {
                let kind = match fsx::file_type(&stat) {
                    rustix::fs::FileType::Directory => Kind::Dir,
                    rustix::fs::FileType::Symlink => Kind::Symlink {
                        target: fsx::read_link(dir.as_fd(), name)
                            .map_err(|e| self.io_failure(path, e))?,
                    },
                    rustix::fs::FileType::RegularFile => Kind::File {
                        size: stat.st_size as u64,
                        hash: expect.hash().unwrap_or(crate::entry::Hash([0; 32])),
                    },
                    _ => return Err(BatchResponse::Failed(Failure::Changed)),
                };
                expect.still_matches(&fsx::entry_from(&stat, kind))
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(BatchResponse::Failed(Failure::Changed))
        }
    }

    fn write_begin(
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

    fn write_ops(&mut self, handle: Handle, ops: &[crate::delta::DeltaOp]) -> BatchResponse {
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
    fn write_commit(&mut self, handle: Handle) -> BatchResponse {
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

    fn flush(&mut self) -> BatchResponse {
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
        match renamed {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => return Err(Failure::Changed),
            Err(e) => return Err(failure(self, e.into())),
        }
        self.touched(&item.path);
        let stat = rustix::fs::fstat(&item.file).map_err(|e| failure(self, e.into()))?;
        Ok(fsx::entry_from(&stat, item.kind.clone()))
    }

    fn delete(&mut self, path: &RelPath, expect: &Entry) -> BatchResponse {
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
        match rustix::fs::unlinkat(&dir, name, flags) {
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
        &self,
        dir: &OwnedFd,
        name: &str,
        path: &RelPath,
        replace: Option<&Entry>,
    ) -> Result<(), BatchResponse> {
        self.check_current(dir, name, path, replace)?;
        if replace.is_some() {
            rustix::fs::unlinkat(dir, name, AtFlags::empty())
                .map_err(|e| self.io_failure(path, e.into()))?;
        }
        Ok(())
    }

    fn mkdir(&mut self, path: &RelPath, mode: u32, replace: Option<&Entry>) -> BatchResponse {
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
        .and_then(|fd| {
            rustix::fs::fchmod(&fd, mode)?;
            rustix::fs::fstat(&fd)
        });
        match made {
            Ok(stat) => BatchResponse::Installed(fsx::entry_from(&stat, Kind::Dir)),
            Err(e) => self.io_failure(path, e.into()),
        }
    }

    fn symlink(&mut self, path: &RelPath, target: &str, replace: Option<&Entry>) -> BatchResponse {
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
        let temp = temp_name();
        if let Err(e) = rustix::fs::symlinkat(target, &dir, temp.as_str()) {
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

    fn chmod(&mut self, path: &RelPath, expect: &Entry, mode: u32, mtime_ns: i64) -> BatchResponse {
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
                    .and_then(|()| rustix::fs::fstat(&file))
            }
            Kind::Dir => fsx::open_dir(self.root.as_fd(), Some(path.as_str()))
                .map_err(|e| rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO))
                .and_then(|fd| {
                    rustix::fs::fchmod(&fd, mode)?;
                    rustix::fs::fstat(&fd)
                }),
            Kind::Symlink { .. } => return BatchResponse::Installed(expect.clone()),
        };
        match result {
            Ok(stat) => BatchResponse::Installed(fsx::entry_from(&stat, expect.kind.clone())),
            Err(e) => self.io_failure(path, e.into()),
        }
    }

    fn rename(&mut self, from: &RelPath, to: &RelPath, expect: &Entry) -> BatchResponse {
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

    fn commit(&mut self, entries: Vec<(RelPath, Entry)>) -> Result<BatchResponse, SyncError> {
        self.sync_touched()?;
        self.store(crate::index::sorted_entries(entries))
    }

    fn commit_paths(
        &mut self,
        scope: &[RelPath],
        entries: Vec<(RelPath, Entry)>,
    ) -> Result<BatchResponse, SyncError> {
        self.sync_touched()?;
        let (index, _) = self.index()?;
        // Made minimal (sorted, none beneath another): an entry is replaced when it lies within
        // the last part at or before it.
        let scope = crate::path::minimal_scope(scope.iter().cloned());
        let outside = |path: &RelPath| {
            let at = scope.partition_point(|part| part <= path);
            !(at > 0 && path.is_within(&scope[at - 1]))
        };
        let mut all: Vec<(RelPath, Entry)> = index
            .entries
            .iter()
            .filter(|(path, _)| outside(path))
            .cloned()
            .collect();
        all.extend(entries);
        self.store(crate::index::sorted_entries(all))
    }

    /// Writes the index of `entries` (sorted by path, each once).
    fn store(&mut self, entries: Vec<(RelPath, Entry)>) -> Result<BatchResponse, SyncError> {
        let index = Index {
            entries,
            written_at_ns: fsx::now_ns(),
        };
        self.cached_index = None;
        index.store(&self.index_path)?;
        self.cached_index = Some(std::sync::Arc::new(index));
        Ok(BatchResponse::Done)
    }

    /// Every rename of this run is on disk before the index says it happened (the files
    /// themselves were fsynced before their rename).
    fn sync_touched(&mut self) -> Result<(), SyncError> {
        if self.config.fsync {
            // Every rename of this run is on disk before the index says it happened (the
            // files themselves were fsynced before their rename).
            let dirs: Vec<String> = std::mem::take(&mut self.touched_dirs).into_iter().collect();
            let chunk = dirs.len().div_ceil(FSYNC_THREADS).max(1);
            let root = self.root.as_fd();
            let failures: Vec<(String, std::io::Error)> = std::thread::scope(|scope| {
                let workers: Vec<_> = dirs
                    .chunks(chunk)
                    .map(|part| {
                        scope.spawn(move || {
                            let mut failed = Vec::new();
                            for dir in part {
                                let rel = (!dir.is_empty()).then_some(dir.as_str());
                                match fsx::open_dir(root, rel) {
                                    Ok(fd) => {
                                        if let Err(e) = rustix::fs::fsync(&fd) {
                                            failed.push((dir.clone(), e.into()));
                                        }
                                    }
                                    // Deleted later in the run: its parent is in the set too.
                                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                                    Err(e) => failed.push((dir.clone(), e)),
                                }
                            }
                            failed
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|w| {
                        w.join().unwrap_or_else(|_| {
                            vec![(
                                String::new(),
                                std::io::Error::other("fsync thread panicked"),
                            )]
                        })
                    })
                    .collect()
            });
            if let Some((dir, e)) = failures.into_iter().next() {
                return Err(SyncError::io(self.config.root.join(dir), e));
            }
        } else {
            self.touched_dirs.clear();
        }
        Ok(())
    }

    fn read_whole(&self, path: &RelPath, expect: &Entry) -> BatchResponse {
        use std::io::Read;
        let file = match self.open_expected(path, expect) {
            Ok(file) => file,
            Err(response) => return response,
        };
        let mut data = Vec::with_capacity(expect.size() as usize);
        match file.take(expect.size() + 1).read_to_end(&mut data) {
            Ok(_) if data.len() as u64 == expect.size() => BatchResponse::Data(data),
            Ok(_) => BatchResponse::Failed(Failure::Changed),
            Err(e) => self.io_failure(path, e),
        }
    }

    fn write_whole(
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

    /// Answers one request (not a batch), recording what it changes for the watcher.
    fn handle_one(&mut self, request: BatchRequest) -> Result<BatchResponse, SyncError> {
        let Some(echo) = self.echo.clone() else {
            return self.dispatch(request);
        };
        let touched: Vec<(Option<Handle>, RelPath)> = match &request {
            BatchRequest::Delete { path, .. }
            | BatchRequest::Mkdir { path, .. }
            | BatchRequest::Symlink { path, .. }
            | BatchRequest::Chmod { path, .. } => vec![(None, path.clone())],
            BatchRequest::Rename { from, to, .. } => vec![(None, from.clone()), (None, to.clone())],
            BatchRequest::Flush => self
                .staged
                .iter()
                .map(|s| (Some(s.handle), s.path.clone()))
                .collect(),
            _ => return self.dispatch(request),
        };
        for (_, path) in &touched {
            echo.begin(path);
        }
        let response = self.dispatch(request);
        match &response {
            Ok(BatchResponse::Done) => echo.left(&touched[0].1, None),
            Ok(BatchResponse::Installed(entry)) => {
                if touched.len() == 2 {
                    echo.left(&touched[0].1, None);
                }
                if let Some((_, path)) = touched.last() {
                    echo.left(path, Some(entry));
                }
            }
            Ok(BatchResponse::Flushed(results)) => {
                for (handle, result) in results {
                    if let Some((_, path)) = touched.iter().find(|(h, _)| *h == Some(*handle)) {
                        match result {
                            Ok(entry) => echo.left(path, Some(entry)),
                            Err(_) => echo.forget(path),
                        }
                    }
                }
            }
            _ => {
                for (_, path) in &touched {
                    echo.forget(path);
                }
            }
        }
        response
    }
}

impl Handler for LocalReplica {
    fn handle(&mut self, request: Request) -> Result<Response, SyncError> {
        match BatchRequest::try_from(request) {
            Ok(one) => self.handle_one(one).map(Response::from),
            Err(requests) => {
                let mut responses = Vec::with_capacity(requests.len());
                for request in requests {
                    responses.push(self.handle_one(request)?);
                }
                Ok(Response::Batch(responses))
            }
        }
    }
}

impl LocalReplica {
    fn dispatch(&mut self, request: BatchRequest) -> Result<BatchResponse, SyncError> {
        Ok(match request {
            BatchRequest::Hello { version } => {
                if version != PROTOCOL_VERSION {
                    return Err(SyncError::Protocol(format!(
                        "the other side speaks version {version}, this one {PROTOCOL_VERSION}; \
                         run the same failoverd version on both servers"
                    )));
                }
                self.reset();
                BatchResponse::Hello {
                    node: self.config.node.clone(),
                    root: self.config.root.display().to_string(),
                }
            }
            BatchRequest::Scan => self.scan(None)?,
            BatchRequest::ScanPaths { scope } => self.scan(Some(&scope))?,
            BatchRequest::Signature { path, expect } => match self.open_expected(&path, &expect) {
                Ok(file) => match crate::delta::signature(&file, expect.size()) {
                    Ok(signature) => BatchResponse::Signature(signature),
                    Err(e) => self.io_failure(&path, e),
                },
                Err(response) => response,
            },
            BatchRequest::ReadBegin {
                path,
                expect,
                signature,
                matching,
            } => match self.open_expected(&path, &expect) {
                Ok(file) => match DeltaReader::new(file, expect.size(), signature, matching) {
                    Ok(reader) => {
                        let handle = self.handle_id();
                        self.reads.insert(handle, reader);
                        BatchResponse::Opened(handle)
                    }
                    Err(e) => BatchResponse::Failed(Failure::Invalid(format!("{path}: {e}"))),
                },
                Err(response) => response,
            },
            BatchRequest::ReadNext { handle } => match self.reads.get_mut(&handle) {
                None => BatchResponse::Failed(Failure::Invalid(format!("no open read {handle}"))),
                Some(reader) => match reader.next_ops() {
                    Ok(ops) => {
                        if ops.is_empty() {
                            self.reads.remove(&handle);
                        }
                        BatchResponse::Ops(ops)
                    }
                    Err(e) => {
                        self.reads.remove(&handle);
                        BatchResponse::Failed(Failure::Io(e.to_string()))
                    }
                },
            },
            BatchRequest::WriteBegin {
                path,
                replace,
                basis,
                target,
            } => self.write_begin(path, replace, basis, target),
            BatchRequest::WriteOps { handle, ops } => self.write_ops(handle, &ops),
            BatchRequest::WriteCommit { handle } => self.write_commit(handle),
            BatchRequest::Abort { handle } => {
                self.reads.remove(&handle);
                if let Some(write) = self.writes.remove(&handle) {
                    write.discard();
                }
                BatchResponse::Done
            }
            BatchRequest::Delete { path, expect } => self.delete(&path, &expect),
            BatchRequest::Mkdir {
                path,
                mode,
                replace,
            } => self.mkdir(&path, mode, replace.as_ref()),
            BatchRequest::Symlink {
                path,
                target,
                replace,
            } => self.symlink(&path, &target, replace.as_ref()),
            BatchRequest::Chmod {
                path,
                expect,
                mode,
                mtime_ns,
            } => self.chmod(&path, &expect, mode, mtime_ns),
            BatchRequest::Rename { from, to, expect } => self.rename(&from, &to, &expect),
            BatchRequest::Flush => self.flush(),
            BatchRequest::Commit { entries } => self.commit(entries)?,
            BatchRequest::CommitPaths { scope, entries } => self.commit_paths(&scope, entries)?,
            BatchRequest::ReadWhole { path, expect } => self.read_whole(&path, &expect),
            BatchRequest::WriteWhole {
                path,
                replace,
                target,
                data,
            } => self.write_whole(path, replace, target, data),
            BatchRequest::Batch(none) => match none {},
        })
    }
}

impl Drop for LocalReplica {
    fn drop(&mut self) {
        for (_, write) in self.writes.drain() {
            write.discard();
        }
        for staged in self.staged.drain(..) {
            let _ = rustix::fs::unlinkat(&staged.dir, staged.temp.as_str(), AtFlags::empty());
        }
    }
}

/// The entries of `base` (sorted by path) at and beneath the paths of `scope`, sorted.
fn in_scope(base: &[(RelPath, Entry)], scope: &[RelPath]) -> Vec<(RelPath, Entry)> {
    let mut found: Vec<(RelPath, Entry)> = Vec::new();
    for part in scope {
        found.extend(crate::index::within(base, part).cloned());
    }
    crate::index::sorted_entries(found)
}

/// A node name usable in a file name.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
