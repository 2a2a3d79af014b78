//! What an arbiter took in, kept in order so that it can be taken in again (a replay): the
//! observations, the operators' overrides and failback requests. Timers are not inputs: a replay
//! ticks its own arbiter at its own [`next_deadline`](super::Arbiter::next_deadline), which is what
//! lets it answer "what would another config have done".

use std::time::SystemTime;

use super::overrides::Override;
use crate::model::Observation;

/// One input an arbiter took, in the order it took them
/// ([`Arbiter::record_inputs`](super::Arbiter::record_inputs)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArbiterInput {
    /// A probe result ([`Arbiter::observe`](super::Arbiter::observe)): this observer's own, or
    /// one the quorum released.
    Observed(Observation),
    /// An operator set or cleared an override
    /// ([`Arbiter::apply_override`](super::Arbiter::apply_override), when it was accepted).
    Override {
        /// The override.
        what: Override,
        /// Set or cleared.
        set: bool,
        /// When (wall clock).
        at: SystemTime,
    },
    /// An operator asked for a failback
    /// ([`Arbiter::request_failback`](super::Arbiter::request_failback)).
    Failback {
        /// When (wall clock).
        at: SystemTime,
    },
}

impl ArbiterInput {
    /// When it was taken (wall clock).
    pub fn at(&self) -> SystemTime {
        match self {
            ArbiterInput::Observed(observation) => observation.at.wall,
            ArbiterInput::Override { at, .. } | ArbiterInput::Failback { at } => *at,
        }
    }
}
