//! failover keeps a website up across servers in different data centres.
//!
//! This is the facade: it re-exports the workspace's crates and holds what the reference daemon
//! `failoverd` is made of (config, composition, the demo), so that tests and other tools can run
//! the daemon in-process.
//!
//! - [`core`] (`failover-core`): traits, arbiter, policies, supervisor, probes, notifiers.
//! - [`dns`] (`failover-dns`, feature `dns`): the built-in authoritative DNS server.
//! - [`sync`] (`failover-sync`, feature `sync`): the two-way file mirror.
//! - [`mysql`] (`failover-mysql`, feature `mysql`): MySQL checks, pair status and setup, fencing.
//!
//! Two ways in:
//!
//! - the arbiter alone, deterministic, on a clock you pass in (a policy of your own, a replay,
//!   a simulation):
//!
//! ```
//! use std::time::Duration;
//! use failover::core::{
//!     Action, ActivePassive, Arbiter, CheckSpec, ClusterSpec, Failback, FailureClass,
//!     ManagedName, Moment, NodeName, NodeSpec, Observation, Outcome,
//! };
//!
//! let mut spec = ClusterSpec::new(
//!     vec![
//!         NodeSpec::new("master", ["192.0.2.1".parse().unwrap()]),
//!         NodeSpec::new("slave", ["198.51.100.2".parse().unwrap()]),
//!     ],
//!     vec![CheckSpec::new("http", true)],
//!     vec![ManagedName::new("@", 10)],
//! );
//! spec.checks[0].fall = 2;
//! let order = vec![NodeName::new("master"), NodeName::new("slave")];
//! let policy = ActivePassive::new(order, Failback::Auto { after: Duration::from_secs(30) });
//! let mut arbiter = Arbiter::new(spec, Box::new(policy)).unwrap();
//! let mut now = Moment::now();
//! let mut probe = |arbiter: &mut Arbiter, node: &str, ok: bool, at: Moment| {
//!     arbiter.observe(Observation {
//!         node: node.into(),
//!         check: "http".into(),
//!         outcome: if ok {
//!             Outcome::healthy("HTTP 200")
//!         } else {
//!             Outcome::failed(FailureClass::Unreachable, "connection refused")
//!         },
//!         at,
//!     })
//! };
//! probe(&mut arbiter, "master", true, now);
//! probe(&mut arbiter, "slave", true, now);
//! assert_eq!(arbiter.answer().to_vec(), vec![NodeName::new("master")]);
//! // Two failed probes in a row (fall = 2): the answer moves to the slave.
//! for _ in 0..2 {
//!     now = now + Duration::from_secs(2);
//!     let actions = probe(&mut arbiter, "master", false, now);
//!     if arbiter.answer() == [NodeName::new("slave")] {
//!         assert!(actions.iter().any(|a| matches!(a, Action::Publish(_))));
//!     }
//! }
//! assert_eq!(arbiter.answer().to_vec(), vec![NodeName::new("slave")]);
//! ```
//!
//! - the complete daemon, with check, notifier, writer and policy kinds of your own:
//!   [`daemon::DaemonBuilder`] with [`plugins::Plugins`] (see `examples/plugin_daemon.rs`).

pub use failover_core as core;
#[cfg(feature = "dns")]
pub use failover_dns as dns;
#[cfg(feature = "mysql")]
pub use failover_mysql as mysql;
#[cfg(feature = "sync")]
pub use failover_sync as sync;

#[cfg(feature = "dns")]
pub mod admin;
pub mod client;
pub mod config;
#[cfg(feature = "dns")]
pub mod daemon;
#[cfg(feature = "dns")]
pub mod demo;
#[cfg(feature = "dns")]
pub mod journal;
pub mod manual;
#[cfg(feature = "sync")]
pub mod mirror_cli;
pub mod mysql_cli;
pub mod parts;
pub mod plugins;

/// The exit status for an unusable config (sysexits' `EX_CONFIG`): systemd units say not to
/// restart on it.
pub const EXIT_CONFIG: u8 = 78;

/// Resolves on SIGINT or SIGTERM (Ctrl-C only where there is no SIGTERM).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
