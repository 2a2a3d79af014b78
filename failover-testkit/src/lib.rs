//! Test support shared by the workspace's integration tests, so that no test file carries its
//! own copy: free loopback ports, bounded waits, child processes that die with the test, finding
//! a program (or failing with the `apt-get install` line that provides it), `dig`, and the real
//! servers the tests start (BIND, NSD, Knot, MariaDB, aiosmtpd, Python's http.server).
//!
//! What is deliberately not here: anything that needs a type of the workspace (this crate depends
//! on none of them, so each can take it as a dev-dependency), and skipping. A missing program
//! fails the test with how to install it; it never passes silently.
//!
//! Every server runs in a temporary directory of its own on a loopback address and is stopped
//! when its value is dropped, also when the test panics.
//!
//! ```no_run
//! use std::time::Duration;
//! use failover_testkit::{free_port, HttpServer};
//!
//! let port = free_port("127.0.0.1");
//! let server = HttpServer::serve("127.0.0.1", port, &[("health", "ok\n")], Duration::from_secs(5));
//! assert_eq!(server.port, port);
//! ```

pub mod bind;
mod dig;
mod http;
pub mod mariadb;
mod ports;
mod process;
pub mod secondary;
pub mod smtp;
mod wait;

pub use dig::{dig, dig_async};
pub use http::HttpServer;
pub use ports::{free_port, free_port_on};
pub use process::{program, ChildGuard, TcpServer};
pub use wait::{eventually, Wait};

/// A new temporary directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory for the test")
}
