//! The admin listener over HTTPS, with the real `failoverd` binary on loopback: `failoverd
//! status` and `failoverd admin` work against it pinning the node's certificate; a client that
//! pins another certificate (the CLI, curl) is refused; a plain-HTTP request to the port gets
//! no HTTP back and changes nothing; a configured certificate (as a CA would issue one for
//! Prometheus) is served and pinned instead; and plain HTTP off loopback is a config error
//! unless `danger_plain_http`.
#![allow(clippy::unwrap_used)] // tests

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use failover_testkit::{free_port, program, temp_dir, ChildGuard};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// Runs `failoverd` with `args`.
fn failoverd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_failoverd"))
        .args(args)
        .env_remove("FAILOVERD_NODE")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `failoverd keygen` into `dir`: the fingerprint it prints.
fn keygen(dir: &Path, name: &str) -> String {
    let output = failoverd(&["keygen", "--dir", dir.to_str().unwrap(), "--name", name]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    stdout
        .split("fingerprint = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no fingerprint in {stdout}"))
        .to_owned()
}

/// A config of two nodes (master pins `fingerprint`) whose admin listener is `admin`, with
/// `admin_extra` appended to `[admin]`; written to `dir/name`.
fn write_config(
    dir: &Path,
    name: &str,
    dns: SocketAddr,
    admin: SocketAddr,
    fingerprint: &str,
    admin_extra: &str,
) -> PathBuf {
    std::fs::write(
        dir.join("db.test.ru"),
        "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns.test.ru. admin.test.ru. ( 2 10 10 10 10 )\n  IN NS ns.test.ru.\nns IN A 127.0.0.1\n",
    )
    .unwrap();
    std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).unwrap();
    let closed = free_port("127.0.0.2");
    let text = format!(
        r#"
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["{dns}"]
state_dir = "state"
records = [{{ name = "@", ttl = 10 }}]

[probe]
interval = "300ms"
timeout = "200ms"
jitter = "0s"

[[node]]
name = "master"
address = "127.0.0.2"
fingerprint = "{fingerprint}"

[[node]]
name = "slave"
address = "127.0.0.3"

[[check]]
name = "web"
kind = "tcp"
port = {closed}
critical = true

[policy]
kind = "active-passive"

[admin]
listen = "{admin}"
token_file = "admin.token"
{admin_extra}
"#
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `failoverd run --config config`, killed on drop; returns once `admin` accepts connections.
fn start_daemon(config: &Path, admin: SocketAddr) -> ChildGuard {
    let log = config.with_extension("log");
    let mut daemon = ChildGuard::new(
        Command::new(env!("CARGO_BIN_EXE_failoverd"))
            .args(["run", "--config"])
            .arg(config)
            .env_remove("FAILOVERD_NODE")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(admin).is_err() {
        if let Ok(Some(status)) = daemon.try_wait() {
            panic!(
                "failoverd exited with {status}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the admin listener did not listen on {admin} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon
}

/// `curl` with `args`: its exit code and what it printed.
fn curl(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(program("curl", "curl"))
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "10",
            "--noproxy",
            "*",
        ])
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

/// The JSON status, through the CLI.
fn status_json(config: &Path) -> serde_json::Value {
    let output = failoverd(&[
        "status",
        "--config",
        config.to_str().unwrap(),
        "--node",
        "master",
        "--json",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn drained(config: &Path, node: usize) -> bool {
    status_json(config)["cluster"]["nodes"][node]["drained"] == true
}

#[test]
fn the_cli_works_over_https_pinning_the_node_key_and_other_clients_are_refused() {
    let dir = temp_dir();
    let fingerprint = keygen(dir.path(), "master");
    let other_dir = dir.path().join("other");
    let other = keygen(&other_dir, "master");
    let (dns, admin) = (
        SocketAddr::from(([127, 0, 0, 1], free_port("127.0.0.1"))),
        SocketAddr::from(([127, 0, 0, 1], free_port("127.0.0.1"))),
    );
    let config = write_config(
        dir.path(),
        "failoverd.toml",
        dns,
        admin,
        &fingerprint,
        "tls = true",
    );
    let _daemon = start_daemon(&config, admin);
    let config_arg = config.to_str().unwrap();

    // The CLI, pinning master's [[node]] fingerprint, and (no --node, the host is no node)
    // this server's own [identity] certificate.
    for args in [
        &["status", "--config", config_arg, "--node", "master"][..],
        &["status", "--config", config_arg],
    ] {
        let output = failoverd(args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert!(
            text(&output.stdout).starts_with("zone test.ru serial "),
            "{}",
            text(&output.stdout)
        );
    }
    let output = failoverd(&[
        "admin", "--config", config_arg, "--node", "master", "drain", "master",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout).trim(), "done: drain master");
    assert!(drained(&config, 0));

    // The same file pinning another key for master: refused before any request, naming both.
    let wrong = write_config(
        dir.path(),
        "wrong-pin.toml",
        dns,
        admin,
        &other,
        "tls = true",
    );
    let wrong_arg = wrong.to_str().unwrap();
    let output = failoverd(&["status", "--config", wrong_arg, "--node", "master"]);
    assert_eq!(output.status.code(), Some(69), "{}", text(&output.stdout));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "certificate {fingerprint} is not pinned (pinned: {other})"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("https://{admin}/status.txt")),
        "{stderr}"
    );
    let output = failoverd(&[
        "admin", "--config", wrong_arg, "--node", "master", "undrain", "master",
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("is not pinned"),
        "{}",
        text(&output.stderr)
    );
    assert!(
        drained(&config, 0),
        "an override went through a refused TLS handshake"
    );

    // curl verifies the certificate like any TLS client (its name is NAME.failover-peer):
    // with the node's certificate as the only trust anchor it gets through; with another, not.
    let resolve = format!("master.failover-peer:{}:127.0.0.1", admin.port());
    let url = format!("https://master.failover-peer:{}/status", admin.port());
    let node_crt = dir.path().join("node.crt");
    let (code, body, stderr) = curl(&[
        "--resolve",
        &resolve,
        "--cacert",
        node_crt.to_str().unwrap(),
        &url,
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["zone"]["name"],
        "test.ru"
    );
    let other_crt = other_dir.join("node.crt");
    let post = format!(
        "https://master.failover-peer:{}/admin/undrain/master",
        admin.port()
    );
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let (code, body, stderr) = curl(&[
        "--resolve",
        &resolve,
        "--cacert",
        other_crt.to_str().unwrap(),
        "-X",
        "POST",
        "-H",
        &bearer,
        &post,
    ]);
    // 60: the peer's certificate cannot be verified with the given CA.
    assert_eq!(code, Some(60), "{body}{stderr}");
    assert!(drained(&config, 0));

    // Plain HTTP to the TLS port, token and all: no HTTP comes back, nothing changes.
    let mut stream = TcpStream::connect(admin).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "POST /admin/undrain/master HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 0\r\n\r\n"
    );
    // The listener may close on the first bytes (not a TLS record) before the rest is written.
    let _ = stream.write_all(request.as_bytes());
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    assert!(!reply.starts_with(b"HTTP/"), "{}", text(&reply));
    let plain = format!("http://{admin}/status");
    let (code, _, stderr) = curl(&["-w", "%{http_code}", &plain]);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(drained(&config, 0), "a plain-HTTP request was served");

    // And the override, undone through the CLI.
    let output = failoverd(&["admin", "--config", config_arg, "undrain", "master"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(!drained(&config, 0));
}

#[test]
fn a_configured_certificate_is_served_and_pinned_instead_of_the_node_key() {
    let dir = temp_dir();
    let fingerprint = keygen(dir.path(), "master");
    // A certificate for the address, as a CA (or openssl) makes one for a Prometheus scraper.
    let (crt, key) = (dir.path().join("admin.crt"), dir.path().join("admin.key"));
    let output = Command::new(program("openssl", "openssl"))
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-days",
            "2",
            "-subj",
            "/CN=failoverd admin",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let (dns, admin) = (
        SocketAddr::from(([127, 0, 0, 1], free_port("127.0.0.1"))),
        SocketAddr::from(([127, 0, 0, 1], free_port("127.0.0.1"))),
    );
    let config = write_config(
        dir.path(),
        "failoverd.toml",
        dns,
        admin,
        &fingerprint,
        "tls = true\ncertificate = \"admin.crt\"\nkey = \"admin.key\"",
    );
    let _daemon = start_daemon(&config, admin);

    // The CLI pins the file's certificate, also when a node is named.
    let output = failoverd(&[
        "status",
        "--config",
        config.to_str().unwrap(),
        "--node",
        "master",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).starts_with("zone test.ru serial "));

    // A scraper that trusts the certificate verifies it by address, with no pinning of its own.
    let url = format!("https://{admin}/metrics");
    let (code, body, stderr) = curl(&["--cacert", crt.to_str().unwrap(), &url]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(body.contains("failover_build_info"), "{body}");
    // The node's key is not what is served now.
    let (code, _, stderr) = curl(&[
        "--cacert",
        dir.path().join("node.crt").to_str().unwrap(),
        &url,
    ]);
    assert_eq!(code, Some(60), "{stderr}");
}

#[test]
fn plain_http_off_loopback_is_a_config_error_unless_danger_plain_http_which_is_warned() {
    let dir = temp_dir();
    let dns = SocketAddr::from(([127, 0, 0, 1], free_port("127.0.0.1")));
    // Nothing binds these: `check` and a refused `run` stop at the config.
    let off_loopback = SocketAddr::from(([0, 0, 0, 0], 8053));
    let fingerprint = format!("sha256:{}", "1".repeat(64));
    let plain = write_config(
        dir.path(),
        "plain.toml",
        dns,
        off_loopback,
        &fingerprint,
        "",
    );
    let line = std::fs::read_to_string(&plain)
        .unwrap()
        .lines()
        .position(|l| l == "listen = \"0.0.0.0:8053\"")
        .unwrap()
        + 1;
    for command in ["check", "run"] {
        let output = failoverd(&[command, "--config", plain.to_str().unwrap()]);
        assert_eq!(
            output.status.code(),
            Some(78),
            "{command}: {}",
            text(&output.stdout)
        );
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "plain.toml line {line}: admin.listen: 0.0.0.0:8053 is not a loopback address and tls is off: the bearer token would cross the network in clear text: set [admin] tls = true, or danger_plain_http = true to accept that"
            )),
            "{command}: {stderr}"
        );
    }

    let danger = write_config(
        dir.path(),
        "danger.toml",
        dns,
        off_loopback,
        &fingerprint,
        "danger_plain_http = true",
    );
    let output = failoverd(&["check", "--config", danger.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let plan = text(&output.stdout);
    assert!(
        plan.contains("[admin] danger_plain_http: the bearer token crosses the network to 0.0.0.0:8053 in clear text"),
        "{plan}"
    );
}
