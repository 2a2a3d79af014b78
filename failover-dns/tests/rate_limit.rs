//! Response rate limiting over real UDP sockets: a flood from many loopback addresses in a few
//! /24 prefixes is held to the limit per prefix, every second limited response slips out
//! truncated, and a client in another prefix is answered in full throughout.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use failover_dns::{DnsServer, ManagedName, RateLimitConfig, ServedZone, ServerConfig, Zone};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};

const RICH: &str = include_str!("data/rich.zone");

/// Answers per second per prefix and name allowed in the test (small, to flood cheaply).
const RATE: u32 = 20;
const SLIP: u32 = 2;
/// The flooding prefixes (127.0.P.0/24), the senders in each and the queries each sends.
const PREFIXES: [u8; 3] = [1, 2, 3];
const SENDERS: u8 = 20;
const QUERIES_PER_SENDER: u16 = 10;

fn www_query(id: u16) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.id = id;
    message.add_query(Query::query(
        Name::from_ascii("www.test.ru.").unwrap(),
        RecordType::A,
    ));
    message.to_vec().unwrap()
}

/// What came back to one prefix.
#[derive(Debug, Default)]
struct Received {
    full: usize,
    truncated: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_limited_per_prefix_and_slips_while_another_client_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let zone = Zone::parse("rich.zone", RICH).unwrap();
    let served = ServedZone::new(
        zone,
        &[ManagedName::new("www", 10)],
        &dir.path().join("state"),
    )
    .unwrap();
    let limits = RateLimitConfig::default()
        .with_rates(RATE, RATE)
        .with_slip(SLIP);
    let config = ServerConfig::new(vec!["127.0.0.1:0".parse().unwrap()])
        .with_udp_workers(2)
        .with_rate_limit(Some(limits));
    let server = DnsServer::start(served, &config).unwrap();
    let addr = server.local_addrs()[0];

    let (received, good, elapsed) = tokio::task::spawn_blocking(move || flood(addr))
        .await
        .unwrap();
    // The flood lasts well under a second, but may straddle the limiter's second boundary.
    let windows = usize::try_from(elapsed.as_secs()).unwrap() + 2;
    let sent = usize::from(SENDERS) * usize::from(QUERIES_PER_SENDER);
    let rate = usize::try_from(RATE).unwrap();
    eprintln!("flood took {elapsed:?}; per prefix {received:?}; good client {good:?}");
    for (prefix, got) in &received {
        assert!(
            got.full >= rate && got.full <= rate * windows,
            "127.0.{prefix}.0/24: {} full answers of {sent}, limit {rate} per second",
            got.full
        );
        let limited = sent - got.full;
        let slips = limited / usize::try_from(SLIP).unwrap();
        assert!(
            got.truncated + windows >= slips && got.truncated <= slips + windows,
            "127.0.{prefix}.0/24: {} truncated of {limited} limited, expected every {SLIP}nd",
            got.truncated
        );
    }
    assert_eq!(good.full, 10, "the client in another prefix: {good:?}");
    assert_eq!(good.truncated, 0);

    let stats = server.stats();
    let total_sent = sent * PREFIXES.len() + 10;
    assert_eq!(
        stats.udp.queries,
        u64::try_from(total_sent).unwrap(),
        "{stats:?}"
    );
    let slipped: usize = received.values().map(|got| got.truncated).sum();
    assert_eq!(
        stats.udp.slipped,
        u64::try_from(slipped).unwrap(),
        "{stats:?}"
    );
    let answered: usize = received.values().map(|got| got.full + got.truncated).sum();
    assert_eq!(
        stats.udp.rate_limited,
        u64::try_from(total_sent - 10 - answered).unwrap(),
        "{stats:?}"
    );
    server.shutdown().await;
}

/// Floods `server` from every sender of every prefix, a query of the good client (127.0.9.1)
/// each round, waiting for its answer; then reads what came back.
fn flood(server: SocketAddr) -> (HashMap<u8, Received>, Received, Duration) {
    let senders: Vec<(u8, UdpSocket)> = PREFIXES
        .iter()
        .flat_map(|&prefix| {
            (1..=SENDERS).map(move |host| {
                let socket =
                    UdpSocket::bind(("127.0.".to_owned() + &format!("{prefix}.{host}"), 0))
                        .unwrap();
                (prefix, socket)
            })
        })
        .collect();
    let good = UdpSocket::bind("127.0.9.1:0").unwrap();
    good.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut good_received = Received::default();
    let mut buffer = [0u8; 4096];
    let start = Instant::now();
    let mut id = 0u16;
    for _ in 0..QUERIES_PER_SENDER {
        for (index, (_, socket)) in senders.iter().enumerate() {
            id += 1;
            socket.send_to(&www_query(id), server).unwrap();
            if index == 0 {
                good.send_to(&www_query(60000 + id), server).unwrap();
                let (length, _) = good
                    .recv_from(&mut buffer)
                    .expect("the good client is answered");
                count(&mut good_received, &buffer[..length]);
            }
        }
    }
    let elapsed = start.elapsed();
    // Loopback delivers at once; this leaves the workers time to send what they still hold.
    std::thread::sleep(Duration::from_millis(300));
    let mut received: HashMap<u8, Received> = HashMap::new();
    for (prefix, socket) in &senders {
        socket.set_nonblocking(true).unwrap();
        let got = received.entry(*prefix).or_default();
        while let Ok((length, _)) = socket.recv_from(&mut buffer) {
            count(got, &buffer[..length]);
        }
    }
    (received, good_received, elapsed)
}

fn count(received: &mut Received, response: &[u8]) {
    let message = Message::from_vec(response).unwrap();
    if message.truncation {
        assert!(message.answers.is_empty(), "a slipped response is empty");
        received.truncated += 1;
    } else {
        assert_eq!(message.answers.len(), 1, "{message:?}");
        received.full += 1;
    }
}
