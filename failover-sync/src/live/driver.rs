//! The driving node's loop: connects to the other node, runs a full run on every connect and
//! every `rescan_interval`, and a scoped run over each burst of reported changes; failed paths
//! are tried again.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use failover_core::{SyncOptions, SyncReport};

use super::config::{LiveConfig, LiveOptions};
use super::link::{Delivery, Link, Message, RemoteReplica, RunReport};
use super::node::{update, Input, SharedStatus};
use crate::engine::{
    sync_scope, EngineConfig, RunSummary, Scope, OWNERS_NOT_KEPT, XATTRS_NOT_KEPT,
};
use crate::error::SyncError;
use crate::path::{minimal_scope, RelPath};
use crate::progress::Progress;
use crate::protocol::InProcess;
use crate::replica::LocalReplica;

/// The engine's progress, shown as the backlog.
struct Backlog<'a>(&'a SharedStatus);

impl Progress for Backlog<'_> {
    fn start(&self, items: u64, bytes: u64) {
        update(self.0, |s| {
            s.status.backlog_files = items;
            s.status.backlog_bytes = bytes;
        });
    }
    fn advance(&self, bytes: u64) {
        update(self.0, |s| {
            s.status.backlog_files = s.status.backlog_files.saturating_sub(1);
            s.status.backlog_bytes = s.status.backlog_bytes.saturating_sub(bytes);
        });
    }
    fn finish(&self) {}
}

/// Failed paths are tried again after this long.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Reconnection backoff: from this, doubling...
const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// ... up to this.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The driving node's loop.
pub(super) struct Driver {
    config: LiveConfig,
    options: LiveOptions,
    /// The warnings logged once per start (owners, extended attributes not kept), by prefix.
    said_once: std::collections::BTreeSet<&'static str>,
    local: InProcess<LocalReplica>,
    shared: SharedStatus,
    runtime: tokio::runtime::Handle,
    input: mpsc::Sender<Input>,
    stopping: Arc<AtomicBool>,
    link: Option<(Link, RemoteReplica)>,
    next_link: u64,
    dirty: BTreeSet<RelPath>,
    first_dirty: Option<Instant>,
    last_dirty: Option<Instant>,
    retry: BTreeSet<RelPath>,
    retry_at: Option<Instant>,
    full_needed: bool,
    last_full: Instant,
    in_step_since: Option<SystemTime>,
    waiting: Vec<mpsc::Sender<Result<SyncReport, String>>>,
}

impl Driver {
    pub(super) fn new(
        (config, options): (LiveConfig, LiveOptions),
        replica: LocalReplica,
        shared: SharedStatus,
        runtime: tokio::runtime::Handle,
        input: mpsc::Sender<Input>,
        stopping: Arc<AtomicBool>,
    ) -> Driver {
        Driver {
            config,
            options,
            said_once: std::collections::BTreeSet::new(),
            local: InProcess::new(replica),
            shared,
            runtime,
            input,
            stopping,
            link: None,
            next_link: 1,
            dirty: BTreeSet::new(),
            first_dirty: None,
            last_dirty: None,
            retry: BTreeSet::new(),
            retry_at: None,
            full_needed: true,
            last_full: Instant::now(),
            in_step_since: None,
            waiting: Vec::new(),
        }
    }

    pub(super) fn run(mut self, inputs: &mpsc::Receiver<Input>) {
        let mut backoff = BACKOFF_MIN;
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            if self.link.is_none() {
                match self.connect() {
                    Ok(()) => {
                        backoff = BACKOFF_MIN;
                        self.full_needed = true;
                    }
                    Err(e) => {
                        tracing::warn!(
                            "mirror: cannot reach {} at {}: {e}; trying again in {} ms",
                            self.config.peer_node,
                            self.config.peer,
                            backoff.as_millis()
                        );
                        let until = Instant::now() + backoff;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        while let Some(left) = until.checked_duration_since(Instant::now()) {
                            match inputs.recv_timeout(left) {
                                Ok(Input::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                                    return
                                }
                                Ok(Input::RunNow(reply)) => {
                                    let _ = reply.send(Err(format!(
                                        "the peer {} is not connected",
                                        self.config.peer_node
                                    )));
                                }
                                // Changes while disconnected: the full run on connect finds them.
                                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                            }
                        }
                        continue;
                    }
                }
            }
            let now = Instant::now();
            let settle = (self.config.coalesce / 10).max(Duration::from_millis(1));
            let due = if self.full_needed {
                Some(now)
            } else if let (Some(first), Some(last)) = (self.first_dirty, self.last_dirty) {
                Some((last + settle).min(first + self.config.coalesce))
            } else {
                None
            };
            let due = [
                due,
                self.retry_at,
                Some(self.last_full + self.config.rescan_interval),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now);
            let wait = due.saturating_duration_since(now);
            let input = if wait.is_zero() {
                inputs.try_recv().ok()
            } else {
                match inputs.recv_timeout(wait) {
                    Ok(input) => Some(input),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            };
            match input {
                Some(Input::Stop) => return,
                Some(input) => {
                    self.take(input);
                    continue;
                }
                None => {}
            }
            let now = Instant::now();
            if self.retry_at.is_some_and(|at| at <= now) {
                self.retry_at = None;
                let retry = std::mem::take(&mut self.retry);
                self.mark(retry);
            }
            if now >= self.last_full + self.config.rescan_interval {
                self.full_needed = true;
            }
            let ready = self.full_needed
                || matches!((self.first_dirty, self.last_dirty), (Some(first), Some(last))
                    if now >= last + settle || now >= first + self.config.coalesce);
            if ready && self.link.is_some() {
                self.run_once();
            }
        }
    }

