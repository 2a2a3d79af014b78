//! The arbiter: a deterministic state machine from observations to published answers.
//!
//! No I/O, no tokio, no clock: every input carries its [`Moment`]. Same inputs, same actions.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::damping::{Damper, Damping};
use crate::event::{DegradedCheck, Event, EventKind};
use crate::fence::{FenceStep, LeavingNode, PublishContext, Veto};
use crate::model::{CheckName, Health, Moment, NodeName, Observation, Outcome};
use crate::policy::{AllDown, ClusterView, NodeView, Policy};
use crate::zone::{ManagedAnswer, Publication};

/// A node of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// Its name.
    pub name: NodeName,
    /// The addresses published when it is chosen (A for IPv4, AAAA for IPv6). Never empty.
    pub publish: Vec<IpAddr>,
}

impl NodeSpec {
    /// A node publishing `addresses`.
    pub fn new(name: &str, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        Self {
            name: NodeName::new(name),
            publish: addresses.into_iter().collect(),
        }
    }
}

/// A check, run against every node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckSpec {
    /// Its name.
    pub name: CheckName,
    /// Whether a node is down when this check is down.
    pub critical: bool,
    /// Failures in a row that take an up check down (default 3).
    pub fall: u32,
    /// Successes in a row that bring a down check up (default 1).
    pub rise: u32,
}

/// Failures in a row that take an up check down, unless its spec says otherwise.
pub const DEFAULT_FALL: u32 = 3;
/// Successes in a row that bring a down check up, unless its spec says otherwise.
pub const DEFAULT_RISE: u32 = 1;

impl CheckSpec {
    /// A check with the default `fall` (3) and `rise` (1).
    pub fn new(name: &str, critical: bool) -> Self {
        Self {
            name: CheckName::new(name),
            critical,
            fall: DEFAULT_FALL,
            rise: DEFAULT_RISE,
        }
    }
}

/// A name whose answer the arbiter manages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedName {
    /// Relative to the zone's origin (`@`, `www`).
    pub name: String,
    /// TTL of its records in seconds.
    pub ttl: u32,
}

impl ManagedName {
    /// A managed name.
    pub fn new(name: &str, ttl: u32) -> Self {
        Self {
            name: name.to_owned(),
            ttl,
        }
    }
}

/// Everything the arbiter needs to know about the cluster.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// The nodes, in config order.
    pub nodes: Vec<NodeSpec>,
    /// The checks, each run on every node.
    pub checks: Vec<CheckSpec>,
    /// The managed names.
    pub managed: Vec<ManagedName>,
    /// What to publish when every node is down.
    pub all_down: AllDown,
    /// Flap damping of notifications.
    pub damping: Damping,
}

/// A spec the arbiter cannot work with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArbiterError {
    /// There is no node.
    #[error("no nodes: add at least one [[node]]")]
    NoNodes,
    /// Two nodes or two checks share a name.
    #[error("duplicate {what} name {name:?}: names must be unique")]
    Duplicate {
        /// `node` or `check`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A node has nothing to publish.
    #[error("node {0:?} has no address to publish")]
    NoAddress(String),
    /// `fall` or `rise` is zero.
    #[error("check {0:?}: fall and rise must be at least 1")]
    ZeroThreshold(String),
    /// An override names a node that is not in the spec.
    #[error("unknown node {name:?} (nodes: {known})")]
    UnknownNode {
        /// The name given.
        name: String,
        /// The known nodes.
        known: String,
    },
    /// An override names a check that is not in the spec.
    #[error("unknown check {name:?} (checks: {known})")]
    UnknownCheck {
        /// The name given.
        name: String,
        /// The known checks.
        known: String,
    },
    /// A forced verdict must be up or down.
    #[error("a check can only be forced up or down")]
    ForceUnknown,
    /// The supervisor that owns the arbiter has stopped.
    #[error("the daemon is stopping")]
    Stopped,
}

/// An operator's override, applied through the arbiter (and persisted by the daemon).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(tag = "override", rename_all = "kebab-case")]
pub enum Override {
    /// Take a node out of the answer whatever its health (maintenance).
    Drain {
        /// The node.
        node: NodeName,
    },
    /// Force a check's verdict up or down whatever its probes say.
    Force {
        /// The node.
        node: NodeName,
        /// The check.
        check: CheckName,
        /// The forced verdict (`up` or `down`).
        health: Health,
    },
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Override::Drain { node } => write!(f, "drain {node}"),
            Override::Force {
                node,
                check,
                health,
            } => write!(f, "force {check} on {node} {health}"),
        }
    }
}

/// What the arbiter asks its runtime to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Make this the answer in every zone writer.
    Publish(Publication),
    /// Send this event to the notifiers (and the log).
    Notify(Event),
    /// Keep this event in the log and status only (initial verdicts, damped flaps).
    Record(Event),
}

