//! The supervisor itself: built from an arbiter, nodes, checks, writers and notifiers, then run
//! until stopped.

use std::collections::VecDeque;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::effects::{carry_out, Effects, FenceResult, Gate};
use super::handle::{AdminCommand, CommandReply, SupervisorHandle};
use super::journal::{JournalEntry, JournalSink};
use super::metrics::SupervisorMetrics;
use super::status::{StatusReport, WriterStatus, RECENT_EVENTS};
use super::tasks::{
    notify_loop, probe_loop, publish_loop, ProbeSchedule, WriterReport, NOTIFY_QUEUE,
};
use crate::action::Action;
use crate::arbiter::{Arbiter, ArbiterError, ArbiterState};
use crate::event::Event;
use crate::fence::Fence;
use crate::health::{HealthCheck, Target};
use crate::model::{CheckName, NodeName, Observation};
use crate::notifier::Notifier;
use crate::runtime::clock::now;
use crate::runtime::observers::{SharedInput, SharedObservations};
use crate::zone::{Publication, ZoneWriter};

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
    /// Where the arbiter's inputs and decisions go, when a journal is kept.
    journal: Option<JournalSink>,
    /// Where what happens is counted, when something counts it.
    metrics: Option<Arc<dyn SupervisorMetrics>>,
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

impl Supervisor {
    /// Access to the arbiter before the supervisor runs (e.g. to restore overrides).
    pub fn arbiter_mut(&mut self) -> &mut Arbiter {
        &mut self.arbiter
    }

    /// Starts the arbiter from `state` (what the previous supervisor knew: its
    /// [`StatusReport::state`], saved in the state directory across a restart) on the runtime's
    /// clock; see [`Arbiter::restore`] for the rules and the errors. Call it before
    /// [`spawn`](Supervisor::spawn) or [`run`](Supervisor::run): the restored answer is then
    /// handed to the writers at start, without an event.
    pub fn restore(&mut self, state: &ArbiterState) -> Result<(), ArbiterError> {
        self.arbiter.restore(state, now())
    }

