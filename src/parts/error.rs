//! Why the daemon could not start: each part's error names the config file, the section and the fix.

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The cluster described by the config is not workable.
    #[error("{path}: {source}")]
    Cluster {
        /// The config file.
        path: std::path::PathBuf,
        /// Why.
        source: failover_core::ArbiterError,
    },
    /// A policy cannot be built (a registered kind refused its settings).
    #[error("{path}: {section}: {message}")]
    Policy {
        /// The config file.
        path: std::path::PathBuf,
        /// `[policy]` or `[policies.NAME]`.
        section: String,
        /// Why.
        message: String,
    },
    /// A check cannot be built.
    #[error("{path}: check {check:?}: {message}")]
    Check {
        /// The config file.
        path: std::path::PathBuf,
        /// The check.
        check: String,
        /// Why.
        message: String,
    },
    /// The admin listener cannot start.
    #[error("{path}: [admin]: {message}")]
    Admin {
        /// The config file.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
    /// A zone writer cannot be built.
    #[error("{path}: writer[{index}]: {message}")]
    Writer {
        /// The config file.
        path: std::path::PathBuf,
        /// Which `[[writer]]`, from 1.
        index: usize,
        /// Why.
        message: String,
    },
    /// A notifier cannot be built.
    #[error("{path}: notify[{index}]: {message}")]
    Notifier {
        /// The config file.
        path: std::path::PathBuf,
        /// Which `[[notify]]`, from 1.
        index: usize,
        /// Why.
        message: String,
    },
    /// `[mysql]` cannot be used (a password file, fencing without the `mysql` feature).
    #[error("{path}: [mysql]: {message}")]
    Mysql {
        /// The config file.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
    /// The observation links cannot start (key files, listen address).
    #[error("{path}: [cluster]: {message}")]
    Observers {
        /// The config file.
        path: std::path::PathBuf,
        /// Why, and the fix.
        message: String,
    },
    /// This server's key (`[identity]`) is missing, unusable, or not the chosen node's.
    #[error("{path}: [identity]: {message}")]
    Identity {
        /// The config file.
        path: std::path::PathBuf,
        /// Why, and the fix.
        message: String,
    },
    /// `[mirror]` cannot be used or started.
    #[error("{path}: [mirror]: {message}")]
    Mirror {
        /// The config file.
        path: std::path::PathBuf,
        /// Why, and the fix.
        message: String,
    },
    /// A `[[zone.keys]]` key cannot be read.
    #[error("{path}: zone.keys[{index}]: {message}")]
    ZoneKey {
        /// The config file.
        path: std::path::PathBuf,
        /// Which `[[zone.keys]]`, from 1.
        index: usize,
        /// Why.
        message: String,
    },
    /// The zone cannot be loaded or served.
    #[error(transparent)]
    Dns(#[from] failover_dns::DnsError),
    /// The zone file is for another zone than `[zone] name`.
    #[error("zone file {file} is for {found}, but [zone] name is {expected:?}: point `file` at the zone's own file or fix `name`")]
    WrongZone {
        /// The zone file.
        file: std::path::PathBuf,
        /// Its origin.
        found: String,
        /// The configured name.
        expected: String,
    },
}
