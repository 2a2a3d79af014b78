//! What a running supervisor tells a metrics registry, at the moment things happen: each probe,
//! each event, each publication, each notification.

use std::time::Duration;

use crate::event::Event;
use crate::model::{CheckName, NodeName, Outcome};
use crate::zone::Publication;

/// Receives what a running supervisor does, as it does it ([`Supervisor::metrics`]).
///
/// The core knows no metrics format: the daemon implements this trait over its Prometheus
/// registry, which outlives supervisors across reloads, so its counters only grow.
///
/// # Contract
///
/// - Each method is called once per thing that happened, from the task where it happened (a
///   probe task, a writer's task, a notifier's task, the supervisor's loop): it must be cheap
///   and must not block (bump a counter, observe a histogram). It is never retried.
/// - Calls may come from several tasks at once: an implementation synchronises itself.
/// - Every method has an empty default, so an implementation counts only what it wants.
///
/// [`Supervisor::metrics`]: super::Supervisor::metrics
///
/// # Example
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::Duration;
///
/// use failover_core::{CheckName, Event, NodeName, Outcome, SupervisorMetrics};
///
/// /// Counts failed probes and events, nothing else.
/// #[derive(Default)]
/// struct Tally {
///     failed_probes: AtomicU64,
///     events: AtomicU64,
/// }
///
/// impl SupervisorMetrics for Tally {
///     fn probed(&self, _node: &NodeName, _check: &CheckName, outcome: &Outcome, _took: Duration) {
///         if !outcome.is_healthy() {
///             self.failed_probes.fetch_add(1, Ordering::Relaxed);
///         }
///     }
///
///     fn event(&self, _event: &Event) {
///         self.events.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// ```
pub trait SupervisorMetrics: Send + Sync + 'static {
    /// One probe of `check` on `node` ended with `outcome` after `took` (a probe cut off by its
    /// timeout ends as a [`FailureClass::Timeout`](crate::FailureClass::Timeout) failure).
    fn probed(&self, node: &NodeName, check: &CheckName, outcome: &Outcome, took: Duration) {
        let _ = (node, check, outcome, took);
    }

    /// The arbiter raised `event` (notified or only recorded).
    fn event(&self, event: &Event) {
        let _ = event;
    }

    /// The writers were handed `publication` to publish: a move the fence approved (or one
    /// without a fence), an answer of names with a policy of their own, and the answer a
    /// supervisor starts from (restored, or carried over a reload: the same as before).
    fn answer(&self, publication: &Publication) {
        let _ = publication;
    }

    /// One attempt of the zone writer `writer` (its `describe()`) to publish an answer took
    /// `took` and succeeded (`Ok`) or failed with the error's text.
    fn published(&self, writer: &str, took: Duration, result: Result<(), &str>) {
        let _ = (writer, took, result);
    }

    /// One attempt of the notifier `notifier` (its `name()`) to deliver a batch of `events`
    /// events succeeded (`Ok`) or failed with the error's text (a failed attempt may be retried:
    /// each attempt is told).
    fn notified(&self, notifier: &str, events: usize, result: Result<(), &str>) {
        let _ = (notifier, events, result);
    }
}
