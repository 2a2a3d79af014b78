//! The `Notifier` trait (where events are sent), its error, the event names and the `Filtered`
//! wrapper; the built-in notifiers are in the runtime.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;

use crate::event::Event;

/// Why a notification was not delivered.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    /// What went wrong, in words an operator can act on.
    pub message: String,
}

impl NotifyError {
    /// A notify error with a message.
    pub fn new(message: impl std::fmt::Display) -> Self {
        Self {
            message: message.to_string(),
        }
    }
}

/// Somewhere events are sent: the log, a command, e-mail, a webhook.
///
/// # Contract
///
/// - [`notify`](Notifier::notify) is called from the notifier's own task, one event at a time, in
///   order; a slow notifier never delays the arbiter or the DNS answer (the queue in front of it is
///   bounded and drops the oldest with a warning when full).
/// - `Err` means the event was not delivered; the supervisor logs it and retries a few times with
///   backoff. A notifier must therefore tolerate being called twice with the same event.
/// - It must finish in bounded time (apply its own timeout).
///
/// # Example
///
/// ```
/// use async_trait::async_trait;
/// use failover_core::{Event, Notifier, NotifyError};
///
/// /// Prints every event on standard error.
/// struct Stderr;
///
/// #[async_trait]
/// impl Notifier for Stderr {
///     fn name(&self) -> &str {
///         "stderr"
///     }
///
///     async fn notify(&self, event: &Event) -> Result<(), NotifyError> {
///         eprintln!("{event}");
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// The notifier's name, for logs (`log`, `hook /usr/local/bin/page-me`).
    fn name(&self) -> &str;

    /// Delivers one event.
    async fn notify(&self, event: &Event) -> Result<(), NotifyError>;

    /// Delivers events that arrived together (within [`batch_window`](Notifier::batch_window)),
    /// oldest first. The default delivers them one by one; a notifier for humans (e-mail) sends
    /// one message that tells the whole story (check down, node down, failover).
    async fn notify_batch(&self, events: &[Event]) -> Result<(), NotifyError> {
        for event in events {
            self.notify(event).await?;
        }
        Ok(())
    }

    /// How long the supervisor gathers events after the first one before delivering them as
    /// one batch. Zero (the default) delivers each at once.
    fn batch_window(&self) -> Duration {
        Duration::ZERO
    }
}

/// Every event name, as in `Event::name` and the config's `events` filters.
pub const EVENT_NAMES: &[&str] = &[
    "check-down",
    "check-up",
    "node-down",
    "node-up",
    "failover",
    "failback",
    "answer-changed",
    "all-down",
    "publish-failed",
    "publish-recovered",
    "flapping",
    "settled",
    "override",
    "mirror-conflicts",
    "mirror-failed",
    "fence-step",
    "publish-vetoed",
];

/// How long one delivery (a command, a mail, a webhook call) may take, unless configured
/// otherwise.
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Passes only the named events on to a notifier (`events = ["failover", "node-down"]`).
pub struct Filtered<N> {
    inner: N,
    names: BTreeSet<&'static str>,
}

impl<N: Notifier> Filtered<N> {
    /// Wraps `inner`, passing only events named in `names`; unknown names are an error naming
    /// the known ones.
    pub fn new(inner: N, names: &[String]) -> Result<Self, NotifyError> {
        let mut kept = BTreeSet::new();
        for name in names {
            match EVENT_NAMES.iter().find(|known| **known == name.as_str()) {
                Some(known) => {
                    kept.insert(*known);
                }
                None => {
                    return Err(NotifyError::new(format!(
                        "unknown event {name:?} (expected one of: {})",
                        EVENT_NAMES.join(", ")
                    )))
                }
            }
        }
        Ok(Self { inner, names: kept })
    }
}

#[async_trait]
impl<N: Notifier> Notifier for Filtered<N> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn notify(&self, event: &Event) -> Result<(), NotifyError> {
        if self.names.contains(event.name()) {
            self.inner.notify(event).await
        } else {
            Ok(())
        }
    }

    async fn notify_batch(&self, events: &[Event]) -> Result<(), NotifyError> {
        let kept: Vec<Event> = events
            .iter()
            .filter(|e| self.names.contains(e.name()))
            .cloned()
            .collect();
        if kept.is_empty() {
            return Ok(());
        }
        self.inner.notify_batch(&kept).await
    }

    fn batch_window(&self) -> Duration {
        self.inner.batch_window()
    }
}
