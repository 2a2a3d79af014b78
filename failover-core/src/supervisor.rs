//! The supervisor: runs probes on tokio, feeds the arbiter, carries out its actions.

use std::collections::VecDeque;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::arbiter::{Action, Arbiter, ArbiterError, ClusterStatus, Override};
use crate::event::Event;
use crate::fence::{Fence, FenceReport, Veto};
use crate::health::{HealthCheck, Target};
use crate::model::{CheckName, FailureClass, Moment, NodeName, Observation, Outcome};
use crate::notify::Notifier;
use crate::observers::SharedObservations;
use crate::quorum::ObserverStatus;
use crate::zone::{Publication, ZoneWriter};

/// How often and how patiently a check probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSchedule {
    /// Time between the starts of two probes of one node.
    pub interval: Duration,
    /// Hard limit of one probe; past it the probe is dropped and counts as a failure.
    pub timeout: Duration,
    /// Random spread added to each interval (0 to `jitter`), so that probes do not march in step.
    pub jitter: Duration,
}

/// Time between two probes of one node, unless a schedule says otherwise.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// Hard limit of one probe, unless a schedule says otherwise.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Random spread added to each interval, unless a schedule says otherwise.
pub const DEFAULT_PROBE_JITTER: Duration = Duration::from_millis(200);

impl Default for ProbeSchedule {
    fn default() -> Self {
        Self {
            interval: DEFAULT_PROBE_INTERVAL,
            timeout: DEFAULT_PROBE_TIMEOUT,
            jitter: DEFAULT_PROBE_JITTER,
        }
    }
}

/// How one zone writer is doing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WriterStatus {
    /// The writer's description.
    pub writer: String,
    /// The zone serial after the last successful publish, if the writer reports one.
    pub serial: Option<u32>,
    /// When it last published successfully.
    #[serde(with = "humantime_serde")]
    pub last_success: Option<SystemTime>,
    /// The error of the last attempt, while it keeps failing.
    pub failing: Option<String>,
}

/// Everything the daemon can show about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    /// Nodes, checks and the current answer.
    pub cluster: ClusterStatus,
    /// What the writers were last asked to publish.
    pub publication: Option<Publication>,
    /// Each zone writer.
    pub writers: Vec<WriterStatus>,
    /// The most recent events, oldest first (at most [`RECENT_EVENTS`]).
    pub recent_events: Vec<Event>,
    /// The other observers whose verdicts count (empty without shared observations).
    pub observers: Vec<ObserverStatus>,
}

/// How many events a [`StatusReport`] keeps.
pub const RECENT_EVENTS: usize = 100;

/// Bound of each notifier's queue; when full, the oldest event is dropped with a warning.
const NOTIFY_QUEUE: usize = 256;
/// Longest wait between two attempts to publish.
const MAX_PUBLISH_BACKOFF: Duration = Duration::from_secs(30);
/// Attempts to deliver one event to one notifier.
const NOTIFY_ATTEMPTS: u32 = 3;

struct CheckEntry {
    name: CheckName,
    check: Arc<dyn HealthCheck>,
    schedule: ProbeSchedule,
}

/// Runs the probes, the arbiter and the effects until told to stop.
///
/// Built from an [`Arbiter`], then given nodes (with the address to probe), checks, zone writers
/// and notifiers. One tokio task per node and check probes on its schedule; one task per writer
/// publishes the newest answer and retries failures with backoff; one task per notifier delivers
/// events from a bounded queue, so neither a slow writer nor a slow notifier ever delays the
/// arbiter.
pub struct Supervisor {
    arbiter: Arbiter,
    nodes: Vec<(NodeName, IpAddr)>,
    checks: Vec<CheckEntry>,
    writers: Vec<Arc<dyn ZoneWriter>>,
    notifiers: Vec<Arc<dyn Notifier>>,
    fence: Option<Arc<dyn Fence>>,
    status: watch::Sender<StatusReport>,
    shared: Option<SharedObservations>,
    /// Events from outside the arbiter (the file mirror), damped and notified like its own.
    inbox: (mpsc::Sender<Event>, mpsc::Receiver<Event>),
}

/// Bound of the queue of events from outside; when full, the newest is dropped with a warning.
const INBOX: usize = 256;

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("arbiter", &self.arbiter)
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

/// An operator's command to a running supervisor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminCommand {
    /// Set (`set = true`) or clear an override.
    Override {
        /// The override.
        what: Override,
        /// Set or clear.
        set: bool,
    },
    /// Move the answer back to the preferred node now (`failback = "manual"`).
    Failback,
}

