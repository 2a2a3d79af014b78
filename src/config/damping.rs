//! `[damping]`: how many changes of one thing are notified before it counts as flapping.

use std::time::Duration;

use serde::Deserialize;

use super::defaults;
use super::error::{Seg, Validator};
use super::Config;

/// `[damping]`: how many changes of one thing are notified before it counts as flapping.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DampingConfig {
    /// The window changes are counted over.
    #[serde(default = "default_damping_window", with = "humantime_serde")]
    pub window: Duration,
    /// Changes notified per window; past that one `flapping` event, then a summary.
    #[serde(default = "default_damping_changes")]
    pub max_changes: u32,
}

fn default_damping_window() -> Duration {
    defaults::DEFAULT_DAMPING_WINDOW
}
fn default_damping_changes() -> u32 {
    defaults::DEFAULT_DAMPING_MAX_CHANGES
}

impl Default for DampingConfig {
    fn default() -> Self {
        Self {
            window: default_damping_window(),
            max_changes: default_damping_changes(),
        }
    }
}

/// Checks `[damping]`: at least one change is notified.
pub(super) fn validate(config: &Config, v: &mut Validator<'_>) {
    if config.damping.max_changes == 0 {
        v.fail(
            &[Seg::Key("damping"), Seg::Key("max_changes")],
            "0 would silence every change (expected at least 1)",
        );
    }
}
