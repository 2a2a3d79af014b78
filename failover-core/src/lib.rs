//! The core of failover: the traits every adapter implements, the arbiter that decides where
//! a site's name points, the policies it consults, and the supervisor that runs probes and
//! effects on tokio.
//!
//! What is here: [`HealthCheck`], [`ZoneWriter`], [`Notifier`], [`FileMirror`] and [`Policy`];
//! the [`Arbiter`] (a deterministic state machine, no I/O, time passed in); the built-in policies
//! [`ActivePassive`] and [`AllHealthy`]; the [`Supervisor`]; the built-in probes (`tcp`, `http`,
//! `ssh`) and notifiers (log, command hook).
//!
//! What is deliberately not here: DNS wire formats (`failover-dns`), SQL (`failover-mysql`),
//! file-system layout (`failover-sync`), config files (the `failover` package).
//!

mod event;
mod health;
mod mirror;
mod model;
mod notify;
mod policy;
mod zone;

pub use event::{Event, EventKind};
pub use health::{HealthCheck, Target};
pub use mirror::{Conflict, FileMirror, MirrorError, MirrorStatus, SyncOptions, SyncReport};
pub use model::{CheckName, FailureClass, Health, Moment, NodeName, Observation, Outcome};
pub use notify::{Notifier, NotifyError};
pub use policy::{
    ActivePassive, AllDown, AllHealthy, ClusterView, Decision, Failback, NodeView, Policy,
};
pub use zone::{ManagedAnswer, Publication, PublishError, PublishReceipt, ZoneWriter};
