//! A restart or a reload never moves the answer by itself: the daemon keeps what its arbiter
//! knew in the state directory (and hands it to the new supervisor at a reload), so a primary
//! whose first probe after the restart fails is still up until `fall` failures in a row. A
//! client polls the served answer all along.
#![allow(clippy::unwrap_used)] // tests

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{wait_for_answer, web_server};
use failover::config::Config;
use failover::daemon::Daemon;
use failover_testkit::free_port;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};

const INTERVAL: Duration = Duration::from_millis(500);
/// Generous: the primary is down for at most about three probes around each restart.
const FALL: u32 = 6;

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
records = [{{ name = "@", ttl = 10 }}]

[probe]
interval = "{interval}ms"
timeout = "300ms"
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
failback = "manual"
"#,
        interval = INTERVAL.as_millis(),
    );
    let path = dir.join("failoverd.toml");
    std::fs::write(&path, &text).unwrap();
    Config::load(&path).unwrap()
}

/// The A answer for test.ru, or `None` when no answer came (the daemon is restarting).
fn try_answer(server: SocketAddr) -> Option<Vec<IpAddr>> {
    let mut query = Message::query();
    query.metadata.id = 77;
    query.add_query(Query::query(
        Name::from_ascii("test.ru.").unwrap(),
        RecordType::A,
    ));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    socket.send_to(&query.to_vec().unwrap(), server).unwrap();
    let mut buffer = [0u8; 4096];
    let (length, _) = socket.recv_from(&mut buffer).ok()?;
    let response = Message::from_vec(&buffer[..length]).ok()?;
    Some(
        response
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })
            .collect(),
    )
}

/// Polls the answer until stopped; returns every answer that was not `want`.
fn poll(
    dns: SocketAddr,
    want: IpAddr,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Vec<IpAddr>>> {
    std::thread::spawn(move || {
        let mut wrong = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if let Some(answer) = try_answer(dns) {
                if answer != [want] {
                    wrong.push(answer);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        wrong
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_and_a_reload_with_a_failed_first_probe_never_move_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let web_port = free_port("127.0.0.2");
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let master = Arc::new(Mutex::new(web_server("127.0.0.2", web_port)));
    let _slave = web_server("127.0.0.3", web_port);
    let master_ip: IpAddr = "127.0.0.2".parse().unwrap();

    let config = config(dir.path(), dns, web_port);
    let mut daemon = Daemon::start(&config).await.unwrap();
    tokio::task::spawn_blocking(move || wait_for_answer(dns, master_ip, Duration::from_secs(10)))
        .await
        .unwrap();
    // Let the state file be written at least once with the primary up.
    tokio::time::sleep(INTERVAL * 6).await;
    let stop = Arc::new(AtomicBool::new(false));
    let poller = poll(dns, master_ip, stop.clone());

    // A restart: the primary's web server stops just before and comes back a moment after.
    let stopped = master.clone();
    tokio::task::spawn_blocking(move || stopped.lock().unwrap().stop())
        .await
        .unwrap();
    daemon.shutdown().await;
    assert!(
        dir.path().join("state/arbiter-state.json").exists(),
        "the state is saved at a clean stop"
    );
    daemon = Daemon::start(&config).await.unwrap();
    tokio::time::sleep(INTERVAL + INTERVAL / 5).await;
    let started = master.clone();
    tokio::task::spawn_blocking(move || started.lock().unwrap().start())
        .await
        .unwrap();
    tokio::time::sleep(INTERVAL * 4).await;

    // A reload, the same way.
    let stopped = master.clone();
    tokio::task::spawn_blocking(move || stopped.lock().unwrap().stop())
        .await
        .unwrap();
    daemon.reload(&config).await.unwrap();
    tokio::time::sleep(INTERVAL + INTERVAL / 5).await;
    let started = master.clone();
    tokio::task::spawn_blocking(move || started.lock().unwrap().start())
        .await
        .unwrap();
    tokio::time::sleep(INTERVAL * 4).await;

    stop.store(true, Ordering::Relaxed);
    let wrong = poller.join().unwrap();
    assert!(
        wrong.is_empty(),
        "the answer moved during a restart or a reload: {} wrong answers, first {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    let status = daemon.status().borrow().clone();
    let names: Vec<&str> = status.recent_events.iter().map(|e| e.name()).collect();
    assert!(!names.contains(&"failover"), "{names:?}");
    daemon.shutdown().await;
}