type CommandReply = oneshot::Sender<Result<(), ArbiterError>>;

/// A running supervisor: its status, its command line, and the way to stop it.
#[derive(Debug)]
pub struct SupervisorHandle {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    status: watch::Receiver<StatusReport>,
    commands: mpsc::Sender<(AdminCommand, CommandReply)>,
}

/// Sends operators' commands to a running supervisor; cheap to clone.
#[derive(Clone, Debug)]
pub struct Commander {
    commands: mpsc::Sender<(AdminCommand, CommandReply)>,
}

impl Commander {
    /// Carries out an operator's command through the arbiter; `Err` names what was wrong
    /// (an unknown node or check).
    pub async fn command(&self, command: AdminCommand) -> Result<(), ArbiterError> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send((command, reply)).await.is_err() {
            return Err(ArbiterError::Stopped);
        }
        answer.await.unwrap_or(Err(ArbiterError::Stopped))
    }
}

impl SupervisorHandle {
    /// A command line to the supervisor.
    pub fn commander(&self) -> Commander {
        Commander {
            commands: self.commands.clone(),
        }
    }

    /// The status, updated after every change.
    pub fn status(&self) -> watch::Receiver<StatusReport> {
        self.status.clone()
    }

    /// Stops every probe, writer and notifier task and waits for them.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for SupervisorHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn now() -> Moment {
    Moment {
        mono: tokio::time::Instant::now().into_std(),
        wall: SystemTime::now(),
    }
}

fn random_up_to(max: Duration) -> Duration {
    let max_ms = max.as_millis().min(u128::from(u64::MAX)) as u64;
    if max_ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::random_range(0..=max_ms))
}

enum WriterReport {
    Failed {
        index: usize,
        error: String,
        attempt: u32,
    },
    Succeeded {
        index: usize,
        serial: Option<u32>,
        attempts: u32,
    },
}

impl Supervisor {
    /// Access to the arbiter before the supervisor runs (e.g. to restore overrides).
    pub fn arbiter_mut(&mut self) -> &mut Arbiter {
        &mut self.arbiter
    }

    /// A supervisor around `arbiter`, with nothing to probe yet.
    pub fn new(arbiter: Arbiter) -> Self {
        let (status, _) = watch::channel(StatusReport {
            cluster: arbiter.status(),
            publication: None,
            writers: Vec::new(),
            recent_events: Vec::new(),
            observers: Vec::new(),
        });
        Self {
            arbiter,
            nodes: Vec::new(),
            checks: Vec::new(),
            writers: Vec::new(),
            notifiers: Vec::new(),
            fence: None,
            status,
            shared: None,
            inbox: mpsc::channel(INBOX),
        }
    }

    /// Where other parts of the daemon (the file mirror) send events to be notified: they go
    /// through the arbiter's damping like its own. Sending never blocks: use `try_send`.
    pub fn event_sender(&self) -> mpsc::Sender<Event> {
        self.inbox.0.clone()
    }

    /// Runs `fence` before every publication that moves the answer to other nodes (see
    /// [`Fence`] for when); the writers get such a publication only once the fence approves it.
    pub fn fence(mut self, fence: Arc<dyn Fence>) -> Self {
        self.fence = Some(fence);
        self
    }

    /// Puts a quorum of observers between the probes and the arbiter: local results go out to
    /// the peers, and a failure reaches the arbiter only when the observers agree (see
    /// [`Quorum`](crate::Quorum)).
    pub fn shared_observations(mut self, shared: SharedObservations) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Probes node `name` at `address`. Must be a node of the arbiter's spec.
    pub fn node(mut self, name: NodeName, address: IpAddr) -> Self {
        self.nodes.push((name, address));
        self
    }

    /// Runs `check` on every node on `schedule`. Must be a check of the arbiter's spec.
    pub fn check(
        mut self,
        name: CheckName,
        check: Arc<dyn HealthCheck>,
        schedule: ProbeSchedule,
    ) -> Self {
        self.checks.push(CheckEntry {
            name,
            check,
            schedule,
        });
        self
    }

    /// Publishes every answer through `writer`.
    pub fn writer(mut self, writer: Arc<dyn ZoneWriter>) -> Self {
        self.writers.push(writer);
        self
    }

