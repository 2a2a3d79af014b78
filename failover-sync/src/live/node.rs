//! What a node's threads share: the inputs of its loop, and the status the daemon reads.

use std::sync::{mpsc, Arc, Mutex};

use failover_core::{MirrorStatus, SyncReport};

use super::link::Delivery;
use crate::path::RelPath;

/// What the status shows, shared by the threads.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) status: MirrorStatus,
    /// Paths waiting for a run (not yet in the engine's plan).
    pub(super) queued: u64,
    /// Told of every run that had conflicts or failed paths (the daemon notifies them).
    pub(super) reports: Option<ReportSink>,
    /// Bytes this node sent on its links, before and after compression.
    pub(super) link_bytes: Arc<super::link::LinkBytes>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("status", &self.status)
            .field("queued", &self.queued)
            .finish_non_exhaustive()
    }
}

/// Receives the report of every run that had conflicts or failed paths.
pub type ReportSink = Arc<dyn Fn(&failover_core::SyncReport) + Send + Sync>;

pub(super) type SharedStatus = Arc<Mutex<Shared>>;

pub(super) fn update(shared: &SharedStatus, change: impl FnOnce(&mut Shared)) {
    if let Ok(mut shared) = shared.lock() {
        change(&mut shared);
    }
}

/// What the node's loop reacts to.
pub(super) enum Input {
    /// The watcher saw these paths change.
    Local(Vec<RelPath>),
    /// The watcher lost events.
    LocalRescan(String),
    /// From a link.
    Link(Delivery),
    /// The listener accepted the other node (served side).
    Accepted(Box<failover_core::peer::PeerStream>),
    /// `sync_once`: a full run now, its report to this channel.
    RunNow(mpsc::Sender<Result<SyncReport, String>>),
    /// Stop.
    Stop,
}
