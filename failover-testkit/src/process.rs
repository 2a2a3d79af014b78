//! Child processes of a test: finding the program, a guard that stops it whatever happens, and
//! a server process that is ready once its TCP port accepts connections.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::ops::{Deref, DerefMut};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Directories searched after `PATH`: server programs live in sbin, which is not on every PATH.
const SYSTEM_DIRS: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// How long a process group has to leave after SIGTERM before it gets SIGKILL.
const GROUP_GRACE: Duration = Duration::from_secs(5);

/// The line that installs `packages` on Debian, for failure messages.
pub(crate) fn install_line(packages: &str) -> String {
    format!("install it with `apt-get install {packages}`")
}

/// The path of program `name` (on `PATH` or in the system's sbin and bin directories); panics
/// with the `apt-get install` line for `packages` when it is not there. Never skips.
pub fn program(name: &str, packages: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SYSTEM_DIRS.map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{name}` not found: {}", install_line(packages)))
}

/// A child process killed (and reaped) when the guard is dropped, also when the test panics.
///
/// It dereferences to the [`Child`], so a test can still wait for it or read its pipes.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    group: bool,
}

impl ChildGuard {
    /// Guards a child spawned elsewhere; dropping the guard kills it with SIGKILL.
    pub fn new(child: Child) -> Self {
        Self {
            child,
            group: false,
        }
    }

    /// Spawns `command`; panics naming it and the `apt-get install` line for `packages`.
    pub fn spawn(command: &mut Command, packages: &str) -> Self {
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot start {command:?}: {e}; {}", install_line(packages))
        });
        Self::new(child)
    }

    /// Spawns `command` in a process group of its own; dropping the guard sends the whole group
    /// SIGTERM, then SIGKILL after 5 s (for servers that fork helpers, like NSD).
    pub fn spawn_group(command: &mut Command, packages: &str) -> Self {
        let mut guard = Self::spawn(command.process_group(0), packages);
        guard.group = true;
        guard
    }

    /// Waits up to `limit` for the child to exit; its exit code (`None` when it is still
    /// running, or was ended by a signal).
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn stop_group(&mut self) {
        let group = format!("-{}", self.child.id());
        signal_group("-TERM", &group);
        let deadline = Instant::now() + GROUP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                // Its helpers go with the group.
                signal_group("-KILL", &group);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        signal_group("-KILL", &group);
        let _ = self.child.wait();
    }
}

/// Sends `signal` to the process group `group` (`-PID`); it may be gone already.
fn signal_group(signal: &str, group: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", group])
        .stderr(Stdio::null())
        .status();
}

impl Deref for ChildGuard {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.child
    }
}

impl DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.group {
            self.stop_group();
        } else {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A server process listening on a TCP port the test chose; killed when dropped.
#[derive(Debug)]
pub struct TcpServer {
    child: ChildGuard,
    /// The port it listens on.
    pub port: u16,
}

impl TcpServer {
    /// Spawns `command` (output discarded) and waits up to `limit` until `address:port`
    /// accepts a connection; panics if the program is missing, exits, or does not listen in
    /// time, naming the `apt-get install` line for `packages`.
    pub fn start(
        command: &mut Command,
        address: IpAddr,
        port: u16,
        limit: Duration,
        packages: &str,
    ) -> Self {
        let mut child = ChildGuard::spawn(
            command.stdout(Stdio::null()).stderr(Stdio::null()),
            packages,
        );
        let socket = SocketAddr::new(address, port);
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if TcpStream::connect(socket).is_ok() {
                return Self { child, port };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{command:?} exited with {status}; {}",
                    install_line(packages)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{command:?} did not listen on {socket} within {limit:?}; {}",
            install_line(packages)
        );
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    /// Whether process `pid` still runs (a zombie does not).
    fn running(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
    }

    #[test]
    fn a_program_is_found_on_the_path_or_in_sbin() {
        assert!(program("sh", "dash").is_file());
    }

    #[test]
    #[should_panic(
        expected = "`no-such-program-here` not found: install it with `apt-get install some-package`"
    )]
    fn a_missing_program_fails_with_the_apt_get_line() {
        program("no-such-program-here", "some-package");
    }

    #[test]
    fn a_guarded_child_is_killed_on_drop() {
        let guard = ChildGuard::spawn(Command::new("sleep").arg("30"), "coreutils");
        let pid = guard.id().to_string();
        assert!(running(&pid));
        drop(guard);
        assert!(!running(&pid));
    }

    #[test]
    fn a_guarded_group_is_killed_with_the_helpers_it_forked() {
        let dir = crate::temp_dir();
        let helper_pid = dir.path().join("helper.pid");
        let guard = ChildGuard::spawn_group(
            Command::new("sh").arg("-c").arg(format!(
                "sleep 30 & echo $! > {}; wait",
                helper_pid.display()
            )),
            "dash",
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        let helper = loop {
            let text = std::fs::read_to_string(&helper_pid).unwrap_or_default();
            if text.ends_with('\n') {
                break text.trim().to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "the helper's pid was not written"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(running(&helper));
        drop(guard);
        let deadline = Instant::now() + Duration::from_secs(5);
        while running(&helper) {
            assert!(
                Instant::now() < deadline,
                "the forked helper outlived the guard"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    #[should_panic(expected = "exited with")]
    fn a_server_that_exits_instead_of_listening_fails_at_once() {
        let port = crate::free_port("127.0.0.1");
        TcpServer::start(
            Command::new("false").arg("listening"),
            [127, 0, 0, 1].into(),
            port,
            Duration::from_secs(10),
            "coreutils",
        );
    }
}
