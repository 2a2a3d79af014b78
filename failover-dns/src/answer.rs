//! Answering one DNS message: the full hickory-proto path and the precomputed fast path.

use std::collections::HashSet;

use hickory_proto::op::{Edns, Message, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use crate::tsig::TsigKey;
use crate::xfr_tsig::{check_request, sign_stream, unix_now, RequestSignature};
use crate::zone::{FastMap, ZoneData};

/// The transport a query came in on; it decides how large an answer may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// UDP: at most 512 bytes, or the EDNS payload size the client advertised (up to ours).
    Udp,
    /// TCP: up to 65535 bytes.
    Tcp,
}

/// The EDNS UDP payload size this server advertises and accepts (the DNS flag day 2020 value).
pub const EDNS_PAYLOAD: u16 = 1232;

/// The types whose answers are precomputed for every owner name.
const FAST_TYPES: [RecordType; 7] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::NS,
    RecordType::SOA,
    RecordType::MX,
    RecordType::TXT,
    RecordType::CNAME,
];

/// Longest key: a 255-byte wire name, the 2-byte type and the EDNS flag.
const KEY_CAPACITY: usize = 258;

/// Lowercases a byte of a hostname label; 0 for bytes the fast path leaves to hickory-proto.
static LABEL_BYTE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'*' => b,
            b'A'..=b'Z' => b.to_ascii_lowercase(),
            _ => 0,
        };
        byte += 1;
    }
    table
};

/// The largest answer that may go back over `transport` to a client that advertised `edns`.
fn size_limit(transport: Transport, edns_payload: Option<u16>) -> usize {
    match (transport, edns_payload) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(payload)) => usize::from(payload.clamp(512, EDNS_PAYLOAD)),
    }
}

/// The reference path: parses `query` with hickory-proto, resolves it and encodes the answer
/// into `out`. Returns false when nothing must be sent (a response, or too short for a header).
pub(crate) fn answer_slow(
    zone: &ZoneData,
    query: &[u8],
    transport: Transport,
    out: &mut Vec<u8>,
) -> bool {
    answer_slow_signed(zone, query, transport, &[], out)
}

/// [`answer_slow`], with TSIG: when `keys` is not empty, a query signed by one of them gets a
/// signed answer (secondaries sign their SOA queries with the transfer key), and a query signed
/// otherwise gets NOTAUTH with the TSIG error (RFC 8945 section 5.2). Without keys, a signature
/// is ignored.
pub(crate) fn answer_slow_signed(
    zone: &ZoneData,
    query: &[u8],
    transport: Transport,
    keys: &[TsigKey],
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return false;
    }
    let request = match Message::from_vec(query) {
        Ok(request) => request,
        Err(_) => {
            error_header(query, ResponseCode::FormErr, out);
            return true;
        }
    };
    let now = unix_now();
    let verified = match keys.is_empty() {
        true => None,
        false => match check_request(query, &request, keys, now) {
            RequestSignature::Unsigned => None,
            RequestSignature::Verified(verified) => Some(verified),
            RequestSignature::Rejected { response, reason } => {
                tracing::debug!(%reason, "query with a bad TSIG");
                out.extend_from_slice(&response);
                return !out.is_empty();
            }
        },
    };
    let response = build_response(zone, &request);
    let mut limit = size_limit(transport, request.edns.as_ref().map(Edns::max_payload));
    if let Some(verified) = &verified {
        limit = limit.saturating_sub(verified.record_room());
    }
    let encoded = response.to_vec().and_then(|bytes| {
        if bytes.len() <= limit {
            Ok(bytes)
        } else {
            response.truncate().to_vec()
        }
    });
    match encoded {
        Ok(bytes) if bytes.len() <= limit => out.extend_from_slice(&bytes),
        _ => error_header(query, ResponseCode::ServFail, out),
    }
    if let Some(verified) = verified {
        if sign_stream(std::slice::from_mut(out), &verified, now).is_err() {
            error_header(query, ResponseCode::ServFail, out);
        }
    }
    true
}

