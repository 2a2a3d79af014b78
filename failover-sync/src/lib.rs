//! failover-sync: the two-way file mirror of failover — what Unison run from cron and two
//! lsyncd + rsync instances pointed at each other did, without lost edits.
//!
//! A run scans both replicas (hashes reused from the index when size, mtime, inode and ctime
//! are unchanged), reconciles each path against the **index of last-synced state** kept per
//! replica, refuses mass deletions, and carries out the plan: changed files go as rsync
//! deltas (fast_rsync) against the receiver's version into a temp file checked against the
//! sender's BLAKE3 before fsync and rename; a path changed on both sides keeps the newer
//! version under its name and the other beside it as `NAME.conflict-<node>-<UTC time>.EXT`.
//! A file deleted at one path and created at another with the same hash is renamed on the
//! other side, not sent again. What a replica overwrites or deletes is first kept in its [`Versions`] area in the state
//! directory (pruned by age and size, restored by `failoverd mirror versions`).
//!
//! It deliberately does not watch for changes or talk to the network: the engine
//! ([`sync_pair`]) speaks to each replica through a [`ReplicaLink`] carrying serializable
//! [`Request`]s, so a live watcher and a TLS peer link plug in around it. Owners and groups
//! are kept when both sides run as root ([`Owners`]: by name, numbers as the fallback, by
//! default); `user.*` extended attributes and POSIX ACLs when asked ([`XattrKinds`], off by
//! default); hard links and special files are not mirrored.
//!
//! Entry points: [`sync_dirs`] for two local directories (`failoverd mirror --once`),
//! [`LocalMirror`] for core's [`failover_core::FileMirror`] trait, and
//! [`sync_pair`] + [`LocalReplica`] for composing other links.
//!
//! # Example
//!
//! ```
//! use failover_core::SyncOptions;
//! use failover_sync::{sync_dirs, LocalPairConfig, Silent};
//!
//! # fn main() -> Result<(), failover_sync::SyncError> {
//! let a = tempfile::tempdir().unwrap();
//! let b = tempfile::tempdir().unwrap();
//! let state = tempfile::tempdir().unwrap();
//! std::fs::write(a.path().join("index.html"), "hello").unwrap();
//!
//! let mut config = LocalPairConfig::new(a.path(), b.path());
//! config.state_dir = state.path().to_path_buf();
//! let outcome = sync_dirs(&config, &SyncOptions::default(), &Silent)?;
//! assert_eq!(outcome.report.copied, 1);
//! assert_eq!(std::fs::read(b.path().join("index.html")).unwrap(), b"hello");
//!
//! // Nothing changed since: the second run does nothing.
//! let again = sync_dirs(&config, &SyncOptions::default(), &Silent)?;
//! assert_eq!((again.report.copied, again.report.deleted), (0, 0));
//! # Ok(())
//! # }
//! ```

mod delta;
mod echo;
mod engine;
mod entry;
mod error;
mod fsx;
mod index;
pub mod live;
mod moves;
mod owners;
mod path;
mod progress;
mod protocol;
mod reconcile;
mod refine;
mod replica;
mod scan;
mod versions;
mod xattrs;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use failover_core::{FileMirror, MirrorError, MirrorStatus, SyncOptions, SyncReport};

pub use delta::{block_size, signature, Applier, DeltaOp, DeltaReader, Matching, Next};
pub use echo::{Echo, Verdict};
pub use engine::{human_bytes, sync_pair, sync_scope, EngineConfig, RunSummary, Scope};
pub use entry::{
    conflict_name, is_conflict_copy, owners_agree, Entry, Hash, Kind, Owner, StatKey, MODE_MASK,
};
pub use error::SyncError;
pub use index::{Index, Loaded};
pub use owners::{can_keep_owners, AccountTable, Accounts, Owners, SystemAccounts};
pub use path::{minimal_scope, RelPath, TEMP_PREFIX};
pub use progress::{Progress, Silent, TerminalBar};
pub use protocol::{
    BatchRequest, BatchResponse, Failure, Handle, Handler, InProcess, NoBatch, ReplicaLink,
    Request, RequestOf, Response, ResponseOf, ScanReply, PROTOCOL_VERSION,
};
pub use reconcile::{reconcile, Item, PathAction, Plan, Side, SideState};
pub use refine::FineRange;
pub use replica::{LocalReplica, ReplicaConfig};
pub use scan::Excludes;
pub use versions::{
    Pruned, Version, VersionPolicy, Versions, Why, DEFAULT_KEEP_VERSIONS_FOR,
    DEFAULT_VERSIONS_MAX_BYTES,
};
pub use xattrs::{xattrs_agree, XattrKinds, Xattrs, ACL_ACCESS, ACL_DEFAULT};

