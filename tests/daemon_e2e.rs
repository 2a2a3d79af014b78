//! The daemon end to end with real sockets: two real HTTP servers (python3's http.server) on
//! 127.0.0.2 and 127.0.0.3, the daemon serving the zone, and real DNS clients (`dig` and a
//! hickory-proto client) watching the answer move and come back.
#![allow(clippy::unwrap_used)] // tests

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use failover::config::Config;
use failover::daemon::Daemon;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

const INTERVAL: Duration = Duration::from_millis(500);
const TIMEOUT: Duration = Duration::from_millis(300);
const FALL: u32 = 3;
const FAILBACK_AFTER: Duration = Duration::from_secs(3);
/// Scheduling slack on top of the arithmetic (shared 2-core machines, debug builds).
const SLACK: Duration = Duration::from_millis(1500);

/// A real HTTP server (python3 -m http.server) bound to one loopback address; killed on drop.
struct WebServer {
    child: Option<Child>,
    address: IpAddr,
    port: u16,
    root: tempfile::TempDir,
}

impl WebServer {
    fn new(address: &str, port: u16) -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("index.html"), format!("node {address}\n")).unwrap();
        let mut server = Self {
            child: None,
            address: address.parse().unwrap(),
            port,
            root,
        };
        server.start();
        server
    }

    fn start(&mut self) {
        let child = Command::new("python3")
            .args(["-m", "http.server", &self.port.to_string(), "--bind"])
            .arg(self.address.to_string())
            .arg("--directory")
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is needed for this test: apt-get install python3");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect((self.address, self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "python3 http.server did not listen on {}:{}",
            self.address, self.port
        );
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port(address: &str) -> u16 {
    // Free on both addresses, UDP and TCP (the DNS server binds both on the same port).
    for _ in 0..50 {
        let tcp = TcpListener::bind((address, 0)).unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind((address, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on {address}");
}

/// Asks with hickory-proto over UDP; returns the rcode, the A answers and the authority types.
fn ask(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
) -> (ResponseCode, Vec<IpAddr>, Vec<RecordType>, bool) {
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
    let addresses = response
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    let authority = response
        .authorities
        .iter()
        .map(|r| r.record_type())
        .collect();
    (
        response.metadata.response_code,
        addresses,
        authority,
        response.metadata.authoritative,
    )
}

/// Asks with the real `dig`; returns its status word and answer lines.
fn dig(server: SocketAddr, name: &str, rtype: &str) -> (String, Vec<String>) {
    let output = Command::new("dig")
        .args(["+tries=1", "+time=2", "-p", &server.port().to_string()])
        .arg(format!("@{}", server.ip()))
        .args([name, rtype])
        .output()
        .expect("dig is needed for this test: apt-get install bind9-dnsutils");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
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

fn config(dir: &Path, dns: SocketAddr, web_port: u16) -> Config {
    std::fs::write(
        dir.join("db.test.ru"),
        "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns.master.my.com. admin.my.com. ( 2 10 10 10 10 )\n  IN NS ns.master.my.com.\n  IN NS ns.slave.my.com.\n@ IN MX 10 mail.test.ru.\nmail IN A 127.0.0.9\n",
    )
    .unwrap();
    let text = format!(
        r#"
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["{dns}"]
state_dir = "state"
records = [{{ name = "@", ttl = 10 }}, {{ name = "www", ttl = 10 }}]

[probe]
interval = "{interval}ms"
timeout = "{timeout}ms"
jitter = "0s"
fall = {FALL}
rise = 1

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
order = ["master", "slave"]
failback = "auto"
failback_after = "{failback}s"
"#,
        interval = INTERVAL.as_millis(),
        timeout = TIMEOUT.as_millis(),
        failback = FAILBACK_AFTER.as_secs(),
    );
    let path = dir.join("failoverd.toml");
    std::fs::write(&path, &text).unwrap();
    Config::load(&path).unwrap()
}

/// Polls until the A answer for test.ru is `want`; returns how long it took.
fn wait_for(server: SocketAddr, want: IpAddr, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (_, answer, _, _) = ask(server, "test.ru.", RecordType::A);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_moves_to_the_backup_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let web_port = free_port("127.0.0.2");
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let mut master = WebServer::new("127.0.0.2", web_port);
    let _slave = WebServer::new("127.0.0.3", web_port);
    let master_ip: IpAddr = "127.0.0.2".parse().unwrap();
    let slave_ip: IpAddr = "127.0.0.3".parse().unwrap();

    let config = config(dir.path(), dns, web_port);
    let daemon = Daemon::start(&config).await.unwrap();

    let blocking = tokio::task::spawn_blocking(move || {
        // The primary, seen by both clients.
        wait_for(dns, master_ip, Duration::from_secs(10));
        let (status, answers) = dig(dns, "test.ru", "A");
        assert_eq!(status, "NOERROR");
        assert_eq!(answers, ["test.ru. 10 IN A 127.0.0.2"]);
        let (_, www, _, aa) = ask(dns, "www.test.ru.", RecordType::A);
        assert_eq!(www, [master_ip]);
        assert!(aa, "answers are authoritative");
        let serial_before = soa_serial(dns);

        // The primary's web server dies: the answer moves within fall × interval + timeout.
        master.stop();
        let stopped = Instant::now();
        let took = wait_for(dns, slave_ip, INTERVAL * FALL + TIMEOUT + SLACK);
        let (_, answers) = dig(dns, "www.test.ru", "A");
        assert_eq!(answers, ["www.test.ru. 10 IN A 127.0.0.3"]);
        eprintln!("failover took {took:?} after the web server stopped");
        let _ = stopped;

        // It comes back: the answer returns only after failback_after.
        master.start();
        let took = wait_for(dns, master_ip, FAILBACK_AFTER + INTERVAL + TIMEOUT + SLACK);
        assert!(
            took >= FAILBACK_AFTER,
            "failback after {took:?}, before failback_after ({FAILBACK_AFTER:?})"
        );
        eprintln!("failback took {took:?} after the web server restarted");
        let serial_after = soa_serial(dns);
        assert!(
            serial_after >= serial_before.wrapping_add(2),
            "the serial grew with each change: {serial_before} -> {serial_after}"
        );

        // Authoritative behaviour around the managed names.
        let (rcode, answer, authority, aa) = ask(dns, "nx.test.ru.", RecordType::A);
        assert_eq!(
            (rcode, answer.len(), authority, aa),
            (ResponseCode::NXDomain, 0, vec![RecordType::SOA], true)
        );
        let (status, answers) = dig(dns, "nx.test.ru", "A");
        assert_eq!((status.as_str(), answers.len()), ("NXDOMAIN", 0));
        let (rcode, answer, authority, _) = ask(dns, "www.test.ru.", RecordType::MX);
        assert_eq!(
            (rcode, answer.len(), authority),
            (ResponseCode::NoError, 0, vec![RecordType::SOA]),
            "no-data"
        );
        let (status, answers) = dig(dns, "www.test.ru", "TXT");
        assert_eq!((status.as_str(), answers.len()), ("NOERROR", 0));
        let (rcode, _, _, _) = ask(dns, "example.com.", RecordType::A);
        assert_eq!(rcode, ResponseCode::Refused);
        let (status, _) = dig(dns, "example.com", "A");
        assert_eq!(status, "REFUSED");
        master
    });
    let master = blocking.await.unwrap();

    let status = daemon.status().borrow().clone();
    let names: Vec<&str> = status.recent_events.iter().map(|e| e.name()).collect();
    assert!(
        names.contains(&"failover") && names.contains(&"failback"),
        "{names:?}"
    );
    daemon.shutdown().await;
    drop(master);
}

fn soa_serial(server: SocketAddr) -> u32 {
    let (status, answers) = dig(server, "test.ru", "SOA");
    assert_eq!(status, "NOERROR");
    answers[0].split(' ').nth(6).unwrap().parse().unwrap()
}
