//! What survives a restart or a reload: the arbiter's [`ArbiterState`], taken by
//! `Arbiter::snapshot` and started from by `Arbiter::restore`.

use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::check::CheckState;
use super::error::ArbiterError;
use super::machine::Arbiter;
use super::overrides::Override;
use crate::model::{CheckName, Health, Moment, NodeName, Outcome};

/// The version of [`ArbiterState`] this arbiter writes and reads.
pub const STATE_VERSION: u32 = 1;

/// What an arbiter knows, for a new arbiter (after a restart or a reload) to start from.
///
/// Kept: per check and node its verdict, since when, its current run of failures or successes,
/// its last probe; per node its health and since when; per managed name the published answer,
/// whether the all-down rule is in force, and a pending policy timer (a failback waiting for
/// `failback_after`); the operator's overrides. Not kept: flap damping's windows (they start
/// afresh), a fence's veto hold (the fence is asked again when the answer moves), a manual
/// failback request.
///
/// Times are wall-clock (RFC 3339 in JSON), so that they mean something to the next process;
/// [`Arbiter::restore`] turns them back into monotonic instants.
///
/// # Restore rules
///
/// - A check restored as up goes down only after `fall` failures in a row (counting those
///   before the restart), one restored as down comes up after `rise` successes: a restart on a
///   lossy link moves nothing by itself.
/// - The restored answer is the published one: restoring publishes nothing and notifies
///   nothing; the answer moves only when a decision really changes it.
/// - A pending failback keeps its deadline (by the wall clock, across the restart).
/// - A state older than [`Startup::max_state_age`](super::Startup::max_state_age) (by the wall
///   clock at restore; or saved that much in the future, a clock that jumped), or of another
///   [`STATE_VERSION`], is not restored: the arbiter starts as at a first start, where
///   [`Startup::first_verdict`](super::Startup::first_verdict) decides the first verdicts.
///   The daemon writes its state at least every few probe intervals, so that a state that old
///   means the daemon was stopped that long, and what it knew is no better than nothing.
/// - What no longer fits the spec (a node, check, name or override removed by a reload) is
///   dropped; what the state does not know (a new check) starts as at a first start.
/// - A time that the new process's monotonic clock cannot represent (before its boot, after a
///   reboot) becomes the moment of restore: a pending failback then waits a whole
///   `failback_after` again, never less.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use failover_core::*;
///
/// let spec = || {
///     ClusterSpec::new(
///         vec![
///             NodeSpec::new("master", ["10.1.0.1".parse().unwrap()]),
///             NodeSpec::new("slave", ["10.2.0.2".parse().unwrap()]),
///         ],
///         vec![CheckSpec::new("http", true)],
///         vec![ManagedName::new("@", 10)],
///     )
///     .with_startup(Startup { first_verdict: FirstVerdict::AfterFall, ..Startup::default() })
/// };
/// let policy = || -> Box<dyn Policy> {
///     Box::new(ActivePassive::new(vec!["master".into(), "slave".into()], Failback::Manual))
/// };
/// let probe = |node: &str, ok: bool, at: Moment| Observation {
///     node: node.into(),
///     check: "http".into(),
///     outcome: if ok { Outcome::healthy("HTTP 200") } else {
///         Outcome::failed(FailureClass::Timeout, "no answer within 2s")
///     },
///     at,
/// };
/// let t0 = Moment::now();
/// let mut before = Arbiter::new(spec(), policy()).unwrap();
/// before.observe(probe("master", true, t0));
/// before.observe(probe("slave", true, t0));
/// let saved = serde_json::to_string(&before.snapshot(t0)).unwrap();
///
/// // A new process five seconds later, on a lossy link: master's first probe is lost.
/// let t1 = t0 + Duration::from_secs(5);
/// let mut after = Arbiter::new(spec(), policy()).unwrap();
/// after.restore(&serde_json::from_str(&saved).unwrap(), t1).unwrap();
/// assert_eq!(after.answer().to_vec(), vec![NodeName::new("master")]);
/// assert!(after.observe(probe("master", false, t1)).is_empty(), "nothing moves");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArbiterState {
    /// [`STATE_VERSION`] when written.
    pub version: u32,
    /// When it was taken (wall clock).
    #[serde(with = "humantime_serde")]
    pub saved_at: SystemTime,
    /// Each check on each node.
    pub checks: Vec<CheckRecord>,
    /// Each node.
    pub nodes: Vec<NodeRecord>,
    /// Each managed name's answer.
    pub answers: Vec<AnswerRecord>,
    /// The operator's overrides in force.
    #[serde(default)]
    pub overrides: Vec<Override>,
}

