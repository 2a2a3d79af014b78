//! The built-in server as a primary: real NSD and Knot secondaries transfer the zone and follows a
//! failover on NOTIFY; transfers are refused outside the ACL; NOTIFY is resent until acknowledged.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use failover_core::{ManagedAnswer, Publication, ZoneWriter};
use failover_dns::{
    query, DnsServer, ManagedName, SecondariesConfig, ServedZone, ServerConfig, TransferAcl,
    Transport, TsigKey, Zone,
};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use failover_testkit::secondary::{SecondaryKey, SecondaryKind, ServerInDir};
use failover_testkit::{dig_async, free_port};

const RICH: &str = include_str!("data/rich.zone");

/// How long the secondary may take to follow a NOTIFY (it usually takes well under a second).
const FOLLOW_LIMIT: Duration = Duration::from_secs(10);

/// A primary serving `test.ru` (SOA refresh 3600 s) on a free loopback port, with AXFR allowed
/// to 127.0.0.1 only and NOTIFY going to `secondaries`.
async fn primary(dir: &Path, secondaries: Vec<SocketAddr>) -> (ServedZone, DnsServer) {
    primary_with(dir, secondaries, TransferAcl::parse(["127.0.0.1"]).unwrap()).await
}

/// [`primary`] with transfers allowed by `acl`.
async fn primary_with(
    dir: &Path,
    secondaries: Vec<SocketAddr>,
    acl: TransferAcl,
) -> (ServedZone, DnsServer) {
    let zone = Zone::parse("rich.zone", RICH).unwrap();
    let managed = [ManagedName::new("@", 10), ManagedName::new("www", 10)];
    let served = ServedZone::new(zone, &managed, &dir.join("state")).unwrap();
    let config = ServerConfig::new(vec!["127.0.0.1:0".parse().unwrap()])
        .with_transfer_acl(acl)
        .with_secondaries(
            SecondariesConfig::new(secondaries).with_first_timeout(Duration::from_millis(300)),
        );
    let server = DnsServer::start(served.clone(), &config).unwrap();
    (served, server)
}

/// Starts `kind` on 127.0.0.1:`port` as a secondary of `primary` for `test.ru`, in `dir`;
/// with `key`, it signs its requests to the primary with it.
fn start_secondary(
    kind: SecondaryKind,
    dir: &Path,
    port: u16,
    primary: SocketAddr,
    key: Option<&TsigKey>,
) -> ServerInDir {
    let key = key.map(|key| SecondaryKey {
        name: key.name().to_owned(),
        algorithm: key.algorithm().to_string(),
        secret: data_encoding::BASE64.encode(key.secret()),
    });
    ServerInDir::secondary_with_key(kind, "test.ru", dir, port, primary, key.as_ref())
}

/// `dig +short` for `name` `rtype` at `server`.
async fn dig_short(server: SocketAddr, name: &str, rtype: &str) -> String {
    dig_async(
        server,
        vec![
            name.into(),
            rtype.into(),
            "+short".into(),
            "+norec".into(),
            "+time=1".into(),
            "+tries=1".into(),
        ],
    )
    .await
    .trim()
    .to_owned()
}

