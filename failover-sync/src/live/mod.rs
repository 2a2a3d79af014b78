//! The live mirror between two servers: each node watches its root, the two talk over an
//! authenticated peer link (TLS with pinned certificates, service `mirror`), and changes reach
//! the other side within a fraction of a second.
//!
//! **Who drives.** One engine reconciles both replicas, so one node drives: the node whose
//! name sorts first. It connects to the other, runs a full [`sync_pair`] on every connect
//! (both sides may have changed while the link was down: the engine's rules decide, nothing is
//! lost), then a scoped run ([`sync_scope`]) for every burst of changes that its own watcher
//! or the other node's reports, and a full run every `rescan_interval` and whenever a watcher
//! lost events. The other node listens, serves its replica to the driver's requests, and
//! forwards what its watcher sees. One driver means no two runs ever race on the same paths
//! and both sides' indexes move together, which a "each side pushes" design would have to
//! buy with distributed locking.
//!
//! **Timing.** A run starts once changes have been quiet for a tenth of `coalesce`, and at
//! the latest `coalesce` after the first of them, so a single save goes at once and a burst is
//! taken in slices.
//!
//! **Echoes.** What a run writes is recorded by the replica ([`Echo`]); the watcher drops
//! events about paths that are still exactly what the mirror left, so nothing bounces back.

mod check;
mod link;
mod watch;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use failover_core::peer::{Fingerprint, Identity, PeerConfig, PeerListener};
use failover_core::{FileMirror, MirrorError, MirrorStatus, SyncOptions, SyncReport};

use crate::echo::Echo;
use crate::engine::{sync_scope, EngineConfig, Outcome, Scope};
use crate::error::SyncError;
use crate::path::{minimal_scope, RelPath};
use crate::progress::Progress;
use crate::protocol::{Handler, InProcess};
use crate::replica::{LocalReplica, ReplicaConfig};
use crate::scan::Excludes;

pub use check::{MirrorCheck, DEFAULT_MAX_LAG};
pub use link::{encode, Assembler, Message, RemoteReplica, RunReport, MAX_MESSAGE, SERVICE};
use link::{Delivery, Link};
use watch::{TreeWatcher, WatchReport};

/// Most a change waits for the changes after it before a run starts, unless configured otherwise.
pub const DEFAULT_COALESCE: Duration = Duration::from_millis(100);
/// Time between two full runs (a rescan of both trees), unless configured otherwise.
pub const DEFAULT_RESCAN_INTERVAL: Duration = Duration::from_secs(3600);
/// Share of the files of the last sync one run may delete, unless configured otherwise.
pub const DEFAULT_MAX_DELETE_SHARE: f64 = 0.5;

/// How one node's live mirror is set up.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// The directory mirrored (must exist).
    pub root: PathBuf,
    /// This node's name (names its conflict copies).
    pub node: String,
    /// The other node's name: it must be what the other node says in the link's hello.
    pub peer_node: String,
    /// Where this node listens for the other (used when the other drives).
    pub listen: SocketAddr,
    /// Where the other node listens (used when this node drives).
    pub peer: SocketAddr,
    /// This node's certificate and key.
    pub identity: Arc<Identity>,
    /// The other node's certificate fingerprint.
    pub peer_fingerprint: Fingerprint,
    /// Where the index and lock are kept.
    pub state_dir: PathBuf,
    /// Exclude patterns (gitignore syntax).
    pub excludes: Vec<String>,
    /// Most a change waits for the changes after it before a run starts.
    pub coalesce: Duration,
    /// Time between two full runs.
    pub rescan_interval: Duration,
    /// Share of the files of the last sync one run may delete (0.0 – 1.0).
    pub max_delete_share: f64,
    /// fsync before rename and before the index is written.
    pub fsync: bool,
}

impl LiveConfig {
    /// Whether this node drives the runs (its name sorts first).
    pub fn drives(&self) -> bool {
        self.node < self.peer_node
    }

    fn peer_config(&self) -> PeerConfig {
        PeerConfig::new(
            self.identity.clone(),
            vec![self.peer_fingerprint],
            SERVICE,
            &self.node,
        )
    }
}

