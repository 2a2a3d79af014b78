//! SIGHUP on the real `failoverd run`: a bad new config is refused and the running one stays, a
//! good one is applied, and a client querying all along never sees a query fail.
#![allow(clippy::unwrap_used)] // tests

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{answered, ask, web_server};
use failover_testkit::{free_port, ChildGuard};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

fn write_config(
    dir: &std::path::Path,
    dns: SocketAddr,
    web_port: u16,
    extra_zone: &str,
    policy_extra: &str,
) {
    std::fs::write(
        dir.join("db.test.ru"),
        format!("$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns.test.ru. admin.test.ru. ( 2 10 10 10 10 )\n  IN NS ns.test.ru.\nns IN A 127.0.0.1\n{extra_zone}"),
    )
    .unwrap();
    std::fs::write(
        dir.join("failoverd.toml"),
        format!(
            r#"
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["{dns}"]
state_dir = "state"
records = [{{ name = "@", ttl = 10 }}]

[zone.rate_limit]
exempt = ["127.0.0.0/8"]

[probe]
interval = "300ms"
timeout = "200ms"

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
{policy_extra}
"#
        ),
    )
    .unwrap();
}

fn hangup(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sighup_with_a_bad_then_a_good_config_never_drops_a_query() {
    let dir = tempfile::tempdir().unwrap();
    let web_port = free_port("127.0.0.2");
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let _master = web_server("127.0.0.2", web_port);
    let _slave = web_server("127.0.0.3", web_port);
    write_config(dir.path(), dns, web_port, "", "");
    // Killed whatever happens below.
    let mut child = ChildGuard::new(
        Command::new(env!("CARGO_BIN_EXE_failoverd"))
            .args(["run", "--config"])
            .arg(dir.path().join("failoverd.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = child.id();

    let deadline = Instant::now() + Duration::from_secs(10);
    while !answered(dns) {
        assert!(
            Instant::now() < deadline,
            "the daemon did not answer within 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A client that keeps asking during both reloads (bounded: it stops when told, or at 60 s).
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut asked, mut failed) = (0u32, Vec::new());
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                asked += 1;
                if !answered(dns) {
                    failed.push(asked);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            (asked, failed)
        })
    };

    // An invalid config: refused, the running one stays.
    std::fs::write(
        dir.path().join("failoverd.toml"),
        "[zone]\nname = \"test.ru\"\nlistne = []\n",
    )
    .unwrap();
    hangup(pid);
    std::thread::sleep(Duration::from_secs(1));
    // A valid new config: a new static record and another policy setting.
    write_config(
        dir.path(),
        dns,
        web_port,
        "mail IN A 127.0.0.25\n",
        "failback_after = \"5s\"",
    );
    hangup(pid);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = ask(dns, "mail.test.ru.", RecordType::A);
        if answer.rcode == ResponseCode::NoError
            && answer.addresses == ["127.0.0.25".parse::<std::net::IpAddr>().unwrap()]
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reloaded zone file was not served within 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let (asked, failed) = client.join().unwrap();
    assert!(asked > 50, "the client should have kept asking: {asked}");
    assert!(
        failed.is_empty(),
        "queries {failed:?} of {asked} failed during the reloads"
    );

    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(exit.success(), "{exit}: {stderr}");
    assert!(stderr.contains("reload refused"), "{stderr}");
    assert!(stderr.contains("unknown field `listne`"), "{stderr}");
    assert!(
        stderr.contains("the running configuration stays in force"),
        "{stderr}"
    );
    assert!(stderr.contains("configuration reloaded"), "{stderr}");
}
