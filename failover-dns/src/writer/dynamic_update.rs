//! [`DynamicUpdateWriter`]: replaces the managed RRsets at a primary with a TSIG-signed RFC 2136 UPDATE.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use failover_core::{ManagedName, Publication, PublishError, PublishReceipt, ZoneWriter};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigVerifier, TSigner};
use tokio::time::Instant;

use super::managed::{zone_name, Desired, ManagedSet};
use super::steps::{query_soa_serial, DEFAULT_STEP_TIMEOUT};
use crate::error::DnsError;
use crate::exchange::{Exchange, ExchangeError, Reply, Step, UDP};
use crate::tsig::{TsigKey, TSIG_FUDGE};

/// Settings of a [`DynamicUpdateWriter`]. Start from [`DynamicUpdateOptions::new`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DynamicUpdateOptions {
    /// The zone to update (`test.ru`).
    pub zone: String,
    /// The primary that takes updates for it (`10.0.0.53:53`).
    pub primary: SocketAddr,
    /// The TSIG key the primary allows to update the zone; requests are signed and responses
    /// verified with it.
    pub key: TsigKey,
    /// The names whose A and AAAA RRsets the writer owns (`@`, `www`).
    pub managed: Vec<ManagedName>,
    /// Limit of one exchange with the primary (over UDP, and again over TCP when truncated).
    pub timeout: Duration,
}

impl DynamicUpdateOptions {
    /// Options with the default timeout (10 s).
    pub fn new(zone: &str, primary: SocketAddr, key: TsigKey, managed: Vec<ManagedName>) -> Self {
        Self {
            zone: zone.to_owned(),
            primary,
            key,
            managed,
            timeout: DEFAULT_STEP_TIMEOUT,
        }
    }
}

/// A [`ZoneWriter`] that steers a primary name server (BIND, Knot, PowerDNS) by RFC 2136 dynamic
/// update: each publish sends one UPDATE that deletes the A and AAAA RRsets of every managed name
/// in the publication and adds the new records, so the primary applies it atomically.
///
/// The request is TSIG-signed and the response's TSIG verified: a success is only believed when
/// the primary proves it holds the key. REFUSED, NOTAUTH, BADSIG/BADKEY/BADTIME and timeouts are
/// errors that name the reason and the fix. The primary raises the SOA serial itself.
#[derive(Clone)]
pub struct DynamicUpdateWriter {
    zone: String,
    origin: Name,
    primary: SocketAddr,
    key: TsigKey,
    signer: TSigner,
    managed: ManagedSet,
    timeout: Duration,
}

