//! The authenticated peer link: TCP with TLS 1.3, each node's certificate pinned in the other's
//! config, a versioned hello, and length-prefixed frames with a size limit.
//!
//! One way to talk to another `failoverd` (the live mirror, shared observations): no CA, no root
//! SSH keys. `failoverd keygen` makes a node's key and prints the fingerprint its peers pin. The
//! admin listener serves HTTPS with the same key, and its clients pin the same fingerprint
//! ([`Identity::https_server`], [`pinned_https_client`]).

mod config;
mod connect;
mod error;
mod frame;
mod identity;
mod listener;
#[cfg(test)]
mod tests;
mod tls;

pub use config::{Hello, PeerConfig, DEFAULT_MAX_FRAME, PEER_PROTOCOL_VERSION};
pub use connect::connect;
pub use error::PeerError;
pub(crate) use frame::{check_hello, read_frame, MAX_HELLO};
pub use frame::{PeerReader, PeerStream, PeerWriter};
pub use identity::{Fingerprint, Identity};
pub use listener::PeerListener;
pub use tls::pinned_https_client;
