//! The `HealthCheck` trait: one kind of probe, run against every node.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;

use crate::model::{NodeName, Outcome};

/// Where and how long to probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The node being probed (for messages).
    pub node: NodeName,
    /// The address to probe (the node's `address`).
    pub address: IpAddr,
    /// The probe's own budget. The supervisor also drops the future when it runs out.
    pub timeout: Duration,
}

/// A health check: how to find out whether one service on one node is healthy.
///
/// # Contract
///
/// - The supervisor calls [`probe`](HealthCheck::probe) once per node per interval, from its own
///   task per node and check, never twice at once for the same node.
/// - The call must finish within `target.timeout`; the supervisor drops the future when the timeout
///   has passed and records [`FailureClass::Timeout`](crate::FailureClass::Timeout), so an
///   implementation must be cancel-safe (hold no state across `.await` that a drop would corrupt).
/// - The result is a verdict, not an error: a probe never panics and never returns "I could not
///   tell" as healthy. A misconfigured check reports
///   [`FailureClass::Misconfigured`](crate::FailureClass::Misconfigured) so that the event says so.
/// - A single failure is not a failover: the arbiter applies `fall`/`rise` on top.
///
/// # Example
///
/// ```
/// use async_trait::async_trait;
/// use failover_core::{FailureClass, HealthCheck, Outcome, Target};
///
/// /// Healthy when a UDP socket can be bound towards the node (a toy check).
/// struct CanRoute;
///
/// #[async_trait]
/// impl HealthCheck for CanRoute {
///     fn kind(&self) -> &'static str {
///         "can-route"
///     }
///
///     async fn probe(&self, target: &Target) -> Outcome {
///         let socket = match std::net::UdpSocket::bind("0.0.0.0:0") {
///             Ok(socket) => socket,
///             Err(e) => return Outcome::failed(FailureClass::Unreachable, e.to_string()),
///         };
///         match socket.connect((target.address, 9)) {
///             Ok(()) => Outcome::healthy("route exists"),
///             Err(e) => Outcome::failed(FailureClass::Unreachable, e.to_string()),
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait HealthCheck: Send + Sync + 'static {
    /// The check's kind as written in the config (`tcp`, `http`), for logs and status.
    fn kind(&self) -> &'static str;

    /// Probes `target` once and says what it found.
    async fn probe(&self, target: &Target) -> Outcome;
}
