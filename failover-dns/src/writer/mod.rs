//! Zone writers that steer another name server: a BIND zone file plus reload, and RFC 2136 updates.
//!
//! Both take the same [`ManagedName`]s as [`ServedZone`](crate::ServedZone) and replace the A and
//! AAAA RRsets of each name the publication carries; names it leaves out keep their records.

mod dynamic_update;
mod zone_file;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use failover_core::{ManagedName, Publication};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use tokio::net::UdpSocket;

use crate::error::DnsError;
use crate::zone::{label_count, Zone};

pub use dynamic_update::{DynamicUpdateOptions, DynamicUpdateWriter};
pub use zone_file::{default_reload_command, ZoneFileOptions, ZoneFileWriter};

/// The default limit of each step of a publish (file write, reload command, DNS exchange).
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// The managed names of one zone, resolved to absolute lowercase names.
#[derive(Clone, Debug)]
pub(crate) struct ManagedSet {
    pub(crate) origin: Name,
    names: Vec<(String, Name)>,
}

/// What one managed name must answer after a publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Desired {
    pub(crate) name: Name,
    pub(crate) ttl: u32,
    pub(crate) addresses: Vec<IpAddr>,
}

impl ManagedSet {
    /// Resolves `managed` under `origin`; with `zone`, also checks them against the zone's records
    /// (no CNAME there, not at or below a delegation).
    pub(crate) fn new(
        origin: &Name,
        managed: &[ManagedName],
        zone: Option<&Zone>,
    ) -> Result<Self, DnsError> {
        let mut names: Vec<(String, Name)> = Vec::with_capacity(managed.len());
        for managed in managed {
            let relative = managed.name.as_str();
            let error = |reason: String| DnsError::ManagedName {
                name: relative.to_owned(),
                reason,
            };
            let name = absolute(origin, relative)
                .ok_or_else(|| error("not a valid domain name".to_owned()))?;
            if !origin.zone_of(&name) {
                return Err(error(format!("{name} is outside the zone {origin}")));
            }
            if names.iter().any(|(_, known)| *known == name) {
                return Err(error(format!("{name} is listed twice")));
            }
            if let Some(zone) = zone {
                for labels in label_count(origin) + 1..=label_count(&name) {
                    let ancestor = name.trim_to(labels);
                    if zone.nodes.get(&ancestor).is_some_and(|node| node.cut) {
                        return Err(error(format!(
                            "{name} is at or below the delegation {ancestor}"
                        )));
                    }
                }
                if zone
                    .nodes
                    .get(&name)
                    .is_some_and(|node| node.get(RecordType::CNAME).is_some())
                {
                    return Err(error(format!(
                        "{name} has a CNAME in the zone file; remove it to publish addresses there"
                    )));
                }
            }
            names.push((relative.to_owned(), name));
        }
        if names.is_empty() {
            return Err(DnsError::ManagedName {
                name: String::new(),
                reason: "no managed names (add at least one, e.g. `@` or `www`)".to_owned(),
            });
        }
        Ok(Self {
            origin: origin.clone(),
            names,
        })
    }

    /// The desired answers of a publication, checked: every name managed, no empty answer.
    pub(crate) fn desired(&self, publication: &Publication) -> Result<Vec<Desired>, DnsError> {
        let mut desired: Vec<Desired> = Vec::with_capacity(publication.answers.len());
        for answer in &publication.answers {
            let error = |reason: String| DnsError::Publication {
                name: answer.name.clone(),
                reason,
            };
            let name = absolute(&self.origin, &answer.name)
                .filter(|name| self.names.iter().any(|(_, managed)| managed == name))
                .ok_or_else(|| {
                    error(format!(
                        "not a managed name of zone {} (managed: {})",
                        self.origin,
                        self.names
                            .iter()
                            .map(|(relative, _)| relative.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            if answer.addresses.is_empty() {
                return Err(error(
                    "refusing to publish an empty answer (the policy must choose what to serve)"
                        .to_owned(),
                ));
            }
            let entry = Desired {
                name,
                ttl: answer.ttl,
                addresses: answer.addresses.clone(),
            };
            match desired.iter_mut().find(|d| d.name == entry.name) {
                Some(existing) => *existing = entry,
                None => desired.push(entry),
            }
        }
        Ok(desired)
    }
}

/// `@`, a relative name or a fully qualified one, resolved under `origin`, lowercase.
pub(crate) fn absolute(origin: &Name, relative: &str) -> Option<Name> {
    let name = if relative == "@" {
        origin.clone()
    } else {
        Name::parse(relative, Some(origin)).ok()?
    };
    Some(name.to_lowercase())
}

/// Parses a zone name (`test.ru` or `test.ru.`) into a lowercase fully qualified name.
pub(crate) fn zone_name(writer: &str, zone: &str) -> Result<Name, DnsError> {
    let mut name = Name::from_ascii(zone.trim()).map_err(|error| DnsError::WriterConfig {
        writer: writer.to_owned(),
        reason: format!("zone {zone:?} is not a domain name: {error}"),
    })?;
    name.set_fqdn(true);
    if name.is_root() {
        return Err(DnsError::WriterConfig {
            writer: writer.to_owned(),
            reason: "the zone name is empty (expected e.g. \"test.ru\")".to_owned(),
        });
    }
    Ok(name.to_lowercase())
}

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
    within(
        limit,
        &format!("asking {server} for the SOA of {origin}"),
        async {
            let local: SocketAddr = match server {
                SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
                SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
            };
            let socket = UdpSocket::bind(local)
                .await
                .map_err(|e| format!("cannot bind a udp socket: {e}"))?;
            socket
                .connect(server)
                .await
                .map_err(|e| format!("cannot reach {server}: {e}"))?;
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
            socket
                .send(&bytes)
                .await
                .map_err(|e| format!("cannot send to {server}: {e}"))?;
            let mut buffer = vec![0; 4096];
            loop {
                let length = socket
                    .recv(&mut buffer)
                    .await
                    .map_err(|e| format!("no answer from {server}: {e}"))?;
                let Ok(response) = Message::from_vec(&buffer[..length]) else {
                    continue;
                };
                if response.metadata.id != query.metadata.id {
                    continue;
                }
                if response.metadata.response_code != ResponseCode::NoError {
                    return Err(format!(
                    "{server} answers {} for the SOA of {origin} (the zone is not loaded there)",
                    response.metadata.response_code
                ));
                }
                return response
                    .answers
                    .iter()
                    .find_map(|record| match &record.data {
                        RData::SOA(soa) => Some(soa.serial),
                        _ => None,
                    })
                    .ok_or_else(|| format!("{server} has no SOA for {origin}"));
            }
        },
    )
    .await
}
