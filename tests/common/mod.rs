//! Helpers shared by the root package's integration tests: real HTTP servers on loopback
//! addresses, free ports, DNS questions with hickory-proto.
#![allow(clippy::unwrap_used, dead_code)] // tests; not every test uses every helper

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

/// A real HTTP server (python3 -m http.server) bound to one loopback address; killed on drop.
pub struct WebServer {
    child: Option<Child>,
    address: IpAddr,
    port: u16,
    root: tempfile::TempDir,
}

impl WebServer {
    /// Starts a server on `address:port` serving a page that names the address.
    pub fn new(address: &str, port: u16) -> Self {
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

    /// (Re)starts it and waits until it accepts connections.
    pub fn start(&mut self) {
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

    /// Kills it.
    pub fn stop(&mut self) {
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

/// A port free on `address` for both TCP and UDP.
pub fn free_port(address: &str) -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind((address, 0)).unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind((address, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on {address}");
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
