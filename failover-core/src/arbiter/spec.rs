//! What an arbiter is built from: the nodes, the checks and the managed names of a cluster.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use super::error::ArbiterError;
use crate::damping::Damping;
use crate::model::{CheckName, NodeName};
use crate::policy::AllDown;

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
    /// Whether this check says something about the node's data (a file mirror, database
    /// replication), so that a failover to a node where it is down is reported as "may be
    /// missing data". A check about a service (SSH, HTTP, DNS) is not (default `false`).
    pub data: bool,
}

/// Failures in a row that take an up check down, unless its spec says otherwise.
pub const DEFAULT_FALL: u32 = 3;
/// Successes in a row that bring a down check up, unless its spec says otherwise.
pub const DEFAULT_RISE: u32 = 1;

impl CheckSpec {
    /// A check with the default `fall` (3) and `rise` (1), about a service, not data.
    pub fn new(name: &str, critical: bool) -> Self {
        Self {
            name: CheckName::new(name),
            critical,
            fall: DEFAULT_FALL,
            rise: DEFAULT_RISE,
            data: false,
        }
    }

    /// The same check, marked as saying something about data (see [`CheckSpec::data`]).
    pub fn about_data(self) -> Self {
        Self { data: true, ..self }
    }
}

/// A name whose answer the arbiter manages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedName {
    /// Relative to the zone's origin (`@`, `www`).
    pub name: String,
    /// TTL of its records in seconds.
    pub ttl: u32,
    /// The key of the named policy that decides this name's answer (see
    /// [`Arbiter::with_policies`](super::Arbiter::with_policies)); `None` follows the default
    /// policy.
    pub policy: Option<String>,
}

impl ManagedName {
    /// A managed name following the default policy.
    pub fn new(name: &str, ttl: u32) -> Self {
        Self {
            name: name.to_owned(),
            ttl,
            policy: None,
        }
    }

    /// The same name, decided by the named policy `key` instead of the default one.
    pub fn with_policy(self, key: &str) -> Self {
        Self {
            policy: Some(key.to_owned()),
            ..self
        }
    }
}

/// How a check that has no verdict yet gets its first one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FirstVerdict {
    /// The first probe gives the first verdict, up or down (the default, and what the arbiter
    /// always did).
    #[default]
    FirstProbe,
    /// A success gives "up" at once, but "down" needs `fall` failures in a row, as for a check
    /// that was up: a daemon that starts with no state (or a state too old to trust) neither
    /// serves from ignorance (nothing is published before every node has a verdict) nor
    /// declares a node down on one lost probe. Since every node must have failed `fall` probes
    /// before it is down, the all-down notice of a daemon started a moment before its web
    /// servers comes only once every node has had its `fall` chances.
    AfterFall,
}

/// How an arbiter starts: the first verdicts, and how old a restored state may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Startup {
    /// How a check with no verdict gets its first one (at a first start, or a check the
    /// restored state does not know).
    pub first_verdict: FirstVerdict,
    /// A state older than this (by the wall clock) is not restored: the arbiter starts as at a
    /// first start. Default 5 minutes; see [`Arbiter::restore`](super::Arbiter::restore).
    pub max_state_age: Duration,
}

impl Default for Startup {
    fn default() -> Self {
        Self {
            first_verdict: FirstVerdict::default(),
            max_state_age: Duration::from_secs(300),
        }
    }
}

/// Everything the arbiter needs to know about the cluster: [`ClusterSpec::new`] with the
/// nodes, checks and managed names, then the `with_` methods for the rest.
#[derive(Clone, Debug)]
#[non_exhaustive]
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
    /// How the arbiter starts (first verdicts, restored state's age).
    pub startup: Startup,
}

impl ClusterSpec {
    /// A spec with these nodes, checks and managed names; every node down keeps the last answer,
    /// damping and startup as their defaults.
    pub fn new(nodes: Vec<NodeSpec>, checks: Vec<CheckSpec>, managed: Vec<ManagedName>) -> Self {
        Self {
            nodes,
            checks,
            managed,
            all_down: AllDown::default(),
            damping: Damping::default(),
            startup: Startup::default(),
        }
    }

    /// What to publish when every node is down.
    pub fn with_all_down(mut self, all_down: AllDown) -> Self {
        self.all_down = all_down;
        self
    }

    /// Flap damping of notifications.
    pub fn with_damping(mut self, damping: Damping) -> Self {
        self.damping = damping;
        self
    }

    /// How the arbiter starts.
    pub fn with_startup(mut self, startup: Startup) -> Self {
        self.startup = startup;
        self
    }

    /// Refuses a spec the arbiter cannot work with: no node, a name used twice, a node with
    /// nothing to publish, a threshold of zero.
    pub(super) fn validate(&self) -> Result<(), ArbiterError> {
        if self.nodes.is_empty() {
            return Err(ArbiterError::NoNodes);
        }
        let mut seen = HashSet::new();
        for node in &self.nodes {
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
        for check in &self.checks {
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
        Ok(())
    }

    /// The index of the node named `name`, or an error naming the known ones.
    pub(super) fn node_index(&self, name: &NodeName) -> Result<usize, ArbiterError> {
        self.nodes
            .iter()
            .position(|n| &n.name == name)
            .ok_or_else(|| ArbiterError::UnknownNode {
                name: name.to_string(),
                known: self
                    .nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The index of the check named `name`, or an error naming the known ones.
    pub(super) fn check_index(&self, name: &CheckName) -> Result<usize, ArbiterError> {
        self.checks
            .iter()
            .position(|c| &c.name == name)
            .ok_or_else(|| ArbiterError::UnknownCheck {
                name: name.to_string(),
                known: self
                    .checks
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}
