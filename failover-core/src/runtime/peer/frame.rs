//! The authenticated link's frames: length-prefixed with a size limit, the hello exchange, and
//! the stream's halves.

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};

use super::config::{Hello, PeerConfig, PEER_PROTOCOL_VERSION, PROTOCOL};
use super::error::PeerError;
use super::identity::Fingerprint;
use super::tls::Tls;

/// Largest hello accepted.
pub(crate) const MAX_HELLO: usize = 4096;

/// An authenticated link to a peer, carrying frames.
#[derive(Debug)]
pub struct PeerStream {
    pub(super) io: Tls,
    pub(super) peer: String,
    pub(super) hello: Hello,
    pub(super) max_frame: usize,
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

/// Writes one frame: its length (4 bytes, big-endian), then its bytes.
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

/// Reads one frame of at most `max_frame` bytes; `None` at a clean end of the stream.
pub(crate) async fn read_frame<R: AsyncReadExt + Unpin>(
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

/// Reads the peer's hello from its frame and checks its protocol, version and service.
pub(crate) fn check_hello(peer: &str, theirs: &[u8], service: &str) -> Result<Hello, PeerError> {
    let mismatch = |reason: String| PeerError::Protocol {
        peer: peer.to_owned(),
        reason,
    };
    let hello: Hello =
        serde_json::from_slice(theirs).map_err(|e| mismatch(format!("unreadable hello: {e}")))?;
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
    if hello.service != service {
        return Err(mismatch(format!(
            "wants service {:?}, this link carries {:?}: check the port in the config",
            hello.service, service
        )));
    }
    Ok(hello)
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

    /// Sends our hello, reads theirs and checks protocol, version and service.
    pub(super) async fn exchange_hello(mut self, config: &PeerConfig) -> Result<Self, PeerError> {
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
        self.hello = check_hello(&self.peer, &theirs, &config.service)?;
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
