//! The server over real sockets on 127.0.0.1: a hickory-proto client (UDP and TCP) and `dig`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use failover_core::{ManagedAnswer, Publication, ZoneWriter};
use failover_dns::{DnsError, DnsServer, ManagedName, ServedZone, ServerConfig, Zone};
use failover_testkit::dig;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

const RICH: &str = include_str!("data/rich.zone");
const WAIT: Duration = Duration::from_secs(3);

/// A zone file and a state directory in a temporary directory, served on an ephemeral port.
struct Harness {
    dir: tempfile::TempDir,
    zone: ServedZone,
    server: DnsServer,
}

impl Harness {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db.test.ru"), RICH).unwrap();
        let (zone, server) = serve(dir.path());
        Self { dir, zone, server }
    }

    fn addr(&self) -> SocketAddr {
        self.server.local_addrs()[0]
    }
}

fn serve(dir: &Path) -> (ServedZone, DnsServer) {
    let zone = Zone::from_file(dir.join("db.test.ru")).unwrap();
    let managed = [ManagedName::new("@", 10), ManagedName::new("www", 10)];
    let served = ServedZone::new(zone, &managed, &state_dir(dir)).unwrap();
    let config = ServerConfig::new(vec!["127.0.0.1:0".parse().unwrap()]).with_udp_workers(2);
    let server = DnsServer::start(served.clone(), &config).unwrap();
    (served, server)
}

fn state_dir(dir: &Path) -> PathBuf {
    dir.join("state")
}

fn query(name: &str, qtype: RecordType, edns: bool) -> Message {
    let mut message = Message::query();
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if edns {
        message.set_edns(Edns::new());
    }
    message
}

async fn udp_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0; 65535];
    let len = timeout(WAIT, socket.recv(&mut buf))
        .await
        .expect("udp answer in time")
        .unwrap();
    buf.truncate(len);
    buf
}

async fn udp(addr: SocketAddr, message: &Message) -> Message {
    let response =
        Message::from_vec(&udp_exchange(addr, &message.to_vec().unwrap()).await).unwrap();
    assert_eq!(response.id, message.id);
    response
}

async fn tcp_send(stream: &mut TcpStream, message: &Message) {
    let bytes = message.to_vec().unwrap();
    let mut frame = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    frame.extend(bytes);
    stream.write_all(&frame).await.unwrap();
}

async fn tcp_receive(stream: &mut TcpStream) -> Message {
    let mut length = [0u8; 2];
    timeout(WAIT, stream.read_exact(&mut length))
        .await
        .expect("tcp answer in time")
        .unwrap();
    let mut bytes = vec![0; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut bytes).await.unwrap();
    Message::from_vec(&bytes).unwrap()
}

async fn tcp(addr: SocketAddr, message: &Message) -> Message {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    tcp_send(&mut stream, message).await;
    let response = tcp_receive(&mut stream).await;
    assert_eq!(response.id, message.id);
    response
}

fn addresses(response: &Message) -> Vec<IpAddr> {
    response
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect()
}

fn soa_serial(response: &Message) -> u32 {
    match &response.answers[0].data {
        RData::SOA(soa) => soa.serial,
        other => panic!("expected an SOA, got {other:?}"),
    }
}

