//! `[journal]`: the observation journal in `state_dir/journal/` that `failoverd replay` reads.

use serde::Deserialize;

use super::error::{Seg, Validator};
use super::Config;

/// `[journal]`: every input the arbiter takes (probe results, overrides, failback requests) and
/// what it decided, kept for `failoverd replay`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// Keep the journal (default on).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// All segments together stay under this many MiB; the oldest are deleted.
    #[serde(default = "default_max_size_mb")]
    pub max_size_mb: u64,
    /// A segment is closed and the next begun past this many MiB.
    #[serde(default = "default_segment_size_mb")]
    pub segment_size_mb: u64,
}

fn default_enabled() -> bool {
    true
}
fn default_max_size_mb() -> u64 {
    64
}
fn default_segment_size_mb() -> u64 {
    4
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            enabled: default_enabled(),
            max_size_mb: default_max_size_mb(),
            segment_size_mb: default_segment_size_mb(),
        }
    }
}

/// Checks `[journal]`: sizes that hold at least one segment.
pub(super) fn validate(config: &Config, v: &mut Validator<'_>) {
    let journal = &config.journal;
    if journal.segment_size_mb == 0 {
        v.fail(
            &[Seg::Key("journal"), Seg::Key("segment_size_mb")],
            "0 (expected at least 1)",
        );
    }
    if journal.max_size_mb < journal.segment_size_mb.saturating_mul(2) {
        v.fail(
            &[Seg::Key("journal"), Seg::Key("max_size_mb")],
            format!(
                "{} is less than two segments of segment_size_mb = {} (raise it, or switch the journal off with enabled = false)",
                journal.max_size_mb, journal.segment_size_mb
            ),
        );
    }
}
