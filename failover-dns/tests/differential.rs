//! The built-in server against a reference: the same zone file served in-process by failover-dns
//! and by a real Knot on loopback, asked the same questions (names × types × UDP/TCP × with and
//! without EDNS, and EDNS compliance probes); rcode, flags, the answer, authority and additional
//! sections (sorted) and the OPT record must match, except for the deliberate differences listed
//! in [`DELIBERATE`].
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use failover_dns::{DnsServer, ManagedName, ServedZone, ServerConfig, Zone};
use hickory_proto::op::Message;
use hickory_proto::rr::{Record, RecordType};

use failover_testkit::free_port;
use failover_testkit::secondary::ServerInDir;

const ZONE: &str = include_str!("data/differential.zone");
const WAIT: Duration = Duration::from_secs(2);

/// The names asked, relative to `test.ru.` (`@` is the apex; a trailing dot: outside the zone).
const NAMES: &[&str] = &[
    "@",            // apex: SOA, NS with glue, MX, TXT, A, AAAA
    "www",          // a managed name
    "WwW",          // case is preserved in the question, ignored in the lookup
    "mail",         // MX target
    "ns1",          // in-zone name server
    "_sip._udp",    // SRV (not precomputed)
    "alias",        // CNAME to a managed name
    "chain",        // CNAME to a CNAME
    "outside",      // CNAME out of the zone
    "dangling",     // CNAME to a missing name
    "nodata",       // CNAME to a name without the type asked
    "loop1",        // a two-name CNAME loop
    "intoloop",     // a CNAME into the loop
    "self",         // a CNAME to itself
    "towild",       // CNAME to a name a wildcard covers
    "long0",        // a chain of 12 CNAMEs, longer than the hop limit
    "long5",        // the end of that chain, within the limit
    "x.wild",       // wildcard
    "a.b.wild",     // below the wildcard's own level
    "y.cwild",      // wildcard CNAME
    "*.wild",       // the wildcard's own owner name
    "c",            // empty non-terminal
    "b.c",          // empty non-terminal
    "a.b.c",        // below empty non-terminals
    "sub",          // delegation point
    "host.sub",     // below the delegation
    "ns.sub",       // glue
    "tosub",        // CNAME into the delegation
    "nope",         // missing
    "nope.www",     // missing below an existing name
    "big",          // an answer that does not fit 512 bytes
    "example.org.", // another zone
    "xtest.ru.",    // a name that only ends like the zone
];

const TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::NS,
    RecordType::SOA,
    RecordType::MX,
    RecordType::TXT,
    RecordType::CNAME,
    RecordType::SRV,
    RecordType::DS,
    RecordType::ANY,
];

/// A difference chosen on purpose: which probes it covers, and why ours answers otherwise.
struct Deliberate {
    what: &'static str,
    covers: fn(&Probe) -> bool,
    why: &'static str,
}

/// Every deliberate difference. Each covers only probes that ours answers REFUSED with empty
/// sections (checked): a refusal, never a different answer.
const DELIBERATE: &[Deliberate] = &[
    Deliberate {
        what: "AXFR or IXFR over UDP",
        covers: |probe| matches!(probe.qtype, RecordType::AXFR | RecordType::IXFR) && !probe.tcp,
        why: "transfers go over TCP to the clients the ACL admits; anything else is REFUSED, as \
              BIND does (Knot answers NOTIMP for AXFR and NOTAUTH for IXFR over UDP)",
    },
    Deliberate {
        what: "class CH (version.bind, hostname.bind)",
        covers: |probe| probe.class == 3 && probe.name.ends_with(".bind."),
        why: "the server does not tell its name or version to strangers (Knot answers its \
              version unless configured not to); other CH names are REFUSED by both",
    },
];

/// The EDNS part of a probe.
#[derive(Clone, Debug)]
struct Opt {
    payload: u16,
    version: u8,
    flags: u16,
    options: Vec<(u16, Vec<u8>)>,
}

impl Opt {
    fn plain(payload: u16) -> Self {
        Self {
            payload,
            version: 0,
            flags: 0,
            options: Vec::new(),
        }
    }
}

/// One question, as sent.
#[derive(Clone, Debug)]
struct Probe {
    name: String,
    qtype: RecordType,
    tcp: bool,
    opt: Option<Opt>,
    /// The query class: 1 (IN) but for the probes of other classes.
    class: u16,
}

impl Probe {
    fn qname(&self) -> String {
        match self.name.as_str() {
            "@" => "test.ru.".to_owned(),
            name if name.ends_with('.') => name.to_owned(),
            name => format!("{name}.test.ru."),
        }
    }

