//! One DNS exchange: an encoded request to one server over UDP or TCP, and its matching response.
//!
//! The client ([`query`](crate::query)), NOTIFY to the secondaries, the dynamic update writer
//! and the zone file writer's verification all send their messages through [`Exchange`]. It only
//! moves and matches messages: building the request, signing it and judging the response (its
//! rcode, its TSIG) stay with the caller.
//!
//! A response is the one asked for when it parses, is a response (QR), and echoes the request's
//! ID and opcode (and its question, when [`Exchange::question`] asks for that). Over UDP anything
//! else that arrives is ignored until the deadline (a stray or forged datagram is not the
//! answer); over TCP it is an error, since nothing else can arrive on that connection.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

use crate::answer::Transport;

/// The protocol names errors carry.
pub(crate) const UDP: &str = "udp";
pub(crate) const TCP: &str = "tcp";

/// One request to one server, and what its response must echo.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Exchange<'a> {
    server: SocketAddr,
    request: &'a [u8],
    source: Option<IpAddr>,
    question: Option<&'a Query>,
}

/// A response that answers the request: parsed, and as received (a TSIG verifier needs the bytes).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) message: Message,
    pub(crate) bytes: Vec<u8>,
}

/// Why an exchange gave no usable response.
///
/// `Mismatched`, `WrongQuestion` and `Malformed` come from TCP only: over UDP such a datagram is
/// ignored and the exchange keeps waiting.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// No response before the deadline.
    #[error("no answer in time over {0}")]
    Timeout(&'static str),
    /// The socket failed: refused, unreachable, reset, no local address.
    #[error("cannot {step} over {protocol}: {source}")]
    Io {
        /// `udp` or `tcp`.
        protocol: &'static str,
        /// What was being done.
        step: Step,
        /// What the operating system said.
        source: io::Error,
    },
    /// The request is longer than TCP's 2-byte length prefix allows.
    #[error("a message of {0} bytes is too long")]
    TooLong(usize),
    /// The UDP response has the TC bit: the answer did not fit, ask again over TCP.
    #[error("the response is truncated")]
    Truncated,
    /// The response has another ID or opcode, or is not a response.
    #[error("id {got} is not a response to query id {expected}")]
    Mismatched {
        /// The ID of the message received.
        got: u16,
        /// The ID of the request.
        expected: u16,
    },
    /// The response echoes another question.
    #[error("the question is not the one asked")]
    WrongQuestion,
    /// The response does not parse.
    #[error("malformed: {0}")]
    Malformed(String),
}

/// The socket operation an [`ExchangeError::Io`] happened in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Binding the local socket (to this address).
    Bind(SocketAddr),
    /// Connecting to the server (for UDP: setting it as the only peer).
    Connect,
    /// Sending the request.
    Send,
    /// Receiving the response.
    Receive,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bind(local) => write!(f, "bind {local}"),
            Self::Connect => f.write_str("connect"),
            Self::Send => f.write_str("send"),
            Self::Receive => f.write_str("receive"),
        }
    }
}

impl<'a> Exchange<'a> {
    /// Sends `request` (an encoded DNS message, header included) to `server`.
    pub(crate) fn new(server: SocketAddr, request: &'a [u8]) -> Self {
        Self {
            server,
            request,
            source: None,
            question: None,
        }
    }

    /// Sends from this local address instead of the one the kernel picks by route.
    pub(crate) fn source(mut self, source: Option<IpAddr>) -> Self {
        self.source = source;
        self
    }

    /// Also requires the response to echo `question` (an error response may leave it out).
    pub(crate) fn question(mut self, question: &'a Query) -> Self {
        self.question = Some(question);
        self
    }

    /// Over `transport` before `deadline`; over UDP, a truncated response is asked again over TCP
    /// (same request, same deadline).
    pub(crate) async fn run(
        &self,
        transport: Transport,
        deadline: Instant,
    ) -> Result<Reply, ExchangeError> {
        if transport == Transport::Udp {
            match self.udp(deadline).await {
                Err(ExchangeError::Truncated) => {}
                done => return done,
            }
        }
        self.tcp(deadline).await
    }

