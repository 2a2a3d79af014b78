//! Versions end to end on real directories: what the mirror overwrites or deletes on a side is
//! kept in that side's state directory, restored on both through the mirror, and pruned by age
//! and total size.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::time::{Duration, SystemTime};

use common::{read, set_mtime, snapshot, write, Pair};
use failover_sync::{RelPath, Version, VersionPolicy, Versions, Why};

fn versions(pair: &Pair, node: &str) -> Versions {
    Versions::new(
        pair.state.path(),
        node,
        pair.config.versions.expect("versions are on by default"),
    )
}

fn content(version: &Version) -> String {
    std::fs::read_to_string(&version.file).unwrap()
}

#[test]
fn an_overwrite_and_a_delete_on_one_side_are_undone_on_both_by_a_restore() {
    let pair = Pair::new();
    write(pair.a(), "site/page.html", "the good page");
    write(pair.a(), "site/old/notes.txt", "notes worth keeping");
    pair.sync_converged();

    // A bad edit and a deletion on a reach b.
    write(pair.a(), "site/page.html", "destroyed");
    set_mtime(pair.a(), "site/page.html", 2_000_000_000);
    std::fs::remove_dir_all(pair.a().join("site/old")).unwrap();
    pair.sync_converged();
    assert_eq!(read(pair.b(), "site/page.html"), "destroyed");
    assert!(!pair.b().join("site/old").exists());

    // b kept what its mirror replaced and deleted; a kept nothing (its changes were a user's).
    let on_b = versions(&pair, "b").list(None).unwrap();
    let kept: Vec<(&str, Why, String)> = on_b
        .iter()
        .map(|v| (v.path.as_str(), v.why, content(v)))
        .collect();
    assert_eq!(
        kept,
        [
            (
                "site/old/notes.txt",
                Why::Deleted,
                "notes worth keeping".into()
            ),
            ("site/page.html", Why::Replaced, "the good page".into()),
        ]
    );
    assert!(versions(&pair, "a").list(None).unwrap().is_empty());
    // Nothing of the versions area shows in either root.
    assert!(snapshot(pair.b()).keys().all(|p| !p.contains("versions")));

    // Restored on b, the next run carries both back to a.
    for version in &on_b {
        versions(&pair, "b").restore(pair.b(), version).unwrap();
    }
    pair.sync_converged();
    for root in [pair.a(), pair.b()] {
        assert_eq!(read(root, "site/page.html"), "the good page");
        assert_eq!(read(root, "site/old/notes.txt"), "notes worth keeping");
    }
    // The restore kept what it overwrote, so it can be undone too.
    let page = RelPath::new("site/page.html").unwrap();
    let after: Vec<String> = versions(&pair, "b")
        .list(Some(&page))
        .unwrap()
        .iter()
        .map(content)
        .collect();
    assert_eq!(after, ["the good page", "destroyed"]);
}

#[test]
fn retention_keeps_the_newest_versions_within_the_size_and_drops_the_old() {
    let mut pair = Pair::new();
    pair.config.versions = Some(VersionPolicy {
        keep_for: Duration::from_secs(3600),
        max_bytes: 2500,
    });
    write(pair.a(), "big.bin", &"0".repeat(1000));
    pair.sync_converged();
    for round in 1..=5u64 {
        write(pair.a(), "big.bin", &round.to_string().repeat(1000));
        set_mtime(pair.a(), "big.bin", 2_000_000_000 + round);
        pair.sync_converged();
    }
    // Five versions were kept on b, each of 1000 bytes: the newest two fit in 2500 bytes.
    let kept = versions(&pair, "b").list(None).unwrap();
    let firsts: Vec<char> = kept.iter().map(|v| content(v).remove(0)).collect();
    assert_eq!(firsts, ['3', '4']);

    // Past keep_for, nothing is left (and no empty directories).
    let later = SystemTime::now() + Duration::from_secs(3601);
    let pruned = versions(&pair, "b").prune(later).unwrap();
    assert_eq!((pruned.removed, pruned.kept), (2, 0));
    assert!(versions(&pair, "b").list(None).unwrap().is_empty());
    let left: Vec<_> = std::fs::read_dir(versions(&pair, "b").dir())
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn with_versions_off_nothing_is_kept() {
    let mut pair = Pair::new();
    pair.config.versions = None;
    write(pair.a(), "page.html", "one");
    pair.sync_converged();
    write(pair.a(), "page.html", "two");
    set_mtime(pair.a(), "page.html", 2_000_000_000);
    pair.sync_converged();
    assert!(!pair.state.path().join("versions").exists());
}
