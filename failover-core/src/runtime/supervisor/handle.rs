//! A running supervisor's handle: its status, operators' commands, and the way to stop it.

use tokio::sync::{mpsc, oneshot, watch};

use super::status::StatusReport;
use crate::arbiter::{ArbiterError, Override};

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

/// Where the supervisor answers one command.
pub(super) type CommandReply = oneshot::Sender<Result<(), ArbiterError>>;

/// A running supervisor: its status, its command line, and the way to stop it.
#[derive(Debug)]
pub struct SupervisorHandle {
    pub(super) stop: Option<oneshot::Sender<()>>,
    pub(super) task: tokio::task::JoinHandle<()>,
    pub(super) status: watch::Receiver<StatusReport>,
    pub(super) commands: mpsc::Sender<(AdminCommand, CommandReply)>,
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
        self.stop().await;
    }

    /// Stops every probe, writer and notifier task and waits for them, keeping the handle: its
    /// status then holds the last state the supervisor reached (what a reload carries over).
    /// Stopping a stopped supervisor does nothing.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            let _ = (&mut self.task).await;
        }
    }
}

impl Drop for SupervisorHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
