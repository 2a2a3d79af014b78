//! The watcher: inotify (through the `notify` crate) on the whole tree, turning events into
//! the paths a run must look at, minus the mirror's own writes (see [`Echo`]).
//!
//! New directories are watched without a race: when one appears, this thread asks for a
//! recursive watch on it and waits until it is in place before it reports the directory, and
//! the run that follows scans the directory whole, so a file made in it before the watch
//! existed is found by the scan and one made after by the watch.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use notify::event::{CreateKind, ModifyKind, RemoveKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};

use crate::echo::{Echo, Verdict};
use crate::error::SyncError;
use crate::path::{RelPath, TEMP_PREFIX};
use crate::scan::Excludes;

/// What the watcher reports.
#[derive(Debug)]
pub(crate) enum WatchReport {
    /// These paths changed.
    Changed(Vec<RelPath>),
    /// Events were lost (queue overflow, watch limit): a full run is needed, for this reason.
    Rescan(String),
}

enum Raw {
    Event(notify::Result<notify::Event>),
    Stop,
}

/// A watcher thread; stopped and joined by [`TreeWatcher::stop`] (or when dropped).
pub(crate) struct TreeWatcher {
    control: mpsc::Sender<Raw>,
    thread: Option<JoinHandle<()>>,
}

/// How long the mirror's own pending writes are waited for before events are looked at again.
const PENDING_RECHECK: Duration = Duration::from_millis(2);

impl TreeWatcher {
    /// Watches `root` (canonical) and reports to `report` from its own thread.
    pub fn start(
        root: PathBuf,
        excludes: Excludes,
        echo: Echo,
        report: impl Fn(WatchReport) + Send + 'static,
    ) -> Result<TreeWatcher, SyncError> {
        let (control, raw) = mpsc::channel::<Raw>();
        let events = control.clone();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = events.send(Raw::Event(event));
        })
        .map_err(|e| SyncError::Root {
            path: root.clone(),
            reason: format!("cannot start the watcher: {e}"),
        })?;
        warn_if_watches_run_short(&root);
        if let Err(e) = watcher.watch(&root, RecursiveMode::Recursive) {
            if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                tracing::warn!("{}", watch_limit_message(&root));
            } else {
                return Err(SyncError::Root {
                    path: root,
                    reason: format!("cannot watch: {e}"),
                });
            }
        }
        let root_fd = rustix::fs::open(
            &root,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| SyncError::io(&root, e.into()))?;
        let thread = std::thread::Builder::new()
            .name("mirror-watch".to_owned())
            .spawn(move || {
                let mut state = State {
                    root,
                    root_fd,
                    excludes,
                    echo,
                    watcher,
                    pending: BTreeSet::new(),
                };
                state.run(&raw, &report);
            })
            .map_err(|e| SyncError::Peer(format!("cannot start the watcher thread: {e}")))?;
        Ok(TreeWatcher {
            control,
            thread: Some(thread),
        })
    }

    /// Stops watching and waits for the thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let _ = self.control.send(Raw::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TreeWatcher {
    fn drop(&mut self) {
        self.halt();
    }
}

struct State {
    root: PathBuf,
    root_fd: OwnedFd,
    excludes: Excludes,
    echo: Echo,
    watcher: notify::RecommendedWatcher,
    /// Paths seen and not reported yet (the mirror may still be writing them).
    pending: BTreeSet<RelPath>,
}

