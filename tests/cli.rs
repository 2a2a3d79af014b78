//! The `failoverd` binary as an operator meets it: `check` on good and bad configs.
#![allow(clippy::unwrap_used)] // tests

use std::process::Command;

fn failoverd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_failoverd"))
}

#[test]
fn check_validates_the_example_and_prints_the_plan() {
    let output = failoverd()
        .args(["check", "--config", "examples/failoverd.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "config examples/failoverd.toml is valid",
        "zone test.ru from examples/db.test.ru (serial 2)",
        "master: probed at 192.0.2.1, publishes 192.0.2.1",
        "slave: probed at 198.51.100.2, publishes 198.51.100.2, 2001:db8::2",
        "http (http port 80) critical: every 2s, timeout 1s, down after 3 failures (about 7s)",
        "policy active-passive: master > slave; failover at once, back to a preferred node once it has been up for 30s",
        "when every node is down: keep-last",
        "zone transfers allowed to: 127.0.0.1/32, 198.51.100.0/24; NOTIFY sent to: 198.51.100.53:53",
        "notifications: log, email to admin@test.ru via 192.0.2.25",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
}

#[test]
fn check_validates_the_bind_steering_example() {
    let output = failoverd()
        .args(["check", "--config", "examples/steer-bind.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "served on  (1 UDP worker each)",
        "dns (dns port 53)",
        "also published to zone file examples/db.test.ru (reload: rndc reload test.ru)",
        "also published by dynamic update (TSIG) to 192.0.2.53:53",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn a_bad_config_is_refused_with_file_line_key_and_exit_78() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("examples/failoverd.toml")
        .unwrap()
        .replace(
            "order = [\"master\", \"slave\"]",
            "order = [\"master\", \"slvae\"]",
        )
        .replace("port = 3306", "port = 3306\nfall = 0");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::copy("examples/db.test.ru", dir.path().join("db.test.ru")).unwrap();
    let output = failoverd()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("check[2].fall: 0 (expected at least 1 failure in a row)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(": policy.order[2]: unknown node \"slvae\" (nodes: master, slave)"),
        "{stderr}"
    );
    assert!(stderr.contains("2 errors in"), "{stderr}");
}

#[test]
fn a_broken_zone_file_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("examples/failoverd.toml", dir.path().join("failoverd.toml")).unwrap();
    std::fs::write(
        dir.path().join("db.test.ru"),
        "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns. admin. ( 2 10 10 10 10 )\nwww IN A 300.1.2.3\n",
    )
    .unwrap();
    let output = failoverd()
        .args(["check", "--config"])
        .arg(dir.path().join("failoverd.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("line 4"), "{stderr}");
}

#[test]
fn the_demo_moves_the_answer_and_back() {
    let output = failoverd()
        .args([
            "demo",
            "--exit-after-cycle",
            "--listen",
            "127.0.0.1:0",
            "--web-port",
            "0",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("answer: test.ru A 127.0.0.3 (slave) after"),
        "{stdout}"
    );
    assert!(
        stdout.contains("answer: test.ru A 127.0.0.2 (master) after"),
        "{stdout}"
    );
    assert!(
        stdout.contains("failback: answer moved from slave (127.0.0.3) to master (127.0.0.2)"),
        "{stdout}"
    );
}