/// What the status shows, shared by the threads.
#[derive(Default)]
struct Shared {
    status: MirrorStatus,
    /// Paths waiting for a run (not yet in the engine's plan).
    queued: u64,
    /// Told of every run that had conflicts or failed paths (the daemon notifies them).
    reports: Option<ReportSink>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("status", &self.status)
            .field("queued", &self.queued)
            .finish_non_exhaustive()
    }
}

/// Receives the report of every run that had conflicts or failed paths.
pub type ReportSink = Arc<dyn Fn(&failover_core::SyncReport) + Send + Sync>;

type SharedStatus = Arc<Mutex<Shared>>;

fn update(shared: &SharedStatus, change: impl FnOnce(&mut Shared)) {
    if let Ok(mut shared) = shared.lock() {
        change(&mut shared);
    }
}

/// What the node's loop reacts to.
enum Input {
    /// The watcher saw these paths change.
    Local(Vec<RelPath>),
    /// The watcher lost events.
    LocalRescan(String),
    /// From a link.
    Link(Delivery),
    /// The listener accepted the other node (served side).
    Accepted(Box<failover_core::peer::PeerStream>),
    /// `sync_once`: a full run now, its report to this channel.
    RunNow(mpsc::Sender<Result<SyncReport, String>>),
    /// Stop.
    Stop,
}

/// A running live mirror: a watcher thread, this node's loop (driving or serving), and on the
/// serving node a listener task. [`LiveMirror::shutdown`] stops them all.
pub struct LiveMirror {
    input: mpsc::Sender<Input>,
    /// Set when stopping: a run waiting on the peer gives up at once.
    stopping: Arc<AtomicBool>,
    shared: SharedStatus,
    parts: Mutex<Parts>,
    listening: Option<SocketAddr>,
    config: LiveConfig,
}

/// What [`LiveMirror::shutdown`] stops.
#[derive(Default)]
struct Parts {
    watcher: Option<TreeWatcher>,
    node_loop: Option<JoinHandle<()>>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for LiveMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveMirror")
            .field("node", &self.config.node)
            .field("root", &self.config.root)
            .finish_non_exhaustive()
    }
}

