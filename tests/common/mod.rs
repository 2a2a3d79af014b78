//! Helpers shared by the root package's integration tests: the sites' web servers, DNS
//! questions with hickory-proto and `dig`'s verdicts.
#![allow(clippy::unwrap_used, dead_code)] // tests; not every test uses every helper

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use failover_testkit::HttpServer;

pub mod chromium;
pub mod openmetrics;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

/// A site's web server (python3 -m http.server) on `address:port` serving a page that names
/// the address; killed on drop, and it can be stopped and started again.
pub fn web_server(address: &str, port: u16) -> HttpServer {
    HttpServer::serve(
        address,
        port,
        &[("index.html", &format!("node {address}\n"))],
        Duration::from_secs(10),
    )
}

/// What a DNS answer says, as a client sees it.
pub struct Answer {
    /// The rcode.
    pub rcode: ResponseCode,
    /// The A records.
    pub addresses: Vec<IpAddr>,
    /// The types in the authority section.
    pub authority: Vec<RecordType>,
    /// The AA flag.
    pub authoritative: bool,
}

/// Asks with hickory-proto over UDP, 2 s timeout.
pub fn ask(server: SocketAddr, name: &str, rtype: RecordType) -> Answer {
    let mut query = Message::query();
    query.metadata.id = 4242;
    query.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    socket.send_to(&query.to_vec().unwrap(), server).unwrap();
    let mut buffer = [0u8; 4096];
    let (length, _) = socket
        .recv_from(&mut buffer)
        .expect("no DNS answer within 2 s");
    let response = Message::from_vec(&buffer[..length]).unwrap();
    assert_eq!(response.metadata.id, 4242);
    Answer {
        rcode: response.metadata.response_code,
        addresses: response
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })
            .collect(),
        authority: response
            .authorities
            .iter()
            .map(|r| r.record_type())
            .collect(),
        authoritative: response.metadata.authoritative,
    }
}

/// Polls until the A answer for test.ru is `want`; returns how long it took.
pub fn wait_for_answer(server: SocketAddr, want: IpAddr, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let answer = ask(server, "test.ru.", RecordType::A).addresses;
        if answer == [want] {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "test.ru did not move to {want} within {limit:?} (still {answer:?})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asks with the real `dig`; returns its status word and answer lines.
pub fn dig(server: SocketAddr, name: &str, rtype: &str) -> (String, Vec<String>) {
    let text = failover_testkit::dig(server, &["+tries=1", "+time=2", name, rtype]);
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("dig printed no status:\n{text}"))
        .to_owned();
    let answers = text
        .split(";; ANSWER SECTION:\n")
        .nth(1)
        .map(|s| {
            s.lines()
                .take_while(|l| !l.is_empty())
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect()
        })
        .unwrap_or_default();
    (status, answers)
}

/// Whether `dns` answers test.ru SOA with NOERROR and an answer within 1 s.
pub fn answered(dns: SocketAddr) -> bool {
    let answer = || -> Option<bool> {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
        socket.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let mut query = hickory_proto::op::Message::query();
        query.metadata.id = 7;
        query.add_query(hickory_proto::op::Query::query(
            hickory_proto::rr::Name::from_ascii("test.ru.").ok()?,
            RecordType::SOA,
        ));
        socket.send_to(&query.to_vec().ok()?, dns).ok()?;
        let mut buffer = [0u8; 2048];
        let (length, _) = socket.recv_from(&mut buffer).ok()?;
        let response = hickory_proto::op::Message::from_vec(&buffer[..length]).ok()?;
        Some(
            response.metadata.response_code == ResponseCode::NoError
                && !response.answers.is_empty(),
        )
    };
    answer().unwrap_or(false)
}

/// A daemon config of two nodes (master 127.0.0.2, slave 127.0.0.3) with a critical HTTP check
/// on `web_port` every 300 ms, active-passive with a 1 s failback, and the admin listener on
/// `admin` (`admin_extra`: more `[admin]` lines); the zone file beside it. Loaded.
pub fn two_nodes_with_admin(
    dir: &std::path::Path,
    dns: SocketAddr,
    admin: SocketAddr,
    web_port: u16,
    admin_extra: &str,
) -> failover::config::Config {
    std::fs::write(
        dir.join("db.test.ru"),
        "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns.test.ru. admin.test.ru. ( 2 10 10 10 10 )\n  IN NS ns.test.ru.\nns IN A 127.0.0.1\n",
    )
    .unwrap();
    let text = format!(
        r#"
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["{dns}"]
state_dir = "state"
records = [{{ name = "@", ttl = 10 }}]

[probe]
interval = "300ms"
timeout = "200ms"
jitter = "0s"

[[node]]
name = "master"
address = "127.0.0.2"

[[node]]
name = "slave"
address = "127.0.0.3"

[[check]]
name = "http"
kind = "http"
port = {web_port}
critical = true

[policy]
kind = "active-passive"
failback_after = "1s"

[admin]
listen = "{admin}"
{admin_extra}
"#
    );
    let path = dir.join("failoverd.toml");
    std::fs::write(&path, text).unwrap();
    failover::config::Config::load(&path).unwrap()
}

/// GETs `url` (no proxy, 10 s at most): the status code and the body.
pub async fn http_get(url: &str) -> (u16, String) {
    failover::core::install_crypto_provider();
    let response = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}
