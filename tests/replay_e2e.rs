//! The observation journal and `failoverd replay` on a real run: a daemon with real web servers
//! goes through a flapping check, a failover and a failback, is stopped, started again and
//! killed; the replay with the same config gives exactly the recorded answer changes and events,
//! with `fall` raised it reports the failover that would not have happened, and a journal whose
//! last record was torn still replays.
#![allow(clippy::unwrap_used)] // tests

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{answered, wait_for_answer, web_server};
use failover_testkit::{free_port, ChildGuard};

fn write_config(dir: &Path, name: &str, dns: SocketAddr, web: u16, flappy: u16, fall: u32) {
    std::fs::write(
        dir.join("db.test.ru"),
        "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns.test.ru. admin.test.ru. ( 2 10 10 10 10 )\n  IN NS ns.test.ru.\nns IN A 127.0.0.1\n",
    )
    .unwrap();
    std::fs::write(
        dir.join(name),
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
interval = "200ms"
timeout = "150ms"
jitter = "20ms"
fall = {fall}

[[node]]
name = "master"
address = "127.0.0.2"

[[node]]
name = "slave"
address = "127.0.0.3"

[[check]]
name = "http"
kind = "http"
port = {web}
critical = true

[[check]]
name = "flappy"
kind = "tcp"
port = {flappy}

[policy]
kind = "active-passive"
failback_after = "1s"

[[notify]]
kind = "command"
command = ["/bin/true"]
events = ["failover", "failback"]
"#
        ),
    )
    .unwrap();
}

fn start(dir: &Path) -> ChildGuard {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .unwrap();
    ChildGuard::new(
        Command::new(env!("CARGO_BIN_EXE_failoverd"))
            .args(["run", "--config"])
            .arg(dir.join("failoverd.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

fn signal(child: &ChildGuard, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// SIGTERM, and the clean stop waited for.
fn stop(mut daemon: ChildGuard) {
    signal(&daemon, "-TERM");
    assert_eq!(daemon.wait_timeout(Duration::from_secs(10)), Some(0));
}

fn replay(dir: &Path, config: &str, extra: &[&str]) -> (std::process::Output, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_failoverd"))
        .args(["replay", "--config"])
        .arg(dir.join(config))
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output, stdout)
}

fn wait_answering(dns: SocketAddr, dir: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !answered(dns) {
        assert!(
            std::time::Instant::now() < deadline,
            "no answer within 15 s:\n{}",
            std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_replay_with_the_same_config_gives_what_the_daemon_did_and_another_fall_shows_the_difference() {
    let dir = tempfile::tempdir().unwrap();
    let web = free_port("127.0.0.2");
    let flappy = free_port("127.0.0.2");
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    write_config(dir.path(), "failoverd.toml", dns, web, flappy, 2);
    write_config(dir.path(), "fall10.toml", dns, web, flappy, 10);
    // Another policy: every live node published (several A records).
    let every = std::fs::read_to_string(dir.path().join("failoverd.toml"))
        .unwrap()
        .replace(
            "kind = \"active-passive\"\nfailback_after = \"1s\"",
            "kind = \"all-healthy\"",
        );
    std::fs::write(dir.path().join("every.toml"), every).unwrap();
    let mut master = web_server("127.0.0.2", web);
    let _slave = web_server("127.0.0.3", web);
    let mut flap = web_server("127.0.0.2", flappy);
    let (master_ip, slave_ip): (IpAddr, IpAddr) =
        ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
    let limit = Duration::from_secs(15);

    let daemon = start(dir.path());
    wait_answering(dns, dir.path());
    wait_for_answer(dns, master_ip, limit);
    // A non-critical check that flaps.
    for _ in 0..3 {
        flap.stop();
        std::thread::sleep(Duration::from_millis(700));
        flap.start();
        std::thread::sleep(Duration::from_millis(700));
    }
    // The master's web server dies and comes back.
    master.stop();
    wait_for_answer(dns, slave_ip, limit);
    master.start();
    wait_for_answer(dns, master_ip, limit);
    stop(daemon);

    let (_, json) = replay(dir.path(), "failoverd.toml", &["--json"]);
    let result: serde_json::Value = serde_json::from_str(&json).unwrap();
    let names = |timeline: &str| -> Vec<String> {
        result[timeline]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let recorded = names("recorded");
    for expected in ["check-down", "check-up", "failover", "failback"] {
        assert!(recorded.contains(&expected.to_owned()), "{recorded:?}");
    }
    assert_eq!(
        result["replayed"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["answers"].clone())
            .collect::<Vec<_>>(),
        result["recorded"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["answers"].clone())
            .collect::<Vec<_>>(),
        "{json}"
    );
    assert_eq!(names("replayed"), recorded, "{json}");
    assert_eq!(result["same"], true, "{json}");
    assert!(
        result["recorded"]["changes"].as_array().unwrap().len() >= 3,
        "{json}"
    );

    // With fall = 10 the master's 1-2 s outage is no failover.
    let (_, text) = replay(dir.path(), "fall10.toml", &["--compare"]);
    assert!(text.contains("with this config: "), "{text}");
    assert!(text.contains("1 fewer failover events"), "{text}");
    assert!(
        text.contains("fewer notifications by command /bin/true"),
        "{text}"
    );

    let (_, text) = replay(dir.path(), "every.toml", &["--compare"]);
    assert!(text.contains("@ 127.0.0.2 127.0.0.3"), "{text}");
    assert!(text.contains("1 fewer failback events"), "{text}");
    assert!(!text.contains("the same answer changes"), "{text}");

    // Started again (from the state it kept), then killed; the last record then torn by hand.
    let daemon = start(dir.path());
    wait_answering(dns, dir.path());
    wait_for_answer(dns, master_ip, limit);
    std::thread::sleep(Duration::from_secs(1));
    signal(&daemon, "-KILL");
    drop(daemon);
    let journal = dir.path().join("state").join("journal");
    let mut segments: Vec<_> = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segments.sort();
    assert_eq!(segments.len(), 2, "one segment per run: {segments:?}");
    let last = segments.last().unwrap();
    let length = std::fs::metadata(last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(length - 3)
        .unwrap();
    let (_, text) = replay(dir.path(), "failoverd.toml", &["--compare"]);
    assert!(text.contains("are skipped (cut inside its bytes"), "{text}");
    assert!(text.contains("2 starts or reloads"), "{text}");
    assert!(
        text.contains("the same answer changes and events as recorded"),
        "{text}"
    );
}
