//! The mirror's rules end to end on real directories: propagation, each conflict rule, the
//! safety guards, path traversal, symlinks, excludes, modes and times.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{read, set_mtime, snapshot, write, Pair, Snap};
use failover_core::SyncOptions;
use failover_sync::{
    sync_dirs, Failure, Handler, LocalReplica, ReplicaConfig, Request, Response, Silent, SyncError,
};

#[test]
fn changes_on_either_side_reach_the_other() {
    let pair = Pair::new();
    write(pair.a(), "index.php", "<?php echo 1;");
    write(pair.a(), "img/logo.png", "png");
    write(pair.b(), "uploads/photo.jpg", "jpg");
    let first = pair.sync_converged();
    assert_eq!(first.report.copied, 5); // 2 dirs, 3 files
    write(pair.b(), "index.php", "<?php echo 2;");
    std::fs::remove_file(pair.a().join("img/logo.png")).unwrap();
    std::os::unix::fs::symlink("uploads/photo.jpg", pair.a().join("latest.jpg")).unwrap();
    let second = pair.sync_converged();
    assert_eq!((second.report.copied, second.report.deleted), (2, 1));
    assert_eq!(read(pair.a(), "index.php"), "<?php echo 2;");
    assert!(!pair.b().join("img/logo.png").exists());
    assert_eq!(
        std::fs::read_link(pair.b().join("latest.jpg")).unwrap(),
        Path::new("uploads/photo.jpg")
    );
}

#[test]
fn a_conflict_keeps_the_newer_under_its_name_and_the_older_as_a_copy() {
    let pair = Pair::new();
    write(pair.a(), "page.html", "base");
    pair.sync_converged();
    write(pair.a(), "page.html", "edited on a");
    set_mtime(pair.a(), "page.html", 2_000_000_000);
    write(pair.b(), "page.html", "edited on b");
    set_mtime(pair.b(), "page.html", 1_900_000_000);
    let outcome = pair.sync_converged();
    assert_eq!(outcome.report.conflicts.len(), 1);
    let conflict = &outcome.report.conflicts[0];
    assert_eq!(conflict.winner, "a");
    let copy = conflict.kept_as.to_str().unwrap();
    // b's version, named after b and its mtime (2030-03-17T17:46:40Z).
    assert_eq!(copy, "page.conflict-b-20300317T174640Z.html");
    for root in [pair.a(), pair.b()] {
        assert_eq!(read(root, "page.html"), "edited on a");
        assert_eq!(read(root, copy), "edited on b");
    }
}

#[test]
fn equal_mtimes_are_decided_by_the_node_name() {
    let pair = Pair::new();
    write(pair.a(), "f.txt", "from a");
    write(pair.b(), "f.txt", "from b");
    set_mtime(pair.a(), "f.txt", 1_800_000_000);
    set_mtime(pair.b(), "f.txt", 1_800_000_000);
    let outcome = pair.sync_converged();
    // "a" sorts before "b": a's version keeps the name, whichever side runs the engine.
    assert_eq!(outcome.report.conflicts[0].winner, "a");
    assert_eq!(read(pair.b(), "f.txt"), "from a");
}

#[test]
fn an_edit_beats_a_deletion() {
    let pair = Pair::new();
    write(pair.a(), "d/keep.txt", "v1");
    write(pair.a(), "d/other.txt", "o");
    write(pair.a(), "e/x", "x");
    write(pair.a(), "e/y", "y");
    pair.sync_converged();
    // a deletes the file b edits, and the whole directory in which b adds a file.
    std::fs::remove_dir_all(pair.a().join("d")).unwrap();
    write(pair.b(), "d/keep.txt", "v2");
    let outcome = pair.sync_converged();
    assert!(outcome.report.conflicts.is_empty());
    assert_eq!(read(pair.a(), "d/keep.txt"), "v2");
    // The untouched sibling's deletion did propagate.
    assert!(!pair.b().join("d/other.txt").exists());
}

