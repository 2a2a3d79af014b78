//! The AF_XDP listener for real: `failoverd` with `[zone.xdp]` on one end of a veth pair between two network namespaces, asked from the other end; its answers byte for byte those of a `failoverd` on the socket path.
//!
//! Needs root, iproute2, nftables and dig (scripts/test.sh installs them); set
//! `FAILOVER_SKIP_NETNS=1` to skip on a machine without them, as the other namespace labs.
#![allow(clippy::unwrap_used)] // tests

mod netns;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

use netns::run;

const SERVER4: &str = "10.89.0.1";
const CLIENT4: &str = "10.89.0.2";
const SERVER6: &str = "fd89::1";
const CLIENT6: &str = "fd89::2";
/// The veth end in each namespace.
const LINK: &str = "xdp0";
/// The port of the daemon with the AF_XDP listener, and of the one on the socket path.
const XDP_PORT: u16 = 53;
const SOCKET_PORT: u16 = 5300;
/// What the daemons publish for `@` and `www`.
const PUBLISHED: &str = "10.1.0.7";

/// Labs started by this process, for their names (the tests run in parallel).
static LABS: AtomicU32 = AtomicU32::new(0);

/// Two namespaces joined by a veth pair, and the daemons in the server's; everything is
/// removed on drop, whatever happened.
struct Lab {
    prefix: String,
    dir: tempfile::TempDir,
    daemons: Vec<(String, Child)>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, daemon) in &mut self.daemons {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        for role in ["srv", "cli"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(role)])
                .output();
        }
    }
}

