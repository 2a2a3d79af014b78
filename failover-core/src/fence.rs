//! The `Fence` trait: a hook the supervisor runs before the answer moves to other nodes.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::model::{Health, NodeName};
use crate::zone::Publication;

/// What a fence is asked to approve: the answer moving from `from` to `to`.
///
/// Built by [`Arbiter::publish_context`](crate::Arbiter::publish_context) at the moment the
/// supervisor asks, so that "how long has the old primary been down" comes from the arbiter's
/// verdicts, not from the fence's own clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishContext {
    /// The nodes the writers publish now (never empty: the first publication is not fenced).
    pub from: Vec<NodeName>,
    /// The nodes the arbiter wants to publish.
    pub to: Vec<NodeName>,
    /// The nodes of `from` that are not in `to`, with their health.
    pub leaving: Vec<LeavingNode>,
    /// The publication that waits for the fence.
    pub publication: Publication,
}

/// A node the answer moves away from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeavingNode {
    /// The node.
    pub node: NodeName,
    /// Its health as the arbiter sees it (down for a failover; up for a failback or a drain).
    pub health: Health,
    /// How long it has been down, when it is down.
    pub down_for: Option<Duration>,
}

impl PublishContext {
    /// The leaving node called `name`, if it is one.
    pub fn leaving(&self, name: &NodeName) -> Option<&LeavingNode> {
        self.leaving.iter().find(|l| &l.node == name)
    }
}

/// One thing a fence did (or tried), reported as a `fence-step` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FenceStep {
    /// The node it was done to.
    pub node: NodeName,
    /// What was done, in words (`set read_only = 1`).
    pub action: String,
    /// Whether it succeeded.
    pub done: bool,
    /// What the node said, or why it failed.
    pub detail: String,
}

impl FenceStep {
    /// A step that succeeded.
    pub fn done(node: &NodeName, action: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            node: node.clone(),
            action: action.into(),
            done: true,
            detail: detail.into(),
        }
    }

    /// A step that failed.
    pub fn failed(node: &NodeName, action: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            node: node.clone(),
            action: action.into(),
            done: false,
            detail: detail.into(),
        }
    }
}

/// A fence's approval: what it did to make the move safe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FenceReport {
    /// Every step, in order.
    pub steps: Vec<FenceStep>,
}

/// A fence's refusal: the answer stays where it is, and the arbiter asks again later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Veto {
    /// Why, in words an operator can act on (`slave's SQL thread is 42 s behind`).
    pub reason: String,
    /// What was done before refusing (each becomes an event too).
    pub steps: Vec<FenceStep>,
    /// How long the arbiter holds the refused answer back before it decides again.
    pub retry_after: Duration,
}

/// Runs before the supervisor hands writers an answer that moves to other nodes: fences the
/// old primary of a database, refuses to promote a lagging one.
///
/// # Contract
///
/// - The supervisor calls [`before_publish`](Fence::before_publish) when the arbiter's new
///   answer names other nodes than the one the writers publish now, never for the first
///   publication (there is nothing to fence yet) and never twice at once: answers decided
///   meanwhile wait, and only the newest is fenced next.
/// - `Ok` lets the publication through; each step becomes a `fence-step` event.
/// - `Err(Veto)` keeps the old answer: the arbiter reverts to it, reports a `publish-vetoed`
///   event and decides again after `retry_after` (sooner if something else changes the
///   answer). A veto is not an error of the fence: say why in `reason`.
/// - The call must finish within [`timeout`](Fence::timeout); past it the supervisor drops the
///   future and treats it as a veto. It may also be dropped at shutdown, so every network call
///   in it needs its own timeout and it must leave nothing half-done that a retry cannot fix.
/// - It must not block: it runs in its own task, and the arbiter carries on meanwhile.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use async_trait::async_trait;
/// use failover_core::{Fence, FenceReport, FenceStep, PublishContext, Veto};
///
/// /// Refuses a failover until the old primary has been down for a minute.
/// struct WaitAMinute;
///
/// #[async_trait]
/// impl Fence for WaitAMinute {
///     fn describe(&self) -> String {
///         "wait-a-minute".to_owned()
///     }
///
///     async fn before_publish(&self, context: &PublishContext) -> Result<FenceReport, Veto> {
///         for leaving in &context.leaving {
///             if leaving.down_for.is_some_and(|d| d < Duration::from_secs(60)) {
///                 return Err(Veto {
///                     reason: format!("{} has been down for less than a minute", leaving.node),
///                     steps: Vec::new(),
///                     retry_after: Duration::from_secs(5),
///                 });
///             }
///         }
///         let step = FenceStep::done(&context.to[0], "nothing to do", "waited long enough");
///         Ok(FenceReport { steps: vec![step] })
///     }
/// }
/// ```
#[async_trait]
pub trait Fence: Send + Sync + 'static {
    /// A short description for events (`mysql fencing`).
    fn describe(&self) -> String;

    /// How long [`before_publish`](Fence::before_publish) may take (default 30 s).
    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }

    /// Makes the move from `context.from` to `context.to` safe, or refuses it.
    async fn before_publish(&self, context: &PublishContext) -> Result<FenceReport, Veto>;
}
