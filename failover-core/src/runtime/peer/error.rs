//! Why a peer link failed or was refused.

use std::path::PathBuf;
use std::time::Duration;

/// Why a peer link failed or was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// Reading or writing keys failed.
    #[error("{path}: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What went wrong and the fix.
        reason: String,
    },
    /// A fingerprint in the config cannot be read.
    #[error("fingerprint {0:?} is not sha256:<64 hex digits> (print yours with failoverd keygen --show)")]
    Fingerprint(String),
    /// The socket failed.
    #[error("peer {peer}: {source}")]
    Io {
        /// The other end.
        peer: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The TLS handshake failed: the usual cause is a certificate that is not pinned.
    #[error("peer {peer} refused: {reason}")]
    Refused {
        /// The other end.
        peer: String,
        /// Why (the TLS alert or our verifier's words).
        reason: String,
    },
    /// The peer speaks another protocol, version or service.
    #[error("peer {peer}: {reason}")]
    Protocol {
        /// The other end.
        peer: String,
        /// What did not match.
        reason: String,
    },
    /// A frame larger than the limit was announced; the link must be dropped.
    #[error("peer {peer} sent a frame of {size} bytes (limit {limit})")]
    FrameTooLarge {
        /// The other end.
        peer: String,
        /// The announced size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Nothing happened within the time allowed.
    #[error("peer {peer}: {what} timed out after {after:?}")]
    Timeout {
        /// The other end.
        peer: String,
        /// What was waited for.
        what: &'static str,
        /// How long.
        after: Duration,
    },
}
