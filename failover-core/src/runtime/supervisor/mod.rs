//! The supervisor: runs probes on tokio, feeds the arbiter, carries out its actions.

mod effects;
mod handle;
mod journal;
mod metrics;
mod run;
mod status;
mod tasks;

pub use handle::{AdminCommand, Commander, SupervisorHandle};
pub use journal::{JournalEntry, JOURNAL_QUEUE};
pub use metrics::SupervisorMetrics;
pub use run::Supervisor;
pub use status::{StatusReport, WriterStatus, RECENT_EVENTS};
pub use tasks::{
    ProbeSchedule, DEFAULT_PROBE_INTERVAL, DEFAULT_PROBE_JITTER, DEFAULT_PROBE_TIMEOUT,
};
