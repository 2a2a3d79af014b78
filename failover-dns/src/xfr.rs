//! Zone transfers over TCP (AXFR, and IXFR answered with the whole zone) and who may have them.
//!
//! IXFR (RFC 1995) is answered without history: a client that already has the current serial
//! gets the single SOA that says so; any other gets the whole zone in AXFR form, which RFC 1995
//! section 4 allows and every secondary (BIND, NSD, Knot) accepts.

use std::net::IpAddr;

use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use hickory_proto::ProtoError;
use ipnet::IpNet;

use crate::error::DnsError;
use crate::served::{serial_lt, Snapshot};
use crate::tsig::TsigKey;
use crate::xfr_tsig::{check_request, sign_stream, unix_now, RequestSignature, Verified};
use crate::zone::ZoneData;

/// Records per transfer message are added up to about this many bytes (uncompressed): hundreds
/// of records a message, far below the 65535-byte TCP limit, as BIND and NSD do.
const MESSAGE_TARGET: usize = 16 * 1024;

/// Who may transfer the zone (AXFR and IXFR over TCP). Everyone else is answered REFUSED.
///
/// Two kinds of entries: networks admitted by address alone ([`allow`](Self::allow),
/// [`parse`](Self::parse)), and networks admitted only with a request signed by a TSIG key
/// ([`require_key`](Self::require_key), [`parse_keyed`](Self::parse_keyed)), as BIND's
/// `allow-transfer { key NAME; }` and Knot's ACL with `key`. A request signed by a key of the
/// ACL is verified whatever the entry that admits it, and the whole answer is signed with that
/// key; a request signed by another key, with a wrong MAC or a stale time is answered NOTAUTH
/// with the TSIG error (RFC 8945 section 5.2) and logged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferAcl {
    networks: Vec<IpNet>,
    keyed: Vec<(IpNet, TsigKey)>,
}

impl TransferAcl {
    /// Refuses every transfer (the default).
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// Allows transfers to clients inside any of `networks` (a single address is a /32 or /128).
    pub fn allow(networks: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            networks: networks.into_iter().map(|net| net.trunc()).collect(),
            keyed: Vec::new(),
        }
    }

    /// Parses allow entries as written in a config: addresses (`192.0.2.1`, `2001:db8::1`) or
    /// networks (`192.0.2.0/24`, `2001:db8::/32`).
    pub fn parse<I, S>(entries: I) -> Result<Self, DnsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(Self::allow(parse_networks(entries)?))
    }

    /// Also allows transfers to clients inside `networks` whose request is signed by `key`
    /// (`0.0.0.0/0` and `::/0`: any address with the key).
    pub fn require_key(mut self, networks: impl IntoIterator<Item = IpNet>, key: TsigKey) -> Self {
        self.keyed.extend(
            networks
                .into_iter()
                .map(|network| (network.trunc(), key.clone())),
        );
        self
    }

    /// [`require_key`](Self::require_key) with entries as written in a config (see [`parse`](Self::parse)).
    pub fn parse_keyed<I, S>(self, entries: I, key: TsigKey) -> Result<Self, DnsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(self.require_key(parse_networks(entries)?, key))
    }

    /// The networks allowed by address alone.
    pub fn networks(&self) -> &[IpNet] {
        &self.networks
    }

    /// The networks allowed with a key, each with its key.
    pub fn keyed_networks(&self) -> &[(IpNet, TsigKey)] {
        &self.keyed
    }

    /// Whether a client at `peer` may transfer by address alone (without a key).
    pub fn allows_address(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.networks.iter().any(|net| net.contains(&peer))
    }

    /// Every key of the ACL, each once: the keys a signed request is verified against.
    pub(crate) fn keys(&self) -> Vec<TsigKey> {
        let mut keys: Vec<TsigKey> = Vec::new();
        for (_, key) in &self.keyed {
            if !keys.iter().any(|known| known.name() == key.name()) {
                keys.push(key.clone());
            }
        }
        keys
    }

    /// Whether a request from `peer`, signed (verified) by `key` or unsigned, may transfer.
    pub(crate) fn admits(&self, peer: IpAddr, key: Option<&TsigKey>) -> bool {
        let peer = peer.to_canonical();
        self.allows_address(peer)
            || key.is_some_and(|key| {
                self.keyed
                    .iter()
                    .any(|(net, needed)| net.contains(&peer) && needed == key)
            })
    }
}