    /// Sends every notified event to `notifier`.
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push(notifier);
        self
    }

    /// The status channel (also available from the handle once spawned).
    pub fn status(&self) -> watch::Receiver<StatusReport> {
        self.status.subscribe()
    }

    /// Runs on the current tokio runtime until [`SupervisorHandle::shutdown`] or drop.
    pub fn spawn(self) -> SupervisorHandle {
        let (stop, stopped) = oneshot::channel();
        let (commands, received) = mpsc::channel(16);
        let status = self.status();
        let task = tokio::spawn(self.run_with_commands(
            async {
                let _ = stopped.await;
            },
            received,
        ));
        SupervisorHandle {
            stop: Some(stop),
            task,
            status,
            commands,
        }
    }

    /// Runs until `shutdown` completes; every task it started is stopped before it returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (_commands, received) = mpsc::channel(1);
        self.run_with_commands(shutdown, received).await;
    }

    async fn run_with_commands(
        mut self,
        shutdown: impl Future<Output = ()>,
        mut commands: mpsc::Receiver<(AdminCommand, CommandReply)>,
    ) {
        let mut tasks = JoinSet::new();
        let (observations, mut observed) = mpsc::channel::<Observation>(1024);
        for (node, address) in &self.nodes {
            for entry in &self.checks {
                tasks.spawn(probe_loop(
                    Target {
                        node: node.clone(),
                        address: *address,
                        timeout: entry.schedule.timeout,
                    },
                    entry.name.clone(),
                    entry.check.clone(),
                    entry.schedule,
                    observations.clone(),
                ));
            }
        }
        drop(observations);

        let (reports, mut reported) = mpsc::channel::<WriterReport>(64);
        let mut publish_to = Vec::new();
        let mut writer_status = Vec::new();
        for (index, writer) in self.writers.iter().enumerate() {
            let (desired, wanted) = watch::channel(None::<Publication>);
            publish_to.push(desired);
            writer_status.push(WriterStatus {
                writer: writer.describe(),
                ..WriterStatus::default()
            });
            tasks.spawn(publish_loop(index, writer.clone(), wanted, reports.clone()));
        }
        drop(reports);

        let mut notify_to = Vec::new();
        for notifier in &self.notifiers {
            let (queue, events) = mpsc::channel::<Event>(NOTIFY_QUEUE);
            notify_to.push(queue);
            tasks.spawn(notify_loop(notifier.clone(), events));
        }

        let mut recent = VecDeque::with_capacity(RECENT_EVENTS);
        let mut effects = Effects {
            publish_to: &publish_to,
            notify_to: &notify_to,
            recent: &mut recent,
        };
        let (fence_results, mut fenced) = mpsc::channel::<FenceResult>(4);
        let mut gate = Gate {
            fence: self.fence.clone(),
            granted: Vec::new(),
            in_flight: None,
            waiting: None,
            results: fence_results,
        };
        let mut shared = self.shared.take();
        tokio::pin!(shutdown);
        loop {
            let deadline = self.arbiter.next_deadline();
            let actions = tokio::select! {
                () = &mut shutdown => break,
                Some(observation) = observed.recv() => match shared.as_mut() {
                    Some(shared) => shared.local(observation, &mut self.arbiter),
                    None => self.arbiter.observe(observation),
                },
                input = next_shared(&mut shared) => match shared.as_mut() {
                    Some(shared) => shared.input(input, &mut self.arbiter),
                    None => Vec::new(),
                },
                Some(report) = reported.recv() => match report {
                    WriterReport::Failed { index, error, attempt } => {
                        writer_status[index].failing = Some(error.clone());
                        let writer = writer_status[index].writer.clone();
                        self.arbiter.publish_failed(now(), writer, error, attempt)
                    }
                    WriterReport::Succeeded { index, serial, attempts } => {
                        let status = &mut writer_status[index];
                        status.failing = None;
                        status.serial = serial.or(status.serial);
                        status.last_success = Some(SystemTime::now());
                        if attempts > 1 {
                            let writer = status.writer.clone();
                            self.arbiter.publish_recovered(now(), writer, attempts)
                        } else {
                            Vec::new()
                        }
                    }
                },
                () = sleep_until(deadline), if deadline.is_some() => self.arbiter.tick(now()),
                Some(result) = fenced.recv() => gate.finished(result, &mut self.arbiter, &mut effects),
                Some(event) = self.inbox.1.recv() => self.arbiter.report(event, now()),
                Some((command, reply)) = commands.recv() => {
                    let result = match command {
                        AdminCommand::Override { what, set } => {
                            self.arbiter.apply_override(what, set, now())
                        }
                        AdminCommand::Failback => Ok(self.arbiter.request_failback(now())),
                    };
                    match result {
                        Ok(actions) => {
                            let _ = reply.send(Ok(()));
                            actions
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                            Vec::new()
                        }
                    }
                }
            };
            // Publications pass the gate (the fence, when there is one) before the writers.
            let mut actions = actions;
            while !actions.is_empty() {
                let mut publications = Vec::new();
                effects.apply(actions, &mut publications);
                actions = Vec::new();
                for publication in publications {
                    actions.extend(gate.admit(
                        publication,
                        &self.arbiter,
                        &mut effects,
                        &mut tasks,
                    ));
                }
            }
            self.status.send_replace(StatusReport {
                cluster: self.arbiter.status(),
                publication: self.arbiter.publication(),
                writers: writer_status.clone(),
                recent_events: effects.recent.iter().cloned().collect(),
                observers: shared
                    .as_ref()
                    .map(SharedObservations::status)
                    .unwrap_or_default(),
            });
        }
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        tracing::info!("supervisor stopped");
    }
}

