//! The Debian package: `packaging/deb/build.sh` builds it around the tested binary, and it is
//! installed on a fresh machine — an empty root directory with only what `base-passwd` gives
//! one (`dpkg --root`, its maintainer scripts run with `DPKG_ROOT` by `--force-script-chrootless`,
//! so this machine's users and `/var` are never touched). Every file lands where
//! docs/operations.md says, the user and the state directory are made, `failoverd check` accepts
//! the shipped config, and a purge takes it all away again.
//!
//! Needs root (the package's files and the state directory get their owners) and dpkg.
#![allow(clippy::unwrap_used)] // tests

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e} (apt-get install dpkg)"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The package built around the binary under test (gzip: quick for a debug binary).
fn build_package(out: &Path) -> PathBuf {
    let output = run(Command::new("bash")
        .arg(Path::new(REPO).join("packaging/deb/build.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_failoverd"), "--out"])
        .arg(out)
        .args(["--compression", "gzip"]));
    PathBuf::from(stdout(&output).trim())
}

/// A fresh machine's root as far as dpkg and the maintainer scripts see it: an empty dpkg
/// database, and the users and groups `base-passwd` installs first on every Debian.
fn fresh_root(root: &Path) {
    let admin = root.join("var/lib/dpkg");
    for dir in ["info", "updates", "triggers"] {
        std::fs::create_dir_all(admin.join(dir)).unwrap();
    }
    std::fs::write(admin.join("status"), "").unwrap();
    std::fs::write(admin.join("available"), "").unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    for (master, file) in [("passwd.master", "passwd"), ("group.master", "group")] {
        std::fs::copy(
            Path::new("/usr/share/base-passwd").join(master),
            root.join("etc").join(file),
        )
        .unwrap_or_else(|e| panic!("{master}: {e} (apt-get install base-passwd)"));
    }
}

/// `dpkg --root=ROOT ARGS`, the scripts run here with DPKG_ROOT; the fresh root has no libc6
/// or passwd package in its database (the machine running the test has both), hence
/// `--force-depends`.
fn dpkg(root: &Path, args: &[&str]) -> Output {
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--force-script-chrootless", "--force-depends"])
        .args(args))
}

/// The paths the table of docs/operations.md's "The Debian package" puts: each row's first
/// cell, and the patterns (`*` for any part of a name) its text gives; a trailing `/` stands for
/// everything under a directory.
fn documented_paths() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(REPO).join("docs/operations.md")).unwrap();
    let section = text
        .split("\n## The Debian package\n")
        .nth(1)
        .expect("docs/operations.md has a section \"## The Debian package\"");
    let section = section.split("\n## ").next().unwrap();
    let mut paths = Vec::new();
    for row in section.lines().filter(|line| line.starts_with("| `/")) {
        let codes: Vec<&str> = row.split('`').skip(1).step_by(2).collect();
        paths.push(codes[0].to_owned());
        paths.extend(
            codes[1..]
                .iter()
                .filter(|code| code.starts_with('/') && code.contains('*'))
                .map(|code| (*code).to_owned()),
        );
    }
    paths
}

fn matches(pattern: &str, path: &str) -> bool {
    if let Some(dir) = pattern.strip_suffix('/') {
        return path.starts_with(&format!("{dir}/"));
    }
    match pattern.split_once('*') {
        Some((head, tail)) => {
            path.len() >= head.len() + tail.len() && path.starts_with(head) && path.ends_with(tail)
        }
        None => path == pattern,
    }
}

