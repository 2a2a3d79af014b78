//! A packet from the network, answered as the built-in DNS server answers it: the fast path and
//! the full path must agree wherever the fast path answers (the property `answer_props.rs` checks
//! on generated queries), and the server's own workers (TSIG-signed queries, transfers over TCP
//! with the ACL and its key, rate limiting with slip over UDP) must never panic nor send a
//! message that breaks the size limits.

#![no_main]

use std::sync::OnceLock;

use failover_dns::fuzzing::Worker;
use failover_dns::{RateLimitConfig, ServedZone, TransferAcl, Transport, EDNS_PAYLOAD};
use failover_fuzz::{served_zone, transfer_acl, PEERS, RICH_ZONE, SIMPLE_ZONE};
use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;

/// The zones served: one with wildcards and a delegation, one plain (fast NXDOMAIN).
fn zones() -> &'static [ServedZone; 2] {
    static ZONES: OnceLock<[ServedZone; 2]> = OnceLock::new();
    ZONES.get_or_init(|| {
        [
            served_zone("rich", RICH_ZONE),
            served_zone("simple", SIMPLE_ZONE),
        ]
    })
}

/// The transfer ACL, parsed once.
fn acl() -> &'static TransferAcl {
    static ACL: OnceLock<TransferAcl> = OnceLock::new();
    ACL.get_or_init(transfer_acl)
}

/// `zone.answer` (fast path first) and `zone.answer_slow` say the same, decoded.
fn assert_paths_agree(zone: &ServedZone, query: &[u8], transport: Transport) {
    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    let answered = zone.answer(query, transport, &mut fast);
    assert_eq!(answered, zone.answer_slow(query, transport, &mut slow));
    if !answered {
        return;
    }
    assert!(fast.len() >= 12, "an answer has a header");
    assert_eq!(fast[..2], query[..2], "the ID is echoed");
    if transport == Transport::Udp {
        assert!(fast.len() <= usize::from(EDNS_PAYLOAD), "a UDP answer fits");
    }
    match (Message::from_vec(&fast), Message::from_vec(&slow)) {
        (Ok(fast), Ok(slow)) => assert_eq!(fast, slow, "fast and full path disagree"),
        (fast, slow) => panic!("undecodable answer: fast {fast:?} slow {slow:?}"),
    }
}

/// What the server's workers send for `query`: signed answers, transfers, rate limiting.
fn serve_like_the_server(zone: &ServedZone, query: &[u8]) {
    // A fresh limiter per input, so that a crash replays: one answer a second, every second
    // limited answer slips. Three sends see each verdict: sent, dropped, slipped.
    let limits = RateLimitConfig::default().with_rates(1, 1).with_slip(2);
    let worker = Worker::new(zone.clone(), acl().clone(), Some(limits));
    let peer = PEERS[usize::from(query.get(1).copied().unwrap_or(0)) % PEERS.len()];
    let mut out = Vec::new();
    for _ in 0..3 {
        if worker.udp(query, peer, 0, &mut out) {
            assert!(out.len() >= 12, "a UDP answer has a header");
            assert!(out.len() <= usize::from(EDNS_PAYLOAD), "a UDP answer fits");
        }
    }
    for message in worker.tcp(query, peer) {
        assert!(!message.is_empty(), "never an empty TCP message");
        assert!(
            message.len() <= usize::from(u16::MAX),
            "a TCP message fits its length"
        );
    }
}

fuzz_target!(|query: &[u8]| {
    for zone in zones() {
        assert_paths_agree(zone, query, Transport::Udp);
        assert_paths_agree(zone, query, Transport::Tcp);
        serve_like_the_server(zone, query);
    }
});
