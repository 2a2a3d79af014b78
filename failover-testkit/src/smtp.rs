//! A real mail relay: Debian's aiosmtpd with its Maildir handler, and what it received.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{free_port, TcpServer};

/// Debian's python3 (the one python3-aiosmtpd installs into), not a pyenv one on the PATH.
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// How long aiosmtpd may take to listen.
const START_LIMIT: Duration = Duration::from_secs(15);

/// Starts aiosmtpd on a free port of 127.0.0.1; every message it gets lands in the Maildir
/// `maildir` (read it with [`mailbox`]).
pub fn aiosmtpd(maildir: &Path) -> TcpServer {
    let port = free_port("127.0.0.1");
    let mut command = Command::new(SYSTEM_PYTHON);
    command
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir);
    TcpServer::start(
        &mut command,
        [127, 0, 0, 1].into(),
        port,
        START_LIMIT,
        "python3-aiosmtpd",
    )
}

/// Messages delivered to `maildir` so far: (subject, body), oldest first.
pub fn mailbox(maildir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
            // Unfold folded header lines before looking for the subject.
            let head = head.replace("\n ", " ").replace("\n\t", " ");
            let subject = head
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_default()
                .to_owned();
            (subject, body.replace("=\n", "").replace("=3D", "="))
        })
        .collect()
}