#[derive(Clone, Debug)]
struct CheckState {
    health: Health,
    consecutive_failures: u32,
    consecutive_successes: u32,
    last_outcome: Option<Outcome>,
    last_probe: Option<Moment>,
    changed_at: Option<Moment>,
    /// When the current run of failures began.
    failing_since: Option<Moment>,
}

impl CheckState {
    fn new() -> Self {
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
}

/// The status of one check on one node, for status output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckStatus {
    /// The check.
    pub check: CheckName,
    /// Whether it is critical.
    pub critical: bool,
    /// Its verdict.
    pub health: Health,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Successes in a row.
    pub consecutive_successes: u32,
    /// The last probe's outcome.
    pub last_outcome: Option<Outcome>,
    /// When it was last probed.
    #[serde(with = "humantime_serde")]
    pub last_probe: Option<SystemTime>,
    /// When its verdict last changed.
    #[serde(with = "humantime_serde")]
    pub changed_at: Option<SystemTime>,
    /// Whether its notifications are damped because it flaps.
    pub flapping: bool,
    /// A verdict forced by an operator, which wins over `health`.
    pub forced: Option<Health>,
}

/// The status of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// The node.
    pub node: NodeName,
    /// Its health.
    pub health: Health,
    /// When its health last changed.
    #[serde(with = "humantime_serde")]
    pub since: Option<SystemTime>,
    /// Its addresses.
    pub publish: Vec<IpAddr>,
    /// Drained by an operator.
    pub drained: bool,
    /// Each check.
    pub checks: Vec<CheckStatus>,
}

/// The whole cluster's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterStatus {
    /// The policy's name.
    pub policy: String,
    /// Each node.
    pub nodes: Vec<NodeStatus>,
    /// The nodes published now (empty before the first publication).
    pub answer: Vec<NodeName>,
    /// Whether every node is down and the all-down rule is in force.
    pub all_down: bool,
    /// The operator's overrides in force.
    pub overrides: Vec<Override>,
}

/// Decides, from observations, what every managed name should answer.
///
/// Per check and node: `fall` failures in a row take it down, `rise` successes bring it up; the
/// first probe gives the first verdict directly. A node is up when every critical check is up.
/// Nothing is published until every node has a verdict. Then the [`Policy`] decides, except when
/// every node is down: then the [`AllDown`] rule does.
pub struct Arbiter {
    spec: ClusterSpec,
    policy: Box<dyn Policy>,
    /// `checks[node][check]`, indices as in `spec`.
    checks: Vec<Vec<CheckState>>,
    nodes: Vec<NodeView>,
    current: Vec<NodeName>,
    all_down_active: bool,
    recheck_at: Option<Instant>,
    failback_requested: bool,
    damper: Damper,
    overrides: std::collections::BTreeSet<Override>,
    /// An answer a fence refused, held back until the instant.
    vetoed: Option<(Vec<NodeName>, Instant)>,
}