fn parse_networks<I, S>(entries: I) -> Result<Vec<IpNet>, DnsError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    entries
        .into_iter()
        .map(|entry| parse_network(entry.as_ref()))
        .collect()
}

fn parse_network(entry: &str) -> Result<IpNet, DnsError> {
    let entry = entry.trim();
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            DnsError::Config(format!(
                "transfer allow entry {entry:?} is neither an address nor a network \
                 (expected e.g. \"192.0.2.1\", \"192.0.2.0/24\" or \"2001:db8::/32\")"
            ))
        })
}

/// Whether `query` asks for a zone transfer (AXFR or IXFR), judged from the header and the
/// question type alone. A question this cannot read goes to the ordinary path, which refuses
/// transfers.
pub(crate) fn is_transfer(query: &[u8]) -> bool {
    // A query (QR clear) with opcode QUERY and one question.
    if query.len() < 12 || query[2] & 0xF8 != 0 || query[4..6] != [0, 1] {
        return false;
    }
    let mut pos = 12;
    loop {
        match query.get(pos) {
            Some(0) => break,
            Some(&len) if len < 64 => pos += 1 + usize::from(len),
            _ => return false, // compressed or broken question
        }
    }
    let qtype = pos + 1;
    matches!(query.get(qtype..qtype + 2), Some([0, 251 | 252]))
}

/// Answers a transfer request from `peer` out of one snapshot: the messages to send, in order.
///
/// One message for a refusal or an error; the whole zone otherwise, SOA first and last. The
/// answer to a request signed by a key of `acl` is signed with it, every message.
pub(crate) fn respond(
    snapshot: &Snapshot,
    query: &[u8],
    peer: IpAddr,
    acl: &TransferAcl,
) -> Vec<Vec<u8>> {
    let request = match Message::from_vec(query) {
        Ok(request) => request,
        Err(_) => return vec![header_only(query, ResponseCode::FormErr)],
    };
    let now = unix_now();
    let verified = match check_request(query, &request, &acl.keys(), now) {
        RequestSignature::Unsigned => None,
        RequestSignature::Verified(verified) => Some(verified),
        RequestSignature::Rejected { response, reason } => {
            tracing::warn!(%peer, zone = %snapshot.data.origin, %reason,
                "zone transfer refused: bad TSIG");
            // Never an empty TCP message: a reply that could not be built is a bare NOTAUTH.
            if response.is_empty() {
                return vec![header_only(query, ResponseCode::NotAuth)];
            }
            return vec![response];
        }
    };
    let mut messages = answer_transfer(snapshot, query, &request, peer, acl, verified.as_ref());
    if let Some(verified) = &verified {
        if let Err(error) = sign_stream(&mut messages, verified, now) {
            tracing::warn!(%peer, %error, "cannot sign the zone transfer");
            return vec![header_only(query, ResponseCode::ServFail)];
        }
    }
    messages
}