/// A two-way mirror of two local directories.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalPairConfig {
    /// The first replica.
    pub dir_a: PathBuf,
    /// The second replica.
    pub dir_b: PathBuf,
    /// Node name of the first (names its conflict copies; the first in alphabetical order
    /// wins a conflict between equal mtimes).
    pub node_a: String,
    /// Node name of the second.
    pub node_b: String,
    /// Where the indexes and locks are kept.
    pub state_dir: PathBuf,
    /// Exclude patterns in gitignore syntax.
    pub excludes: Vec<String>,
    /// Share of the last sync's files one run may delete without `force` (default 0.5).
    pub max_delete_share: f64,
    /// fsync installed files and the file system before recording the index (default on).
    pub fsync: bool,
    /// How owners and groups are kept when both run as root (default: by name, numbers as
    /// the fallback).
    pub owners: Owners,
    /// What each side keeps of the files the run replaces or deletes there, in
    /// `state_dir/versions/<node>/` (default: 30 days, at most 1 GiB; `None`: nothing).
    pub versions: Option<VersionPolicy>,
    /// Which extended attributes are mirrored (default none, as rsync without `-X`/`-A`).
    pub xattrs: XattrKinds,
}

impl LocalPairConfig {
    /// A mirror of `dir_a` (node `a`) and `dir_b` (node `b`) with the defaults.
    pub fn new(dir_a: impl Into<PathBuf>, dir_b: impl Into<PathBuf>) -> Self {
        LocalPairConfig {
            dir_a: dir_a.into(),
            dir_b: dir_b.into(),
            node_a: "a".to_owned(),
            node_b: "b".to_owned(),
            state_dir: default_state_dir(),
            excludes: Vec::new(),
            max_delete_share: EngineConfig::default().max_delete_share,
            fsync: true,
            owners: Owners::default(),
            versions: Some(VersionPolicy::default()),
            xattrs: XattrKinds::OFF,
        }
    }
}

/// `$XDG_STATE_HOME/failover-sync`, else `~/.local/state/failover-sync`, else
/// `/var/lib/failover-sync`.
pub fn default_state_dir() -> PathBuf {
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|s| !s.is_empty()) {
        return PathBuf::from(state).join("failover-sync");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|s| !s.is_empty()) {
        return PathBuf::from(home).join(".local/state/failover-sync");
    }
    PathBuf::from("/var/lib/failover-sync")
}

fn canonical(path: &Path) -> Result<PathBuf, SyncError> {
    std::fs::canonicalize(path).map_err(|e| SyncError::Root {
        path: path.to_path_buf(),
        reason: if e.kind() == std::io::ErrorKind::NotFound {
            "does not exist; create it (mkdir -p) or fix the path".to_owned()
        } else {
            e.to_string()
        },
    })
}

/// One two-way run between two local directories: what `failoverd mirror --once` does.
pub fn sync_dirs(
    config: &LocalPairConfig,
    options: &SyncOptions,
    progress: &dyn Progress,
) -> Result<RunSummary, SyncError> {
    let (a, b) = (canonical(&config.dir_a)?, canonical(&config.dir_b)?);
    if a.starts_with(&b) || b.starts_with(&a) {
        return Err(SyncError::Root {
            path: config.dir_b.clone(),
            reason: format!(
                "overlaps {}; the two replicas must be separate trees",
                config.dir_a.display()
            ),
        });
    }
    let replica = |root: &Path, node: &str, peer: &Path| ReplicaConfig {
        root: root.to_path_buf(),
        node: node.to_owned(),
        state_dir: config.state_dir.clone(),
        peer: peer.display().to_string(),
        excludes: config.excludes.clone(),
        fsync: config.fsync,
    };
    let open = |root: &Path, node: &str, peer: &Path| -> Result<_, SyncError> {
        let mut replica = LocalReplica::open(replica(root, node, peer))?;
        replica.set_versions(config.versions);
        Ok(InProcess::new(replica))
    };
    let mut side_a = open(&a, &config.node_a, &b)?;
    let mut side_b = open(&b, &config.node_b, &a)?;
    let engine = EngineConfig {
        max_delete_share: config.max_delete_share,
        owners: config.owners,
        xattrs: config.xattrs,
    };
    sync_pair(&mut side_a, &mut side_b, &engine, options, progress)
}

/// Core's [`FileMirror`] over two local directories.
pub struct LocalMirror {
    config: LocalPairConfig,
    status: Mutex<MirrorStatus>,
}

impl LocalMirror {
    /// A mirror of the two directories of `config`.
    pub fn new(config: LocalPairConfig) -> Self {
        LocalMirror {
            config,
            status: Mutex::new(MirrorStatus {
                peer_connected: true,
                ..MirrorStatus::default()
            }),
        }
    }
}

#[async_trait]
impl FileMirror for LocalMirror {
    async fn sync_once(&self, options: &SyncOptions) -> Result<SyncReport, MirrorError> {
        let config = self.config.clone();
        let run_options = options.clone();
        let outcome =
            tokio::task::spawn_blocking(move || sync_dirs(&config, &run_options, &Silent))
                .await
                .map_err(|e| MirrorError::Peer(format!("the mirror task failed: {e}")))??;
        if let Ok(mut status) = self.status.lock() {
            status.conflicts += outcome.report.conflicts.len() as u64;
            status.runs += 1;
            status.bytes_transferred += outcome.report.bytes_transferred;
            status.backlog_files = outcome.report.failed.len() as u64;
            if outcome.report.failed.is_empty() && !options.dry_run {
                status.last_sync = Some(SystemTime::now());
            }
        }
        Ok(outcome.report)
    }

    fn status(&self) -> MirrorStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
