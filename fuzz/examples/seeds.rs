//! Writes the seed corpora of the fuzz targets (`fuzz/corpus/TARGET/seed-*`), each made by the
//! project's own encoders or by the tools whose output the daemon reads.
//!
//! Run from the repository root: `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.
//! It prints each seed and, for configs, zone files and key files, whether it is accepted.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use failover::config::Config;
use failover_core::{FailureClass, ObserverReport, Outcome, OBSERVATIONS_SERVICE};
use failover_dns::{TsigKey, Zone};
use failover_fuzz::{basis_file, transfer_key, BASIS_LEN, RICH_ZONE, SIMPLE_ZONE};
use failover_sync::live::{encode, Message, RunReport, SERVICE as MIRROR_SERVICE};
use failover_sync::{
    signature, BatchRequest, DeltaOp, Entry, Hash, Kind, Matching, Owners, RelPath, Request,
    Response, StatKey, XattrKinds, Xattrs, PROTOCOL_VERSION,
};
use hickory_proto::op::{Edns, Message as DnsMessage, OpCode, Query};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

type Seeds = Vec<(&'static str, Vec<u8>)>;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let sets: [(&str, Seeds); 7] = [
        ("dns_answer", dns_queries()),
        ("zone_file", zone_files()),
        ("config", configs()),
        ("tsig_key_file", key_files()),
        ("mirror_message", mirror_frames()),
        ("peer_link", peer_streams()),
        ("observation", observation_frames()),
    ];
    for (target, seeds) in sets {
        let dir = root.join(target);
        fs::create_dir_all(&dir).expect("the corpus folder");
        for (name, bytes) in seeds {
            let path: PathBuf = dir.join(format!("seed-{name}"));
            fs::write(&path, &bytes).expect("the seed is written");
            println!("{target}/seed-{name}: {} bytes", bytes.len());
        }
    }
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("a fixed name")
}

/// A query as a resolver or `dig` sends it.
fn dns_query(qname: &str, qtype: RecordType, edns: Option<Edns>) -> DnsMessage {
    let mut message = DnsMessage::query();
    message.metadata.id = 0xbeef;
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name(qname), qtype));
    if let Some(edns) = edns {
        message.set_edns(edns);
    }
    message
}

fn edns(payload: u16, dnssec_ok: bool) -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(payload);
    edns.set_dnssec_ok(dnssec_ok);
    edns
}

fn wire(message: &DnsMessage) -> Vec<u8> {
    message.to_vec().expect("a fixed message encodes")
}

/// `message` signed with the transfer key now (a secondary's signed SOA query or AXFR).
fn signed(mut message: DnsMessage) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let signer = transfer_key().signer().expect("the key signs");
    let (signature, _) = signer.sign_message(&message, now).expect("it signs");
    message.set_signature(signature);
    wire(&message)
}

