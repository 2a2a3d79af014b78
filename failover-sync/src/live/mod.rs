//! The live mirror between two servers: each node watches its root, the two talk over an
//! authenticated peer link (TLS with pinned certificates, service `mirror`), and changes reach
//! the other side within a fraction of a second.
//!
//! **Who drives.** One engine reconciles both replicas, so one node drives: the node whose
//! name sorts first. It connects to the other, runs a full [`sync_pair`](crate::sync_pair) on every connect
//! (both sides may have changed while the link was down: the engine's rules decide, nothing is
//! lost), then a scoped run ([`sync_scope`](crate::sync_scope)) for every burst of changes that its own watcher
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
//!
//! `config.rs` holds [`LiveConfig`]; `node.rs` what the node's threads share (the loop's inputs,
//! the status); `driver.rs` the driving node's loop; `served.rs` the serving node's loop;
//! `listener.rs` the serving node's accept task; `link.rs` the peer link and [`RemoteReplica`];
//! `watch.rs` the watcher; `check.rs` the `mirror` health check.

mod check;
mod config;
mod driver;
mod link;
mod listener;
mod node;
mod pack;
mod served;
mod watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use failover_core::{FileMirror, MirrorError, MirrorStatus, SyncOptions, SyncReport};

use crate::echo::Echo;
use crate::error::SyncError;
use crate::replica::{LocalReplica, ReplicaConfig};
use crate::scan::Excludes;

pub use check::{MirrorCheck, DEFAULT_MAX_LAG};
pub use config::{
    LiveConfig, LiveOptions, DEFAULT_COALESCE, DEFAULT_MAX_DELETE_SHARE, DEFAULT_RESCAN_INTERVAL,
};
use driver::Driver;
pub use link::{encode, Assembler, Message, RemoteReplica, RunReport, MAX_MESSAGE, SERVICE};
pub use node::ReportSink;
use node::{update, Input, SharedStatus};
use served::Served;
use watch::{TreeWatcher, WatchReport};

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
    /// Opens the replica (taking its lock), starts watching, and starts driving or serving,
    /// with the default [`LiveOptions`]. Must be called within a tokio runtime (the link's
    /// tasks run on it).
    pub async fn start(config: LiveConfig) -> Result<LiveMirror, SyncError> {
        Self::start_with(config, LiveOptions::default()).await
    }

    /// [`LiveMirror::start`] with `options`.
    pub async fn start_with(
        config: LiveConfig,
        options: LiveOptions,
    ) -> Result<LiveMirror, SyncError> {
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
        replica.set_versions(options.versions);
        let root = replica.root().to_path_buf();
        let excludes = watch_excludes(&config, &root)?;
        let (input, inputs) = mpsc::channel::<Input>();
        let shared: SharedStatus = Arc::default();
        update(&shared, |s| s.bwlimit = options.bwlimit);
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
        let (listener, listening) = if config.drives() {
            (None, None)
        } else {
            let (task, listening) = listener::listen(&config, input.clone()).await?;
            (Some(task), listening)
        };
        let node_loop = spawn_node_loop(
            (&config, &options),
            replica,
            &shared,
            runtime,
            &input,
            &stopping,
            inputs,
        )?;
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
                status.link_bytes_raw = s.link_bytes.raw.load(Ordering::Relaxed);
                status.link_bytes_sent = s.link_bytes.sent.load(Ordering::Relaxed);
                status
            })
            .unwrap_or_default()
    }
}

/// The watcher's excludes: the configured ones, and the state directory when it lies inside
/// the root.
fn watch_excludes(config: &LiveConfig, root: &Path) -> Result<Excludes, SyncError> {
    let mut excludes = Excludes::new(&config.excludes)?;
    if let Ok(state) = std::fs::canonicalize(&config.state_dir) {
        if let Some(inside) = state
            .strip_prefix(root)
            .ok()
            .and_then(|p| p.to_str())
            .filter(|p| !p.is_empty())
        {
            excludes = excludes.with_fixed(inside.to_owned());
        }
    }
    Ok(excludes)
}

/// Starts the node's loop on a thread of its own: the driver's or the served node's.
fn spawn_node_loop(
    (config, options): (&LiveConfig, &LiveOptions),
    replica: LocalReplica,
    shared: &SharedStatus,
    runtime: tokio::runtime::Handle,
    input: &mpsc::Sender<Input>,
    stopping: &Arc<AtomicBool>,
    inputs: mpsc::Receiver<Input>,
) -> Result<JoinHandle<()>, SyncError> {
    let config = config.clone();
    let options = options.clone();
    let shared = shared.clone();
    let input_tx = input.clone();
    let stopping = stopping.clone();
    std::thread::Builder::new()
        .name("mirror".to_owned())
        .spawn(move || {
            if config.drives() {
                Driver::new(
                    (config, options),
                    replica,
                    shared,
                    runtime,
                    input_tx,
                    stopping,
                )
                .run(&inputs)
            } else {
                Served::new(replica, shared, runtime, input_tx).run(&inputs)
            }
        })
        .map_err(|e| SyncError::Peer(format!("cannot start the mirror thread: {e}")))
}
