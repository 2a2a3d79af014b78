//! Owners and groups: kept by the mirror when it runs as root (as Unison's `owner`/`group` and
//! `rsync -a` do), by name with the number as the fallback; a `chown` alone is a change that
//! crosses; an index from before owners were kept loads and loses nothing; as another user the
//! mirror keeps no owners and says so once.
//!
//! These tests need root (they give files to other users); scripts/test.sh runs them as root.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::os::unix::fs::{lchown, MetadataExt};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{read, write, Pair};
use failover_core::SyncOptions;
use failover_sync::{
    sync_pair, AccountTable, Accounts, EngineConfig, InProcess, Index, Loaded, LocalReplica,
    ReplicaConfig, Silent,
};

/// Fails the test, saying why, when it does not run as root.
fn needs_root() {
    assert!(
        failover_sync::can_keep_owners(),
        "this test needs root: it gives files to other users (it runs as root in scripts/test.sh)"
    );
}

/// The owner and group of `root/rel` (a symlink's own, not its target's).
fn owner(root: &Path, rel: &str) -> (u32, u32) {
    let meta = std::fs::symlink_metadata(root.join(rel)).unwrap();
    (meta.uid(), meta.gid())
}

fn chown(root: &Path, rel: &str, uid: u32, gid: u32) {
    lchown(root.join(rel), Some(uid), Some(gid)).unwrap();
}

#[test]
fn files_a_directory_and_a_symlink_arrive_with_their_owner_and_group() {
    needs_root();
    let pair = Pair::new();
    write(pair.a(), "site/index.html", "hello");
    write(pair.a(), "site/uploads/photo.jpg", "jpeg");
    std::os::unix::fs::symlink("index.html", pair.a().join("site/home.html")).unwrap();
    // Ids that need no account (numbers without names), and an account every system has.
    chown(pair.a(), "site", 4242, 4343);
    chown(pair.a(), "site/index.html", 4242, 4343);
    chown(pair.a(), "site/uploads", 1, 1); // daemon:daemon on Debian
    chown(pair.a(), "site/uploads/photo.jpg", 4242, 1);
    chown(pair.a(), "site/home.html", 4343, 4242);
    let outcome = pair.sync_converged();
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    for (rel, expected) in [
        ("site", (4242, 4343)),
        ("site/index.html", (4242, 4343)),
        ("site/uploads", (1, 1)),
        ("site/uploads/photo.jpg", (4242, 1)),
        ("site/home.html", (4343, 4242)),
    ] {
        assert_eq!(owner(pair.b(), rel), expected, "{rel} on b");
    }
    // The symlink was given its own owner, never its target's.
    assert_eq!(owner(pair.b(), "site/index.html"), (4242, 4343));
}

#[test]
fn a_chown_alone_crosses_both_ways_and_never_makes_a_conflict_copy() {
    needs_root();
    let pair = Pair::new();
    write(pair.a(), "f.txt", "same bytes");
    std::fs::create_dir(pair.a().join("d")).unwrap();
    std::os::unix::fs::symlink("f.txt", pair.a().join("l")).unwrap();
    pair.sync_converged();
    // A → B.
    for rel in ["f.txt", "d", "l"] {
        chown(pair.a(), rel, 4242, 4343);
    }
    let outcome = pair.sync_converged();
    assert_eq!(outcome.report.copied, 3, "{:?}", outcome.changes);
    for rel in ["f.txt", "d", "l"] {
        assert_eq!(owner(pair.b(), rel), (4242, 4343), "{rel} on b");
    }
    // B → A.
    for rel in ["f.txt", "d", "l"] {
        chown(pair.b(), rel, 4343, 4242);
    }
    let outcome = pair.sync_converged();
    assert_eq!(outcome.report.copied, 3, "{:?}", outcome.changes);
    for rel in ["f.txt", "d", "l"] {
        assert_eq!(owner(pair.a(), rel), (4343, 4242), "{rel} on a");
    }
    // A different chown on each side: one owner wins (equal mtimes: the node whose name
    // sorts first, `a`), the bytes are the same, so there is no conflict copy.
    chown(pair.a(), "f.txt", 5000, 5000);
    chown(pair.b(), "f.txt", 6000, 6000);
    let outcome = pair.sync_converged();
    assert!(outcome.report.conflicts.is_empty(), "{:?}", outcome.changes);
    assert_eq!(owner(pair.a(), "f.txt"), (5000, 5000));
    assert_eq!(owner(pair.b(), "f.txt"), (5000, 5000));
    assert_eq!(std::fs::read_dir(pair.a()).unwrap().count(), 3);
    // An edit on one side and a chown on the other are two versions: both kept.
    write(pair.a(), "f.txt", "edited on a");
    chown(pair.b(), "f.txt", 6000, 6000);
    let outcome = pair.sync_converged();
    assert_eq!(outcome.report.conflicts.len(), 1, "{:?}", outcome.changes);
}