#[test]
fn a_conflict_copy_never_gets_a_conflict_copy() {
    let pair = Pair::new();
    write(pair.a(), "p.txt", "base");
    pair.sync_converged();
    write(pair.a(), "p.txt", "a");
    set_mtime(pair.a(), "p.txt", 1_900_000_000);
    write(pair.b(), "p.txt", "b");
    set_mtime(pair.b(), "p.txt", 1_800_000_000);
    let copy = pair.sync_converged().report.conflicts[0]
        .kept_as
        .to_string_lossy()
        .into_owned();
    write(pair.a(), &copy, "copy edited on a");
    set_mtime(pair.a(), &copy, 1_700_000_000);
    write(pair.b(), &copy, "copy edited on b");
    set_mtime(pair.b(), &copy, 1_750_000_000);
    let outcome = pair.sync_converged();
    assert!(outcome.report.conflicts.is_empty());
    assert_eq!(read(pair.a(), &copy), "copy edited on b");
    let names: Vec<String> = snapshot(pair.a()).into_keys().collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn a_directory_keeps_its_name_against_a_file() {
    let pair = Pair::new();
    write(pair.a(), "x", "a file on a");
    write(pair.b(), "x/inside.txt", "in a dir on b");
    let outcome = pair.sync_converged();
    assert_eq!(outcome.report.conflicts.len(), 1);
    assert!(pair.a().join("x").is_dir());
    let copy = &outcome.report.conflicts[0].kept_as;
    assert_eq!(read(pair.b(), copy.to_str().unwrap()), "a file on a");
}

#[test]
fn mass_deletion_is_refused_unless_forced() {
    let pair = Pair::new();
    for i in 0..10 {
        write(pair.a(), &format!("f{i}"), "x");
    }
    pair.sync_converged();
    for i in 0..6 {
        std::fs::remove_file(pair.a().join(format!("f{i}"))).unwrap();
    }
    let before = snapshot(pair.b());
    match pair.try_sync(false) {
        Err(SyncError::Refused(message)) => {
            assert!(message.contains("delete 6 of the 10 files"), "{message}");
            assert!(message.contains("--force"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        snapshot(pair.b()),
        before,
        "a refused run changed something"
    );
    let outcome = pair.try_sync(true).unwrap();
    assert_eq!(outcome.report.deleted, 6);
}

#[test]
fn an_emptied_root_is_refused_unless_forced() {
    let pair = Pair::new();
    write(pair.a(), "only.txt", "x");
    write(pair.a(), "d/two.txt", "y");
    for i in 0..8 {
        write(pair.a(), &format!("many{i}"), "x");
    }
    pair.sync_converged();
    for entry in std::fs::read_dir(pair.b()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            std::fs::remove_dir_all(path).unwrap();
        } else {
            std::fs::remove_file(path).unwrap();
        }
    }
    let mut config = pair.config.clone();
    config.max_delete_share = 1.0;
    let result = sync_dirs(&config, &SyncOptions::default(), &Silent);
    match result {
        Err(SyncError::Refused(message)) => assert!(message.contains("is empty"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(read(pair.a(), "only.txt"), "x");
}

#[test]
fn a_dry_run_changes_nothing_and_says_what_it_would_do() {
    let pair = Pair::new();
    write(pair.a(), "new.txt", "x");
    let outcome = sync_dirs(
        &pair.config,
        &SyncOptions {
            force: false,
            dry_run: true,
        },
        &Silent,
    )
    .unwrap();
    assert_eq!(outcome.report.copied, 1);
    assert!(
        outcome.changes[0].contains("new.txt"),
        "{:?}",
        outcome.changes
    );
    assert!(!pair.b().join("new.txt").exists());
}

fn replica(root: &Path, state: &Path) -> LocalReplica {
    LocalReplica::open(ReplicaConfig {
        root: root.to_path_buf(),
        node: "b".to_owned(),
        state_dir: state.to_path_buf(),
        peer: "a".to_owned(),
        excludes: Vec::new(),
        fsync: false,
    })
    .unwrap()
}

#[test]
fn paths_from_the_other_side_cannot_leave_the_root() {
    let pair = Pair::new();
    let outside = tempfile::tempdir().unwrap();
    // A hostile peer's request, as bytes on the wire: `../` in a path does not decode.
    let mut wire = postcard::to_allocvec(&Request::Delete {
        path: failover_sync::RelPath::new("xx/passwd").unwrap(),
        expect: failover_sync::Entry {
            kind: failover_sync::Kind::Dir,
            mode: 0,
            owner: None,
            mtime_ns: 0,
            stat: Default::default(),
            xattrs: None,
        },
    })
    .unwrap();
    let at = wire.windows(2).position(|w| w == b"xx").unwrap();
    wire[at..at + 2].copy_from_slice(b"..");
    assert!(postcard::from_bytes::<Request>(&wire).is_err());
    for bad in ["../x", "/etc/passwd", "a/../../x", "a\0b"] {
        assert!(failover_sync::RelPath::new(bad).is_err(), "{bad}");
    }
    // A symlink in the replica pointing outside: nothing is ever written through it.
    std::os::unix::fs::symlink(outside.path(), pair.b().join("link")).unwrap();
    let mut b = replica(pair.b(), pair.state.path());
    let target = failover_sync::Entry {
        kind: failover_sync::Kind::File {
            size: 4,
            hash: failover_sync::Hash::of(b"evil"),
        },
        mode: 0o644,
        owner: None,
        mtime_ns: 0,
        stat: Default::default(),
        xattrs: None,
    };
    let response = b
        .handle(Request::WriteBegin {
            path: failover_sync::RelPath::new("link/planted").unwrap(),
            replace: None,
            basis: None,
            target,
        })
        .unwrap();
    assert!(
        matches!(response, Response::Failed(Failure::Io(_))),
        "{response:?}"
    );
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn a_symlink_out_of_the_root_is_kept_as_a_link_and_never_followed() {
    let pair = Pair::new();
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.txt", "outside");
    std::os::unix::fs::symlink(outside.path(), pair.a().join("shared")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", pair.a().join("passwd")).unwrap();
    // The other side has a directory of that name with a file in it: the directory wins and
    // the file is written into b's directory, never through a's link.
    write(pair.b(), "shared/from-b.txt", "b");
    let outcome = pair.sync_converged();
    assert_eq!(outcome.report.conflicts.len(), 1);
    assert_eq!(
        snapshot(pair.b())["passwd"],
        Snap::Link("/etc/passwd".to_owned())
    );
    assert!(pair.a().join("shared").is_dir());
    assert_eq!(read(pair.a(), "shared/from-b.txt"), "b");
    // The link is kept (as a conflict copy) and what it points at was never read or changed.
    let copy = outcome.report.conflicts[0]
        .kept_as
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        std::fs::read_link(pair.b().join(&copy)).unwrap(),
        outside.path()
    );
    assert!(!pair.b().join("shared/secret.txt").exists());
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        1,
        "something was written outside the root"
    );
}

#[test]
fn modes_and_mtimes_are_mirrored_but_never_setuid() {
    let pair = Pair::new();
    write(pair.a(), "run.sh", "#!/bin/sh");
    let path = pair.a().join("run.sh");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o4755)).unwrap();
    set_mtime(pair.a(), "run.sh", 1_600_000_000);
    pair.try_sync(false).unwrap();
    let copied = std::fs::metadata(pair.b().join("run.sh")).unwrap();
    assert_eq!(copied.permissions().mode() & 0o7777, 0o755);
    assert_eq!(
        copied.modified().unwrap(),
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000)
    );
    std::fs::set_permissions(
        pair.b().join("run.sh"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    pair.sync_converged();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o700
    );
}

#[test]
fn excluded_paths_are_left_alone_on_both_sides() {
    let mut pair = Pair::new();
    pair.config.excludes = vec!["*.log".to_owned(), "/cache/".to_owned()];
    write(pair.a(), "app.log", "a log");
    write(pair.a(), "cache/page", "cached");
    write(pair.a(), "sub/cache/kept", "kept");
    write(pair.b(), "app.log", "another log");
    let outcome = pair.try_sync(false).unwrap();
    assert!(outcome.report.conflicts.is_empty());
    assert_eq!(read(pair.b(), "app.log"), "another log");
    assert!(!pair.b().join("cache").exists());
    assert_eq!(read(pair.b(), "sub/cache/kept"), "kept");
}

#[test]
fn a_change_during_the_run_is_never_overwritten() {
    // The replica refuses to replace a file that is no longer what the engine scanned.
    let pair = Pair::new();
    write(pair.b(), "f", "scanned");
    let mut b = replica(pair.b(), pair.state.path());
    let Response::Scanned(scan) = b.handle(Request::Scan).unwrap() else {
        panic!("no scan")
    };
    let scanned = scan.current[0].1.clone();
    write(pair.b(), "f", "edited meanwhile, longer");
    let response = b
        .handle(Request::Delete {
            path: failover_sync::RelPath::new("f").unwrap(),
            expect: scanned,
        })
        .unwrap();
    assert_eq!(response, Response::Failed(Failure::Changed));
    assert_eq!(read(pair.b(), "f"), "edited meanwhile, longer");
}

/// Runs a command the test needs, failing with how to get it.
fn run(name: &str, args: &[&str], package: &str) {
    let program = failover_testkit::program(name, package);
    let status = std::process::Command::new(&program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        status.success(),
        "{name} {args:?} failed; this test needs root (it runs as root in scripts/test.sh)"
    );
}

/// Undoes `chattr +i` or a mount when the test ends, whatever happens.
struct Undo(&'static str, Vec<String>);

impl Drop for Undo {
    fn drop(&mut self) {
        let _ = std::process::Command::new(self.0).args(&self.1).status();
    }
}

#[test]
fn permission_denied_fails_that_path_only_names_it_and_keeps_its_index() {
    let pair = Pair::new();
    write(pair.a(), "locked/f.txt", "x");
    write(pair.a(), "ok.txt", "fine");
    std::fs::create_dir(pair.b().join("locked")).unwrap();
    let locked = pair.b().join("locked").display().to_string();
    // An immutable directory refuses writes even to root.
    run("chattr", &["+i", &locked], "e2fsprogs");
    let _undo = Undo("chattr", vec!["-i".to_owned(), locked.clone()]);
    let outcome = pair.try_sync(false).unwrap();
    assert_eq!(read(pair.b(), "ok.txt"), "fine");
    assert_eq!(
        outcome.report.failed.len(),
        1,
        "{:?}",
        outcome.report.failed
    );
    let failed = &outcome.report.failed[0];
    assert_eq!(failed.path, Path::new("locked/f.txt"));
    assert!(failed.reason.contains(&locked), "{}", failed.reason);
    assert!(
        failed.reason.contains("check the owner and mode"),
        "{}",
        failed.reason
    );
    drop(_undo);
    // Its index entry was left alone: the next run copies it.
    let again = pair.sync_converged();
    assert_eq!(again.report.copied, 1);
}

#[test]
fn disk_full_fails_that_file_leaves_no_temp_file_and_loses_nothing() {
    let pair = Pair::new();
    let small = pair.b().display().to_string();
    run(
        "mount",
        &["-t", "tmpfs", "-o", "size=1m", "tmpfs", &small],
        "mount",
    );
    let _undo = Undo("umount", vec![small.clone()]);
    write(pair.a(), "big.bin", &"x".repeat(3 << 20));
    write(pair.a(), "small.txt", "fits");
    let outcome = pair.try_sync(false).unwrap();
    assert_eq!(read(pair.b(), "small.txt"), "fits");
    assert_eq!(
        outcome.report.failed.len(),
        1,
        "{:?}",
        outcome.report.failed
    );
    assert!(
        outcome.report.failed[0].reason.contains("free space"),
        "{}",
        outcome.report.failed[0].reason
    );
    let names: Vec<String> = snapshot(pair.b()).into_keys().collect();
    assert_eq!(names, ["small.txt"], "a temp or partial file was left");
    assert_eq!(read(pair.a(), "big.bin").len(), 3 << 20);
}

#[test]
fn a_first_run_over_more_files_than_one_flush_installs_every_one() {
    // Large files (sent one by one) between batches of small ones, more than one flush's worth
    // in all: each staged write must be known to the engine when its side is flushed.
    let pair = Pair::new();
    let big = vec![7u8; 100 << 10];
    for i in 0..1300 {
        if i % 300 == 0 {
            std::fs::create_dir_all(pair.a().join("d")).unwrap();
            std::fs::write(pair.a().join(format!("d/f{i:05}.bin")), &big).unwrap();
        } else {
            write(pair.a(), &format!("d/f{i:05}.txt"), &format!("file {i}"));
        }
    }
    let outcome = pair.sync_converged();
    assert_eq!(outcome.report.copied, 1301); // the directory and every file
    assert_eq!(outcome.scanned, [1301, 0]);
}

#[test]
fn a_large_edit_goes_as_a_small_delta_even_when_fast_matching_is_fooled() {
    // 8 MiB of noise (blocks of 2880 bytes), synced once; then two edits on a: a plain one,
    // and a swap of two bytes 2048 apart that differ by 32, which keeps the block's rolling
    // checksum ((32 · 2048) mod 2¹⁶ = 0) and so fools fast matching.
    let mut state = 7u64;
    let mut old: Vec<u8> = (0..8 << 20)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect();
    let block = failover_sync::block_size(old.len() as u64) as usize;
    let at = 100 * block + 10;
    (old[at], old[at + 2048]) = (10, 42);
    let pair = Pair::new();
    std::fs::write(pair.a().join("big.bin"), &old).unwrap();
    pair.sync_converged();
    let mut new = old.clone();
    new[1000..1100].fill(b'x');
    (new[at], new[at + 2048]) = (42, 10);
    std::fs::write(pair.a().join("big.bin"), &new).unwrap();
    let outcome = pair.sync_converged();
    assert_eq!(std::fs::read(pair.b().join("big.bin")).unwrap(), new);
    // The fooled fast delta, then a strict one (two signatures of the basis were asked for):
    // literal data of a few blocks each time, not the whole file. The fast one also had a
    // second round of small blocks over the plain edit's block.
    let signature = 12 + 12 * old.len().div_ceil(block) as u64;
    assert!(outcome.fine_signature_bytes > 0);
    assert_eq!(
        outcome.signature_bytes - outcome.fine_signature_bytes,
        2 * signature
    );
    assert!(
        outcome.literal_bytes < 8 * block as u64,
        "{}",
        outcome.literal_bytes
    );
    assert!(
        outcome.report.failed.is_empty(),
        "{:?}",
        outcome.report.failed
    );
}

#[test]
fn files_hashed_again_only_for_the_trust_window_are_trusted_from_the_next_run_on() {
    // Files changed within a second of the index's writing are hashed again by the next scan
    // (a change in the same clock tick would not show in their times). Once they are older,
    // one run that finds them unchanged writes the index again, so later runs trust them.
    let pair = Pair::new();
    for i in 0..3 {
        write(pair.a(), &format!("f{i}.txt"), &"x".repeat(1000));
    }
    pair.sync_converged();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = pair.sync();
    assert_eq!(again.report.copied, 0);
    assert!(
        again.hashed_bytes > 0,
        "the trust window should have applied"
    );
    let trusted = pair.sync();
    assert_eq!(trusted.hashed_bytes, 0, "{}", trusted.summary());
}

#[test]
fn a_renamed_directory_and_a_moved_file_are_renamed_on_the_other_side_not_sent() {
    let pair = Pair::new();
    for i in 0..20 {
        write(
            pair.a(),
            &format!("docs/page{i}.html"),
            &format!("page {i}"),
        );
    }
    write(pair.a(), "logo.png", "a logo");
    pair.sync_converged();
    let inode = |rel: &str| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(pair.b().join(rel)).unwrap().ino()
    };
    let before = inode("docs/page3.html");
    std::fs::rename(pair.a().join("docs"), pair.a().join("manual")).unwrap();
    std::fs::create_dir(pair.a().join("img")).unwrap();
    std::fs::rename(pair.a().join("logo.png"), pair.a().join("img/brand.png")).unwrap();
    std::fs::set_permissions(
        pair.a().join("img/brand.png"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // Not forced: the whole tree moved, yet nothing is deleted for the mass-deletion rule.
    let outcome = pair.sync();
    assert_eq!(outcome.moved, 21, "{:?}", outcome.changes);
    assert_eq!(outcome.literal_bytes, 0, "{:?}", outcome.changes);
    assert_eq!(outcome.report.deleted, 1, "the old directory"); // docs/
    assert!(
        outcome.summary().contains(", 21 moved,"),
        "{}",
        outcome.summary()
    );
    assert_eq!(snapshot(pair.a()), snapshot(pair.b()));
    // The same inode on b: renamed there.
    assert_eq!(inode("manual/page3.html"), before);
    assert_eq!(
        std::fs::metadata(pair.b().join("img/brand.png"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let again = pair.sync();
    assert_eq!(
        (again.report.copied, again.moved),
        (0, 0),
        "{:?}",
        again.changes
    );
}
