//! Property tests of the answer function: the fast path agrees with the slow path, and no input
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! from the network makes it panic.

use std::sync::OnceLock;

use failover_dns::{ManagedName, ServedZone, Transport, Zone};
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use proptest::prelude::*;

const RICH: &str = include_str!("data/rich.zone");
const SIMPLE: &str = "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns.master.my.com. admin.my.com. ( 2 10 10 10 10 )\n  IN NS ns.master.my.com.\n  IN NS ns.slave.my.com.\n@ IN A 10.1.0.1\nwww IN A 10.1.0.1\n";

/// The two zones under test: one with wildcards and a delegation (no fast NXDOMAIN), one plain.
fn zones() -> &'static [ServedZone; 2] {
    static ZONES: OnceLock<(tempfile::TempDir, [ServedZone; 2])> = OnceLock::new();
    let (_state, zones) = ZONES.get_or_init(|| {
        let state = tempfile::tempdir().unwrap();
        let managed = [ManagedName::new("@", 10), ManagedName::new("www", 10)];
        let rich = ServedZone::new(
            Zone::parse("rich", RICH).unwrap(),
            &managed,
            &state.path().join("rich"),
        )
        .unwrap();
        let simple = ServedZone::new(
            Zone::parse("simple", SIMPLE).unwrap(),
            &managed,
            &state.path().join("simple"),
        )
        .unwrap();
        (state, [rich, simple])
    });
    zones
}

const NAMES: &[&str] = &[
    "test.ru.",
    "www.test.ru.",
    "ns1.test.ru.",
    "mail.test.ru.",
    "alias.test.ru.",
    "chain.test.ru.",
    "outside.test.ru.",
    "dangling.test.ru.",
    "a.b.c.test.ru.",
    "b.c.test.ru.",
    "c.test.ru.",
    "*.wild.test.ru.",
    "x.wild.test.ru.",
    "wild.test.ru.",
    "sub.test.ru.",
    "ns.sub.test.ru.",
    "deep.sub.test.ru.",
    "big.test.ru.",
    "nx.test.ru.",
    "a.nx.test.ru.",
    "ru.",
    ".",
    "www.example.org.",
    "xtest.ru.",
    "test.ru.evil.",
];

const TYPES: &[u16] = &[
    1, 28, 2, 6, 15, 16, 5, 33, 255, 43, 257, 12, 0, 41, 252, 251, 13, 99,
];

fn name_strategy() -> impl Strategy<Value = Name> {
    (
        prop::sample::select(NAMES),
        prop::option::of("[a-zA-Z0-9_][a-zA-Z0-9_-]{0,11}"),
        any::<u64>(),
    )
        .prop_map(|(base, prefix, case_bits)| {
            let text = match prefix {
                Some(label) if base != "." => format!("{label}.{base}"),
                _ => base.to_owned(),
            };
            // Random letter case (clients use 0x20 randomisation).
            let text: String = text
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if case_bits >> (i % 64) & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            Name::from_ascii(text).unwrap()
        })
}

#[derive(Debug, Clone)]
enum EdnsShape {
    None,
    Plain(u16),
    DnssecOk,
    WithOption,
}

