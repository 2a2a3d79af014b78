//! The vocabulary shared by every crate: names, moments, probe outcomes, observations.

use std::fmt;
use std::ops::Add;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a name. Validation (non-empty, unique) belongs to whoever builds the spec.
            pub fn new(name: impl AsRef<str>) -> Self {
                Self(Arc::from(name.as_ref()))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", &*self.0)
            }
        }

        impl From<&str> for $name {
            fn from(name: &str) -> Self {
                Self::new(name)
            }
        }
    };
}

name_type!(
    /// The name of a server (`master`, `slave`, `dc2-web`), as written in the config.
    NodeName
);
name_type!(
    /// The name of a check (`http`, `mysql`), as written in the config.
    CheckName
);

/// A point in time as the arbiter sees it.
///
/// `mono` drives every timer (it never goes back); `wall` is only reported in events. The arbiter
/// never reads a clock: whoever feeds it passes the moment in, which is what makes it replayable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moment {
    /// Monotonic time: all durations are measured on it.
    pub mono: Instant,
    /// Wall-clock time, for humans reading events.
    pub wall: SystemTime,
}

impl Moment {
    /// The current moment from the system clocks (for runtimes, not for the arbiter itself).
    pub fn now() -> Self {
        Self {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// Time elapsed from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(&self, earlier: Moment) -> Duration {
        self.mono.saturating_duration_since(earlier.mono)
    }
}

impl Add<Duration> for Moment {
    type Output = Moment;

    fn add(self, rhs: Duration) -> Moment {
        Moment {
            mono: self.mono + rhs,
            wall: self.wall + rhs,
        }
    }
}

/// Why a probe failed, so that a report can tell "the service is down" from "the check is wrong".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FailureClass {
    /// Nothing answered: connection refused, unreachable, reset.
    Unreachable,
    /// The probe did not finish within its timeout.
    Timeout,
    /// It answered, but not the way a healthy service answers (status 500, wrong banner, lag).
    Unhealthy,
    /// The check itself is wrong (bad credentials, bad URL): fixing the config is the cure.
    Misconfigured,
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureClass::Unreachable => "unreachable",
            FailureClass::Timeout => "timeout",
            FailureClass::Unhealthy => "unhealthy",
            FailureClass::Misconfigured => "misconfigured",
        })
    }
}

/// What one probe of one check on one node found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Outcome {
    /// The service answered as a healthy one does.
    Healthy {
        /// What it said, for status output (`HTTP 200`, `SSH-2.0-OpenSSH_9.2`).
        detail: String,
    },
    /// The probe failed.
    Failed {
        /// What kind of failure it was.
        class: FailureClass,
        /// The probe's own error text, shown in events and e-mails.
        error: String,
    },
}

impl Outcome {
    /// A healthy outcome with a detail text.
    pub fn healthy(detail: impl Into<String>) -> Self {
        Outcome::Healthy {
            detail: detail.into(),
        }
    }

    /// A failed outcome.
    pub fn failed(class: FailureClass, error: impl Into<String>) -> Self {
        Outcome::Failed {
            class,
            error: error.into(),
        }
    }

    /// True for [`Outcome::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, Outcome::Healthy { .. })
    }
}

/// One probe result, as fed to the arbiter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The node that was probed.
    pub node: NodeName,
    /// The check that probed it.
    pub check: CheckName,
    /// What the probe found.
    pub outcome: Outcome,
    /// When the probe finished.
    pub at: Moment,
}

/// The state of a check, a node, or anything else with hysteresis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// No verdict yet (nothing probed, or not enough probes).
    Unknown,
    /// Healthy.
    Up,
    /// Failed `fall` times in a row (a check), or a critical check is down (a node).
    Down,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        })
    }
}
