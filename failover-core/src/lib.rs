//! The core of failover: the traits every adapter implements, the arbiter that decides where
//! a site's name points, the policies it consults, and (behind the default feature `runtime`)
//! the supervisor that runs probes and effects on tokio.
//!
//! **The pure part** (always built; no tokio, no TLS, no HTTP, no SMTP, no randomness, no clock
//! read inside a decision): the model ([`Observation`], [`Outcome`], [`Moment`]); the traits
//! [`HealthCheck`], [`ZoneWriter`], [`Notifier`], [`FileMirror`], [`Policy`] and [`Fence`] (a
//! pre-publish hook); the [`Arbiter`] (a deterministic state machine, time passed in) and the
//! [`Action`]s it returns; the [`Quorum`] that lets a failure through only when the observers
//! (daemons, a witness) agree; the built-in policies [`ActivePassive`] and [`AllHealthy`];
//! flap [`Damping`]; the [`Event`]s. `cargo check -p failover-core --no-default-features` builds
//! exactly this, and the test script checks that it still does.
//!
//! **The runtime** (feature `runtime`, on by default): the `Supervisor` that drives the arbiter
//! on tokio, the `ObserverNetwork` that carries the observers' verdicts over the `peer` link
//! (TLS with pinned certificates), the built-in probes in `probe` (`tcp`, `http`, `ssh`) and
//! notifiers (log, command hook, e-mail, webhook). It depends on the pure part, never the other
//! way round.
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
//! let spec = ClusterSpec::new(
//!     vec![
//!         NodeSpec::new("master", ["10.1.0.1".parse().unwrap()]),
//!         NodeSpec::new("slave", ["10.2.0.2".parse().unwrap()]),
//!     ],
//!     vec![CheckSpec::new("http", true)],
//!     vec![ManagedName::new("@", 10)],
//! )
//! .with_all_down(AllDown::KeepLast);
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

mod action;
mod arbiter;
mod damping;
mod event;
mod fence;
mod health;
mod mirror;
mod model;
mod notifier;
mod policy;
mod quorum;
mod zone;

#[cfg(feature = "runtime")]
mod runtime;

pub use action::Action;
pub use arbiter::ArbiterInput;
pub use arbiter::{
    AnswerRecord, Arbiter, ArbiterError, ArbiterState, CheckRecord, CheckSpec, CheckStatus,
    ClusterSpec, ClusterStatus, FirstVerdict, ManagedName, NameStatus, NamedPolicy, NodeRecord,
    NodeSpec, NodeStatus, Override, Startup, STATE_VERSION,
};
pub use damping::Damping;
pub use event::{DegradedCheck, Event, EventKind};
pub use fence::{Fence, FenceReport, FenceStep, LeavingNode, PublishContext, Veto};
pub use health::{HealthCheck, Target};
pub use mirror::{
    Conflict, FailedPath, FileMirror, MirrorError, MirrorStatus, SyncOptions, SyncReport,
};
pub use model::{CheckName, FailureClass, Health, Moment, NodeName, Observation, Outcome};
pub use notifier::{Filtered, Notifier, NotifyError, EVENT_NAMES};
pub use policy::{
    ActivePassive, AllDown, AllHealthy, ClusterView, Decision, Failback, NodeView, Policy,
};
pub use quorum::{
    LocalResult, MembershipChange, ObserverReport, ObserverStatus, OnPartition, Quorum,
    QuorumInput, QuorumSpec,
};
pub use zone::{ManagedAnswer, Publication, PublishError, PublishReceipt, ZoneWriter};

#[cfg(feature = "runtime")]
pub use runtime::crypto::install_crypto_provider;
#[cfg(feature = "runtime")]
pub use runtime::notifiers::{
    host_name, CommandNotifier, EmailNotifier, EmailOptions, EmailSecurity, LogNotifier,
    SubjectTemplate, WebhookNotifier, WebhookOptions,
};
#[cfg(feature = "runtime")]
pub use runtime::observers::{
    ObserverInjector, ObserverLinkConfig, ObserverNetwork, ObserverPeer, SharedObservations,
    OBSERVATIONS_SERVICE,
};
#[cfg(feature = "runtime")]
pub use runtime::supervisor::{
    AdminCommand, Commander, JournalEntry, ProbeSchedule, StatusReport, Supervisor,
    SupervisorHandle, SupervisorMetrics, WriterStatus, JOURNAL_QUEUE, RECENT_EVENTS,
};
#[cfg(feature = "runtime")]
pub use runtime::{peer, probe};
// For the fuzz targets in `fuzz/` only: not an API.
#[cfg(feature = "runtime")]
#[doc(hidden)]
pub use runtime::fuzzing;

// The defaults each part owns (the daemon's config takes them from here).
pub use arbiter::{DEFAULT_FALL, DEFAULT_RISE};
pub use damping::{DEFAULT_DAMPING_MAX_CHANGES, DEFAULT_DAMPING_WINDOW};
pub use notifier::DEFAULT_DELIVERY_TIMEOUT;
pub use policy::DEFAULT_FAILBACK_AFTER;
#[cfg(feature = "runtime")]
pub use runtime::notifiers::DEFAULT_BATCH_WINDOW;
#[cfg(feature = "runtime")]
pub use runtime::observers::DEFAULT_OBSERVER_TIMEOUT;
#[cfg(feature = "runtime")]
pub use runtime::supervisor::{
    DEFAULT_PROBE_INTERVAL, DEFAULT_PROBE_JITTER, DEFAULT_PROBE_TIMEOUT,
};