/// The next word from the peers, or never without shared observations.
async fn next_shared(shared: &mut Option<SharedObservations>) -> crate::observers::SharedInput {
    match shared {
        Some(shared) => shared.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// What a fence said about a publication.
struct FenceResult {
    publication: Publication,
    from: Vec<NodeName>,
    verdict: Result<FenceReport, Veto>,
}

/// Holds publications that move the answer until the fence approves them; one fence call at a
/// time, and only the newest waiting publication is fenced next.
struct Gate {
    fence: Option<Arc<dyn Fence>>,
    /// The nodes the writers were last handed.
    granted: Vec<NodeName>,
    /// The nodes being fenced now.
    in_flight: Option<Vec<NodeName>>,
    /// The newest publication decided while a fence ran.
    waiting: Option<Publication>,
    results: mpsc::Sender<FenceResult>,
}

/// How long the arbiter holds back an answer whose fence gave no verdict in time.
const FENCE_TIMEOUT_RETRY: Duration = Duration::from_secs(5);

impl Gate {
    /// A publication the arbiter decided: straight to the writers, or to the fence.
    fn admit(
        &mut self,
        publication: Publication,
        arbiter: &Arbiter,
        effects: &mut Effects<'_>,
        tasks: &mut JoinSet<()>,
    ) -> Vec<Action> {
        let Some(fence) = self.fence.clone() else {
            effects.publish(publication);
            return Vec::new();
        };
        if self.in_flight.is_some() {
            self.waiting = Some(publication);
            return Vec::new();
        }
        if publication.nodes == self.granted {
            // Back to what the writers have: nothing to fence, nothing to publish.
            return Vec::new();
        }
        if self.granted.is_empty() {
            self.granted = publication.nodes.clone();
            effects.publish(publication);
            return Vec::new();
        }
        let context = arbiter.publish_context(now(), &self.granted, &publication);
        tracing::info!(from = ?context.from, to = ?context.to, fence = fence.describe(), "fencing before publishing");
        self.in_flight = Some(publication.nodes.clone());
        let results = self.results.clone();
        tasks.spawn(async move {
            let timeout = fence.timeout();
            let verdict = match tokio::time::timeout(timeout, fence.before_publish(&context)).await
            {
                Ok(verdict) => verdict,
                Err(_) => Err(Veto {
                    reason: format!("no verdict within {}", humantime::format_duration(timeout)),
                    steps: Vec::new(),
                    retry_after: FENCE_TIMEOUT_RETRY,
                }),
            };
            let _ = results
                .send(FenceResult {
                    publication: context.publication,
                    from: context.from,
                    verdict,
                })
                .await;
        });
        Vec::new()
    }

    /// The fence answered: approve (the publication goes to the writers) or veto (the arbiter
    /// goes back to what the writers have). Then the newest waiting publication, if any.
    fn finished(
        &mut self,
        result: FenceResult,
        arbiter: &mut Arbiter,
        effects: &mut Effects<'_>,
    ) -> Vec<Action> {
        self.in_flight = None;
        let fence = self
            .fence
            .as_ref()
            .map(|f| f.describe())
            .unwrap_or_default();
        let mut actions = match result.verdict {
            Ok(report) => {
                self.granted = result.publication.nodes.clone();
                let actions = arbiter.fenced(now(), &fence, report.steps);
                effects.publish(result.publication);
                actions
            }
            Err(veto) => {
                arbiter.publish_vetoed(now(), &fence, result.from, result.publication.nodes, veto)
            }
        };
        // The newest answer decided meanwhile goes through the gate again.
        if let Some(waiting) = self.waiting.take() {
            actions.push(Action::Publish(waiting));
        }
        actions
    }
}

struct Effects<'a> {
    publish_to: &'a [watch::Sender<Option<Publication>>],
    notify_to: &'a [mpsc::Sender<Event>],
    recent: &'a mut VecDeque<Event>,
}

impl Effects<'_> {
    /// Carries out notifications and records; publications are handed back for the gate.
    fn apply(&mut self, actions: Vec<Action>, publications: &mut Vec<Publication>) {
        for action in actions {
            match action {
                Action::Publish(publication) => publications.push(publication),
                Action::Notify(event) => {
                    for queue in self.notify_to {
                        if let Err(mpsc::error::TrySendError::Full(event)) =
                            queue.try_send(event.clone())
                        {
                            tracing::warn!(
                                event = event.name(),
                                "notifier queue full; event dropped: {event}"
                            );
                        }
                    }
                    self.remember(event);
                }
                Action::Record(event) => {
                    tracing::info!(event = event.name(), notified = false, "{event}");
                    self.remember(event);
                }
            }
        }
    }

    fn publish(&mut self, publication: Publication) {
        tracing::info!(nodes = ?publication.nodes, "publishing");
        for writer in self.publish_to {
            writer.send_replace(Some(publication.clone()));
        }
    }

    fn remember(&mut self, event: Event) {
        if self.recent.len() == RECENT_EVENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(event);
    }
}