/// The response to a parsed request, before size limits.
fn build_response(zone: &ZoneData, request: &Message) -> Message {
    let mut response = Message::response(request.id, request.op_code);
    response.metadata.recursion_desired = request.recursion_desired;
    response.metadata.checking_disabled = request.checking_disabled;
    if let Some(theirs) = &request.edns {
        let mut ours = Edns::new();
        ours.set_max_payload(EDNS_PAYLOAD);
        ours.set_dnssec_ok(theirs.flags().dnssec_ok);
        response.set_edns(ours);
        if theirs.version() > 0 {
            response.metadata.response_code = ResponseCode::BADVERS;
            return response;
        }
    }
    if request.op_code != OpCode::Query {
        response.metadata.response_code = ResponseCode::NotImp;
        return response;
    }
    let [query] = request.queries.as_slice() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response;
    };
    response.add_query(query.clone());
    match query.query_class() {
        DNSClass::IN | DNSClass::ANY => {}
        _ => {
            response.metadata.response_code = ResponseCode::Refused;
            return response;
        }
    }
    match query.query_type() {
        // Transfers are served over TCP only, before this point (xfr.rs); anywhere else
        // they are refused, as BIND does when they are not allowed.
        RecordType::AXFR | RecordType::IXFR => {
            response.metadata.response_code = ResponseCode::Refused
        }
        RecordType::OPT => response.metadata.response_code = ResponseCode::FormErr,
        qtype => zone.resolve(query.name(), qtype, &mut response),
    }
    response
}

/// A header-only response with `rcode`, for queries too broken to echo.
fn error_header(query: &[u8], rcode: ResponseCode, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&query[..2]);
    out.push(0x80 | (query[2] & 0x79)); // QR, the request's opcode and RD
    out.push(rcode.low());
    out.extend_from_slice(&[0; 8]);
}

/// A precomputed response: the header from byte 2 on (RD and CD clear, QDCOUNT 1) and every
/// byte after the question.
#[derive(Clone, Debug)]
struct Canned {
    header: [u8; 10],
    tail: Box<[u8]>,
}

/// The precomputed answers of one zone snapshot.
#[derive(Debug)]
pub(crate) struct FastTable {
    /// Key: lowercased wire qname, qtype (big-endian), EDNS flag (0 or 1).
    entries: FastMap<Box<[u8]>, Canned>,
    /// Every existing owner name (lowercased wire form), empty non-terminals included.
    names: HashSet<Box<[u8]>, foldhash::fast::RandomState>,
    /// The origin in lowercased wire form.
    origin: Box<[u8]>,
    /// NXDOMAIN without and with EDNS; only when no wildcard or delegation can cover a missing name.
    nxdomain: Option<[Canned; 2]>,
    /// REFUSED (outside the zone) without and with EDNS.
    refused: [Canned; 2],
}

/// What the fast parser learned from a query.
struct PlainQuery {
    /// Where the question ends.
    question_end: usize,
    /// Length of the wire qname inside the key.
    name_len: usize,
    /// Length of the whole key.
    key_len: usize,
    /// The advertised payload size, when the query carries a plain OPT.
    edns_payload: Option<u16>,
    /// Whether a label starts at `name_len - origin.len()`, for the suffix test.
    label_starts: [u64; 4],
}

impl FastTable {
    /// Precomputes every (owner name × common type × EDNS) answer by running the slow path on
    /// a synthetic query and keeping the bytes after the question: compression pointers into the
    /// question stay valid because a client's qname has the same length.
    pub(crate) fn build(zone: &ZoneData) -> Result<Self, hickory_proto::ProtoError> {
        let mut entries = FastMap::default();
        let mut names = HashSet::default();
        let mut out = Vec::new();
        for name in zone.nodes.keys() {
            let wire = wire_name(name)?;
            for qtype in FAST_TYPES {
                for edns in [false, true] {
                    let query = synthetic_query(&wire, qtype, edns);
                    if !answer_slow(zone, &query, Transport::Tcp, &mut out) {
                        continue;
                    }
                    let question_end = 12 + wire.len() + 4;
                    if out.len() < question_end || out[12..question_end] != query[12..question_end]
                    {
                        continue; // never expected: the slow path echoes the question uncompressed
                    }
                    let mut key = wire.clone();
                    key.extend_from_slice(&u16::from(qtype).to_be_bytes());
                    key.push(u8::from(edns));
                    entries.insert(key.into_boxed_slice(), canned_from(&out, question_end));
                }
            }
            names.insert(wire.into_boxed_slice());
        }
        let nxdomain = if zone.has_wildcards || zone.has_delegations {
            None
        } else {
            Some([nxdomain_canned(zone, false)?, nxdomain_canned(zone, true)?])
        };
        let refused = [refused_canned(false)?, refused_canned(true)?];
        Ok(Self {
            entries,
            names,
            origin: wire_name(&zone.origin)?.into_boxed_slice(),
            nxdomain,
            refused,
        })
    }

