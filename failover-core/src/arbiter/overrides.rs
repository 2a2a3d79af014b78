//! Operator overrides (drain a node, force a check's verdict) and the set of them in force.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::model::{CheckName, Health, NodeName};

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

/// The overrides in force: at most one forced verdict per node and check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Overrides(BTreeSet<Override>);

impl Overrides {
    /// Sets (`set = true`) or clears `wanted`; returns whether anything changed.
    pub(super) fn apply(&mut self, wanted: &Override, set: bool) -> bool {
        let same_check = |o: &Override| match (o, wanted) {
            (
                Override::Force { node, check, .. },
                Override::Force {
                    node: n, check: c, ..
                },
            ) => node == n && check == c,
            _ => false,
        };
        let before = self.0.clone();
        // One forced verdict per check: forcing it again replaces it, clearing removes it
        // whichever way it was forced.
        self.0.retain(|o| !same_check(o));
        if set {
            self.0.insert(wanted.clone());
        } else {
            self.0.remove(wanted);
        }
        self.0 != before
    }

    /// The verdict forced on `check` of `node`, if any.
    pub(super) fn forced(&self, node: &NodeName, check: &CheckName) -> Option<Health> {
        self.0.iter().find_map(|o| match o {
            Override::Force {
                node: n,
                check: c,
                health,
            } if n == node && c == check => Some(*health),
            _ => None,
        })
    }

    /// Whether `node` is drained.
    pub(super) fn drains(&self, node: &NodeName) -> bool {
        self.0
            .iter()
            .any(|o| matches!(o, Override::Drain { node: n } if n == node))
    }

    /// The overrides in force, in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Override> {
        self.0.iter()
    }
}
