//! The arbiter's state kept in the state directory (`arbiter-state.json`): saved every few
//! seconds while it changes and at a clean stop, restored into the next supervisor at start, so
//! that a restart never moves the answer by itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use failover_core::{ArbiterState, StatusReport, Supervisor};
use tokio::sync::watch;
use tokio::time::Instant;

use super::overrides::write_atomic;

/// The file's name in the state directory.
pub const STATE_FILE: &str = "arbiter-state.json";

/// At most one write per this long while the state changes (every probe changes it).
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// The state file in the state directory.
pub fn state_path(state_dir: &Path) -> PathBuf {
    state_dir.join(STATE_FILE)
}

/// Reads the saved state (`None` when there is none).
pub fn load_state(state_dir: &Path) -> Result<Option<ArbiterState>, String> {
    let path = state_path(state_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes the state atomically.
pub fn save_state(state_dir: &Path, state: &ArbiterState) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(state).map_err(std::io::Error::other)?;
    write_atomic(state_dir, STATE_FILE, text.as_bytes())
}

/// Starts `supervisor` from the state saved in `state_dir`, if there is a usable one. Never
/// fails: a state that is unreadable, too old or of another version is logged with its reason
/// and the daemon starts fresh.
pub fn restore_saved(state_dir: &Path, supervisor: &mut Supervisor) {
    match load_state(state_dir) {
        Ok(None) => tracing::info!(
            "no saved arbiter state in {}: first start, a check needs `fall` failures before its first down",
            state_dir.display()
        ),
        Ok(Some(state)) => match supervisor.restore(&state) {
            Ok(()) => tracing::info!(
                "arbiter state restored from {}",
                state_path(state_dir).display()
            ),
            Err(e) => tracing::warn!(
                "saved arbiter state in {} not used ({e}): starting fresh",
                state_dir.display()
            ),
        },
        Err(e) => tracing::warn!("saved arbiter state unreadable ({e}): starting fresh"),
    }
}

/// Keeps the state file in step with the arbiter's state (at most every [`SAVE_EVERY`] while it
/// changes), until the status channel closes; then writes the last state (a clean stop).
pub async fn persist_state(state_dir: PathBuf, mut status: watch::Receiver<StatusReport>) {
    let mut open = true;
    while open {
        open = status.changed().await.is_ok();
        if open {
            // Gather the changes of the next few seconds into one write.
            let deadline = Instant::now() + SAVE_EVERY;
            while let Ok(changed) = tokio::time::timeout_at(deadline, status.changed()).await {
                if changed.is_err() {
                    open = false;
                    break;
                }
            }
        }
        let state = status.borrow_and_update().state.clone();
        if let Err(e) = save_state(&state_dir, &state) {
            tracing::error!(
                "cannot save the arbiter state in {}: {e}; a restart starts fresh",
                state_dir.display()
            );
        }
    }
}
