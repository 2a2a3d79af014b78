//! The arbiter: a deterministic state machine from observations to published answers.
//!
//! No I/O, no tokio, no clock: every input carries its [`Moment`](crate::Moment). Same inputs,
//! same actions. `spec` is what an arbiter is built from, `machine` the state machine,
//! `check` one check's hysteresis, `overrides` the operator's overrides, `status` what it
//! reports.

mod check;
mod error;
mod machine;
mod overrides;
mod spec;
mod status;
#[cfg(test)]
mod tests;

pub use error::ArbiterError;
pub use machine::Arbiter;
pub use overrides::Override;
pub use spec::{CheckSpec, ClusterSpec, ManagedName, NodeSpec, DEFAULT_FALL, DEFAULT_RISE};
pub use status::{CheckStatus, ClusterStatus, NodeStatus};