/// The unsigned answer to a parsed transfer request whose signature, if any, is `verified`.
fn answer_transfer(
    snapshot: &Snapshot,
    query: &[u8],
    request: &Message,
    peer: IpAddr,
    acl: &TransferAcl,
    verified: Option<&Verified>,
) -> Vec<Vec<u8>> {
    let data = &snapshot.data;
    let rcode = |code| one(rejection(request, code), query);
    let [question] = request.queries.as_slice() else {
        return rcode(ResponseCode::FormErr);
    };
    if question.query_class() != DNSClass::IN {
        return rcode(ResponseCode::Refused);
    }
    let key = verified.map(|verified| &verified.key);
    if !acl.admits(peer, key) {
        let signed = key.map_or_else(
            || "unsigned".to_owned(),
            |key| format!("key {}", key.name()),
        );
        tracing::warn!(%peer, zone = %data.origin, qtype = %question.query_type(), %signed,
            "zone transfer refused: client not allowed (without the key its entry requires?)");
        return rcode(ResponseCode::Refused);
    }
    if question.name().to_lowercase() != data.origin {
        return rcode(ResponseCode::NotAuth);
    }
    let Some(soa) = apex_soa(data) else {
        return rcode(ResponseCode::ServFail); // never: a served zone has an apex SOA
    };
    if question.query_type() == RecordType::IXFR {
        let theirs = request
            .authorities
            .iter()
            .find_map(|record| match &record.data {
                RData::SOA(soa) => Some(soa.serial),
                _ => None,
            });
        if theirs.is_some_and(|theirs| !serial_lt(theirs, snapshot.serial)) {
            let mut response = response_to(request, question);
            response.add_answer(soa.clone());
            return one(response.to_vec(), query);
        }
    }
    match full_transfer(data, soa, request, question) {
        Ok(messages) => {
            tracing::info!(%peer, zone = %data.origin, serial = snapshot.serial,
                qtype = %question.query_type(), messages = messages.len(),
                key = key.map(TsigKey::name), "zone transfer");
            messages
        }
        Err(error) => {
            tracing::warn!(%peer, zone = %data.origin, %error, "cannot encode the zone transfer");
            rcode(ResponseCode::ServFail)
        }
    }
}

/// SOA, every other record of the zone (apex first, then in canonical name order), SOA.
fn full_transfer(
    data: &ZoneData,
    soa: &Record,
    request: &Message,
    question: &Query,
) -> Result<Vec<Vec<u8>>, ProtoError> {
    let mut names: Vec<_> = data.nodes.iter().collect();
    names.sort_unstable_by_key(|(name, _)| *name);
    let body = names.into_iter().flat_map(|(_, node)| {
        node.rrsets
            .iter()
            .filter(|(rtype, _)| *rtype != RecordType::SOA)
            .flat_map(|(_, records)| records)
    });
    let mut messages = Vec::new();
    let mut current = response_to(request, question);
    let mut size = 0;
    for record in std::iter::once(soa).chain(body).chain(std::iter::once(soa)) {
        let length = record.to_bytes()?.len();
        if !current.answers.is_empty() && size + length > MESSAGE_TARGET {
            messages.push(current.to_vec()?);
            // Later messages carry no question (RFC 5936 section 2.2 allows either).
            current = Message::response(request.id, request.op_code);
            current.metadata.authoritative = true;
            size = 0;
        }
        current.add_answer(record.clone());
        size += length;
    }
    messages.push(current.to_vec()?);
    Ok(messages)
}

/// The zone's SOA record (with the snapshot's serial).
pub(crate) fn apex_soa(data: &ZoneData) -> Option<&Record> {
    data.nodes.get(&data.origin)?.get(RecordType::SOA)?.first()
}

/// An authoritative NOERROR response carrying the question.
fn response_to(request: &Message, question: &Query) -> Message {
    let mut response = Message::response(request.id, request.op_code);
    response.metadata.authoritative = true;
    response.add_query(question.clone());
    response
}

/// A response with `rcode`, echoing the question section.
fn rejection(request: &Message, rcode: ResponseCode) -> Result<Vec<u8>, ProtoError> {
    let mut response = Message::response(request.id, request.op_code);
    response.metadata.response_code = rcode;
    if request.op_code == OpCode::Query {
        response.add_queries(request.queries.iter().cloned());
    }
    response.to_vec()
}

fn one(encoded: Result<Vec<u8>, ProtoError>, query: &[u8]) -> Vec<Vec<u8>> {
    vec![encoded.unwrap_or_else(|_| header_only(query, ResponseCode::ServFail))]
}

