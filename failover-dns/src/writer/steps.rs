//! The time limit of each step of a publish, and the SOA serial query that verifies one.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use tokio::time::Instant;

use crate::error::DnsError;
use crate::exchange::{Exchange, ExchangeError, Step};

/// The default limit of each step of a publish (file write, reload command, DNS exchange).
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `future` for at most `limit`; `what` completes "timed out after 5s while {what}".
pub(crate) async fn within<T>(
    limit: Duration,
    what: &str,
    future: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {limit:?} while {what}")))
}

/// Runs blocking file-system work on tokio's blocking pool for at most `limit`.
///
/// A timed-out job cannot be stopped; it finishes in the background and the publish reports
/// the timeout (the next publish starts again from the file on disk).
pub(crate) async fn blocking_within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    job: impl FnOnce() -> Result<T, DnsError> + Send + 'static,
) -> Result<Result<T, DnsError>, String> {
    within(limit, what, async {
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|error| format!("the task {what} failed: {error}"))
    })
    .await
}

/// Asks `server` for the zone's SOA over UDP and returns its serial (one query, `limit` long).
///
/// Unauthenticated: used to see what a name server loaded, never to decide what to publish.
pub(crate) async fn query_soa_serial(
    server: SocketAddr,
    origin: &Name,
    limit: Duration,
) -> Result<u32, String> {
    let deadline = Instant::now() + limit;
    let mut query = Message::query();
    query.metadata.recursion_desired = false;
    let mut question = Query::new();
    question
        .set_name(origin.clone())
        .set_query_class(DNSClass::IN)
        .set_query_type(RecordType::SOA);
    query.add_query(question);
    let bytes = query
        .to_vec()
        .map_err(|e| format!("cannot encode the SOA query: {e}"))?;
    let response = Exchange::new(server, &bytes)
        .udp(deadline)
        .await
        .map_err(|error| match error {
            ExchangeError::Timeout(_) => {
                format!("timed out after {limit:?} while asking {server} for the SOA of {origin}")
            }
            ExchangeError::Io { step, source, .. } => match step {
                Step::Bind(_) => format!("cannot bind a udp socket: {source}"),
                Step::Connect => format!("cannot reach {server}: {source}"),
                Step::Send => format!("cannot send to {server}: {source}"),
                Step::Receive => format!("no answer from {server}: {source}"),
            },
            other => format!("{server} answers the SOA query of {origin} unusably: {other}"),
        })?
        .message;
    if response.metadata.response_code != ResponseCode::NoError {
        return Err(format!(
            "{server} answers {} for the SOA of {origin} (the zone is not loaded there)",
            response.metadata.response_code
        ));
    }
    response
        .answers
        .iter()
        .find_map(|record| match &record.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
        .ok_or_else(|| format!("{server} has no SOA for {origin}"))
}