fn dns_queries() -> Seeds {
    let cookie = {
        let mut edns = edns(1232, false);
        let option = EdnsOption::Unknown(u16::from(EdnsCode::Cookie), vec![0x5a; 8]);
        edns.options_mut().insert(option);
        edns
    };
    let mut future_edns = edns(1232, false);
    future_edns.set_version(1);
    let mut ixfr = dns_query("test.ru.", RecordType::IXFR, None);
    let soa = SOA::new(
        name("ns1.test.ru."),
        name("admin.test.ru."),
        6,
        3600,
        600,
        86400,
        300,
    );
    ixfr.add_authority(Record::from_rdata(name("test.ru."), 0, RData::SOA(soa)));
    let mut notify = dns_query("test.ru.", RecordType::SOA, None);
    notify.metadata.op_code = OpCode::Notify;
    let mut chaos = dns_query("version.bind.", RecordType::TXT, None);
    chaos.queries[0].set_query_class(DNSClass::CH);
    vec![
        (
            "www-a",
            wire(&dns_query("www.test.ru.", RecordType::A, None)),
        ),
        (
            "www-aaaa-edns",
            wire(&dns_query(
                "WwW.TeSt.Ru.",
                RecordType::AAAA,
                Some(edns(1232, false)),
            )),
        ),
        (
            "apex-soa",
            wire(&dns_query("test.ru.", RecordType::SOA, None)),
        ),
        (
            "apex-ns-do",
            wire(&dns_query(
                "test.ru.",
                RecordType::NS,
                Some(edns(4096, true)),
            )),
        ),
        (
            "apex-any",
            wire(&dns_query("test.ru.", RecordType::ANY, None)),
        ),
        (
            "apex-mx",
            wire(&dns_query("test.ru.", RecordType::MX, Some(cookie))),
        ),
        (
            "cname-chain",
            wire(&dns_query("chain.test.ru.", RecordType::A, None)),
        ),
        (
            "cname-outside",
            wire(&dns_query("outside.test.ru.", RecordType::A, None)),
        ),
        (
            "wildcard-txt",
            wire(&dns_query("x.y.wild.test.ru.", RecordType::TXT, None)),
        ),
        (
            "delegation",
            wire(&dns_query("deep.sub.test.ru.", RecordType::A, None)),
        ),
        (
            "big-txt-udp",
            wire(&dns_query(
                "big.test.ru.",
                RecordType::TXT,
                Some(edns(512, false)),
            )),
        ),
        (
            "nxdomain",
            wire(&dns_query("nx.test.ru.", RecordType::A, None)),
        ),
        (
            "empty-non-terminal",
            wire(&dns_query("b.c.test.ru.", RecordType::A, None)),
        ),
        (
            "outside-zone",
            wire(&dns_query("www.example.org.", RecordType::A, None)),
        ),
        (
            "edns-version-1",
            wire(&dns_query("www.test.ru.", RecordType::A, Some(future_edns))),
        ),
        ("chaos-class", wire(&chaos)),
        ("notify", wire(&notify)),
        ("axfr", wire(&dns_query("test.ru.", RecordType::AXFR, None))),
        ("ixfr", wire(&ixfr)),
        (
            "axfr-signed",
            signed(dns_query("test.ru.", RecordType::AXFR, None)),
        ),
        (
            "soa-signed",
            signed(dns_query("test.ru.", RecordType::SOA, None)),
        ),
        // The qname is a compression pointer to itself.
        (
            "pointer-loop",
            vec![
                0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1,
            ],
        ),
    ]
}

fn zone_files() -> Seeds {
    let seeds: Seeds = vec![
        ("rich", RICH_ZONE.as_bytes().to_vec()),
        ("simple", SIMPLE_ZONE.as_bytes().to_vec()),
        ("example", include_bytes!("../../examples/db.test.ru").to_vec()),
        (
            "every-type",
            b"$ORIGIN example.net.\n$TTL 1h\n@ IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300\n\
              @ IN NS ns1\n@ IN NS ns2.example.org.\n@ IN A 192.0.2.10\n@ IN AAAA 2001:db8::10\n\
              @ IN MX 10 mx1\n@ IN TXT \"v=spf1 mx -all\" \"second string\"\n@ IN CAA 0 issue \"letsencrypt.org\"\n\
              _sip._tcp IN SRV 10 60 5060 sip\nsip IN A 192.0.2.20\nns1 IN A 192.0.2.53\nmx1 IN A 192.0.2.25\n\
              www 300 IN CNAME example.net.\n*.apps IN A 192.0.2.30\n10.2.0.192.in-addr IN PTR www\n\
              child IN NS ns.child\nns.child IN A 192.0.2.99\n"
                .to_vec(),
        ),
    ];
    for (name, text) in &seeds {
        let text = String::from_utf8_lossy(text);
        let verdict = Zone::parse(name, &text).map(|_| "parses".to_owned());
        println!("zone {name}: {}", verdict.unwrap_or_else(|e| e.to_string()));
    }
    seeds
}

