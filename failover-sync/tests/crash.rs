//! Crash test: a sync in a child process killed with SIGKILL at random moments, again and
//! again; after each kill every file is its old or its new version (never partial), and a
//! final sync converges with every new version in place and no temp file left.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{snapshot, Pair, Snap};
use failover_core::SyncOptions;
use failover_sync::{sync_dirs, LocalPairConfig, Silent, TEMP_PREFIX};

const CHILD_ENV: &str = "FAILOVER_SYNC_CRASH_CHILD";
/// Replays the kill delays of an earlier run (the seed it printed).
const SEED_ENV: &str = "FAILOVER_SYNC_CRASH_SEED";

/// The child: one sync of the directories named in the environment. Does nothing when run
/// as an ordinary test.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('\n').collect();
    let mut config = LocalPairConfig::new(parts[0], parts[1]);
    config.state_dir = parts[2].into();
    config.fsync = true;
    let options = SyncOptions {
        force: true,
        dry_run: false,
    };
    sync_dirs(&config, &options, &Silent).unwrap();
}

fn content(tag: &str, i: usize, len: usize) -> Vec<u8> {
    let mut out = format!("{tag} {i} ").into_bytes();
    let mut state = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ tag.len() as u64;
    while out.len() < len {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.push(b'a' + (state >> 59) as u8);
    }
    out
}

/// Every version a path may have during the test.
type Versions = BTreeMap<String, Vec<Vec<u8>>>;

fn check_no_partial(root: &Path, versions: &Versions) {
    for (path, snap) in snapshot(root) {
        if path
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with(TEMP_PREFIX))
        {
            continue; // a temp file of the killed run: not a file anyone sees by its name
        }
        if let Snap::File { content, .. } = snap {
            let allowed = versions
                .get(&path)
                .unwrap_or_else(|| panic!("unexpected file {path}"));
            assert!(
                allowed.contains(&content),
                "{}/{path} is neither its old nor its new version ({} bytes)",
                root.display(),
                content.len()
            );
        }
    }
}

/// Files whose new version is on both sides.
fn in_step(pair: &Pair, expected: &BTreeMap<String, Vec<u8>>) -> usize {
    expected
        .iter()
        .filter(|(path, new)| {
            [pair.a(), pair.b()]
                .iter()
                .all(|root| std::fs::read(root.join(path)).ok().as_ref() == Some(*new))
        })
        .count()
}

