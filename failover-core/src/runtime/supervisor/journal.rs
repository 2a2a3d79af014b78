//! What a running supervisor hands to a journal: every input its arbiter took, and what the
//! arbiter decided (the answers published, the events), in order.

use std::time::SystemTime;

use tokio::sync::mpsc;

use crate::action::Action;
use crate::arbiter::{Arbiter, ArbiterInput};
use crate::event::Event;
use crate::quorum::QuorumInput;
use crate::runtime::observers::SharedObservations;
use crate::zone::Publication;

/// One entry for a journal ([`Supervisor::journal`](super::Supervisor::journal)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JournalEntry {
    /// An input the arbiter took.
    Input(ArbiterInput),
    /// The arbiter asked for this answer to be published.
    Published {
        /// When (wall clock).
        at: SystemTime,
        /// The answer.
        publication: Publication,
    },
    /// The arbiter raised this event.
    Event(Event),
    /// An input the quorum of shared observations took (it comes before the arbiter inputs
    /// it led to).
    Quorum(QuorumInput),
}

/// Where a supervisor sends its journal entries; never blocks the arbiter: when the journal
/// falls behind by [`JOURNAL_QUEUE`] entries, entries are dropped and counted.
#[derive(Debug)]
pub(super) struct JournalSink {
    pub(super) sender: mpsc::Sender<JournalEntry>,
    pub(super) dropped: u64,
}

/// How many entries may wait for the journal's writer.
pub const JOURNAL_QUEUE: usize = 4096;

impl JournalSink {
    /// Sends the inputs `shared`'s quorum and `arbiter` took and the `actions` it answered with.
    pub(super) fn record(
        &mut self,
        shared: Option<&mut SharedObservations>,
        arbiter: &mut Arbiter,
        actions: &[Action],
        at: SystemTime,
    ) {
        let quorum = shared
            .map(SharedObservations::take_inputs)
            .unwrap_or_default()
            .into_iter()
            .map(JournalEntry::Quorum);
        let inputs = quorum.chain(arbiter.take_inputs().into_iter().map(JournalEntry::Input));
        let outputs = actions.iter().filter_map(|action| match action {
            Action::Publish(publication) => Some(JournalEntry::Published {
                at,
                publication: publication.clone(),
            }),
            Action::Notify(event) => Some(JournalEntry::Event(event.clone())),
            _ => None,
        });
        for entry in inputs.chain(outputs) {
            if self.sender.try_send(entry).is_err() {
                self.dropped += 1;
                if self.dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped = self.dropped,
                        "the journal falls behind: {} entries dropped (a replay will miss them)",
                        self.dropped
                    );
                }
            }
        }
    }
}
