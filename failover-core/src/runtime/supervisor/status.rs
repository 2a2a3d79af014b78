//! What a running supervisor shows: the cluster, the writers, the recent events, the observers.

use std::time::SystemTime;

use serde::Serialize;

use crate::arbiter::{ArbiterState, ClusterStatus};
use crate::event::Event;
use crate::quorum::ObserverStatus;
use crate::zone::Publication;

/// How one zone writer is doing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WriterStatus {
    /// The writer's description.
    pub writer: String,
    /// The zone serial after the last successful publish, if the writer reports one.
    pub serial: Option<u32>,
    /// When it last published successfully.
    #[serde(with = "humantime_serde")]
    pub last_success: Option<SystemTime>,
    /// The error of the last attempt, while it keeps failing.
    pub failing: Option<String>,
}

/// Everything the daemon can show about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    /// Nodes, checks and the current answer.
    pub cluster: ClusterStatus,
    /// What the arbiter knows, for the next arbiter to start from
    /// ([`Arbiter::restore`](crate::Arbiter::restore)) after a reload or, saved in the state
    /// directory, a restart. Not part of the status output.
    #[serde(skip)]
    pub state: ArbiterState,
    /// What the writers were last asked to publish.
    pub publication: Option<Publication>,
    /// Each zone writer.
    pub writers: Vec<WriterStatus>,
    /// The most recent events, oldest first (at most [`RECENT_EVENTS`]).
    pub recent_events: Vec<Event>,
    /// The other observers whose verdicts count (empty without shared observations).
    pub observers: Vec<ObserverStatus>,
}

/// How many events a [`StatusReport`] keeps.
pub const RECENT_EVENTS: usize = 100;
