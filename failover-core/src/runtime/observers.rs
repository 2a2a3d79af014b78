//! Shared observations on tokio: the peer links that carry observers' verdicts, and the hook that puts the [`Quorum`] between a supervisor's probes and its arbiter.
//!
//! Every observer (each daemon, and a witness) dials each peer that has an address and sends it
//! its own probe verdicts as they happen, plus a heartbeat; it listens for the peers that dial it.
//! Links are the project's one peer link ([`crate::peer`]: TLS 1.3, pinned certificates both
//! ways) with the service `observations`; frames are JSON. A link silent for `observer_timeout`
//! is dropped and dialled again with backoff (0.5 s doubling to 5 s). The [`ObserverNetwork`]
//! outlives supervisors (a reload attaches the new one), and stops with
//! [`ObserverNetwork::shutdown`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use crate::action::Action;
use crate::arbiter::{Arbiter, CheckSpec};
use crate::model::{CheckName, Moment, NodeName, Observation};
use crate::quorum::{ObserverReport, ObserverStatus, Quorum, QuorumInput, QuorumSpec};
use crate::runtime::clock::now;
use crate::runtime::peer::{
    self, Fingerprint, Identity, PeerConfig, PeerError, PeerListener, PeerStream,
};

/// The service name in the peer hello of an observation link.
pub const OBSERVATIONS_SERVICE: &str = "observations";

/// Longest wait for one frame to be written.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait between two attempts to reach a peer.
const MAX_DIAL_BACKOFF: Duration = Duration::from_secs(5);
/// Largest observation frame (a report is a few hundred bytes).
const MAX_FRAME: usize = 64 * 1024;

/// Another observer, as pinned in the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObserverPeer {
    /// Its name (a node name, or the witness's), as it says in its hello.
    pub name: String,
    /// Where to send it our verdicts; `None` for a peer that only reports to us.
    pub address: Option<SocketAddr>,
    /// Its certificate's fingerprint.
    pub fingerprint: Fingerprint,
}

/// How long an observer may stay silent before it is out of the vote, unless configured
/// otherwise.
pub const DEFAULT_OBSERVER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the observation links need.
#[derive(Clone, Debug)]
pub struct ObserverLinkConfig {
    /// This observer's key and certificate.
    pub identity: Arc<Identity>,
    /// This observer's name.
    pub local: String,
    /// Where to accept peers' links; `None` when nobody dials this observer.
    pub listen: Option<SocketAddr>,
    /// The other observers.
    pub peers: Vec<ObserverPeer>,
    /// A link silent this long is dropped (heartbeats go four times as often).
    pub observer_timeout: Duration,
}

/// One frame on an observation link.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum Frame {
    /// A probe verdict of the sender's.
    Report(ObserverReport),
    /// The sender is alive.
    Heartbeat,
}

/// Something heard from a peer.
#[derive(Clone, Debug)]
struct Inbound {
    observer: String,
    report: Option<ObserverReport>,
}

type Latest = Arc<Mutex<BTreeMap<(NodeName, CheckName), ObserverReport>>>;

/// The running observation links of one observer.
#[derive(Debug)]
pub struct ObserverNetwork {
    inbound: broadcast::Sender<Inbound>,
    outbound: broadcast::Sender<ObserverReport>,
    latest: Latest,
    local_addr: Option<SocketAddr>,
    tasks: JoinSet<()>,
}

/// Aborts a helper task when its owner ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn heartbeat_period(observer_timeout: Duration) -> Duration {
    (observer_timeout / 4).max(Duration::from_millis(100))
}

