//! The `FileMirror` trait: keeping a directory tree in step with a peer's copy, both ways.

use std::path::PathBuf;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::Serialize;

/// One path changed on both sides: the loser's version was kept beside the winner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// The path, relative to the mirror's root, that keeps the winning version.
    pub path: PathBuf,
    /// Where the other version was kept, relative to the root.
    pub kept_as: PathBuf,
    /// The node whose version won.
    pub winner: String,
}

/// A path a reconciliation could not bring in step (it is left as it was, its last-synced state
/// untouched, and the next run tries again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedPath {
    /// The path, relative to the mirror's root.
    pub path: PathBuf,
    /// Why, naming the file and the fix (`disk full`, `permission denied`, `changed during the sync`).
    pub reason: String,
}

/// What one reconciliation did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Files, links and directories created or updated on either side.
    pub copied: u64,
    /// Paths deleted on either side.
    pub deleted: u64,
    /// Bytes that crossed between the replicas (after delta compression).
    pub bytes_transferred: u64,
    /// Bytes of the files copied, whole: compared with `bytes_transferred`, what the delta
    /// transfer saved.
    pub file_bytes: u64,
    /// Conflicts found and resolved by keeping both versions.
    pub conflicts: Vec<Conflict>,
    /// Paths left out of step by this run (disk full, permission denied, changed during the
    /// run). The run itself succeeded for every other path.
    pub failed: Vec<FailedPath>,
}

/// The mirror's state as a check and a status page see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MirrorStatus {
    /// Whether the peer is reachable and authenticated.
    pub peer_connected: bool,
    /// Paths known to differ and not yet transferred.
    pub backlog_files: u64,
    /// Bytes of those paths.
    pub backlog_bytes: u64,
    /// When the replicas were last known to be identical.
    pub last_sync: Option<SystemTime>,
    /// Conflicts resolved since start.
    pub conflicts: u64,
    /// Reconciliations this node ran since start (on the live mirror, the driving node counts
    /// them; the served node's stays 0).
    pub runs: u64,
    /// Bytes that crossed between the replicas in those runs, after delta compression.
    pub bytes_transferred: u64,
    /// Why the mirror is not in step when that needs a person (a refused mass deletion, a
    /// path that keeps failing), naming the fix.
    pub problem: Option<String>,
    /// Bytes of the messages this node sent to its peer since it started, before compression.
    pub link_bytes_raw: u64,
    /// The bytes that went on the link for them (compressed where that was smaller).
    pub link_bytes_sent: u64,
}

/// Why a reconciliation did not happen or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// A safety rule refused the run (mass deletion, deleting the root); nothing was changed.
    #[error("refused: {0}")]
    Refused(String),
    /// The peer could not be reached or authenticated.
    #[error("peer: {0}")]
    Peer(String),
    /// Reading or writing the local replica failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Options of one reconciliation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Apply even what a safety rule would refuse (`--force`).
    pub force: bool,
    /// Compute and report, change nothing (`--dry-run`).
    pub dry_run: bool,
}

/// A two-way mirror of one directory tree with a peer.
///
/// # Contract
///
/// - [`sync_once`](FileMirror::sync_once) reconciles both replicas against the last-synced state:
///   a path changed on one side is copied to the other; a path changed on both sides is a
///   [`Conflict`] and both versions are kept; a deletion is propagated only when the other side
///   did not change the path. It never loses a version.
/// - It may be called again after an error: an interrupted run leaves every file either old or
///   new (temp file and rename), never half-written.
/// - [`status`](FileMirror::status) is cheap and never blocks: it is polled by the `mirror` check.
///
/// # Example
///
/// ```
/// use async_trait::async_trait;
/// use failover_core::{FileMirror, MirrorError, MirrorStatus, SyncOptions, SyncReport};
///
/// /// A mirror of a tree that nobody changes: always in step.
/// struct Frozen;
///
/// #[async_trait]
/// impl FileMirror for Frozen {
///     async fn sync_once(&self, _options: &SyncOptions) -> Result<SyncReport, MirrorError> {
///         Ok(SyncReport::default())
///     }
///
///     fn status(&self) -> MirrorStatus {
///         MirrorStatus { peer_connected: true, ..MirrorStatus::default() }
///     }
/// }
/// ```
#[async_trait]
pub trait FileMirror: Send + Sync + 'static {
    /// Reconciles the two replicas once.
    async fn sync_once(&self, options: &SyncOptions) -> Result<SyncReport, MirrorError>;

    /// The current status.
    fn status(&self) -> MirrorStatus;
}
