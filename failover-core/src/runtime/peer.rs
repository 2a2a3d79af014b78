//! The authenticated peer link: TCP with TLS 1.3, each node's certificate pinned in the other's
//! config, a versioned hello, and length-prefixed frames with a size limit.
//!
//! One way to talk to another `failoverd` (the live mirror, shared observations): no CA, no root
//! SSH keys. `failoverd keygen` makes a node's key and prints the fingerprint its peers pin.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// The protocol name in the hello.
const PROTOCOL: &str = "failover-peer";
/// The hello's version; a peer speaking another is refused with both versions named.
pub const PEER_PROTOCOL_VERSION: u32 = 1;
/// Largest frame accepted unless configured otherwise.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;
/// Largest hello accepted.
const MAX_HELLO: usize = 4096;

/// Why a peer link failed or was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// Reading or writing keys failed.
    #[error("{path}: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What went wrong and the fix.
        reason: String,
    },
    /// A fingerprint in the config cannot be read.
    #[error("fingerprint {0:?} is not sha256:<64 hex digits> (print yours with failoverd keygen --show)")]
    Fingerprint(String),
    /// The socket failed.
    #[error("peer {peer}: {source}")]
    Io {
        /// The other end.
        peer: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The TLS handshake failed: the usual cause is a certificate that is not pinned.
    #[error("peer {peer} refused: {reason}")]
    Refused {
        /// The other end.
        peer: String,
        /// Why (the TLS alert or our verifier's words).
        reason: String,
    },
    /// The peer speaks another protocol, version or service.
    #[error("peer {peer}: {reason}")]
    Protocol {
        /// The other end.
        peer: String,
        /// What did not match.
        reason: String,
    },
    /// A frame larger than the limit was announced; the link must be dropped.
    #[error("peer {peer} sent a frame of {size} bytes (limit {limit})")]
    FrameTooLarge {
        /// The other end.
        peer: String,
        /// The announced size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Nothing happened within the time allowed.
    #[error("peer {peer}: {what} timed out after {after:?}")]
    Timeout {
        /// The other end.
        peer: String,
        /// What was waited for.
        what: &'static str,
        /// How long.
        after: Duration,
    },
}

/// The SHA-256 of a node's certificate, as pinned in its peers' configs: `sha256:` and 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(certificate: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, certificate);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Self(bytes)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = PeerError;

    fn from_str(text: &str) -> Result<Self, PeerError> {
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        if hex.len() != 64 {
            return Err(PeerError::Fingerprint(text.to_owned()));
        }
        let mut bytes = [0u8; 32];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = hex
                .get(index * 2..index * 2 + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| PeerError::Fingerprint(text.to_owned()))?;
        }
        Ok(Self(bytes))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A node's own certificate and key.
pub struct Identity {
    certificate: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    fingerprint: Fingerprint,
    /// The PEM text of a freshly generated identity, for [`Identity::write`].
    pem: Option<(String, String)>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A new self-signed certificate (ECDSA P-256) for the node `name`.
    pub fn generate(name: &str) -> Result<Self, PeerError> {
        let key_error = |e: rcgen::Error| PeerError::Key {
            path: PathBuf::from(name),
            reason: format!("cannot generate a key: {e}"),
        };
        let certified = rcgen::generate_simple_self_signed(vec![format!("{name}.failover-peer")])
            .map_err(key_error)?;
        let certificate = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        Ok(Self {
            fingerprint: Fingerprint::of(&certificate),
            certificate,
            key,
            pem: Some((certified.cert.pem(), certified.signing_key.serialize_pem())),
        })
    }

    /// Writes a generated identity as `node.crt` and `node.key` (mode 0600) in PEM into `dir`;
    /// refuses to overwrite.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf), PeerError> {
        use std::io::Write;
        let Some((certificate_pem, key_pem)) = &self.pem else {
            return Err(PeerError::Key {
                path: dir.to_owned(),
                reason: "only a generated identity can be written".to_owned(),
            });
        };
        let certificate_path = dir.join("node.crt");
        let key_path = dir.join("node.key");
        for path in [&certificate_path, &key_path] {
            if path.exists() {
                return Err(PeerError::Key {
                    path: path.clone(),
                    reason: "exists already; remove it first if you mean to replace this node's key (its peers must then pin the new fingerprint)".to_owned(),
                });
            }
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |e: std::io::Error| PeerError::Key {
                path,
                reason: e.to_string(),
            }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        std::fs::write(&certificate_path, certificate_pem).map_err(io(&certificate_path))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&key_path).map_err(io(&key_path))?;
        file.write_all(key_pem.as_bytes()).map_err(io(&key_path))?;
        Ok((certificate_path, key_path))
    }

    /// Loads a certificate and key written by [`write`](Identity::write) (or any PEM pair).
    pub fn load(certificate: &Path, key: &Path) -> Result<Self, PeerError> {
        use rustls::pki_types::pem::PemObject;
        let error = |path: &Path| {
            let path = path.to_owned();
            move |e: rustls::pki_types::pem::Error| PeerError::Key {
                path,
                reason: format!("{e} (make one with failoverd keygen)"),
            }
        };
        let certificate = CertificateDer::from_pem_file(certificate).map_err(error(certificate))?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(error(key))?;
        Ok(Self {
            fingerprint: Fingerprint::of(&certificate),
            certificate,
            key,
            pem: None,
        })
    }

    /// What peers pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}

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

/// What a link needs: who we are, whom we trust, which service this link carries.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    identity: Arc<Identity>,
    pinned: Vec<Fingerprint>,
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

    fn provider() -> Arc<CryptoProvider> {
        crate::runtime::crypto::install_crypto_provider();
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn verifier(&self) -> Arc<PinnedVerifier> {
        Arc::new(PinnedVerifier {
            pinned: self.pinned.clone(),
            provider: Self::provider(),
        })
    }

    fn client(&self) -> Result<tokio_rustls::TlsConnector, PeerError> {
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

    fn server(&self) -> Result<tokio_rustls::TlsAcceptor, PeerError> {
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

    fn tls_error(&self, error: rustls::Error) -> PeerError {
        PeerError::Key {
            path: PathBuf::from(&self.node),
            reason: format!("unusable key for TLS: {error}"),
        }
    }

    fn hello(&self) -> Hello {
        Hello {
            protocol: PROTOCOL.to_owned(),
            version: PEER_PROTOCOL_VERSION,
            service: self.service.clone(),
            node: self.node.clone(),
        }
    }
}

type Tls = tokio_rustls::TlsStream<TcpStream>;

/// An authenticated link to a peer, carrying frames.
#[derive(Debug)]
pub struct PeerStream {
    io: Tls,
    peer: String,
    hello: Hello,
    max_frame: usize,
}

/// The reading half of a [`PeerStream`].
#[derive(Debug)]
pub struct PeerReader {
    io: ReadHalf<Tls>,
    peer: String,
    max_frame: usize,
}

/// The writing half of a [`PeerStream`].
#[derive(Debug)]
pub struct PeerWriter {
    io: WriteHalf<Tls>,
    peer: String,
}

async fn write_frame<W: AsyncWriteExt + Unpin>(
    io: &mut W,
    peer: &str,
    frame: &[u8],
) -> Result<(), PeerError> {
    let length = u32::try_from(frame.len()).map_err(|_| PeerError::FrameTooLarge {
        peer: peer.to_owned(),
        size: frame.len(),
        limit: u32::MAX as usize,
    })?;
    let io_error = |source| PeerError::Io {
        peer: peer.to_owned(),
        source,
    };
    io.write_all(&length.to_be_bytes())
        .await
        .map_err(io_error)?;
    io.write_all(frame).await.map_err(io_error)?;
    io.flush().await.map_err(io_error)
}

async fn read_frame<R: AsyncReadExt + Unpin>(
    io: &mut R,
    peer: &str,
    max_frame: usize,
) -> Result<Option<Vec<u8>>, PeerError> {
    let mut length = [0u8; 4];
    match io.read_exact(&mut length).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(source) => {
            return Err(PeerError::Io {
                peer: peer.to_owned(),
                source,
            })
        }
    }
    let size = u32::from_be_bytes(length) as usize;
    if size > max_frame {
        return Err(PeerError::FrameTooLarge {
            peer: peer.to_owned(),
            size,
            limit: max_frame,
        });
    }
    let mut frame = vec![0u8; size];
    io.read_exact(&mut frame)
        .await
        .map_err(|source| PeerError::Io {
            peer: peer.to_owned(),
            source,
        })?;
    Ok(Some(frame))
}

impl PeerStream {
    /// Sends one frame.
    pub async fn send(&mut self, frame: &[u8]) -> Result<(), PeerError> {
        write_frame(&mut self.io, &self.peer, frame).await
    }

    /// Receives one frame; `None` when the peer closed the link.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, PeerError> {
        read_frame(&mut self.io, &self.peer, self.max_frame).await
    }

    /// The peer's hello (its node name and service).
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The peer's address, for messages.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The fingerprint of the certificate the peer authenticated with (one of the pinned ones):
    /// what ties the name in its hello to a key, when several peers share a listener.
    pub fn peer_fingerprint(&self) -> Option<Fingerprint> {
        let (_, connection) = self.io.get_ref();
        connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|certificate| Fingerprint::of(certificate))
    }

    /// Splits into halves that can be used from two tasks.
    pub fn into_split(self) -> (PeerReader, PeerWriter) {
        let (read, write) = tokio::io::split(self.io);
        (
            PeerReader {
                io: read,
                peer: self.peer.clone(),
                max_frame: self.max_frame,
            },
            PeerWriter {
                io: write,
                peer: self.peer,
            },
        )
    }

    async fn exchange_hello(mut self, config: &PeerConfig) -> Result<Self, PeerError> {
        let ours = serde_json::to_vec(&config.hello()).map_err(|e| PeerError::Protocol {
            peer: self.peer.clone(),
            reason: e.to_string(),
        })?;
        self.send(&ours).await?;
        let theirs = read_frame(&mut self.io, &self.peer, MAX_HELLO)
            .await?
            .ok_or_else(|| PeerError::Protocol {
                peer: self.peer.clone(),
                reason: "closed the link before its hello".to_owned(),
            })?;
        let hello: Hello = serde_json::from_slice(&theirs).map_err(|e| PeerError::Protocol {
            peer: self.peer.clone(),
            reason: format!("unreadable hello: {e}"),
        })?;
        let mismatch = |reason: String| PeerError::Protocol {
            peer: self.peer.clone(),
            reason,
        };
        if hello.protocol != PROTOCOL {
            return Err(mismatch(format!(
                "speaks {:?}, not {PROTOCOL}",
                hello.protocol
            )));
        }
        if hello.version != PEER_PROTOCOL_VERSION {
            return Err(mismatch(format!(
                "speaks version {} of the peer protocol, this node {PEER_PROTOCOL_VERSION}: upgrade the older one",
                hello.version
            )));
        }
        if hello.service != config.service {
            return Err(mismatch(format!(
                "wants service {:?}, this link carries {:?}: check the port in the config",
                hello.service, config.service
            )));
        }
        self.hello = hello;
        Ok(self)
    }
}

