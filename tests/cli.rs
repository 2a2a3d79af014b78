//! The `failoverd` binary as an operator meets it: `check` on good and bad configs, the demo,
//! `mirror --once`.
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

/// The secrets each whole-setup example's README has the operator write beside it.
const EXAMPLE_SECRETS: [(&str, &[&str]); 2] = [
    (
        "two-data-centres",
        &[
            "mysql-monitor.password",
            "mysql-admin.password",
            "mysql-repl.password",
            "admin.token",
        ],
    ),
    ("several-a-records", &["admin.token"]),
];

#[test]
fn the_whole_setup_examples_are_one_file_valid_for_each_of_their_servers() {
    for (example, secrets) in EXAMPLE_SECRETS {
        let dir = tempfile::tempdir().unwrap();
        for file in ["failoverd.toml", "db.example.com"] {
            std::fs::copy(format!("examples/{example}/{file}"), dir.path().join(file)).unwrap();
        }
        for secret in secrets {
            std::fs::write(dir.path().join(secret), "0123456789abcdef0123456789abcdef").unwrap();
        }
        let path = dir.path().join("failoverd.toml");
        let check = |node: Option<&str>| {
            let mut command = failoverd();
            command.arg("check").arg("--config").arg(&path);
            command.args(node.map(|n| ["--node", n]).into_iter().flatten());
            let output = command.env_remove("FAILOVERD_NODE").output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(
                output.status.success(),
                "{example} --node {node:?}: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            stdout
        };
        let every = check(None);
        let servers: Vec<&str> = every
            .lines()
            .next()
            .and_then(|l| l.split(" is valid for ").nth(1))
            .unwrap()
            .split(", ")
            .collect();
        assert_eq!(servers.len(), 3, "{example}: {every}");
        assert_eq!(servers[2], "witness", "{example}: {every}");
        for server in &servers {
            let plan = check(Some(server));
            assert!(
                plan.starts_with(&format!(
                    "config {} is valid for {server}\n",
                    path.display()
                )),
                "{example}: {plan}"
            );
            assert!(
                plan.contains(&format!("observers: {server} (this one, listening on ")),
                "{example}: {plan}"
            );
            if *server != "witness" {
                assert!(
                    plan.contains("  mirror /var/www/example.com with "),
                    "{plan}"
                );
                assert!(
                    plan.contains(&format!(
                        "    what the mirror replaces or deletes here is kept 30days (at most 1024 \
                         MiB) in /var/lib/failoverd/mirror/versions/{server}; mirrors no extended \
                         attributes or ACLs"
                    )),
                    "{plan}"
                );
                assert!(
                    plan.contains("managed names:\n  @ (ttl 10 s)\n  www (ttl 10 s)"),
                    "{plan}"
                );
            }
            // Set up as its README says, it warns of nothing about the file: only of what this
            // machine lacks (the servers' keys, and paths this user may not write).
            let warnings: Vec<&str> = plan
                .lines()
                .filter(|l| {
                    l.contains("warning:")
                        && !l.contains("no key for")
                        && !l.contains("is not writable by this process")
                })
                .collect();
            assert!(warnings.is_empty(), "{example} {server}: {warnings:?}");
        }
        if example == "two-data-centres" {
            let dc1 = check(Some("dc1"));
            for expected in [
                "http (http port 80) critical",
                "mysql (mysql port 3306) critical",
                "ssh (ssh port 22):",
                "dns (dns port 53):",
                "replication (mysql-replication port 3306):",
                "mysql fencing: before the answer moves, read_only = 1 on the old primary",
                "email to admin@example.com via 192.0.2.25",
                "2 of 3 observers agree",
            ] {
                assert!(dc1.contains(expected), "missing {expected:?} in:\n{dc1}");
            }
        } else {
            let web1 = check(Some("web1"));
            assert!(
                web1.contains("policy all-healthy: every node that is up is published"),
                "{web1}"
            );
        }
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

/// Makes master's key in `dir` with `failoverd keygen`; the fingerprint it printed.
fn keygen_master(dir: &std::path::Path) -> String {
    let keygen = failoverd()
        .args(["keygen", "--name", "master", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let printed = String::from_utf8_lossy(&keygen.stdout);
    printed
        .split("fingerprint = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned()
}

/// The example config with each node's peer-link address and fingerprint (master's key made in
/// `dir`, slave's a placeholder).
fn linked_example(dir: &std::path::Path) -> String {
    let fingerprint = keygen_master(dir);
    std::fs::read_to_string("examples/failoverd.toml")
        .unwrap()
        .replacen(
            "address = \"192.0.2.1\"",
            &format!("address = \"192.0.2.1\"\npeer_address = \"192.0.2.1:8054\"\nfingerprint = \"{fingerprint}\""),
            1,
        )
        .replacen(
            "address = \"198.51.100.2\"",
            "address = \"198.51.100.2\"\npeer_address = \"198.51.100.2:8054\"\nfingerprint = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"",
            1,
        )
}

/// The example config in a temporary directory, with a `[cluster]` of master, slave and (when
/// `witness`) a witness in the one-file form; master's key made by `failoverd keygen` there.
fn cluster_config(dir: &std::path::Path, witness: bool) -> std::path::PathBuf {
    std::fs::copy("examples/db.test.ru", dir.join("db.test.ru")).unwrap();
    let mut config = linked_example(dir);
    config.push_str("\n[cluster]\n");
    if witness {
        config.push_str("\n[witness]\nname = \"witness\"\npeer_address = \"203.0.113.3:8054\"\nfingerprint = \"sha256:2222222222222222222222222222222222222222222222222222222222222222\"\n");
    }
    let path = dir.join("failoverd.toml");
    std::fs::write(&path, config).unwrap();
    path
}

#[test]
fn check_shows_the_observers_and_warns_on_two_nodes_without_a_witness() {
    let dir = tempfile::tempdir().unwrap();
    let path = cluster_config(dir.path(), false);
    let output = failoverd()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .args(["--node", "master"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "is valid for master\n",
        "as node master:\n  key sha256:",
        "the one pinned for master",
        "observers: master (this one, listening on 192.0.2.1:8054), slave at 198.51.100.2:8054",
        "a node is declared down when 2 of 2 observers agree; an observer silent for 10s is out of the vote; cut off from the majority: fail-over",
        "warning: two nodes and no witness",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }

    let dir = tempfile::tempdir().unwrap();
    let path = cluster_config(dir.path(), true);
    let output = failoverd()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .env("FAILOVERD_NODE", "master")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("is valid for master\n"), "{stdout}");
    assert!(stdout.contains("2 of 3 observers agree"), "{stdout}");
    assert!(
        stdout.contains("cut off from the majority: hold"),
        "{stdout}"
    );
    assert!(!stdout.contains("no witness"), "{stdout}");
}

#[test]
fn check_without_a_node_checks_the_file_for_every_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = cluster_config(dir.path(), true);
    let output = failoverd()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .env_remove("FAILOVERD_NODE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "is valid for master, slave, witness\n",
        "as node master:\n  key sha256:",
        "as node slave:\n  this server holds master's key: slave's key is checked on slave's server",
        "observers: slave (this one, listening on 198.51.100.2:8054), master at 192.0.2.1:8054, witness at 203.0.113.3:8054",
        "as witness witness (failoverd witness: probes and reports, serves no DNS, publishes nothing):",
        "observers: witness (this one, listening on 203.0.113.3:8054), master at 192.0.2.1:8054, slave at 198.51.100.2:8054",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
}

#[test]
fn run_and_witness_refuse_a_server_they_cannot_tell_or_a_key_that_is_not_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = cluster_config(dir.path(), true);
    let run = |args: &[&str]| {
        failoverd()
            .arg("run")
            .arg("--config")
            .arg(&path)
            .args(args)
            .env_remove("FAILOVERD_NODE")
            .output()
            .unwrap()
    };
    let output = run(&[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("which node is this? The host name")
            && stderr.contains("is none of the [[node]]s (master, slave): start failoverd with --node NAME, set FAILOVERD_NODE=NAME"),
        "{stderr}"
    );
    let output = run(&["--node", "witness"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("--node \"witness\" is the [witness]: start it with `failoverd witness`"),
        "{stderr}"
    );
    // This directory holds master's key: it is not slave's server, nor the witness's.
    let output = run(&["--node", "slave"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("[identity]: ")
            && stderr.contains("node.crt is master's key, not slave's: this server is master (start it with --node master)"),
        "{stderr}"
    );
    let output = failoverd()
        .arg("witness")
        .arg("--config")
        .arg(&path)
        .env_remove("FAILOVERD_NODE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("node.crt is master's key, not witness's: this server is master"),
        "{stderr}"
    );
}

#[test]
fn a_missing_key_is_a_warning_to_check_and_refused_by_run_naming_the_files_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = cluster_config(dir.path(), true);
    std::fs::remove_file(dir.path().join("node.key")).unwrap();
    std::fs::remove_file(dir.path().join("node.crt")).unwrap();
    let output = failoverd()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .args(["--node", "master"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("warning: no key for master here (")
            && stdout.contains("node.key are missing): on master's server, make them with `failoverd keygen --dir "),
        "{stdout}"
    );
    let output = failoverd()
        .arg("run")
        .arg("--config")
        .arg(&path)
        .args(["--node", "master"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("[identity]: no key for master here (") && stderr.contains("node.key"),
        "{stderr}"
    );
    // A key that is there but unreadable is an error to check as well.
    std::fs::write(dir.path().join("node.crt"), "not a certificate").unwrap();
    let output = failoverd()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .args(["--node", "master"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("[identity]: "), "{stderr}");
    assert!(
        stderr.contains("make them with `failoverd keygen --dir"),
        "{stderr}"
    );
}

#[test]
fn the_old_per_server_form_is_refused_with_how_to_write_it_now() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("examples/db.test.ru", dir.path().join("db.test.ru")).unwrap();
    let mut config = std::fs::read_to_string("examples/failoverd.toml").unwrap();
    config.push_str("\n[cluster]\nobserver = \"master\"\nlisten = \"0.0.0.0:8054\"\n\n[[peer]]\nname = \"slave\"\naddress = \"198.51.100.2:8054\"\nfingerprint = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\n");
    let path = dir.path().join("failoverd.toml");
    std::fs::write(&path, config).unwrap();
    let output = failoverd()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    for expected in [
        "cluster.observer: observer is gone: this server is no longer written in the file",
        "peer[1]: [[peer]] is gone: every [[node]] carries its own peer_address and fingerprint",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn a_witness_without_a_cluster_is_refused() {
    let output = failoverd()
        .args(["witness", "--config", "examples/failoverd.toml"])
        .env_remove("FAILOVERD_NODE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("a witness needs a [witness]"), "{stderr}");
}

#[test]
fn mirror_once_syncs_both_ways_refuses_an_emptied_side_and_logs_json() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, state) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("state"),
    );
    for d in [&a, &b] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(a.join("index.php"), "<?php echo 1;").unwrap();
    std::fs::write(b.join("upload.jpg"), "jpg").unwrap();
    let mirror = |extra: &[&str]| {
        let mut command = failoverd();
        command.env("RUST_LOG", "failover_sync=debug");
        command.args(["--log-format", "json", "mirror", "--once", "--state-dir"]);
        command.arg(&state).args(extra).arg(&a).arg(&b);
        command.output().unwrap()
    };
    let first = mirror(&[]);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert_eq!(first.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("2 copied, 0 deleted, 0 conflicts"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(b.join("index.php")).unwrap(),
        b"<?php echo 1;"
    );
    assert_eq!(std::fs::read(a.join("upload.jpg")).unwrap(), b"jpg");
    // The engine's phases are logged, one JSON object per line.
    let stderr = String::from_utf8_lossy(&first.stderr);
    let logged: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(
        logged
            .iter()
            .any(|l| l["fields"]["message"] == "mirror run: both sides scanned"),
        "{stderr}"
    );
    // An emptied side (an unmounted disk) is refused with exit 3; nothing is deleted.
    for name in ["index.php", "upload.jpg"] {
        std::fs::remove_file(a.join(name)).unwrap();
    }
    let refused = mirror(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("is empty but held 2 paths"), "{stderr}");
    assert!(b.join("index.php").exists() && b.join("upload.jpg").exists());
    // On purpose: --force.
    let forced = mirror(&["--force"]);
    assert_eq!(forced.status.code(), Some(0));
    assert!(!b.join("index.php").exists() && !b.join("upload.jpg").exists());
}

#[test]
fn mirror_once_takes_the_owners_choice() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, state) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("state"),
    );
    for d in [&a, &b] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(a.join("index.php"), "<?php echo 1;").unwrap();
    let run = |owners: &str| {
        failoverd()
            .args(["mirror", "--once", "--owners", owners, "--state-dir"])
            .arg(&state)
            .arg(&a)
            .arg(&b)
            .output()
            .unwrap()
    };
    let numeric = run("numeric");
    assert_eq!(numeric.status.code(), Some(0), "{numeric:?}");
    assert_eq!(
        std::fs::read(b.join("index.php")).unwrap(),
        b"<?php echo 1;"
    );
    let off = run("off");
    assert_eq!(off.status.code(), Some(0), "{off:?}");
    let bad = run("uid");
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("names"),
        "{bad:?}"
    );
}

/// `failoverd check` as systemd's `ExecStartPre=` runs it: in the service's sandbox, where a path
/// left out of `ReadWritePaths=` is a read-only mount (made here with a read-only bind mount in a
/// mount namespace of its own, as `ProtectSystem=strict` does).
#[test]
fn check_warns_about_each_path_the_service_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let (readonly, state) = (dir.path().join("etc-bind"), dir.path().join("state"));
    let root = readonly.join("www");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy("examples/db.test.ru", dir.path().join("db.test.ru")).unwrap();
    std::fs::copy("examples/db.test.ru", readonly.join("db.bind")).unwrap();
    let mut config = linked_example(dir.path())
        .replace("state_dir = \"state\"", &format!("state_dir = {state:?}"));
    config.push_str(&format!(
        "\n[[writer]]\nkind = \"zone-file\"\nfile = {:?}\nreload = [\"true\"]\n\n[mirror]\nroot = {root:?}\nowners = \"off\"\n",
        readonly.join("db.bind"),
    ));
    let path = dir.path().join("failoverd.toml");
    std::fs::write(&path, config).unwrap();
    let check = |sandboxed: bool| {
        let mut command = if sandboxed {
            let mut command = Command::new("unshare");
            command.args(["--mount", "--", "sh", "-c"]).arg(format!(
                "mount --bind -o ro '{0}' '{0}' && exec '{1}' check --config '{2}'",
                readonly.display(),
                env!("CARGO_BIN_EXE_failoverd"),
                path.display(),
            ));
            command
        } else {
            let mut command = failoverd();
            command.arg("check").arg("--config").arg(&path);
            command
        };
        let output = command.output().unwrap_or_else(|e| {
            panic!("unshare (util-linux) cannot start: {e}; apt-get install util-linux")
        });
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let free = check(false);
    assert!(!free.contains("is not writable"), "{free}");
    let sandboxed = check(true);
    for expected in [
        format!(
            "warning: [mirror] root {} is not writable by this process",
            root.display()
        ),
        format!(
            "warning: zone-file writer's file {} is not writable",
            readonly.join("db.bind").display()
        ),
        format!(
            "warning: zone-file writer's directory (its temp file) {} is not writable",
            readonly.display()
        ),
        "ReadWritePaths=".to_owned(),
    ] {
        assert!(
            sandboxed.contains(&expected),
            "missing {expected:?} in:\n{sandboxed}"
        );
    }
    // The state directory (not made yet, in a writable place) is fine.
    assert!(!sandboxed.contains("[zone] state_dir"), "{sandboxed}");
}

#[test]
fn mirror_versions_restores_an_overwritten_and_a_deleted_file_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, state) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("state"),
    );
    for d in [&a, &b] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(a.join("page.html"), "the good page").unwrap();
    std::fs::create_dir(a.join("old")).unwrap();
    std::fs::write(a.join("old/notes.txt"), "notes worth keeping").unwrap();
    let sync = || {
        let out = failoverd()
            .args([
                "mirror",
                "--once",
                "--names",
                "master",
                "slave",
                "--state-dir",
            ])
            .arg(&state)
            .arg(&a)
            .arg(&b)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    };
    sync();
    // A destructive edit and a deletion on master reach slave.
    std::fs::write(a.join("page.html"), "destroyed!").unwrap();
    std::fs::remove_dir_all(a.join("old")).unwrap();
    sync();
    assert_eq!(std::fs::read(b.join("page.html")).unwrap(), b"destroyed!");

    // The daemon's config names slave's root and the mirror's state directory.
    std::fs::copy("examples/db.test.ru", dir.path().join("db.test.ru")).unwrap();
    let config = format!(
        "{}\n[mirror]\nroot = {b:?}\nstate_dir = {state:?}\n",
        linked_example(dir.path())
    );
    let config_path = dir.path().join("failoverd.toml");
    std::fs::write(&config_path, config).unwrap();
    let versions = |args: &[&str]| {
        let out = failoverd()
            .args(["mirror", "versions", "--node", "slave", "--config"])
            .arg(&config_path)
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stdout, stderr)
    };
    let (code, listed, stderr) = versions(&["list"]);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].starts_with("old/notes.txt  ") && lines[0].contains("_deleted_"));
    assert!(lines[1].starts_with("page.html  ") && lines[1].contains("_replaced_"));

    // Restored on slave with the command; the next run carries both back to master.
    for path in ["page.html", "old/notes.txt"] {
        let (code, said, stderr) = versions(&["restore", path]);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(
            said.starts_with(&format!("restored {path} on slave from ")),
            "{said}"
        );
    }
    sync();
    for root in [&a, &b] {
        assert_eq!(
            std::fs::read(root.join("page.html")).unwrap(),
            b"the good page"
        );
        assert_eq!(
            std::fs::read(root.join("old/notes.txt")).unwrap(),
            b"notes worth keeping"
        );
    }
    // A version that is not there is refused, naming the path and where to look.
    let (code, _, stderr) = versions(&["restore", "page.html", "1999"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("no version \"1999\" of page.html on slave"),
        "{stderr}"
    );
}

/// `mirror --once --xattrs --acls` with one side on ramfs (no extended attributes at all),
/// mounted in a mount namespace of its own: the run goes on without them and the warning names
/// the side, its root and the fix; the same files on file systems that hold them cross with
/// their attributes.
#[test]
fn mirror_once_names_a_file_system_without_extended_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, state) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("state"),
    );
    for d in [&a, &b] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(a.join("page.html"), "<p>hi</p>").unwrap();
    rustix::fs::setxattr(
        a.join("page.html"),
        "user.mime_type",
        b"text/html",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let run = |ramfs_b: bool| {
        let mirror = format!(
            "'{}' mirror --once --xattrs --acls --names a b --state-dir '{}' '{}' '{}'",
            env!("CARGO_BIN_EXE_failoverd"),
            // Each run its own indexes: the ramfs and what was written there go with it.
            state.join(if ramfs_b { "ramfs" } else { "disk" }).display(),
            a.display(),
            b.display()
        );
        let script = if ramfs_b {
            format!("mount -t ramfs none '{}' && exec {mirror}", b.display())
        } else {
            format!("exec {mirror}")
        };
        let output = Command::new("unshare")
            .args(["--mount", "--", "sh", "-c"])
            .arg(script)
            .output()
            .unwrap_or_else(|e| {
                panic!("unshare (util-linux) cannot start: {e}; apt-get install util-linux")
            });
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let on_ramfs = run(true);
    assert!(
        on_ramfs.contains(&format!(
            "warning: extended attributes or ACLs are not mirrored, the file system does not \
             hold them: b: {}: user.* extended attributes: ",
            b.display()
        )) && on_ramfs.contains("POSIX ACLs: ")
            && on_ramfs.contains("or set xattrs/acls = false"),
        "{on_ramfs}"
    );
    // Without the ramfs (its namespace gone), b is ext4 again: the attribute crosses.
    let on_disk = run(false);
    assert!(!on_disk.contains("not mirrored"), "{on_disk}");
    let mut value = [0u8; 64];
    let len = rustix::fs::getxattr(b.join("page.html"), "user.mime_type", &mut value[..]).unwrap();
    assert_eq!(&value[..len], b"text/html");
}

#[test]
fn mirror_once_takes_the_names_as_documented_and_refuses_one() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("page.html"), "v1").unwrap();
    std::fs::write(b.join("page.html"), "v2").unwrap();
    let run = |names: &[&str]| {
        failoverd()
            .args(["mirror", "--once", "--names"])
            .args(names)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg(&a)
            .arg(&b)
            .output()
            .unwrap()
    };
    // `--names A,B` (docs/operations.md): a conflict copy is named after the node that lost.
    let out = run(&["master,slave"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<String> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.contains(".conflict-master-") || n.contains(".conflict-slave-")),
        "{names:?}"
    );
    let out = run(&["master"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--names: two different names are needed (--names A,B), not master"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `status` and `admin` say what kind of failure they met in their exit code, as
/// docs/operations.md lists them: 78 when the config cannot say how to reach the daemon (no
/// `[admin]`, no token for an override), 69 when nothing answers where it says.
#[test]
fn status_and_admin_tell_a_config_problem_from_an_unreachable_daemon() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("examples/db.test.ru", dir.path().join("db.test.ru")).unwrap();
    let example = std::fs::read_to_string("examples/failoverd.toml").unwrap();
    let run = |config: &str, args: &[&str]| {
        let path = dir.path().join("f.toml");
        std::fs::write(&path, config).unwrap();
        let output = failoverd()
            .args(args)
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&example, &["status"]);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("has no [admin] section"), "{stderr}");

    // A port nothing listens on (taken, then given back).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let with_admin = format!("{example}\n[admin]\nlisten = \"127.0.0.1:{port}\"\n");
    let (code, stderr) = run(&with_admin, &["status"]);
    assert_eq!(code, Some(69), "{stderr}");
    assert!(stderr.contains("cannot reach the daemon"), "{stderr}");

    let path = dir.path().join("f.toml");
    let output = failoverd()
        .args(["admin", "--config"])
        .arg(&path)
        .args(["drain", "master"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("has no token_file"), "{stderr}");
}
