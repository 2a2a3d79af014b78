//! The supervisor's tasks: one per node and check probes, one per writer publishes with backoff,
//! one per notifier delivers in batches.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::metrics::SupervisorMetrics;
use crate::event::Event;
use crate::health::{HealthCheck, Target};
use crate::model::{CheckName, FailureClass, Observation, Outcome};
use crate::notifier::Notifier;
use crate::runtime::clock::now;
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

/// Bound of each notifier's queue; when full, the oldest event is dropped with a warning.
pub(super) const NOTIFY_QUEUE: usize = 256;
/// Longest wait between two attempts to publish.
const MAX_PUBLISH_BACKOFF: Duration = Duration::from_secs(30);
/// Attempts to deliver one event to one notifier.
const NOTIFY_ATTEMPTS: u32 = 3;

/// A random duration from zero to `max` (the probes' jitter).
fn random_up_to(max: Duration) -> Duration {
    let max_ms = max.as_millis().min(u128::from(u64::MAX)) as u64;
    if max_ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::random_range(0..=max_ms))
}

/// What a writer's task tells the supervisor after each attempt.
pub(super) enum WriterReport {
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

/// Probes one node with one check on its schedule until the supervisor stops listening.
pub(super) async fn probe_loop(
    target: Target,
    check_name: CheckName,
    check: Arc<dyn HealthCheck>,
    schedule: ProbeSchedule,
    observations: mpsc::Sender<Observation>,
    metrics: Option<Arc<dyn SupervisorMetrics>>,
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
        if let Some(metrics) = &metrics {
            metrics.probed(&target.node, &check_name, &outcome, started.elapsed());
        }
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

/// Publishes the newest wanted answer through one writer, retrying failures with backoff.
pub(super) async fn publish_loop(
    index: usize,
    writer: Arc<dyn ZoneWriter>,
    mut wanted: watch::Receiver<Option<Publication>>,
    reports: mpsc::Sender<WriterReport>,
    metrics: Option<Arc<dyn SupervisorMetrics>>,
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
            let started = tokio::time::Instant::now();
            let result = writer.publish(&publication).await;
            if let Some(metrics) = &metrics {
                let error = result.as_ref().err().map(ToString::to_string);
                metrics.published(
                    &writer.describe(),
                    started.elapsed(),
                    error.as_deref().map_or(Ok(()), Err),
                );
            }
            let report = match result {
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

/// Delivers events to one notifier, in batches of its window, retrying a few times.
pub(super) async fn notify_loop(
    notifier: Arc<dyn Notifier>,
    mut events: mpsc::Receiver<Event>,
    metrics: Option<Arc<dyn SupervisorMetrics>>,
) {
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
            let result = notifier.notify_batch(&batch).await;
            if let Some(metrics) = &metrics {
                let error = result.as_ref().err().map(ToString::to_string);
                metrics.notified(
                    notifier.name(),
                    batch.len(),
                    error.as_deref().map_or(Ok(()), Err),
                );
            }
            match result {
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
