//! The `tcp` probe: healthy when a TCP connection opens (what the scripts did with telnet).

use std::net::SocketAddr;

use async_trait::async_trait;

use crate::health::{HealthCheck, Target};
use crate::model::Outcome;

/// Healthy when a TCP connection to the node's address and `port` opens within the timeout.
#[derive(Clone, Debug)]
pub struct TcpCheck {
    port: u16,
}

impl TcpCheck {
    /// A check connecting to `port`.
    pub fn new(port: u16) -> Self {
        Self { port }
    }
}

#[async_trait]
impl HealthCheck for TcpCheck {
    fn kind(&self) -> &'static str {
        "tcp"
    }

    async fn probe(&self, target: &Target) -> Outcome {
        let address = SocketAddr::new(target.address, self.port);
        match tokio::time::timeout(target.timeout, tokio::net::TcpStream::connect(address)).await {
            Ok(Ok(_stream)) => Outcome::healthy(format!("connected to {address}")),
            Ok(Err(e)) => super::failure::connect_failure(address, &e),
            Err(_) => super::failure::timeout_failure(address, "connect to", target.timeout),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use crate::model::FailureClass;
    use std::time::Duration;

    fn target() -> Target {
        Target {
            node: "master".into(),
            address: "127.0.0.1".parse().unwrap(),
            timeout: Duration::from_secs(2),
        }
    }

    #[tokio::test]
    async fn open_port_is_healthy_closed_port_is_unreachable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(TcpCheck::new(port).probe(&target()).await.is_healthy());
        drop(listener);
        let outcome = TcpCheck::new(port).probe(&target()).await;
        let Outcome::Failed { class, error } = outcome else {
            panic!("closed port probed healthy");
        };
        assert_eq!(class, FailureClass::Unreachable);
        assert!(error.contains("refused"), "{error}");
    }
}