/// One check on one node, in an [`ArbiterState`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// The node.
    pub node: NodeName,
    /// The check.
    pub check: CheckName,
    /// Its verdict.
    pub health: Health,
    /// When the verdict was set.
    #[serde(default, with = "humantime_serde")]
    pub changed_at: Option<SystemTime>,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Successes in a row.
    pub consecutive_successes: u32,
    /// When the current run of failures began.
    #[serde(default, with = "humantime_serde")]
    pub failing_since: Option<SystemTime>,
    /// When it was last probed.
    #[serde(default, with = "humantime_serde")]
    pub last_probe: Option<SystemTime>,
    /// The last probe's outcome.
    #[serde(default)]
    pub last_outcome: Option<Outcome>,
}

/// One node, in an [`ArbiterState`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node.
    pub node: NodeName,
    /// Its health.
    pub health: Health,
    /// When its health last changed.
    #[serde(default, with = "humantime_serde")]
    pub since: Option<SystemTime>,
}

/// One managed name's answer, in an [`ArbiterState`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerRecord {
    /// The managed name (`@`, `www`).
    pub name: String,
    /// The nodes published for it (empty before its first publication).
    pub nodes: Vec<NodeName>,
    /// Whether the all-down rule was in force for it.
    #[serde(default)]
    pub all_down: bool,
    /// When its policy asked to decide again (a failback waiting for `failback_after`).
    #[serde(default, with = "humantime_serde")]
    pub recheck_at: Option<SystemTime>,
}

/// Converts between the wall clock of a state and the monotonic clock of this process.
#[derive(Clone, Copy)]
struct Clocks(Moment);

impl Clocks {
    fn wall(self, at: Instant) -> SystemTime {
        let now = self.0;
        if at >= now.mono {
            now.wall + (at - now.mono)
        } else {
            now.wall
                .checked_sub(now.mono - at)
                .unwrap_or(SystemTime::UNIX_EPOCH)
        }
    }

    fn moment(self, wall: SystemTime) -> Moment {
        let now = self.0;
        let mono = match now.wall.duration_since(wall) {
            Ok(ago) => now.mono.checked_sub(ago).unwrap_or(now.mono),
            Err(ahead) => now.mono + ahead.duration(),
        };
        Moment { mono, wall }
    }
}

impl Arbiter {
    /// What this arbiter knows at `now`, to be saved and given to [`restore`](Arbiter::restore)
    /// after a restart or a reload.
    pub fn snapshot(&self, now: Moment) -> ArbiterState {
        let clocks = Clocks(now);
        let mut checks = Vec::new();
        for (node, states) in self.spec.nodes.iter().zip(&self.checks) {
            for (check, state) in self.spec.checks.iter().zip(states) {
                checks.push(CheckRecord {
                    node: node.name.clone(),
                    check: check.name.clone(),
                    health: state.health,
                    changed_at: state.changed_at.map(|m| m.wall),
                    consecutive_failures: state.consecutive_failures,
                    consecutive_successes: state.consecutive_successes,
                    failing_since: state.failing_since.map(|m| m.wall),
                    last_probe: state.last_probe.map(|m| m.wall),
                    last_outcome: state.last_outcome.clone(),
                });
            }
        }
        let nodes = self
            .nodes
            .iter()
            .map(|view| NodeRecord {
                node: view.name.clone(),
                health: view.health,
                since: view.since.map(|m| m.wall),
            })
            .collect();
        let mut answers = Vec::new();
        for group in &self.groups {
            for &index in &group.names {
                answers.push(AnswerRecord {
                    name: self.spec.managed[index].name.clone(),
                    nodes: group.current.clone(),
                    all_down: group.all_down_active,
                    recheck_at: group.recheck_at.map(|at| clocks.wall(at)),
                });
            }
        }
        ArbiterState {
            version: STATE_VERSION,
            saved_at: now.wall,
            checks,
            nodes,
            answers,
            overrides: self.overrides.iter().cloned().collect(),
        }
    }