impl PeerReader {
    /// Receives one frame; `None` when the peer closed the link.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, PeerError> {
        read_frame(&mut self.io, &self.peer, self.max_frame).await
    }
}

impl PeerWriter {
    /// Sends one frame.
    pub async fn send(&mut self, frame: &[u8]) -> Result<(), PeerError> {
        write_frame(&mut self.io, &self.peer, frame).await
    }
}

fn handshake_failure(peer: &str, error: std::io::Error) -> PeerError {
    // rustls reports verifier errors and TLS alerts as io errors with the reason inside.
    PeerError::Refused {
        peer: peer.to_owned(),
        reason: error.to_string(),
    }
}

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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    fn pair() -> (Arc<Identity>, Arc<Identity>) {
        (
            Arc::new(Identity::generate("master").unwrap()),
            Arc::new(Identity::generate("slave").unwrap()),
        )
    }

    async fn listen(config: PeerConfig) -> (Arc<PeerListener>, SocketAddr) {
        let listener = Arc::new(
            PeerListener::bind("127.0.0.1:0".parse().unwrap(), config)
                .await
                .unwrap(),
        );
        let address = listener.local_addr().unwrap();
        (listener, address)
    }

    #[tokio::test]
    async fn pinned_peers_talk_in_frames() {
        let (a, b) = pair();
        let (listener, address) = listen(PeerConfig::new(
            a.clone(),
            vec![b.fingerprint()],
            "mirror",
            "master",
        ))
        .await;
        let server = tokio::spawn(async move {
            let mut stream = listener.accept().await.unwrap();
            assert_eq!(stream.hello().node, "slave");
            let frame = stream.recv().await.unwrap().unwrap();
            stream.send(&frame.repeat(2)).await.unwrap();
        });
        let config = PeerConfig::new(b, vec![a.fingerprint()], "mirror", "slave");
        let mut stream = connect(address, &config).await.unwrap();
        assert_eq!(stream.hello().node, "master");
        stream.send(b"ping").await.unwrap();
        assert_eq!(stream.recv().await.unwrap().unwrap(), b"pingping");
        server.await.unwrap();
        assert_eq!(
            stream.recv().await.unwrap(),
            None,
            "a closed link reads as None"
        );
    }

    #[tokio::test]
    async fn a_peer_with_another_certificate_is_refused_both_ways() {
        let (a, b) = pair();
        let stranger = Arc::new(Identity::generate("stranger").unwrap());
        let (listener, address) = listen(PeerConfig::new(
            a.clone(),
            vec![b.fingerprint()],
            "mirror",
            "master",
        ))
        .await;
        let server = tokio::spawn(async move { listener.accept().await });
        let config = PeerConfig::new(
            stranger.clone(),
            vec![a.fingerprint()],
            "mirror",
            "stranger",
        );
        let client = connect(address, &config).await;
        let accepted = server.await.unwrap();
        let err = accepted.unwrap_err().to_string();
        assert!(err.contains("is not pinned"), "{err}");
        assert!(err.contains(&stranger.fingerprint().to_string()), "{err}");
        assert!(client.is_err(), "the stranger gets no link either");

        // And a server whose certificate the client did not pin.
        let (listener, address) = listen(PeerConfig::new(
            stranger.clone(),
            vec![b.fingerprint()],
            "mirror",
            "stranger",
        ))
        .await;
        tokio::spawn(async move { listener.accept().await });
        let config = PeerConfig::new(b, vec![a.fingerprint()], "mirror", "slave");
        let err = connect(address, &config).await.unwrap_err().to_string();
        assert!(err.contains("is not pinned"), "{err}");
    }

    #[tokio::test]
    async fn oversized_frames_and_wrong_services_are_refused() {
        let (a, b) = pair();
        let mut server_config =
            PeerConfig::new(a.clone(), vec![b.fingerprint()], "mirror", "master");
        server_config.max_frame = 1024;
        let (listener, address) = listen(server_config).await;
        let server = tokio::spawn(async move {
            let mut stream = listener.accept().await.unwrap();
            stream.recv().await
        });
        let config = PeerConfig::new(b.clone(), vec![a.fingerprint()], "mirror", "slave");
        let mut stream = connect(address, &config).await.unwrap();
        stream.send(&vec![0u8; 4096]).await.unwrap();
        let err = server.await.unwrap().unwrap_err().to_string();
        assert!(err.contains("frame of 4096 bytes (limit 1024)"), "{err}");

        let (listener, address) = listen(PeerConfig::new(
            a.clone(),
            vec![b.fingerprint()],
            "observations",
            "master",
        ))
        .await;
        tokio::spawn(async move { listener.accept().await });
        let err = connect(address, &config).await.unwrap_err().to_string();
        assert!(err.contains("wants service \"observations\""), "{err}");
    }

    #[tokio::test]
    async fn a_stalled_stranger_does_not_keep_a_peer_out() {
        let (a, b) = pair();
        let mut server_config =
            PeerConfig::new(a.clone(), vec![b.fingerprint()], "mirror", "master");
        server_config.handshake_timeout = Duration::from_secs(30);
        let (listener, address) = listen(server_config).await;
        // A connection that never says anything.
        let _stalled = TcpStream::connect(address).await.unwrap();
        let config = PeerConfig::new(b, vec![a.fingerprint()], "mirror", "slave");
        let client = tokio::spawn(async move { connect(address, &config).await });
        let accepted = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .expect("the real peer is accepted while the stalled one waits")
            .unwrap();
        assert_eq!(accepted.hello().node, "slave");
        assert!(client.await.unwrap().is_ok());
    }

    #[test]
    fn keys_round_trip_through_files_and_fingerprints_through_text() {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::generate("master").unwrap();
        let (certificate, key) = identity.write(dir.path()).unwrap();
        let loaded = Identity::load(&certificate, &key).unwrap();
        assert_eq!(loaded.fingerprint(), identity.fingerprint());
        let text = identity.fingerprint().to_string();
        assert_eq!(text.len(), 7 + 64);
        assert_eq!(text.parse::<Fingerprint>().unwrap(), identity.fingerprint());
        assert!(identity
            .write(dir.path())
            .unwrap_err()
            .to_string()
            .contains("exists already"));
        assert!("sha256:xyz".parse::<Fingerprint>().is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