    /// The query in wire format: RD set (as stub resolvers and dig send it), one question of
    /// class IN, and the OPT record when there is one.
    fn wire(&self, id: u16) -> Vec<u8> {
        let mut wire = id.to_be_bytes().to_vec();
        wire.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0]);
        wire.push(u8::from(self.opt.is_some()));
        for label in self.qname().trim_end_matches('.').split('.') {
            wire.push(u8::try_from(label.len()).unwrap());
            wire.extend_from_slice(label.as_bytes());
        }
        wire.push(0);
        wire.extend_from_slice(&u16::from(self.qtype).to_be_bytes());
        wire.extend_from_slice(&self.class.to_be_bytes());
        if let Some(opt) = &self.opt {
            wire.extend_from_slice(&[0, 0, 41]);
            wire.extend_from_slice(&opt.payload.to_be_bytes());
            wire.extend_from_slice(&[0, opt.version]);
            wire.extend_from_slice(&opt.flags.to_be_bytes());
            let rdata: Vec<u8> = opt
                .options
                .iter()
                .flat_map(|(code, data)| {
                    let mut option = code.to_be_bytes().to_vec();
                    option.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
                    option.extend_from_slice(data);
                    option
                })
                .collect();
            wire.extend_from_slice(&u16::try_from(rdata.len()).unwrap().to_be_bytes());
            wire.extend_from_slice(&rdata);
        }
        wire
    }

    fn describe(&self) -> String {
        format!(
            "{} {} {} over {}{}",
            self.qname(),
            self.class,
            self.qtype,
            if self.tcp { "TCP" } else { "UDP" },
            match &self.opt {
                None => String::new(),
                Some(opt) => format!(" with {opt:?}"),
            }
        )
    }
}

/// What is compared of a response.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    rcode: u16,
    flags: String,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
    /// Version, DO bit and payload of the OPT record, if any.
    opt: Option<(u8, bool, u16)>,
}

fn section(records: &[Record]) -> Vec<String> {
    let mut lines: Vec<String> = records
        .iter()
        .map(|record| {
            format!(
                "{} {} {} {}",
                record.name.to_lowercase(),
                record.ttl,
                record.record_type(),
                record.data
            )
        })
        .collect();
    lines.sort();
    lines
}

fn summarize(response: &[u8], id: u16) -> Summary {
    let message = Message::from_vec(response)
        .unwrap_or_else(|error| panic!("undecodable response {response:02x?}: {error}"));
    assert_eq!(message.id, id);
    let flags = [
        (message.authoritative, "aa"),
        (message.truncation, "tc"),
        (message.recursion_desired, "rd"),
        (message.recursion_available, "ra"),
        (message.authentic_data, "ad"),
        (message.checking_disabled, "cd"),
    ]
    .iter()
    .filter(|(set, _)| *set)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(" ");
    Summary {
        rcode: u16::from(message.response_code),
        flags,
        answer: section(&message.answers),
        authority: section(&message.authorities),
        additional: section(&message.additionals),
        opt: message
            .edns
            .as_ref()
            .map(|edns| (edns.version(), edns.flags().dnssec_ok, edns.max_payload())),
    }
}

/// Sends `probe` to `server` and returns the raw response (UDP is retried twice on loss).
fn exchange(server: SocketAddr, probe: &Probe, id: u16) -> Vec<u8> {
    let query = probe.wire(id);
    if probe.tcp {
        let mut stream = TcpStream::connect_timeout(&server, WAIT).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut frame = u16::try_from(query.len()).unwrap().to_be_bytes().to_vec();
        frame.extend_from_slice(&query);
        stream.write_all(&frame).unwrap();
        let mut length = [0u8; 2];
        stream
            .read_exact(&mut length)
            .unwrap_or_else(|error| panic!("{}: no TCP answer: {error}", probe.describe()));
        let mut response = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut response).unwrap();
        return response;
    }
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut buffer = vec![0u8; 65535];
    for _ in 0..3 {
        socket.send_to(&query, server).unwrap();
        if let Ok((length, _)) = socket.recv_from(&mut buffer) {
            buffer.truncate(length);
            return buffer;
        }
    }
    panic!("{}: no UDP answer from {server}", probe.describe());
}

