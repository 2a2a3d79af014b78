//! The crate's error type: every message names the path and, where there is one, the fix.

use std::path::PathBuf;

use failover_core::MirrorError;

/// Why a mirror run, or one step of it, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// Reading or writing a file of a replica (or its state directory) failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved, as the operator knows it (absolute where known).
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A path received from the other side (or found in an index) is unsafe or malformed.
    #[error("unsafe path {path:?}: {reason}")]
    UnsafePath {
        /// The path as received.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A replica's root is missing or is not a directory.
    #[error("{path}: {reason}")]
    Root {
        /// The root directory.
        path: PathBuf,
        /// What is wrong, and the fix.
        reason: String,
    },
    /// An exclude pattern is not valid gitignore syntax.
    #[error("exclude pattern {pattern:?}: {reason}")]
    Exclude {
        /// The pattern.
        pattern: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A safety rule refused the run; nothing was changed.
    #[error("refused: {0}")]
    Refused(String),
    /// The file changed between the scan and the transfer; it is left as it is and retried on
    /// the next run.
    #[error("{path}: changed during the sync; left as it is, the next run picks it up")]
    Changed {
        /// The path, relative to the root.
        path: String,
    },
    /// The received content did not have the sender's BLAKE3 hash; the temp file was removed.
    #[error("{path}: received content does not match the sender's hash; nothing was replaced")]
    HashMismatch {
        /// The path, relative to the root.
        path: String,
    },
    /// The other side broke the protocol (a message out of order, an unknown handle, a bad
    /// delta); the connection should be dropped.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The link to the other side failed.
    #[error("peer: {0}")]
    Peer(String),
}

impl SyncError {
    /// An I/O error about `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SyncError::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<SyncError> for MirrorError {
    fn from(error: SyncError) -> Self {
        match error {
            SyncError::Io { path, source } => MirrorError::Io { path, source },
            SyncError::Refused(message) => MirrorError::Refused(message),
            SyncError::Peer(message) => MirrorError::Peer(message),
            SyncError::Root { path, reason } => MirrorError::Io {
                path,
                source: std::io::Error::other(reason),
            },
            SyncError::UnsafePath { .. } | SyncError::Protocol(_) => {
                MirrorError::Peer(error.to_string())
            }
            other => MirrorError::Io {
                path: PathBuf::new(),
                source: std::io::Error::other(other.to_string()),
            },
        }
    }
}
