//! Why the arbiter refuses a spec or an operator's override.

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
        /// `node`, `check` or `policy`.
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
    /// A managed name names a policy key that was not given.
    #[error(
        "managed name {name:?} names policy {key:?}, which is not defined (policies: {known})"
    )]
    UnknownPolicy {
        /// The managed name.
        name: String,
        /// The key it names.
        key: String,
        /// The keys given.
        known: String,
    },
    /// The state to restore was written by another version of the arbiter.
    #[error("saved arbiter state has version {found}, this arbiter reads version {supported}: starting without it")]
    StateVersion {
        /// The state's version.
        found: u32,
        /// The version this arbiter reads.
        supported: u32,
    },
    /// The state to restore is older than `Startup::max_state_age` (or from the future by more).
    #[error(
        "saved arbiter state is {age:?} old (at most {max:?} is restored): starting without it"
    )]
    StateTooOld {
        /// How old it is (by the wall clock).
        age: std::time::Duration,
        /// The bound.
        max: std::time::Duration,
    },
    /// A forced verdict must be up or down.
    #[error("a check can only be forced up or down")]
    ForceUnknown,
    /// The supervisor that owns the arbiter has stopped.
    #[error("the daemon is stopping")]
    Stopped,
}
