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
mod endpoint;
mod error;
mod fence;
mod pair;
mod setup;
mod status;

pub use check::{MysqlCheck, ReplicationCheck, DEFAULT_MAX_LAG};
pub use client::Credentials;
pub use endpoint::Endpoint;
pub use error::MysqlError;
pub use fence::{
    FenceOptions, MysqlFence, DEFAULT_CALL_TIMEOUT, DEFAULT_MAX_PROMOTE_LAG,
    DEFAULT_PROMOTE_AFTER_DOWN, DEFAULT_RETRY_AFTER,
};
pub use pair::{pair_warnings, PairMember, PairStatus, PairWarning, ServerReport};
pub use setup::{setup_pair, SetupOptions, SetupReport};
pub use status::{Flavor, ReplicaStatus, ServerState};

/// The default MySQL port.
pub const DEFAULT_PORT: u16 = 3306;