/// A replica whose account look-ups are `users` and `groups` (names → numbers on "its"
/// server), as two servers built apart would have them.
fn replica(root: &Path, state: &Path, node: &str, peer: &str, table: AccountTable) -> LocalReplica {
    let mut replica = LocalReplica::open(ReplicaConfig {
        root: root.to_path_buf(),
        node: node.to_owned(),
        state_dir: state.to_path_buf(),
        peer: peer.to_owned(),
        excludes: Vec::new(),
        fsync: false,
    })
    .unwrap();
    replica.set_accounts(Arc::new(table));
    replica
}

fn table(user: u32, group: u32) -> AccountTable {
    AccountTable {
        users: vec![(user, "deploy".to_owned())],
        groups: vec![(group, "www".to_owned())],
    }
}

#[test]
fn owners_are_mapped_by_name_when_the_numbers_differ() {
    needs_root();
    let pair = Pair::new();
    // `deploy:www` is 4242:4343 on A and 5252:5353 on B; 7000 has no name on either.
    let run = || {
        let mut a = InProcess::serializing(replica(
            pair.a(),
            pair.state.path(),
            "a",
            "b",
            table(4242, 4343),
        ));
        let mut b = InProcess::serializing(replica(
            pair.b(),
            pair.state.path(),
            "b",
            "a",
            table(5252, 5353),
        ));
        let options = SyncOptions::default();
        sync_pair(&mut a, &mut b, &EngineConfig::default(), &options, &Silent).unwrap()
    };
    write(pair.a(), "from-a.txt", "a");
    chown(pair.a(), "from-a.txt", 4242, 4343);
    write(pair.a(), "numbered.txt", "n");
    chown(pair.a(), "numbered.txt", 7000, 4343);
    write(pair.b(), "from-b.txt", "b");
    chown(pair.b(), "from-b.txt", 5252, 5353);
    let first = run();
    assert_eq!(first.report.copied, 3, "{:?}", first.changes);
    assert_eq!(owner(pair.b(), "from-a.txt"), (5252, 5353));
    assert_eq!(owner(pair.b(), "numbered.txt"), (7000, 5353));
    assert_eq!(owner(pair.a(), "from-b.txt"), (4242, 4343));
    // Each side's numbers for the same names are the same owner: nothing to do.
    let again = run();
    assert_eq!(again.report.copied, 0, "{:?}", again.changes);
    // A chown on B to a number A has a name for crosses as that number (no name on B).
    chown(pair.b(), "from-b.txt", 7000, 5353);
    let third = run();
    assert_eq!(third.report.copied, 1, "{:?}", third.changes);
    assert_eq!(owner(pair.a(), "from-b.txt"), (7000, 4343));
}

#[test]
fn a_system_account_is_mapped_by_its_name() {
    needs_root();
    let pair = Pair::new();
    // `daemon` exists on every Debian-like system; B's "server" numbers it 4545.
    let system = failover_sync::SystemAccounts;
    let daemon = system.user_id("daemon").expect("a user named daemon");
    let daemon_group = system.group_id("daemon").expect("a group named daemon");
    write(pair.a(), "spool.txt", "s");
    chown(pair.a(), "spool.txt", daemon, daemon_group);
    // A looks its accounts up in the system's database (NSS), the default.
    let mut a = InProcess::serializing(
        LocalReplica::open(ReplicaConfig {
            root: pair.a().to_path_buf(),
            node: "a".to_owned(),
            state_dir: pair.state.path().to_path_buf(),
            peer: "b".to_owned(),
            excludes: Vec::new(),
            fsync: false,
        })
        .unwrap(),
    );
    let mut b = InProcess::serializing(replica(
        pair.b(),
        pair.state.path(),
        "b",
        "a",
        AccountTable {
            users: vec![(4545, "daemon".to_owned())],
            groups: vec![(4546, "daemon".to_owned())],
        },
    ));
    let options = SyncOptions::default();
    sync_pair(&mut a, &mut b, &EngineConfig::default(), &options, &Silent).unwrap();
    assert_eq!(owner(pair.b(), "spool.txt"), (4545, 4546));
}

/// Rewrites every index in `state` in format 1 (before owners were kept).
fn downgrade_indexes(state: &Path) {
    #[derive(serde::Serialize)]
    struct EntryV1 {
        kind: failover_sync::Kind,
        mode: u32,
        mtime_ns: i64,
        stat: failover_sync::StatKey,
    }
    let mut count = 0;
    for file in std::fs::read_dir(state).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_none_or(|e| e != "index") {
            continue;
        }
        let Loaded::Found(index) = Index::load(&path).unwrap() else {
            panic!("{} does not load", path.display());
        };
        let old: (Vec<(failover_sync::RelPath, EntryV1)>, i64) = (
            index
                .entries
                .into_iter()
                .map(|(p, e)| {
                    let entry = EntryV1 {
                        kind: e.kind,
                        mode: e.mode,
                        mtime_ns: e.mtime_ns,
                        stat: e.stat,
                    };
                    (p, entry)
                })
                .collect(),
            index.written_at_ns,
        );
        let payload = postcard::to_allocvec(&old).unwrap();
        let mut bytes = b"FOSYNCIX".to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(blake3::hash(&payload).as_bytes());
        bytes.extend_from_slice(&payload);
        std::fs::write(&path, bytes).unwrap();
        count += 1;
    }
    assert_eq!(count, 2, "one index per replica");
}

