//! The state of one run while its plan is carried out: the links to both replicas, the new
//! indexes being gathered, the staged writes waiting for a flush, and the summary.

use std::collections::BTreeSet;

use super::summary::RunSummary;
use crate::entry::Entry;
use crate::error::SyncError;
use crate::path::RelPath;
use crate::progress::Progress;
use crate::protocol::{Handle, ReplicaLink, Request, Response};
use crate::reconcile::{Item, Side};

/// A file written on the receiving side: installed now, or staged until the next flush.
pub(super) enum Done {
    Now(Entry),
    Later(Handle),
}

/// The result of one step on one path, or why it failed.
pub(super) type Step = Result<Done, String>;

/// The entries of a path on both sides after a step, and the staged write still to come.
pub(super) type Taken = Result<([Option<Entry>; 2], Option<(Side, Handle)>), String>;

/// A staged write and what to record once it is installed.
pub(super) struct Pending {
    pub(super) handle: Handle,
    pub(super) item: Item,
    pub(super) entries: [Option<Entry>; 2],
}

pub(super) struct Run<'a> {
    pub(super) links: [&'a mut dyn ReplicaLink; 2],
    pub(super) nodes: [String; 2],
    pub(super) dry_run: bool,
    /// The new last-synced state of each side (in no particular order, a path may come
    /// twice: the last counts).
    pub(super) index: [Vec<(RelPath, Entry)>; 2],
    /// Whether a side's new state differs from its last-synced state.
    pub(super) index_changed: [bool; 2],
    /// Directories that could not be made: what is beneath them is not attempted.
    pub(super) failed_dirs: BTreeSet<RelPath>,
    pub(super) summary: RunSummary,
    pub(super) progress: &'a dyn Progress,
    /// Staged writes per side, and their bytes.
    pub(super) pending: [Vec<Pending>; 2],
    pub(super) pending_bytes: [u64; 2],
    /// The plan's moves, by the path they go to.
    pub(super) moves: std::collections::HashMap<RelPath, crate::moves::Move>,
    /// The old paths of the moves done: recorded as deleted, not deleted again.
    pub(super) moved: BTreeSet<RelPath>,
}

impl<'a> Run<'a> {
    /// A run over `links` that has done nothing yet; `summary` holds what the hello and the
    /// scans found.
    pub(super) fn new(
        links: [&'a mut dyn ReplicaLink; 2],
        summary: RunSummary,
        dry_run: bool,
        progress: &'a dyn Progress,
    ) -> Self {
        Run {
            links,
            nodes: summary.nodes.clone(),
            dry_run,
            index: [Vec::new(), Vec::new()],
            index_changed: [false, false],
            failed_dirs: BTreeSet::new(),
            summary,
            progress,
            pending: [Vec::new(), Vec::new()],
            pending_bytes: [0, 0],
            moves: std::collections::HashMap::new(),
            moved: BTreeSet::new(),
        }
    }
}

impl Run<'_> {
    pub(super) fn call(&mut self, side: Side, request: Request) -> Result<Response, SyncError> {
        self.links[side.index()].call(request)
    }
}

/// `entries` with `side`'s entry filled in (now, or when its staged write is installed).
pub(super) fn fill(
    mut entries: [Option<Entry>; 2],
    side: Side,
    done: Done,
) -> ([Option<Entry>; 2], Option<(Side, Handle)>) {
    match done {
        Done::Now(entry) => {
            entries[side.index()] = Some(entry);
            (entries, None)
        }
        Done::Later(handle) => (entries, Some((side, handle))),
    }
}
