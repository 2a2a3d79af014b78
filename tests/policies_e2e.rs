//! Names with different policies in one zone, end to end: `www` follows `[policy]`
//! (active-passive) while `api` follows `[policies.api]` (every live node); `dig` shows both
//! through a failover and the primary's return.
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

fn config(dir: &Path, dns: SocketAddr, web_port: u16) -> Config {
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
records = [{{ name = "www", ttl = 10 }}, {{ name = "api", ttl = 10, policy = "api" }}]

[probe]
interval = "300ms"
timeout = "200ms"
jitter = "0s"
fall = 2
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
failback = "manual"

[policies.api]
kind = "all-healthy"
all_down = "serve-all"
"#
    );
    let path = dir.join("failoverd.toml");
    std::fs::write(&path, &text).unwrap();
    Config::load(&path).unwrap()
}

/// Polls until `name`'s A answer (sorted) is `want`.
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

fn dig_a(dns: SocketAddr, name: &str) -> Vec<String> {
    let (status, mut answers) = dig(dns, name, "A");
    assert_eq!(status, "NOERROR");
    answers.sort();
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn www_is_active_passive_while_api_publishes_every_live_node() {
    let dir = tempfile::tempdir().unwrap();
    let web_port = free_port("127.0.0.2");
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let mut master = web_server("127.0.0.2", web_port);
    let _slave = web_server("127.0.0.3", web_port);
    let config = config(dir.path(), dns, web_port);
    let daemon = Daemon::start(&config).await.unwrap();

    let master = tokio::task::spawn_blocking(move || {
        wait_for(dns, "www.test.ru.", &["127.0.0.2"]);
        wait_for(dns, "api.test.ru.", &["127.0.0.2", "127.0.0.3"]);
        assert_eq!(
            dig_a(dns, "www.test.ru"),
            ["www.test.ru. 10 IN A 127.0.0.2"]
        );
        assert_eq!(
            dig_a(dns, "api.test.ru"),
            [
                "api.test.ru. 10 IN A 127.0.0.2",
                "api.test.ru. 10 IN A 127.0.0.3"
            ]
        );

        // The primary fails: www moves to the backup, api drops the dead node.
        master.stop();
        wait_for(dns, "www.test.ru.", &["127.0.0.3"]);
        wait_for(dns, "api.test.ru.", &["127.0.0.3"]);
        assert_eq!(
            dig_a(dns, "api.test.ru"),
            ["api.test.ru. 10 IN A 127.0.0.3"]
        );

        // It comes back: api publishes it again at once; www stays (failback = "manual").
        master.start();
        wait_for(dns, "api.test.ru.", &["127.0.0.2", "127.0.0.3"]);
        assert_eq!(
            dig_a(dns, "api.test.ru"),
            [
                "api.test.ru. 10 IN A 127.0.0.2",
                "api.test.ru. 10 IN A 127.0.0.3"
            ]
        );
        assert_eq!(
            dig_a(dns, "www.test.ru"),
            ["www.test.ru. 10 IN A 127.0.0.3"]
        );
        master
    })
    .await
    .unwrap();
    daemon.shutdown().await;
    drop(master);
}
