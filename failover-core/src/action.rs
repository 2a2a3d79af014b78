//! What the arbiter asks its runtime to do: publish an answer, notify an event, record one.

use crate::event::Event;
use crate::zone::Publication;

/// What the arbiter asks its runtime to do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Make this the answer in every zone writer.
    Publish(Publication),
    /// Send this event to the notifiers (and the log).
    Notify(Event),
    /// Keep this event in the log and status only (initial verdicts, damped flaps).
    Record(Event),
}
