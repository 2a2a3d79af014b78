//! TLS 1.3 with pinned certificates: the verifier that accepts exactly the pinned ones, both ends'
//! rustls configs, and how a failed handshake is reported.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::net::TcpStream;

use super::config::PeerConfig;
use super::error::PeerError;
use super::identity::{Fingerprint, Identity};

/// The TLS stream of a link, client or server side.
pub(super) type Tls = tokio_rustls::TlsStream<TcpStream>;

/// Accepts exactly the pinned certificates, and checks that the peer holds their keys.
#[derive(Debug)]
struct PinnedVerifier {
    pinned: Vec<Fingerprint>,
    provider: Arc<CryptoProvider>,
}

impl PinnedVerifier {
    fn check(&self, certificate: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let fingerprint = Fingerprint::of(certificate);
        if self.pinned.contains(&fingerprint) {
            Ok(())
        } else {
            Err(rustls::Error::General(format!(
                "certificate {fingerprint} is not pinned (pinned: {})",
                self.pinned
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    fn tls13(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _certificate: &CertificateDer<'_>,
        _signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "TLS 1.2 is not used between peers".to_owned(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl ClientCertVerifier for PinnedVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _certificate: &CertificateDer<'_>,
        _signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "TLS 1.2 is not used between peers".to_owned(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl PeerConfig {
    /// ring, as everywhere in the project.
    fn provider() -> Arc<CryptoProvider> {
        crate::runtime::crypto::install_crypto_provider();
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// A verifier of the pinned certificates.
    fn verifier(&self) -> Arc<PinnedVerifier> {
        Arc::new(PinnedVerifier {
            pinned: self.pinned.clone(),
            provider: Self::provider(),
        })
    }

    /// The TLS 1.3 client side, authenticated by this node's certificate.
    pub(super) fn client(&self) -> Result<tokio_rustls::TlsConnector, PeerError> {
        let config = rustls::ClientConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| self.tls_error(e))?
            .dangerous()
            .with_custom_certificate_verifier(self.verifier())
            .with_client_auth_cert(
                vec![self.identity.certificate.clone()],
                self.identity.key.clone_key(),
            )
            .map_err(|e| self.tls_error(e))?;
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }

    /// The TLS 1.3 server side, which asks the client for a pinned certificate.
    pub(super) fn server(&self) -> Result<tokio_rustls::TlsAcceptor, PeerError> {
        let config = rustls::ServerConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| self.tls_error(e))?
            .with_client_cert_verifier(self.verifier())
            .with_single_cert(
                vec![self.identity.certificate.clone()],
                self.identity.key.clone_key(),
            )
            .map_err(|e| self.tls_error(e))?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    /// A key rustls cannot use, named by this node.
    fn tls_error(&self, error: rustls::Error) -> PeerError {
        PeerError::Key {
            path: PathBuf::from(&self.node),
            reason: format!("unusable key for TLS: {error}"),
        }
    }
}

/// The client side of HTTPS to a daemon's listener (`failoverd status` and `admin` to the admin
/// listener): TLS 1.3 that accepts exactly the `pinned` certificates, whatever names they carry,
/// and shows no certificate of its own.
pub fn pinned_https_client(
    pinned: Vec<Fingerprint>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let verifier = Arc::new(PinnedVerifier {
        pinned,
        provider: PeerConfig::provider(),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(PeerConfig::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl Identity {
    /// The server side of an HTTPS listener (the admin listener): TLS 1.3 with this certificate
    /// and the chain that followed it in its file. It asks for no client certificate: who may
    /// act is the admin token's business, inside the encrypted exchange.
    pub fn https_server(&self) -> Result<rustls::ServerConfig, rustls::Error> {
        let chain = std::iter::once(self.certificate.clone())
            .chain(self.chain.iter().cloned())
            .collect();
        let mut config = rustls::ServerConfig::builder_with_provider(PeerConfig::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(chain, self.key.clone_key())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// A failed TLS handshake as a refusal, with rustls's reason.
pub(super) fn handshake_failure(peer: &str, error: std::io::Error) -> PeerError {
    // rustls reports verifier errors and TLS alerts as io errors with the reason inside.
    PeerError::Refused {
        peer: peer.to_owned(),
        reason: error.to_string(),
    }
}
