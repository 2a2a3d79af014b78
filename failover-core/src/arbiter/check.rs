//! One check on one node: the hysteresis (`fall` failures down, `rise` successes up) and its events.

use super::spec::{CheckSpec, FirstVerdict};
use crate::action::Action;
use crate::event::{Event, EventKind};
use crate::model::{Health, Moment, Observation, Outcome};

/// What the arbiter knows of one check on one node.
#[derive(Clone, Debug)]
pub(super) struct CheckState {
    pub(super) health: Health,
    pub(super) consecutive_failures: u32,
    pub(super) consecutive_successes: u32,
    pub(super) last_outcome: Option<Outcome>,
    pub(super) last_probe: Option<Moment>,
    pub(super) changed_at: Option<Moment>,
    /// When the current run of failures began.
    pub(super) failing_since: Option<Moment>,
}

impl CheckState {
    /// A check not probed yet.
    pub(super) fn new() -> Self {
        Self {
            health: Health::Unknown,
            consecutive_failures: 0,
            consecutive_successes: 0,
            last_outcome: None,
            last_probe: None,
            changed_at: None,
            failing_since: None,
        }
    }

    /// Applies hysteresis to one check; returns the transition's event, if any.
    pub(super) fn observe(
        &mut self,
        spec: &CheckSpec,
        first_verdict: FirstVerdict,
        observation: Observation,
    ) -> Option<Action> {
        let state = self;
        let now = observation.at;
        state.last_probe = Some(now);
        match &observation.outcome {
            Outcome::Healthy { .. } => {
                state.consecutive_successes = state.consecutive_successes.saturating_add(1);
                state.consecutive_failures = 0;
                state.failing_since = None;
            }
            Outcome::Failed { .. } => {
                state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                state.consecutive_successes = 0;
                state.failing_since.get_or_insert(now);
            }
        }
        let next = match (state.health, &observation.outcome) {
            // A success is the first verdict at once: no cold-start wait.
            (Health::Unknown, Outcome::Healthy { .. }) => Health::Up,
            // A failure is too, unless the first "down" must wait for `fall` like any other.
            (Health::Unknown, Outcome::Failed { .. })
                if first_verdict == FirstVerdict::FirstProbe
                    || state.consecutive_failures >= spec.fall =>
            {
                Health::Down
            }
            (Health::Up, Outcome::Failed { .. }) if state.consecutive_failures >= spec.fall => {
                Health::Down
            }
            (Health::Down, Outcome::Healthy { .. }) if state.consecutive_successes >= spec.rise => {
                Health::Up
            }
            (health, _) => health,
        };
        let previous = state.health;
        let down_for = match previous {
            Health::Down => state.changed_at.map(|t| now.since(t)),
            _ => None,
        };
        state.last_outcome = Some(observation.outcome.clone());
        if next == previous {
            return None;
        }
        state.health = next;
        state.changed_at = Some(now);
        let kind = match observation.outcome {
            Outcome::Healthy { detail } => EventKind::CheckUp {
                node: observation.node,
                check: observation.check,
                detail,
                down_for,
            },
            Outcome::Failed { class, error } => EventKind::CheckDown {
                node: observation.node,
                check: observation.check,
                critical: spec.critical,
                class,
                error,
                consecutive_failures: state.consecutive_failures,
                failing_since: state.failing_since.unwrap_or(now).wall,
            },
        };
        let event = Event { at: now.wall, kind };
        // A first verdict of "up" is routine; a first "down" is news.
        Some(if previous == Health::Unknown && next == Health::Up {
            Action::Record(event)
        } else {
            Action::Notify(event)
        })
    }
}