fn publication(name: &str, addresses: &[&str]) -> Publication {
    Publication {
        nodes: vec![],
        answers: vec![ManagedAnswer {
            name: name.to_owned(),
            ttl: 10,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_see_published_answers_and_a_higher_serial() {
    let harness = Harness::start().await;
    let addr = harness.addr();
    let www = query("www.test.ru.", RecordType::A, false);
    let before = udp(addr, &www).await;
    assert!(before.authoritative);
    assert_eq!(addresses(&before), ["10.1.0.1".parse::<IpAddr>().unwrap()]);
    assert_eq!(addresses(&tcp(addr, &www).await), addresses(&before));
    let serial_before = soa_serial(&udp(addr, &query("test.ru.", RecordType::SOA, false)).await);
    assert_eq!(
        serial_before, 7,
        "the zone file's serial on a fresh state dir"
    );

    let receipt = harness
        .zone
        .publish(&publication("www", &["10.2.0.2", "2001:db8::2"]))
        .await
        .unwrap();
    let serial_after = receipt.serial.unwrap();
    assert_eq!(serial_after, 8);
    for response in [udp(addr, &www).await, tcp(addr, &www).await] {
        assert_eq!(
            addresses(&response),
            ["10.2.0.2".parse::<IpAddr>().unwrap()]
        );
    }
    let aaaa = udp(addr, &query("WWW.test.RU.", RecordType::AAAA, true)).await;
    assert_eq!(addresses(&aaaa), ["2001:db8::2".parse::<IpAddr>().unwrap()]);
    assert_eq!(
        soa_serial(&udp(addr, &query("test.ru.", RecordType::SOA, false)).await),
        8
    );
    assert_eq!(
        soa_serial(&tcp(addr, &query("test.ru.", RecordType::SOA, true)).await),
        8
    );

    // The same publication again changes nothing, not even the serial.
    let again = harness
        .zone
        .publish(&publication("www", &["10.2.0.2", "2001:db8::2"]))
        .await
        .unwrap();
    assert_eq!(again.serial, Some(8));
    let refused = harness
        .zone
        .publish(&publication("mail", &["10.2.0.9"]))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("not a managed name"),
        "{refused}"
    );
    harness.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serial_survives_a_restart() {
    let harness = Harness::start().await;
    harness
        .zone
        .publish(&publication("@", &["10.3.0.3"]))
        .await
        .unwrap();
    harness
        .zone
        .publish(&publication("@", &["10.3.0.4"]))
        .await
        .unwrap();
    assert_eq!(harness.zone.serial(), 9);
    let persisted =
        std::fs::read_to_string(state_dir(harness.dir.path()).join("serial-test.ru")).unwrap();
    assert_eq!(persisted.trim(), "9");
    let Harness { dir, zone, server } = harness;
    server.shutdown().await;
    drop(zone);

    let (zone, server) = serve(dir.path());
    assert!(
        zone.serial() > 9,
        "serial {} must stay above the last published 9",
        zone.serial()
    );
    let served = soa_serial(
        &udp(
            server.local_addrs()[0],
            &query("test.ru.", RecordType::SOA, false),
        )
        .await,
    );
    assert_eq!(served, zone.serial());
    // Nothing is published yet after a restart: the zone file's answer is served.
    assert_eq!(
        zone.current_answer("@"),
        Some(vec!["10.1.0.1".parse().unwrap()])
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_answers_refusals_and_garbage() {
    let harness = Harness::start().await;
    let addr = harness.addr();
    for edns in [false, true] {
        let nx = udp(addr, &query("nope.test.ru.", RecordType::A, edns)).await;
        assert_eq!(nx.response_code, ResponseCode::NXDomain);
        assert!(nx.authoritative);
        assert_eq!(nx.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(nx.edns.is_some(), edns);

        let no_data = udp(addr, &query("mail.test.ru.", RecordType::AAAA, edns)).await;
        assert_eq!(no_data.response_code, ResponseCode::NoError);
        assert!(no_data.answers.is_empty());
        assert_eq!(no_data.authorities[0].record_type(), RecordType::SOA);

        let refused = udp(addr, &query("www.example.org.", RecordType::A, edns)).await;
        assert_eq!(refused.response_code, ResponseCode::Refused);
    }
    let garbage = [
        0xbe, 0xef, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0xff,
    ];
    let formerr = udp_exchange(addr, &garbage).await;
    assert_eq!(&formerr[..2], &[0xbe, 0xef]);
    assert_eq!(formerr[3] & 0x0f, 1, "FORMERR");
    // The server is still fine afterwards.
    assert_eq!(
        udp(addr, &query("www.test.ru.", RecordType::A, false))
            .await
            .answers
            .len(),
        1
    );
    harness.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_answers_truncate_over_udp_and_come_whole_over_tcp() {
    let harness = Harness::start().await;
    let addr = harness.addr();
    for edns in [false, true] {
        let truncated = udp(addr, &query("big.test.ru.", RecordType::TXT, edns)).await;
        assert!(truncated.truncation, "edns {edns}");
        assert!(truncated.answers.is_empty());
    }
    let whole = tcp(addr, &query("big.test.ru.", RecordType::TXT, false)).await;
    assert!(!whole.truncation);
    assert_eq!(whole.answers.len(), 24);
    harness.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_tcp_queries_on_one_connection() {
    let harness = Harness::start().await;
    let mut stream = TcpStream::connect(harness.addr()).await.unwrap();
    let first = query("www.test.ru.", RecordType::A, false);
    let second = query("test.ru.", RecordType::NS, true);
    // Both queries in one write, before reading anything.
    let mut frames = Vec::new();
    for message in [&first, &second] {
        let bytes = message.to_vec().unwrap();
        frames.extend(u16::try_from(bytes.len()).unwrap().to_be_bytes());
        frames.extend(bytes);
    }
    stream.write_all(&frames).await.unwrap();
    let (a, b) = (
        tcp_receive(&mut stream).await,
        tcp_receive(&mut stream).await,
    );
    assert_eq!((a.id, b.id), (first.id, second.id));
    assert_eq!(addresses(&a).len(), 1);
    assert_eq!(b.answers.len(), 2);
    assert_eq!(b.additionals.len(), 2, "glue for ns1.test.ru");
    // And the connection stays usable.
    tcp_send(&mut stream, &first).await;
    assert_eq!(tcp_receive(&mut stream).await.id, first.id);
    harness.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_a_clear_error() {
    let harness = Harness::start().await;
    let zone = harness.zone.clone();
    let error = DnsServer::start(zone, &ServerConfig::new(vec![harness.addr()])).unwrap_err();
    assert!(matches!(error, DnsError::Bind { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&harness.addr().to_string()), "{message}");
    assert!(
        message.contains("another program already listens"),
        "{message}"
    );
    harness.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_sees_what_a_resolver_would() {
    let harness = Harness::start().await;
    let addr = harness.addr();
    let run = |args: &'static [&'static str]| {
        tokio::task::spawn_blocking(move || dig(addr, &[&["+tries=1", "+time=2"], args].concat()))
    };

    // Default dig (EDNS with a cookie: the slow path) and +nocookie (plain EDNS: the fast path).
    for args in [
        &["www.test.ru", "A"][..],
        &["+nocookie", "www.test.ru", "A"][..],
    ] {
        let out = run(args).await.unwrap();
        assert!(out.contains("status: NOERROR"), "{out}");
        assert!(out.contains("flags: qr aa"), "{out}");
        assert!(out.contains("www.test.ru.\t\t10\tIN\tA\t10.1.0.1"), "{out}");
    }
    let serial_before = run(&["+short", "test.ru", "SOA"]).await.unwrap();
    harness
        .zone
        .publish(&publication("www", &["10.4.0.4"]))
        .await
        .unwrap();
    let out = run(&["+noedns", "www.test.ru", "A"]).await.unwrap();
    assert!(out.contains("www.test.ru.\t\t10\tIN\tA\t10.4.0.4"), "{out}");
    let serial_after = run(&["+short", "test.ru", "SOA"]).await.unwrap();
    assert!(
        serial_before.contains(" 7 3600 600 86400 300"),
        "{serial_before}"
    );
    assert!(
        serial_after.contains(" 8 3600 600 86400 300"),
        "{serial_after}"
    );

    let nx = run(&["nope.test.ru", "A"]).await.unwrap();
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    assert!(
        nx.contains(";; AUTHORITY SECTION:\ntest.ru.\t\t300\tIN\tSOA"),
        "{nx}"
    );
    let no_data = run(&["www.test.ru", "MX"]).await.unwrap();
    assert!(
        no_data.contains("status: NOERROR") && no_data.contains("ANSWER: 0, AUTHORITY: 1"),
        "{no_data}"
    );
    let refused = run(&["example.org", "A"]).await.unwrap();
    assert!(refused.contains("status: REFUSED"), "{refused}");
    let truncated = run(&["+ignore", "+noedns", "big.test.ru", "TXT"])
        .await
        .unwrap();
    assert!(truncated.contains("flags: qr aa tc"), "{truncated}");
    let over_tcp = run(&["+tcp", "big.test.ru", "TXT"]).await.unwrap();
    assert!(over_tcp.contains("ANSWER: 24,"), "{over_tcp}");
    harness.server.shutdown().await;
}

// A real clock: tokio's paused clock auto-advances while real sockets wait, which could fire the
// idle timeout before the server has answered.
#[tokio::test]
async fn tcp_connections_are_limited_and_idle_ones_closed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("db.test.ru"), RICH).unwrap();
    let zone = Zone::from_file(dir.path().join("db.test.ru")).unwrap();
    let served = ServedZone::new(zone, &[], &state_dir(dir.path())).unwrap();
    let config = ServerConfig::new(vec!["127.0.0.1:0".parse().unwrap()])
        .with_tcp_max_connections(1)
        .with_tcp_idle_timeout(Duration::from_secs(1));
    let server = DnsServer::start(served, &config).unwrap();
    let addr = server.local_addrs()[0];
    let www = query("www.test.ru.", RecordType::A, false);

    let mut first = TcpStream::connect(addr).await.unwrap();
    tcp_send(&mut first, &www).await;
    assert_eq!(tcp_receive(&mut first).await.answers.len(), 1);
    let answered = tokio::time::Instant::now();

    // Over the limit: closed without an answer to its query.
    let mut second = TcpStream::connect(addr).await.unwrap();
    let bytes = www.to_vec().unwrap();
    let mut frame = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    frame.extend(bytes);
    let _ = second.write_all(&frame).await; // may already fail: the server closed it
    let mut byte = [0u8; 1];
    assert_eq!(
        second.read(&mut byte).await.unwrap_or(0),
        0,
        "closed at the limit"
    );

    // The first connection is closed once idle for 1 s, not before (bounded wait in case it
    // never closes)...
    let closed = tokio::time::timeout(Duration::from_secs(10), first.read(&mut byte)).await;
    assert_eq!(
        closed.expect("closed when idle").unwrap_or(0),
        0,
        "closed when idle"
    );
    assert!(
        answered.elapsed() >= Duration::from_secs(1),
        "closed before the idle timeout"
    );

    // ...which frees its slot.
    assert_eq!(tcp(addr, &www).await.answers.len(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_show_queries_and_responses_by_transport_and_rcode() {
    let harness = Harness::start().await;
    let addr = harness.addr();
    for _ in 0..3 {
        udp(addr, &query("www.test.ru.", RecordType::A, false)).await;
    }
    udp(addr, &query("nope.test.ru.", RecordType::A, true)).await;
    udp(addr, &query("big.test.ru.", RecordType::TXT, false)).await;
    let garbage = [0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0x3f, 0xff];
    udp_exchange(addr, &garbage).await;
    // A response sent to the server is dropped; the next query shows it was read.
    let mut response = query("www.test.ru.", RecordType::A, false)
        .to_vec()
        .unwrap();
    response[2] |= 0x80;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(&response, addr).await.unwrap();
    udp(addr, &query("www.example.org.", RecordType::A, false)).await;
    tcp(addr, &query("www.test.ru.", RecordType::A, false)).await;
    tcp(addr, &query("big.test.ru.", RecordType::TXT, false)).await;

    // The UDP workers count after sending: wait until the last query is in.
    let deadline = std::time::Instant::now() + WAIT;
    let stats = loop {
        let stats = harness.server.stats();
        if stats.udp.queries >= 8 || std::time::Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let udp_stats = &stats.udp;
    assert_eq!(udp_stats.queries, 8, "{stats:?}");
    assert_eq!(udp_stats.responses, 7, "{stats:?}");
    assert_eq!(
        udp_stats.responses_by_rcode[0], 4,
        "3 www A and big TXT: {stats:?}"
    );
    assert_eq!(udp_stats.responses_by_rcode[1], 1, "FORMERR: {stats:?}");
    assert_eq!(udp_stats.responses_by_rcode[3], 1, "NXDOMAIN: {stats:?}");
    assert_eq!(udp_stats.responses_by_rcode[5], 1, "REFUSED: {stats:?}");
    assert_eq!(udp_stats.truncated, 1, "{stats:?}");
    assert_eq!(udp_stats.malformed_dropped, 1, "{stats:?}");
    assert_eq!(stats.tcp.queries, 2, "{stats:?}");
    assert_eq!(stats.tcp.responses_by_rcode[0], 2, "{stats:?}");
    assert_eq!(stats.tcp.truncated, 0, "{stats:?}");
    let reader = harness.server.stats_reader();
    harness.server.shutdown().await;
    assert_eq!(
        reader.read(),
        stats,
        "the last counts, read after the server stopped"
    );
}
