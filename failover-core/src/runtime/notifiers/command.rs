//! The command hook: runs a program per event with the event as JSON and environment variables.

use async_trait::async_trait;

use crate::event::Event;
use crate::notifier::{Notifier, NotifyError};

/// Runs a program for every event: the event as JSON on its standard input and as
/// `FAILOVER_*` environment variables, killed if it runs longer than its timeout.
///
/// Environment: `FAILOVER_EVENT` (`check-down`, ...), `FAILOVER_SUBJECT` (`http on master`),
/// `FAILOVER_SUMMARY` (the one-line text), `FAILOVER_AT` (RFC 3339), and where they apply
/// `FAILOVER_NODE`, `FAILOVER_CHECK`, `FAILOVER_ERROR`, `FAILOVER_FROM`, `FAILOVER_TO`
/// (comma-separated node names). A non-zero exit status is a failed delivery.
#[derive(Clone, Debug)]
pub struct CommandNotifier {
    name: String,
    program: std::path::PathBuf,
    args: Vec<String>,
    timeout: std::time::Duration,
}

impl CommandNotifier {
    /// A hook running `program` with `args`, given `timeout` to finish.
    pub fn new(
        program: impl Into<std::path::PathBuf>,
        args: Vec<String>,
        timeout: std::time::Duration,
    ) -> Self {
        let program = program.into();
        Self {
            name: format!("command {}", program.display()),
            program,
            args,
            timeout,
        }
    }

    fn environment(event: &Event) -> Vec<(&'static str, String)> {
        use crate::event::EventKind as K;
        let join = |nodes: &[crate::model::NodeName]| {
            nodes
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut env = vec![
            ("FAILOVER_EVENT", event.name().to_owned()),
            ("FAILOVER_SUBJECT", event.subject()),
            ("FAILOVER_SUMMARY", event.to_string()),
            (
                "FAILOVER_AT",
                humantime::format_rfc3339_seconds(event.at).to_string(),
            ),
        ];
        match &event.kind {
            K::CheckDown {
                node, check, error, ..
            } => {
                env.push(("FAILOVER_NODE", node.to_string()));
                env.push(("FAILOVER_CHECK", check.to_string()));
                env.push(("FAILOVER_ERROR", error.clone()));
            }
            K::CheckUp { node, check, .. } => {
                env.push(("FAILOVER_NODE", node.to_string()));
                env.push(("FAILOVER_CHECK", check.to_string()));
            }
            K::NodeDown { node, .. } | K::NodeUp { node } => {
                env.push(("FAILOVER_NODE", node.to_string()));
            }
            K::Failover { from, to, .. }
            | K::Failback { from, to, .. }
            | K::AnswerChanged { from, to, .. } => {
                env.push(("FAILOVER_FROM", join(from)));
                env.push(("FAILOVER_TO", join(to)));
            }
            K::AllDown { answer, .. } => env.push(("FAILOVER_TO", join(answer))),
            K::PublishFailed { error, .. } => env.push(("FAILOVER_ERROR", error.clone())),
            _ => {}
        }
        env
    }
}

#[async_trait]
impl Notifier for CommandNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn notify(&self, event: &Event) -> Result<(), NotifyError> {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .envs(Self::environment(event))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                NotifyError::new(format!(
                    "cannot start {}: {e} (is the path right and the file executable?)",
                    self.program.display()
                ))
            })?;
        let json = event.to_json();
        let run = async {
            if let Some(mut stdin) = child.stdin.take() {
                // A hook that does not read its input is allowed: ignore a broken pipe.
                let _ = stdin.write_all(json.as_bytes()).await;
                let _ = stdin.write_all(b"\n").await;
            }
            child.wait_with_output().await
        };
        let output = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| {
                NotifyError::new(format!(
                    "{} did not finish within {}; it was killed",
                    self.program.display(),
                    humantime::format_duration(self.timeout)
                ))
            })?
            .map_err(|e| NotifyError::new(format!("{}: {e}", self.program.display())))?;
        if output.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: String = stderr
                .trim()
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            Err(NotifyError::new(format!(
                "{} exited with {}: {tail}",
                self.program.display(),
                output.status
            )))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use crate::event::EventKind;
    use crate::model::{FailureClass, NodeName};
    use std::time::{Duration, SystemTime};

    fn event() -> Event {
        Event {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            kind: EventKind::CheckDown {
                node: NodeName::new("master"),
                check: "http".into(),
                critical: true,
                class: FailureClass::Unreachable,
                error: "connection refused".into(),
                consecutive_failures: 3,
                failing_since: SystemTime::UNIX_EPOCH + Duration::from_secs(1_699_999_996),
            },
        }
    }

    #[tokio::test]
    async fn the_command_hook_gets_json_on_stdin_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let hook = CommandNotifier::new(
            "/bin/sh",
            vec![
                "-c".into(),
                format!(
                    "cat > {0}.json; echo \"$FAILOVER_EVENT|$FAILOVER_NODE|$FAILOVER_CHECK|$FAILOVER_ERROR|$FAILOVER_AT\" > {0}.env",
                    out.display()
                ),
            ],
            Duration::from_secs(5),
        );
        hook.notify(&event()).await.unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("out.json")).unwrap())
                .unwrap();
        assert_eq!(json["event"], "check-down");
        assert_eq!(json["node"], "master");
        assert_eq!(json["error"], "connection refused");
        assert_eq!(json["at"], "2023-11-14T22:13:20Z");
        let env = std::fs::read_to_string(dir.path().join("out.env")).unwrap();
        assert_eq!(
            env.trim(),
            "check-down|master|http|connection refused|2023-11-14T22:13:20Z"
        );
    }

    #[tokio::test]
    async fn a_failing_or_slow_hook_is_an_error_that_says_so() {
        let failing = CommandNotifier::new(
            "/bin/sh",
            vec!["-c".into(), "echo no mail relay >&2; exit 3".into()],
            Duration::from_secs(5),
        );
        let err = failing.notify(&event()).await.unwrap_err().to_string();
        assert!(err.contains("no mail relay") && err.contains("3"), "{err}");
        let slow = CommandNotifier::new(
            "/bin/sh",
            vec!["-c".into(), "sleep 30".into()],
            Duration::from_millis(200),
        );
        let err = slow.notify(&event()).await.unwrap_err().to_string();
        assert!(err.contains("killed"), "{err}");
        let missing = CommandNotifier::new("/nonexistent/hook", vec![], Duration::from_secs(1));
        let err = missing.notify(&event()).await.unwrap_err().to_string();
        assert!(err.contains("cannot start /nonexistent/hook"), "{err}");
    }
}
