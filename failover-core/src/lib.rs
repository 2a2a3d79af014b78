//! The core of failover: the traits every adapter implements, the arbiter that decides where
//! a site's name points, the policies it consults, and the supervisor that runs probes and
//! effects on tokio.
//!
//! What is here: [`HealthCheck`], [`ZoneWriter`], [`Notifier`], [`FileMirror`], [`Policy`] and
//! [`Fence`] (a pre-publish hook);
//! the [`Arbiter`] (a deterministic state machine, no I/O, time passed in); the [`Quorum`] that
//! lets a failure through only when the observers (daemons, a witness) agree, and the
//! [`ObserverNetwork`] that carries their verdicts over the [`peer`] link; the built-in policies
//! [`ActivePassive`] and [`AllHealthy`]; the [`Supervisor`]; the built-in probes (`tcp`, `http`,
//! `ssh`) and notifiers (log, command hook).
//!
//! What is deliberately not here: DNS wire formats (`failover-dns`), SQL (`failover-mysql`),
//! file-system layout (`failover-sync`), config files (the `failover` package).
//!
//! # Example
//!
//! Feeding the arbiter by hand, on a clock of our own:
//!
//! ```
//! use std::time::Duration;
//! use failover_core::*;
//!
//! let spec = ClusterSpec {
//!     nodes: vec![
//!         NodeSpec::new("master", ["10.1.0.1".parse().unwrap()]),
//!         NodeSpec::new("slave", ["10.2.0.2".parse().unwrap()]),
//!     ],
//!     checks: vec![CheckSpec::new("http", true)],
//!     managed: vec![ManagedName::new("@", 10)],
//!     all_down: AllDown::KeepLast,
//!     damping: Damping::default(),
//! };
//! let policy = ActivePassive::new(
//!     vec!["master".into(), "slave".into()],
//!     Failback::Auto { after: Duration::from_secs(30) },
//! );
//! let mut arbiter = Arbiter::new(spec, Box::new(policy)).unwrap();
//! let t0 = Moment::now();
//! let seen = |node: &str, ok: bool, at: Moment| Observation {
//!     node: node.into(),
//!     check: "http".into(),
//!     outcome: if ok { Outcome::healthy("HTTP 200") } else {
//!         Outcome::failed(FailureClass::Unreachable, "connection refused")
//!     },
//!     at,
//! };
//! arbiter.observe(seen("master", true, t0));
//! let actions = arbiter.observe(seen("slave", true, t0));
//! assert!(actions.iter().any(|a| matches!(a, Action::Publish(p) if p.nodes == ["master".into()])));
//! ```

mod arbiter;
mod damping;
mod event;
mod fence;
mod health;
mod mirror;
mod model;
mod notify;
mod observers;
pub mod peer;
mod policy;
pub mod probe;
mod quorum;
mod supervisor;
mod zone;

pub use arbiter::{
    Action, Arbiter, ArbiterError, CheckSpec, CheckStatus, ClusterSpec, ClusterStatus, ManagedName,
    NodeSpec, NodeStatus, Override,
};
pub use damping::Damping;
pub use event::{DegradedCheck, Event, EventKind};
pub use fence::{Fence, FenceReport, FenceStep, LeavingNode, PublishContext, Veto};
pub use health::{HealthCheck, Target};
pub use mirror::{
    Conflict, FailedPath, FileMirror, MirrorError, MirrorStatus, SyncOptions, SyncReport,
};
pub use model::{CheckName, FailureClass, Health, Moment, NodeName, Observation, Outcome};
pub use notify::{
    host_name, CommandNotifier, EmailNotifier, EmailOptions, EmailSecurity, Filtered, LogNotifier,
    Notifier, NotifyError, SubjectTemplate, WebhookNotifier, WebhookOptions, EVENT_NAMES,
};
pub use observers::{
    ObserverInjector, ObserverLinkConfig, ObserverNetwork, ObserverPeer, SharedObservations,
    OBSERVATIONS_SERVICE,
};
pub use policy::{
    ActivePassive, AllDown, AllHealthy, ClusterView, Decision, Failback, NodeView, Policy,
};
pub use quorum::{
    LocalResult, MembershipChange, ObserverStatus, OnPartition, Quorum, QuorumSpec, Report,
};
pub use supervisor::{
    AdminCommand, Commander, ProbeSchedule, StatusReport, Supervisor, SupervisorHandle,
    WriterStatus, RECENT_EVENTS,
};
/// Makes ring the process's rustls crypto provider (the HTTP client, e-mail and the peer link are
/// built without a default one, so that the project uses one provider everywhere). Idempotent;
/// call it before building any TLS client.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub use zone::{ManagedAnswer, Publication, PublishError, PublishReceipt, ZoneWriter};

// The defaults each part owns (the daemon's config takes them from here).
pub use arbiter::{DEFAULT_FALL, DEFAULT_RISE};
pub use damping::{DEFAULT_DAMPING_MAX_CHANGES, DEFAULT_DAMPING_WINDOW};
pub use notify::{DEFAULT_BATCH_WINDOW, DEFAULT_DELIVERY_TIMEOUT};
pub use observers::DEFAULT_OBSERVER_TIMEOUT;
pub use policy::DEFAULT_FAILBACK_AFTER;
pub use supervisor::{DEFAULT_PROBE_INTERVAL, DEFAULT_PROBE_JITTER, DEFAULT_PROBE_TIMEOUT};
