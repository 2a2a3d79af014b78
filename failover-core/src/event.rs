//! Events: what the arbiter and the supervisor report on every transition.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::model::{CheckName, FailureClass, NodeName};
use crate::policy::AllDown;

/// Something that happened, with when it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// When it happened (wall clock), RFC 3339 in JSON.
    #[serde(with = "humantime_serde")]
    pub at: SystemTime,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// A non-critical data check (see [`CheckSpec::data`](crate::CheckSpec::data)) of a node the
/// answer moved to that is down: something the new answer may be missing (files not yet
/// mirrored, replication behind).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DegradedCheck {
    /// The node.
    pub node: NodeName,
    /// The check (`mirror`, `mysql-replication`).
    pub check: CheckName,
    /// Its last probe's error (`3 files pending`, `replication 42 s behind`).
    pub error: String,
}

impl fmt::Display for DegradedCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {} is down", self.check, self.node)?;
        if !self.error.is_empty() {
            write!(f, " ({})", self.error)?;
        }
        Ok(())
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum EventKind {
    /// A check failed `fall` times in a row.
    CheckDown {
        /// The node.
        node: NodeName,
        /// The check.
        check: CheckName,
        /// Whether the check is critical (takes the node down).
        critical: bool,
        /// The kind of the last failure.
        class: FailureClass,
        /// The last probe's error text.
        error: String,
        /// Failures in a row so far.
        consecutive_failures: u32,
        /// When the first of those failures was seen.
        #[serde(with = "humantime_serde")]
        failing_since: SystemTime,
    },
    /// A check succeeded `rise` times in a row after being down (or on its first verdict).
    CheckUp {
        /// The node.
        node: NodeName,
        /// The check.
        check: CheckName,
        /// What the probe said.
        detail: String,
        /// How long it had been down, if it had been.
        #[serde(with = "humantime_serde")]
        down_for: Option<Duration>,
    },
    /// A node's critical checks are no longer all up.
    NodeDown {
        /// The node.
        node: NodeName,
        /// The critical checks that are down.
        failed_checks: Vec<CheckName>,
    },
    /// Every critical check of a node is up.
    NodeUp {
        /// The node.
        node: NodeName,
    },
    /// The answer moved away from nodes that went down.
    Failover {
        /// The managed names this answer is for when they follow a policy of their own
        /// ([`ManagedName::policy`](crate::ManagedName::policy)); empty for the default policy's
        /// answer, which every other name follows.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        names: Vec<String>,
        /// Nodes published before.
        from: Vec<NodeName>,
        /// Nodes published now.
        to: Vec<NodeName>,
        /// Addresses published before.
        from_addresses: Vec<IpAddr>,
        /// Addresses published now.
        to_addresses: Vec<IpAddr>,
        /// The new nodes' non-critical data checks ([`CheckSpec::data`](crate::CheckSpec::data))
        /// that are down (a mirror behind, replication broken): the failover still happens, and
        /// this says what may be missing. Checks about services (SSH) are never named here.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        degraded: Vec<DegradedCheck>,
    },
    /// The answer moved back to the preferred node.
    Failback {
        /// The managed names this answer is for when they follow a policy of their own
        /// ([`ManagedName::policy`](crate::ManagedName::policy)); empty for the default policy's
        /// answer, which every other name follows.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        names: Vec<String>,
        /// Nodes published before.
        from: Vec<NodeName>,
        /// Nodes published now.
        to: Vec<NodeName>,
        /// Addresses published before.
        from_addresses: Vec<IpAddr>,
        /// Addresses published now.
        to_addresses: Vec<IpAddr>,
    },
    /// The answer changed for another reason (first publication, all-healthy set changed).
    AnswerChanged {
        /// The managed names this answer is for when they follow a policy of their own
        /// ([`ManagedName::policy`](crate::ManagedName::policy)); empty for the default policy's
        /// answer, which every other name follows.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        names: Vec<String>,
        /// Nodes published before (empty on the first publication).
        from: Vec<NodeName>,
        /// Nodes published now.
        to: Vec<NodeName>,
        /// Addresses published before.
        from_addresses: Vec<IpAddr>,
        /// Addresses published now.
        to_addresses: Vec<IpAddr>,
    },
    /// No node is up; the configured rule decides the answer.
    AllDown {
        /// The managed names this answer is for when they follow a policy of their own
        /// ([`ManagedName::policy`](crate::ManagedName::policy)); empty for the default policy's
        /// answer, which every other name follows.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        names: Vec<String>,
        /// The rule applied.
        rule: AllDown,
        /// Nodes published under the rule (the last answer for `keep-last`).
        answer: Vec<NodeName>,
    },
    /// A zone writer failed to publish; it will be retried.
    PublishFailed {
        /// The writer (`served zone test.ru`).
        writer: String,
        /// Nodes that should have been published.
        answer: Vec<NodeName>,
        /// The writer's error.
        error: String,
        /// Attempts so far.
        attempt: u32,
    },
    /// A publish succeeded after failing.
    PublishRecovered {
        /// The writer.
        writer: String,
        /// Attempts it took.
        attempts: u32,
    },
    /// Something changed state too often; further changes are recorded but not notified until
    /// it settles.
    Flapping {
        /// What flaps (`http on master`).
        subject: String,
        /// Transitions seen within the window.
        transitions: u32,
        /// The damping window.
        #[serde(with = "humantime_serde")]
        window: Duration,
    },
    /// The file mirror kept both versions of paths changed on both nodes.
    MirrorConflicts {
        /// Conflicts in the run.
        count: u64,
        /// The first few (path, where the other version was kept, whose version won).
        examples: Vec<crate::mirror::Conflict>,
    },
    /// The file mirror could not write some paths (they are retried).
    MirrorFailed {
        /// Paths not mirrored in the run.
        count: u64,
        /// One of them.
        example: String,
        /// Why, with the fix where known.
        reason: String,
    },
    /// An operator set or removed an override.
    Override {
        /// What was done (`drain master`, `undo force http on slave down`).
        action: String,
    },
    /// A fence did (or failed to do) one step before the answer moved.
    FenceStep {
        /// The fence (`mysql fencing`).
        fence: String,
        /// The node the step was done to.
        node: NodeName,
        /// What was done (`set read_only = 1`).
        action: String,
        /// Whether it succeeded.
        done: bool,
        /// What the node said, or why it failed.
        detail: String,
    },
    /// A fence refused to let the answer move; the answer stays and is decided again later.
    PublishVetoed {
        /// The fence.
        fence: String,
        /// Nodes still published.
        kept: Vec<NodeName>,
        /// Nodes the answer would have moved to.
        refused: Vec<NodeName>,
        /// Why.
        reason: String,
        /// When the arbiter decides again.
        #[serde(with = "humantime_serde")]
        retry_after: Duration,
    },
    /// A flapping subject has been stable for a whole window.
    Settled {
        /// What had flapped.
        subject: String,
        /// Transitions that were not notified meanwhile.
        suppressed: u32,
        /// Its state now, in words (`up`, `down`, `10.1.0.1`).
        state: String,
    },
}