    /// Answers `query` from the precomputed responses, without allocating once `out` has grown.
    /// Returns false when the query needs the slow path.
    pub(crate) fn answer(&self, query: &[u8], transport: Transport, out: &mut Vec<u8>) -> bool {
        let mut key = [0u8; KEY_CAPACITY];
        let Some(plain) = parse_plain_query(query, &mut key) else {
            return false;
        };
        let edns = usize::from(plain.edns_payload.is_some());
        let canned = match self.entries.get(&key[..plain.key_len]) {
            Some(canned) => canned,
            None => {
                let name = &key[..plain.name_len];
                if self.names.contains(name) {
                    return false; // an existing name with an uncommon type
                }
                if !self.in_zone(name, &plain.label_starts) {
                    &self.refused[edns]
                } else if let Some(nxdomain) = &self.nxdomain {
                    &nxdomain[edns]
                } else {
                    return false;
                }
            }
        };
        if plain.question_end + canned.tail.len() > size_limit(transport, plain.edns_payload) {
            return false; // the slow path truncates
        }
        out.clear();
        out.extend_from_slice(&query[..2]);
        out.push(canned.header[0] | (query[2] & 0x01)); // RD
        out.push(canned.header[1] | (query[3] & 0x10)); // CD
        out.extend_from_slice(&canned.header[2..]);
        out.extend_from_slice(&query[12..plain.question_end]);
        out.extend_from_slice(&canned.tail);
        true
    }

    /// Whether the wire name ends with the origin at a label boundary.
    fn in_zone(&self, name: &[u8], label_starts: &[u64; 4]) -> bool {
        let Some(start) = name.len().checked_sub(self.origin.len()) else {
            return false;
        };
        name[start..] == *self.origin && label_starts[start / 64] & (1 << (start % 64)) != 0
    }
}

/// Parses the header and question of a plain query (opcode QUERY, one question of class IN,
/// hostname labels, no answer or authority records, at most a plain EDNS0 OPT) into `key`.
fn parse_plain_query(query: &[u8], key: &mut [u8; KEY_CAPACITY]) -> Option<PlainQuery> {
    if query.len() < 17 || query[2] & 0xFE != 0 || query[3] & !0x30 != 0 {
        return None; // response, other opcode, AA/TC set, RA/Z/rcode set
    }
    if query[4..10] != [0, 1, 0, 0, 0, 0] || query[10] != 0 || query[11] > 1 {
        return None;
    }
    let mut label_starts = [0u64; 4];
    let (mut pos, mut name_len) = (12, 0);
    loop {
        let len = usize::from(*query.get(pos)?);
        label_starts[name_len / 64] |= 1 << (name_len % 64);
        if len == 0 {
            key[name_len] = 0;
            name_len += 1;
            pos += 1;
            break;
        }
        if len > 63 || name_len + len + 2 > 255 {
            return None;
        }
        let label = query.get(pos + 1..pos + 1 + len)?;
        key[name_len] = len as u8; // len <= 63
        for (slot, &byte) in key[name_len + 1..name_len + 1 + len].iter_mut().zip(label) {
            *slot = LABEL_BYTE[usize::from(byte)];
            if *slot == 0 {
                return None;
            }
        }
        name_len += 1 + len;
        pos += 1 + len;
    }
    let tail = query.get(pos..pos + 4)?;
    if tail[2..4] != [0, 1] {
        return None; // class other than IN
    }
    // OPT and the meta types (AXFR, IXFR, ANY, ...) get special treatment in the slow path.
    if tail[..2] == [0, 41] || tail[0] == 0 && tail[1] >= 128 {
        return None;
    }
    key[name_len..name_len + 2].copy_from_slice(&tail[..2]);
    let question_end = pos + 4;
    let edns_payload = if query[11] == 0 {
        if query.len() != question_end {
            return None;
        }
        None
    } else {
        let opt = &query[question_end..];
        // Root owner, type OPT, payload, then extended rcode, version, flags and rdlength all zero.
        if opt.len() != 11 || opt[..3] != [0, 0, 41] || opt[5..] != [0; 6] {
            return None;
        }
        Some(u16::from_be_bytes([opt[3], opt[4]]))
    };
    key[name_len + 2] = u8::from(edns_payload.is_some());
    Some(PlainQuery {
        question_end,
        name_len,
        key_len: name_len + 3,
        edns_payload,
        label_starts,
    })
}

