//! The serving node's listener: accepts the driving node's connections (its pinned certificate
//! and its node name) and hands each to the node's loop.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use failover_core::peer::PeerListener;

use super::config::LiveConfig;
use super::node::Input;
use crate::error::SyncError;

/// Binds `config.listen` and starts the accept task; returns it and the address bound.
pub(super) async fn listen(
    config: &LiveConfig,
    input: mpsc::Sender<Input>,
) -> Result<(tokio::task::JoinHandle<()>, Option<SocketAddr>), SyncError> {
    let listener = PeerListener::bind(config.listen, config.peer_config())
        .await
        .map_err(|e| SyncError::Peer(format!("listen {}: {e}", config.listen)))?;
    let listening = listener.local_addr().ok();
    let peer_node = config.peer_node.clone();
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok(stream) if stream.hello().node == peer_node => {
                    if input.send(Input::Accepted(Box::new(stream))).is_err() {
                        return;
                    }
                }
                Ok(stream) => tracing::warn!(
                    peer = stream.peer(),
                    "mirror: refused {:?}: its certificate is pinned for node {peer_node:?}; check [mirror] nodes and the node the other server was started as (--node)",
                    stream.hello().node
                ),
                Err(e) => {
                    tracing::warn!("mirror: refused a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    Ok((task, listening))
}
