//! Helpers shared by the integration tests: a pair of replicas in temp directories and a
//! snapshot of a tree that compares what a user would compare.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use failover_core::SyncOptions;
use failover_sync::{sync_dirs, LocalPairConfig, RunSummary, Silent, SyncError};

/// Two replicas and a state directory, removed at the end of the test.
pub struct Pair {
    pub a: tempfile::TempDir,
    pub b: tempfile::TempDir,
    pub state: tempfile::TempDir,
    pub config: LocalPairConfig,
}

impl Pair {
    pub fn new() -> Self {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let mut config = LocalPairConfig::new(a.path(), b.path());
        config.state_dir = state.path().to_path_buf();
        config.fsync = false;
        Pair {
            a,
            b,
            state,
            config,
        }
    }

    pub fn a(&self) -> &Path {
        self.a.path()
    }

    pub fn b(&self) -> &Path {
        self.b.path()
    }

    pub fn sync(&self) -> RunSummary {
        self.try_sync(false).unwrap()
    }

    pub fn try_sync(&self, force: bool) -> Result<RunSummary, SyncError> {
        sync_dirs(
            &self.config,
            &SyncOptions {
                force,
                dry_run: false,
            },
            &Silent,
        )
    }

    /// Syncs and asserts the two trees are identical and a second run does nothing.
    pub fn sync_converged(&self) -> RunSummary {
        let outcome = self.try_sync(true).unwrap();
        assert!(
            outcome.report.failed.is_empty(),
            "{:?}",
            outcome.report.failed
        );
        assert_eq!(snapshot(self.a()), snapshot(self.b()));
        let again = self.try_sync(false).unwrap();
        assert_eq!(
            (
                again.report.copied,
                again.report.deleted,
                again.report.conflicts.len()
            ),
            (0, 0, 0),
            "second run changed something: {:?}",
            again.changes
        );
        outcome
    }
}

/// What a path is, as a user would compare two trees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Snap {
    File { content: Vec<u8>, mode: u32 },
    Dir { mode: u32 },
    Link(String),
}

/// Every path beneath `root`, relative. A path that vanishes while it is read (a live mirror
/// renaming its temp files into place) is left out: the tree is in flux, and callers that wait
/// for two trees to agree take another snapshot.
pub fn snapshot(root: &Path) -> BTreeMap<String, Snap> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// `result`, or `None` when the path is gone; any other error fails the test.
fn unless_gone<T>(result: std::io::Result<T>, path: &Path) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => panic!("{}: {error}", path.display()),
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Snap>) {
    let Some(entries) = unless_gone(std::fs::read_dir(dir), dir) else {
        return;
    };
    for entry in entries {
        let Some(entry) = unless_gone(entry, dir) else {
            continue;
        };
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let Some(meta) = unless_gone(std::fs::symlink_metadata(&path), &path) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let Some(target) = unless_gone(std::fs::read_link(&path), &path) else {
                continue;
            };
            out.insert(rel, Snap::Link(target.to_string_lossy().into_owned()));
        } else if meta.is_dir() {
            out.insert(rel, Snap::Dir { mode });
            walk(root, &path, out);
        } else {
            let Some(content) = unless_gone(std::fs::read(&path), &path) else {
                continue;
            };
            out.insert(rel, Snap::File { content, mode });
        }
    }
}

/// Writes `content` to `root/rel`, creating parents.
pub fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Sets the mtime of `root/rel` to `seconds` since the epoch.
pub fn set_mtime(root: &Path, rel: &str, seconds: u64) {
    let file = std::fs::File::options()
        .write(true)
        .open(root.join(rel))
        .unwrap();
    file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds))
        .unwrap();
}

pub fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap()
}

/// Every regular file's content beneath `root`.
pub fn contents(root: &Path) -> Vec<Vec<u8>> {
    snapshot(root)
        .into_values()
        .filter_map(|s| match s {
            Snap::File { content, .. } => Some(content),
            _ => None,
        })
        .collect()
}

/// Sets ACL entries on `path` with Debian's `setfacl` (`args` as its command line takes them).
pub fn setfacl(args: &[&str], path: &Path) {
    let out = std::process::Command::new(failover_testkit::program("setfacl", "acl"))
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "setfacl {args:?}: {out:?}");
}

/// `getfacl`'s text of `path`, numeric, without the header naming the file.
pub fn getfacl(path: &Path) -> String {
    let out = std::process::Command::new(failover_testkit::program("getfacl", "acl"))
        .args(["--omit-header", "--numeric"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "getfacl: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Sets the extended attribute `name` of `path` (never through a symlink).
pub fn set_attr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty()).unwrap();
}

/// The extended attribute `name` of `path`, if it has one.
pub fn attr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut value = vec![0u8; 256];
    match rustix::fs::lgetxattr(path, name, &mut value) {
        Ok(len) => Some(value[..len].to_vec()),
        Err(rustix::io::Errno::NODATA) => None,
        Err(e) => panic!("{}: {name}: {e}", path.display()),
    }
}