/// A config with every section, valid on its own (no file is read while parsing).
const EVERY_SECTION: &str = r#"[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["0.0.0.0:53", "[::]:53"]
state_dir = "/var/lib/failoverd"
records = [{ name = "@", ttl = 10 }, { name = "www", ttl = 10 }, { name = "api", ttl = 10, policy = "api" }]
allow_transfer = ["192.0.2.10", { from = "198.51.100.0/24", key = "xfr-key" }]
keys = [{ name = "xfr-key", algorithm = "hmac-sha512", secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==" }]
notify = ["198.51.100.53:53"]

[zone.rate_limit]
responses_per_second = 50
errors_per_second = 10
slip = 3
ipv4_prefix = 24
ipv6_prefix = 56
exempt = ["192.0.2.0/24"]

[probe]
interval = "2s"
timeout = "1s"
jitter = "200ms"
fall = 3
rise = 2

[[node]]
name = "dc1"
address = "10.1.0.1"
peer_address = "10.1.0.1:8054"
fingerprint = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

[[node]]
name = "dc2"
address = "10.2.0.1"
publish = ["10.2.0.1", "2001:db8::2"]
peer_address = "203.0.113.2:8054"
peer_listen = "0.0.0.0:8054"
fingerprint = "sha256:2222222222222222222222222222222222222222222222222222222222222222"

[[check]]
name = "http"
kind = "http"
port = 80
path = "/health"
host = "test.ru"
expect_status = [200]
critical = true

[[check]]
name = "ssh"
kind = "ssh"
critical = false

[[check]]
name = "dns"
kind = "dns"
record_type = "SOA"
expect_rcode = "NOERROR"

[policy]
kind = "active-passive"
order = ["dc1", "dc2"]
failback = "auto"
failback_after = "30s"
all_down = "keep-last"

[policies.api]
kind = "all-healthy"
nodes = ["dc1", "dc2"]
all_down = "serve-all"

[[notify]]
kind = "webhook"
url = "https://hooks.example.net/failover"
events = ["node-down", "node-up"]
headers = { Authorization = "Bearer 0123456789abcdef" }

[[notify]]
kind = "email"
host = "smtp.example.net"
security = "starttls"
from = "failover@example.net"
to = ["admin@example.net"]

[[notify]]
kind = "command"
command = ["/usr/local/bin/page-admin", "--urgent"]

[damping]
window = "10m"
max_changes = 4

[admin]
listen = "127.0.0.1:8053"

[journal]
max_size_mb = 32
segment_size_mb = 2

[cluster]
observer_timeout = "10s"
on_partition = "hold"

[witness]
name = "witness"
peer_address = "198.51.100.9:8054"
fingerprint = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

[identity]
certificate = "/etc/failoverd/node.crt"
key = "/etc/failoverd/node.key"

[mirror]
root = "/var/www"
nodes = ["dc1", "dc2"]
port = 8055
exclude = ["*.log", "/cache/"]
coalesce = "100ms"
max_delete = 50
owners = "numeric"
"#;

fn configs() -> Seeds {
    let seeds: Seeds = vec![
        ("example", include_bytes!("../../examples/failoverd.toml").to_vec()),
        ("steer-bind", include_bytes!("../../examples/steer-bind.toml").to_vec()),
        (
            "two-data-centres",
            include_bytes!("../../examples/two-data-centres/failoverd.toml").to_vec(),
        ),
        (
            "several-a-records",
            include_bytes!("../../examples/several-a-records/failoverd.toml").to_vec(),
        ),
        ("every-section", EVERY_SECTION.as_bytes().to_vec()),
        // Wrong in several ways at once: every error is reported with its line and key.
        (
            "errors",
            b"[zone]\nname = \"test.ru\"\nfile = \"db.test.ru\"\nrecords = [{ name = \"www\", ttl = 0 }]\n\n\
              [[node]]\nname = \"a\"\naddress = \"not-an-address\"\n\n[[check]]\nname = \"http\"\n\
              kind = \"tcp\"\npath = \"/\"\n\n[policy]\nkind = \"active-passive\"\norder = [\"b\"]\n"
                .to_vec(),
        ),
    ];
    let path = Path::new("/nonexistent-failover-fuzz/failoverd.toml");
    for (name, text) in &seeds {
        let text = String::from_utf8_lossy(text);
        match Config::parse(&text, path) {
            Ok(_) => println!("config {name}: valid"),
            Err(errors) => {
                for error in errors {
                    println!("config {name}: {error}");
                }
            }
        }
    }
    seeds
}

fn key_files() -> Seeds {
    let seeds: Seeds = vec![
        // `tsig-keygen -a hmac-sha256 failover-key` (BIND 9.18).
        (
            "tsig-keygen-sha256",
            b"key \"failover-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"Qcs8cfopkTrwRt3Tl278o+VdkYo5jFuT5MRB+czeXkU=\";\n};\n".to_vec(),
        ),
        // `tsig-keygen -a hmac-sha512 transfer.example.`
        (
            "tsig-keygen-sha512",
            b"key \"transfer.example.\" {\n\talgorithm hmac-sha512;\n\tsecret \"C2ngIr98oKkdLStbHvmaN8aT/VhJp6wqR2aXTzqLS+Ukb7IY3ShMBPI2G1Y8PXbj2KkG0pUDIoLNA7u2/wRACg==\";\n};\n".to_vec(),
        ),
        // `rndc-confgen -a -c rndc.key -k rndc-key`
        (
            "rndc-confgen",
            b"key \"rndc-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"SK8p4w3zMM3BF1Se+6YxCVflLxnNzt3EpqjLrU09twE=\";\n};\n".to_vec(),
        ),
        // A named.conf fragment: comments of the three kinds, other statements, two keys.
        (
            "named-conf",
            b"// keys for the failover daemon\n# shell-style comment\n/* a block\n   comment */\noptions {\n\tdirectory \"/var/cache/bind\";\n\tallow-transfer { key \"a\"; };\n};\nkey a { algorithm hmac-sha384; secret \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==\"; };\nkey \"b\" {\n algorithm HMAC-SHA256;\n secret \"c2VjcmV0\n LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==\";\n};\ncontrols { inet 127.0.0.1 port 953 allow { 127.0.0.1; } keys { \"a\"; }; };\n".to_vec(),
        ),
        // An algorithm the writer does not take.
        (
            "hmac-md5",
            b"key \"old\" {\n\talgorithm hmac-md5;\n\tsecret \"c2VjcmV0LXNlY3JldA==\";\n};\n".to_vec(),
        ),
    ];
    for (name, text) in &seeds {
        let text = String::from_utf8_lossy(text);
        match TsigKey::parse_bind_keys(name, &text) {
            Ok(keys) => println!("key file {name}: {} keys", keys.len()),
            Err(error) => println!("key file {name}: {error}"),
        }
    }
    seeds
}

fn path(text: &str) -> RelPath {
    RelPath::new(text).expect("a fixed path")
}

fn file_entry(data: &[u8]) -> Entry {
    Entry {
        kind: Kind::File {
            size: data.len() as u64,
            hash: Hash::of(data),
        },
        mode: 0o644,
        owner: None,
        mtime_ns: 1_700_000_000_000_000_000,
        stat: StatKey::default(),
        xattrs: None,
    }
}

/// The messages the two ends of a mirror exchange in a run, one of each kind.
fn mirror_messages() -> Vec<(&'static str, Message)> {
    let basis = basis_file();
    let signature = signature(&basis, BASIS_LEN as u64).expect("the basis is signed");
    let entry = file_entry(b"<html>hello</html>\n");
    let ops = vec![
        DeltaOp::Copy {
            offset: 0,
            len: 1024,
        },
        DeltaOp::Literal(b"changed".to_vec()),
        DeltaOp::Copy {
            offset: 2048,
            len: 1024,
        },
    ];
    let batch: Vec<BatchRequest> = vec![
        BatchRequest::Mkdir {
            path: path("img"),
            mode: 0o755,
            owner: None,
            replace: None,
            xattrs: Some(Box::new(Xattrs(vec![(
                "user.mime_type".to_owned(),
                b"text/html".to_vec(),
            )]))),
        },
        BatchRequest::Delete {
            path: path("old.html"),
            expect: entry.clone(),
        },
    ];
    vec![
        (
            "hello",
            Message::Call(Request::Hello {
                version: PROTOCOL_VERSION,
                owners: Owners::Names,
                xattrs: XattrKinds {
                    user: true,
                    acls: true,
                },
            }),
        ),
        ("scan", Message::Call(Request::Scan)),
        (
            "read-begin-fast",
            Message::Call(Request::ReadBegin {
                path: path("index.html"),
                expect: entry.clone(),
                signature: Some(signature.clone()),
                matching: Matching::Fast,
            }),
        ),
        (
            "write-ops",
            Message::Call(Request::WriteOps {
                handle: 7,
                ops: ops.clone(),
            }),
        ),
        ("batch", Message::Call(Request::Batch(batch))),
        (
            "reply-signature",
            Message::Reply(Ok(Response::Signature(signature))),
        ),
        ("reply-ops", Message::Reply(Ok(Response::Ops(ops)))),
        (
            "reply-error",
            Message::Reply(Err("the replica is locked by another run".to_owned())),
        ),
        (
            "changed",
            Message::Changed(vec![path("index.html"), path("img/logo.png")]),
        ),
        ("rescan", Message::Rescan),
        (
            "report",
            Message::Report(RunReport {
                in_step_since: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
                backlog_files: 3,
                backlog_bytes: 4096,
                conflicts: 1,
                problem: Some("a conflict on index.html".to_owned()),
            }),
        ),
        ("ping", Message::Ping),
        // Large and repetitive: sent compressed (zstd).
        (
            "write-whole-compressed",
            Message::Call(Request::WriteWhole {
                path: path("index.html"),
                replace: None,
                target: entry.clone(),
                data: b"<p>hello, mirror</p>\n".repeat(200),
            }),
        ),
    ]
}

/// One message's frame (every seed message fits one).
fn mirror_frame(message: &Message) -> Vec<u8> {
    let mut frames = encode(message).expect("a seed message encodes");
    assert_eq!(frames.len(), 1, "a seed message fits one frame");
    frames.remove(0)
}

fn mirror_frames() -> Seeds {
    mirror_messages()
        .iter()
        .map(|(name, message)| (*name, mirror_frame(message)))
        .collect()
}

fn report_json(node: &str, healthy: bool, failures: u32) -> Vec<u8> {
    let outcome = if healthy {
        Outcome::healthy("HTTP 200")
    } else {
        Outcome::failed(FailureClass::Timeout, "no answer within 1s")
    };
    let report = ObserverReport {
        node: node.into(),
        check: "http".into(),
        outcome,
        consecutive_failures: failures,
    };
    // An observation link's frame: the report with `"type": "report"` (a tagged enum).
    let mut value = serde_json::to_value(report).expect("a report is JSON");
    value["type"] = "report".into();
    serde_json::to_vec(&value).expect("JSON")
}

fn observation_frames() -> Seeds {
    let heartbeat = br#"{"type":"heartbeat"}"#.to_vec();
    let agree = [
        report_json("dc1", false, 3),
        heartbeat.clone(),
        report_json("dc1", false, 4),
    ]
    .join(&0xff);
    vec![
        ("report-down", report_json("dc1", false, 3)),
        ("report-up", report_json("dc2", true, 0)),
        ("heartbeat", heartbeat),
        ("peers-agree", agree),
    ]
}

/// A peer-link frame: a 4-byte big-endian length, then the bytes.
fn link_frame(bytes: &[u8]) -> Vec<u8> {
    let mut frame = (bytes.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(bytes);
    frame
}

fn hello(service: &str) -> Vec<u8> {
    let hello = serde_json::json!({
        "protocol": "failover-peer",
        "version": failover_core::peer::PEER_PROTOCOL_VERSION,
        "service": service,
        "node": "dc2",
    });
    link_frame(&serde_json::to_vec(&hello).expect("JSON"))
}

fn peer_streams() -> Seeds {
    let mut mirror = hello(MIRROR_SERVICE);
    for (_, message) in mirror_messages()
        .iter()
        .take(4)
        .chain(mirror_messages().last())
    {
        mirror.extend(link_frame(&mirror_frame(message)));
    }
    // A message in two frames: the first marked "more follows".
    let whole = mirror_frame(&Message::Changed(vec![path("a.html"), path("b.html")]));
    let (first, second) = whole[1..].split_at(whole.len() / 2);
    let mut split = hello(MIRROR_SERVICE);
    split.extend(link_frame(&[&[1u8][..], first].concat()));
    split.extend(link_frame(&[&[0u8][..], second].concat()));
    let mut observations = hello(OBSERVATIONS_SERVICE);
    observations.extend(link_frame(&report_json("dc1", false, 3)));
    observations.extend(link_frame(br#"{"type":"heartbeat"}"#));
    vec![
        ("mirror", mirror),
        ("mirror-split-message", split),
        ("observations", observations),
        ("hello-only", hello(MIRROR_SERVICE)),
    ]
}
