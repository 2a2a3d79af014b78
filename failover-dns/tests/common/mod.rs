//! Helpers shared by the integration tests that start real name servers (Knot, NSD).
#![allow(dead_code)] // each test crate uses its own part

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port free for both UDP and TCP on 127.0.0.1 (for a server that is not ours to bind).
pub fn free_port() -> u16 {
    for _ in 0..20 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both udp and tcp on 127.0.0.1");
}

/// `program` on the PATH or in the sbin directories (not on every user's PATH).
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.exists())
}

/// A name server started by a test in its own process group, in `dir` (its stdout and stderr
/// go there), and stopped (the whole group) when dropped, whatever happens.
pub struct ServerProcess {
    child: Child,
    dir: PathBuf,
}

impl ServerProcess {
    /// Starts `program` (`install` says how to get it) with `args` in `dir`.
    pub fn start(program: &str, install: &str, args: &[&std::ffi::OsStr], dir: &Path) -> Self {
        use std::os::unix::process::CommandExt;
        let binary = which(program).unwrap_or_else(|| panic!("{program} not found: {install}"));
        let child = Command::new(&binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        Self {
            child,
            dir: dir.to_path_buf(),
        }
    }

    /// The server's log, stdout and stderr, for failure messages.
    pub fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!(
            "--- log\n{}--- stdout\n{}--- stderr\n{}",
            read("log"),
            read("stdout"),
            read("stderr")
        )
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        kill_group("-TERM", &group);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                // Its helpers (NSD forks some) go with the group.
                kill_group("-KILL", &group);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        kill_group("-KILL", &group);
        let _ = self.child.wait();
    }
}

/// Sends `signal` to the process group `group` (`-PID`); it may be gone already.
fn kill_group(signal: &str, group: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", group])
        .stderr(Stdio::null())
        .status();
}
