//! The state machine: observations, timers and operator commands in, actions out.

use std::net::IpAddr;
use std::time::Instant;

use super::answer::{groups, AnswerGroup, NamedPolicy};
use super::check::CheckState;
use super::error::ArbiterError;
use super::journal::ArbiterInput;
use super::overrides::{Override, Overrides};
use super::spec::ClusterSpec;
use super::status::{CheckStatus, ClusterStatus, NameStatus, NodeStatus};
use crate::action::Action;
use crate::damping::Damper;
use crate::event::{DegradedCheck, Event, EventKind};
use crate::fence::{FenceStep, LeavingNode, PublishContext, Veto};
use crate::model::{Health, Moment, NodeName, Observation, Outcome};
use crate::policy::{AllDown, ClusterView, NodeView, Policy};
use crate::zone::{ManagedAnswer, Publication};

/// Decides, from observations, what every managed name should answer.
///
/// Per check and node: `fall` failures in a row take it down, `rise` successes bring it up; the
/// first verdict comes per [`Startup::first_verdict`](super::Startup::first_verdict) (by default
/// the first probe gives it directly; with [`FirstVerdict::AfterFall`](super::FirstVerdict) a
/// first "down" needs `fall` failures too). A node is up when every critical check is up.
/// Nothing is published until every node has a verdict. Then the [`Policy`] decides, except when
/// every node is down: then the [`AllDown`] rule does.
///
/// Each managed name follows the default policy, or the [`NamedPolicy`] its
/// [`policy`](super::ManagedName::policy) key names ([`Arbiter::with_policies`]); each policy
/// has its own answer, all-down rule, timers and events.
///
/// # Restarts
///
/// [`snapshot`](Arbiter::snapshot) gives what the arbiter knows as an
/// [`ArbiterState`](super::ArbiterState); [`restore`](Arbiter::restore) makes a new arbiter
/// (after a restart or a reload) start from it, so that a restart never moves the answer by
/// itself. See [`ArbiterState`](super::ArbiterState) for what is kept and what is not.
pub struct Arbiter {
    pub(super) spec: ClusterSpec,
    /// The default policy's answer first, then one per named policy in use.
    pub(super) groups: Vec<AnswerGroup>,
    /// `checks[node][check]`, indices as in `spec`.
    pub(super) checks: Vec<Vec<CheckState>>,
    pub(super) nodes: Vec<NodeView>,
    failback_requested: bool,
    damper: Damper,
    pub(super) overrides: Overrides,
    /// The inputs taken since the last [`take_inputs`](Arbiter::take_inputs), when recording.
    recorded: Option<Vec<ArbiterInput>>,
}

impl std::fmt::Debug for Arbiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arbiter")
            .field("policy", &self.groups[0].policy.name())
            .field("nodes", &self.nodes)
            .field("current", &self.groups[0].current)
            .finish_non_exhaustive()
    }
}

impl Arbiter {
    /// An arbiter for `spec`, deciding every managed name with `policy`.
    pub fn new(spec: ClusterSpec, policy: Box<dyn Policy>) -> Result<Self, ArbiterError> {
        Self::with_policies(spec, policy, Vec::new())
    }

    /// An arbiter for `spec` whose managed names follow `default`, except those whose
    /// [`policy`](super::ManagedName::policy) names one of `named` by its key. A name naming a
    /// key that is not there, a key given twice, or a named policy over an unknown node is
    /// refused; a named policy no name uses is dropped.
    pub fn with_policies(
        spec: ClusterSpec,
        default: Box<dyn Policy>,
        named: Vec<NamedPolicy>,
    ) -> Result<Self, ArbiterError> {
        spec.validate()?;
        let groups = groups(&spec, default, named)?;
        let checks = spec
            .nodes
            .iter()
            .map(|_| spec.checks.iter().map(|_| CheckState::new()).collect())
            .collect();
        let nodes = spec
            .nodes
            .iter()
            .map(|n| NodeView {
                name: n.name.clone(),
                health: Health::Unknown,
                since: None,
                drained: false,
            })
            .collect();
        let damper = Damper::new(spec.damping);
        let mut arbiter = Self {
            spec,
            groups,
            checks,
            nodes,
            failback_requested: false,
            damper,
            overrides: Overrides::default(),
            recorded: None,
        };
        // A node without critical checks is up from the start.
        for index in 0..arbiter.nodes.len() {
            if arbiter.node_health(index) == Health::Up {
                arbiter.nodes[index].health = Health::Up;
            }
        }
        Ok(arbiter)
    }

