//! The `mirror` health check: whether this node's live mirror is connected and in step.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use failover_core::{FailureClass, FileMirror, HealthCheck, Outcome, Target};

use crate::engine::human_bytes;

/// How long a change may wait before the mirror check fails, unless configured otherwise.
pub const DEFAULT_MAX_LAG: std::time::Duration = std::time::Duration::from_secs(60);

/// Healthy when the mirror's link is up, no run was refused, and every change is mirrored or
/// was made less than `max_lag` ago.
///
/// The mirror is one link between two nodes and one engine reconciles both replicas, so what
/// this node sees is true of the pair: the check gives the same verdict for this node and
/// its peer (a lagging mirror makes either copy of the site stale). Nodes outside the pair
/// are reported healthy with the detail "not in the mirror pair", since the check says nothing
/// about them.
pub struct MirrorCheck {
    mirror: Option<Arc<dyn FileMirror>>,
    pair: [String; 2],
    max_lag: Duration,
}

impl MirrorCheck {
    /// A check of `mirror` between `node` and `peer_node`. `None`: no mirror runs (the check
    /// then reports itself misconfigured).
    pub fn new(
        mirror: Option<Arc<dyn FileMirror>>,
        node: &str,
        peer_node: &str,
        max_lag: Duration,
    ) -> Self {
        MirrorCheck {
            mirror,
            pair: [node.to_owned(), peer_node.to_owned()],
            max_lag,
        }
    }
}

#[async_trait]
impl HealthCheck for MirrorCheck {
    fn kind(&self) -> &'static str {
        "mirror"
    }

    async fn probe(&self, target: &Target) -> Outcome {
        let Some(mirror) = &self.mirror else {
            return Outcome::failed(
                FailureClass::Misconfigured,
                "kind = \"mirror\" needs a [mirror] section in the config",
            );
        };
        if !self.pair.iter().any(|n| n == target.node.as_str()) {
            return Outcome::healthy(format!(
                "not in the mirror pair ({} and {})",
                self.pair[0], self.pair[1]
            ));
        }
        let status = mirror.status();
        if !status.peer_connected {
            return Outcome::failed(
                FailureClass::Unreachable,
                format!(
                    "the mirror link between {} and {} is down",
                    self.pair[0], self.pair[1]
                ),
            );
        }
        let ago = status
            .last_sync
            .and_then(|at| SystemTime::now().duration_since(at).ok());
        let ago_text = match ago {
            Some(ago) => format!(
                "in step as of {} ago",
                humantime::format_duration(Duration::from_secs(ago.as_secs()))
            ),
            None => "not in step yet".to_owned(),
        };
        if let Some(problem) = &status.problem {
            if status.backlog_files > 0 || ago.is_none_or(|a| a > self.max_lag) {
                return Outcome::failed(FailureClass::Unhealthy, format!("{problem}; {ago_text}"));
            }
        }
        if status.backlog_files > 0 && ago.is_none_or(|a| a > self.max_lag) {
            return Outcome::failed(
                FailureClass::Unhealthy,
                format!(
                    "{} paths ({}) waiting; {ago_text} (max_lag {})",
                    status.backlog_files,
                    human_bytes(status.backlog_bytes),
                    humantime::format_duration(self.max_lag)
                ),
            );
        }
        Outcome::healthy(format!(
            "connected, {ago_text}, {} waiting, {} conflict{} since start, sent {} for {}",
            status.backlog_files,
            status.conflicts,
            if status.conflicts == 1 { "" } else { "s" },
            human_bytes(status.link_bytes_sent),
            human_bytes(status.link_bytes_raw),
        ))
    }
}