#[test]
fn the_debian_package_installs_on_a_fresh_machine_where_the_docs_say() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root: dpkg gives the package's files and state directory their owners"
    );
    let dir = tempfile::tempdir().unwrap();
    let deb = build_package(&dir.path().join("out"));
    let root = dir.path().join("root");
    fresh_root(&root);

    // What the package holds, against what the docs say it holds.
    let listing = stdout(&run(Command::new("dpkg-deb").arg("--contents").arg(&deb)));
    let files: BTreeSet<String> = listing
        .lines()
        .filter(|line| !line.starts_with('d'))
        .map(|line| {
            line.rsplit(' ')
                .next()
                .unwrap()
                .trim_start_matches('.')
                .to_owned()
        })
        .collect();
    let documented = documented_paths();
    assert!(documented.len() >= 10, "{documented:?}");
    for file in &files {
        assert!(
            documented.iter().any(|pattern| matches(pattern, file)),
            "{file} is in the package but not in docs/operations.md"
        );
    }

    let depends = stdout(&run(Command::new("dpkg-deb")
        .args(["--field"])
        .arg(&deb)
        .arg("Depends")));
    for library in ["libc6", "libgcc-s1", "passwd"] {
        assert!(depends.contains(library), "Depends: {depends}");
    }

    dpkg(&root, &["--install", deb.to_str().unwrap()]);
    let status = stdout(&dpkg(&root, &["--status", "failoverd"]));
    assert!(status.contains("Status: install ok installed"), "{status}");
    for conffile in [
        "/etc/failoverd/failoverd.toml",
        "/etc/failoverd/db.example.com",
    ] {
        assert!(status.contains(&format!(" {conffile} ")), "{status}");
    }
    for pattern in &documented {
        let found = if pattern.contains('*') || pattern.ends_with('/') {
            files.iter().any(|file| matches(pattern, file))
        } else {
            root.join(pattern.trim_start_matches('/')).exists()
        };
        assert!(found, "docs/operations.md names {pattern}, not installed");
    }

    // The maintainer scripts: the system user and group, the state directory, the config's group.
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let user: Vec<&str> = passwd
        .lines()
        .find(|line| line.starts_with("failoverd:"))
        .unwrap_or_else(|| panic!("no user failoverd in {passwd}"))
        .split(':')
        .collect();
    assert_eq!(user[5], "/var/lib/failoverd");
    assert_eq!(user[6], "/usr/sbin/nologin");
    let uid: u32 = user[2].parse().unwrap();
    assert!(uid < 1000, "not a system user: {uid}");
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    let gid: u32 = group
        .lines()
        .find(|line| line.starts_with("failoverd:"))
        .unwrap()
        .split(':')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    let state = std::fs::metadata(root.join("var/lib/failoverd")).unwrap();
    assert_eq!((state.uid(), state.gid()), (uid, gid));
    assert_eq!(state.permissions().mode() & 0o7777, 0o750);
    let config_dir = std::fs::metadata(root.join("etc/failoverd")).unwrap();
    assert_eq!((config_dir.uid(), config_dir.gid()), (0, gid));
    assert_eq!(config_dir.permissions().mode() & 0o7777, 0o750);

    // The installed program accepts the installed config.
    let binary = root.join("usr/bin/failoverd");
    let checked = run(Command::new(&binary)
        .arg("check")
        .arg("--config")
        .arg(root.join("etc/failoverd/failoverd.toml")));
    assert!(
        stdout(&checked).contains("is valid"),
        "{}",
        stdout(&checked)
    );

    // The units start that program with that config, and point at installed documentation.
    for unit in ["failoverd.service", "failoverd-witness.service"] {
        let text = std::fs::read_to_string(root.join("usr/lib/systemd/system").join(unit)).unwrap();
        let exec_start = text
            .lines()
            .find(|line| line.starts_with("ExecStart="))
            .unwrap();
        assert!(
            exec_start.starts_with("ExecStart=/usr/bin/failoverd ")
                && exec_start.ends_with(" --config /etc/failoverd/failoverd.toml"),
            "{unit}: {exec_start}"
        );
        assert!(
            !text.contains("/usr/local/"),
            "{unit} names /usr/local:\n{text}"
        );
        let documentation = text
            .lines()
            .find_map(|line| line.strip_prefix("Documentation=file://"))
            .unwrap();
        assert!(
            root.join(documentation.trim_start_matches('/')).is_file(),
            "{unit}: {documentation} not installed"
        );
    }

    // The man pages: one per command, each listed in the main page.
    let page = |name: &str| {
        stdout(&run(Command::new("gzip").arg("-dc").arg(
            root.join("usr/share/man/man1").join(format!("{name}.1.gz")),
        )))
    };
    let main_page = page("failoverd");
    assert!(main_page.contains(".TH failoverd 1"), "{main_page}");
    for sub in [
        "run",
        "check",
        "status",
        "witness",
        "keygen",
        "completions",
        "man",
    ] {
        assert!(
            main_page.contains(&format!("failoverd\\-{sub}(1)")),
            "{sub} not in the main page"
        );
        assert!(page(&format!("failoverd-{sub}")).contains(&format!(".TH failoverd-{sub} 1")));
    }

    // bash loads the completion and completes the subcommands.
    let completion = root.join("usr/share/bash-completion/completions/failoverd");
    let completed = run(Command::new("bash").arg("-c").arg(format!(
        "source {} && COMP_WORDS=(failoverd ch) COMP_CWORD=1 && _failoverd failoverd ch failoverd && echo \"${{COMPREPLY[@]}}\"",
        completion.display()
    )));
    assert_eq!(stdout(&completed).trim(), "check");
    for (file, needle) in [
        (
            "usr/share/zsh/vendor-completions/_failoverd",
            "#compdef failoverd",
        ),
        (
            "usr/share/fish/vendor_completions.d/failoverd.fish",
            "complete -c failoverd",
        ),
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(text.contains(needle), "{file}");
    }

    // A purge leaves nothing of it.
    dpkg(&root, &["--purge", "failoverd"]);
    for gone in ["usr/bin/failoverd", "var/lib/failoverd", "etc/failoverd"] {
        assert!(!root.join(gone).exists(), "{gone} left after purge");
    }
}