    fn mark(&mut self, paths: impl IntoIterator<Item = RelPath>) {
        let now = Instant::now();
        let before = self.dirty.len();
        self.dirty.extend(paths);
        if self.dirty.len() > before {
            self.first_dirty.get_or_insert(now);
            self.last_dirty = Some(now);
        }
        let queued = self.dirty.len() as u64 + self.retry.len() as u64;
        update(&self.shared, |s| s.queued = queued);
    }

    fn take(&mut self, input: Input) {
        match input {
            Input::Local(paths) => self.mark(paths),
            Input::Link(Delivery::Message(_, message))
                if matches!(*message, Message::Changed(_)) =>
            {
                if let Message::Changed(paths) = *message {
                    self.mark(paths)
                }
            }
            Input::LocalRescan(why) => {
                tracing::warn!("mirror: {why}; a full run follows");
                self.full_needed = true;
            }
            Input::Link(Delivery::Message(_, message)) if matches!(*message, Message::Rescan) => {
                tracing::info!(
                    "mirror: {} asks for a full run (its watcher lost events)",
                    self.config.peer_node
                );
                self.full_needed = true;
            }
            Input::Link(Delivery::Message(_, other)) => {
                tracing::warn!(
                    "mirror: {} sent an unexpected {}; ignored",
                    self.config.peer_node,
                    other.name()
                );
            }
            Input::Link(Delivery::Closed(id, reason)) => {
                if self.link.as_ref().is_some_and(|(link, _)| link.id == id) {
                    self.disconnect(&reason);
                }
            }
            Input::Accepted(stream) => {
                tracing::warn!(
                    peer = stream.peer(),
                    "mirror: this node drives and does not take connections; dropped"
                );
            }
            Input::RunNow(reply) => {
                self.full_needed = true;
                self.waiting.push(reply);
            }
            Input::Stop => {}
        }
    }

    fn connect(&mut self) -> Result<(), SyncError> {
        let peer_config = self.config.peer_config();
        let stream = self
            .runtime
            .block_on(failover_core::peer::connect(self.config.peer, &peer_config))
            .map_err(|e| SyncError::Peer(e.to_string()))?;
        if stream.hello().node != self.config.peer_node {
            return Err(SyncError::Peer(format!(
                "the certificate pinned for {:?} belongs to a node that calls itself {:?}; fix [mirror] peer_node",
                self.config.peer_node,
                stream.hello().node
            )));
        }
        let id = self.next_link;
        self.next_link += 1;
        let (answers_tx, answers) = mpsc::channel();
        let input = self.input.clone();
        let link = Link::start(
            stream,
            id,
            &self.runtime,
            move |delivery| {
                let _ = input.send(Input::Link(delivery));
            },
            Some(answers_tx),
            self.shared
                .lock()
                .map(|s| (s.link_bytes.clone(), s.bwlimit))
                .unwrap_or_default(),
        );
        let remote = RemoteReplica::new(
            link.peer.clone(),
            link.sender(),
            answers,
            self.stopping.clone(),
        );
        tracing::info!(
            "mirror: connected to {} at {}",
            self.config.peer_node,
            link.peer
        );
        self.link = Some((link, remote));
        update(&self.shared, |s| {
            s.status.peer_connected = true;
        });
        Ok(())
    }

    fn disconnect(&mut self, reason: &str) {
        if self.link.take().is_some() {
            tracing::warn!(
                "mirror: link to {} lost: {reason}; reconnecting",
                self.config.peer_node
            );
        }
        update(&self.shared, |s| s.status.peer_connected = false);
    }

