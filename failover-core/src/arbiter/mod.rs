//! The arbiter: a deterministic state machine from observations to published answers.
//!
//! No I/O, no tokio, no clock: every input carries its [`Moment`](crate::Moment). Same inputs,
//! same actions. `spec` is what an arbiter is built from, `machine` the state machine,
//! `answer` one policy's answer (names may follow different policies), `check` one check's
//! hysteresis, `overrides` the operator's overrides, `state` what survives a restart,
//! `status` what it reports.

mod answer;
mod check;
mod error;
mod journal;
mod machine;
mod overrides;
mod spec;
mod state;
mod status;
#[cfg(test)]
mod tests;

pub use answer::NamedPolicy;
pub use error::ArbiterError;
pub use journal::ArbiterInput;
pub use machine::Arbiter;
pub use overrides::Override;
pub use spec::{
    CheckSpec, ClusterSpec, FirstVerdict, ManagedName, NodeSpec, Startup, DEFAULT_FALL,
    DEFAULT_RISE,
};
pub use state::{AnswerRecord, ArbiterState, CheckRecord, NodeRecord, STATE_VERSION};
pub use status::{CheckStatus, ClusterStatus, NameStatus, NodeStatus};