    /// A supervisor around `arbiter`, with nothing to probe yet.
    pub fn new(arbiter: Arbiter) -> Self {
        let (status, _) = watch::channel(StatusReport {
            cluster: arbiter.status(),
            state: arbiter.snapshot(now()),
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
            journal: None,
            metrics: None,
        }
    }

    /// Sends every input the arbiter takes and what it decides to `journal` (see
    /// [`JournalEntry`]), without ever waiting for it.
    pub fn journal(mut self, journal: mpsc::Sender<JournalEntry>) -> Self {
        self.arbiter.record_inputs();
        self.journal = Some(JournalSink {
            sender: journal,
            dropped: 0,
        });
        self
    }

    /// Tells `metrics` of every probe, event, publication and notification as it happens (see
    /// [`SupervisorMetrics`]).
    pub fn metrics(mut self, metrics: Arc<dyn SupervisorMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
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
        let mut observed = self.spawn_probes(&mut tasks);
        let (publish_to, mut writer_status, mut reported) = self.spawn_writers(&mut tasks);
        let notify_to = self.spawn_notifiers(&mut tasks);

        let mut recent = VecDeque::with_capacity(RECENT_EVENTS);
        let mut effects = Effects {
            publish_to: &publish_to,
            notify_to: &notify_to,
            recent: &mut recent,
            metrics: self.metrics.as_deref(),
        };
        let (fence_results, mut fenced) = mpsc::channel::<FenceResult>(4);
        let mut gate = Gate::new(self.fence.clone(), fence_results);
        // A restored (or assumed) answer is live: the writers get it, without an event.
        if let Some(publication) = self.arbiter.publication() {
            gate.start_from(publication, &mut effects);
        }
        let mut shared = self.shared.take();
        if let (Some(shared), Some(_)) = (shared.as_mut(), &self.journal) {
            shared.record_inputs();
        }
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
                Some(report) = reported.recv() => {
                    writer_reported(&mut self.arbiter, &mut writer_status, report)
                }
                () = sleep_until(deadline), if deadline.is_some() => self.arbiter.tick(now()),
                Some(result) = fenced.recv() => gate.finished(result, &mut self.arbiter, &mut effects),
                Some(event) = self.inbox.1.recv() => self.arbiter.report(event, now()),
                Some((command, reply)) = commands.recv() => {
                    run_command(&mut self.arbiter, command, reply)
                }
            };
            if let Some(journal) = &mut self.journal {
                journal.record(shared.as_mut(), &mut self.arbiter, &actions, now().wall);
            }
            carry_out(actions, &self.arbiter, &mut gate, &mut effects, &mut tasks);
            self.status.send_replace(StatusReport {
                cluster: self.arbiter.status(),
                state: self.arbiter.snapshot(now()),
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

    /// Starts one probe task per node and check; their observations arrive on the receiver.
    fn spawn_probes(&self, tasks: &mut JoinSet<()>) -> mpsc::Receiver<Observation> {
        let (observations, observed) = mpsc::channel::<Observation>(1024);
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
                    self.metrics.clone(),
                ));
            }
        }
        observed
    }

    /// Starts one task per zone writer: what each should publish, its status, and its reports.
    fn spawn_writers(
        &self,
        tasks: &mut JoinSet<()>,
    ) -> (
        Vec<watch::Sender<Option<Publication>>>,
        Vec<WriterStatus>,
        mpsc::Receiver<WriterReport>,
    ) {
        let (reports, reported) = mpsc::channel::<WriterReport>(64);
        let mut publish_to = Vec::new();
        let mut writer_status = Vec::new();
        for (index, writer) in self.writers.iter().enumerate() {
            let (desired, wanted) = watch::channel(None::<Publication>);
            publish_to.push(desired);
            writer_status.push(WriterStatus {
                writer: writer.describe(),
                ..WriterStatus::default()
            });
            tasks.spawn(publish_loop(
                index,
                writer.clone(),
                wanted,
                reports.clone(),
                self.metrics.clone(),
            ));
        }
        (publish_to, writer_status, reported)
    }

    /// Starts one task per notifier, each behind a bounded queue.
    fn spawn_notifiers(&self, tasks: &mut JoinSet<()>) -> Vec<mpsc::Sender<Event>> {
        let mut notify_to = Vec::new();
        for notifier in &self.notifiers {
            let (queue, events) = mpsc::channel::<Event>(NOTIFY_QUEUE);
            notify_to.push(queue);
            tasks.spawn(notify_loop(notifier.clone(), events, self.metrics.clone()));
        }
        notify_to
    }
}

/// A writer's report: its status is updated and the arbiter told of a failure or a recovery.
fn writer_reported(
    arbiter: &mut Arbiter,
    writer_status: &mut [WriterStatus],
    report: WriterReport,
) -> Vec<Action> {
    match report {
        WriterReport::Failed {
            index,
            error,
            attempt,
        } => {
            writer_status[index].failing = Some(error.clone());
            let writer = writer_status[index].writer.clone();
            arbiter.publish_failed(now(), writer, error, attempt)
        }
        WriterReport::Succeeded {
            index,
            serial,
            attempts,
        } => {
            let status = &mut writer_status[index];
            status.failing = None;
            status.serial = serial.or(status.serial);
            status.last_success = Some(SystemTime::now());
            if attempts > 1 {
                let writer = status.writer.clone();
                arbiter.publish_recovered(now(), writer, attempts)
            } else {
                Vec::new()
            }
        }
    }
}

/// An operator's command, applied to the arbiter; the reply says whether it was accepted.
fn run_command(arbiter: &mut Arbiter, command: AdminCommand, reply: CommandReply) -> Vec<Action> {
    let result = match command {
        AdminCommand::Override { what, set } => arbiter.apply_override(what, set, now()),
        AdminCommand::Failback => Ok(arbiter.request_failback(now())),
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

/// The next word from the peers, or never without shared observations.
async fn next_shared(shared: &mut Option<SharedObservations>) -> SharedInput {
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