    /// One UDP round before `deadline`; a truncated response is [`ExchangeError::Truncated`].
    pub(crate) async fn udp(&self, deadline: Instant) -> Result<Reply, ExchangeError> {
        let io = |step| {
            move |source| ExchangeError::Io {
                protocol: UDP,
                step,
                source,
            }
        };
        let local = self.local();
        let socket = UdpSocket::bind(local)
            .await
            .map_err(io(Step::Bind(local)))?;
        // Connected, so that only the server's datagrams arrive and ICMP errors surface.
        socket
            .connect(self.server)
            .await
            .map_err(io(Step::Connect))?;
        socket.send(self.request).await.map_err(io(Step::Send))?;
        let mut buffer = vec![0u8; 65535];
        loop {
            let length = match timeout_at(deadline, socket.recv(&mut buffer)).await {
                Ok(received) => received.map_err(io(Step::Receive))?,
                Err(_) => return Err(ExchangeError::Timeout(UDP)),
            };
            // A stray or forged datagram is not the answer: keep waiting for the real one.
            let Ok(message) = self.check(&buffer[..length]) else {
                continue;
            };
            if message.truncation {
                return Err(ExchangeError::Truncated);
            }
            return Ok(Reply {
                message,
                bytes: buffer[..length].to_vec(),
            });
        }
    }

    /// One TCP round before `deadline` (RFC 1035 section 4.2.2: a 2-byte length before each message).
    pub(crate) async fn tcp(&self, deadline: Instant) -> Result<Reply, ExchangeError> {
        let io = |step| {
            move |source| ExchangeError::Io {
                protocol: TCP,
                step,
                source,
            }
        };
        let length = u16::try_from(self.request.len())
            .map_err(|_| ExchangeError::TooLong(self.request.len()))?;
        let round = async {
            let mut stream = self.connect_tcp().await?;
            let mut frame = Vec::with_capacity(self.request.len() + 2);
            frame.extend_from_slice(&length.to_be_bytes());
            frame.extend_from_slice(self.request);
            stream.write_all(&frame).await.map_err(io(Step::Send))?;
            let mut prefix = [0u8; 2];
            stream
                .read_exact(&mut prefix)
                .await
                .map_err(io(Step::Receive))?;
            let mut bytes = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
            stream
                .read_exact(&mut bytes)
                .await
                .map_err(io(Step::Receive))?;
            let message = self.check(&bytes)?;
            Ok(Reply { message, bytes })
        };
        timeout_at(deadline, round)
            .await
            .map_err(|_| ExchangeError::Timeout(TCP))?
    }

    async fn connect_tcp(&self) -> Result<TcpStream, ExchangeError> {
        let io = |step| {
            move |source| ExchangeError::Io {
                protocol: TCP,
                step,
                source,
            }
        };
        let Some(source) = self.source else {
            return TcpStream::connect(self.server)
                .await
                .map_err(io(Step::Connect));
        };
        let local = SocketAddr::new(source, 0);
        let socket = match local {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .and_then(|socket| socket.bind(local).map(|()| socket))
        .map_err(io(Step::Bind(local)))?;
        socket.connect(self.server).await.map_err(io(Step::Connect))
    }

    /// The local address to send from: the source, or the wildcard of the server's family.
    fn local(&self) -> SocketAddr {
        match self.source {
            Some(ip) => SocketAddr::new(ip, 0),
            None => unspecified(self.server),
        }
    }

    /// The response, if it answers this request.
    fn check(&self, bytes: &[u8]) -> Result<Message, ExchangeError> {
        let response = Message::from_vec(bytes)
            .map_err(|error| ExchangeError::Malformed(error.to_string()))?;
        let expected = request_id(self.request);
        if response.id != expected
            || response.message_type != MessageType::Response
            || u8::from(response.op_code) != request_op_code(self.request)
        {
            return Err(ExchangeError::Mismatched {
                got: response.id,
                expected,
            });
        }
        let Some(question) = self.question else {
            return Ok(response);
        };
        match response.queries.as_slice() {
            // Name equality is case-insensitive.
            [echoed]
                if echoed.query_type() == question.query_type()
                    && echoed.name() == question.name() =>
            {
                Ok(response)
            }
            // Error responses may leave the question out.
            [] if response.response_code != ResponseCode::NoError => Ok(response),
            _ => Err(ExchangeError::WrongQuestion),
        }
    }
}

/// The ID in a message's header (0 when it is too short to have one).
fn request_id(message: &[u8]) -> u16 {
    u16::from_be_bytes([
        message.first().copied().unwrap_or(0),
        message.get(1).copied().unwrap_or(0),
    ])
}

/// The opcode in a message's header: bits 1-4 of its third byte.
fn request_op_code(message: &[u8]) -> u8 {
    (message.get(2).copied().unwrap_or(0) >> 3) & 0x0f
}

/// The wildcard address of `server`'s family, port 0.
pub(crate) fn unspecified(server: SocketAddr) -> SocketAddr {
    let ip = match server {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

/// An unpredictable message ID (RFC 5452): SipHash with a random key over a counter.
pub(crate) fn random_id() -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let hash = RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed));
    (hash & 0xffff) as u16 // the low 16 bits, on purpose
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use std::time::Duration;

