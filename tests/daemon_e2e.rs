//! The daemon end to end with real sockets: two real HTTP servers (python3's http.server) on
//! 127.0.0.2 and 127.0.0.3, the daemon serving the zone, and real DNS clients (`dig` and a
//! hickory-proto client) watching the answer move and come back.
#![allow(clippy::unwrap_used)] // tests

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{ask, dig, wait_for_answer, web_server};
use failover::config::Config;
use failover::daemon::Daemon;
use failover_testkit::free_port;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const INTERVAL: Duration = Duration::from_millis(500);
const TIMEOUT: Duration = Duration::from_millis(300);
const FALL: u32 = 3;
const FAILBACK_AFTER: Duration = Duration::from_secs(3);
/// Scheduling slack on top of the arithmetic (shared 2-core machines, debug builds).
const SLACK: Duration = Duration::from_millis(1500);

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_moves_to_the_backup_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let web_port = free_port("127.0.0.2");
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let mut master = web_server("127.0.0.2", web_port);
    let _slave = web_server("127.0.0.3", web_port);
    let master_ip: IpAddr = "127.0.0.2".parse().unwrap();
    let slave_ip: IpAddr = "127.0.0.3".parse().unwrap();

    let config = config(dir.path(), dns, web_port);
    let daemon = Daemon::start(&config).await.unwrap();

    let blocking = tokio::task::spawn_blocking(move || {
        // The primary, seen by both clients.
        wait_for_answer(dns, master_ip, Duration::from_secs(10));
        let (status, answers) = dig(dns, "test.ru", "A");
        assert_eq!(status, "NOERROR");
        assert_eq!(answers, ["test.ru. 10 IN A 127.0.0.2"]);
        let www = ask(dns, "www.test.ru.", RecordType::A);
        assert_eq!(www.addresses, [master_ip]);
        assert!(www.authoritative, "answers are authoritative");
        let serial_before = soa_serial(dns);

        // The primary's web server dies: the answer moves within fall × interval + timeout.
        master.stop();
        let stopped = Instant::now();
        let took = wait_for_answer(dns, slave_ip, INTERVAL * FALL + TIMEOUT + SLACK);
        let (_, answers) = dig(dns, "www.test.ru", "A");
        assert_eq!(answers, ["www.test.ru. 10 IN A 127.0.0.3"]);
        eprintln!("failover took {took:?} after the web server stopped");
        let _ = stopped;

        // It comes back: the answer returns only after failback_after. The lower bound is
        // measured from before the start (the daemon may see the server before this test does).
        let restarting = Instant::now();
        master.start();
        let took = wait_for_answer(dns, master_ip, FAILBACK_AFTER + INTERVAL + TIMEOUT + SLACK);
        assert!(
            restarting.elapsed() >= FAILBACK_AFTER,
            "failback after {:?}, before failback_after ({FAILBACK_AFTER:?})",
            restarting.elapsed()
        );
        eprintln!("failback took {took:?} after the web server restarted");
        let serial_after = soa_serial(dns);
        assert!(
            serial_after >= serial_before.wrapping_add(2),
            "the serial grew with each change: {serial_before} -> {serial_after}"
        );

        // Authoritative behaviour around the managed names.
        let nx = ask(dns, "nx.test.ru.", RecordType::A);
        assert_eq!(
            (nx.rcode, nx.addresses.len(), nx.authority, nx.authoritative),
            (ResponseCode::NXDomain, 0, vec![RecordType::SOA], true)
        );
        let (status, answers) = dig(dns, "nx.test.ru", "A");
        assert_eq!((status.as_str(), answers.len()), ("NXDOMAIN", 0));
        let nodata = ask(dns, "www.test.ru.", RecordType::MX);
        assert_eq!(
            (nodata.rcode, nodata.addresses.len(), nodata.authority),
            (ResponseCode::NoError, 0, vec![RecordType::SOA]),
            "no-data"
        );
        let (status, answers) = dig(dns, "www.test.ru", "TXT");
        assert_eq!((status.as_str(), answers.len()), ("NOERROR", 0));
        assert_eq!(
            ask(dns, "example.com.", RecordType::A).rcode,
            ResponseCode::Refused
        );
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