impl State {
    fn run(&mut self, raw: &mpsc::Receiver<Raw>, report: &dyn Fn(WatchReport)) {
        loop {
            let first = if self.pending.is_empty() {
                raw.recv().ok()
            } else {
                match raw.recv_timeout(PENDING_RECHECK) {
                    Ok(event) => Some(event),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            };
            if let Some(first) = first {
                if !self.take(first, report) {
                    return;
                }
            } else if self.pending.is_empty() {
                return;
            }
            while let Ok(more) = raw.try_recv() {
                if !self.take(more, report) {
                    return;
                }
            }
            let mut changed = Vec::new();
            let root = self.root_fd.as_fd();
            self.pending
                .retain(|path| match self.echo.verdict(root, path) {
                    Verdict::Echo => false,
                    Verdict::Pending => true,
                    Verdict::Change => {
                        changed.push(path.clone());
                        false
                    }
                });
            if !changed.is_empty() {
                report(WatchReport::Changed(changed));
            }
        }
    }

    /// Takes one event in; false on stop.
    fn take(&mut self, raw: Raw, report: &dyn Fn(WatchReport)) -> bool {
        let event = match raw {
            Raw::Stop => return false,
            Raw::Event(Ok(event)) => event,
            Raw::Event(Err(e)) => {
                if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                    tracing::warn!("{}", watch_limit_message(&self.root));
                    report(WatchReport::Rescan(
                        "the inotify watch limit was hit".to_owned(),
                    ));
                } else {
                    tracing::warn!(root = %self.root.display(), "mirror watcher: {e}");
                    report(WatchReport::Rescan(format!("the watcher failed: {e}")));
                }
                return true;
            }
        };
        if event.need_rescan() {
            report(WatchReport::Rescan(
                "the kernel's event queue overflowed (raise fs.inotify.max_queued_events)"
                    .to_owned(),
            ));
            return true;
        }
        if matches!(
            event.kind,
            EventKind::Access(notify::event::AccessKind::Open(_))
        ) || matches!(
            event.kind,
            EventKind::Access(notify::event::AccessKind::Close(
                notify::event::AccessMode::Read
            ))
        ) {
            return true;
        }
        let folder = matches!(
            event.kind,
            EventKind::Create(CreateKind::Folder) | EventKind::Remove(RemoveKind::Folder)
        );
        let maybe_new_dir = matches!(
            event.kind,
            EventKind::Create(CreateKind::Folder)
                | EventKind::Modify(ModifyKind::Name(RenameMode::To))
        );
        for path in &event.paths {
            let Some(rel) = self.relative(path) else {
                continue;
            };
            if self.excludes.is_excluded(rel.as_str(), folder) {
                continue;
            }
            if maybe_new_dir && path.is_dir() && !path.is_symlink() {
                // In place before the directory is reported, hence before it is scanned.
                if let Err(e) = self.watcher.watch(path, RecursiveMode::Recursive) {
                    if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                        tracing::warn!("{}", watch_limit_message(&self.root));
                    }
                }
            }
            self.pending.insert(rel);
        }
        true
    }

    fn relative(&self, path: &Path) -> Option<RelPath> {
        let rel = path.strip_prefix(&self.root).ok()?.to_str()?;
        if rel.is_empty() || rel.rsplit('/').next()?.starts_with(TEMP_PREFIX) {
            return None;
        }
        RelPath::new(rel).ok()
    }
}

/// The inotify watch limit of this user, if it can be read.
fn max_user_watches() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn watch_limit_message(root: &Path) -> String {
    format!(
        "mirror: the inotify watch limit ({}) is too low to watch every directory of {}; \
         changes in unwatched directories wait for the periodic rescan. Fix: \
         `sysctl fs.inotify.max_user_watches=524288` and keep it with \
         `echo fs.inotify.max_user_watches=524288 > /etc/sysctl.d/90-failover.conf`",
        max_user_watches()
            .map(|n| n.to_string())
            .unwrap_or_else(|| "unknown".to_owned()),
        root.display()
    )
}

/// Warns before watching when the tree has nearly as many directories as the limit allows
/// (the limit is shared by every program of the user).
fn warn_if_watches_run_short(root: &Path) {
    let Some(limit) = max_user_watches() else {
        return;
    };
    let mut dirs: u64 = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        dirs += 1;
        if dirs > limit {
            break;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
    if dirs * 10 > limit * 9 {
        tracing::warn!(directories = dirs, "{}", watch_limit_message(root));
    }
}
