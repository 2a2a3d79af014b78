//! `failoverd replay` of a daemon that shares observations: two daemons in the namespace lab
//! (`tests/netns`), cut apart with `on_partition = "fail-over"`; dc2's journal holds its own
//! probes and dc1's verdicts and heartbeats before the quorum, so the replay runs them through the
//! quorum of the config given: the same config gives exactly what dc2 did, `hold` shows the
//! failover that would not have happened.
//!
//! Needs root, iproute2 and nftables, like `sites_e2e.rs`.
#![allow(clippy::unwrap_used)] // tests

mod netns;

use std::time::Duration;

use netns::{Lab, Profile, Setup, DC1, DC2};

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

/// `failoverd replay --json` of dc2's journal with `config` (a file in the lab's `etc/`).
fn replay(lab: &Lab, config: &str) -> serde_json::Value {
    let path = lab.config_path().with_file_name(config);
    let output = lab.failoverd(
        "dc2",
        &["replay", "--json", "--config", path.to_str().unwrap()],
    );
    assert!(
        output.status.success(),
        "replay with {config}: {}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn count(timeline: &serde_json::Value, event: &str) -> usize {
    timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == event)
        .count()
}

#[test]
fn a_replay_runs_the_peers_words_through_the_quorum_of_the_config_given() {
    let Some(lab) = lab(Setup {
        witness: false,
        shared: true,
        on_partition: Some("fail-over"),
        profile: Profile::FAST,
        mirror: false,
    }) else {
        return;
    };
    // Both in the vote first, then cut apart: each decides alone and serves itself.
    std::thread::sleep(Duration::from_secs(3));
    lab.cut("dc1", "dc2");
    let p = lab.setup.profile;
    lab.wait_for(
        DC2,
        DC2,
        p.observer_timeout + p.detection_bound() + Duration::from_secs(2),
    );
    lab.hold_steady(Duration::from_secs(2), DC1, DC2);

    // The same config: the quorum replayed from dc1's words gives what dc2 did.
    let same = replay(&lab, "failoverd.toml");
    assert_eq!(same["same"], true, "{same:#}");
    assert!(count(&same["recorded"], "failover") >= 1, "{same:#}");
    assert_eq!(
        count(&same["replayed"], "failover"),
        count(&same["recorded"], "failover"),
        "{same:#}"
    );
    assert!(same["warnings"].as_array().unwrap().is_empty(), "{same:#}");

    // With `hold`, the cut-off observer keeps every verdict: no failover, the answer stays.
    let text = std::fs::read_to_string(lab.config_path()).unwrap();
    assert!(text.contains("on_partition = \"fail-over\""), "{text}");
    std::fs::write(
        lab.config_path().with_file_name("hold.toml"),
        text.replace("on_partition = \"fail-over\"", "on_partition = \"hold\""),
    )
    .unwrap();
    let hold = replay(&lab, "hold.toml");
    assert_eq!(hold["same"], false, "{hold:#}");
    assert_eq!(count(&hold["replayed"], "failover"), 0, "{hold:#}");
    assert!(count(&hold["recorded"], "failover") >= 1, "{hold:#}");

    // Without [cluster], dc2's own probes go straight to its arbiter, as a lone daemon's would:
    // it fails over too.
    let start = text.find("\n[cluster]").unwrap();
    let end = text[start + 1..]
        .find("\n[")
        .map_or(text.len(), |e| start + 1 + e);
    std::fs::write(
        lab.config_path().with_file_name("alone.toml"),
        format!("{}{}", &text[..start], &text[end..]),
    )
    .unwrap();
    let alone = replay(&lab, "alone.toml");
    assert!(count(&alone["replayed"], "failover") >= 1, "{alone:#}");
}