    /// Starts this new arbiter (built, nothing observed yet) from `state`, taken by
    /// [`snapshot`](Arbiter::snapshot) before a restart or a reload, at `now`: see
    /// [`ArbiterState`] for the rules. Returns nothing to do: restoring publishes and notifies
    /// nothing (a runtime hands the restored [`publication`](Arbiter::publication) to its
    /// writers, which publish idempotently).
    ///
    /// A state too old or of another version is refused with the reason
    /// ([`ArbiterError::StateTooOld`], [`ArbiterError::StateVersion`]) and the arbiter is left
    /// as it was: as at a first start.
    pub fn restore(&mut self, state: &ArbiterState, now: Moment) -> Result<(), ArbiterError> {
        if state.version != STATE_VERSION {
            return Err(ArbiterError::StateVersion {
                found: state.version,
                supported: STATE_VERSION,
            });
        }
        let max = self.spec.startup.max_state_age;
        let age = match now.wall.duration_since(state.saved_at) {
            Ok(age) => age,
            Err(ahead) => ahead.duration(),
        };
        if age > max {
            return Err(ArbiterError::StateTooOld { age, max });
        }
        let clocks = Clocks(now);
        for wanted in &state.overrides {
            if self.override_fits(wanted) {
                self.overrides.apply(wanted, true);
            }
        }
        for record in &state.checks {
            let (Ok(node), Ok(check)) = (
                self.spec.node_index(&record.node),
                self.spec.check_index(&record.check),
            ) else {
                continue;
            };
            self.checks[node][check] = CheckState {
                health: record.health,
                consecutive_failures: record.consecutive_failures,
                consecutive_successes: record.consecutive_successes,
                last_outcome: record.last_outcome.clone(),
                last_probe: record.last_probe.map(|w| clocks.moment(w)),
                changed_at: record.changed_at.map(|w| clocks.moment(w)),
                failing_since: record.failing_since.map(|w| clocks.moment(w)),
            };
        }
        for index in 0..self.nodes.len() {
            let health = self.node_health(index);
            let name = self.nodes[index].name.clone();
            let recorded = state.nodes.iter().find(|r| r.node == name);
            let since = match recorded {
                Some(r) if r.health == health => r.since.map(|w| clocks.moment(w)),
                _ if health == Health::Unknown => None,
                _ => Some(now),
            };
            let view = &mut self.nodes[index];
            view.health = health;
            view.since = since;
            view.drained = self.overrides.drains(&name);
        }
        for group in &mut self.groups {
            let record = group.names.iter().find_map(|&index| {
                let name = &self.spec.managed[index].name;
                state.answers.iter().find(|a| &a.name == name)
            });
            let Some(record) = record else {
                continue;
            };
            group.current = record
                .nodes
                .iter()
                .filter(|n| group.nodes.iter().any(|&i| &self.spec.nodes[i].name == *n))
                .cloned()
                .collect();
            group.all_down_active = record.all_down;
            group.recheck_at = record.recheck_at.map(|w| clocks.moment(w).mono);
        }
        Ok(())
    }

    /// Whether a saved override still names a node and check of the spec.
    fn override_fits(&self, wanted: &Override) -> bool {
        match wanted {
            Override::Drain { node } => self.spec.node_index(node).is_ok(),
            Override::Force {
                node,
                check,
                health,
            } => {
                *health != Health::Unknown
                    && self.spec.node_index(node).is_ok()
                    && self.spec.check_index(check).is_ok()
            }
        }
    }
}
