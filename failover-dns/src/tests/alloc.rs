//! No allocation per query on the fast path: the worker's per-query call (answer, response rate
//! limiting, counters) is run many times on this thread under a counting allocator, after one
//! warm-up pass that lets the response buffer reach its largest size.

// A counting global allocator needs `unsafe impl GlobalAlloc`; test builds only.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::IpAddr;
use std::sync::Arc;

use crate::responder::Responder;
use crate::rrl::{RateLimitConfig, RateLimiter};
use crate::{ManagedName, ServedZone, Zone};

/// Counts the allocations of the thread that makes them; otherwise the system allocator.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is passed on to the system allocator unchanged; the count is a
// const-initialised thread-local Cell, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr came from System.alloc/realloc with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: as GlobalAlloc::realloc requires, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

const ZONE: &str = "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns1 admin 1 10 10 10 10\n\
                    @ IN NS ns1\n@ IN NS ns2\nns1 IN A 10.0.0.53\nns2 IN A 10.0.0.54\n\
                    www IN A 10.1.0.1\nwww IN AAAA 2001:db8::1\n";

/// A query for `name` (wire form) and `qtype`, with an EDNS OPT record when `edns`.
fn query(id: u16, name: &[u8], qtype: u16, edns: bool) -> Vec<u8> {
    let mut packet = id.to_be_bytes().to_vec();
    packet.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    packet.extend_from_slice(name);
    packet.extend_from_slice(&qtype.to_be_bytes());
    packet.extend_from_slice(&[0, 1]);
    if edns {
        packet.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    packet
}

#[test]
fn the_fast_path_answers_without_allocating() -> Result<(), Box<dyn std::error::Error>> {
    let state = tempfile::tempdir()?;
    let zone = Zone::parse("test", ZONE)?;
    let managed = [ManagedName::new("www", 10), ManagedName::new("@", 10)];
    let served = ServedZone::new(zone, &managed, state.path())?;
    let limiter = Arc::new(RateLimiter::new(RateLimitConfig::default()));
    let responder = Responder::new(served, Arc::from([]), Some(limiter));
    let www: &[u8] = b"\x03www\x04test\x02ru\x00";
    let apex: &[u8] = b"\x04test\x02ru\x00";
    let queries = [
        query(1, www, 1, false),
        query(2, www, 28, true),
        query(3, apex, 2, false),
        query(4, apex, 6, true),
        query(5, b"\x02nx\x04test\x02ru\x00", 1, false),
    ];
    let mut out = Vec::with_capacity(512);
    let now = responder.now();
    // Clients spread over many /24s, so that the rate limit never bites but every bucket is
    // looked up.
    let peer = |i: u32| IpAddr::from([10, (i >> 8) as u8, i as u8, 1]);
    for (i, q) in queries.iter().enumerate() {
        assert!(
            responder.answer_udp(q, peer(i as u32), now, &mut out),
            "warm-up {i}"
        );
    }
    let before = allocations();
    let mut answered = 0u32;
    for i in 0..20_000u32 {
        let q = &queries[i as usize % queries.len()];
        if responder.answer_udp(q, peer(i), now, &mut out) {
            answered += 1;
        }
    }
    let made = allocations() - before;
    assert_eq!(answered, 20_000, "every query answered (none rate limited)");
    assert_eq!(
        made, 0,
        "{made} allocations in 20,000 answers on the fast path"
    );
    Ok(())
}

#[test]
fn the_counter_sees_an_allocation() {
    // The counter itself works: a test of zero needs one that can see more.
    let before = allocations();
    let boxed = std::hint::black_box(Box::new(7u64));
    assert!(allocations() > before);
    drop(boxed);
}
