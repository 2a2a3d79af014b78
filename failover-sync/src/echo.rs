//! Echo suppression: what the mirror itself wrote into a replica must not come back from the
//! watcher as a change to send to the other side.
//!
//! The replica marks each path before it changes it and records what it left there (the
//! entry from `fstat` of its own file descriptor, or "absent"). The watcher asks for a
//! [`Verdict`] on every path an event names: a path whose `lstat` is still exactly what the
//! mirror left (inode, ctime, size) is the mirror's own echo. A user's edit always moves the
//! ctime, so it is never mistaken for an echo.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::entry::Entry;
use crate::fsx;
use crate::path::RelPath;

/// How long a record is kept: the watcher's events come within milliseconds.
const KEEP: Duration = Duration::from_secs(30);

/// What the mirror did to a path.
#[derive(Clone, Debug)]
enum Mark {
    /// Being changed now: the watcher must wait.
    InFlight,
    /// Left as this (`None`: absent).
    Left(Option<Fingerprint>),
}

/// What identifies a path's state for this purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    ino: u64,
    ctime_ns: i64,
    size: u64,
}

impl From<&Entry> for Fingerprint {
    fn from(entry: &Entry) -> Self {
        Fingerprint {
            ino: entry.stat.ino,
            ctime_ns: entry.stat.ctime_ns,
            size: entry.size(),
        }
    }
}

/// Whether an event about a path is the mirror's own doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The path is what the mirror left there: not a change.
    Echo,
    /// Someone else changed it: a change to propagate.
    Change,
    /// The mirror is changing it right now: ask again shortly.
    Pending,
}

/// The shared record of what the mirror wrote (cheap to clone).
#[derive(Clone, Debug, Default)]
pub struct Echo {
    marks: Arc<Mutex<HashMap<RelPath, (Mark, Instant)>>>,
}

impl Echo {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// The mirror is about to change `path`.
    pub(crate) fn begin(&self, path: &RelPath) {
        if let Ok(mut marks) = self.marks.lock() {
            if marks.len() > 4096 {
                let now = Instant::now();
                marks.retain(|_, (mark, at)| {
                    matches!(mark, Mark::InFlight) || now.duration_since(*at) < KEEP
                });
            }
            marks.insert(path.clone(), (Mark::InFlight, Instant::now()));
        }
    }

    /// The mirror left `path` as `entry` (`None`: absent).
    pub(crate) fn left(&self, path: &RelPath, entry: Option<&Entry>) {
        if let Ok(mut marks) = self.marks.lock() {
            marks.insert(
                path.clone(),
                (Mark::Left(entry.map(Fingerprint::from)), Instant::now()),
            );
        }
    }

    /// The change of `path` failed or its outcome is unknown: events about it are changes.
    pub(crate) fn forget(&self, path: &RelPath) {
        if let Ok(mut marks) = self.marks.lock() {
            marks.remove(path);
        }
    }

    /// Whether `path` beneath `root` is still what the mirror left there.
    pub fn verdict(&self, root: BorrowedFd<'_>, path: &RelPath) -> Verdict {
        let Ok(mut marks) = self.marks.lock() else {
            return Verdict::Change;
        };
        let left = match marks.get(path) {
            None => return Verdict::Change,
            Some((Mark::InFlight, _)) => return Verdict::Pending,
            Some((Mark::Left(_), at)) if at.elapsed() > KEEP => {
                marks.remove(path);
                return Verdict::Change;
            }
            Some((Mark::Left(left), _)) => *left,
        };
        let now = fsx::open_parent(root, path)
            .and_then(|(dir, name)| fsx::lstat(std::os::fd::AsFd::as_fd(&dir), name))
            .ok()
            .map(|stat| {
                stat.map(|stat| Fingerprint {
                    ino: fsx::stat_key(&stat).ino,
                    ctime_ns: fsx::stat_key(&stat).ctime_ns,
                    size: if fsx::file_type(&stat) == rustix::fs::FileType::RegularFile {
                        stat.st_size as u64
                    } else {
                        0
                    },
                })
            });
        match now {
            // A parent that vanished or became a symlink: the path is absent.
            None if left.is_none() => Verdict::Echo,
            Some(now) if now == left => Verdict::Echo,
            _ => {
                marks.remove(path);
                Verdict::Change
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn the_mirrors_own_write_is_an_echo_and_a_later_edit_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = fsx::open_dir(
            rustix::fs::open(
                dir.path(),
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
                rustix::fs::Mode::empty(),
            )
            .unwrap()
            .as_fd(),
            None,
        )
        .unwrap();
        let echo = Echo::new();
        let path = RelPath::new("a.txt").unwrap();
        assert_eq!(echo.verdict(root.as_fd(), &path), Verdict::Change);
        echo.begin(&path);
        assert_eq!(echo.verdict(root.as_fd(), &path), Verdict::Pending);
        std::fs::write(dir.path().join("a.txt"), "x").unwrap();
        let entry = fsx::current_entry(root.as_fd(), "a.txt").unwrap().unwrap();
        echo.left(&path, Some(&entry));
        assert_eq!(echo.verdict(root.as_fd(), &path), Verdict::Echo);
        assert_eq!(echo.verdict(root.as_fd(), &path), Verdict::Echo);
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dir.path().join("a.txt"), "y").unwrap();
        assert_eq!(echo.verdict(root.as_fd(), &path), Verdict::Change);

        let gone = RelPath::new("gone/b.txt").unwrap();
        echo.begin(&gone);
        echo.left(&gone, None);
        assert_eq!(echo.verdict(root.as_fd(), &gone), Verdict::Echo);
    }
}
