//! The arbiter's status report: every node, every check, the answer and the overrides in force.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::Serialize;

use super::overrides::Override;
use crate::model::{CheckName, Health, NodeName, Outcome};

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
    /// Each managed name: its policy and its answer (names with a policy of their own may
    /// answer differently from `answer`).
    pub names: Vec<NameStatus>,
}

/// The answer of one managed name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NameStatus {
    /// The name (`@`, `www`, `api`).
    pub name: String,
    /// Its policy's name (`active-passive`).
    pub policy: String,
    /// The key of its named policy; `None` for the default policy.
    pub key: Option<String>,
    /// The nodes published for it now (empty before its first publication).
    pub answer: Vec<NodeName>,
    /// Whether every node its policy chooses among is down and the all-down rule is in force.
    pub all_down: bool,
}
