//! The `ZoneWriter` trait and what it publishes: addresses for managed names.

use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;
use serde::Serialize;

use crate::model::NodeName;

/// The answer for one managed name (`@`, `www`): the addresses of the chosen nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ManagedAnswer {
    /// The name relative to the zone's origin, as in a zone file: `@` for the apex, `www`.
    pub name: String,
    /// TTL of the published records, in seconds.
    pub ttl: u32,
    /// The addresses to publish, in order (A for IPv4, AAAA for IPv6). Never empty.
    pub addresses: Vec<IpAddr>,
}

/// Everything a zone writer must make true: the answers of every managed name.
///
/// A publication is the whole desired state, never a diff, so that publishing the same
/// publication twice is harmless and a retry publishes the newest one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Publication {
    /// The nodes whose addresses are published, in order, for the names that follow the
    /// default policy (what a [`Fence`](crate::Fence) judges). Names with a policy of their own
    /// ([`ManagedName::policy`](crate::ManagedName::policy)) may answer other nodes: their
    /// addresses are in `answers`.
    pub nodes: Vec<NodeName>,
    /// The answers, one per managed name whose policy has decided one (a name whose policy
    /// has nothing to publish yet is left out, and keeps what the zone had).
    pub answers: Vec<ManagedAnswer>,
}

/// What a zone writer reports after a successful publish.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PublishReceipt {
    /// The zone's SOA serial after the change, where the writer knows it.
    pub serial: Option<u32>,
}

/// Why a publish failed, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PublishError {
    /// What went wrong and, where known, what to do about it (the server's own message).
    pub message: String,
}

impl PublishError {
    /// A publish error with a message.
    pub fn new(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
        }
    }
}

/// A place where the managed answers are published: the built-in server's zone, a zone file
/// that BIND reloads, a primary that takes dynamic updates.
///
/// # Contract
///
/// - [`publish`](ZoneWriter::publish) is called by the supervisor from one task per writer,
///   never concurrently for the same writer, each time the arbiter decides a new answer.
/// - It must be idempotent: the publication is the full desired state.
/// - `Err` means the answer is *not* live; the supervisor reports a `PublishFailed` event and
///   retries with backoff, always with the newest publication. The writer must leave the
///   previous answer in place on failure (never a half-written zone).
/// - It is not cancelled midway in normal operation, but a shutdown may drop it: a writer that
///   writes files writes a temp file and renames it.
///
/// # Example
///
/// ```
/// use std::sync::Mutex;
/// use async_trait::async_trait;
/// use failover_core::{Publication, PublishError, PublishReceipt, ZoneWriter};
///
/// /// Keeps the last publication in memory (what a test double or a status page might do).
/// #[derive(Default)]
/// struct Remember(Mutex<Option<Publication>>);
///
/// #[async_trait]
/// impl ZoneWriter for Remember {
///     fn describe(&self) -> String {
///         "in-memory".to_owned()
///     }
///
///     async fn publish(&self, publication: &Publication) -> Result<PublishReceipt, PublishError> {
///         let mut last = self.0.lock().map_err(|_| PublishError::new("lock poisoned"))?;
///         *last = Some(publication.clone());
///         Ok(PublishReceipt::default())
///     }
/// }
/// ```
#[async_trait]
pub trait ZoneWriter: Send + Sync + 'static {
    /// A short description for logs and events (`served zone test.ru`, `zone file /etc/bind/db.test.ru`).
    fn describe(&self) -> String;

    /// Makes `publication` live.
    async fn publish(&self, publication: &Publication) -> Result<PublishReceipt, PublishError>;
}