    use hickory_proto::op::OpCode;
    use hickory_proto::rr::{Name, RecordType};

    use super::*;

    fn request(question: &Query) -> Vec<u8> {
        let mut message = Message::query();
        message.add_query(question.clone());
        message.to_vec().unwrap()
    }

    fn response_to(request: &[u8], question: Option<&Query>, op_code: OpCode) -> Vec<u8> {
        let mut response = Message::response(request_id(request), op_code);
        if let Some(question) = question {
            response.add_query(question.clone());
        }
        response.to_vec().unwrap()
    }

    #[tokio::test]
    async fn over_udp_strays_are_ignored_until_the_answer_arrives() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = server.local_addr().unwrap();
        let asked = Query::query(Name::from_ascii("test.ru.").unwrap(), RecordType::SOA);
        let other = Query::query(Name::from_ascii("other.ru.").unwrap(), RecordType::SOA);
        let bytes = request(&asked);
        let responder = tokio::spawn(async move {
            let mut buffer = vec![0; 512];
            let (length, client) = server.recv_from(&mut buffer).await.unwrap();
            let request = buffer[..length].to_vec();
            let mut wrong_id = response_to(&request, Some(&asked), OpCode::Query);
            wrong_id[0] ^= 0xff;
            for stray in [
                b"garbage".to_vec(),
                wrong_id,
                response_to(&request, Some(&asked), OpCode::Notify),
                response_to(&request, Some(&other), OpCode::Query),
                response_to(&request, Some(&asked), OpCode::Query),
            ] {
                server.send_to(&stray, client).await.unwrap();
            }
        });
        let question = Query::query(Name::from_ascii("TEST.ru.").unwrap(), RecordType::SOA);
        let deadline = Instant::now() + Duration::from_secs(5);
        let response = Exchange::new(address, &bytes)
            .question(&question)
            .udp(deadline)
            .await
            .unwrap();
        assert_eq!(response.message.queries[0].name().to_ascii(), "test.ru.");
        assert_eq!(
            Message::from_vec(&response.bytes).unwrap(),
            response.message
        );
        responder.await.unwrap();
    }

    #[tokio::test]
    async fn over_tcp_a_mismatched_response_is_an_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let asked = Query::query(Name::from_ascii("test.ru.").unwrap(), RecordType::SOA);
        let bytes = request(&asked);
        let responder = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut prefix = [0; 2];
            stream.read_exact(&mut prefix).await.unwrap();
            let mut request = vec![0; usize::from(u16::from_be_bytes(prefix))];
            stream.read_exact(&mut request).await.unwrap();
            let mut response = response_to(&request, None, OpCode::Query);
            response[1] ^= 0xff;
            let mut framed = u16::try_from(response.len())
                .unwrap()
                .to_be_bytes()
                .to_vec();
            framed.extend_from_slice(&response);
            stream.write_all(&framed).await.unwrap();
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        let error = Exchange::new(address, &bytes)
            .tcp(deadline)
            .await
            .unwrap_err();
        assert!(
            matches!(error, ExchangeError::Mismatched { expected, .. } if expected == request_id(&bytes)),
            "{error:?}"
        );
        responder.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_is_a_timeout() {
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let bytes = request(&Query::query(Name::root(), RecordType::NS));
        let deadline = Instant::now() + Duration::from_secs(2);
        let error = Exchange::new(silent.local_addr().unwrap(), &bytes)
            .udp(deadline)
            .await
            .unwrap_err();
        assert!(matches!(error, ExchangeError::Timeout("udp")), "{error:?}");
    }
}
