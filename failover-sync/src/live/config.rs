//! How one node's live mirror is set up: [`LiveConfig`], and who drives.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use failover_core::peer::{Fingerprint, Identity, PeerConfig};

use super::link::SERVICE;

/// Most a change waits for the changes after it before a run starts, unless configured otherwise.
pub const DEFAULT_COALESCE: Duration = Duration::from_millis(100);
/// Time between two full runs (a rescan of both trees), unless configured otherwise.
pub const DEFAULT_RESCAN_INTERVAL: Duration = Duration::from_secs(3600);
/// Share of the files of the last sync one run may delete, unless configured otherwise.
pub const DEFAULT_MAX_DELETE_SHARE: f64 = 0.5;

/// Settings of the live mirror beyond [`LiveConfig`]'s (given to
/// [`LiveMirror::start_with`](super::LiveMirror::start_with)); the defaults are what
/// [`LiveMirror::start`](super::LiveMirror::start) uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveOptions {
    /// How owners and groups are kept (default: by name, numbers as the fallback). The
    /// driving node's setting counts for both (it tells the other in the hello).
    pub owners: crate::owners::Owners,
    /// Most this node sends on the link, in bytes per second (none: as fast as it goes).
    pub bwlimit: Option<u64>,
    /// What this node keeps of the files the mirror replaces or deletes on it, in
    /// `state_dir/versions/<node>/` (default: 30 days, at most 1 GiB; `None`: nothing).
    pub versions: Option<crate::versions::VersionPolicy>,
    /// Which extended attributes are mirrored (default none). The driving node's setting
    /// counts for both.
    pub xattrs: crate::xattrs::XattrKinds,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            owners: crate::owners::Owners::default(),
            bwlimit: None,
            versions: Some(crate::versions::VersionPolicy::default()),
            xattrs: crate::xattrs::XattrKinds::OFF,
        }
    }
}

/// How one node's live mirror is set up.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// The directory mirrored (must exist).
    pub root: PathBuf,
    /// This node's name (names its conflict copies).
    pub node: String,
    /// The other node's name: it must be what the other node says in the link's hello.
    pub peer_node: String,
    /// Where this node listens for the other (used when the other drives).
    pub listen: SocketAddr,
    /// Where the other node listens (used when this node drives).
    pub peer: SocketAddr,
    /// This node's certificate and key.
    pub identity: Arc<Identity>,
    /// The other node's certificate fingerprint.
    pub peer_fingerprint: Fingerprint,
    /// Where the index and lock are kept.
    pub state_dir: PathBuf,
    /// Exclude patterns (gitignore syntax).
    pub excludes: Vec<String>,
    /// Most a change waits for the changes after it before a run starts.
    pub coalesce: Duration,
    /// Time between two full runs.
    pub rescan_interval: Duration,
    /// Share of the files of the last sync one run may delete (0.0 – 1.0).
    pub max_delete_share: f64,
    /// fsync before rename and before the index is written.
    pub fsync: bool,
}

impl LiveConfig {
    /// Whether this node drives the runs (its name sorts first).
    pub fn drives(&self) -> bool {
        self.node < self.peer_node
    }

    pub(super) fn peer_config(&self) -> PeerConfig {
        PeerConfig::new(
            self.identity.clone(),
            vec![self.peer_fingerprint],
            SERVICE,
            &self.node,
        )
    }
}