/// A name in lowercased, uncompressed wire form.
pub(crate) fn wire_name(name: &Name) -> Result<Vec<u8>, hickory_proto::ProtoError> {
    let mut wire = Vec::with_capacity(name.len() + 1);
    let mut encoder = BinEncoder::new(&mut wire);
    encoder.set_name_encoding(NameEncoding::UncompressedLowercase);
    name.emit(&mut encoder)?;
    Ok(wire)
}

/// A query with ID 0, no flags, one question of class IN and, with `edns`, a plain OPT.
fn synthetic_query(wire_name: &[u8], qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut query = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
    query.extend_from_slice(wire_name);
    query.extend_from_slice(&u16::from(qtype).to_be_bytes());
    query.extend_from_slice(&[0, 1]);
    if edns {
        query.extend_from_slice(&[0, 0, 41]);
        query.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
        query.extend_from_slice(&[0; 6]);
    }
    query
}

fn canned_from(response: &[u8], question_end: usize) -> Canned {
    let mut header = [0u8; 10];
    header.copy_from_slice(&response[2..12]);
    header[0] &= !0x01;
    header[1] &= !0x10;
    Canned {
        header,
        tail: response[question_end..].into(),
    }
}

/// Our OPT record, as the slow path writes it.
fn our_opt() -> Record {
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    Record::from(&edns)
}

/// NXDOMAIN with the SOA in authority, encoded without compression so that it fits any question.
fn nxdomain_canned(zone: &ZoneData, edns: bool) -> Result<Canned, hickory_proto::ProtoError> {
    let mut tail = Vec::new();
    let mut encoder = BinEncoder::new(&mut tail);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    zone.negative_soa.emit(&mut encoder)?;
    if edns {
        our_opt().emit(&mut encoder)?;
    }
    Ok(Canned {
        header: [
            0x84,
            ResponseCode::NXDomain.low(),
            0,
            1,
            0,
            0,
            0,
            1,
            0,
            u8::from(edns),
        ],
        tail: tail.into(),
    })
}