    /// Takes in one probe result and returns what to do about it.
    ///
    /// Observations of unknown nodes or checks are ignored (they cannot come from the config this
    /// arbiter was built from).
    pub fn observe(&mut self, observation: Observation) -> Vec<Action> {
        if let Some(recorded) = &mut self.recorded {
            recorded.push(ArbiterInput::Observed(observation.clone()));
        }
        let mut out = Vec::new();
        let Some(node_index) = self
            .spec
            .nodes
            .iter()
            .position(|n| n.name == observation.node)
        else {
            return out;
        };
        let Some(check_index) = self
            .spec
            .checks
            .iter()
            .position(|c| c.name == observation.check)
        else {
            return out;
        };
        let now = observation.at;
        let check = &self.spec.checks[check_index];
        let first_verdict = self.spec.startup.first_verdict;
        if let Some(event) =
            self.checks[node_index][check_index].observe(check, first_verdict, observation)
        {
            out.push(event);
        }
        self.update_node(node_index, now, &mut out);
        self.evaluate(now, &mut out);
        self.damper.tick(now, &mut out);
        out
    }

    /// Lets time pass: runs timers (`failback_after`, damping windows) due by `now`.
    pub fn tick(&mut self, now: Moment) -> Vec<Action> {
        let mut out = Vec::new();
        let mut due = false;
        for group in &mut self.groups {
            let recheck = group.recheck_at.is_some_and(|at| at <= now.mono);
            let veto_over = group.vetoed.as_ref().is_some_and(|(_, at)| *at <= now.mono);
            if veto_over {
                group.vetoed = None;
            }
            if recheck || veto_over {
                group.recheck_at = None;
                due = true;
            }
        }
        if due {
            self.evaluate(now, &mut out);
        }
        self.damper.tick(now, &mut out);
        out
    }