    /// One run: full, or over the paths reported since the last one.
    fn run_once(&mut self) {
        let full = self.full_needed;
        let scope = if full {
            Scope::All
        } else {
            Scope::Paths(minimal_scope(std::mem::take(&mut self.dirty)))
        };
        if full {
            self.dirty.clear();
        }
        self.full_needed = false;
        self.first_dirty = None;
        self.last_dirty = None;
        update(&self.shared, |s| s.queued = self.retry.len() as u64);
        let started = SystemTime::now();
        let began = Instant::now();
        let engine = EngineConfig {
            max_delete_share: self.config.max_delete_share,
            owners: self.options.owners,
            xattrs: self.options.xattrs,
        };
        let Some((_, remote)) = self.link.as_mut() else {
            return;
        };
        let result = sync_scope(
            &mut self.local,
            remote,
            &engine,
            &SyncOptions::default(),
            &Backlog(&self.shared),
            &scope,
        );
        if full {
            self.last_full = Instant::now();
        }
        let waiting = std::mem::take(&mut self.waiting);
        match result {
            Ok(outcome) => {
                self.after_run(&outcome, started, began.elapsed(), full);
                for reply in waiting {
                    let _ = reply.send(Ok(outcome.report.clone()));
                }
            }
            Err(SyncError::Refused(why)) => {
                let problem = format!(
                    "{why} (live mirror: restore the files, or raise [mirror] max_delete and reload)"
                );
                tracing::error!("mirror: run refused: {problem}");
                update(&self.shared, |s| s.status.problem = Some(problem.clone()));
                self.report_to_peer();
                for reply in waiting {
                    let _ = reply.send(Err(problem.clone()));
                }
            }
            Err(e) if self.stopping.load(Ordering::SeqCst) => {
                for reply in waiting {
                    let _ = reply.send(Err(format!("the mirror is stopping ({e})")));
                }
            }
            Err(e) => {
                tracing::warn!("mirror: run failed: {e}");
                for reply in waiting {
                    let _ = reply.send(Err(e.to_string()));
                }
                // Anything else breaks the conversation: start again from a full run.
                self.disconnect(&e.to_string());
                self.full_needed = true;
            }
        }
    }

    fn after_run(&mut self, outcome: &RunSummary, started: SystemTime, took: Duration, full: bool) {
        let report = &outcome.report;
        for conflict in &report.conflicts {
            tracing::warn!(
                path = %conflict.path.display(),
                "mirror: conflict: {} changed on both nodes; {}'s version kept, the other kept as {}",
                conflict.path.display(),
                conflict.winner,
                conflict.kept_as.display()
            );
        }
        for failed in &report.failed {
            tracing::warn!(
                path = %failed.path.display(),
                "mirror: {} not mirrored: {}; tried again in {} s",
                failed.path.display(),
                failed.reason,
                RETRY_AFTER.as_secs()
            );
            if let Some(path) = failed.path.to_str().and_then(|p| RelPath::new(p).ok()) {
                self.retry.insert(path);
            }
        }
        for warning in outcome.warnings.iter().chain(&outcome.problems) {
            // Said once per start: they hold until the config or the file system changes.
            let once = [OWNERS_NOT_KEPT, XATTRS_NOT_KEPT]
                .into_iter()
                .find(|prefix| warning.starts_with(prefix));
            if let Some(prefix) = once {
                if !self.said_once.insert(prefix) {
                    continue;
                }
            }
            tracing::warn!("mirror: {warning}");
        }
        if !self.retry.is_empty() && self.retry_at.is_none() {
            self.retry_at = Some(Instant::now() + RETRY_AFTER);
        }
        if report.failed.is_empty() {
            self.in_step_since = Some(started);
        }
        if report.copied + report.deleted > 0 || full {
            tracing::info!(
                took_ms = took.as_millis() as u64,
                "mirror: {} run: {}",
                if full { "full" } else { "change" },
                outcome.summary()
            );
        } else {
            tracing::debug!(took_ms = took.as_millis() as u64, "mirror: nothing to do");
        }
        let problem = report.failed.first().map(|f| {
            format!(
                "{} path{} not mirrored, e.g. {}: {}",
                report.failed.len(),
                if report.failed.len() == 1 { "" } else { "s" },
                f.path.display(),
                f.reason
            )
        });
        if !report.conflicts.is_empty() || !report.failed.is_empty() {
            let sink = self.shared.lock().ok().and_then(|s| s.reports.clone());
            if let Some(sink) = sink {
                sink(report);
            }
        }
        let queued = self.dirty.len() as u64 + self.retry.len() as u64;
        let in_step_since = self.in_step_since;
        update(&self.shared, |s| {
            s.status.conflicts += report.conflicts.len() as u64;
            s.status.runs += 1;
            s.status.bytes_transferred += report.bytes_transferred;
            s.status.last_sync = in_step_since;
            s.status.backlog_files = 0;
            s.status.backlog_bytes = 0;
            s.status.problem = problem;
            s.queued = queued;
        });
        self.report_to_peer();
    }

    fn report_to_peer(&self) {
        let Some((link, _)) = &self.link else { return };
        let status = self
            .shared
            .lock()
            .map(|s| (s.status.clone(), s.queued))
            .unwrap_or_default();
        let _ = link.send(Message::Report(RunReport {
            in_step_since: status.0.last_sync,
            backlog_files: status.0.backlog_files + status.1,
            backlog_bytes: status.0.backlog_bytes,
            conflicts: status.0.conflicts,
            problem: status.0.problem,
        }));
    }
}
