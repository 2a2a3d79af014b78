//! Several A records end to end: with `[policy] kind = "all-healthy"` (the setup of `examples/several-a-records/`), `dig` shows every live node's address, a dead one leaves the answer and comes back when it is up again.
#![allow(clippy::unwrap_used)] // tests

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{ask, dig, web_server};
use failover::config::Config;
use failover::daemon::Daemon;
use failover_testkit::free_port;
use hickory_proto::rr::RecordType;

const WEB: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

fn config(dir: &Path, dns: SocketAddr, web_port: u16) -> Config {
    std::fs::write(
        dir.join("db.example.com"),
        "$ORIGIN example.com.\n$TTL 10\n@ IN SOA ns1.example.com. admin.example.com. ( 1 10 10 10 10 )\n  IN NS ns1.example.com.\nns1 IN A 127.0.0.1\n",
    )
    .unwrap();
    let text = format!(
        r#"
[zone]
name = "example.com"
file = "db.example.com"
listen = ["{dns}"]
state_dir = "state"
records = [{{ name = "@", ttl = 10 }}, {{ name = "www", ttl = 10 }}]

[probe]
interval = "300ms"
timeout = "200ms"
jitter = "0s"
fall = 2
rise = 1

[[node]]
name = "web1"
address = "{}"

[[node]]
name = "web2"
address = "{}"

[[node]]
name = "web3"
address = "{}"

[[check]]
name = "http"
kind = "http"
port = {web_port}
critical = true

[policy]
kind = "all-healthy"
all_down = "serve-all"
"#,
        WEB[0], WEB[1], WEB[2]
    );
    let path = dir.join("failoverd.toml");
    std::fs::write(&path, &text).unwrap();
    Config::load(&path).unwrap()
}

/// Polls (at most 10 s) until `name`'s A answer, sorted, is `want`.
fn wait_for(dns: SocketAddr, name: &str, want: &[&str]) {
    let want: Vec<IpAddr> = want.iter().map(|a| a.parse().unwrap()).collect();
    let started = Instant::now();
    loop {
        let mut answer = ask(dns, name, RecordType::A).addresses;
        answer.sort();
        if answer == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} did not become {want:?} (still {answer:?})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What `dig` shows for www.example.com A, sorted.
fn dig_www(dns: SocketAddr) -> Vec<String> {
    let (status, mut answers) = dig(dns, "www.example.com", "A");
    assert_eq!(status, "NOERROR");
    answers.sort();
    answers
}

fn records(addresses: &[&str]) -> Vec<String> {
    addresses
        .iter()
        .map(|a| format!("www.example.com. 10 IN A {a}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_live_server_is_published_a_dead_one_leaves_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let web_port = free_port("127.0.0.2");
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let mut servers: Vec<_> = WEB.iter().map(|a| web_server(a, web_port)).collect();
    let config = config(dir.path(), dns, web_port);
    let daemon = Daemon::start(&config).await.unwrap();

    let servers = tokio::task::spawn_blocking(move || {
        wait_for(dns, "www.example.com.", &WEB);
        assert_eq!(dig_www(dns), records(&WEB));
        wait_for(dns, "example.com.", &WEB);

        // web2 dies: it leaves the answer, the others stay.
        servers[1].stop();
        wait_for(dns, "www.example.com.", &[WEB[0], WEB[2]]);
        assert_eq!(dig_www(dns), records(&[WEB[0], WEB[2]]));

        // web3 as well: one is left.
        servers[2].stop();
        wait_for(dns, "www.example.com.", &[WEB[0]]);
        assert_eq!(dig_www(dns), records(&[WEB[0]]));

        // Both come back: each is published again once it answers.
        servers[1].start();
        wait_for(dns, "www.example.com.", &[WEB[0], WEB[1]]);
        servers[2].start();
        wait_for(dns, "www.example.com.", &WEB);
        assert_eq!(dig_www(dns), records(&WEB));
        servers
    })
    .await
    .unwrap();
    daemon.shutdown().await;
    drop(servers);
}