// By hand: hickory's `TSigner` has no `Debug` (and the key's own `Debug` hides the secret).
impl std::fmt::Debug for DynamicUpdateWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicUpdateWriter")
            .field("zone", &self.zone)
            .field("primary", &self.primary)
            .field("key", &self.key)
            .field("managed", &self.managed)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl DynamicUpdateWriter {
    /// Checks the options (zone name, managed names under it, a key hickory-proto can sign with).
    pub fn new(options: DynamicUpdateOptions) -> Result<Self, DnsError> {
        let writer = format!("dynamic update to {}", options.primary);
        let origin = zone_name(&writer, &options.zone)?;
        let managed = ManagedSet::new(&origin, &options.managed, None)?;
        if options.timeout.is_zero() {
            return Err(DnsError::WriterConfig {
                writer,
                reason: "the timeout must be more than zero".to_owned(),
            });
        }
        Ok(Self {
            zone: origin.to_ascii().trim_end_matches('.').to_owned(),
            signer: options.key.signer()?,
            origin,
            primary: options.primary,
            key: options.key,
            managed,
            timeout: options.timeout,
        })
    }

    /// Sends the update for `publication` and waits for the primary's verified answer; returns
    /// the zone's SOA serial the primary serves afterwards, when it says (best effort, unsigned).
    pub async fn publish_update(&self, publication: &Publication) -> Result<Option<u32>, DnsError> {
        let desired = self.managed.desired(publication)?;
        if desired.is_empty() {
            return Ok(None);
        }
        let error = |reason: String| DnsError::Update {
            zone: self.zone.clone(),
            primary: self.primary,
            reason,
        };
        let (request, verifier) = self.signed_request(&desired).map_err(error)?;
        let deadline = Instant::now() + self.timeout;
        let response = match Exchange::new(self.primary, &request).udp(deadline).await {
            Ok(response) => (response, verifier),
            Err(ExchangeError::Truncated) => {
                // Truncated: the whole exchange again over TCP, freshly signed.
                let (request, verifier) = self.signed_request(&desired).map_err(error)?;
                let deadline = Instant::now() + self.timeout;
                let response = Exchange::new(self.primary, &request)
                    .tcp(deadline)
                    .await
                    .map_err(|failure| error(self.exchange_failure(failure)))?;
                (response, verifier)
            }
            Err(failure) => return Err(error(self.exchange_failure(failure))),
        };
        let (Reply { bytes, .. }, mut verifier) = response;
        check_response(&bytes, &mut verifier, &self.key, &self.zone).map_err(error)?;
        let serial_limit = self.timeout.min(Duration::from_secs(2));
        Ok(query_soa_serial(self.primary, &self.origin, serial_limit)
            .await
            .ok())
    }

    /// The UPDATE message, signed, and the verifier of its response.
    fn signed_request(&self, desired: &[Desired]) -> Result<(Vec<u8>, TSigVerifier), String> {
        let mut message = update_message(&self.origin, desired);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| {
                "the system clock is before 1970; fix the clock (TSIG needs it)".to_owned()
            })?
            .as_secs();
        let verifier = message
            .finalize(&self.signer, now)
            .map_err(|e| format!("cannot sign the update with key {:?}: {e}", self.key.name()))?
            .ok_or_else(|| "signing the update gave no response verifier".to_owned())?;
        let bytes = message
            .to_vec()
            .map_err(|e| format!("cannot encode the update: {e}"))?;
        Ok((bytes, verifier))
    }

    /// Why the exchange with the primary failed, and what to check.
    fn exchange_failure(&self, failure: ExchangeError) -> String {
        match failure {
            ExchangeError::Timeout(UDP) => format!(
                "timed out after {:?} while waiting for the primary over udp (check the address, \
                 port and firewall; `dig @{} -p {} {} SOA` should answer)",
                self.timeout,
                self.primary.ip(),
                self.primary.port(),
                self.zone
            ),
            ExchangeError::Timeout(_) => format!(
                "timed out after {:?} while waiting for the primary over tcp (after a truncated \
                 udp response)",
                self.timeout
            ),
            ExchangeError::Io {
                protocol: UDP,
                step,
                source,
            } => match step {
                Step::Bind(_) => format!("cannot bind a socket over udp: {source}"),
                Step::Connect => format!("cannot reach the primary over udp: {source}"),
                Step::Send => format!("cannot send the update over udp: {source}"),
                Step::Receive => format!(
                    "cannot receive the response over udp: {source} (is a name server listening \
                     on that port?)"
                ),
            },
            ExchangeError::Io { step, source, .. } => match step {
                Step::Bind(_) | Step::Connect => {
                    format!("cannot connect to the primary over tcp: {source}")
                }
                Step::Send => format!("cannot send the update over tcp: {source}"),
                Step::Receive => format!("cannot read the response over tcp: {source}"),
            },
            ExchangeError::TooLong(_) => "the update is too large".to_owned(),
            ExchangeError::Mismatched { .. } => {
                "the primary answered over tcp with another message id".to_owned()
            }
            ExchangeError::Malformed(reason) => format!("the response does not parse: {reason}"),
            other => other.to_string(),
        }
    }
}

#[async_trait]
impl ZoneWriter for DynamicUpdateWriter {
    fn describe(&self) -> String {
        format!("dynamic update of {} at {}", self.zone, self.primary)
    }