#[test]
fn an_index_from_before_owners_loads_and_loses_nothing() {
    needs_root();
    let pair = Pair::new();
    for name in ["a.txt", "b.txt", "c.txt"] {
        write(pair.a(), name, "first");
    }
    pair.sync_converged();
    downgrade_indexes(pair.state.path());
    // While the old build ran: an edit on each side, a chown on A.
    write(pair.a(), "a.txt", "edited on a");
    write(pair.b(), "b.txt", "edited on b");
    chown(pair.a(), "c.txt", 4242, 4343);
    let outcome = pair.sync_converged();
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    assert!(outcome.report.conflicts.is_empty(), "{:?}", outcome.changes);
    for root in [pair.a(), pair.b()] {
        assert_eq!(read(root, "a.txt"), "edited on a");
        assert_eq!(read(root, "b.txt"), "edited on b");
        assert_eq!(read(root, "c.txt"), "first");
    }
    // Owners the old index did not know: the rule of a chown on both sides (equal mtimes:
    // node `a`) decides, and from now on the index knows them.
    assert_eq!(owner(pair.b(), "c.txt"), (4242, 4343));
    chown(pair.b(), "c.txt", 5000, 5000);
    pair.sync_converged();
    assert_eq!(owner(pair.a(), "c.txt"), (5000, 5000));
}

/// The environment variable that makes [`not_root_child`] run (the directories, `:`-joined).
const CHILD_ENV: &str = "FAILOVER_SYNC_OWNERS_CHILD";

/// Run by [`as_another_user_owners_are_not_kept_and_that_is_said_once`] as uid 4242: one run,
/// its warnings on stdout.
#[test]
fn not_root_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dirs: Vec<&str> = spec.split(':').collect();
    let mut config = failover_sync::LocalPairConfig::new(dirs[0], dirs[1]);
    config.state_dir = dirs[2].into();
    config.fsync = false;
    let outcome = failover_sync::sync_dirs(&config, &SyncOptions::default(), &Silent).unwrap();
    for warning in &outcome.warnings {
        println!("warning: {warning}");
    }
    println!("copied: {}", outcome.report.copied);
}

/// Runs [`not_root_child`] over `pair` as uid 4242 with `caps` (ambient capabilities, as a
/// systemd unit's `AmbientCapabilities=` gives them); returns what it printed.
fn run_as_4242(pair: &Pair, caps: &[&str]) -> String {
    for root in [pair.a(), pair.b(), pair.state.path()] {
        chown(root, "", 4242, 4242);
    }
    let setpriv = failover_testkit::program("setpriv", "util-linux");
    let spec = format!(
        "{}:{}:{}",
        pair.a().display(),
        pair.b().display(),
        pair.state.path().display()
    );
    let mut command = Command::new(setpriv);
    command.args(["--reuid=4242", "--regid=4242", "--clear-groups"]);
    if !caps.is_empty() {
        let list: Vec<String> = caps.iter().map(|c| format!("+{c}")).collect();
        command.arg(format!("--inh-caps={}", list.join(",")));
        command.arg(format!("--ambient-caps={}", list.join(",")));
    }
    let output = command
        .arg("--")
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "not_root_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &spec)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn as_another_user_owners_are_not_kept_and_that_is_said_once() {
    needs_root();
    let pair = Pair::new();
    write(pair.a(), "mine.txt", "the mirror user's");
    write(pair.a(), "d/theirs.txt", "another user's, readable");
    chown(pair.a(), "mine.txt", 4242, 4242);
    chown(pair.a(), "d", 4242, 4242);
    chown(pair.a(), "d/theirs.txt", 4343, 4343);
    let stdout = run_as_4242(&pair, &[]);
    assert!(stdout.contains("copied: 3"), "{stdout}");
    let said: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("owners and groups are not kept"))
        .collect();
    assert_eq!(said.len(), 1, "{stdout}");
    // What it wrote is its own; the other user's file arrived (as the mirror's user).
    assert_eq!(read(pair.b(), "d/theirs.txt"), "another user's, readable");
    assert_eq!(owner(pair.b(), "d/theirs.txt"), (4242, 4242));
    assert_eq!(owner(pair.b(), "mine.txt"), (4242, 4242));
}

#[test]
fn a_service_user_given_cap_chown_keeps_owners() {
    needs_root();
    let pair = Pair::new();
    write(pair.a(), "d/theirs.txt", "another user's");
    chown(pair.a(), "d", 5000, 5000);
    chown(pair.a(), "d/theirs.txt", 4343, 4343);
    // What a unit with `User=failoverd` and these `AmbientCapabilities=` can do.
    let stdout = run_as_4242(&pair, &["chown", "fowner", "dac_override"]);
    assert!(stdout.contains("copied: 2"), "{stdout}");
    assert!(!stdout.contains("not kept"), "{stdout}");
    assert_eq!(owner(pair.b(), "d"), (5000, 5000));
    assert_eq!(owner(pair.b(), "d/theirs.txt"), (4343, 4343));
}
