//! A small DNS client: one query to one name server over UDP or TCP, with a deadline.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

use crate::answer::{Transport, EDNS_PAYLOAD};
use crate::error::DnsError;

/// Asks `server` for `name` `record_type` (class IN, no recursion wanted, EDNS with a 1232-byte
/// payload) and returns its response, whatever its rcode.
///
/// Over UDP, a truncated response is asked again over TCP within the same `timeout`. The
/// response must match the query (ID and question); anything else that arrives on the socket
/// is ignored until the deadline.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use failover_dns::{query, Transport};
/// use hickory_proto::rr::{Name, RecordType};
///
/// let response = query(
///     "127.0.0.1:53".parse()?,
///     &Name::from_ascii("test.ru.")?,
///     RecordType::SOA,
///     Transport::Udp,
///     std::time::Duration::from_secs(1),
/// )
/// .await?;
/// println!("{} answers", response.answers.len());
/// # Ok(())
/// # }
/// ```
pub async fn query(
    server: SocketAddr,
    name: &Name,
    record_type: RecordType,
    transport: Transport,
    timeout: Duration,
) -> Result<Message, DnsError> {
    let deadline = Instant::now() + timeout;
    let id = random_id();
    let mut message = Message::query();
    message.metadata.id = id;
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(name.clone(), record_type));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    message.set_edns(edns);
    let bytes = message
        .to_vec()
        .map_err(|error| DnsError::Config(format!("cannot encode a query for {name}: {error}")))?;
    let question = &message.queries[0];
    let exchange = Exchange {
        server,
        question,
        id,
        deadline,
        timeout,
    };
    if transport == Transport::Udp {
        let response = exchange.udp(&bytes).await?;
        if !response.truncation {
            return Ok(response);
        }
    }
    exchange.tcp(&bytes).await
}

/// One query's fixed parts.
struct Exchange<'a> {
    server: SocketAddr,
    question: &'a Query,
    id: u16,
    deadline: Instant,
    timeout: Duration,
}

impl Exchange<'_> {
    async fn udp(&self, bytes: &[u8]) -> Result<Message, DnsError> {
        const UDP: &str = "udp";
        let io = |source| DnsError::QueryIo {
            server: self.server,
            protocol: UDP,
            source,
        };
        // Connected, so that only the server's datagrams arrive and ICMP errors surface.
        let socket = UdpSocket::bind(unspecified(self.server))
            .await
            .map_err(io)?;
        socket.connect(self.server).await.map_err(io)?;
        socket.send(bytes).await.map_err(io)?;
        let mut buffer = vec![0u8; 65535];
        loop {
            let length = match timeout_at(self.deadline, socket.recv(&mut buffer)).await {
                Ok(received) => received.map_err(io)?,
                Err(_) => return Err(self.timed_out(UDP)),
            };
            // A stray or forged datagram is not the answer: keep waiting for the real one.
            if let Ok(response) = self.check(&buffer[..length], UDP) {
                return Ok(response);
            }
        }
    }

    async fn tcp(&self, bytes: &[u8]) -> Result<Message, DnsError> {
        const TCP: &str = "tcp";
        let io = |source| DnsError::QueryIo {
            server: self.server,
            protocol: TCP,
            source,
        };
        let exchange = async {
            let mut stream = TcpStream::connect(self.server).await.map_err(io)?;
            let length = u16::try_from(bytes.len()).map_err(|_| {
                DnsError::Config(format!("a query of {} bytes is too long", bytes.len()))
            })?;
            let mut frame = Vec::with_capacity(bytes.len() + 2);
            frame.extend_from_slice(&length.to_be_bytes());
            frame.extend_from_slice(bytes);
            stream.write_all(&frame).await.map_err(io)?;
            let mut length = [0u8; 2];
            stream.read_exact(&mut length).await.map_err(io)?;
            let mut response = vec![0u8; usize::from(u16::from_be_bytes(length))];
            stream.read_exact(&mut response).await.map_err(io)?;
            self.check(&response, TCP)
        };
        timeout_at(self.deadline, exchange)
            .await
            .map_err(|_| self.timed_out(TCP))?
    }

    /// The response, if it answers this query.
    fn check(&self, bytes: &[u8], protocol: &'static str) -> Result<Message, DnsError> {
        let unusable = |reason: String| DnsError::QueryResponse {
            server: self.server,
            protocol,
            reason,
        };
        let response =
            Message::from_vec(bytes).map_err(|error| unusable(format!("malformed: {error}")))?;
        if response.id != self.id || response.message_type != MessageType::Response {
            return Err(unusable(format!(
                "id {} is not a response to query id {}",
                response.id, self.id
            )));
        }
        match response.queries.as_slice() {
            // Name equality is case-insensitive.
            [echoed]
                if echoed.query_type() == self.question.query_type()
                    && echoed.name() == self.question.name() =>
            {
                Ok(response)
            }
            // Error responses may leave the question out.
            [] if response.response_code != ResponseCode::NoError => Ok(response),
            _ => Err(unusable("the question is not the one asked".to_owned())),
        }
    }

    fn timed_out(&self, protocol: &'static str) -> DnsError {
        DnsError::QueryTimeout {
            server: self.server,
            protocol,
            timeout: self.timeout,
        }
    }
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

/// `udp` or `tcp`.
pub(crate) fn protocol(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
    }
}