    /// When [`tick`](Arbiter::tick) next has something to do, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.groups
            .iter()
            .flat_map(|g| [g.recheck_at, g.vetoed.as_ref().map(|(_, at)| *at)])
            .chain([self.damper.next_deadline()])
            .flatten()
            .min()
    }

    /// An operator asks to move the answer back to the preferred node (`failback = "manual"`).
    pub fn request_failback(&mut self, now: Moment) -> Vec<Action> {
        if let Some(recorded) = &mut self.recorded {
            recorded.push(ArbiterInput::Failback { at: now.wall });
        }
        let mut out = Vec::new();
        self.failback_requested = true;
        self.evaluate(now, &mut out);
        self.failback_requested = false;
        out
    }

    /// Takes `nodes` as the answer already published for every managed name (after a config
    /// reload, or a restart that knows what is live), so that the policies' rules (such as
    /// `failback_after`) apply to it instead of a first publication. Names not in the spec are
    /// ignored. [`restore`](Arbiter::restore) keeps more (verdicts, each name's own answer).
    pub fn assume_published(&mut self, nodes: Vec<NodeName>) {
        let nodes: Vec<NodeName> = nodes
            .into_iter()
            .filter(|n| self.spec.nodes.iter().any(|s| &s.name == n))
            .collect();
        for group in &mut self.groups {
            group.current = nodes.clone();
        }
    }

    /// An event from outside the arbiter (the file mirror's conflicts, say), passed through the
    /// same damping as the arbiter's own before it is notified.
    pub fn report(&mut self, event: Event, now: Moment) -> Vec<Action> {
        let mut out = Vec::new();
        self.damper.pass(event, now, &mut out);
        out
    }

    /// A zone writer failed to publish the current answer.
    pub fn publish_failed(
        &mut self,
        now: Moment,
        writer: String,
        error: String,
        attempt: u32,
    ) -> Vec<Action> {
        let event = Event {
            at: now.wall,
            kind: EventKind::PublishFailed {
                writer,
                answer: self.groups[0].current.clone(),
                error,
                attempt,
            },
        };
        let mut out = Vec::new();
        self.damper.pass(event, now, &mut out);
        out
    }

    /// A zone writer published after failing `attempts - 1` times.
    pub fn publish_recovered(&mut self, now: Moment, writer: String, attempts: u32) -> Vec<Action> {
        let event = Event {
            at: now.wall,
            kind: EventKind::PublishRecovered { writer, attempts },
        };
        let mut out = Vec::new();
        self.damper.pass(event, now, &mut out);
        out
    }

    /// What a [`Fence`](crate::Fence) needs to judge moving the answer from `from` (what the
    /// writers publish) to `publication`'s nodes: who leaves, their health, how long they have
    /// been down at `now`.
    pub fn publish_context(
        &self,
        now: Moment,
        from: &[NodeName],
        publication: &Publication,
    ) -> PublishContext {
        let leaving = from
            .iter()
            .filter(|n| !publication.nodes.contains(n))
            .map(|name| {
                let view = self.nodes.iter().find(|v| &v.name == name);
                let health = view.map_or(Health::Unknown, |v| v.health);
                LeavingNode {
                    node: name.clone(),
                    health,
                    down_for: view
                        .filter(|v| v.health == Health::Down)
                        .and_then(|v| v.since)
                        .map(|since| now.since(since)),
                }
            })
            .collect();
        PublishContext {
            from: from.to_vec(),
            to: publication.nodes.clone(),
            leaving,
            publication: publication.clone(),
        }
    }

    /// A fence approved a move; its steps become `fence-step` events.
    pub fn fenced(&mut self, now: Moment, fence: &str, steps: Vec<FenceStep>) -> Vec<Action> {
        let mut out = Vec::new();
        self.fence_events(now, fence, steps, &mut out);
        out
    }

    /// A fence refused to move the answer from `kept` (what the writers publish) to `refused`.
    ///
    /// If `refused` is still the current answer, the arbiter goes back to `kept` and will not
    /// decide `refused` again before `veto.retry_after` has passed (another answer may come
    /// sooner). Either way the steps and the refusal are events.
    pub fn publish_vetoed(
        &mut self,
        now: Moment,
        fence: &str,
        kept: Vec<NodeName>,
        refused: Vec<NodeName>,
        veto: Veto,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        self.fence_events(now, fence, veto.steps, &mut out);
        // A fence judges the default policy's answer, the one `Publication::nodes` carries.
        let group = &mut self.groups[0];
        if group.current == refused {
            group.current = kept.clone();
            group.vetoed = Some((refused.clone(), now.mono + veto.retry_after));
        }
        let event = Event {
            at: now.wall,
            kind: EventKind::PublishVetoed {
                fence: fence.to_owned(),
                kept,
                refused,
                reason: veto.reason,
                retry_after: veto.retry_after,
            },
        };
        self.damper.pass(event, now, &mut out);
        out
    }

    fn fence_events(
        &mut self,
        now: Moment,
        fence: &str,
        steps: Vec<FenceStep>,
        out: &mut Vec<Action>,
    ) {
        for step in steps {
            let event = Event {
                at: now.wall,
                kind: EventKind::FenceStep {
                    fence: fence.to_owned(),
                    node: step.node,
                    action: step.action,
                    done: step.done,
                    detail: step.detail,
                },
            };
            self.damper.pass(event, now, out);
        }
    }

    /// The nodes published now for the names that follow the default policy.
    pub fn answer(&self) -> &[NodeName] {
        &self.groups[0].current
    }

    /// The nodes published now for the managed name `name` (`None` for a name not managed).
    pub fn answer_for(&self, name: &str) -> Option<&[NodeName]> {
        let index = self.spec.managed.iter().position(|m| m.name == name)?;
        self.groups
            .iter()
            .find(|g| g.names.contains(&index))
            .map(|g| g.current.as_slice())
    }

    /// The publication for the current answers, if anything has been decided yet.
    pub fn publication(&self) -> Option<Publication> {
        self.groups
            .iter()
            .any(|g| !g.current.is_empty())
            .then(|| self.publication_for(&self.groups[0].current))
    }

    /// The status of every node and check.
    pub fn status(&self) -> ClusterStatus {
        let nodes = self
            .spec
            .nodes
            .iter()
            .zip(&self.nodes)
            .zip(&self.checks)
            .map(|((spec, view), checks)| NodeStatus {
                node: spec.name.clone(),
                health: view.health,
                since: view.since.map(|m| m.wall),
                publish: spec.publish.clone(),
                drained: view.drained,
                checks: self
                    .spec
                    .checks
                    .iter()
                    .zip(checks)
                    .map(|(check, state)| CheckStatus {
                        check: check.name.clone(),
                        critical: check.critical,
                        health: state.health,
                        consecutive_failures: state.consecutive_failures,
                        consecutive_successes: state.consecutive_successes,
                        last_outcome: state.last_outcome.clone(),
                        last_probe: state.last_probe.map(|m| m.wall),
                        changed_at: state.changed_at.map(|m| m.wall),
                        flapping: self
                            .damper
                            .is_flapping(&format!("{} on {}", check.name, spec.name)),
                        forced: self.overrides.forced(&spec.name, &check.name),
                    })
                    .collect(),
            })
            .collect();
        let names = self
            .groups
            .iter()
            .flat_map(|group| {
                group.names.iter().map(|&index| NameStatus {
                    name: self.spec.managed[index].name.clone(),
                    policy: group.policy.name().to_owned(),
                    key: group.key.clone(),
                    answer: group.current.clone(),
                    all_down: group.all_down_active,
                })
            })
            .collect();
        ClusterStatus {
            policy: self.groups[0].policy.name().to_owned(),
            nodes,
            answer: self.groups[0].current.clone(),
            all_down: self.groups[0].all_down_active,
            overrides: self.overrides.iter().cloned().collect(),
            names,
        }
    }

    /// Sets (`set = true`) or clears an operator's override and returns what follows from it.
    /// Setting one already set, or clearing one not set, changes nothing.
    pub fn apply_override(
        &mut self,
        wanted: Override,
        set: bool,
        now: Moment,
    ) -> Result<Vec<Action>, ArbiterError> {
        let node_index = self.spec.node_index(match &wanted {
            Override::Drain { node } | Override::Force { node, .. } => node,
        })?;
        if let Override::Force { check, health, .. } = &wanted {
            self.spec.check_index(check)?;
            if set && *health == Health::Unknown {
                return Err(ArbiterError::ForceUnknown);
            }
        }
        let mut out = Vec::new();
        if let Some(recorded) = &mut self.recorded {
            recorded.push(ArbiterInput::Override {
                what: wanted.clone(),
                set,
                at: now.wall,
            });
        }
        if !self.overrides.apply(&wanted, set) {
            return Ok(out);
        }
        let event = Event {
            at: now.wall,
            kind: EventKind::Override {
                action: format!("{}{wanted}", if set { "" } else { "undo " }),
            },
        };
        out.push(Action::Notify(event));
        self.nodes[node_index].drained = self.overrides.drains(&self.nodes[node_index].name);
        self.update_node(node_index, now, &mut out);
        self.evaluate(now, &mut out);
        Ok(out)
    }

    /// The overrides in force.
    pub fn overrides(&self) -> impl Iterator<Item = &Override> {
        self.overrides.iter()
    }

    /// From now on, keeps every input taken (observations, accepted overrides, failback
    /// requests) for [`take_inputs`](Arbiter::take_inputs): a journal of them, fed to an arbiter
    /// built from any config, replays what it would have done.
    pub fn record_inputs(&mut self) {
        self.recorded.get_or_insert_with(Vec::new);
    }

    /// The inputs taken since the last call, oldest first (none unless
    /// [`record_inputs`](Arbiter::record_inputs) was called).
    pub fn take_inputs(&mut self) -> Vec<ArbiterInput> {
        self.recorded
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The health a node's critical checks give it.
    pub(super) fn node_health(&self, node_index: usize) -> Health {
        let mut health = Health::Up;
        let node = &self.spec.nodes[node_index].name;
        for (spec, state) in self.spec.checks.iter().zip(&self.checks[node_index]) {
            if !spec.critical {
                continue;
            }
            match self
                .overrides
                .forced(node, &spec.name)
                .unwrap_or(state.health)
            {
                Health::Down => return Health::Down,
                Health::Unknown => health = Health::Unknown,
                Health::Up => {}
            }
        }
        health
    }

    fn update_node(&mut self, node_index: usize, now: Moment, out: &mut Vec<Action>) {
        // A check's own event passes the damper here, so that order is kept.
        let pending: Vec<Action> = std::mem::take(out);
        for action in pending {
            match action {
                Action::Notify(event) => self.damper.pass(event, now, out),
                other => out.push(other),
            }
        }
        let next = self.node_health(node_index);
        let view = &mut self.nodes[node_index];
        let previous = view.health;
        if next == previous {
            return;
        }
        view.health = next;
        view.since = Some(now);
        let name = view.name.clone();
        let event = match next {
            Health::Up => Event {
                at: now.wall,
                kind: EventKind::NodeUp { node: name },
            },
            Health::Down => {
                let failed_checks = self
                    .spec
                    .checks
                    .iter()
                    .zip(&self.checks[node_index])
                    .filter(|(spec, state)| spec.critical && state.health == Health::Down)
                    .map(|(spec, _)| spec.name.clone())
                    .collect();
                Event {
                    at: now.wall,
                    kind: EventKind::NodeDown {
                        node: name,
                        failed_checks,
                    },
                }
            }
            Health::Unknown => return,
        };
        if previous == Health::Unknown && next == Health::Up {
            out.push(Action::Record(event));
        } else {
            self.damper.pass(event, now, out);
        }
    }

    /// Asks each policy (or the all-down rule) for its answer; publishes once if any changed.
    fn evaluate(&mut self, now: Moment, out: &mut Vec<Action>) {
        if self.nodes.iter().any(|n| n.health == Health::Unknown) {
            return;
        }
        let mut changed = false;
        for index in 0..self.groups.len() {
            // When every name has a policy of its own, the default one decides nothing.
            if !self.groups[index].names.is_empty() {
                changed |= self.evaluate_group(index, now, out);
            }
        }
        if changed {
            out.push(Action::Publish(
                self.publication_for(&self.groups[0].current),
            ));
        }
    }

    /// One policy's decision for its names; returns whether their answer changed.
    fn evaluate_group(&mut self, index: usize, now: Moment, out: &mut Vec<Action>) -> bool {
        let group = &self.groups[index];
        let previous = group.current.clone();
        let names = self.event_names(index);
        let views: Vec<NodeView> = group.nodes.iter().map(|&n| self.nodes[n].clone()).collect();
        if !views.iter().any(NodeView::is_available) {
            let group = &mut self.groups[index];
            group.recheck_at = None;
            if group.all_down_active {
                return false;
            }
            group.all_down_active = true;
            let rule = group.all_down;
            let answer = match rule {
                AllDown::KeepLast => previous.clone(),
                AllDown::ServeAll => views.iter().map(|n| n.name.clone()).collect(),
                // The policy's primary if it may choose it, else its first node.
                AllDown::ServePrimary => vec![group
                    .policy
                    .primary()
                    .filter(|primary| views.iter().any(|v| &v.name == *primary))
                    .cloned()
                    .unwrap_or_else(|| views[0].name.clone())],
            };
            let event = Event {
                at: now.wall,
                kind: EventKind::AllDown {
                    names,
                    rule,
                    answer: answer.clone(),
                },
            };
            self.damper.pass(event, now, out);
            if !answer.is_empty() && answer != previous {
                self.groups[index].current = answer;
                return true;
            }
            return false;
        }
        let group = &mut self.groups[index];
        group.all_down_active = false;
        let view = ClusterView {
            now,
            nodes: &views,
            current: &previous,
            failback_requested: self.failback_requested,
        };
        let decision = group.policy.decide(&view);
        group.recheck_at = decision.recheck_at;
        // Unknown names (and nodes this policy may not choose) and empty answers are never
        // published.
        let answer: Vec<NodeName> = decision
            .answer
            .into_iter()
            .filter(|n| views.iter().any(|v| &v.name == n))
            .collect();
        if answer.is_empty() || answer == previous {
            return false;
        }
        if let Some((refused, until)) = &group.vetoed {
            if *refused == answer && now.mono < *until {
                return false;
            }
        }
        let kind = self.classify(names, &previous, &answer);
        self.groups[index].current = answer;
        self.damper.pass(Event { at: now.wall, kind }, now, out);
        true
    }

    /// The names an answer event of group `index` carries: none for the default policy's.
    fn event_names(&self, index: usize) -> Vec<String> {
        if index == 0 {
            return Vec::new();
        }
        self.groups[index]
            .names
            .iter()
            .map(|&m| self.spec.managed[m].name.clone())
            .collect()
    }

    /// Names a change of answer: away from a node that is not up is a failover; towards a node
    /// ranked before every previous one is a failback; anything else is a change.
    fn classify(&self, names: Vec<String>, from: &[NodeName], to: &[NodeName]) -> EventKind {
        let rank = |name: &NodeName| self.nodes.iter().position(|n| &n.name == name);
        let health = |name: &NodeName| {
            self.nodes
                .iter()
                .find(|n| &n.name == name)
                .map_or(Health::Unknown, |n| n.health)
        };
        let from_addresses = self.addresses_of(from);
        let to_addresses = self.addresses_of(to);
        let failover = from
            .iter()
            .any(|n| health(n) != Health::Up && !to.contains(n));
        let failback = to.len() == 1
            && from.len() == 1
            && rank(&to[0]).zip(rank(&from[0])).is_some_and(|(t, f)| t < f);
        let (from, to) = (from.to_vec(), to.to_vec());
        if !from.is_empty() && failover {
            EventKind::Failover {
                names,
                degraded: self.degraded_checks(&to),
                from,
                to,
                from_addresses,
                to_addresses,
            }
        } else if failback {
            EventKind::Failback {
                names,
                from,
                to,
                from_addresses,
                to_addresses,
            }
        } else {
            EventKind::AnswerChanged {
                names,
                from,
                to,
                from_addresses,
                to_addresses,
            }
        }
    }

    fn addresses_of(&self, nodes: &[NodeName]) -> Vec<IpAddr> {
        nodes
            .iter()
            .filter_map(|name| self.spec.nodes.iter().find(|n| &n.name == name))
            .flat_map(|n| n.publish.iter().copied())
            .collect()
    }

    /// The publication with `nodes` for the default policy's names and each named policy's
    /// current answer for its own; a name whose policy has decided nothing yet is left out.
    pub(super) fn publication_for(&self, nodes: &[NodeName]) -> Publication {
        let mut answers = Vec::new();
        for (index, managed) in self.spec.managed.iter().enumerate() {
            let group = self
                .groups
                .iter()
                .position(|g| g.names.contains(&index))
                .unwrap_or(0);
            let chosen = if group == 0 {
                nodes
            } else {
                &self.groups[group].current
            };
            if chosen.is_empty() {
                continue;
            }
            answers.push(ManagedAnswer {
                name: managed.name.clone(),
                ttl: managed.ttl,
                addresses: self.addresses_of(chosen),
            });
        }
        Publication {
            nodes: nodes.to_vec(),
            answers,
        }
    }
}

impl Arbiter {
    /// The non-critical data checks of `nodes` that are down (forced or probed), with their
    /// last error: what a failover to them may be missing. A check that says nothing about data
    /// (SSH, say) is not named, down or not.
    fn degraded_checks(&self, nodes: &[NodeName]) -> Vec<DegradedCheck> {
        let mut degraded = Vec::new();
        for name in nodes {
            let Some(index) = self.spec.nodes.iter().position(|n| &n.name == name) else {
                continue;
            };
            for (spec, state) in self.spec.checks.iter().zip(&self.checks[index]) {
                let health = self
                    .overrides
                    .forced(name, &spec.name)
                    .unwrap_or(state.health);
                if spec.critical || !spec.data || health != Health::Down {
                    continue;
                }
                let error = match &state.last_outcome {
                    Some(Outcome::Failed { error, .. }) => error.clone(),
                    _ => String::new(),
                };
                degraded.push(DegradedCheck {
                    node: name.clone(),
                    check: spec.name.clone(),
                    error,
                });
            }
        }
        degraded
    }
}