async fn probe_loop(
    target: Target,
    check_name: CheckName,
    check: Arc<dyn HealthCheck>,
    schedule: ProbeSchedule,
    observations: mpsc::Sender<Observation>,
) {
    // Spread the first probes a little, but get first verdicts quickly.
    tokio::time::sleep(random_up_to(schedule.jitter.min(schedule.interval))).await;
    loop {
        let started = tokio::time::Instant::now();
        let outcome = match tokio::time::timeout(schedule.timeout, check.probe(&target)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::failed(
                FailureClass::Timeout,
                format!(
                    "{} probe of {} gave no verdict within {}",
                    check.kind(),
                    target.address,
                    humantime::format_duration(schedule.timeout)
                ),
            ),
        };
        tracing::debug!(node = %target.node, check = %check_name, ?outcome, "probed");
        let observation = Observation {
            node: target.node.clone(),
            check: check_name.clone(),
            outcome,
            at: now(),
        };
        if observations.send(observation).await.is_err() {
            return;
        }
        tokio::time::sleep_until(started + schedule.interval + random_up_to(schedule.jitter)).await;
    }
}

async fn publish_loop(
    index: usize,
    writer: Arc<dyn ZoneWriter>,
    mut wanted: watch::Receiver<Option<Publication>>,
    reports: mpsc::Sender<WriterReport>,
) {
    loop {
        if wanted.changed().await.is_err() {
            return;
        }
        let mut attempt = 0u32;
        loop {
            let Some(publication) = wanted.borrow_and_update().clone() else {
                break;
            };
            attempt += 1;
            let report = match writer.publish(&publication).await {
                Ok(receipt) => WriterReport::Succeeded {
                    index,
                    serial: receipt.serial,
                    attempts: attempt,
                },
                Err(e) => WriterReport::Failed {
                    index,
                    error: e.to_string(),
                    attempt,
                },
            };
            let failed = matches!(report, WriterReport::Failed { .. });
            if reports.send(report).await.is_err() {
                return;
            }
            if !failed {
                break;
            }
            let backoff = Duration::from_millis(500)
                .saturating_mul(1 << attempt.min(10))
                .min(MAX_PUBLISH_BACKOFF);
            // A newer answer cuts the wait short: it is the one to publish.
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                changed = wanted.changed() => if changed.is_err() { return },
            }
        }
    }
}

async fn notify_loop(notifier: Arc<dyn Notifier>, mut events: mpsc::Receiver<Event>) {
    let window = notifier.batch_window();
    while let Some(first) = events.recv().await {
        let mut batch = vec![first];
        if !window.is_zero() {
            // Gather what belongs to the same story (check down, node down, failover).
            let deadline = tokio::time::Instant::now() + window;
            while batch.len() < NOTIFY_QUEUE {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Some(event)) => batch.push(event),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        for attempt in 1..=NOTIFY_ATTEMPTS {
            match notifier.notify_batch(&batch).await {
                Ok(()) => break,
                Err(e) if attempt < NOTIFY_ATTEMPTS => {
                    tracing::warn!(
                        notifier = notifier.name(),
                        attempt,
                        "notification failed, retrying: {e}"
                    );
                    tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                }
                Err(e) => tracing::error!(
                    notifier = notifier.name(),
                    events = batch.len(),
                    "notification given up after {NOTIFY_ATTEMPTS} attempts: {e}"
                ),
            }
        }
    }
}