fn query_strategy() -> impl Strategy<Value = Vec<u8>> {
    let edns = prop_oneof![
        3 => Just(EdnsShape::None),
        3 => prop::sample::select(vec![0u16, 100, 512, 1232, 4096]).prop_map(EdnsShape::Plain),
        1 => Just(EdnsShape::DnssecOk),
        1 => Just(EdnsShape::WithOption),
    ];
    (
        name_strategy(),
        prop::sample::select(TYPES),
        edns,
        any::<u16>(),
        any::<[bool; 3]>(),
    )
        .prop_map(|(name, qtype, edns, id, [rd, cd, ad])| {
            let mut message = Message::query();
            message.metadata.id = id;
            message.metadata.recursion_desired = rd;
            message.metadata.checking_disabled = cd;
            message.metadata.authentic_data = ad;
            message.add_query(Query::query(name, RecordType::from(qtype)));
            match edns {
                EdnsShape::None => {}
                EdnsShape::Plain(payload) => {
                    let mut edns = Edns::new();
                    edns.set_max_payload(payload);
                    message.set_edns(edns);
                }
                EdnsShape::DnssecOk => {
                    let mut edns = Edns::new();
                    edns.set_dnssec_ok(true);
                    message.set_edns(edns);
                }
                EdnsShape::WithOption => {
                    let mut edns = Edns::new();
                    edns.options_mut()
                        .insert(EdnsOption::Unknown(u16::from(EdnsCode::Cookie), vec![7; 8]));
                    message.set_edns(edns);
                }
            }
            message.to_vec().unwrap()
        })
}

/// The full answer (fast path first) and the slow path agree, byte for byte once decoded.
fn assert_paths_agree(
    zone: &ServedZone,
    query: &[u8],
    transport: Transport,
) -> Result<(), TestCaseError> {
    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    let answered = zone.answer(query, transport, &mut fast);
    prop_assert_eq!(answered, zone.answer_slow(query, transport, &mut slow));
    if answered {
        prop_assert!(fast.len() >= 12);
        prop_assert_eq!(&fast[..2], &query[..2], "the ID is echoed");
        if transport == Transport::Udp {
            prop_assert!(fast.len() <= usize::from(failover_dns::EDNS_PAYLOAD));
        }
        match (Message::from_vec(&fast), Message::from_vec(&slow)) {
            (Ok(fast), Ok(slow)) => prop_assert_eq!(fast, slow),
            (fast, slow) => prop_assert!(false, "undecodable answer: fast {fast:?} slow {slow:?}"),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn fast_path_agrees_with_slow_path(query in query_strategy(), tcp: bool) {
        let transport = if tcp { Transport::Tcp } else { Transport::Udp };
        for zone in zones() {
            assert_paths_agree(zone, &query, transport)?;
        }
    }

    #[test]
    fn mutated_queries_never_panic_and_paths_agree(
        query in query_strategy(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut query = query;
        for (index, byte) in flips {
            let at = index.index(query.len());
            query[at] = byte;
        }
        for zone in zones() {
            assert_paths_agree(zone, &query, Transport::Udp)?;
        }
    }

    #[test]
    fn truncated_queries_never_panic(query in query_strategy(), cut: prop::sample::Index) {
        let query = &query[..cut.index(query.len())];
        for zone in zones() {
            assert_paths_agree(zone, query, Transport::Udp)?;
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        for zone in zones() {
            assert_paths_agree(zone, &bytes, Transport::Udp)?;
            assert_paths_agree(zone, &bytes, Transport::Tcp)?;
        }
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(
        header in prop::array::uniform12(any::<u8>()),
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut query = header.to_vec();
        query[2] &= 0x7f; // a query, so it gets answered
        query.extend(body);
        for zone in zones() {
            assert_paths_agree(zone, &query, Transport::Udp)?;
        }
    }
}

#[test]
fn compression_loops_and_oversized_packets_get_formerr_or_nothing() {
    let zone = &zones()[0];
    let mut out = Vec::new();
    // The qname is a pointer to itself.
    let looping = [
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1,
    ];
    assert!(zone.answer(&looping, Transport::Udp, &mut out));
    assert_eq!(out[3] & 0x0f, 1, "FORMERR");
    // Two pointers pointing at each other.
    let mut ping_pong = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    ping_pong.extend_from_slice(&[0x01, b'a', 0xc0, 0x10, 0xc0, 0x0c, 0, 1, 0, 1]);
    assert!(zone.answer(&ping_pong, Transport::Udp, &mut out));
    assert_eq!(out[3] & 0x0f, 1, "FORMERR");
    let oversized = vec![0x41; 70_000];
    let _ = zone.answer(&oversized, Transport::Tcp, &mut out);
}