#[test]
fn killed_syncs_leave_old_or_new_files_and_the_next_sync_converges() {
    let pair = Pair::new();
    let mut versions: Versions = BTreeMap::new();
    let mut expected: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    // Two 12 MiB files and 360 of 128 KiB, then changes on both sides before each killed run.
    let mut files: Vec<(String, usize)> = vec![
        ("big-a.bin".to_owned(), 12 << 20),
        ("big-b.bin".to_owned(), 12 << 20),
    ];
    files.extend((0..360).map(|i| (format!("d{}/f{i}.html", i % 15), 128 << 10)));
    for (i, (path, len)) in files.iter().enumerate() {
        let old = content("old", i, *len);
        common::write(pair.a(), path, "");
        std::fs::write(pair.a().join(path), &old).unwrap();
        versions.insert(path.clone(), vec![old]);
    }
    pair.sync_converged();
    // Each file changes once, on one side: the big ones a little (they go as deltas).
    let mut pending: Vec<(String, Vec<u8>, bool)> = Vec::new();
    for (i, (path, len)) in files.iter().enumerate() {
        let mut new = content("new", i, *len);
        if *len > 1 << 20 {
            new = versions[path][0].clone();
            new[5_000_000..5_000_100].copy_from_slice(&[b'#'; 100]);
        }
        versions.get_mut(path).unwrap().push(new.clone());
        expected.insert(path.clone(), new.clone());
        pending.push((path.clone(), new, i % 2 == 0));
    }
    let spec = format!(
        "{}\n{}\n{}",
        pair.a().display(),
        pair.b().display(),
        pair.state.path().display()
    );
    let child = || {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &spec)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut seed = match std::env::var(SEED_ENV) {
        Ok(seed) => seed.parse().unwrap(),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    let first_seed = seed;
    println!("seed {seed} (replay with {SEED_ENV}={seed})");
    let mut mid_transfer = 0;
    let mut full_run = Duration::from_millis(800);
    // The changes go in over these rounds; while fewer than two kills have landed
    // mid-transfer, more rounds follow (with fresh changes), up to the limit.
    let rounds = 12;
    let max_rounds = 36;
    let per_round = pending.len().div_ceil(rounds);
    let mut generation = 0;
    let mut round = 0;
    while round < rounds || (mid_transfer < 2 && round < max_rounds) {
        if pending.is_empty() {
            // Everything went in: finish the sync, then change a new share of the small
            // files (each on the side it changed on before, so that nothing conflicts).
            pair.sync_converged();
            generation += 1;
            let tag = format!("gen{generation}");
            let small: Vec<(usize, &(String, usize))> = files
                .iter()
                .enumerate()
                .filter(|(_, (_, len))| *len < 1 << 20)
                .collect();
            for k in 0..per_round {
                let (i, (path, len)) = small[((generation - 1) * per_round + k) % small.len()];
                let new = content(&tag, i, *len);
                versions.get_mut(path).unwrap().push(new.clone());
                expected.insert(path.clone(), new.clone());
                pending.push((path.clone(), new, i % 2 == 0));
            }
        }
        // New changes before each run, so that every run has transfers to be killed in.
        for (path, new, on_a) in pending.drain(..per_round.min(pending.len())) {
            let side = if on_a { pair.a() } else { pair.b() };
            std::fs::write(side.join(&path), &new).unwrap();
        }
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Anywhere in a run: the delay is drawn up to the length of the last full run.
        let delay = Duration::from_micros((seed >> 33) % full_run.as_micros() as u64);
        let before = in_step(&pair, &expected);
        let mut process = child();
        let started = Instant::now();
        let mut finished = false;
        while started.elapsed() < delay && !finished {
            std::thread::sleep(Duration::from_millis(1));
            finished = process.try_wait().unwrap().is_some();
        }
        if finished {
            full_run = started.elapsed();
        }
        let _ = process.kill(); // SIGKILL
        process.wait().unwrap();
        check_no_partial(pair.a(), &versions);
        check_no_partial(pair.b(), &versions);
        let after = in_step(&pair, &expected);
        let all = expected.len() - pending.len();
        let temps = [pair.a(), pair.b()]
            .iter()
            .flat_map(|root| snapshot(root).into_keys())
            .filter(|p| p.contains(TEMP_PREFIX))
            .count();
        // Killed with files half-written (temp files) or some but not all installed.
        if !finished && (temps > 0 || (after > before && after < all)) {
            mid_transfer += 1;
        }
        if !finished && after == before && temps == 0 {
            // Killed before any transfer: aim later next time.
            full_run = full_run * 3 / 2;
        }
        println!(
            "round {round}: killed after {:?} (finished: {finished}), in step {before} -> {after} of {all}, {temps} temp files",
            started.elapsed()
        );
        round += 1;
    }
    assert!(
        mid_transfer >= 2,
        "fewer than two kills of {round} landed mid-transfer; change the delays \
         (replay with {SEED_ENV}={first_seed})"
    );
    let outcome = sync_dirs(&pair.config, &SyncOptions::default(), &Silent).unwrap();
    assert!(
        outcome.report.failed.is_empty(),
        "{:?}",
        outcome.report.failed
    );
    for root in [pair.a(), pair.b()] {
        let now = snapshot(root);
        for (path, content) in &expected {
            match &now[path] {
                Snap::File { content: got, .. } => {
                    assert!(got == content, "{path} is not its new version")
                }
                other => panic!("{path}: {other:?}"),
            }
        }
        assert!(
            now.keys().all(|p| !p.contains(TEMP_PREFIX)),
            "temp files left in {}",
            root.display()
        );
    }
    assert_eq!(snapshot(pair.a()), snapshot(pair.b()));
}
