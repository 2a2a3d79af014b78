//! `LocalReplica`: one replica on this machine, answering the engine's requests. It owns the
//! replica's root (through a directory handle), its lock, its index and its open transfers.
//!
//! `dispatch.rs` answers each request (and tells the watcher's [`Echo`] what changed);
//! `read.rs` scans and reads; `write.rs` writes files (temp file, verify, stage, flush);
//! `tree.rs` deletes, makes directories and symlinks, renames and changes modes and owners;
//! `commit.rs` records the index. Owners are shown and applied as the conversation's hello
//! asked ([`crate::owners`]).

mod attrs;
mod commit;
mod dispatch;
mod read;
mod tree;
mod write;

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};

use crate::delta::{Applier, DeltaReader};
use crate::echo::Echo;
use crate::entry::{Entry, Kind};
use crate::error::SyncError;
use crate::fsx;
use crate::index::{Index, Loaded};
use crate::owners::{Accounts, OwnerMap, SystemAccounts};
use crate::path::{RelPath, RESTORE_TEMP_PREFIX, TEMP_PREFIX};
use crate::protocol::{BatchResponse, Failure, Handle};
use crate::scan::Excludes;
use crate::versions::{VersionPolicy, Versions, Why};
use crate::xattrs::XattrKinds;

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
    /// How this conversation keeps owners, and the account look-ups.
    owners: OwnerMap,
    /// Where what this replica replaces or deletes is kept (`None`: nowhere).
    versions: Option<Versions>,
    /// Versions kept since the last prune.
    versions_kept: u64,
    /// Which extended attributes this conversation mirrors.
    xattrs: XattrKinds,
    /// The last probe of the file system: kinds asked, kinds held, why not all.
    xattr_probe: Option<(XattrKinds, XattrKinds, Option<String>)>,
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

/// Temp files of this process are numbered by this counter.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) fn temp_name() -> String {
    numbered(TEMP_PREFIX)
}

/// The temp file of a `versions restore` (see [`RESTORE_TEMP_PREFIX`]).
pub(crate) fn restore_temp_name() -> String {
    numbered(RESTORE_TEMP_PREFIX)
}

fn numbered(prefix: &str) -> String {
    format!(
        "{prefix}{}-{}",
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
            owners: OwnerMap::new(std::sync::Arc::new(SystemAccounts)),
            versions: None,
            versions_kept: 0,
            xattrs: XattrKinds::OFF,
            xattr_probe: None,
        })
    }

    /// Records every path this replica changes in `echo`, so that a watcher of the same root
    /// can tell the mirror's own writes from other changes.
    pub fn set_echo(&mut self, echo: Echo) {
        self.echo = Some(echo);
    }

    /// Keeps what this replica replaces or deletes in its state directory's versions area
    /// ([`Versions`]), pruned by `policy`; `None` keeps nothing (the default).
    pub fn set_versions(&mut self, policy: Option<VersionPolicy>) {
        self.versions =
            policy.map(|policy| Versions::new(&self.state_dir(), &self.config.node, policy));
    }

    /// The state directory (canonical when it could be made so).
    fn state_dir(&self) -> PathBuf {
        self.index_path
            .parent()
            .map_or_else(|| self.config.state_dir.clone(), Path::to_path_buf)
    }

    /// Keeps the regular file `name` in `dir` (`path`, still `entry`) as a version before it is
    /// replaced or deleted; a version that cannot be kept stops the change.
    fn keep_version(
        &mut self,
        dir: &OwnedFd,
        name: &str,
        path: &RelPath,
        entry: Option<&Entry>,
        why: Why,
    ) -> Result<Option<PathBuf>, BatchResponse> {
        let (Some(versions), Some(entry)) = (&self.versions, entry) else {
            return Ok(None);
        };
        if !matches!(entry.kind, Kind::File { .. }) {
            return Ok(None);
        }
        match versions.keep(dir.as_fd(), name, path, entry, why) {
            Ok(kept) => {
                self.versions_kept += 1;
                Ok(Some(kept))
            }
            Err(e) => Err(BatchResponse::Failed(Failure::Io(format!(
                "{}: its version could not be kept in {} ({e}); left as it is: free space there \
                 or fix its permissions",
                self.shown(path),
                versions.dir().display()
            )))),
        }
    }

    /// Prunes the versions area if versions were kept since the last prune (or `always`).
    fn prune_versions(&mut self, always: bool) {
        let Some(versions) = &self.versions else {
            return;
        };
        if !always && self.versions_kept == 0 {
            return;
        }
        self.versions_kept = 0;
        if let Err(e) = versions.prune(std::time::SystemTime::now()) {
            tracing::warn!("mirror: pruning the versions failed: {e}");
        }
    }

    /// Maps owner names with `accounts` instead of the system's (tests give two replicas on
    /// one machine different numbers for the same names this way).
    pub fn set_accounts(&mut self, accounts: std::sync::Arc<dyn Accounts>) {
        self.owners.set_accounts(accounts);
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

/// A node name usable in a file name.
pub(crate) fn sanitize(name: &str) -> String {
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
