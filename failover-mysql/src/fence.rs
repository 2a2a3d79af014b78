//! `MysqlFence`: one writer at a time. Before the answer moves, the old primary gets
//! `read_only = 1` and the new one `read_only = 0`; a lagging new primary is not promoted.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use failover_core::{Fence, FenceReport, FenceStep, NodeName, PublishContext, Veto};

use crate::client::{Credentials, Session};
use crate::endpoint::Endpoint;
use crate::error::MysqlError;
use crate::status::{ReplicaStatus, ServerState};

/// How far behind a new primary may be and still be promoted, unless configured otherwise.
pub const DEFAULT_MAX_PROMOTE_LAG: Duration = Duration::from_secs(10);
/// How long the old primary must be down before a lagging new one is promoted anyway, unless
/// configured otherwise.
pub const DEFAULT_PROMOTE_AFTER_DOWN: Duration = Duration::from_secs(300);
/// How long a refused promotion waits before it is decided again, unless configured otherwise.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Budget of each call to a server (fencing, status, setup), unless configured otherwise.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What [`MysqlFence`] needs.
#[derive(Clone, Debug)]
pub struct FenceOptions {
    /// Each node's MySQL server. Nodes not listed have no database to fence.
    pub servers: BTreeMap<NodeName, Endpoint>,
    /// A user allowed to `SET GLOBAL read_only` (SUPER, or `READ_ONLY ADMIN` on MariaDB 10.11,
    /// `SYSTEM_VARIABLES_ADMIN` on MySQL 8) and to read the replica status.
    pub admin: Credentials,
    /// A new primary whose SQL thread is further behind than this is not promoted.
    pub max_promote_lag: Duration,
    /// ... unless every node the answer leaves has been down for longer than this: then waiting
    /// for a replica that cannot catch up any more only keeps the site down.
    pub promote_after_down: Duration,
    /// Budget of each call to a server.
    pub timeout: Duration,
    /// How long a refused promotion is held back before the arbiter decides again.
    pub retry_after: Duration,
}

/// The [`Fence`] of a MySQL/MariaDB master-master pair behind an active-passive answer.
///
/// On a move from `old` to `new`, in order:
/// 1. reads `new`'s replica status; refuses while its SQL thread has unapplied relay log or lags
///    beyond `max_promote_lag` (or cannot be read), unless `old` has been down for longer than
///    `promote_after_down`;
/// 2. sets `super_read_only = 1` (where it exists) and `read_only = 1` on `old` if it is
///    reachable; an unreachable `old` is reported and skipped, a reachable one that refuses
///    vetoes the move (two writers are worse than a late failover) unless it is confirmed down;
/// 3. sets `read_only = 0` on `new`; if that fails, `old` is made writable again and the move is
///    refused.
///
/// Every step is a `fence-step` event; every refusal a `publish-vetoed` event.
#[derive(Clone, Debug)]
pub struct MysqlFence {
    options: FenceOptions,
}

impl MysqlFence {
    /// A fence over `options.servers`.
    pub fn new(options: FenceOptions) -> Self {
        Self { options }
    }

    fn veto(&self, reason: String, steps: Vec<FenceStep>) -> Veto {
        Veto {
            reason,
            steps,
            retry_after: self.options.retry_after,
        }
    }

    async fn session(&self, endpoint: &Endpoint) -> Result<Session, MysqlError> {
        Session::connect(endpoint, &self.options.admin, self.options.timeout).await
    }

    /// Reads `new`'s replica threads over a short-lived connection.
    async fn replica_of(&self, endpoint: &Endpoint) -> Result<Option<ReplicaStatus>, MysqlError> {
        let mut session = self.session(endpoint).await?;
        let state = ServerState::fetch(&mut session).await;
        session.close().await;
        Ok(state?.replica)
    }

