//! Overrides (drain, force) kept in the state directory: restored into a new supervisor, saved
//! whenever the ones in force change.

use std::path::{Path, PathBuf};

use failover_core::{Override, StatusReport, Supervisor};
use tokio::sync::watch;

use super::DaemonError;
use crate::config::Config;

/// Restores the overrides saved in `[zone] state_dir` into `supervisor`; one that no longer fits
/// the config is dropped loudly.
pub fn restore(config: &Config, supervisor: &mut Supervisor) -> Result<(), DaemonError> {
    let overrides =
        load_overrides(&config.zone.state_dir).map_err(|message| DaemonError::Admin {
            path: config.path.clone(),
            message,
        })?;
    for saved in overrides {
        let now = failover_core::Moment::now();
        match supervisor
            .arbiter_mut()
            .apply_override(saved.clone(), true, now)
        {
            Ok(_) => tracing::warn!("override restored from the state directory: {saved}"),
            Err(e) => tracing::error!("override {saved} dropped: {e}"),
        }
    }
    Ok(())
}

/// The overrides file in the state directory.
pub fn overrides_path(state_dir: &Path) -> PathBuf {
    state_dir.join("overrides.json")
}

/// Reads persisted overrides (none when the file does not exist).
pub fn load_overrides(state_dir: &Path) -> Result<Vec<Override>, String> {
    let path = overrides_path(state_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| format!("{}: {e} (fix or remove the file)", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes the overrides atomically (temp file, fsync, rename).
pub fn save_overrides(state_dir: &Path, overrides: &[Override]) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(overrides).map_err(std::io::Error::other)?;
    write_atomic(state_dir, "overrides.json", text.as_bytes())
}

/// Writes `bytes` to `state_dir/name` atomically: a temp file, fsync, rename, then the
/// directory's fsync, so that a crash leaves the old file or the new one, never half of one.
pub fn write_atomic(state_dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(state_dir)?;
    let path = state_dir.join(name);
    let temp = state_dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, &path)?;
    if let Ok(dir) = std::fs::File::open(state_dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Keeps the overrides file in step with the overrides in force, until the status channel closes.
pub async fn persist_overrides(state_dir: PathBuf, mut status: watch::Receiver<StatusReport>) {
    let mut saved: Vec<Override> = status.borrow().cluster.overrides.clone();
    while status.changed().await.is_ok() {
        let now = status.borrow().cluster.overrides.clone();
        if now != saved {
            match save_overrides(&state_dir, &now) {
                Ok(()) => saved = now,
                Err(e) => tracing::error!(
                    "cannot save overrides in {}: {e}; they hold until a restart",
                    state_dir.display()
                ),
            }
        }
    }
}