/// Polls `dig +short` until it prints `want`; the time it took, or None after `limit`.
async fn wait_for(
    server: SocketAddr,
    name: &str,
    rtype: &str,
    want: &str,
    limit: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if dig_short(server, name, rtype).await == want {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn serial_of(soa_short: &str) -> u32 {
    soa_short
        .split_whitespace()
        .nth(2)
        .and_then(|serial| serial.parse().ok())
        .unwrap_or_else(|| panic!("not a +short SOA: {soa_short:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsd_transfers_the_zone_and_follows_a_failover_on_notify() {
    transfers_the_zone_and_follows_a_failover_on_notify(SecondaryKind::Nsd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knot_transfers_the_zone_and_follows_a_failover_on_notify() {
    transfers_the_zone_and_follows_a_failover_on_notify(SecondaryKind::Knot).await;
}

async fn transfers_the_zone_and_follows_a_failover_on_notify(kind: SecondaryKind) {
    let dir = tempfile::tempdir().unwrap();
    let secondary_port = free_port("127.0.0.1");
    let secondary = SocketAddr::from(([127, 0, 0, 1], secondary_port));
    let (served, server) = primary(dir.path(), vec![secondary]).await;
    let primary_addr = server.local_addrs()[0];
    let secondary_server = start_secondary(
        kind,
        &dir.path().join("secondary"),
        secondary_port,
        primary_addr,
        None,
    );

    // The initial transfer: the secondary answers from the zone it got, with our serial.
    let took = wait_for(
        secondary,
        "www.test.ru",
        "A",
        "10.1.0.1",
        Duration::from_secs(15),
    )
    .await;
    assert!(
        took.is_some(),
        "{kind:?} never served the transferred zone\n{}",
        secondary_server.log()
    );
    assert_eq!(
        dig_short(secondary, "mail.test.ru", "A").await,
        "10.0.0.25",
        "a static record came over too"
    );
    assert_eq!(
        dig_short(secondary, "big.test.ru", "TXT")
            .await
            .lines()
            .count(),
        24,
        "the whole RRset came over"
    );
    assert_eq!(
        serial_of(&dig_short(secondary, "test.ru", "SOA").await),
        served.serial()
    );

    // A failover: www moves; only NOTIFY can explain a prompt change (SOA refresh is 3600 s).
    let moved = Publication {
        nodes: vec![],
        answers: vec![ManagedAnswer {
            name: "www".into(),
            ttl: 10,
            addresses: vec!["10.2.0.1".parse().unwrap()],
        }],
    };
    let receipt = served.publish(&moved).await.unwrap();
    let took = wait_for(secondary, "www.test.ru", "A", "10.2.0.1", FOLLOW_LIMIT).await;
    assert!(
        took.is_some(),
        "{kind:?} did not follow the failover within {FOLLOW_LIMIT:?}\n{}",
        secondary_server.log()
    );
    eprintln!(
        "{kind:?} served the new answer {:?} after the publish",
        took.unwrap()
    );
    assert_eq!(
        Some(serial_of(&dig_short(secondary, "test.ru", "SOA").await)),
        receipt.serial
    );

    drop(secondary_server);
    server.shutdown().await;
}

/// An AXFR request over TCP from `source` (a loopback address), read to the end.
async fn axfr_from(source: IpAddr, server: SocketAddr) -> Vec<Message> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    let mut request = Message::query();
    request.metadata.id = 0x5151;
    request.add_query(Query::query(
        Name::from_ascii("test.ru.").unwrap(),
        RecordType::AXFR,
    ));
    let bytes = request.to_vec().unwrap();
    let mut frame = (bytes.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&bytes);
    stream.write_all(&frame).await.unwrap();
    let mut messages = Vec::new();
    let mut soas = 0;
    while soas < 2 {
        let mut length = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(3), stream.read_exact(&mut length))
            .await
            .expect("transfer message in time")
            .unwrap();
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut message).await.unwrap();
        let message = Message::from_vec(&message).unwrap();
        soas += message
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        let done = message.response_code != ResponseCode::NoError;
        messages.push(message);
        if done {
            break;
        }
    }
    messages
}

#[tokio::test]
async fn axfr_is_refused_outside_the_acl_and_over_udp() {
    let dir = tempfile::tempdir().unwrap();
    let (served, server) = primary(dir.path(), vec![]).await;
    let addr = server.local_addrs()[0];

    let allowed = axfr_from("127.0.0.1".parse().unwrap(), addr).await;
    assert_eq!(allowed[0].response_code, ResponseCode::NoError);
    let records: usize = allowed.iter().map(|m| m.answers.len()).sum();
    assert!(records > 30, "the whole zone: {records} records");

    let refused = axfr_from("127.0.0.2".parse().unwrap(), addr).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].response_code, ResponseCode::Refused);
    assert!(refused[0].answers.is_empty());

    // What an operator would run: dig from the address that is not allowed.
    let output = dig_async(
        addr,
        vec![
            "-b".into(),
            "127.0.0.2".into(),
            "test.ru".into(),
            "AXFR".into(),
        ],
    )
    .await;
    assert!(output.contains("Transfer failed"), "{output}");
    assert!(!output.contains("10.1.0.1"), "{output}");
    let allowed = dig_async(addr, vec!["test.ru".into(), "AXFR".into()]).await;
    assert!(
        allowed.contains("www.test.ru.\t\t10\tIN\tA\t10.1.0.1"),
        "{allowed}"
    );

    let over_udp = query(
        addr,
        &Name::from_ascii("test.ru.").unwrap(),
        RecordType::AXFR,
        Transport::Udp,
        Duration::from_secs(3),
    )
    .await
    .unwrap();
    assert_eq!(over_udp.response_code, ResponseCode::Refused);
    assert!(over_udp.answers.is_empty());
    drop(served);
    server.shutdown().await;
}

/// A fake secondary: receives NOTIFYs and answers (or not).
struct FakeSecondary {
    socket: tokio::net::UdpSocket,
}

impl FakeSecondary {
    async fn bind() -> Self {
        Self {
            socket: tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// The next NOTIFY within `limit`: its sender, message and the serial of its SOA hint
    /// (left out when the zone changed again while it was being sent).
    async fn next(&self, limit: Duration) -> Option<(SocketAddr, Message, Option<u32>)> {
        let mut buffer = vec![0u8; 4096];
        let (length, from) = tokio::time::timeout(limit, self.socket.recv_from(&mut buffer))
            .await
            .ok()?
            .unwrap();
        let message = Message::from_vec(&buffer[..length]).unwrap();
        assert_eq!(message.op_code, OpCode::Notify);
        assert_eq!(message.message_type, MessageType::Query);
        assert!(message.authoritative);
        assert_eq!(message.queries[0].query_type(), RecordType::SOA);
        assert_eq!(message.queries[0].name().to_ascii(), "test.ru.");
        let serial = message.answers.first().map(|record| match &record.data {
            RData::SOA(soa) => soa.serial,
            other => panic!("notify with a non-SOA answer: {other}"),
        });
        Some((from, message, serial))
    }

    async fn acknowledge(&self, to: SocketAddr, notify: &Message) {
        let mut response = Message::response(notify.id, OpCode::Notify);
        response.add_queries(notify.queries.clone());
        self.socket
            .send_to(&response.to_vec().unwrap(), to)
            .await
            .unwrap();
    }
}

fn publication(address: &str) -> Publication {
    Publication {
        nodes: vec![],
        answers: vec![ManagedAnswer {
            name: "www".into(),
            ttl: 10,
            addresses: vec![address.parse().unwrap()],
        }],
    }
}

#[tokio::test]
async fn notify_is_resent_until_acknowledged_and_a_new_serial_supersedes() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeSecondary::bind().await;
    let (served, server) = primary(dir.path(), vec![fake.addr()]).await;
    let wait = Duration::from_secs(3);

    // At start: the current serial, resent while unacknowledged, with a fresh ID each time.
    let (_, first, serial) = fake.next(wait).await.expect("notify at start");
    let serial = serial.expect("the SOA hint");
    assert_eq!(serial, served.serial());
    let (from, again, serial_again) = fake.next(wait).await.expect("notify resent");
    assert_eq!(serial_again, Some(serial));
    assert_ne!(again.id, first.id);
    fake.acknowledge(from, &again).await;
    assert!(
        fake.next(Duration::from_millis(1500)).await.is_none(),
        "an acknowledged notify is not resent"
    );

    // A publish is announced; a newer one replaces it before it is acknowledged.
    served.publish(&publication("10.2.0.1")).await.unwrap();
    let (_, _, second) = fake.next(wait).await.expect("notify after a publish");
    assert_eq!(second, Some(serial + 1));
    let receipt = served.publish(&publication("10.3.0.1")).await.unwrap();
    let newest = receipt.serial.unwrap();
    let mut announced = Vec::new();
    let mut last = None;
    while let Some((from, message, serial)) = fake.next(wait).await {
        announced.push(serial);
        if serial == Some(newest) {
            last = Some((from, message));
            break;
        }
    }
    let (from, message) = last.unwrap_or_else(|| panic!("newest serial never sent: {announced:?}"));
    fake.acknowledge(from, &message).await;
    assert!(fake.next(Duration::from_millis(1500)).await.is_none());

    // Shutdown stops the sender: a change after it is not announced.
    server.shutdown().await;
    served.publish(&publication("10.4.0.1")).await.unwrap();
    assert!(fake.next(Duration::from_millis(800)).await.is_none());
}

#[tokio::test]
async fn notify_gives_up_after_its_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeSecondary::bind().await;
    let zone = Zone::parse("rich.zone", RICH).unwrap();
    let served = ServedZone::new(zone, &[ManagedName::new("www", 10)], dir.path()).unwrap();
    let config = SecondariesConfig::new(vec![fake.addr()])
        .with_first_timeout(Duration::from_millis(100))
        .with_attempts(3);
    let sender = failover_dns::Secondaries::start(&served, &config).unwrap();
    for attempt in 1..=3 {
        assert!(
            fake.next(Duration::from_secs(2)).await.is_some(),
            "attempt {attempt}"
        );
    }
    assert!(
        fake.next(Duration::from_millis(1200)).await.is_none(),
        "three attempts, then silence until the next change"
    );
    served.publish(&publication("10.9.0.1")).await.unwrap();
    assert!(fake.next(Duration::from_secs(2)).await.is_some());
    sender.shutdown().await;
}

/// The transfer key of the TSIG tests (a fixed secret: the tests need no secrecy).
const XFR_SECRET: &str = "8mDfZsDGhzZ6kUfkAxIy5DnZtxbIeqvi9Q/KOiKhqHI=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsd_transfers_with_the_tsig_key_and_is_refused_without_it() {
    transfers_with_the_key_only(SecondaryKind::Nsd, "hmac-sha256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knot_transfers_with_the_tsig_key_and_is_refused_without_it() {
    transfers_with_the_key_only(SecondaryKind::Knot, "hmac-sha512").await;
}

/// Two secondaries of a primary whose ACL requires a key: the one holding the key transfers
/// the signed zone and follows a failover (its signed SOA queries are answered signed); the one
/// without the key never gets the zone.
async fn transfers_with_the_key_only(kind: SecondaryKind, algorithm: &str) {
    let key = TsigKey::new("xfr-key", algorithm, XFR_SECRET).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (keyed_port, keyless_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let keyed_addr = SocketAddr::from(([127, 0, 0, 1], keyed_port));
    let keyless_addr = SocketAddr::from(([127, 0, 0, 1], keyless_port));
    let acl = TransferAcl::deny_all()
        .parse_keyed(["127.0.0.0/8"], key.clone())
        .unwrap();
    let (served, server) = primary_with(dir.path(), vec![keyed_addr], acl).await;
    let primary_addr = server.local_addrs()[0];
    let keyed = start_secondary(
        kind,
        &dir.path().join("keyed"),
        keyed_port,
        primary_addr,
        Some(&key),
    );
    let keyless = start_secondary(
        kind,
        &dir.path().join("keyless"),
        keyless_port,
        primary_addr,
        None,
    );

    let took = wait_for(
        keyed_addr,
        "www.test.ru",
        "A",
        "10.1.0.1",
        Duration::from_secs(15),
    )
    .await;
    assert!(
        took.is_some(),
        "{kind:?} with the key never served the transferred zone\n{}",
        keyed.log()
    );
    assert_eq!(
        dig_short(keyed_addr, "big.test.ru", "TXT")
            .await
            .lines()
            .count(),
        24
    );
    served.publish(&publication("10.2.0.1")).await.unwrap();
    let took = wait_for(keyed_addr, "www.test.ru", "A", "10.2.0.1", FOLLOW_LIMIT).await;
    assert!(
        took.is_some(),
        "{kind:?} with the key did not follow the failover\n{}",
        keyed.log()
    );

    assert_eq!(
        dig_short(keyless_addr, "www.test.ru", "A").await,
        "",
        "{kind:?} without the key must not get the zone\n{}",
        keyless.log()
    );
    let log = keyless.log().to_ascii_lowercase();
    assert!(
        log.contains("refused") || log.contains("notauth"),
        "{kind:?} without the key logs the refusal\n{log}"
    );
    drop((keyed, keyless));
    server.shutdown().await;
}

#[tokio::test]
async fn dig_verifies_a_signed_transfer_of_many_messages_and_wrong_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = RICH.to_owned();
    for host in 0..2000 {
        text.push_str(&format!(
            "host-{host} IN A 10.9.{}.{}\n",
            host / 250,
            host % 250
        ));
    }
    let zone = Zone::parse("big.zone", &text).unwrap();
    let served = ServedZone::new(zone, &[], &dir.path().join("state")).unwrap();
    let key = TsigKey::new("xfr-key", "hmac-sha256", XFR_SECRET).unwrap();
    let acl = TransferAcl::parse(["127.0.0.2"])
        .unwrap()
        .parse_keyed(["127.0.0.1"], key)
        .unwrap();
    let config = ServerConfig::new(vec!["127.0.0.1:0".parse().unwrap()]).with_transfer_acl(acl);
    let server = DnsServer::start(served, &config).unwrap();
    let addr = server.local_addrs()[0];
    let axfr = |extra: &[&str]| {
        let mut args = vec!["test.ru".to_owned(), "AXFR".to_owned()];
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        dig_async(addr, args)
    };

    let signed = axfr(&["-y", &format!("hmac-sha256:xfr-key:{XFR_SECRET}")]).await;
    assert!(signed.contains("host-1999.test.ru."), "{signed}");
    let tsig_records = signed.lines().filter(|line| line.contains("TSIG")).count();
    assert!(
        tsig_records > 3,
        "every message is signed ({tsig_records} TSIG records):\n{signed}"
    );
    assert!(
        !signed.contains("failed") && !signed.contains("failure"),
        "{signed}"
    );

    let unsigned = axfr(&[]).await;
    assert!(unsigned.contains("Transfer failed"), "{unsigned}");
    assert!(!unsigned.contains("host-1"), "{unsigned}");
    let wrong = axfr(&["-y", "hmac-sha256:xfr-key:b3RoZXItc2VjcmV0"]).await;
    assert!(!wrong.contains("host-1"), "{wrong}");
    let unknown = axfr(&["-y", &format!("hmac-sha256:other-key:{XFR_SECRET}")]).await;
    assert!(!unknown.contains("host-1"), "{unknown}");
    let by_address = axfr(&["-b", "127.0.0.2"]).await;
    assert!(
        by_address.contains("host-1999.test.ru."),
        "an address entry needs no key"
    );
    server.shutdown().await;
}
