//! The arbiter's state kept in the state directory (`arbiter-state.json`): saved at once after a
//! change that matters (a verdict, a failure count, the answer, a pending failback,
//! an override), refreshed once a minute otherwise and at a clean stop; restored into the next
//! supervisor at start, so that a restart never moves the answer by itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use failover_core::{ArbiterState, StatusReport, Supervisor};
use tokio::sync::watch;
use tokio::time::Instant;

use super::overrides::write_atomic;

/// The file's name in the state directory.
pub const STATE_FILE: &str = "arbiter-state.json";

/// While only probe times and success counts change (every probe of a healthy cluster), the file
/// is rewritten this often: well inside the age a restore accepts (5 minutes), and no fsync
/// every few seconds on a quiet server.
const REFRESH_EVERY: Duration = Duration::from_secs(60);

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

/// Starts `supervisor` from the state saved in `state_dir`, if there is a usable one, and
/// returns it. Never fails: a state that is unreadable, too old or of another version is logged
/// with its reason and the daemon starts fresh.
pub fn restore_saved(state_dir: &Path, supervisor: &mut Supervisor) -> Option<ArbiterState> {
    let mut restored = None;
    match load_state(state_dir) {
        Ok(None) => tracing::info!(
            "no saved arbiter state in {}: first start, a check needs `fall` failures before its first down",
            state_dir.display()
        ),
        Ok(Some(state)) => match supervisor.restore(&state) {
            Ok(()) => {
                tracing::info!(
                    "arbiter state restored from {}",
                    state_path(state_dir).display()
                );
                restored = Some(state);
            }
            Err(e) => tracing::warn!(
                "saved arbiter state in {} not used ({e}): starting fresh",
                state_dir.display()
            ),
        },
        Err(e) => tracing::warn!("saved arbiter state unreadable ({e}): starting fresh"),
    }
    restored
}

/// The part of a state whose change is worth a write at once: everything but the time it was
/// taken, each check's last probe and outcome and its count of successes in a row (which only
/// delay a rise when lost).
fn what_matters(state: &ArbiterState) -> ArbiterState {
    let mut state = state.clone();
    state.saved_at = std::time::SystemTime::UNIX_EPOCH;
    for check in &mut state.checks {
        check.last_probe = None;
        check.last_outcome = None;
        check.consecutive_successes = 0;
    }
    state
}

/// Keeps the state file in step with the arbiter's state until the status channel closes, then
/// writes the last state (a clean stop): at once after a change that matters (a crash right
/// after a failover or a failback must not restart from the answer before it), else every
/// `REFRESH_EVERY` (a minute).
pub async fn persist_state(state_dir: PathBuf, status: watch::Receiver<StatusReport>) {
    keep_saved(state_dir, status, |report| report.state.clone()).await;
}

/// [`persist_state`] for any channel that carries an arbiter state.
async fn keep_saved<T>(
    state_dir: PathBuf,
    mut status: watch::Receiver<T>,
    state_of: impl Fn(&T) -> ArbiterState,
) {
    let mut written: Option<(ArbiterState, Instant)> = None;
    let mut open = true;
    while open {
        let refresh_at = written
            .as_ref()
            .map_or_else(Instant::now, |(_, at)| *at + REFRESH_EVERY);
        match tokio::time::timeout_at(refresh_at, status.changed()).await {
            Ok(Ok(())) | Err(_) => {}
            Ok(Err(_)) => open = false,
        }
        let state = state_of(&status.borrow_and_update());
        let matters = what_matters(&state);
        let due = match &written {
            None => true,
            Some((last, at)) => !open || *last != matters || at.elapsed() >= REFRESH_EVERY,
        };
        if !due {
            continue;
        }
        match save_state(&state_dir, &state) {
            Ok(()) => written = Some((matters, Instant::now())),
            Err(e) => tracing::error!(
                "cannot save the arbiter state in {}: {e}; a restart starts fresh",
                state_dir.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use failover_core::{CheckName, CheckRecord, Health, NodeName, Outcome};

    use super::*;

    fn state(failures: u32, successes: u32, probed: u64) -> ArbiterState {
        ArbiterState {
            version: failover_core::STATE_VERSION,
            saved_at: SystemTime::UNIX_EPOCH + Duration::from_secs(probed),
            checks: vec![CheckRecord {
                node: NodeName::new("master"),
                check: CheckName::new("http"),
                health: Health::Up,
                changed_at: None,
                consecutive_failures: failures,
                consecutive_successes: successes,
                failing_since: None,
                last_probe: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(probed)),
                last_outcome: Some(Outcome::Healthy {
                    detail: format!("HTTP 200 #{probed}"),
                }),
            }],
            nodes: Vec::new(),
            answers: Vec::new(),
            overrides: Vec::new(),
        }
    }

    fn saved(dir: &Path) -> Option<ArbiterState> {
        load_state(dir).expect("readable")
    }

    #[tokio::test(start_paused = true)]
    async fn probes_that_change_nothing_are_written_once_a_minute_a_failure_at_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (send, receive) = watch::channel(state(0, 1, 1));
        let task = tokio::spawn(keep_saved(dir.path().to_owned(), receive, Clone::clone));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            saved(dir.path()),
            Some(state(0, 1, 1)),
            "the first state at once"
        );
        // A healthy cluster: a probe every 2 s changes only times and success counts.
        for probe in 2..=25 {
            send.send_replace(state(0, probe, probe.into()));
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        assert_eq!(
            saved(dir.path()),
            Some(state(0, 1, 1)),
            "not rewritten within a minute"
        );
        for probe in 26..=35 {
            send.send_replace(state(0, probe, probe.into()));
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let refreshed = saved(dir.path()).expect("saved");
        assert_ne!(refreshed, state(0, 1, 1), "refreshed after a minute");
        // One failure matters: it is on disk at once.
        send.send_replace(state(1, 0, 36));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(saved(dir.path()), Some(state(1, 0, 36)));
        // A clean stop writes the last state, whatever it is.
        send.send_replace(state(1, 0, 37));
        drop(send);
        task.await.expect("the task ends when the channel closes");
        assert_eq!(saved(dir.path()), Some(state(1, 0, 37)));
    }
}