impl LiveMirror {
    /// Opens the replica (taking its lock), starts watching, and starts driving or serving.
    /// Must be called within a tokio runtime (the link's tasks run on it).
    pub async fn start(config: LiveConfig) -> Result<LiveMirror, SyncError> {
        let runtime = tokio::runtime::Handle::current();
        let echo = Echo::new();
        let mut replica = LocalReplica::open(ReplicaConfig {
            root: config.root.clone(),
            node: config.node.clone(),
            state_dir: config.state_dir.clone(),
            peer: config.peer_node.clone(),
            excludes: config.excludes.clone(),
            fsync: config.fsync,
        })?;
        replica.set_echo(echo.clone());
        let root = replica.root().to_path_buf();
        let mut excludes = Excludes::new(&config.excludes)?;
        if let Ok(state) = std::fs::canonicalize(&config.state_dir) {
            if let Some(inside) = state
                .strip_prefix(&root)
                .ok()
                .and_then(|p| p.to_str())
                .filter(|p| !p.is_empty())
            {
                excludes = excludes.with_fixed(inside.to_owned());
            }
        }
        let (input, inputs) = mpsc::channel::<Input>();
        let shared: SharedStatus = Arc::default();
        let stopping = Arc::new(AtomicBool::new(false));
        let watcher = {
            let input = input.clone();
            TreeWatcher::start(root, excludes, echo, move |report| {
                let _ = input.send(match report {
                    WatchReport::Changed(paths) => Input::Local(paths),
                    WatchReport::Rescan(why) => Input::LocalRescan(why),
                });
            })?
        };
        let mut listening = None;
        let listener = if config.drives() {
            None
        } else {
            let listener = PeerListener::bind(config.listen, config.peer_config())
                .await
                .map_err(|e| SyncError::Peer(format!("[mirror] listen {}: {e}", config.listen)))?;
            listening = listener.local_addr().ok();
            let input = input.clone();
            let peer_node = config.peer_node.clone();
            Some(tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok(stream) if stream.hello().node == peer_node => {
                            if input.send(Input::Accepted(Box::new(stream))).is_err() {
                                return;
                            }
                        }
                        Ok(stream) => tracing::warn!(
                            peer = stream.peer(),
                            "mirror: refused {:?}: its certificate is pinned for node {peer_node:?}; fix [mirror] peer_node or the other node's name",
                            stream.hello().node
                        ),
                        Err(e) => {
                            tracing::warn!("mirror: refused a connection: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }))
        };
        let node_loop = {
            let config = config.clone();
            let shared = shared.clone();
            let input_tx = input.clone();
            let stopping = stopping.clone();
            std::thread::Builder::new()
                .name("mirror".to_owned())
                .spawn(move || {
                    if config.drives() {
                        Driver::new(config, replica, shared, runtime, input_tx, stopping)
                            .run(&inputs)
                    } else {
                        Served::new(replica, shared, runtime, input_tx).run(&inputs)
                    }
                })
                .map_err(|e| SyncError::Peer(format!("cannot start the mirror thread: {e}")))?
        };
        tracing::info!(
            node = %config.node,
            peer = %config.peer_node,
            "mirror: watching {}; {}",
            config.root.display(),
            if config.drives() {
                format!("this node drives: connecting to {}", config.peer)
            } else {
                format!("{} drives: listening on {}", config.peer_node, config.listen)
            }
        );
        Ok(LiveMirror {
            input,
            stopping,
            shared,
            parts: Mutex::new(Parts {
                watcher: Some(watcher),
                node_loop: Some(node_loop),
                listener,
            }),
            listening,
            config,
        })
    }

    /// Where the serving node listens (useful with port 0); `None` on the driving node.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listening
    }

    /// The config it runs with.
    pub fn config(&self) -> &LiveConfig {
        &self.config
    }

    /// Calls `sink` with the report of every run that keeps conflict copies or leaves paths
    /// unmirrored (replacing any earlier sink): the daemon turns them into notified events.
    pub fn on_report(&self, sink: ReportSink) {
        update(&self.shared, |s| s.reports = Some(sink));
    }

    /// Stops the watcher, the link and the node's loop, and waits for them (the replica's
    /// lock is released when they are gone). Later calls do nothing.
    ///
    /// A run waiting on the peer gives up at once; one busy on this node (a scan of a large
    /// tree) is waited for up to [`STOP_WAIT`], then left to end on its own.
    pub async fn shutdown(&self) {
        let parts = match self.parts.lock() {
            Ok(mut parts) => std::mem::take(&mut *parts),
            Err(_) => return,
        };
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(listener) = parts.listener {
            listener.abort();
            let _ = listener.await;
        }
        let _ = self.input.send(Input::Stop);
        if let Some(watcher) = parts.watcher {
            let _ = tokio::task::spawn_blocking(move || watcher.stop()).await;
        }
        if let Some(node_loop) = parts.node_loop {
            let deadline = Instant::now() + STOP_WAIT;
            while !node_loop.is_finished() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if node_loop.is_finished() {
                let _ = node_loop.join();
            } else {
                tracing::warn!(
                    "mirror: the mirror thread did not stop within {} s; left to end on its own \
                     (the replica's lock is released when it does)",
                    STOP_WAIT.as_secs()
                );
            }
        }
    }
}

/// How long [`LiveMirror::shutdown`] waits for the node's loop.
pub const STOP_WAIT: Duration = Duration::from_secs(10);

impl Drop for LiveMirror {
    fn drop(&mut self) {
        if let Ok(mut parts) = self.parts.lock() {
            if let Some(listener) = parts.listener.take() {
                listener.abort();
            }
        }
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.input.send(Input::Stop);
        // The watcher stops itself when dropped; the loop ends on Stop.
    }
}

#[async_trait]
impl FileMirror for LiveMirror {
    /// A full run now (on the serving node: asks the driving node for one).
    async fn sync_once(&self, _options: &SyncOptions) -> Result<SyncReport, MirrorError> {
        let (tx, rx) = mpsc::channel();
        self.input
            .send(Input::RunNow(tx))
            .map_err(|_| MirrorError::Peer("the mirror is stopped".to_owned()))?;
        tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(3600)))
            .await
            .map_err(|e| MirrorError::Peer(e.to_string()))?
            .map_err(|_| MirrorError::Peer("no answer from the mirror thread".to_owned()))?
            .map_err(MirrorError::Peer)
    }