    async fn publish(&self, publication: &Publication) -> Result<PublishReceipt, PublishError> {
        let serial = self
            .publish_update(publication)
            .await
            .map_err(PublishError::new)?;
        Ok(PublishReceipt { serial })
    }
}

/// RFC 2136: zone section `ZONE IN SOA`; update section: for each name, delete its A and AAAA
/// RRsets (class ANY, TTL 0, no RDATA), then add the new records. Applied in order, atomically.
fn update_message(origin: &Name, desired: &[Desired]) -> Message {
    let mut message = Message::query();
    message.metadata.op_code = OpCode::Update;
    message.metadata.message_type = MessageType::Query;
    message.metadata.recursion_desired = false;
    let mut zone = Query::new();
    zone.set_name(origin.clone())
        .set_query_class(DNSClass::IN)
        .set_query_type(RecordType::SOA);
    message.add_query(zone);
    for want in desired {
        for rtype in [RecordType::A, RecordType::AAAA] {
            let mut delete = Record::update0(want.name.clone(), 0, rtype);
            delete.dns_class = DNSClass::ANY;
            message.add_authority(delete);
        }
        for address in &want.addresses {
            let data = match address {
                IpAddr::V4(v4) => RData::A(A(*v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
            };
            message.add_authority(Record::from_rdata(want.name.clone(), want.ttl, data));
        }
    }
    message
}

/// Turns the primary's response into `Ok` only when it says NOERROR and its TSIG verifies.
fn check_response(
    bytes: &[u8],
    verifier: &mut TSigVerifier,
    key: &TsigKey,
    zone: &str,
) -> Result<(), String> {
    let message =
        Message::from_vec(bytes).map_err(|e| format!("the response does not parse: {e}"))?;
    let key_name = key.name();
    let rcode = rcode_name(message.metadata.response_code);
    if let Some(error) = message.signature().and_then(|tsig| tsig.data.error) {
        return Err(match error {
            TsigError::BadSig => format!(
                "{}, TSIG BADSIG: the primary says the signature is wrong, the secret of key \
                 {key_name:?} differs from the primary's; copy the secret from the primary's key statement",
                rcode
            ),
            TsigError::BadKey => format!(
                "{}, TSIG BADKEY: the primary has no key {key_name:?} with algorithm {}; add it to \
                 its configuration (`key \"{key_name}\" {{ algorithm {}; secret \"...\"; }};`)",
                rcode,
                key.algorithm(),
                key.algorithm()
            ),
            TsigError::BadTime => format!(
                "{}, TSIG BADTIME: the clocks of this machine and the primary differ by more than \
                 {TSIG_FUDGE}s; synchronise them (NTP)",
                rcode
            ),
            other => format!("{rcode}, TSIG error {}", u16::from(other)),
        });
    }
    let signed = message.signature().is_some();
    let verified = if signed {
        verifier
            .verify(bytes)
            .map(|_| ())
            .map_err(|e| e.to_string())
    } else {
        Err("the response carries no TSIG".to_owned())
    };
    let explain = match message.metadata.response_code {
        ResponseCode::NoError => None,
        ResponseCode::Refused => Some(format!(
            "REFUSED: the primary does not let key {key_name:?} update zone {zone}; allow it with \
             `allow-update {{ key \"{key_name}\"; }};` or an update-policy grant in the zone's statement"
        )),
        ResponseCode::NotAuth => Some(format!(
            "NOTAUTH: the primary is not authoritative for zone {zone}, or did not accept the key \
             {key_name:?}; check the zone name, the primary's address and the key"
        )),
        ResponseCode::NotZone => Some(format!(
            "NOTZONE: a managed name is not inside zone {zone} at the primary"
        )),
        ResponseCode::ServFail => Some(
            "SERVFAIL: the primary could not apply the update; see its log (e.g. it cannot write \
             the zone's journal file)"
                .to_owned(),
        ),
        ResponseCode::NotImp => {
            Some("NOTIMP: the primary does not implement dynamic update".to_owned())
        }
        other => Some(format!(
            "the primary answered {} ({})",
            rcode_name(other),
            other.to_str()
        )),
    };
    match (explain, verified) {
        (None, Ok(())) => Ok(()),
        (None, Err(why)) => Err(format!(
            "the primary answered NOERROR but the response's TSIG does not verify with key \
             {key_name:?} ({why}); the update may have been applied, but the answer cannot be \
             trusted (wrong key, or someone else answered)"
        )),
        (Some(explain), Ok(())) => Err(explain),
        (Some(explain), Err(_)) => Err(format!("{explain} (the response is not signed)")),
    }
}

/// The rcode as written in RFCs and by `dig` (`NOTAUTH`, `REFUSED`).
fn rcode_name(rcode: ResponseCode) -> String {
    format!("{rcode:?}").to_ascii_uppercase()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use hickory_proto::rr::TSigResponseContext;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UdpSocket;

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";

    fn key() -> TsigKey {
        TsigKey::new("failover-key", "hmac-sha256", SECRET).unwrap()
    }

    fn desired() -> Vec<Desired> {
        vec![Desired {
            name: Name::from_ascii("www.test.ru.").unwrap(),
            ttl: 10,
            addresses: vec!["10.2.0.1".parse().unwrap(), "2001:db8::2".parse().unwrap()],
        }]
    }

    #[test]
    fn the_update_deletes_both_rrsets_then_adds() {
        let message = update_message(&Name::from_ascii("test.ru.").unwrap(), &desired());
        assert_eq!(message.metadata.op_code, OpCode::Update);
        assert_eq!(message.queries[0].query_type(), RecordType::SOA);
        let updates: Vec<String> = message
            .authorities
            .iter()
            .map(|r| format!("{} {} {} {}", r.dns_class, r.ttl, r.record_type(), r.data))
            .collect();
        assert_eq!(updates[0], "ANY 0 A UPDATE");
        assert_eq!(updates[1], "ANY 0 AAAA UPDATE");
        assert_eq!(updates[2], "IN 10 A 10.2.0.1");
        assert_eq!(updates[3], "IN 10 AAAA 2001:db8::2");
    }

    /// A response to `request` signed (or not) as a primary would.
    fn respond(request: &[u8], rcode: ResponseCode, signer: Option<&TSigner>) -> Vec<u8> {
        let request = Message::from_vec(request).unwrap();
        let mut response = Message::response(request.metadata.id, OpCode::Update);
        response.metadata.response_code = rcode;
        response.add_query(request.queries[0].clone());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let Some(signer) = signer else {
            return response.to_vec().unwrap();
        };
        let request_mac = request.signature().unwrap().data.mac.clone();
        let unsigned = response.to_vec().unwrap();
        let context =
            TSigResponseContext::new(request.metadata.id, now, signer.clone(), request_mac, None);
        response.set_signature(context.sign(&unsigned).unwrap());
        response.to_vec().unwrap()
    }

    fn writer() -> DynamicUpdateWriter {
        DynamicUpdateWriter::new(DynamicUpdateOptions::new(
            "test.ru",
            "127.0.0.1:53".parse().unwrap(),
            key(),
            vec![ManagedName::new("www", 10)],
        ))
        .unwrap()
    }

    #[test]
    fn a_signed_noerror_is_a_success_and_anything_else_is_not() {
        let writer = writer();
        let (request, mut verifier) = writer.signed_request(&desired()).unwrap();
        let ok = respond(&request, ResponseCode::NoError, Some(&writer.signer));
        check_response(&ok, &mut verifier, &key(), "test.ru").unwrap();

        let (request, mut verifier) = writer.signed_request(&desired()).unwrap();
        let refused = respond(&request, ResponseCode::Refused, Some(&writer.signer));
        let error = check_response(&refused, &mut verifier, &key(), "test.ru").unwrap_err();
        assert!(error.starts_with("REFUSED: "), "{error}");
        assert!(
            error.contains("allow-update { key \"failover-key\"; }"),
            "{error}"
        );

        let (request, mut verifier) = writer.signed_request(&desired()).unwrap();
        let unsigned = respond(&request, ResponseCode::NoError, None);
        let error = check_response(&unsigned, &mut verifier, &key(), "test.ru").unwrap_err();
        assert!(error.contains("TSIG does not verify"), "{error}");

        let other = TsigKey::new("failover-key", "hmac-sha256", "b3RoZXI=").unwrap();
        let (request, mut verifier) = writer.signed_request(&desired()).unwrap();
        let forged = respond(
            &request,
            ResponseCode::NoError,
            Some(&other.signer().unwrap()),
        );
        let error = check_response(&forged, &mut verifier, &key(), "test.ru").unwrap_err();
        assert!(error.contains("TSIG does not verify"), "{error}");
    }

    #[test]
    fn names_outside_the_managed_set_are_refused_before_sending() {
        let publication = Publication {
            nodes: vec![],
            answers: vec![failover_core::ManagedAnswer {
                name: "mail".into(),
                ttl: 10,
                addresses: vec!["10.0.0.1".parse().unwrap()],
            }],
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let error = runtime
            .block_on(writer().publish_update(&publication))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("not a managed name of zone test.ru. (managed: www)"),
            "{error}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_primary_is_a_timeout_that_says_what_to_check() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut options = DynamicUpdateOptions::new(
            "test.ru",
            silent.local_addr().unwrap(),
            key(),
            vec![ManagedName::new("www", 10)],
        );
        options.timeout = Duration::from_secs(2);
        let writer = DynamicUpdateWriter::new(options).unwrap();
        let publication = Publication {
            nodes: vec![],
            answers: vec![failover_core::ManagedAnswer {
                name: "www".into(),
                ttl: 10,
                addresses: vec!["10.0.0.1".parse().unwrap()],
            }],
        };
        let error = writer
            .publish_update(&publication)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("dynamic update of zone test.ru at 127.0.0.1:"),
            "{error}"
        );
        assert!(
            error.contains("timed out after 2s while waiting for the primary over udp"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_truncated_udp_response_is_retried_over_tcp() {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let primary = udp.local_addr().unwrap();
        let tcp = tokio::net::TcpListener::bind(primary).await.unwrap();
        let signer = key().signer().unwrap();
        let server = tokio::spawn(async move {
            let mut buffer = vec![0; 4096];
            let (length, client) = udp.recv_from(&mut buffer).await.unwrap();
            let mut truncated = buffer[..12.min(length)].to_vec();
            truncated[2] |= 0x80 | 0x02; // QR, TC
            truncated[4..12].fill(0);
            udp.send_to(&truncated, client).await.unwrap();
            let (mut stream, _) = tcp.accept().await.unwrap();
            let mut prefix = [0; 2];
            stream.read_exact(&mut prefix).await.unwrap();
            let mut request = vec![0; usize::from(u16::from_be_bytes(prefix))];
            stream.read_exact(&mut request).await.unwrap();
            let response = respond(&request, ResponseCode::NoError, Some(&signer));
            let mut framed = u16::try_from(response.len())
                .unwrap()
                .to_be_bytes()
                .to_vec();
            framed.extend_from_slice(&response);
            stream.write_all(&framed).await.unwrap();
        });
        let mut options =
            DynamicUpdateOptions::new("test.ru", primary, key(), vec![ManagedName::new("www", 10)]);
        options.timeout = Duration::from_secs(5);
        let writer = DynamicUpdateWriter::new(options).unwrap();
        let publication = Publication {
            nodes: vec![],
            answers: vec![failover_core::ManagedAnswer {
                name: "www".into(),
                ttl: 10,
                addresses: vec!["10.0.0.1".parse().unwrap()],
            }],
        };
        // The SOA query afterwards gets no answer: the serial is simply unknown.
        let serial = writer.publish_update(&publication).await.unwrap();
        assert_eq!(serial, None);
        server.await.unwrap();
    }
}