impl ObserverNetwork {
    /// Binds the listener (if any) and starts dialling every peer with an address. Must run
    /// inside a tokio runtime; `Err` when the listen address cannot be bound.
    pub async fn start(config: ObserverLinkConfig) -> Result<Self, PeerError> {
        let (inbound, _) = broadcast::channel(1024);
        let (outbound, _) = broadcast::channel(1024);
        let latest: Latest = Arc::default();
        let mut tasks = JoinSet::new();
        let handshake_timeout = config.observer_timeout.min(Duration::from_secs(5));
        let mut local_addr = None;
        if let Some(listen) = config.listen {
            let pinned = config.peers.iter().map(|p| p.fingerprint).collect();
            let mut link = PeerConfig::new(
                config.identity.clone(),
                pinned,
                OBSERVATIONS_SERVICE,
                &config.local,
            );
            link.max_frame = MAX_FRAME;
            link.handshake_timeout = handshake_timeout;
            let listener = PeerListener::bind(listen, link).await?;
            local_addr = Some(listener.local_addr()?);
            tasks.spawn(accept_loop(
                listener,
                config.peers.clone(),
                inbound.clone(),
                config.observer_timeout,
            ));
        }
        for peer in &config.peers {
            let Some(address) = peer.address else {
                continue;
            };
            let mut link = PeerConfig::new(
                config.identity.clone(),
                vec![peer.fingerprint],
                OBSERVATIONS_SERVICE,
                &config.local,
            );
            link.max_frame = MAX_FRAME;
            link.handshake_timeout = handshake_timeout;
            tasks.spawn(dial_loop(
                peer.name.clone(),
                address,
                link,
                outbound.clone(),
                latest.clone(),
                config.observer_timeout,
            ));
        }
        Ok(Self {
            inbound,
            outbound,
            latest,
            local_addr,
            tasks,
        })
    }

    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The hook for one supervisor: its quorum, fed by these links (see
    /// [`Supervisor::shared_observations`](crate::Supervisor::shared_observations)).
    pub fn attach(&self, spec: QuorumSpec, checks: &[CheckSpec]) -> SharedObservations {
        SharedObservations {
            quorum: Quorum::new(spec, checks, now()),
            inbound: Some(self.inbound.subscribe()),
            outbound: self.outbound.clone(),
            latest: self.latest.clone(),
        }
    }

    /// Stops every link.
    pub async fn shutdown(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Why a peer is refused after a good handshake.
fn authorize(stream: &PeerStream, peers: &[ObserverPeer]) -> Result<String, String> {
    let claimed = &stream.hello().node;
    let Some(peer) = peers.iter().find(|p| &p.name == claimed) else {
        return Err(format!(
            "{} says it is observer {claimed:?}, which is no [[peer]] here (peers: {})",
            stream.peer(),
            peers
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    match stream.peer_fingerprint() {
        Some(fingerprint) if fingerprint == peer.fingerprint => Ok(peer.name.clone()),
        Some(fingerprint) => Err(format!(
            "{} says it is {claimed:?} but holds certificate {fingerprint}, not the {} pinned for {claimed:?}",
            stream.peer(),
            peer.fingerprint
        )),
        None => Err(format!("{} showed no certificate", stream.peer())),
    }
}

async fn accept_loop(
    listener: PeerListener,
    peers: Vec<ObserverPeer>,
    inbound: broadcast::Sender<Inbound>,
    observer_timeout: Duration,
) {
    // Each inbound link's task; dropped (aborted) with this one.
    let mut links = JoinSet::new();
    loop {
        match listener.accept().await {
            Ok(stream) => match authorize(&stream, &peers) {
                Ok(name) => {
                    tracing::info!(observer = %name, peer = stream.peer(), "observation link from {name} up");
                    links.spawn(serve_inbound(
                        stream,
                        name,
                        inbound.clone(),
                        observer_timeout,
                    ));
                }
                Err(reason) => tracing::warn!("observation link refused: {reason}"),
            },
            Err(PeerError::Io { peer, source }) if peer == "listener" => {
                tracing::warn!("observation listener: {source}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => tracing::warn!("observation link refused: {e}"),
        }
        while links.try_join_next().is_some() {}
    }
}

async fn send_frame(writer: &mut peer::PeerWriter, frame: &Frame) -> Result<(), String> {
    let bytes = serde_json::to_vec(frame).map_err(|e| e.to_string())?;
    match tokio::time::timeout(SEND_TIMEOUT, writer.send(&bytes)).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "a frame could not be written within {}",
            humantime::format_duration(SEND_TIMEOUT)
        )),
    }
}

/// Reads a peer's verdicts until it falls silent; answers with heartbeats so that it can tell
/// a dead link too.
async fn serve_inbound(
    stream: PeerStream,
    name: String,
    inbound: broadcast::Sender<Inbound>,
    observer_timeout: Duration,
) {
    let (mut reader, mut writer) = stream.into_split();
    let beat = heartbeat_period(observer_timeout);
    let _heart = AbortOnDrop(tokio::spawn(async move {
        loop {
            tokio::time::sleep(beat).await;
            if send_frame(&mut writer, &Frame::Heartbeat).await.is_err() {
                return;
            }
        }
    }));
    let reason = loop {
        let frame = match tokio::time::timeout(observer_timeout, reader.recv()).await {
            Err(_) => {
                break format!(
                    "nothing heard for {}",
                    humantime::format_duration(observer_timeout)
                )
            }
            Ok(Err(e)) => break e.to_string(),
            Ok(Ok(None)) => break "closed by the peer".to_owned(),
            Ok(Ok(Some(frame))) => frame,
        };
        let report = match decode_frame(&frame) {
            Ok(report) => report,
            Err(e) => break format!("unreadable frame: {e}"),
        };
        // No supervisor attached (between reloads) is not an error.
        let _ = inbound.send(Inbound {
            observer: name.clone(),
            report,
        });
    };
    tracing::info!(observer = %name, "observation link from {name} closed: {reason}");
}

/// A peer's frame: its report, or `None` for a heartbeat.
pub(crate) fn decode_frame(frame: &[u8]) -> Result<Option<ObserverReport>, serde_json::Error> {
    Ok(match serde_json::from_slice::<Frame>(frame)? {
        Frame::Report(report) => Some(report),
        Frame::Heartbeat => None,
    })
}

async fn dial_loop(
    name: String,
    address: SocketAddr,
    link: PeerConfig,
    outbound: broadcast::Sender<ObserverReport>,
    latest: Latest,
    observer_timeout: Duration,
) {
    let mut backoff = Duration::from_millis(500);
    let mut failures = 0u32;
    loop {
        let reports = outbound.subscribe();
        match peer::connect(address, &link).await {
            Ok(stream) if stream.hello().node != name => {
                failures += 1;
                tracing::warn!(
                    observer = %name,
                    "{address} answers as observer {:?}, not {name:?}: check [[peer]] address",
                    stream.hello().node
                );
            }
            Ok(stream) => {
                tracing::info!(observer = %name, "observation link to {name} at {address} up");
                failures = 0;
                backoff = Duration::from_millis(500);
                let reason = run_outbound(stream, reports, &latest, observer_timeout).await;
                tracing::warn!(observer = %name, "observation link to {name} at {address} lost: {reason}; dialling again");
            }
            Err(e) => {
                failures += 1;
                // Say it once per outage; the rest goes to debug.
                if failures == 1 {
                    tracing::warn!(observer = %name, "cannot reach observer {name}: {e}; retrying every {} at most", humantime::format_duration(MAX_DIAL_BACKOFF));
                } else {
                    tracing::debug!(observer = %name, failures, "cannot reach observer {name}: {e}");
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_DIAL_BACKOFF);
    }
}

/// Sends the latest verdicts, then every new one and heartbeats, until the link fails; returns
/// why it failed.
async fn run_outbound(
    stream: PeerStream,
    mut reports: broadcast::Receiver<ObserverReport>,
    latest: &Latest,
    observer_timeout: Duration,
) -> String {
    let (mut reader, mut writer) = stream.into_split();
    // The other end answers with heartbeats: silence means the link is dead even when writes
    // still fit in the socket buffer.
    let (dead_tx, mut dead) = oneshot::channel::<String>();
    let _watchdog = AbortOnDrop(tokio::spawn(async move {
        let reason = loop {
            match tokio::time::timeout(observer_timeout, reader.recv()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) => break "closed by the peer".to_owned(),
                Ok(Err(e)) => break e.to_string(),
                Err(_) => {
                    break format!(
                        "nothing heard for {}",
                        humantime::format_duration(observer_timeout)
                    )
                }
            }
        };
        let _ = dead_tx.send(reason);
    }));
    let snapshot = |latest: &Latest| -> Vec<ObserverReport> {
        latest
            .lock()
            .map(|table| table.values().cloned().collect())
            .unwrap_or_default()
    };
    for report in snapshot(latest) {
        if let Err(e) = send_frame(&mut writer, &Frame::Report(report)).await {
            return e;
        }
    }
    let mut beat = tokio::time::interval(heartbeat_period(observer_timeout));
    loop {
        let frame = tokio::select! {
            received = reports.recv() => match received {
                Ok(report) => vec![Frame::Report(report)],
                // Fell behind: the latest verdicts say everything that matters.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    snapshot(latest).into_iter().map(Frame::Report).collect()
                }
                Err(broadcast::error::RecvError::Closed) => return "stopping".to_owned(),
            },
            _ = beat.tick() => vec![Frame::Heartbeat],
            reason = &mut dead => return reason.unwrap_or_else(|_| "the reader stopped".to_owned()),
        };
        for frame in &frame {
            if let Err(e) = send_frame(&mut writer, frame).await {
                return e;
            }
        }
    }
}

/// What wakes a supervisor's observation hook.
#[derive(Debug)]
pub(crate) enum SharedInput {
    Heard(String, Option<ObserverReport>),
    Tick,
}

/// The quorum of one supervisor and its links: local observations go through it to the arbiter
/// and out to the peers; the peers' verdicts come in.
#[derive(Debug)]
pub struct SharedObservations {
    quorum: Quorum,
    inbound: Option<broadcast::Receiver<Inbound>>,
    outbound: broadcast::Sender<ObserverReport>,
    latest: Latest,
}

impl SharedObservations {
    /// A hook with no links (for tests and embedding): verdicts are fed with
    /// [`ObserverInjector::inject`] — nothing arrives on its own.
    pub fn detached(spec: QuorumSpec, checks: &[CheckSpec]) -> (Self, ObserverInjector) {
        let (inbound, receiver) = broadcast::channel(1024);
        let (outbound, _) = broadcast::channel(1024);
        (
            Self {
                quorum: Quorum::new(spec, checks, now()),
                inbound: Some(receiver),
                outbound: outbound.clone(),
                latest: Arc::default(),
            },
            ObserverInjector { inbound, outbound },
        )
    }

    /// Waits for a peer's word or the quorum's next deadline. Cancel-safe.
    pub(crate) async fn next(&mut self) -> SharedInput {
        let deadline = self.quorum.next_deadline(now());
        let received = {
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let receive = async {
                match self.inbound.as_mut() {
                    Some(inbound) => inbound.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = receive => Some(received),
                () = sleep => None,
            }
        };
        match received {
            Some(Ok(Inbound { observer, report })) => SharedInput::Heard(observer, report),
            Some(Err(broadcast::error::RecvError::Lagged(missed))) => {
                tracing::warn!(
                    missed,
                    "fell behind the peers' verdicts; the next ones will do"
                );
                SharedInput::Tick
            }
            Some(Err(broadcast::error::RecvError::Closed)) => {
                self.inbound = None;
                SharedInput::Tick
            }
            None => SharedInput::Tick,
        }
    }

    /// One of this observer's probe results: out to the peers, and through the quorum to the
    /// arbiter.
    pub(crate) fn local(&mut self, observation: Observation, arbiter: &mut Arbiter) -> Vec<Action> {
        let at = observation.at;
        let result = self.quorum.local(observation);
        if let Ok(mut table) = self.latest.lock() {
            table.insert(
                (result.report.node.clone(), result.report.check.clone()),
                result.report.clone(),
            );
        }
        // No link up is not an error: the quorum counts the silence.
        let _ = self.outbound.send(result.report);
        self.feed(result.observations, at, arbiter)
    }

    /// A peer's word, or time passing.
    pub(crate) fn input(&mut self, input: SharedInput, arbiter: &mut Arbiter) -> Vec<Action> {
        let now = now();
        let released = match input {
            SharedInput::Heard(observer, Some(report)) => {
                self.quorum.remote(&observer, report, now)
            }
            SharedInput::Heard(observer, None) => self.quorum.heard(&observer, now),
            SharedInput::Tick => self.quorum.tick(now),
        };
        self.feed(released, now, arbiter)
    }

    fn feed(
        &mut self,
        observations: Vec<Observation>,
        now: Moment,
        arbiter: &mut Arbiter,
    ) -> Vec<Action> {
        for change in self.quorum.membership_changes(now) {
            if change.live {
                tracing::info!(observer = %change.observer, "observer {} is in the vote again", change.observer);
            } else {
                let spec = self.quorum.spec();
                tracing::warn!(
                    observer = %change.observer,
                    "observer {} is out of the vote: nothing heard for {}; with fewer than {} of {} observers, on_partition = {} applies",
                    change.observer,
                    humantime::format_duration(spec.observer_timeout),
                    spec.majority(),
                    spec.peers.len() + 1,
                    spec.on_partition
                );
            }
        }
        observations
            .into_iter()
            .flat_map(|observation| arbiter.observe(observation))
            .collect()
    }

    /// Keeps the quorum's inputs for a journal ([`Quorum::record_inputs`]).
    pub(crate) fn record_inputs(&mut self) {
        self.quorum.record_inputs();
    }

    /// The quorum's inputs since the last call ([`Quorum::take_inputs`]).
    pub(crate) fn take_inputs(&mut self) -> Vec<QuorumInput> {
        self.quorum.take_inputs()
    }

    /// The other observers, for status output.
    pub fn status(&self) -> Vec<ObserverStatus> {
        self.quorum.status(now())
    }
}

/// Feeds a [`SharedObservations::detached`] hook by hand, as links would.
#[derive(Clone, Debug)]
pub struct ObserverInjector {
    inbound: broadcast::Sender<Inbound>,
    outbound: broadcast::Sender<ObserverReport>,
}

impl ObserverInjector {
    /// `observer` reports `report` (or, with `None`, just a heartbeat).
    pub fn inject(&self, observer: &str, report: Option<ObserverReport>) {
        let _ = self.inbound.send(Inbound {
            observer: observer.to_owned(),
            report,
        });
    }

    /// The verdicts the hook sends out.
    pub fn sent(&self) -> broadcast::Receiver<ObserverReport> {
        self.outbound.subscribe()
    }
}