    /// `SET GLOBAL read_only` (and `super_read_only` where it exists) on `endpoint`.
    async fn set_read_only(&self, endpoint: &Endpoint, on: bool) -> Result<String, MysqlError> {
        let mut session = self.session(endpoint).await?;
        let result = async {
            let state = ServerState::fetch(&mut session).await?;
            let value = u8::from(on);
            if on {
                if state.super_read_only.is_some() {
                    session.exec("SET GLOBAL super_read_only = 1").await?;
                }
                session.exec("SET GLOBAL read_only = 1").await?;
            } else {
                // Clearing read_only clears super_read_only too.
                session.exec("SET GLOBAL read_only = 0").await?;
            }
            Ok(format!(
                "{} ({}) read_only was {}, is {value}",
                endpoint,
                state.version,
                u8::from(state.read_only)
            ))
        }
        .await;
        session.close().await;
        result
    }
}

#[async_trait]
impl Fence for MysqlFence {
    fn describe(&self) -> String {
        "mysql fencing".to_owned()
    }

    fn timeout(&self) -> Duration {
        // Connect and a few statements on each of two servers, plus a rollback.
        self.options.timeout.saturating_mul(12)
    }

    async fn before_publish(&self, context: &PublishContext) -> Result<FenceReport, Veto> {
        let mut steps = Vec::new();
        let [new] = context.to.as_slice() else {
            steps.push(FenceStep::failed(
                context.to.first().unwrap_or(&NodeName::new("-")),
                "fence",
                format!(
                    "skipped: {} nodes published at once; fencing keeps one writer and needs policy kind = \"active-passive\"",
                    context.to.len()
                ),
            ));
            return Ok(FenceReport { steps });
        };
        let Some(new_endpoint) = self.options.servers.get(new) else {
            steps.push(FenceStep::done(
                new,
                "fence",
                "no MySQL server configured for this node: nothing to do",
            ));
            return Ok(FenceReport { steps });
        };
        let change = Move {
            new,
            new_endpoint,
            old: context
                .leaving
                .iter()
                .filter_map(|l| self.options.servers.get(&l.node).map(|e| (&l.node, e)))
                .collect(),
            confirmed_down: !context.leaving.is_empty()
                && context.leaving.iter().all(|l| {
                    l.down_for
                        .is_some_and(|d| d >= self.options.promote_after_down)
                }),
            context,
        };
        self.check_caught_up(&change, &mut steps).await?;
        let fenced = self.fence_old(&change, &mut steps).await?;
        self.promote(&change, &fenced, &mut steps).await?;
        Ok(FenceReport { steps })
    }
}

/// One move of the answer, as the fence sees it.
struct Move<'a> {
    /// The node the answer moves to, and its server.
    new: &'a NodeName,
    new_endpoint: &'a Endpoint,
    /// The nodes the answer leaves that have a server.
    old: Vec<(&'a NodeName, &'a Endpoint)>,
    /// Every node the answer leaves has been down for at least `promote_after_down`.
    confirmed_down: bool,
    context: &'a PublishContext,
}