/// Knot serving the zone file as a primary on a free loopback port, in `dir`.
fn start_knot(dir: &Path) -> (ServerInDir, SocketAddr) {
    let port = free_port("127.0.0.1");
    std::fs::write(dir.join("test.ru.zone"), ZONE).unwrap();
    let d = dir.display();
    let config = format!(
        r#"server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
control:
    listen: "{d}/knot.sock"
log:
  - target: "{d}/log"
    any: info
database:
    storage: "{d}"
zone:
  - domain: test.ru
    storage: "{d}"
    file: "test.ru.zone"
    journal-content: none
    zonefile-sync: -1
"#
    );
    let config_path = dir.join("knot.conf");
    std::fs::write(&config_path, config).unwrap();
    let knot = ServerInDir::start(
        "knotd",
        "knot",
        &["-c".as_ref(), config_path.as_os_str()],
        dir,
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let soa = Probe {
        name: "@".into(),
        qtype: RecordType::SOA,
        tcp: false,
        opt: None,
        class: 1,
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        socket.send_to(&soa.wire(1), addr).unwrap();
        let mut buffer = [0u8; 512];
        if let Ok((length, _)) = socket.recv_from(&mut buffer) {
            // rcode NOERROR: the zone is loaded (SERVFAIL or REFUSED before).
            if length > 3 && buffer[3] & 0x0f == 0 {
                return (knot, addr);
            }
        }
        assert!(
            Instant::now() < deadline,
            "knot did not serve the zone\n{}",
            knot.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every probe of the matrix and the EDNS compliance probes.
fn probes() -> Vec<Probe> {
    let mut probes = Vec::new();
    for name in NAMES {
        for &qtype in TYPES {
            for tcp in [false, true] {
                for opt in [None, Some(Opt::plain(1232))] {
                    probes.push(Probe {
                        name: (*name).to_owned(),
                        qtype,
                        tcp,
                        opt,
                        class: 1,
                    });
                }
            }
        }
    }
    let edns_probes = [
        Opt {
            version: 1,
            ..Opt::plain(1232)
        },
        Opt {
            version: 255,
            ..Opt::plain(4096)
        },
        Opt {
            flags: 0x4000, // an undefined flag: ignored and not echoed
            ..Opt::plain(1232)
        },
        Opt {
            flags: 0x8000, // DO: echoed
            ..Opt::plain(1232)
        },
        Opt {
            options: vec![(65001, vec![1, 2, 3, 4])], // an unknown option: ignored
            ..Opt::plain(1232)
        },
        Opt::plain(0),
        Opt::plain(100),
        Opt::plain(511),
        Opt::plain(512),
        Opt::plain(1000),
        Opt::plain(4096),
        Opt::plain(65535),
    ];
    for name in ["www", "big", "nope", "example.org."] {
        for opt in &edns_probes {
            for tcp in [false, true] {
                probes.push(Probe {
                    name: name.to_owned(),
                    qtype: if name == "big" {
                        RecordType::TXT
                    } else {
                        RecordType::A
                    },
                    tcp,
                    opt: Some(opt.clone()),
                    class: 1,
                });
            }
        }
    }
    // Transfers over UDP, other classes (CH: version.bind and the like, ANY, NONE).
    for (name, qtype, class) in [
        ("@", RecordType::AXFR, 1),
        ("@", RecordType::IXFR, 1),
        ("version.bind.", RecordType::TXT, 3),
        ("www", RecordType::A, 3),
        ("www", RecordType::A, 255),
        ("www", RecordType::A, 254),
    ] {
        for opt in [None, Some(Opt::plain(1232))] {
            probes.push(Probe {
                name: name.to_owned(),
                qtype,
                tcp: false,
                opt,
                class,
            });
        }
    }
    probes
}

/// The deliberate difference that covers `probe`, if any.
fn deliberate(probe: &Probe) -> Option<&'static Deliberate> {
    DELIBERATE
        .iter()
        .find(|difference| (difference.covers)(probe))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_match_knot_on_every_probe() {
    let dir = tempfile::tempdir().unwrap();
    let zone = Zone::parse("differential.zone", ZONE).unwrap();
    let managed = [ManagedName::new("@", 10), ManagedName::new("www", 10)];
    let served = ServedZone::new(zone, &managed, &dir.path().join("state")).unwrap();
    // Knot limits no rate by default; neither may ours while the matrix is asked at full speed.
    let config = ServerConfig::new(vec!["127.0.0.1:0".parse().unwrap()]).with_rate_limit(None);
    let server = DnsServer::start(served, &config).unwrap();
    let ours = server.local_addrs()[0];
    let knot_dir = dir.path().join("knot");
    std::fs::create_dir_all(&knot_dir).unwrap();

    let report = tokio::task::spawn_blocking(move || {
        let (knot, theirs) = start_knot(&knot_dir);
        let mut mismatches = Vec::new();
        let mut accepted = Vec::new();
        let probes = probes();
        for (index, probe) in probes.iter().enumerate() {
            let id = u16::try_from(index % 60000).unwrap() + 1;
            let our = summarize(&exchange(ours, probe, id), id);
            let their = summarize(&exchange(theirs, probe, id), id);
            if our == their {
                continue;
            }
            let line = format!("{}\n  ours: {our:?}\n  knot: {their:?}", probe.describe());
            match deliberate(probe) {
                Some(difference)
                    if our.rcode == 5 && our.answer.is_empty() && our.authority.is_empty() =>
                {
                    accepted.push(format!("{line}\n  ({})", difference.what))
                }
                _ => mismatches.push(line),
            }
        }
        let knot_log = knot.log();
        (probes.len(), mismatches, accepted, knot_log)
    })
    .await
    .unwrap();
    let (count, mismatches, accepted, knot_log) = report;
    eprintln!(
        "{count} probes; {} deliberate differences accepted:",
        accepted.len()
    );
    for line in &accepted {
        eprintln!("{line}");
    }
    for difference in DELIBERATE {
        eprintln!("  {}: {}", difference.what, difference.why);
    }
    assert!(
        mismatches.is_empty(),
        "{} of {count} probes differ from knot:\n{}\n{knot_log}",
        mismatches.len(),
        mismatches.join("\n")
    );
    server.shutdown().await;
}