    fn status(&self) -> MirrorStatus {
        self.shared
            .lock()
            .map(|s| {
                let mut status = s.status.clone();
                status.backlog_files += s.queued;
                status
            })
            .unwrap_or_default()
    }
}

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
struct Driver {
    config: LiveConfig,
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
    fn new(
        config: LiveConfig,
        replica: LocalReplica,
        shared: SharedStatus,
        runtime: tokio::runtime::Handle,
        input: mpsc::Sender<Input>,
        stopping: Arc<AtomicBool>,
    ) -> Driver {
        Driver {
            config,
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

    fn run(mut self, inputs: &mpsc::Receiver<Input>) {
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

    fn after_run(&mut self, outcome: &Outcome, started: SystemTime, took: Duration, full: bool) {
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

/// The serving node's loop: answers the driver's requests with its replica and forwards its
/// watcher's changes.
struct Served {
    replica: LocalReplica,
    shared: SharedStatus,
    runtime: tokio::runtime::Handle,
    input: mpsc::Sender<Input>,
    link: Option<Link>,
    next_link: u64,
}

impl Served {
    fn new(
        replica: LocalReplica,
        shared: SharedStatus,
        runtime: tokio::runtime::Handle,
        input: mpsc::Sender<Input>,
    ) -> Served {
        Served {
            replica,
            shared,
            runtime,
            input,
            link: None,
            next_link: 1,
        }
    }

    fn run(mut self, inputs: &mpsc::Receiver<Input>) {
        while let Ok(input) = inputs.recv() {
            match input {
                Input::Stop => return,
                Input::Accepted(stream) => {
                    let id = self.next_link;
                    self.next_link += 1;
                    let input = self.input.clone();
                    let link = Link::start(
                        *stream,
                        id,
                        &self.runtime,
                        move |delivery| {
                            let _ = input.send(Input::Link(delivery));
                        },
                        None,
                    );
                    tracing::info!("mirror: {} connected; it drives", link.peer);
                    // A new connection replaces an old one (the driver reconnected).
                    self.link = Some(link);
                    update(&self.shared, |s| s.status.peer_connected = true);
                }
                Input::Link(Delivery::Closed(id, reason)) => {
                    if self.link.as_ref().is_some_and(|l| l.id == id) {
                        let link = self.link.take();
                        tracing::warn!(
                            "mirror: link from {} lost: {reason}",
                            link.map(|l| l.peer.clone()).unwrap_or_default()
                        );
                        update(&self.shared, |s| s.status.peer_connected = false);
                    }
                }
                Input::Link(Delivery::Message(id, message)) => {
                    if self.link.as_ref().is_some_and(|l| l.id == id) {
                        self.answer(*message);
                    }
                }
                Input::Local(paths) => {
                    update(&self.shared, |s| s.queued += paths.len() as u64);
                    // Not connected: the full run on the next connect finds them.
                    if let Some(link) = &self.link {
                        let _ = link.send(Message::Changed(paths));
                    }
                }
                Input::LocalRescan(why) => {
                    tracing::warn!("mirror: {why}; asking the driving node for a full run");
                    if let Some(link) = &self.link {
                        let _ = link.send(Message::Rescan);
                    }
                }
                Input::RunNow(reply) => {
                    let result = match &self.link {
                        Some(link) => link
                            .send(Message::Rescan)
                            .map(|()| SyncReport::default())
                            .map_err(|e| e.to_string()),
                        None => Err("the driving node is not connected".to_owned()),
                    };
                    let _ = reply.send(result);
                }
            }
        }
    }

    fn answer(&mut self, message: Message) {
        let Some(link) = &self.link else { return };
        match message {
            Message::Call(request) => {
                let reply = self.replica.handle(request).map_err(|e| e.to_string());
                if let Err(reason) = &reply {
                    tracing::warn!("mirror: request from {} refused: {reason}", link.peer);
                }
                let _ = link.send(Message::Reply(reply));
            }
            Message::Report(report) => update(&self.shared, |s| {
                s.status.last_sync = report.in_step_since;
                s.status.backlog_files = report.backlog_files;
                s.status.backlog_bytes = report.backlog_bytes;
                s.status.conflicts = report.conflicts;
                s.status.problem = report.problem;
                s.queued = 0;
            }),
            other => tracing::warn!(
                "mirror: {} sent an unexpected {}; ignored",
                link.peer,
                other.name()
            ),
        }
    }
}