impl Move<'_> {
    /// How the nodes the answer leaves are, in words (`a down for 5m`).
    fn down_words(&self) -> String {
        self.context
            .leaving
            .iter()
            .map(|l| match l.down_for {
                Some(d) => format!(
                    "{} down for {}",
                    l.node,
                    humantime::format_duration(Duration::from_secs(d.as_secs()))
                ),
                None => format!("{} {}", l.node, l.health),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl MysqlFence {
    /// Step 1: is the new primary caught up? Refuses when it is not, unless the old one is
    /// confirmed down.
    async fn check_caught_up(
        &self,
        change: &Move<'_>,
        steps: &mut Vec<FenceStep>,
    ) -> Result<(), Veto> {
        let new = change.new;
        let behind = match self.replica_of(change.new_endpoint).await {
            Ok(Some(replica)) => {
                let lag_too_big = replica
                    .lag()
                    .is_some_and(|lag| lag > self.options.max_promote_lag);
                if replica.unapplied_relay_log() || lag_too_big {
                    Some(format!(
                        "{new}'s SQL thread is not caught up ({}{}; max_promote_lag {})",
                        replica.summary(),
                        if replica.unapplied_relay_log() {
                            ", relay log not yet applied"
                        } else {
                            ""
                        },
                        humantime::format_duration(self.options.max_promote_lag)
                    ))
                } else {
                    steps.push(FenceStep::done(
                        new,
                        "check replication before promoting",
                        replica.summary(),
                    ));
                    None
                }
            }
            Ok(None) => {
                steps.push(FenceStep::done(
                    new,
                    "check replication before promoting",
                    "not a replica: nothing to wait for",
                ));
                None
            }
            Err(e) => Some(format!("cannot read {new}'s replication state: {e}")),
        };
        let Some(behind) = behind else {
            return Ok(());
        };
        if !change.confirmed_down {
            return Err(self.veto(
                format!(
                    "{behind}; promoting it now would lose writes (promoted anyway once the old primary has been down for {}: {})",
                    humantime::format_duration(self.options.promote_after_down),
                    change.down_words()
                ),
                std::mem::take(steps),
            ));
        }
        steps.push(FenceStep::done(
            new,
            "promote despite the lag",
            format!("{behind}; {}", change.down_words()),
        ));
        Ok(())
    }

    /// Step 2: makes the old primaries read-only; returns those it fenced. A reachable one that
    /// refuses vetoes the move (after undoing the others) unless they are confirmed down.
    async fn fence_old<'a>(
        &self,
        change: &Move<'a>,
        steps: &mut Vec<FenceStep>,
    ) -> Result<Vec<(&'a NodeName, &'a Endpoint)>, Veto> {
        let mut fenced = Vec::new();
        for &(node, endpoint) in &change.old {
            match self.set_read_only(endpoint, true).await {
                Ok(detail) => {
                    steps.push(FenceStep::done(node, "set read_only = 1", detail));
                    fenced.push((node, endpoint));
                }
                Err(e) if e.is_unreachable() => {
                    steps.push(FenceStep::failed(
                        node,
                        "set read_only = 1",
                        format!("{e}; it takes no writes through the site once the answer has moved, but set read_only = 1 before it rejoins"),
                    ));
                }
                Err(e) => {
                    steps.push(FenceStep::failed(node, "set read_only = 1", e.to_string()));
                    if !change.confirmed_down {
                        self.unfence(&fenced, steps).await;
                        return Err(self.veto(
                            format!("{node} answers but cannot be made read-only ({e}); two writers would be worse than waiting"),
                            std::mem::take(steps),
                        ));
                    }
                }
            }
        }
        Ok(fenced)
    }

    /// Step 3: makes the new primary writable; if it cannot be, undoes step 2 and refuses.
    async fn promote(
        &self,
        change: &Move<'_>,
        fenced: &[(&NodeName, &Endpoint)],
        steps: &mut Vec<FenceStep>,
    ) -> Result<(), Veto> {
        let new = change.new;
        match self.set_read_only(change.new_endpoint, false).await {
            Ok(detail) => {
                steps.push(FenceStep::done(new, "set read_only = 0", detail));
                Ok(())
            }
            Err(e) => {
                steps.push(FenceStep::failed(new, "set read_only = 0", e.to_string()));
                self.unfence(fenced, steps).await;
                Err(self.veto(
                    format!("cannot make {new} writable: {e}"),
                    std::mem::take(steps),
                ))
            }
        }
    }

    /// Undoes step 2 after a refusal, so that the answer that stays has a writable database.
    async fn unfence(&self, fenced: &[(&NodeName, &Endpoint)], steps: &mut Vec<FenceStep>) {
        for (node, endpoint) in fenced {
            match self.set_read_only(endpoint, false).await {
                Ok(detail) => steps.push(FenceStep::done(
                    node,
                    "set read_only = 0 again (move refused)",
                    detail,
                )),
                Err(e) => steps.push(FenceStep::failed(
                    node,
                    "set read_only = 0 again (move refused)",
                    e.to_string(),
                )),
            }
        }
    }
}
