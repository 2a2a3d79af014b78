//! The log notifier: every event to `tracing`.

use async_trait::async_trait;

use crate::event::Event;
use crate::notifier::{Notifier, NotifyError};

/// Writes every event to the log (tracing), at `warn` for bad news and `info` otherwise.
#[derive(Clone, Debug, Default)]
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    fn name(&self) -> &str {
        "log"
    }

    async fn notify(&self, event: &Event) -> Result<(), NotifyError> {
        use crate::event::EventKind as K;
        match event.kind {
            K::CheckDown { .. }
            | K::NodeDown { .. }
            | K::Failover { .. }
            | K::AllDown { .. }
            | K::PublishFailed { .. }
            | K::Flapping { .. } => {
                tracing::warn!(event = event.name(), subject = %event.subject(), "{event}")
            }
            _ => tracing::info!(event = event.name(), subject = %event.subject(), "{event}"),
        }
        Ok(())
    }
}
