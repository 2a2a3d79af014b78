//! The `ssh` probe: healthy when the server sends an `SSH-2.0-` banner.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncReadExt;

use crate::health::{HealthCheck, Target};
use crate::model::{FailureClass, Outcome};

/// Longest identification line allowed by RFC 4253 section 4.2, CR LF included.
const MAX_BANNER: usize = 255;

/// Healthy when a connection to `port` yields an SSH identification line (`SSH-2.0-...`).
/// Lines before it (allowed by RFC 4253) are skipped within the 255-byte budget.
#[derive(Clone, Debug)]
pub struct SshCheck {
    port: u16,
}

impl SshCheck {
    /// A check reading the banner on `port`.
    pub fn new(port: u16) -> Self {
        Self { port }
    }
}

async fn read_banner(address: SocketAddr, timeout: Duration) -> Outcome {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut stream =
        match tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(address)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return super::failure::connect_failure(address, &e),
            Err(_) => return super::failure::timeout_failure(address, "connect to", timeout),
        };
    let mut buffer = Vec::with_capacity(MAX_BANNER);
    let mut chunk = [0u8; MAX_BANNER];
    let ended = loop {
        if buffer.len() >= MAX_BANNER * 4 {
            break "sent too much";
        }
        let read = match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) => break "closed the connection",
            Ok(Ok(read)) => read,
            Ok(Err(e)) => {
                return Outcome::failed(FailureClass::Unreachable, format!("{address}: {e}"))
            }
            Err(_) if buffer.is_empty() => {
                return super::failure::timeout_failure(address, "banner from", timeout)
            }
            Err(_) => break "timed out",
        };
        buffer.extend_from_slice(&chunk[..read]);
        for line in buffer.split(|b| *b == b'\n') {
            let line = String::from_utf8_lossy(line);
            let line = line.trim_end_matches('\r');
            if line.starts_with("SSH-2.0-") || line.starts_with("SSH-1.99-") {
                return Outcome::healthy(line.to_owned());
            }
        }
    };
    let seen = String::from_utf8_lossy(&buffer[..buffer.len().min(80)]).into_owned();
    Outcome::failed(
        FailureClass::Unhealthy,
        if seen.is_empty() {
            format!("{address} {ended} without an SSH banner")
        } else {
            format!("{address} {ended} without an SSH-2.0 banner (got {seen:?})")
        },
    )
}

#[async_trait]
impl HealthCheck for SshCheck {
    fn kind(&self) -> &'static str {
        "ssh"
    }

    async fn probe(&self, target: &Target) -> Outcome {
        read_banner(SocketAddr::new(target.address, self.port), target.timeout).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn serve_once(reply: &'static [u8]) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let _ = stream.write_all(reply).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        port
    }

    fn target() -> Target {
        Target {
            node: "master".into(),
            address: "127.0.0.1".parse().unwrap(),
            timeout: Duration::from_millis(500),
        }
    }

    #[tokio::test]
    async fn a_banner_is_healthy_and_names_the_server() {
        let port = serve_once(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n").await;
        assert_eq!(
            SshCheck::new(port).probe(&target()).await,
            Outcome::healthy("SSH-2.0-OpenSSH_9.2p1 Debian-2")
        );
    }

    #[tokio::test]
    async fn something_else_or_silence_is_not() {
        let port = serve_once(b"220 smtp.example ESMTP\r\n").await;
        let outcome = SshCheck::new(port).probe(&target()).await;
        assert!(
            matches!(&outcome, Outcome::Failed { class: FailureClass::Unhealthy, error } if error.contains("220 smtp")),
            "{outcome:?}"
        );
        let port = serve_once(b"").await;
        let outcome = SshCheck::new(port).probe(&target()).await;
        assert!(
            matches!(
                &outcome,
                Outcome::Failed {
                    class: FailureClass::Timeout,
                    ..
                }
            ),
            "{outcome:?}"
        );
    }
}