/// REFUSED: no records but our OPT, so the tail holds no name pointers.
fn refused_canned(edns: bool) -> Result<Canned, hickory_proto::ProtoError> {
    let mut tail = Vec::new();
    if edns {
        our_opt().emit(&mut BinEncoder::new(&mut tail))?;
    }
    Ok(Canned {
        header: [
            0x80,
            ResponseCode::Refused.low(),
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            u8::from(edns),
        ],
        tail: tail.into(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use crate::zone::Zone;
    use hickory_proto::op::Query;
    use hickory_proto::rr::RData;

    const RICH: &str = include_str!("../tests/data/rich.zone");
    const SIMPLE: &str = "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns.master.my.com. admin.my.com. ( 2 10 10 10 10 )\n  IN NS ns.master.my.com.\n  IN NS ns.slave.my.com.\n@ IN A 10.1.0.1\nwww IN A 10.1.0.1\n";

    fn data(text: &str) -> ZoneData {
        let zone = Zone::parse("test", text).unwrap();
        ZoneData::new(zone.origin.clone(), zone.nodes.clone(), zone.serial)
    }

    fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
        let mut message = Message::query();
        message.metadata.id = 0x1234;
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some(payload) = edns {
            let mut edns = Edns::new();
            edns.set_max_payload(payload);
            message.set_edns(edns);
        }
        message.to_vec().unwrap()
    }

    fn ask(
        zone: &ZoneData,
        name: &str,
        qtype: RecordType,
        edns: Option<u16>,
        transport: Transport,
    ) -> Message {
        let mut out = Vec::new();
        assert!(answer_slow(
            zone,
            &query(name, qtype, edns),
            transport,
            &mut out
        ));
        Message::from_vec(&out).unwrap()
    }

    fn udp(zone: &ZoneData, name: &str, qtype: RecordType) -> Message {
        ask(zone, name, qtype, None, Transport::Udp)
    }

    #[test]
    fn positive_answer_is_authoritative() {
        let zone = data(RICH);
        let response = udp(&zone, "www.test.ru.", RecordType::A);
        assert_eq!(response.response_code, ResponseCode::NoError);
        assert!(response.authoritative);
        assert!(response.recursion_desired);
        assert!(!response.recursion_available);
        assert_eq!(response.id, 0x1234);
        assert_eq!(response.answers.len(), 1);
        assert_eq!(
            response.answers[0].data,
            RData::A(hickory_proto::rr::rdata::A::new(10, 1, 0, 1))
        );
    }

    #[test]
    fn nxdomain_and_no_data_carry_the_soa_with_the_negative_ttl() {
        let zone = data(RICH);
        let nx = udp(&zone, "nope.test.ru.", RecordType::A);
        assert_eq!(nx.response_code, ResponseCode::NXDomain);
        assert!(nx.authoritative);
        assert_eq!(nx.authorities.len(), 1);
        assert_eq!(nx.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(nx.authorities[0].ttl, 300, "min(SOA ttl 3600, minimum 300)");
        let no_data = udp(&zone, "www.test.ru.", RecordType::AAAA);
        assert_eq!(no_data.response_code, ResponseCode::NoError);
        assert!(no_data.answers.is_empty());
        assert_eq!(no_data.authorities[0].record_type(), RecordType::SOA);
        let empty_non_terminal = udp(&zone, "b.c.test.ru.", RecordType::A);
        assert_eq!(empty_non_terminal.response_code, ResponseCode::NoError);
        assert_eq!(
            empty_non_terminal.authorities[0].record_type(),
            RecordType::SOA
        );
    }

    #[test]
    fn outside_the_zone_is_refused() {
        let zone = data(RICH);
        let response = udp(&zone, "www.example.org.", RecordType::A);
        assert_eq!(response.response_code, ResponseCode::Refused);
        assert!(!response.authoritative);
        assert_eq!(
            udp(&zone, "xtest.ru.", RecordType::A).response_code,
            ResponseCode::Refused
        );
    }

    #[test]
    fn cname_is_followed_inside_the_zone() {
        let zone = data(RICH);
        let response = udp(&zone, "chain.test.ru.", RecordType::A);
        let types: Vec<_> = response.answers.iter().map(Record::record_type).collect();
        assert_eq!(types, [RecordType::CNAME, RecordType::CNAME, RecordType::A]);
        let outside = udp(&zone, "outside.test.ru.", RecordType::A);
        assert_eq!(outside.answers.len(), 1);
        assert_eq!(outside.response_code, ResponseCode::NoError);
        let dangling = udp(&zone, "dangling.test.ru.", RecordType::A);
        assert_eq!(dangling.answers.len(), 1);
        assert_eq!(dangling.response_code, ResponseCode::NXDomain);
        let cname_itself = udp(&zone, "alias.test.ru.", RecordType::CNAME);
        assert_eq!(cname_itself.answers.len(), 1);
    }

    #[test]
    fn delegation_gives_a_referral_with_glue() {
        let zone = data(RICH);
        for name in ["sub.test.ru.", "host.sub.test.ru.", "ns.sub.test.ru."] {
            let response = udp(&zone, name, RecordType::A);
            assert!(!response.authoritative, "{name}");
            assert!(response.answers.is_empty(), "{name}");
            assert_eq!(
                response.authorities[0].record_type(),
                RecordType::NS,
                "{name}"
            );
            assert_eq!(response.additionals.len(), 1, "{name}");
        }
        let ds = udp(&zone, "sub.test.ru.", RecordType::DS);
        assert!(ds.authoritative);
        assert_eq!(ds.authorities[0].record_type(), RecordType::SOA);
    }

    #[test]
    fn ns_answers_carry_in_zone_glue() {
        let zone = data(RICH);
        let response = udp(&zone, "test.ru.", RecordType::NS);
        assert_eq!(response.answers.len(), 2);
        let glue: Vec<_> = response
            .additionals
            .iter()
            .map(Record::record_type)
            .collect();
        assert_eq!(glue, [RecordType::A, RecordType::AAAA]);
        let srv = data(&format!("{SIMPLE}_sip._udp IN SRV 10 5 5060 www\n"));
        let response = udp(&srv, "_sip._udp.test.ru.", RecordType::SRV);
        assert_eq!(response.answers.len(), 1);
        assert_eq!(response.additionals.len(), 1, "the SRV target's address");
        assert_eq!(response.additionals[0].name.to_ascii(), "www.test.ru.");
    }

    #[test]
    fn wildcards_synthesise_answers() {
        let zone = data(RICH);
        let response = udp(&zone, "anything.wild.test.ru.", RecordType::TXT);
        assert_eq!(response.answers.len(), 1);
        assert_eq!(
            response.answers[0].name,
            Name::from_ascii("anything.wild.test.ru.").unwrap()
        );
        let no_data = udp(&zone, "anything.wild.test.ru.", RecordType::A);
        assert_eq!(no_data.response_code, ResponseCode::NoError);
        assert!(no_data.answers.is_empty());
    }

    #[test]
    fn any_gets_one_rrset() {
        let zone = data(RICH);
        let response = udp(&zone, "test.ru.", RecordType::ANY);
        assert!(!response.answers.is_empty());
        let first = response.answers[0].record_type();
        assert!(response.answers.iter().all(|r| r.record_type() == first));
    }

    #[test]
    fn edns_is_echoed_and_bad_versions_refused() {
        let zone = data(RICH);
        let response = ask(
            &zone,
            "www.test.ru.",
            RecordType::A,
            Some(4096),
            Transport::Udp,
        );
        assert_eq!(response.edns.as_ref().unwrap().max_payload(), EDNS_PAYLOAD);
        let mut message =
            Message::from_vec(&query("www.test.ru.", RecordType::A, Some(1232))).unwrap();
        message.edns.as_mut().unwrap().set_version(1);
        let mut out = Vec::new();
        assert!(answer_slow(
            &zone,
            &message.to_vec().unwrap(),
            Transport::Udp,
            &mut out
        ));
        // BADVERS and BADSIG share the value 16; hickory decodes it as BADSIG.
        assert_eq!(
            u16::from(Message::from_vec(&out).unwrap().response_code),
            16
        );
    }

    #[test]
    fn big_answers_truncate_over_udp_only() {
        let zone = data(RICH);
        let plain = udp(&zone, "big.test.ru.", RecordType::TXT);
        assert!(plain.truncation);
        assert!(plain.answers.is_empty());
        let edns = ask(
            &zone,
            "big.test.ru.",
            RecordType::TXT,
            Some(1232),
            Transport::Udp,
        );
        assert!(edns.truncation);
        let tcp = ask(&zone, "big.test.ru.", RecordType::TXT, None, Transport::Tcp);
        assert!(!tcp.truncation);
        assert_eq!(tcp.answers.len(), 24);
    }

    #[test]
    fn malformed_and_unsupported_queries() {
        let zone = data(RICH);
        let mut out = Vec::new();
        assert!(
            !answer_slow(&zone, &[1, 2, 3], Transport::Udp, &mut out),
            "no header: dropped"
        );
        let mut garbage = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
        assert!(answer_slow(&zone, &garbage, Transport::Udp, &mut out));
        let response = Message::from_vec(&out).unwrap();
        assert_eq!(response.response_code, ResponseCode::FormErr);
        assert_eq!(response.id, 0xabcd);
        garbage[2] |= 0x80;
        assert!(
            !answer_slow(&zone, &garbage, Transport::Udp, &mut out),
            "responses are never answered"
        );

        let mut two = Message::from_vec(&query("www.test.ru.", RecordType::A, None)).unwrap();
        two.add_query(Query::query(
            Name::from_ascii("test.ru.").unwrap(),
            RecordType::A,
        ));
        assert!(answer_slow(
            &zone,
            &two.to_vec().unwrap(),
            Transport::Udp,
            &mut out
        ));
        assert_eq!(
            Message::from_vec(&out).unwrap().response_code,
            ResponseCode::FormErr
        );

        let mut notify = query("test.ru.", RecordType::SOA, None);
        notify[2] = (notify[2] & !0x78) | (4 << 3);
        assert!(answer_slow(&zone, &notify, Transport::Udp, &mut out));
        assert_eq!(
            Message::from_vec(&out).unwrap().response_code,
            ResponseCode::NotImp
        );

        let axfr = udp(&zone, "test.ru.", RecordType::AXFR);
        assert_eq!(axfr.response_code, ResponseCode::Refused);
    }

    #[test]
    fn a_cname_loop_is_answered_once_by_both_paths() {
        let zone = data(&format!(
            "{SIMPLE}a IN CNAME b\nb IN CNAME a\nself IN CNAME self\n"
        ));
        let table = FastTable::build(&zone).unwrap();
        for (name, expected) in [("a.test.ru.", 2), ("self.test.ru.", 1)] {
            for edns in [None, Some(1232)] {
                let query = query(name, RecordType::A, edns);
                let mut fast = Vec::new();
                assert!(table.answer(&query, Transport::Udp, &mut fast), "{name}");
                let mut slow = Vec::new();
                assert!(answer_slow(&zone, &query, Transport::Udp, &mut slow));
                let fast = Message::from_vec(&fast).unwrap();
                assert_eq!(fast, Message::from_vec(&slow).unwrap());
                assert_eq!(fast.answers.len(), expected, "{name}");
            }
        }
    }

    #[test]
    fn fast_path_serves_the_common_queries() {
        for text in [SIMPLE, RICH] {
            let zone = data(text);
            let table = FastTable::build(&zone).unwrap();
            let mut out = Vec::new();
            for (name, qtype) in [
                ("test.ru.", RecordType::A),
                ("WWW.Test.RU.", RecordType::A),
                ("test.ru.", RecordType::NS),
                ("test.ru.", RecordType::SOA),
                ("www.test.ru.", RecordType::MX),
                ("other.org.", RecordType::A),
            ] {
                for edns in [None, Some(1232)] {
                    let query = query(name, qtype, edns);
                    assert!(
                        table.answer(&query, Transport::Udp, &mut out),
                        "{name} {qtype}"
                    );
                    let mut slow = Vec::new();
                    assert!(answer_slow(&zone, &query, Transport::Udp, &mut slow));
                    assert_eq!(
                        Message::from_vec(&out).unwrap(),
                        Message::from_vec(&slow).unwrap()
                    );
                }
            }
            let nx = query("nx.test.ru.", RecordType::A, None);
            assert_eq!(table.answer(&nx, Transport::Udp, &mut out), text == SIMPLE);
            // Not fast: uncommon type at an existing name, TC needed, DO bit.
            assert!(!table.answer(
                &query("www.test.ru.", RecordType::SRV, None),
                Transport::Udp,
                &mut out
            ));
            let mut dnssec =
                Message::from_vec(&query("test.ru.", RecordType::A, Some(1232))).unwrap();
            dnssec.edns.as_mut().unwrap().set_dnssec_ok(true);
            assert!(!table.answer(&dnssec.to_vec().unwrap(), Transport::Udp, &mut out));
        }
        let zone = data(RICH);
        let table = FastTable::build(&zone).unwrap();
        let mut out = Vec::new();
        assert!(!table.answer(
            &query("big.test.ru.", RecordType::TXT, None),
            Transport::Udp,
            &mut out
        ));
        assert!(table.answer(
            &query("big.test.ru.", RecordType::TXT, None),
            Transport::Tcp,
            &mut out
        ));
    }
}
