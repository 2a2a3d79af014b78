//! A small DNS client: one query to one name server over UDP or TCP, with a deadline.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::time::Instant;

use crate::answer::{Transport, EDNS_PAYLOAD};
use crate::error::DnsError;
use crate::exchange::{random_id, Exchange, ExchangeError, TCP, UDP};

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
    let response = Exchange::new(server, &bytes)
        .question(question)
        .run(transport, deadline)
        .await
        .map_err(|error| query_error(server, timeout, error))?;
    Ok(response.message)
}

/// The exchange's failure as the client reports it.
fn query_error(server: SocketAddr, timeout: Duration, error: ExchangeError) -> DnsError {
    match error {
        ExchangeError::Timeout(protocol) => DnsError::QueryTimeout {
            server,
            protocol,
            timeout,
        },
        ExchangeError::Io {
            protocol, source, ..
        } => DnsError::QueryIo {
            server,
            protocol,
            source,
        },
        ExchangeError::TooLong(length) => {
            DnsError::Config(format!("a query of {length} bytes is too long"))
        }
        // Only TCP reports a response that is not the answer (UDP ignores it and waits).
        unusable => DnsError::QueryResponse {
            server,
            protocol: TCP,
            reason: unusable.to_string(),
        },
    }
}

/// `udp` or `tcp`.
pub(crate) fn protocol(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => UDP,
        Transport::Tcp => TCP,
    }
}