impl EventKind {
    /// The managed names an answer event is about when they follow a policy of their own;
    /// empty for the default policy's answer and for every other kind.
    pub fn names(&self) -> &[String] {
        match self {
            EventKind::Failover { names, .. }
            | EventKind::Failback { names, .. }
            | EventKind::AnswerChanged { names, .. }
            | EventKind::AllDown { names, .. } => names,
            _ => &[],
        }
    }
}

impl Event {
    /// The thing the event is about, used to group and damp repeated events
    /// (`check http on master`, `node master`, `answer`, `answer of api`).
    pub fn subject(&self) -> String {
        match &self.kind {
            EventKind::CheckDown { node, check, .. } | EventKind::CheckUp { node, check, .. } => {
                format!("{check} on {node}")
            }
            EventKind::NodeDown { node, .. } | EventKind::NodeUp { node } => format!("node {node}"),
            EventKind::Failover { .. }
            | EventKind::Failback { .. }
            | EventKind::AnswerChanged { .. }
            | EventKind::AllDown { .. } => answer_of(self.kind.names()),
            EventKind::PublishFailed { writer, .. }
            | EventKind::PublishRecovered { writer, .. } => {
                format!("publish to {writer}")
            }
            EventKind::Flapping { subject, .. } | EventKind::Settled { subject, .. } => {
                subject.clone()
            }
            EventKind::Override { action } => format!("override {action}"),
            EventKind::MirrorConflicts { .. } => "mirror conflicts".to_owned(),
            EventKind::MirrorFailed { .. } => "mirror".to_owned(),
            EventKind::FenceStep { node, .. } => format!("fence on {node}"),
            EventKind::PublishVetoed { .. } => "answer".to_owned(),
        }
    }

