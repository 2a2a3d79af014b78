//! One policy's answer: the managed names it decides, the nodes it may pick, what it decided.

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use super::error::ArbiterError;
use super::spec::ClusterSpec;
use crate::model::NodeName;
use crate::policy::{AllDown, Policy};

/// A policy other than the default one, for the managed names whose
/// [`policy`](super::ManagedName::policy) is its key (`www` and `@` active-passive, `api` on
/// every live node of a subset, in one zone).
pub struct NamedPolicy {
    /// The key managed names use to choose it.
    pub key: String,
    /// The policy.
    pub policy: Box<dyn Policy>,
    /// The nodes it chooses among, in config order; empty for every node. Its names' all-down
    /// rule looks at these nodes only.
    pub nodes: Vec<NodeName>,
    /// What its names publish when every one of its nodes is down; `None` for the spec's
    /// [`all_down`](super::ClusterSpec::all_down).
    pub all_down: Option<AllDown>,
}

impl NamedPolicy {
    /// The policy `policy` under the key `key`, choosing among every node.
    pub fn new(key: &str, policy: Box<dyn Policy>) -> Self {
        Self {
            key: key.to_owned(),
            policy,
            nodes: Vec::new(),
            all_down: None,
        }
    }

    /// The same policy, choosing among `nodes` only.
    pub fn among(self, nodes: Vec<NodeName>) -> Self {
        Self { nodes, ..self }
    }

    /// The same policy, with its own all-down rule.
    pub fn all_down(self, rule: AllDown) -> Self {
        Self {
            all_down: Some(rule),
            ..self
        }
    }
}

impl std::fmt::Debug for NamedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedPolicy")
            .field("key", &self.key)
            .field("policy", &self.policy.name())
            .field("nodes", &self.nodes)
            .field("all_down", &self.all_down)
            .finish()
    }
}

/// The managed names one policy decides, and what it decided for them. The arbiter's first
/// group is always the default policy's (its answer is [`Arbiter::answer`](super::Arbiter::answer)),
/// even when no name follows it: then it decides nothing and its answer stays empty.
pub(super) struct AnswerGroup {
    /// The named policy's key; `None` for the default policy.
    pub(super) key: Option<String>,
    pub(super) policy: Box<dyn Policy>,
    /// Indices of the nodes it may choose, in config order.
    pub(super) nodes: Vec<usize>,
    /// What its names publish when every one of its nodes is down.
    pub(super) all_down: AllDown,
    /// Indices in the spec's `managed` of the names it decides.
    pub(super) names: Vec<usize>,
    /// The nodes published now for its names (empty before the first publication).
    pub(super) current: Vec<NodeName>,
    /// Every one of its nodes is down and the all-down rule is in force.
    pub(super) all_down_active: bool,
    /// When its policy asked to decide again (`failback_after`).
    pub(super) recheck_at: Option<Instant>,
    /// An answer a fence refused, held back until the instant.
    pub(super) vetoed: Option<(Vec<NodeName>, Instant)>,
}

impl AnswerGroup {
    pub(super) fn new(
        key: Option<String>,
        policy: Box<dyn Policy>,
        (nodes, all_down): (Vec<usize>, AllDown),
        names: Vec<usize>,
    ) -> Self {
        Self {
            key,
            policy,
            nodes,
            all_down,
            names,
            current: Vec::new(),
            all_down_active: false,
            recheck_at: None,
            vetoed: None,
        }
    }
}

/// The default policy's group, then one per named policy some managed name uses.
pub(super) fn groups(
    spec: &ClusterSpec,
    default: Box<dyn Policy>,
    named: Vec<NamedPolicy>,
) -> Result<Vec<AnswerGroup>, ArbiterError> {
    let every_node: Vec<usize> = (0..spec.nodes.len()).collect();
    let with_key = |key: Option<&str>| -> Vec<usize> {
        (0..spec.managed.len())
            .filter(|&m| spec.managed[m].policy.as_deref() == key)
            .collect()
    };
    let mut groups = vec![AnswerGroup::new(
        None,
        default,
        (every_node.clone(), spec.all_down),
        with_key(None),
    )];
    let mut keys = HashSet::new();
    for policy in named {
        if !keys.insert(policy.key.clone()) {
            return Err(ArbiterError::Duplicate {
                what: "policy",
                name: policy.key,
            });
        }
        let nodes = if policy.nodes.is_empty() {
            every_node.clone()
        } else {
            let mut nodes = policy
                .nodes
                .iter()
                .map(|n| spec.node_index(n))
                .collect::<Result<Vec<_>, _>>()?;
            nodes.sort_unstable();
            nodes.dedup();
            nodes
        };
        let names = with_key(Some(&policy.key));
        if !names.is_empty() {
            groups.push(AnswerGroup::new(
                Some(policy.key),
                policy.policy,
                (nodes, policy.all_down.unwrap_or(spec.all_down)),
                names,
            ));
        }
    }
    if let Some(orphan) = spec
        .managed
        .iter()
        .find(|m| m.policy.as_ref().is_some_and(|k| !keys.contains(k)))
    {
        return Err(ArbiterError::UnknownPolicy {
            name: orphan.name.clone(),
            key: orphan.policy.clone().unwrap_or_default(),
            known: keys
                .into_iter()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(groups)
}
