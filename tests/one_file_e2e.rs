//! One config file for every server: two `failoverd run` and a witness started from the same file at the same path, each told its node with `--node`; the live mirror carries files both ways and the observers hear each other.
//!
//! Runs in the namespace lab (`tests/netns`): each server in its own network and mount
//! namespace, so that the file's paths (`server/`: key, state, web root) are each server's own,
//! as on real machines. Needs root, iproute2 and nftables, like `sites_e2e.rs`.
#![allow(clippy::unwrap_used)] // tests

mod netns;

use std::path::Path;
use std::time::{Duration, Instant};

use netns::{Lab, Profile, Setup};

fn lab(setup: Setup) -> Option<Lab> {
    if let Some(reason) = netns::unavailable() {
        if std::env::var_os("FAILOVER_SKIP_NETNS").is_some() {
            eprintln!("skipped (FAILOVER_SKIP_NETNS): {reason}");
            return None;
        }
        panic!("the namespace lab cannot run: {reason} (set FAILOVER_SKIP_NETNS=1 to skip)");
    }
    Some(Lab::start(setup))
}

/// Waits (at most 30 s) until `path` holds `content`.
fn arrives(lab: &Lab, path: &Path, content: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(path).ok().as_deref() != Some(content) {
        assert!(
            Instant::now() < deadline,
            "{} did not arrive within 30 s{}",
            path.display(),
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `role`'s status (`failoverd status --json` on its server).
fn status(lab: &Lab, role: &str) -> serde_json::Value {
    let config = lab.config_path();
    let output = lab.failoverd(
        role,
        &["status", "--json", "--config", config.to_str().unwrap()],
    );
    assert!(
        output.status.success(),
        "status on {role}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The observers `role` has heard from and counts in the vote.
fn heard(lab: &Lab, role: &str) -> Vec<String> {
    let mut names: Vec<String> = status(lab, role)["observers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["live"] == true && !o["last_heard"].is_null())
        .map(|o| o["observer"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn two_daemons_and_a_witness_from_one_file_mirror_both_ways_and_hear_each_other() {
    let Some(lab) = lab(Setup {
        witness: true,
        shared: true,
        on_partition: None,
        profile: Profile::FAST,
        mirror: true,
    }) else {
        return;
    };
    let config = lab.config_path();
    // Every process runs from the same file: their command lines name it.
    for pid in lab.pids() {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let at = args.iter().position(|a| a == "--config").unwrap();
        assert_eq!(Path::new(&args[at + 1]), config, "{args:?}");
    }

    // The mirror, both ways: a file made on one server's web root appears on the other's.
    let (dc1, dc2) = (
        lab.own_dir("dc1").join("www"),
        lab.own_dir("dc2").join("www"),
    );
    std::fs::write(dc1.join("from-dc1.html"), "made on dc1\n").unwrap();
    arrives(&lab, &dc2.join("from-dc1.html"), "made on dc1\n");
    std::fs::write(dc2.join("from-dc2.html"), "made on dc2\n").unwrap();
    arrives(&lab, &dc1.join("from-dc2.html"), "made on dc2\n");

    // A reload (SIGHUP) reads the same file as the same node, and the mirror goes on.
    lab.signal("dc2", "HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lab.log("dc2").contains("configuration reloaded") {
        assert!(
            Instant::now() < deadline,
            "dc2 did not reload{}",
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!lab.log("dc2").contains("reload refused"), "{}", lab.logs());
    std::fs::write(dc2.join("after-reload.html"), "still mirrored\n").unwrap();
    arrives(&lab, &dc1.join("after-reload.html"), "still mirrored\n");

    // Shared observations: each daemon hears the other and the witness.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (one, two) = (heard(&lab, "dc1"), heard(&lab, "dc2"));
        if one == ["dc2", "witness"] && two == ["dc1", "witness"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dc1 hears {one:?}, dc2 hears {two:?}{}",
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn check_validates_the_one_file_for_each_server_and_knows_a_key_of_another() {
    let Some(lab) = lab(Setup {
        witness: true,
        shared: true,
        on_partition: None,
        profile: Profile::FAST,
        mirror: true,
    }) else {
        return;
    };
    let config = lab.config_path();
    let file = config.to_str().unwrap();
    let www = lab.dir().join("server").join("www");
    for (role, expected) in [
        (
            "dc1",
            format!("mirror {} with dc2 (", www.display()),
        ),
        ("dc2", "dc1 drives, this node listens on 10.88.0.2:8055".to_owned()),
        (
            "witness",
            "as witness witness (failoverd witness: probes and reports, serves no DNS, publishes nothing):".to_owned(),
        ),
    ] {
        let output = lab.failoverd(role, &["check", "--config", file, "--node", role]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{role}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        for line in [
            format!("config {file} is valid for {role}"),
            format!("the one pinned for {role}"),
            expected,
        ] {
            assert!(stdout.contains(&line), "{role}: no {line:?} in:\n{stdout}");
        }
    }
    let output = lab.failoverd("dc1", &["check", "--config", file, "--node", "dc1"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("this node drives, connecting to 10.88.0.2:8055")
            && stdout.contains("observers: dc1 (this one, listening on 10.88.0.1:8054), dc2 at 10.88.0.2:8054, witness at 10.88.0.3:8054"),
        "{stdout}"
    );

    // On dc1's server, dc1's key is not dc2's.
    let output = lab.failoverd("dc1", &["check", "--config", file, "--node", "dc2"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("is dc1's key, not dc2's: this server is dc1 (start it with --node dc1)"),
        "{stderr}"
    );
}
