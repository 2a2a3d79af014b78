//! The admin listener's transport: HTTPS (TLS 1.3) with this server's `[identity]` key or the
//! `[admin] certificate`, or plain HTTP; and one accepted connection served over either.
//!
//! The TLS configs come from the peer link (`failover_core::peer`): one key per server, one
//! pinning verifier, nothing hand-written here.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use failover_core::peer::{Fingerprint, Identity};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::AdminState;
use crate::config::Config;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection may stay open.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// The admin listener's TLS: what it serves and the fingerprint clients pin.
#[derive(Clone)]
pub struct AdminTls {
    acceptor: tokio_rustls::TlsAcceptor,
    fingerprint: Fingerprint,
}

impl std::fmt::Debug for AdminTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTls")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl AdminTls {
    /// The server side of `[admin] tls = true` in `config`: `[admin] certificate` and `key` when
    /// given, else this server's `[identity]` key (which must be the one the file pins for this
    /// node, if it pins one). `Ok(None)`: plain HTTP (no `[admin]`, or `tls = false`).
    pub fn from_config(config: &Config) -> Result<Option<Self>, String> {
        let Some(admin) = config.admin.as_ref().filter(|a| a.tls) else {
            return Ok(None);
        };
        let (certificate, key, source) = match (&admin.certificate, &admin.key) {
            (Some(certificate), Some(key)) => (certificate, key, "[admin] certificate"),
            _ => (
                &config.identity.certificate,
                &config.identity.key,
                "[identity] certificate",
            ),
        };
        let identity = Identity::load(certificate, key)
            .map_err(|e| format!("tls = true: cannot load the {source}: {e}"))?;
        let fingerprint = identity.fingerprint();
        if admin.certificate.is_none() {
            if let Some(pinned) = config.local_fingerprint().filter(|p| *p != fingerprint) {
                return Err(format!(
                    "tls = true: {} holds the key {fingerprint}, but the file pins {pinned} for {}: failoverd status would refuse it",
                    certificate.display(),
                    config.local.as_deref().unwrap_or_default()
                ));
            }
        }
        let server = identity.https_server().map_err(|e| {
            format!(
                "tls = true: {} and {} are not a usable TLS key: {e}",
                certificate.display(),
                key.display()
            )
        })?;
        Ok(Some(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            fingerprint,
        }))
    }

    /// The SHA-256 of the certificate served: what clients pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}

/// Serves one accepted connection: with `tls`, the TLS handshake first (a client that does not
/// finish it, such as one speaking plain HTTP, gets no HTTP at all); then HTTP/1.1, for at most
/// a minute.
pub(super) async fn serve(stream: TcpStream, tls: Option<AdminTls>, state: AdminState) {
    let Some(tls) = tls else {
        return serve_http(stream, state).await;
    };
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(stream)).await {
        Ok(Ok(stream)) => serve_http(stream, state).await,
        Ok(Err(e)) => tracing::debug!("admin listener: TLS handshake with {peer} failed: {e}"),
        Err(_) => tracing::debug!("admin listener: TLS handshake with {peer} timed out"),
    }
}

async fn serve_http<S>(stream: S, state: AdminState)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(super::handle(request, &state).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
}
