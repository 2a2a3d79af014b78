//! The client end: connecting to a peer and authenticating both ways.

use std::net::SocketAddr;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::config::PeerConfig;
use super::error::PeerError;
use super::frame::PeerStream;
use super::tls::handshake_failure;

/// Connects to a peer and authenticates both ways.
pub async fn connect(address: SocketAddr, config: &PeerConfig) -> Result<PeerStream, PeerError> {
    let peer = address.to_string();
    let connector = config.client()?;
    let attempt = async {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|source| PeerError::Io {
                peer: peer.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from("failover-peer").map_err(|e| PeerError::Protocol {
            peer: peer.clone(),
            reason: e.to_string(),
        })?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| handshake_failure(&peer, e))?;
        let stream = PeerStream {
            io: tokio_rustls::TlsStream::Client(tls),
            peer: peer.clone(),
            hello: config.hello(),
            max_frame: config.max_frame,
        };
        stream.exchange_hello(config).await
    };
    tokio::time::timeout(config.handshake_timeout, attempt)
        .await
        .map_err(|_| PeerError::Timeout {
            peer: peer.clone(),
            what: "connect and handshake",
            after: config.handshake_timeout,
        })?
}
