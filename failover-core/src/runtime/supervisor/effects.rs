//! Carrying out the arbiter's actions: the gate that holds moves until the fence approves them,
//! the writers' and notifiers' queues, the recent events.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::metrics::SupervisorMetrics;
use super::status::RECENT_EVENTS;
use crate::action::Action;
use crate::arbiter::Arbiter;
use crate::event::Event;
use crate::fence::{Fence, FenceReport, Veto};
use crate::model::NodeName;
use crate::runtime::clock::now;
use crate::zone::Publication;

/// What a fence said about a publication.
pub(super) struct FenceResult {
    publication: Publication,
    from: Vec<NodeName>,
    verdict: Result<FenceReport, Veto>,
}

/// Holds publications that move the answer until the fence approves them; one fence call at a
/// time, and only the newest waiting publication is fenced next.
pub(super) struct Gate {
    fence: Option<Arc<dyn Fence>>,
    /// The nodes the writers were last handed.
    granted: Vec<NodeName>,
    /// The publication the writers were last handed through the fence.
    handed: Option<Publication>,
    /// The nodes being fenced now.
    in_flight: Option<Vec<NodeName>>,
    /// The newest publication decided while a fence ran.
    waiting: Option<Publication>,
    results: mpsc::Sender<FenceResult>,
}

/// How long the arbiter holds back an answer whose fence gave no verdict in time.
const FENCE_TIMEOUT_RETRY: Duration = Duration::from_secs(5);

impl Gate {
    /// A gate in front of the writers, through `fence` if there is one; fence verdicts are sent
    /// to `results`.
    pub(super) fn new(fence: Option<Arc<dyn Fence>>, results: mpsc::Sender<FenceResult>) -> Self {
        Self {
            fence,
            granted: Vec::new(),
            handed: None,
            in_flight: None,
            waiting: None,
            results,
        }
    }

    /// A publication the arbiter decided: straight to the writers, or to the fence.
    pub(super) fn admit(
        &mut self,
        publication: Publication,
        arbiter: &Arbiter,
        effects: &mut Effects<'_>,
        tasks: &mut JoinSet<()>,
    ) {
        let Some(fence) = self.fence.clone() else {
            effects.publish(publication);
            return;
        };
        if self.in_flight.is_some() {
            self.waiting = Some(publication);
            return;
        }
        if publication.nodes == self.granted {
            // No move to fence. Back to what the writers have: nothing to publish; but names
            // with a policy of their own may have a new answer.
            if self.handed.as_ref() != Some(&publication) {
                self.hand(publication, effects);
            }
            return;
        }
        if self.granted.is_empty() {
            self.hand(publication, effects);
            return;
        }
        let context = arbiter.publish_context(now(), &self.granted, &publication);
        tracing::info!(from = ?context.from, to = ?context.to, fence = fence.describe(), "fencing before publishing");
        self.in_flight = Some(publication.nodes.clone());
        let results = self.results.clone();
        tasks.spawn(async move {
            let timeout = fence.timeout();
            let verdict = match tokio::time::timeout(timeout, fence.before_publish(&context)).await
            {
                Ok(verdict) => verdict,
                Err(_) => Err(Veto {
                    reason: format!("no verdict within {}", humantime::format_duration(timeout)),
                    steps: Vec::new(),
                    retry_after: FENCE_TIMEOUT_RETRY,
                }),
            };
            let _ = results
                .send(FenceResult {
                    publication: context.publication,
                    from: context.from,
                    verdict,
                })
                .await;
        });
    }

    /// Hands the answer a restored arbiter starts from to the writers (they publish it
    /// idempotently): it is live, so the next move is fenced from it.
    pub(super) fn start_from(&mut self, publication: Publication, effects: &mut Effects<'_>) {
        self.hand(publication, effects);
    }

    /// Hands `publication` to the writers and remembers it as granted.
    fn hand(&mut self, publication: Publication, effects: &mut Effects<'_>) {
        self.granted = publication.nodes.clone();
        self.handed = Some(publication.clone());
        effects.publish(publication);
    }

    /// The fence answered: approve (the publication goes to the writers) or veto (the arbiter
    /// goes back to what the writers have). Then the newest waiting publication, if any.
    pub(super) fn finished(
        &mut self,
        result: FenceResult,
        arbiter: &mut Arbiter,
        effects: &mut Effects<'_>,
    ) -> Vec<Action> {
        self.in_flight = None;
        let fence = self
            .fence
            .as_ref()
            .map(|f| f.describe())
            .unwrap_or_default();
        let mut actions = match result.verdict {
            Ok(report) => {
                let actions = arbiter.fenced(now(), &fence, report.steps);
                self.hand(result.publication, effects);
                actions
            }
            Err(veto) => {
                arbiter.publish_vetoed(now(), &fence, result.from, result.publication.nodes, veto)
            }
        };
        // The newest answer decided meanwhile goes through the gate again.
        if let Some(waiting) = self.waiting.take() {
            actions.push(Action::Publish(waiting));
        }
        actions
    }
}

/// Where the arbiter's actions go: the writers' wanted answers, the notifiers' queues, the
/// recent events.
pub(super) struct Effects<'a> {
    pub(super) publish_to: &'a [watch::Sender<Option<Publication>>],
    pub(super) notify_to: &'a [mpsc::Sender<Event>],
    pub(super) recent: &'a mut VecDeque<Event>,
    pub(super) metrics: Option<&'a dyn SupervisorMetrics>,
}

impl Effects<'_> {
    /// Carries out notifications and records; publications are handed back for the gate.
    fn apply(&mut self, actions: Vec<Action>, publications: &mut Vec<Publication>) {
        for action in actions {
            match action {
                Action::Publish(publication) => publications.push(publication),
                Action::Notify(event) => {
                    for queue in self.notify_to {
                        if let Err(mpsc::error::TrySendError::Full(event)) =
                            queue.try_send(event.clone())
                        {
                            tracing::warn!(
                                event = event.name(),
                                "notifier queue full; event dropped: {event}"
                            );
                        }
                    }
                    self.remember(event);
                }
                Action::Record(event) => {
                    tracing::info!(event = event.name(), notified = false, "{event}");
                    self.remember(event);
                }
            }
        }
    }

    fn publish(&mut self, publication: Publication) {
        tracing::info!(nodes = ?publication.nodes, "publishing");
        if let Some(metrics) = self.metrics {
            metrics.answer(&publication);
        }
        for writer in self.publish_to {
            writer.send_replace(Some(publication.clone()));
        }
    }

    fn remember(&mut self, event: Event) {
        if let Some(metrics) = self.metrics {
            metrics.event(&event);
        }
        if self.recent.len() == RECENT_EVENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(event);
    }
}

/// Carries out the arbiter's actions: publications pass the gate (the fence, when there is one)
/// before the writers.
pub(super) fn carry_out(
    actions: Vec<Action>,
    arbiter: &Arbiter,
    gate: &mut Gate,
    effects: &mut Effects<'_>,
    tasks: &mut JoinSet<()>,
) {
    let mut publications = Vec::new();
    effects.apply(actions, &mut publications);
    for publication in publications {
        gate.admit(publication, arbiter, effects, tasks);
    }
}
