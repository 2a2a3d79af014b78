//! The server end: accepting peers, each handshake in a task of its own under a timeout.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::config::PeerConfig;
use super::error::PeerError;
use super::frame::PeerStream;
use super::tls::handshake_failure;

/// Handshakes in progress at once on one listener; more wait for a free slot.
const MAX_PENDING_HANDSHAKES: usize = 16;

/// Listens for peers.
///
/// Connections are accepted by a task of its own and each handshake runs in its own task under
/// the handshake timeout, so a client that stalls (or a stream of strangers) cannot keep the
/// real peers out. The task stops when the listener is dropped.
pub struct PeerListener {
    address: SocketAddr,
    accepted: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Result<PeerStream, PeerError>>>,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for PeerListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerListener")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Drop for PeerListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Authenticates one accepted connection, within the handshake timeout.
async fn handshake(
    acceptor: tokio_rustls::TlsAcceptor,
    config: Arc<PeerConfig>,
    tcp: TcpStream,
    peer: String,
) -> Result<PeerStream, PeerError> {
    let attempt = async {
        let tls = acceptor
            .accept(tcp)
            .await
            .map_err(|e| handshake_failure(&peer, e))?;
        let stream = PeerStream {
            io: tokio_rustls::TlsStream::Server(tls),
            peer: peer.clone(),
            hello: config.hello(),
            max_frame: config.max_frame,
        };
        stream.exchange_hello(&config).await
    };
    tokio::time::timeout(config.handshake_timeout, attempt)
        .await
        .map_err(|_| PeerError::Timeout {
            peer: peer.clone(),
            what: "handshake",
            after: config.handshake_timeout,
        })?
}

impl PeerListener {
    /// Binds `address` and starts accepting.
    pub async fn bind(address: SocketAddr, config: PeerConfig) -> Result<Self, PeerError> {
        let acceptor = config.server()?;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| PeerError::Io {
                peer: format!("listen {address}"),
                source,
            })?;
        let bound = listener.local_addr().map_err(|source| PeerError::Io {
            peer: format!("listen {address}"),
            source,
        })?;
        let config = Arc::new(config);
        let (results, accepted) = tokio::sync::mpsc::channel(MAX_PENDING_HANDSHAKES);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES));
        let task = tokio::spawn(async move {
            let mut handshakes = tokio::task::JoinSet::new();
            loop {
                let (tcp, remote) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!("peer listener {bound}: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                while handshakes.try_join_next().is_some() {}
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, config, results) =
                    (acceptor.clone(), config.clone(), results.clone());
                handshakes.spawn(async move {
                    let outcome = handshake(acceptor, config, tcp, remote.to_string()).await;
                    drop(slot);
                    let _ = results.send(outcome).await;
                });
            }
        });
        Ok(Self {
            address: bound,
            accepted: tokio::sync::Mutex::new(accepted),
            task,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, PeerError> {
        Ok(self.address)
    }

    /// The next authenticated peer, or the error of one that failed (log it and call again): a
    /// peer that fails authentication never gets a stream.
    pub async fn accept(&self) -> Result<PeerStream, PeerError> {
        self.accepted.lock().await.recv().await.unwrap_or_else(|| {
            Err(PeerError::Io {
                peer: format!("listen {}", self.address),
                source: std::io::Error::other("the listener stopped"),
            })
        })
    }
}
