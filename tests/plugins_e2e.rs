//! The example daemon with plugins (`examples/plugin_daemon.rs`) as a user runs it: its own check
//! kind (`disk-free`, asking each node's endpoint how much disk is free) and policy kind
//! (`maintenance-window`) from the config, with the built-in DNS server, through a failover and
//! back, a SIGHUP reload that changes the policy's settings, and the config errors a user meets.
#![allow(clippy::unwrap_used)] // tests

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{answered, wait_for_answer, web_server};
use failover_testkit::{free_port, ChildGuard};

/// The example's binary, built by `cargo test` beside the tests.
fn example() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_failoverd"));
    let path = bin.parent().unwrap().join("examples").join("plugin_daemon");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --example plugin_daemon` (cargo test builds the examples)",
        path.display()
    );
    path
}

/// `"HH:MM-HH:MM"`: a window around now (`inside`), or one that ends an hour before now.
fn window(inside: bool) -> String {
    let minute = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
        % (24 * 60);
    let at = |m: u64| format!("{:02}:{:02}", m / 60 % 24, m % 60);
    let day = 24 * 60;
    if inside {
        format!("{}-{}", at(minute + day - 30), at(minute + 30))
    } else {
        format!("{}-{}", at(minute + day - 120), at(minute + day - 60))
    }
}

fn write_config(dir: &Path, dns: SocketAddr, web_port: u16, disk_port: u16, policy: &str) {
    std::fs::write(
        dir.join("db.test.ru"),
        "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns.test.ru. admin.test.ru. ( 2 10 10 10 10 )\n  IN NS ns.test.ru.\nns IN A 127.0.0.1\n",
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
timeout = "250ms"
fall = 2

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

[[check]]
name = "disk"
kind = "disk-free"
port = {disk_port}
min_free_mb = 500
critical = true

{policy}
"#
        ),
    )
    .unwrap();
}

fn maintenance(window: &str) -> String {
    format!("[policy]\nkind = \"maintenance-window\"\norder = [\"master\", \"slave\"]\nwindow = \"{window}\"\n")
}

fn disk(free_mb: u64) -> String {
    format!("{{\"free_mb\": {free_mb}}}")
}

#[test]
fn the_example_daemon_fails_over_on_its_own_check_and_follows_its_own_policy_across_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let web_port = free_port("127.0.0.2");
    let disk_port = free_port("127.0.0.2");
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let _master_web = web_server("127.0.0.2", web_port);
    let _slave_web = web_server("127.0.0.3", web_port);
    // Each node's disk endpoint (a real HTTP server serving disk.json).
    let master_disk = failover_testkit::HttpServer::serve(
        "127.0.0.2",
        disk_port,
        &[("disk.json", &disk(5000))],
        Duration::from_secs(10),
    );
    let _slave_disk = failover_testkit::HttpServer::serve(
        "127.0.0.3",
        disk_port,
        &[("disk.json", &disk(5000))],
        Duration::from_secs(10),
    );
    write_config(
        dir.path(),
        dns,
        web_port,
        disk_port,
        &maintenance(&window(false)),
    );
    let log = dir.path().join("daemon.log");
    let mut daemon = ChildGuard::new(
        Command::new(example())
            .arg("--config")
            .arg(dir.path().join("failoverd.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let master: IpAddr = "127.0.0.2".parse().unwrap();
    let slave: IpAddr = "127.0.0.3".parse().unwrap();
    let limit = Duration::from_secs(15);
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = std::time::Instant::now() + limit;
    while !answered(dns) {
        assert!(
            std::time::Instant::now() < deadline,
            "the example daemon did not answer within {limit:?}:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Outside the window: the first node of `order`.
    wait_for_answer(dns, master, limit);
    // The master's disk fills up: its web server still answers, the plugin check does not.
    master_disk.write("disk.json", &disk(100));
    wait_for_answer(dns, slave, limit);
    assert!(
        logs().contains("100 MiB free, below min_free_mb = 500"),
        "{}",
        logs()
    );
    // Space freed: back to the master (the policy has no failback delay).
    master_disk.write("disk.json", &disk(5000));
    wait_for_answer(dns, master, limit);
    // The window moved to now by a reload: the policy now prefers the slave.
    write_config(
        dir.path(),
        dns,
        web_port,
        disk_port,
        &maintenance(&window(true)),
    );
    let status = Command::new("kill")
        .args(["-HUP", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for_answer(dns, slave, limit);
    assert!(logs().contains("configuration reloaded"), "{}", logs());
    // A reload with a bad plugin setting is refused, naming the key; the answer stays.
    write_config(
        dir.path(),
        dns,
        web_port,
        disk_port,
        &maintenance("25:00-26:00"),
    );
    let status = Command::new("kill")
        .args(["-HUP", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + limit;
    while !logs().contains("reload refused") {
        assert!(std::time::Instant::now() < deadline, "{}", logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        logs().contains("window: \"25:00\" is not a time of day"),
        "{}",
        logs()
    );
    wait_for_answer(dns, slave, limit);
    let status = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = daemon.wait_timeout(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{}", logs());
}

/// Runs the example on a config that must be refused; its exit code and standard error.
fn refused(config: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    write_config(dir.path(), dns, 80, 8080, config);
    let output = Command::new(example())
        .arg("--config")
        .arg(dir.path().join("failoverd.toml"))
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn plugin_kinds_get_the_errors_of_built_in_ones() {
    // An unknown policy kind names the built-in and the registered ones.
    let (code, stderr) = refused("[policy]\nkind = \"maintenance-windo\"\n");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("`active-passive`, `all-healthy`, `maintenance-window`"),
        "{stderr}"
    );
    // A key the plugin's policy does not take: file, line and key.
    let (code, stderr) = refused(&format!("{}windw = \"x\"\n", maintenance("01:00-02:00")));
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("line 42: policy.windw: unknown key \"windw\" for policy kind \"maintenance-window\" (its keys: kind, all_down, order, window)"),
        "{stderr}"
    );
    // A value of the wrong type in a plugin check: its line and key.
    let (code, stderr) = refused(&maintenance("01:00-02:00").replace(
        "[policy]",
        "[[check]]\nname = \"disk2\"\nkind = \"disk-free\"\nport = 1\nmin_free_mb = \"lots\"\n\n[policy]",
    ));
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr
            .contains("line 42: check[3].min_free_mb: invalid type: string \"lots\", expected u64"),
        "{stderr}"
    );
    // A key of no kind in a plugin check, and an unknown check kind listing the registered one.
    let (code, stderr) = refused(&maintenance("01:00-02:00").replace(
        "[policy]",
        "[[check]]\nname = \"disk2\"\nkind = \"disk-free\"\nport = 1\nmin_free_mb = 1\npath = \"/d\"\nmin_fre = 2\n\n[[check]]\nname = \"x\"\nkind = \"disk-fre\"\n\n[policy]",
    ));
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains(
            "check[3].min_fre: check \"disk2\": unknown key \"min_fre\" for kind \"disk-free\""
        ),
        "{stderr}"
    );
    assert!(stderr.contains("`mirror`, `disk-free`"), "{stderr}");
    // The plain failoverd knows no plugin kinds.
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "127.0.0.1:5300".parse().unwrap(),
        80,
        8080,
        &maintenance("01:00-02:00"),
    );
    let output = Command::new(env!("CARGO_BIN_EXE_failoverd"))
        .args(["check", "--config"])
        .arg(dir.path().join("failoverd.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("unknown variant `disk-free`"), "{stderr}");
}