impl Lab {
    /// The lab, with this MTU on both ends of the link when given.
    fn start(mtu: Option<u16>) -> Option<Lab> {
        if let Some(reason) = netns::unavailable() {
            if std::env::var_os("FAILOVER_SKIP_NETNS").is_some() {
                eprintln!("skipped (FAILOVER_SKIP_NETNS): {reason}");
                return None;
            }
            panic!("the namespace lab cannot run: {reason} (set FAILOVER_SKIP_NETNS=1 to skip)");
        }
        assert!(
            Command::new("dig").arg("-v").output().is_ok(),
            "dig missing: apt-get install -y bind9-dnsutils"
        );
        netns::remove_stale();
        let lab = Lab {
            prefix: format!(
                "fo{}-x{}",
                std::process::id(),
                LABS.fetch_add(1, Ordering::Relaxed)
            ),
            dir: tempfile::tempdir().unwrap(),
            daemons: Vec::new(),
        };
        let (srv, cli) = (lab.ns("srv"), lab.ns("cli"));
        for ns in [&srv, &cli] {
            run(&["ip", "netns", "add", ns]);
        }
        run(&[
            "ip", "-n", &srv, "link", "add", LINK, "type", "veth", "peer", "name", LINK, "netns",
            &cli,
        ]);
        for (ns, v4, v6) in [(&srv, SERVER4, SERVER6), (&cli, CLIENT4, CLIENT6)] {
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v4}/24"),
                "dev",
                LINK,
            ]);
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                LINK,
                "nodad",
            ]);
            if let Some(mtu) = mtu {
                run(&["ip", "-n", ns, "link", "set", LINK, "mtu", &mtu.to_string()]);
            }
            run(&["ip", "-n", ns, "link", "set", LINK, "up"]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        // The answer proptests' zone, and a name whose answer (about 1,190 bytes) fits EDNS's
        // 1232 but not a 1000-byte MTU.
        let mut zone = include_str!("../failover-dns/tests/data/rich.zone").to_owned();
        for line in 0..15 {
            zone.push_str(&format!("mid IN TXT \"{line:02}-{}\"\n", "y".repeat(60)));
        }
        std::fs::write(lab.dir.path().join("db.test.ru"), zone).unwrap();
        Some(lab)
    }

    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// Starts `failoverd run` in the server's namespace on `port` of its IPv4 address (and of
    /// its IPv6 one when `v6`), with `[zone.xdp]` when `xdp`.
    fn spawn_daemon(&mut self, name: &str, port: u16, v6: bool, xdp: bool) {
        let listen = if v6 {
            format!("\"{SERVER4}:{port}\", \"[{SERVER6}]:{port}\"")
        } else {
            format!("\"{SERVER4}:{port}\"")
        };
        let config = self.dir.path().join(format!("{name}.toml"));
        let xdp = if xdp {
            format!("[zone.xdp]\ninterface = \"{LINK}\"\n")
        } else {
            String::new()
        };
        std::fs::write(
            &config,
            format!(
                r#"[zone]
name = "test.ru"
file = "db.test.ru"
listen = [{listen}]
state_dir = "state-{name}"
records = [{{ name = "@", ttl = 10 }}, {{ name = "www", ttl = 10 }}]
{xdp}
[probe]
interval = "1s"

[[node]]
name = "srv"
address = "{SERVER4}"
publish = ["{PUBLISHED}"]

[[check]]
name = "dns-port"
kind = "tcp"
port = {port}
critical = true

[policy]
kind = "active-passive"
"#
            ),
        )
        .unwrap();
        let log = File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let daemon = Command::new("ip")
            .args(["netns", "exec", &self.ns("srv")])
            .arg(env!("CARGO_BIN_EXE_failoverd"))
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemons.push((name.to_owned(), daemon));
    }

    fn logs(&self) -> String {
        let mut text = String::new();
        for (name, _) in &self.daemons {
            let log = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")));
            text.push_str(&format!("\n--- {name}:\n{}", log.unwrap_or_default()));
        }
        text
    }

    /// Runs `f` on a thread in the client's namespace (its sockets are the client's).
    fn in_client<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = Path::new("/var/run/netns").join(self.ns("cli"));
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let ns = File::open(&path).unwrap();
                    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                    f()
                })
                .join()
                .unwrap()
        })
    }

    /// Waits until both daemons answer the published address for `www` on `servers`.
    fn wait_for_answers(&mut self, servers: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let query = query(7, "www.test.ru.", RecordType::A, None);
        loop {
            let ready = self.in_client(|| {
                servers.iter().all(|server| {
                    [XDP_PORT, SOCKET_PORT].iter().all(|&port| {
                        let server = SocketAddr::new(server.parse().unwrap(), port);
                        ask_udp(server, &query).is_some_and(|answer| {
                            Message::from_vec(&answer).is_ok_and(|m| {
                                m.answers.iter().any(|r| r.data.to_string() == PUBLISHED)
                            })
                        })
                    })
                })
            });
            if ready {
                return;
            }
            let exited = self.daemons.iter_mut().find_map(|(name, daemon)| {
                let status = daemon.try_wait().unwrap()?;
                Some(format!("failoverd {name} exited ({status})"))
            });
            if let Some(exited) = exited {
                panic!("{exited}{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "the daemons did not answer {PUBLISHED} within 30 s{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Datagrams the server namespace's kernel UDP layer has taken in (IPv4 and IPv6).
    fn udp_datagrams_in(&self) -> u64 {
        let ns = self.ns("srv");
        let read = |file: &str| {
            String::from_utf8(run(&["ip", "netns", "exec", &ns, "cat", file]).stdout).unwrap()
        };
        let snmp = read("/proc/net/snmp");
        let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
        let (names, values) = (udp.next().unwrap(), udp.next().unwrap());
        let at = names.split(' ').position(|n| n == "InDatagrams").unwrap();
        let v4: u64 = values.split(' ').nth(at).unwrap().parse().unwrap();
        let v6: u64 = read("/proc/net/snmp6")
            .lines()
            .find_map(|l| l.strip_prefix("Udp6InDatagrams"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        v4 + v6
    }
}

/// A query with `id` for `name` and `rtype`, with EDNS and this payload size when given.
fn query(id: u16, name: &str, rtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.id = id;
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some(size) = edns {
        let mut opt = Edns::new();
        opt.set_max_payload(size);
        message.edns = Some(opt);
    }
    message.to_vec().unwrap()
}

/// Sends `query` over UDP from a fresh socket; the answer's bytes, or `None` after 2 s.
fn ask_udp(server: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let local: SocketAddr = match server.ip() {
        IpAddr::V4(_) => "0.0.0.0:0".parse().unwrap(),
        IpAddr::V6(_) => "[::]:0".parse().unwrap(),
    };
    let socket = UdpSocket::bind(local).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    socket.send_to(query, server).unwrap();
    let mut buffer = [0u8; 65535];
    let (len, from) = socket.recv_from(&mut buffer).ok()?;
    assert_eq!(from, server, "the answer comes from the address asked");
    Some(buffer[..len].to_vec())
}

/// Sends `query` over TCP; the answer's bytes.
fn ask_tcp(server: SocketAddr, query: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&server, Duration::from_secs(2)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).unwrap();
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).unwrap();
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut answer).unwrap();
    answer
}

/// Whether an answer has the TC flag.
fn truncated(answer: &[u8]) -> bool {
    answer[2] & 0x02 != 0
}

/// Every kind of question the answer proptests cover, each with its own ID.
fn questions() -> Vec<(String, Vec<u8>)> {
    let cases: &[(&str, RecordType, Option<u16>)] = &[
        ("www.test.ru.", RecordType::A, None),
        ("WwW.TeSt.Ru.", RecordType::A, None),
        ("www.test.ru.", RecordType::AAAA, None),
        ("test.ru.", RecordType::A, None),
        ("test.ru.", RecordType::NS, None),
        ("test.ru.", RecordType::SOA, None),
        ("test.ru.", RecordType::MX, None),
        ("test.ru.", RecordType::TXT, None),
        ("nx.test.ru.", RecordType::A, None),
        ("www.test.ru.", RecordType::A, Some(1232)),
        ("nx.test.ru.", RecordType::A, Some(1232)),
        ("alias.test.ru.", RecordType::A, None),
        ("x.wild.test.ru.", RecordType::TXT, None),
        ("deep.sub.test.ru.", RecordType::A, None),
        ("ns1.test.ru.", RecordType::AAAA, None),
        ("www.example.org.", RecordType::A, None),
        ("test.ru.", RecordType::ANY, None),
        // Truncated without EDNS; with 4096 longer than the MTU (sent through the kernel).
        ("big.test.ru.", RecordType::TXT, None),
        ("big.test.ru.", RecordType::TXT, Some(1232)),
        ("big.test.ru.", RecordType::TXT, Some(4096)),
    ];
    cases
        .iter()
        .enumerate()
        .map(|(index, (name, rtype, edns))| {
            let label = format!("{name} {rtype} edns {edns:?}");
            (label, query(0x100 + index as u16, name, *rtype, *edns))
        })
        .collect()
}

#[test]
fn the_xdp_listener_answers_every_question_as_the_socket_path_does_over_ipv4_and_ipv6() {
    let Some(mut lab) = Lab::start(None) else {
        return;
    };
    lab.spawn_daemon("xdp", XDP_PORT, true, true);
    lab.spawn_daemon("sockets", SOCKET_PORT, true, false);
    lab.wait_for_answers(&[SERVER4, SERVER6]);
    let attached = run(&["ip", "-n", &lab.ns("srv"), "link", "show", LINK]);
    let attached = String::from_utf8_lossy(&attached.stdout).into_owned();
    assert!(
        attached.contains("prog/xdp"),
        "no XDP program on {LINK}: {attached}"
    );

    let questions = questions();
    let servers: Vec<IpAddr> = vec![SERVER4.parse().unwrap(), SERVER6.parse().unwrap()];
    let before = lab.udp_datagrams_in();
    let through_xdp: Vec<Vec<Option<Vec<u8>>>> = lab.in_client(|| {
        servers
            .iter()
            .map(|&ip| {
                let server = SocketAddr::new(ip, XDP_PORT);
                questions.iter().map(|(_, q)| ask_udp(server, q)).collect()
            })
            .collect()
    });
    let after = lab.udp_datagrams_in();
    assert_eq!(
        after - before,
        0,
        "the queries to port {XDP_PORT} reached the kernel's UDP layer: not through AF_XDP"
    );
    let through_sockets: Vec<Vec<Option<Vec<u8>>>> = lab.in_client(|| {
        servers
            .iter()
            .map(|&ip| {
                let server = SocketAddr::new(ip, SOCKET_PORT);
                questions.iter().map(|(_, q)| ask_udp(server, q)).collect()
            })
            .collect()
    });
    assert!(
        lab.udp_datagrams_in() - after >= questions.len() as u64 * 2,
        "the socket path's queries went through the kernel's UDP layer"
    );
    for (family, (xdp, sockets)) in through_xdp.iter().zip(&through_sockets).enumerate() {
        for ((label, _), (xdp, sockets)) in questions.iter().zip(xdp.iter().zip(sockets)) {
            let server = servers[family];
            let xdp = xdp.as_ref().unwrap_or_else(|| {
                panic!(
                    "{server}: no answer to {label} through AF_XDP{}",
                    lab.logs()
                )
            });
            let sockets = sockets
                .as_ref()
                .unwrap_or_else(|| panic!("{server}: no answer to {label} from the socket path"));
            assert_eq!(xdp, sockets, "{server}: {label}: the answers differ");
        }
    }
    // Longer than the client allows (512 without EDNS, then the server's 1232): truncated.
    let big = &questions[questions.len() - 3..];
    for (index, (label, _)) in big.iter().enumerate() {
        let answer = through_xdp[0][questions.len() - 3 + index]
            .as_ref()
            .unwrap();
        assert!(truncated(answer), "{label}: not truncated");
    }

    // TCP on the same port passes to the kernel: the normal listener answers.
    let (xdp_tcp, sockets_tcp) = lab.in_client(|| {
        let question = &questions[0].1;
        let ask = |port| ask_tcp(SocketAddr::new(servers[1], port), question);
        (ask(XDP_PORT), ask(SOCKET_PORT))
    });
    assert_eq!(xdp_tcp, sockets_tcp);

    // And dig, as a person would ask.
    for server in [SERVER4, SERVER6] {
        let output = run(&[
            "ip",
            "netns",
            "exec",
            &lab.ns("cli"),
            "dig",
            "+short",
            "+tries=1",
            "+time=2",
            &format!("@{server}"),
            "www.test.ru",
            "A",
        ]);
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), PUBLISHED);
    }

    // The rate limit holds on the AF_XDP road too (on by default: 100 answers a second per
    // client prefix, name and type; every second limited answer truncated).
    let (answered, truncated_count) = lab.in_client(|| {
        let server = SocketAddr::new(servers[0], XDP_PORT);
        let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        for id in 0..300u16 {
            socket
                .send_to(&query(id, "mail.test.ru.", RecordType::A, None), server)
                .unwrap();
        }
        let mut buffer = [0u8; 4096];
        let (mut answered, mut truncated_count) = (0, 0);
        while let Ok(len) = socket.recv(&mut buffer) {
            answered += 1;
            truncated_count += usize::from(truncated(&buffer[..len]));
        }
        (answered, truncated_count)
    });
    assert!(
        (100..300).contains(&answered) && truncated_count > 0,
        "{answered} answers to 300 queries, {truncated_count} truncated"
    );

    // A daemon that stops takes its program off the interface.
    let pid = lab.daemons[0].1.id().to_string();
    run(&["kill", "-TERM", &pid]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab.daemons[0].1.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "failoverd did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let link = run(&["ip", "-n", &lab.ns("srv"), "link", "show", LINK]);
    let link = String::from_utf8_lossy(&link.stdout).into_owned();
    assert!(!link.contains("prog/xdp"), "the XDP program stayed: {link}");
}

#[test]
fn an_answer_longer_than_the_mtu_leaves_whole_through_the_kernel() {
    // 1000 bytes: IPv4 only (IPv6 needs 1280), and the server's 1232-byte answers do not fit.
    let Some(mut lab) = Lab::start(Some(1000)) else {
        return;
    };
    lab.spawn_daemon("xdp", XDP_PORT, false, true);
    lab.spawn_daemon("sockets", SOCKET_PORT, false, false);
    lab.wait_for_answers(&[SERVER4]);
    let question = query(9, "mid.test.ru.", RecordType::TXT, Some(1232));
    let server: IpAddr = SERVER4.parse().unwrap();
    let before = lab.udp_datagrams_in();
    let xdp = lab.in_client(|| ask_udp(SocketAddr::new(server, XDP_PORT), &question));
    assert_eq!(lab.udp_datagrams_in(), before, "the query went past AF_XDP");
    let sockets = lab.in_client(|| ask_udp(SocketAddr::new(server, SOCKET_PORT), &question));
    let xdp = xdp.expect("no answer through AF_XDP");
    assert!(xdp.len() > 1000 && !truncated(&xdp), "{} bytes", xdp.len());
    assert_eq!(Some(xdp), sockets);
}

/// Runs `failoverd run` with `[zone.xdp]` on `interface` on loopback (as `nobody` without
/// capabilities when `unprivileged`) and returns what it printed when it stopped.
fn start_error(interface: &str, unprivileged: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("db.test.ru"),
        include_str!("../failover-dns/tests/data/rich.zone"),
    )
    .unwrap();
    let port = failover_testkit::free_port("127.0.0.1");
    let config = dir.path().join("failoverd.toml");
    std::fs::write(
        &config,
        format!(
            r#"[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["127.0.0.1:{port}"]
state_dir = "state"
records = [{{ name = "www", ttl = 10 }}]
[zone.xdp]
interface = "{interface}"
[[node]]
name = "a"
address = "127.0.0.1"
[[check]]
name = "tcp"
kind = "tcp"
port = {port}
critical = true
[policy]
kind = "active-passive"
"#
        ),
    )
    .unwrap();
    let mut command = if unprivileged {
        // nobody may read the config and write the state; util-linux's setpriv drops the rest.
        run(&["chmod", "-R", "a+rwX", &dir.path().display().to_string()]);
        let mut command = Command::new("setpriv");
        command.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            env!("CARGO_BIN_EXE_failoverd"),
        ]);
        command
    } else {
        Command::new(env!("CARGO_BIN_EXE_failoverd"))
    };
    let output = command
        .args(["run", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "failoverd started: {stderr}");
    stderr
}

#[test]
fn a_missing_interface_stops_the_start_with_the_reason() {
    let stderr = start_error("fo-nosuch0", false);
    assert!(
        stderr.contains("af_xdp listener on fo-nosuch0: no such network interface"),
        "{stderr}"
    );
    assert!(stderr.contains("`ip link` lists them"), "{stderr}");
}

#[test]
fn without_the_capabilities_the_start_stops_and_names_them() {
    let stderr = start_error("lo", true);
    assert!(
        stderr.contains("af_xdp listener on lo: AF_XDP socket on queue 0: Operation not permitted"),
        "{stderr}"
    );
    assert!(
        stderr.contains("AF_XDP needs CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_IPC_LOCK"),
        "{stderr}"
    );
}
