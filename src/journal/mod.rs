//! The observation journal: every input the arbiter takes (probe results, overrides, failback
//! requests) and what it decided (answers, events), appended to `state_dir/journal/` while the
//! daemon runs, for `failoverd replay` ([`replay`]).
//!
//! [`codec`] holds the records and their frames, [`writer`] the segment files; [`Journal`] is the
//! running writer task, fed by each supervisor in turn.

pub mod codec;
pub mod recent;
pub mod replay;
pub mod writer;

use std::path::{Path, PathBuf};

use failover_core::{JournalEntry, JOURNAL_QUEUE};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::Config;
use writer::{Limits, Writer};

/// Where a config's journal lives: `state_dir/journal/`.
pub fn journal_dir(config: &Config) -> PathBuf {
    config.zone.state_dir.join("journal")
}

/// The observer the daemon is when it shares observations (`[cluster]`).
fn observer(config: &Config) -> Option<String> {
    crate::parts::cluster::quorum_spec(config).map(|spec| spec.local)
}

/// The digest of the config file's text (BLAKE3, hex), kept with each start and reload.
pub fn config_digest(path: &Path) -> String {
    std::fs::read(path)
        .map(|text| blake3::hash(&text).to_hex().to_string())
        .unwrap_or_default()
}

enum Message {
    Entry(JournalEntry),
    Reload(String, Option<String>),
}

/// The running journal: a task that appends what the supervisors send.
pub struct Journal {
    inbox: mpsc::Sender<Message>,
    task: JoinHandle<()>,
    forwarder: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").finish_non_exhaustive()
    }
}

impl Journal {
    /// Opens a new segment for `config` (the arbiter began from `restored`, as JSON) and starts
    /// the writer; `None` when `[journal] enabled = false`. A journal that cannot be opened is
    /// logged and left out: the daemon runs without it.
    pub fn start(config: &Config, restored: Option<String>) -> Option<Self> {
        if !config.journal.enabled {
            return None;
        }
        let dir = journal_dir(config);
        let limits = Limits {
            max_bytes: config.journal.max_size_mb.saturating_mul(1 << 20),
            segment_bytes: config.journal.segment_size_mb.saturating_mul(1 << 20),
        };
        let mut writer = match Writer::open(
            &dir,
            limits,
            config_digest(&config.path),
            observer(config),
            restored,
        ) {
            Ok(writer) => writer,
            Err(e) => {
                tracing::error!(
                    "cannot open the journal in {}: {e}; running without it (failoverd replay will have nothing of this run)",
                    dir.display()
                );
                return None;
            }
        };
        let (inbox, mut messages) = mpsc::channel::<Message>(JOURNAL_QUEUE);
        let task = tokio::spawn(async move {
            let mut failing = false;
            while let Some(message) = messages.recv().await {
                let mut result = apply(&mut writer, message);
                // Whatever else is waiting goes in the same write.
                while let Ok(message) = messages.try_recv() {
                    result = result.and(apply(&mut writer, message));
                }
                let result = result.and_then(|()| writer.flush());
                match (result, failing) {
                    (Err(e), false) => {
                        tracing::error!("cannot write the journal in {}: {e}", dir.display());
                        failing = true;
                    }
                    (Ok(()), true) => {
                        tracing::info!("the journal in {} is written again", dir.display());
                        failing = false;
                    }
                    _ => {}
                }
            }
        });
        Some(Self {
            inbox,
            task,
            forwarder: None,
        })
    }

    /// The sender for the next supervisor ([`failover_core::Supervisor::journal`]); call
    /// [`detach`](Journal::detach) once that supervisor has stopped.
    pub fn attach(&mut self) -> mpsc::Sender<JournalEntry> {
        let (sender, mut entries) = mpsc::channel::<JournalEntry>(JOURNAL_QUEUE);
        let inbox = self.inbox.clone();
        self.forwarder = Some(tokio::spawn(async move {
            while let Some(entry) = entries.recv().await {
                if inbox.send(Message::Entry(entry)).await.is_err() {
                    break;
                }
            }
        }));
        sender
    }

    /// Waits until everything the stopped supervisor sent is with the writer.
    pub async fn detach(&mut self) {
        if let Some(forwarder) = self.forwarder.take() {
            let _ = forwarder.await;
        }
    }

    /// Marks a reload with the new config (after [`detach`](Journal::detach), before the next
    /// [`attach`](Journal::attach)).
    pub async fn reload(&mut self, config: &Config) {
        let _ = self
            .inbox
            .send(Message::Reload(
                config_digest(&config.path),
                observer(config),
            ))
            .await;
    }

    /// Writes what is left and stops (after the last supervisor has stopped).
    pub async fn shutdown(mut self) {
        self.detach().await;
        drop(self.inbox);
        let _ = self.task.await;
    }
}

fn apply(writer: &mut Writer, message: Message) -> std::io::Result<()> {
    match message {
        Message::Entry(entry) => {
            writer.add(&entry);
            Ok(())
        }
        Message::Reload(config, observer) => writer.reload(config, observer),
    }
}
