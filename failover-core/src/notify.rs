//! The `Notifier` trait and the built-in notifiers: the log and a command hook.

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
}
