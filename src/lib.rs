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