    /// The event's kind as a short kebab-case word (`check-down`), as in JSON.
    pub fn name(&self) -> &'static str {
        match &self.kind {
            EventKind::CheckDown { .. } => "check-down",
            EventKind::CheckUp { .. } => "check-up",
            EventKind::NodeDown { .. } => "node-down",
            EventKind::NodeUp { .. } => "node-up",
            EventKind::Failover { .. } => "failover",
            EventKind::Failback { .. } => "failback",
            EventKind::AnswerChanged { .. } => "answer-changed",
            EventKind::AllDown { .. } => "all-down",
            EventKind::PublishFailed { .. } => "publish-failed",
            EventKind::PublishRecovered { .. } => "publish-recovered",
            EventKind::Flapping { .. } => "flapping",
            EventKind::Settled { .. } => "settled",
            EventKind::Override { .. } => "override",
            EventKind::MirrorConflicts { .. } => "mirror-conflicts",
            EventKind::MirrorFailed { .. } => "mirror-failed",
            EventKind::FenceStep { .. } => "fence-step",
            EventKind::PublishVetoed { .. } => "publish-vetoed",
        }
    }

    /// The event as one JSON object (what the command hook gets on stdin).
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// `master (10.1.0.1), slave (10.2.0.2, 2001:db8::2)`-style text when addresses are known.
fn with_addresses(nodes: &[NodeName], addresses: &[IpAddr]) -> String {
    if addresses.is_empty() {
        return list(nodes);
    }
    format!(
        "{} ({})",
        list(nodes),
        addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn list(nodes: &[NodeName]) -> String {
    if nodes.is_empty() {
        return "nothing".to_owned();
    }
    nodes
        .iter()
        .map(NodeName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Event {
    // One arm per event kind (17), so that the compiler checks every kind has its line; the
    // longer phrases are built by the helpers below.
    /// One line a human reads in a log or a mail subject.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            EventKind::CheckDown {
                node,
                check,
                critical,
                class,
                error,
                consecutive_failures,
                ..
            } => write!(
                f,
                "{check} on {node} is DOWN after {consecutive_failures} failed probes ({class}: {error}){}",
                if *critical { " [critical]" } else { "" }
            ),
            EventKind::CheckUp {
                node,
                check,
                detail,
                down_for,
            } => match down_for {
                Some(d) => write!(
                    f,
                    "{check} on {node} is UP again after {} ({detail})",
                    humantime::format_duration(Duration::from_secs(d.as_secs()))
                ),
                None => write!(f, "{check} on {node} is UP ({detail})"),
            },
            EventKind::NodeDown {
                node,
                failed_checks,
            } => write!(
                f,
                "node {node} is DOWN (critical checks down: {})",
                joined(failed_checks)
            ),
            EventKind::NodeUp { node } => write!(f, "node {node} is UP"),
            EventKind::Failover {
                names,
                from,
                to,
                from_addresses,
                to_addresses,
                degraded,
            } => {
                let what = format!("failover: {}", answer_of(names));
                moved(f, &what, from, to, from_addresses, to_addresses)?;
                if !degraded.is_empty() {
                    write!(f, "; it may be missing data: {}", joined(degraded))?;
                }
                Ok(())
            }
            EventKind::Failback {
                names,
                from,
                to,
                from_addresses,
                to_addresses,
            } => {
                let what = format!("failback: {}", answer_of(names));
                moved(f, &what, from, to, from_addresses, to_addresses)
            }
            EventKind::AnswerChanged {
                names,
                from,
                to,
                from_addresses,
                to_addresses,
            } => changed(f, names, from, to, from_addresses, to_addresses),
            EventKind::AllDown {
                names,
                rule,
                answer,
            } => {
                write!(f, "every node is down: rule {rule} publishes {}", list(answer))?;
                if !names.is_empty() {
                    write!(f, " for {}", names.join(", "))?;
                }
                Ok(())
            }
            EventKind::PublishFailed {
                writer,
                answer,
                error,
                attempt,
            } => write!(
                f,
                "publishing {} to {writer} failed (attempt {attempt}): {error}; retrying",
                list(answer)
            ),
            EventKind::PublishRecovered { writer, attempts } => {
                write!(f, "publishing to {writer} succeeded after {attempts} attempts")
            }
            EventKind::Flapping {
                subject,
                transitions,
                window,
            } => write!(
                f,
                "{subject} is flapping: {transitions} changes within {}; further changes are not notified until it is stable",
                humantime::format_duration(*window)
            ),
            EventKind::Override { action } => write!(f, "operator override: {action}"),
            EventKind::MirrorConflicts { count, examples } => write!(
                f,
                "mirror: {count} path{} changed on both nodes; both versions kept ({})",
                plural(*count),
                conflicts(examples)
            ),
            EventKind::MirrorFailed {
                count,
                example,
                reason,
            } => write!(
                f,
                "mirror: {count} path{} not mirrored, e.g. {example}: {reason}; retrying",
                plural(*count)
            ),
            EventKind::FenceStep {
                fence,
                node,
                action,
                done,
                detail,
            } => write!(
                f,
                "{fence}: {action} on {node}: {} ({detail})",
                if *done { "done" } else { "FAILED" }
            ),
            EventKind::PublishVetoed {
                fence,
                kept,
                refused,
                reason,
                retry_after,
            } => write!(
                f,
                "{fence} refused to move the answer to {}: {reason}; the answer stays on {}, decided again in {}",
                list(refused),
                list(kept),
                humantime::format_duration(*retry_after)
            ),
            EventKind::Settled {
                subject,
                suppressed,
                state,
            } => write!(
                f,
                "{subject} is stable again ({state}); {suppressed} changes were not notified"
            ),
        }
    }
}

/// `<what> moved from <nodes (addresses)> to <nodes (addresses)>`.
fn moved(
    f: &mut fmt::Formatter<'_>,
    what: &str,
    from: &[NodeName],
    to: &[NodeName],
    from_addresses: &[IpAddr],
    to_addresses: &[IpAddr],
) -> fmt::Result {
    write!(
        f,
        "{what} moved from {} to {}",
        with_addresses(from, from_addresses),
        with_addresses(to, to_addresses)
    )
}

/// `answer changed from <nodes (addresses)> to <nodes (addresses)>`.
fn changed(
    f: &mut fmt::Formatter<'_>,
    names: &[String],
    from: &[NodeName],
    to: &[NodeName],
    from_addresses: &[IpAddr],
    to_addresses: &[IpAddr],
) -> fmt::Result {
    write!(
        f,
        "{} changed from {} to {}",
        answer_of(names),
        with_addresses(from, from_addresses),
        with_addresses(to, to_addresses)
    )
}

/// `answer` for the default policy's answer, `answer of api, cdn` for names with their own.
fn answer_of(names: &[String]) -> String {
    if names.is_empty() {
        "answer".to_owned()
    } else {
        format!("answer of {}", names.join(", "))
    }
}

/// The items' texts, comma-separated.
fn joined<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `s` unless there is exactly one.
fn plural(count: u64) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

/// `<path>: <winner>'s version kept, the other as <copy>; ...`.
fn conflicts(examples: &[crate::mirror::Conflict]) -> String {
    examples
        .iter()
        .map(|c| {
            format!(
                "{}: {}'s version kept, the other as {}",
                c.path.display(),
                c.winner,
                c.kept_as.display()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
