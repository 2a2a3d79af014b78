//! MySQL and MariaDB for failover: health checks that read replication the way an admin does
//! with `SHOW SLAVE STATUS`, the health of a master-master pair, its setup, and fencing with
//! `read_only` before the answer moves.
//!
//! What is here:
//! - [`MysqlCheck`] (`mysql`: connect and `SELECT 1`) and [`ReplicationCheck`]
//!   (`mysql-replication`: both replica threads and the lag), both [`HealthCheck`]s;
//! - [`PairStatus`] (both directions at a glance, what `failoverd mysql status` prints) and
//!   [`pair_warnings`] (same `server_id`, same `auto_increment_offset`, both writable...);
//! - [`setup_pair`] (what `failoverd mysql setup` runs);
//! - [`MysqlFence`], the [`Fence`] the supervisor runs before it moves the answer.
//!
//! What is deliberately not here: TLS to the servers (connections are plain TCP; keep them on
//! a private network), multi-source replication (only the default connection is read), GTID
//! auto-positioning in `setup_pair` (it starts from binary log coordinates), and anything
//! about DNS or files: the crate depends on `failover-core` only.
//!
//! Every call to a server runs under a timeout (mysql_async has none of its own) and every
//! connection is closed explicitly.
//!
//! # Example
//!
//! A replication check as the supervisor would run it (against nothing here, so it fails):
//!
//! ```
//! use std::time::Duration;
//! use failover_core::{HealthCheck, Target};
//! use failover_mysql::{Credentials, ReplicationCheck};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let check = ReplicationCheck::new(1, Credentials::new("monitor", "secret"), Duration::from_secs(30));
//! let target = Target {
//!     node: "master".into(),
//!     address: "127.0.0.1".parse().unwrap(),
//!     timeout: Duration::from_secs(1),
//! };
//! let outcome = check.probe(&target).await;
//! assert!(!outcome.is_healthy());
//! # }
//! ```
//!
//! [`HealthCheck`]: failover_core::HealthCheck
//! [`Fence`]: failover_core::Fence

mod check;
mod client;
mod fence;
mod pair;
mod setup;
mod status;

use std::path::PathBuf;
use std::time::Duration;

use failover_core::FailureClass;

pub use check::{MysqlCheck, ReplicationCheck, DEFAULT_MAX_LAG};
pub use client::{Credentials, Endpoint};
pub use fence::{
    FenceOptions, MysqlFence, DEFAULT_CALL_TIMEOUT, DEFAULT_MAX_PROMOTE_LAG,
    DEFAULT_PROMOTE_AFTER_DOWN, DEFAULT_RETRY_AFTER,
};
pub use pair::{pair_warnings, PairMember, PairStatus, PairWarning, ServerReport};
pub use setup::{setup_pair, SetupOptions, SetupReport};
pub use status::{Flavor, ReplicaStatus, ServerState};

/// The default MySQL port.
pub const DEFAULT_PORT: u16 = 3306;

/// What went wrong talking to a server, in words that name the server and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MysqlError {
    /// Nothing answered in time.
    #[error("{endpoint}: {what} gave no answer within {}", humantime::format_duration(*after))]
    Timeout {
        /// The server.
        endpoint: Endpoint,
        /// What was attempted (`connect`, `SHOW SLAVE STATUS`).
        what: String,
        /// The budget.
        after: Duration,
    },
    /// The server refused the user or password: a configuration error.
    #[error(
        "{endpoint}: access denied for user {user:?}: check user and password_file ({message})"
    )]
    AccessDenied {
        /// The server.
        endpoint: Endpoint,
        /// The user.
        user: String,
        /// The server's message.
        message: String,
    },
    /// The user lacks a privilege for a statement: a configuration error.
    #[error("{endpoint}: {message} (grant the privilege to the configured user)")]
    Privilege {
        /// The server.
        endpoint: Endpoint,
        /// The server's message.
        message: String,
    },
    /// Any other error the server returned.
    #[error("{endpoint}: {message} (MySQL error {code})")]
    Server {
        /// The server.
        endpoint: Endpoint,
        /// The server's error code.
        code: u16,
        /// The server's message.
        message: String,
    },
    /// No connection: refused, reset, unreachable.
    #[error("{endpoint}: {message}")]
    Unreachable {
        /// The server.
        endpoint: Endpoint,
        /// What the network said.
        message: String,
    },
    /// `setup_pair` will not touch this server.
    #[error("{endpoint}: refused: {message}")]
    Refused {
        /// The server.
        endpoint: Endpoint,
        /// Why, and what to do.
        message: String,
    },
    /// A password file cannot be read.
    #[error("password_file {}: {message}", path.display())]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl MysqlError {
    /// Sorts a mysql_async error into ours.
    pub(crate) fn from_driver(endpoint: &Endpoint, user: &str, error: mysql_async::Error) -> Self {
        let endpoint = endpoint.clone();
        match error {
            mysql_async::Error::Server(e) => match e.code {
                // ER_ACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR, ER_ACCESS_DENIED_NO_PASSWORD_ERROR,
                // ER_NOT_SUPPORTED_AUTH_MODE.
                1045 | 1044 | 1698 | 1251 => MysqlError::AccessDenied {
                    endpoint,
                    user: user.to_owned(),
                    message: e.message,
                },
                // ER_SPECIFIC_ACCESS_DENIED_ERROR, ER_TABLEACCESS_DENIED_ERROR.
                1227 | 1142 => MysqlError::Privilege {
                    endpoint,
                    message: e.message,
                },
                code => MysqlError::Server {
                    endpoint,
                    code,
                    message: e.message,
                },
            },
            mysql_async::Error::Io(e) => MysqlError::Unreachable {
                endpoint,
                message: e.to_string(),
            },
            other => MysqlError::Unreachable {
                endpoint,
                message: other.to_string(),
            },
        }
    }

    /// How a probe reports this error.
    pub fn class(&self) -> FailureClass {
        match self {
            MysqlError::Timeout { .. } => FailureClass::Timeout,
            MysqlError::AccessDenied { .. }
            | MysqlError::Privilege { .. }
            | MysqlError::Refused { .. }
            | MysqlError::PasswordFile { .. } => FailureClass::Misconfigured,
            MysqlError::Server { .. } => FailureClass::Unhealthy,
            MysqlError::Unreachable { .. } => FailureClass::Unreachable,
        }
    }

    /// Nothing answered (refused, unreachable, timed out).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            MysqlError::Unreachable { .. } | MysqlError::Timeout { .. }
        )
    }
}
