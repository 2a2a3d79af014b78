//! The `Policy` trait and the built-in policies: `active-passive` and `all-healthy`.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::model::{Health, Moment, NodeName};

/// One node as a policy sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeView {
    /// The node's name.
    pub name: NodeName,
    /// Up when every critical check is up, down when one is down.
    pub health: Health,
    /// When `health` last changed.
    pub since: Option<Moment>,
    /// An operator drained it: it is not published whatever its health.
    pub drained: bool,
}

impl NodeView {
    /// Up and not drained: a node a policy may publish.
    pub fn is_available(&self) -> bool {
        self.health == Health::Up && !self.drained
    }
}

/// The cluster as a policy sees it when asked to decide.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClusterView<'a> {
    /// Now.
    pub now: Moment,
    /// Every node, in config order.
    pub nodes: &'a [NodeView],
    /// The nodes published now (empty before the first publication).
    pub current: &'a [NodeName],
    /// An operator asked for a failback (`failback = "manual"`); cleared after this decision.
    pub failback_requested: bool,
}

impl ClusterView<'_> {
    /// The view of the node called `name`.
    pub fn node(&self, name: &NodeName) -> Option<&NodeView> {
        self.nodes.iter().find(|n| &n.name == name)
    }

    /// Whether the node called `name` is up and not drained.
    pub fn is_up(&self, name: &NodeName) -> bool {
        self.node(name).is_some_and(NodeView::is_available)
    }

    /// The nodes that are up and not drained, in config order.
    pub fn up_nodes(&self) -> impl Iterator<Item = &NodeView> {
        self.nodes.iter().filter(|n| n.is_available())
    }
}

/// What a policy decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The nodes to publish, in order. An empty answer is never published: the arbiter keeps the
    /// current one.
    pub answer: Vec<NodeName>,
    /// Ask again at this monotonic instant even if nothing is observed meanwhile (a timer such as
    /// `failback_after`).
    pub recheck_at: Option<Instant>,
}

impl Decision {
    /// Publish `answer`, no timer.
    pub fn publish(answer: Vec<NodeName>) -> Self {
        Self {
            answer,
            recheck_at: None,
        }
    }

    /// Keep what is published now.
    pub fn keep(view: &ClusterView<'_>) -> Self {
        Self::publish(view.current.to_vec())
    }
}

/// Decides which nodes the managed names point at.
///
/// # Contract
///
/// - The arbiter calls [`decide`](Policy::decide) after every change of a node's health, when a
///   timer it asked for runs out, and on an operator's request. It must be a pure function of the
///   view and the policy's own state: no I/O, no clock (use `view.now`).
/// - It is only called once every node has a verdict and at least one node is up: the all-down
///   case is the arbiter's, by the configured [`AllDown`] rule, so that no policy can publish an
///   empty answer by accident.
/// - Returning the current answer means "no change"; nothing is published then.
///
/// # Example
///
/// ```
/// use failover_core::{ClusterView, Decision, Policy};
///
/// /// Publishes the up node whose name sorts first: a toy, but deterministic.
/// struct FirstByName;
///
/// impl Policy for FirstByName {
///     fn name(&self) -> &str {
///         "first-by-name"
///     }
///
///     fn decide(&mut self, view: &ClusterView<'_>) -> Decision {
///         let first = view.up_nodes().map(|n| n.name.clone()).min();
///         Decision::publish(first.into_iter().collect())
///     }
/// }
/// ```
pub trait Policy: Send + 'static {
    /// The policy's name, for status and `failoverd check`.
    fn name(&self) -> &str;

    /// Decides the answer for this view.
    fn decide(&mut self, view: &ClusterView<'_>) -> Decision;

    /// The node published by the `serve-primary` all-down rule. Default: the first node in
    /// config order.
    fn primary(&self) -> Option<&NodeName> {
        None
    }
}

/// What to publish when every node is down: an explicit choice, never an accident.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AllDown {
    /// Keep the last answer (what was live is the best guess; default).
    #[default]
    KeepLast,
    /// Publish every node and let clients try them.
    ServeAll,
    /// Publish the primary node.
    ServePrimary,
}

impl fmt::Display for AllDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AllDown::KeepLast => "keep-last",
            AllDown::ServeAll => "serve-all",
            AllDown::ServePrimary => "serve-primary",
        })
    }
}

/// How long a preferred node must be up again before [`Failback::Auto`] returns to it, unless
/// configured otherwise.
pub const DEFAULT_FAILBACK_AFTER: Duration = Duration::from_secs(30);

/// When `active-passive` moves the answer back to a preferred node that came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failback {
    /// Once the preferred node has been up for this long.
    Auto {
        /// How long it must have been up.
        after: Duration,
    },
    /// Only when an operator asks (or the active node fails).
    Manual,
}

/// One active node at a time: the first node in `order` that is up, with failover at once and
/// failback per [`Failback`].
#[derive(Clone, Debug)]
pub struct ActivePassive {
    order: Vec<NodeName>,
    failback: Failback,
}

impl ActivePassive {
    /// A policy preferring the nodes in `order`, first to last.
    pub fn new(order: Vec<NodeName>, failback: Failback) -> Self {
        Self { order, failback }
    }
}

impl Policy for ActivePassive {
    fn name(&self) -> &str {
        "active-passive"
    }

    fn primary(&self) -> Option<&NodeName> {
        self.order.first()
    }

    fn decide(&mut self, view: &ClusterView<'_>) -> Decision {
        let Some(best) = self.order.iter().find(|n| view.is_up(n)) else {
            return Decision::keep(view);
        };
        let active = view.current.first();
        match active {
            // First publication, or the active node is no longer up (or no longer in the order):
            // move at once.
            None => Decision::publish(vec![best.clone()]),
            Some(active) if !view.is_up(active) || !self.order.contains(active) => {
                Decision::publish(vec![best.clone()])
            }
            Some(active) if active == best => Decision::keep(view),
            // The active node is up but a preferred node is up too: failback per setting.
            Some(_) => match self.failback {
                Failback::Manual if view.failback_requested => {
                    Decision::publish(vec![best.clone()])
                }
                Failback::Manual => Decision::keep(view),
                Failback::Auto { after } => {
                    let up_since = view.node(best).and_then(|n| n.since);
                    match up_since {
                        Some(since) if view.now.since(since) < after => Decision {
                            recheck_at: Some(since.mono + after),
                            ..Decision::keep(view)
                        },
                        _ => Decision::publish(vec![best.clone()]),
                    }
                }
            },
        }
    }
}

/// Every node that is up, in config order (several A records; clients try the next).
#[derive(Clone, Debug, Default)]
pub struct AllHealthy;

impl Policy for AllHealthy {
    fn name(&self) -> &str {
        "all-healthy"
    }

    fn decide(&mut self, view: &ClusterView<'_>) -> Decision {
        Decision::publish(view.up_nodes().map(|n| n.name.clone()).collect())
    }
}