/// A header-only response with `rcode` (`query` is at least a header: `is_transfer` said so).
fn header_only(query: &[u8], rcode: ResponseCode) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    out.extend_from_slice(&query[..2]);
    out.push(0x80 | (query[2] & 0x79)); // QR, the request's opcode and RD
    out.push(rcode.low());
    out.extend_from_slice(&[0; 8]);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use crate::zone::Zone;
    use hickory_proto::rr::rdata::SOA;
    use hickory_proto::rr::Name;
    use std::collections::BTreeMap;

    const RICH: &str = include_str!("../tests/data/rich.zone");

    fn snapshot(text: &str, serial: u32) -> Snapshot {
        let zone = Zone::parse("test", text).unwrap();
        let data = ZoneData::new(zone.origin.clone(), zone.nodes.clone(), serial);
        let fast = crate::answer::FastTable::build(&data).unwrap();
        Snapshot { data, fast, serial }
    }

    fn request(qtype: RecordType, client_serial: Option<u32>) -> Vec<u8> {
        let mut message = Message::query();
        message.metadata.id = 0x4242;
        message.add_query(Query::query(Name::from_ascii("test.ru.").unwrap(), qtype));
        if let Some(serial) = client_serial {
            let soa = SOA::new(
                Name::from_ascii("ns.test.ru.").unwrap(),
                Name::from_ascii("admin.test.ru.").unwrap(),
                serial,
                1,
                1,
                1,
                1,
            );
            message.add_authority(Record::from_rdata(
                Name::from_ascii("test.ru.").unwrap(),
                0,
                RData::SOA(soa),
            ));
        }
        message.to_vec().unwrap()
    }

    fn loopback() -> TransferAcl {
        TransferAcl::parse(["127.0.0.1"]).unwrap()
    }

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn decode(messages: &[Vec<u8>]) -> Vec<Message> {
        messages
            .iter()
            .map(|bytes| Message::from_vec(bytes).unwrap())
            .collect()
    }

    /// Every record of the snapshot, as (owner, type, data) text, counted.
    fn zone_records(snapshot: &Snapshot) -> BTreeMap<String, usize> {
        let mut all = BTreeMap::new();
        for node in snapshot.data.nodes.values() {
            for (_, records) in &node.rrsets {
                for record in records {
                    *all.entry(record.to_string()).or_default() += 1;
                }
            }
        }
        all
    }

    #[test]
    fn axfr_carries_every_record_between_two_soas() {
        let snapshot = snapshot(RICH, 77);
        let messages = decode(&respond(
            &snapshot,
            &request(RecordType::AXFR, None),
            PEER,
            &loopback(),
        ));
        let answers: Vec<&Record> = messages.iter().flat_map(|m| &m.answers).collect();
        assert!(messages
            .iter()
            .all(|m| m.response_code == ResponseCode::NoError
                && m.authoritative
                && m.id == 0x4242));
        assert_eq!(messages[0].queries.len(), 1);
        let (first, last) = (answers[0], answers[answers.len() - 1]);
        for soa in [first, last] {
            let RData::SOA(soa) = &soa.data else {
                panic!("transfer must start and end with the SOA, got {soa}");
            };
            assert_eq!(soa.serial, 77, "the snapshot's serial");
        }
        let mut transferred = BTreeMap::new();
        for record in &answers[..answers.len() - 1] {
            *transferred.entry(record.to_string()).or_insert(0) += 1;
        }
        assert_eq!(transferred, zone_records(&snapshot));
    }

    #[test]
    fn a_large_zone_is_split_into_messages_below_the_tcp_limit() {
        let mut text = String::from(
            "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns admin 5 3600 600 86400 300\n@ IN NS ns\nns IN A 10.0.0.1\n",
        );
        for i in 0..3000 {
            text.push_str(&format!("host-{i} IN A 10.{}.{}.1\n", i / 256, i % 256));
        }
        let snapshot = snapshot(&text, 5);
        let raw = respond(
            &snapshot,
            &request(RecordType::AXFR, None),
            PEER,
            &loopback(),
        );
        assert!(raw.len() > 2, "{} messages", raw.len());
        assert!(raw.iter().all(|m| m.len() <= MESSAGE_TARGET + 512));
        let count: usize = decode(&raw).iter().map(|m| m.answers.len()).sum();
        assert_eq!(count, 3000 + 2 + 2, "hosts, NS, ns A, and the SOA twice");
    }

    #[test]
    fn ixfr_from_a_current_client_is_one_soa_and_from_an_old_one_the_whole_zone() {
        let snapshot = snapshot(RICH, 100);
        let acl = loopback();
        let current = decode(&respond(
            &snapshot,
            &request(RecordType::IXFR, Some(100)),
            PEER,
            &acl,
        ));
        assert_eq!(current.len(), 1);
        assert_eq!(current[0].answers.len(), 1);
        assert_eq!(current[0].answers[0].record_type(), RecordType::SOA);
        assert_eq!(current[0].queries[0].query_type(), RecordType::IXFR);

        let old = decode(&respond(
            &snapshot,
            &request(RecordType::IXFR, Some(99)),
            PEER,
            &acl,
        ));
        let count: usize = old.iter().map(|m| m.answers.len()).sum();
        assert_eq!(
            count,
            zone_records(&snapshot).values().sum::<usize>() + 1,
            "AXFR-style: every record and the closing SOA"
        );
    }

    #[test]
    fn clients_outside_the_acl_and_other_zones_are_refused() {
        let snapshot = snapshot(RICH, 1);
        let refused = |acl: &TransferAcl, peer: &str| {
            let raw = respond(
                &snapshot,
                &request(RecordType::AXFR, None),
                peer.parse().unwrap(),
                acl,
            );
            let response = Message::from_vec(&raw[0]).unwrap();
            if response.response_code != ResponseCode::NoError {
                assert_eq!(raw.len(), 1);
                assert!(response.answers.is_empty());
            }
            response.response_code
        };
        assert_eq!(
            refused(&TransferAcl::deny_all(), "127.0.0.1"),
            ResponseCode::Refused
        );
        assert_eq!(refused(&loopback(), "127.0.0.2"), ResponseCode::Refused);
        let networks = TransferAcl::parse(["10.0.0.0/8", "2001:db8::1"]).unwrap();
        assert_eq!(refused(&networks, "10.20.30.40"), ResponseCode::NoError);
        assert_eq!(refused(&networks, "2001:db8::1"), ResponseCode::NoError);
        assert_eq!(refused(&networks, "2001:db8::2"), ResponseCode::Refused);
        assert_eq!(refused(&networks, "::ffff:10.1.1.1"), ResponseCode::NoError);

        let mut other = Message::query();
        other.add_query(Query::query(
            Name::from_ascii("example.org.").unwrap(),
            RecordType::AXFR,
        ));
        let raw = respond(&snapshot, &other.to_vec().unwrap(), PEER, &loopback());
        assert_eq!(
            Message::from_vec(&raw[0]).unwrap().response_code,
            ResponseCode::NotAuth
        );
    }

    #[test]
    fn acl_entries_are_parsed_or_named_in_the_error() {
        let acl = TransferAcl::parse(["192.0.2.7/24", " ::1 "]).unwrap();
        assert_eq!(acl.networks()[0].to_string(), "192.0.2.0/24");
        assert!(acl.allows_address("::1".parse().unwrap()));
        let error = TransferAcl::parse(["10.0.0.300"]).unwrap_err().to_string();
        assert!(error.contains("\"10.0.0.300\""), "{error}");
    }

    #[test]
    fn transfer_queries_are_recognised_from_the_wire() {
        assert!(is_transfer(&request(RecordType::AXFR, None)));
        assert!(is_transfer(&request(RecordType::IXFR, Some(1))));
        assert!(!is_transfer(&request(RecordType::SOA, None)));
        assert!(!is_transfer(&[0; 11]));
        let mut response = request(RecordType::AXFR, None);
        response[2] |= 0x80;
        assert!(!is_transfer(&response));
        let mut truncated = request(RecordType::AXFR, None);
        truncated.truncate(20);
        assert!(!is_transfer(&truncated));
    }
}