impl std::fmt::Debug for Arbiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arbiter")
            .field("policy", &self.policy.name())
            .field("nodes", &self.nodes)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl Arbiter {
    /// An arbiter for `spec`, deciding with `policy`.
    pub fn new(spec: ClusterSpec, policy: Box<dyn Policy>) -> Result<Self, ArbiterError> {
        if spec.nodes.is_empty() {
            return Err(ArbiterError::NoNodes);
        }
        let mut seen = HashSet::new();
        for node in &spec.nodes {
            if !seen.insert(node.name.as_str()) {
                return Err(ArbiterError::Duplicate {
                    what: "node",
                    name: node.name.to_string(),
                });
            }
            if node.publish.is_empty() {
                return Err(ArbiterError::NoAddress(node.name.to_string()));
            }
        }
        let mut seen = HashSet::new();
        for check in &spec.checks {
            if !seen.insert(check.name.as_str()) {
                return Err(ArbiterError::Duplicate {
                    what: "check",
                    name: check.name.to_string(),
                });
            }
            if check.fall == 0 || check.rise == 0 {
                return Err(ArbiterError::ZeroThreshold(check.name.to_string()));
            }
        }
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
            policy,
            checks,
            nodes,
            current: Vec::new(),
            all_down_active: false,
            recheck_at: None,
            failback_requested: false,
            damper,
            overrides: std::collections::BTreeSet::new(),
            vetoed: None,
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
        if let Some(event) = self.update_check(node_index, check_index, observation) {
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
        let recheck = self.recheck_at.is_some_and(|at| at <= now.mono);
        let veto_over = self.vetoed.as_ref().is_some_and(|(_, at)| *at <= now.mono);
        if veto_over {
            self.vetoed = None;
        }
        if recheck || veto_over {
            self.recheck_at = None;
            self.evaluate(now, &mut out);
        }
        self.damper.tick(now, &mut out);
        out
    }

    /// When [`tick`](Arbiter::tick) next has something to do, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.recheck_at,
            self.damper.next_deadline(),
            self.vetoed.as_ref().map(|(_, at)| *at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// An operator asks to move the answer back to the preferred node (`failback = "manual"`).
    pub fn request_failback(&mut self, now: Moment) -> Vec<Action> {
        let mut out = Vec::new();
        self.failback_requested = true;
        self.evaluate(now, &mut out);
        self.failback_requested = false;
        out
    }

    /// Takes `nodes` as the answer already published (after a config reload, or a restart that
    /// knows what is live), so that the policy's rules (such as `failback_after`) apply to it
    /// instead of a first publication. Names not in the spec are ignored.
    pub fn assume_published(&mut self, nodes: Vec<NodeName>) {
        self.current = nodes
            .into_iter()
            .filter(|n| self.spec.nodes.iter().any(|s| &s.name == n))
            .collect();
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
                answer: self.current.clone(),
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
        if self.current == refused {
            self.current = kept.clone();
            self.vetoed = Some((refused.clone(), now.mono + veto.retry_after));
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

    /// The nodes published now.
    pub fn answer(&self) -> &[NodeName] {
        &self.current
    }

    /// The publication for the current answer, if anything has been decided yet.
    pub fn publication(&self) -> Option<Publication> {
        (!self.current.is_empty()).then(|| self.publication_for(&self.current))
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
                        forced: self.forced(&spec.name, &check.name),
                    })
                    .collect(),
            })
            .collect();
        ClusterStatus {
            policy: self.policy.name().to_owned(),
            nodes,
            answer: self.current.clone(),
            all_down: self.all_down_active,
            overrides: self.overrides.iter().cloned().collect(),
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
        let node_index = self.node_index(match &wanted {
            Override::Drain { node } | Override::Force { node, .. } => node,
        })?;
        if let Override::Force { check, health, .. } = &wanted {
            self.check_index(check)?;
            if set && *health == Health::Unknown {
                return Err(ArbiterError::ForceUnknown);
            }
        }
        let mut out = Vec::new();
        let same_check = |o: &Override| match (o, &wanted) {
            (
                Override::Force { node, check, .. },
                Override::Force {
                    node: n, check: c, ..
                },
            ) => node == n && check == c,
            _ => false,
        };
        let before = self.overrides.clone();
        // One forced verdict per check: forcing it again replaces it, clearing removes it
        // whichever way it was forced.
        self.overrides.retain(|o| !same_check(o));
        if set {
            self.overrides.insert(wanted.clone());
        } else {
            self.overrides.remove(&wanted);
        }
        let changed = self.overrides != before;
        if !changed {
            return Ok(out);
        }
        let event = Event {
            at: now.wall,
            kind: EventKind::Override {
                action: format!("{}{wanted}", if set { "" } else { "undo " }),
            },
        };
        out.push(Action::Notify(event));
        self.nodes[node_index].drained = self
            .overrides
            .iter()
            .any(|o| matches!(o, Override::Drain { node } if *node == self.nodes[node_index].name));
        self.update_node(node_index, now, &mut out);
        self.evaluate(now, &mut out);
        Ok(out)
    }

    /// The overrides in force.
    pub fn overrides(&self) -> impl Iterator<Item = &Override> {
        self.overrides.iter()
    }

    fn forced(&self, node: &NodeName, check: &CheckName) -> Option<Health> {
        self.overrides.iter().find_map(|o| match o {
            Override::Force {
                node: n,
                check: c,
                health,
            } if n == node && c == check => Some(*health),
            _ => None,
        })
    }

    fn node_index(&self, name: &NodeName) -> Result<usize, ArbiterError> {
        self.spec
            .nodes
            .iter()
            .position(|n| &n.name == name)
            .ok_or_else(|| ArbiterError::UnknownNode {
                name: name.to_string(),
                known: self
                    .spec
                    .nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    fn check_index(&self, name: &CheckName) -> Result<usize, ArbiterError> {
        self.spec
            .checks
            .iter()
            .position(|c| &c.name == name)
            .ok_or_else(|| ArbiterError::UnknownCheck {
                name: name.to_string(),
                known: self
                    .spec
                    .checks
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Applies hysteresis to one check; returns the transition's event, if any.
    fn update_check(
        &mut self,
        node_index: usize,
        check_index: usize,
        observation: Observation,
    ) -> Option<Action> {
        let spec = &self.spec.checks[check_index];
        let state = &mut self.checks[node_index][check_index];
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
            // The first probe is the first verdict: no cold-start wait, no answer from ignorance.
            (Health::Unknown, Outcome::Healthy { .. }) => Health::Up,
            (Health::Unknown, Outcome::Failed { .. }) => Health::Down,
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

    /// The health a node's critical checks give it.
    fn node_health(&self, node_index: usize) -> Health {
        let mut health = Health::Up;
        let node = &self.spec.nodes[node_index].name;
        for (spec, state) in self.spec.checks.iter().zip(&self.checks[node_index]) {
            if !spec.critical {
                continue;
            }
            match self.forced(node, &spec.name).unwrap_or(state.health) {
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

    /// Asks the policy (or the all-down rule) for the answer and publishes a change.
    fn evaluate(&mut self, now: Moment, out: &mut Vec<Action>) {
        if self.nodes.iter().any(|n| n.health == Health::Unknown) {
            return;
        }
        let previous = self.current.clone();
        if !self.nodes.iter().any(NodeView::is_available) {
            self.recheck_at = None;
            if self.all_down_active {
                return;
            }
            self.all_down_active = true;
            let rule = self.spec.all_down;
            let answer = match rule {
                AllDown::KeepLast => previous.clone(),
                AllDown::ServeAll => self.nodes.iter().map(|n| n.name.clone()).collect(),
                AllDown::ServePrimary => vec![self
                    .policy
                    .primary()
                    .cloned()
                    .unwrap_or_else(|| self.nodes[0].name.clone())],
            };
            let event = Event {
                at: now.wall,
                kind: EventKind::AllDown {
                    rule,
                    answer: answer.clone(),
                },
            };
            self.damper.pass(event, now, out);
            if !answer.is_empty() && answer != previous {
                self.current = answer;
                out.push(Action::Publish(self.publication_for(&self.current)));
            }
            return;
        }
        self.all_down_active = false;
        let view = ClusterView {
            now,
            nodes: &self.nodes,
            current: &previous,
            failback_requested: self.failback_requested,
        };
        let decision = self.policy.decide(&view);
        self.recheck_at = decision.recheck_at;
        // Unknown names and empty answers are never published.
        let answer: Vec<NodeName> = decision
            .answer
            .into_iter()
            .filter(|n| self.nodes.iter().any(|v| &v.name == n))
            .collect();
        if answer.is_empty() || answer == previous {
            return;
        }
        if let Some((refused, until)) = &self.vetoed {
            if *refused == answer && now.mono < *until {
                return;
            }
        }
        let kind = self.classify(&previous, &answer);
        self.current = answer;
        self.damper.pass(Event { at: now.wall, kind }, now, out);
        out.push(Action::Publish(self.publication_for(&self.current)));
    }

    /// Names a change of answer: away from a node that is not up is a failover; towards a node
    /// ranked before every previous one is a failback; anything else is a change.
    fn classify(&self, from: &[NodeName], to: &[NodeName]) -> EventKind {
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
                degraded: self.degraded_checks(&to),
                from,
                to,
                from_addresses,
                to_addresses,
            }
        } else if failback {
            EventKind::Failback {
                from,
                to,
                from_addresses,
                to_addresses,
            }
        } else {
            EventKind::AnswerChanged {
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

    fn publication_for(&self, nodes: &[NodeName]) -> Publication {
        let addresses = self.addresses_of(nodes);
        Publication {
            nodes: nodes.to_vec(),
            answers: self
                .spec
                .managed
                .iter()
                .map(|m| ManagedAnswer {
                    name: m.name.clone(),
                    ttl: m.ttl,
                    addresses: addresses.clone(),
                })
                .collect(),
        }
    }
}

impl Arbiter {
    /// The non-critical checks of `nodes` that are down (forced or probed), with their last
    /// error: what a failover to them may be missing.
    fn degraded_checks(&self, nodes: &[NodeName]) -> Vec<DegradedCheck> {
        let mut degraded = Vec::new();
        for name in nodes {
            let Some(index) = self.spec.nodes.iter().position(|n| &n.name == name) else {
                continue;
            };
            for (spec, state) in self.spec.checks.iter().zip(&self.checks[index]) {
                let health = self.forced(name, &spec.name).unwrap_or(state.health);
                if spec.critical || health != Health::Down {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use crate::fence::{FenceStep, Veto};
    use crate::model::FailureClass;
    use crate::policy::{ActivePassive, AllHealthy, Failback};
    use std::time::Duration;

    const INTERVAL: Duration = Duration::from_secs(2);

    fn spec(all_down: AllDown) -> ClusterSpec {
        ClusterSpec {
            nodes: vec![
                NodeSpec::new("master", ["10.1.0.1".parse().unwrap()]),
                NodeSpec::new("slave", ["10.2.0.2".parse().unwrap()]),
            ],
            checks: vec![CheckSpec::new("http", true), CheckSpec::new("ssh", false)],
            managed: vec![ManagedName::new("@", 10), ManagedName::new("www", 10)],
            all_down,
            damping: Damping::default(),
        }
    }

    fn active_passive(failback: Failback) -> Box<dyn Policy> {
        Box::new(ActivePassive::new(
            vec!["master".into(), "slave".into()],
            failback,
        ))
    }

    fn auto_30s() -> Box<dyn Policy> {
        active_passive(Failback::Auto {
            after: Duration::from_secs(30),
        })
    }

    /// A scripted cluster on a clock that only moves when the test says so.
    struct Script {
        arbiter: Arbiter,
        now: Moment,
        actions: Vec<Action>,
    }

    impl Script {
        fn new(spec: ClusterSpec, policy: Box<dyn Policy>) -> Self {
            Self {
                arbiter: Arbiter::new(spec, policy).unwrap(),
                now: Moment::now(),
                actions: Vec::new(),
            }
        }

        fn probe(&mut self, node: &str, check: &str, ok: bool) -> Vec<Action> {
            let outcome = if ok {
                Outcome::healthy("HTTP 200")
            } else {
                Outcome::failed(FailureClass::Unreachable, "connection refused")
            };
            let actions = self.arbiter.observe(Observation {
                node: node.into(),
                check: check.into(),
                outcome,
                at: self.now,
            });
            self.actions.extend(actions.iter().cloned());
            actions
        }

        /// One probe round of `http` on both nodes, then the clock moves one interval.
        fn round(&mut self, master_ok: bool, slave_ok: bool) -> Vec<Action> {
            let mut actions = self.probe("master", "http", master_ok);
            actions.extend(self.probe("slave", "http", slave_ok));
            self.advance(INTERVAL);
            actions
        }

        fn advance(&mut self, by: Duration) {
            self.now = self.now + by;
            let actions = self.arbiter.tick(self.now);
            self.actions.extend(actions);
        }

        fn published(&self) -> Vec<Vec<NodeName>> {
            published(&self.actions)
        }

        fn notified(&self) -> Vec<&'static str> {
            self.actions
                .iter()
                .filter_map(|a| match a {
                    Action::Notify(e) => Some(e.name()),
                    _ => None,
                })
                .collect()
        }
    }

    fn published(actions: &[Action]) -> Vec<Vec<NodeName>> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Publish(p) => Some(p.nodes.clone()),
                _ => None,
            })
            .collect()
    }

    fn names(list: &[&str]) -> Vec<NodeName> {
        list.iter().map(NodeName::new).collect()
    }

    #[test]
    fn nothing_is_published_before_every_node_has_a_verdict() {
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        assert!(published(&s.probe("master", "http", true)).is_empty());
        // A non-critical check does not complete the picture.
        assert!(published(&s.probe("slave", "ssh", true)).is_empty());
        let actions = s.probe("slave", "http", true);
        assert_eq!(published(&actions), vec![names(&["master"])]);
        let publication = s.arbiter.publication().unwrap();
        assert_eq!(publication.answers.len(), 2);
        assert_eq!(
            publication.answers[1].addresses,
            vec!["10.1.0.1".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn three_failures_take_a_check_down_two_do_not() {
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        s.round(true, true);
        s.round(false, true);
        s.round(false, true);
        s.round(true, true);
        assert_eq!(
            s.published(),
            vec![names(&["master"])],
            "2 failures then a success: still up"
        );
        assert_eq!(s.arbiter.status().nodes[0].health, Health::Up);
        s.round(false, true);
        s.round(false, true);
        assert_eq!(s.arbiter.status().nodes[0].health, Health::Up);
        let actions = s.round(false, true);
        assert_eq!(s.arbiter.status().nodes[0].health, Health::Down);
        assert_eq!(published(&actions), vec![names(&["slave"])]);
        let kinds: Vec<&str> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Notify(e) => Some(e.name()),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, ["check-down", "node-down", "failover"]);
        let Some(Action::Notify(Event {
            kind:
                EventKind::CheckDown {
                    error,
                    consecutive_failures,
                    ..
                },
            ..
        })) = actions.first()
        else {
            panic!("first action should be the check-down event: {actions:?}");
        };
        assert_eq!(error, "connection refused");
        assert_eq!(*consecutive_failures, 3);
    }

    #[test]
    fn rise_two_needs_two_successes() {
        let mut spec = spec(AllDown::KeepLast);
        spec.checks[0].rise = 2;
        let mut s = Script::new(spec, auto_30s());
        s.round(true, true);
        for _ in 0..3 {
            s.round(false, true);
        }
        s.round(true, true);
        assert_eq!(s.arbiter.status().nodes[0].health, Health::Down);
        s.round(true, true);
        assert_eq!(s.arbiter.status().nodes[0].health, Health::Up);
    }

    #[test]
    fn failback_waits_for_failback_after() {
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        s.round(true, true);
        for _ in 0..3 {
            s.round(false, true);
        }
        assert_eq!(s.published().last().unwrap(), &names(&["slave"]));
        // Master comes back at this moment; the answer stays on slave for 30 s.
        let back_at = s.now;
        s.round(true, true);
        while s.now.since(back_at) < Duration::from_secs(30) {
            assert_eq!(s.published().last().unwrap(), &names(&["slave"]));
            assert!(s.arbiter.next_deadline().is_some());
            s.round(true, true);
        }
        assert_eq!(s.published().last().unwrap(), &names(&["master"]));
        assert!(s.notified().contains(&"failback"));
    }

    #[test]
    fn failback_timer_fires_without_new_observations() {
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        s.round(true, true);
        for _ in 0..3 {
            s.round(false, true);
        }
        s.probe("master", "http", true);
        let deadline = s.arbiter.next_deadline().unwrap();
        assert_eq!(deadline, s.now.mono + Duration::from_secs(30));
        s.advance(Duration::from_secs(29));
        assert_eq!(s.published().last().unwrap(), &names(&["slave"]));
        s.advance(Duration::from_secs(1));
        assert_eq!(s.published().last().unwrap(), &names(&["master"]));
    }

    #[test]
    fn a_relapse_during_failback_after_restarts_the_wait() {
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        s.round(true, true);
        for _ in 0..3 {
            s.round(false, true);
        }
        s.round(true, true); // master up again
        for _ in 0..3 {
            s.round(false, true); // and down again
        }
        s.round(true, true);
        for _ in 0..10 {
            s.round(true, true); // 22 s since it came back the second time
        }
        assert_eq!(s.published().last().unwrap(), &names(&["slave"]));
        for _ in 0..5 {
            s.round(true, true);
        }
        assert_eq!(s.published().last().unwrap(), &names(&["master"]));
    }

    #[test]
    fn manual_failback_waits_for_the_operator() {
        let mut s = Script::new(spec(AllDown::KeepLast), active_passive(Failback::Manual));
        s.round(true, true);
        for _ in 0..3 {
            s.round(false, true);
        }
        for _ in 0..100 {
            s.round(true, true);
        }
        assert_eq!(s.published().last().unwrap(), &names(&["slave"]));
        let actions = s.arbiter.request_failback(s.now);
        assert_eq!(published(&actions), vec![names(&["master"])]);
    }

    #[test]
    fn failover_happens_at_once_when_the_active_node_dies() {
        // No failback_after wait applies to a failover.
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        s.round(true, true);
        for _ in 0..3 {
            s.round(false, true);
        }
        s.round(true, true);
        s.round(true, true);
        let len = s.published().len();
        for _ in 0..3 {
            s.round(true, false);
        }
        assert_eq!(s.published().len(), len + 1);
        assert_eq!(s.published().last().unwrap(), &names(&["master"]));
        assert!(s.notified().iter().filter(|k| **k == "failover").count() >= 2);
    }

    fn all_down_case(rule: AllDown) -> Script {
        let mut s = Script::new(spec(rule), auto_30s());
        s.round(true, true);
        for _ in 0..3 {
            s.round(true, false);
        }
        for _ in 0..3 {
            s.round(false, false);
        }
        s
    }

    #[test]
    fn all_down_keep_last_keeps_the_answer() {
        let s = all_down_case(AllDown::KeepLast);
        assert_eq!(s.published(), vec![names(&["master"])]);
        assert!(s.notified().contains(&"all-down"));
        assert!(s.arbiter.status().all_down);
    }

    #[test]
    fn all_down_serve_all_publishes_every_node() {
        let s = all_down_case(AllDown::ServeAll);
        assert_eq!(s.published().last().unwrap(), &names(&["master", "slave"]));
    }

    #[test]
    fn all_down_serve_primary_publishes_the_first_in_order() {
        let mut s = Script::new(spec(AllDown::ServePrimary), auto_30s());
        s.round(true, true);
        for _ in 0..3 {
            s.round(false, true);
        }
        assert_eq!(s.published().last().unwrap(), &names(&["slave"]));
        for _ in 0..3 {
            s.round(false, false);
        }
        assert_eq!(s.published().last().unwrap(), &names(&["master"]));
        // Recovery of one node leaves the all-down state.
        s.round(false, true);
        assert_eq!(s.published().last().unwrap(), &names(&["slave"]));
        assert!(!s.arbiter.status().all_down);
    }

    #[test]
    fn all_down_at_start_publishes_nothing_with_keep_last() {
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        s.round(false, false);
        assert!(s.published().is_empty());
        assert!(s.notified().contains(&"all-down"));
    }

    #[test]
    fn all_healthy_publishes_every_up_node() {
        let mut s = Script::new(spec(AllDown::KeepLast), Box::new(AllHealthy));
        s.round(true, true);
        assert_eq!(s.published(), vec![names(&["master", "slave"])]);
        for _ in 0..3 {
            s.round(true, false);
        }
        assert_eq!(s.published().last().unwrap(), &names(&["master"]));
        s.round(true, true);
        assert_eq!(s.published().last().unwrap(), &names(&["master", "slave"]));
        let publication = s.arbiter.publication().unwrap();
        assert_eq!(publication.answers[0].addresses.len(), 2);
    }

    #[test]
    fn a_check_failing_every_other_probe_never_changes_state() {
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        for i in 0..1000 {
            s.round(i % 2 == 0, true);
        }
        assert_eq!(s.published(), vec![names(&["master"])]);
        assert!(s.notified().len() <= 1, "{:?}", s.notified());
    }

    #[test]
    fn a_flapping_check_gives_a_bounded_number_of_notifications() {
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        // Down for three probes, up for one, for an hour: 450 transitions of the check.
        let rounds = 3600 / INTERVAL.as_secs() as usize;
        for i in 0..rounds {
            s.round(i % 4 == 3, true);
        }
        let transitions = s
            .actions
            .iter()
            .filter(
                |a| matches!(a, Action::Notify(e) | Action::Record(e) if e.name() == "check-down"),
            )
            .count();
        assert!(transitions > 200, "the script should flap: {transitions}");
        let notified = s.notified().len();
        // Per 10-minute window and subject at most max_changes + Flapping + Settled: three
        // subjects (check, node, answer) over six windows.
        assert!(notified <= 3 * 6 * 6, "{notified} notifications");
        assert!(s.notified().contains(&"flapping"));
        // The answer does not flap: failback_after holds it on the slave.
        assert!(s.published().len() <= 3, "{:?}", s.published());
        // After it stops flapping a window later, one summary arrives.
        for _ in 0..400 {
            s.round(true, true);
        }
        assert!(s.notified().contains(&"settled"));
        assert!(s.arbiter.status().nodes[0].checks[0].health == Health::Up);
    }

    #[test]
    fn the_same_inputs_give_the_same_actions() {
        let run = || {
            let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
            s.now = Moment {
                mono: s.now.mono,
                wall: SystemTime::UNIX_EPOCH,
            };
            for i in 0..200 {
                s.round(i % 5 != 0 && i % 7 != 0, i % 11 != 0);
            }
            s.actions
        };
        // Monotonic bases differ between runs; compare what a user sees.
        let a: Vec<String> = run().iter().map(|a| format!("{a:?}")).collect();
        let b: Vec<String> = run().iter().map(|a| format!("{a:?}")).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn drain_moves_the_answer_away_and_undrain_brings_it_back() {
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        s.round(true, true);
        let drain = Override::Drain {
            node: "master".into(),
        };
        let actions = s
            .arbiter
            .apply_override(drain.clone(), true, s.now)
            .unwrap();
        assert_eq!(published(&actions), vec![names(&["slave"])]);
        assert!(s.arbiter.status().nodes[0].drained);
        assert_eq!(
            s.arbiter.status().nodes[0].health,
            Health::Up,
            "health is still measured"
        );
        for _ in 0..20 {
            s.round(true, true);
        }
        assert_eq!(
            s.arbiter.answer(),
            names(&["slave"]),
            "a drained node is not failed back to"
        );
        // Setting it twice changes nothing.
        assert!(s
            .arbiter
            .apply_override(drain.clone(), true, s.now)
            .unwrap()
            .is_empty());
        let actions = s.arbiter.apply_override(drain, false, s.now).unwrap();
        assert_eq!(published(&actions), vec![names(&["master"])]);
    }

    #[test]
    fn forcing_a_check_down_fails_the_node_over_and_clearing_it_restores() {
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        s.round(true, true);
        let force = Override::Force {
            node: "master".into(),
            check: "http".into(),
            health: Health::Down,
        };
        let actions = s
            .arbiter
            .apply_override(force.clone(), true, s.now)
            .unwrap();
        assert_eq!(published(&actions), vec![names(&["slave"])]);
        let status = s.arbiter.status();
        assert_eq!(status.nodes[0].health, Health::Down);
        assert_eq!(status.nodes[0].checks[0].forced, Some(Health::Down));
        assert_eq!(status.overrides, vec![force.clone()]);
        s.arbiter.apply_override(force, false, s.now).unwrap();
        assert_eq!(s.arbiter.status().nodes[0].health, Health::Up);
    }

    #[test]
    fn overrides_naming_unknown_things_are_refused() {
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        let err = s
            .arbiter
            .apply_override(
                Override::Drain {
                    node: "mastr".into(),
                },
                true,
                s.now,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown node \"mastr\" (nodes: master, slave)"
        );
        let err = s
            .arbiter
            .apply_override(
                Override::Force {
                    node: "master".into(),
                    check: "htp".into(),
                    health: Health::Up,
                },
                true,
                s.now,
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "unknown check \"htp\" (checks: http, ssh)");
    }

    #[test]
    fn an_assumed_answer_is_kept_until_the_policy_moves_it() {
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        s.arbiter.assume_published(names(&["slave", "nobody"]));
        assert_eq!(s.arbiter.answer(), names(&["slave"]));
        // Both up: master is preferred, but failback_after applies as for any failback.
        s.round(true, true);
        assert!(s.published().is_empty());
        for _ in 0..15 {
            s.round(true, true);
        }
        assert_eq!(s.published(), vec![names(&["master"])]);
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        let mut s = spec(AllDown::KeepLast);
        s.nodes.push(s.nodes[0].clone());
        let err = Arbiter::new(s, auto_30s()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "duplicate node name \"master\": names must be unique"
        );
        let mut s = spec(AllDown::KeepLast);
        s.checks[0].fall = 0;
        assert!(matches!(
            Arbiter::new(s, auto_30s()),
            Err(ArbiterError::ZeroThreshold(_))
        ));
    }

    #[test]
    fn the_publish_context_says_how_long_the_old_primary_has_been_down() {
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        s.round(true, true);
        let failed_at = s.now;
        let mut moved = Vec::new();
        for _ in 0..3 {
            moved.extend(s.round(false, true));
        }
        let publication = match moved.iter().find(|a| matches!(a, Action::Publish(_))) {
            Some(Action::Publish(p)) => p.clone(),
            _ => panic!("no failover: {moved:?}"),
        };
        // The third failure came two intervals after the first; one more interval has passed.
        let context = s
            .arbiter
            .publish_context(s.now, &names(&["master"]), &publication);
        assert_eq!(context.to, names(&["slave"]));
        assert_eq!(context.leaving.len(), 1);
        assert_eq!(context.leaving[0].health, Health::Down);
        assert_eq!(context.leaving[0].down_for, Some(INTERVAL));
        assert!(s.now.since(failed_at) > INTERVAL);
        // A failback leaves a node that is up: no down time.
        let back = s.arbiter.publish_context(
            s.now,
            &names(&["slave"]),
            &s.arbiter.publication_for(&names(&["master"])),
        );
        assert_eq!(back.leaving[0].health, Health::Up);
        assert_eq!(back.leaving[0].down_for, None);
    }

    #[test]
    fn a_vetoed_failover_keeps_the_answer_and_is_decided_again_after_retry_after() {
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        s.round(true, true);
        for _ in 0..3 {
            s.round(false, true);
        }
        assert_eq!(s.arbiter.answer(), names(&["slave"]));
        let veto = Veto {
            reason: "slave's SQL thread is 42 s behind".into(),
            steps: vec![FenceStep::done(&"master".into(), "set read_only = 1", "ok")],
            retry_after: Duration::from_secs(10),
        };
        let actions = s.arbiter.publish_vetoed(
            s.now,
            "mysql fencing",
            names(&["master"]),
            names(&["slave"]),
            veto,
        );
        let kinds: Vec<&str> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Notify(e) => Some(e.name()),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, ["fence-step", "publish-vetoed"]);
        let Some(Action::Notify(refusal)) = actions.last() else {
            panic!("{actions:?}")
        };
        assert_eq!(
            refusal.to_string(),
            "mysql fencing refused to move the answer to slave: slave's SQL thread is 42 s behind; the answer stays on master, decided again in 10s"
        );
        assert_eq!(s.arbiter.answer(), names(&["master"]));
        assert!(published(&actions).is_empty());
        // New probes within the hold do not publish the refused answer again...
        let before = s.published().len();
        for _ in 0..4 {
            s.round(false, true);
        }
        assert_eq!(s.published().len(), before);
        assert_eq!(s.arbiter.answer(), names(&["master"]));
        // ...and once it has passed (10 s after the veto) the arbiter decides again.
        s.round(false, true);
        assert_eq!(s.published().len(), before + 1);
        assert_eq!(s.arbiter.answer(), names(&["slave"]));
    }

    #[test]
    fn a_veto_of_an_answer_no_longer_current_changes_nothing() {
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        s.round(true, true);
        let veto = Veto {
            reason: "late".into(),
            steps: Vec::new(),
            retry_after: Duration::from_secs(10),
        };
        let actions =
            s.arbiter
                .publish_vetoed(s.now, "f", names(&["master"]), names(&["slave"]), veto);
        assert_eq!(actions.len(), 1, "the refusal is still reported");
        assert_eq!(s.arbiter.answer(), names(&["master"]));
        assert!(s.arbiter.next_deadline().is_none());
    }
}
