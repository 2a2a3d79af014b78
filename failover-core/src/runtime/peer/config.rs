//! What a link needs (who we are, whom we trust, which service) and the hello both ends send.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::identity::{Fingerprint, Identity};

/// The protocol name in the hello.
pub(super) const PROTOCOL: &str = "failover-peer";
/// The hello's version; a peer speaking another is refused with both versions named.
pub const PEER_PROTOCOL_VERSION: u32 = 1;
/// Largest frame accepted unless configured otherwise.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// What a link needs: who we are, whom we trust, which service this link carries.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    pub(super) identity: Arc<Identity>,
    pub(super) pinned: Vec<Fingerprint>,
    /// The service spoken on the link (`mirror`, `observations`); both ends must agree.
    pub service: String,
    /// This node's name, told to the peer in the hello.
    pub node: String,
    /// Largest frame accepted.
    pub max_frame: usize,
    /// Budget of connect + TLS handshake + hello.
    pub handshake_timeout: Duration,
}

/// The other end's hello.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always `failover-peer`.
    pub protocol: String,
    /// [`PEER_PROTOCOL_VERSION`] of the sender.
    pub version: u32,
    /// The service it wants.
    pub service: String,
    /// Its node name.
    pub node: String,
}

impl PeerConfig {
    /// A config for `service`, as `node`, trusting the certificates in `pinned`.
    pub fn new(
        identity: Arc<Identity>,
        pinned: Vec<Fingerprint>,
        service: &str,
        node: &str,
    ) -> Self {
        Self {
            identity,
            pinned,
            service: service.to_owned(),
            node: node.to_owned(),
            max_frame: DEFAULT_MAX_FRAME,
            handshake_timeout: Duration::from_secs(10),
        }
    }

    /// The hello this end sends.
    pub(super) fn hello(&self) -> Hello {
        Hello {
            protocol: PROTOCOL.to_owned(),
            version: PEER_PROTOCOL_VERSION,
            service: self.service.clone(),
            node: self.node.clone(),
        }
    }
}
