//! The serving node's loop: answers the driving node's requests with its replica, forwards
//! its watcher's changes, and shows the status the driver reports.

use std::sync::mpsc;

use failover_core::SyncReport;

use super::link::{Delivery, Link, Message};
use super::node::{update, Input, SharedStatus};
use crate::protocol::Handler;
use crate::replica::LocalReplica;

/// The serving node's loop: answers the driver's requests with its replica and forwards its
/// watcher's changes.
pub(super) struct Served {
    replica: LocalReplica,
    shared: SharedStatus,
    runtime: tokio::runtime::Handle,
    input: mpsc::Sender<Input>,
    link: Option<Link>,
    next_link: u64,
}

impl Served {
    pub(super) fn new(
        replica: LocalReplica,
        shared: SharedStatus,
        runtime: tokio::runtime::Handle,
        input: mpsc::Sender<Input>,
    ) -> Served {
        Served {
            replica,
            shared,
            runtime,
            input,
            link: None,
            next_link: 1,
        }
    }

    pub(super) fn run(mut self, inputs: &mpsc::Receiver<Input>) {
        while let Ok(input) = inputs.recv() {
            match input {
                Input::Stop => return,
                Input::Accepted(stream) => {
                    let id = self.next_link;
                    self.next_link += 1;
                    let input = self.input.clone();
                    let link = Link::start(
                        *stream,
                        id,
                        &self.runtime,
                        move |delivery| {
                            let _ = input.send(Input::Link(delivery));
                        },
                        None,
                        self.shared
                            .lock()
                            .map(|s| s.link_bytes.clone())
                            .unwrap_or_default(),
                    );
                    tracing::info!("mirror: {} connected; it drives", link.peer);
                    // A new connection replaces an old one (the driver reconnected).
                    self.link = Some(link);
                    update(&self.shared, |s| s.status.peer_connected = true);
                }
                Input::Link(Delivery::Closed(id, reason)) => {
                    if self.link.as_ref().is_some_and(|l| l.id == id) {
                        let link = self.link.take();
                        tracing::warn!(
                            "mirror: link from {} lost: {reason}",
                            link.map(|l| l.peer.clone()).unwrap_or_default()
                        );
                        update(&self.shared, |s| s.status.peer_connected = false);
                    }
                }
                Input::Link(Delivery::Message(id, message)) => {
                    if self.link.as_ref().is_some_and(|l| l.id == id) {
                        self.answer(*message);
                    }
                }
                Input::Local(paths) => {
                    update(&self.shared, |s| s.queued += paths.len() as u64);
                    // Not connected: the full run on the next connect finds them.
                    if let Some(link) = &self.link {
                        let _ = link.send(Message::Changed(paths));
                    }
                }
                Input::LocalRescan(why) => {
                    tracing::warn!("mirror: {why}; asking the driving node for a full run");
                    if let Some(link) = &self.link {
                        let _ = link.send(Message::Rescan);
                    }
                }
                Input::RunNow(reply) => {
                    let result = match &self.link {
                        Some(link) => link
                            .send(Message::Rescan)
                            .map(|()| SyncReport::default())
                            .map_err(|e| e.to_string()),
                        None => Err("the driving node is not connected".to_owned()),
                    };
                    let _ = reply.send(result);
                }
            }
        }
    }

    fn answer(&mut self, message: Message) {
        let Some(link) = &self.link else { return };
        match message {
            Message::Call(request) => {
                let reply = self.replica.handle(request).map_err(|e| e.to_string());
                if let Err(reason) = &reply {
                    tracing::warn!("mirror: request from {} refused: {reason}", link.peer);
                }
                let _ = link.send(Message::Reply(reply));
            }
            Message::Report(report) => update(&self.shared, |s| {
                s.status.last_sync = report.in_step_since;
                s.status.backlog_files = report.backlog_files;
                s.status.backlog_bytes = report.backlog_bytes;
                s.status.conflicts = report.conflicts;
                s.status.problem = report.problem;
                s.queued = 0;
            }),
            other => tracing::warn!(
                "mirror: {} sent an unexpected {}; ignored",
                link.peer,
                other.name()
            ),
        }
    }
}
