//! Real MariaDB servers: each in its own temporary data directory, on its own loopback address,
//! socket and port, killed on drop whatever happens.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{free_port_on, program, ChildGuard};

/// What provides the server, the client and mariadb-install-db.
const PACKAGES: &str = "mariadb-server";

/// How long a server may take to accept SQL.
const START_LIMIT: Duration = Duration::from_secs(60);

/// The administrator every test server has (user, password): all privileges, over TCP.
pub const ADMIN: (&str, &str) = ("failover_admin", "admin-pw");
/// The monitoring user every test server has (user, password): REPLICATION CLIENT, REPLICA MONITOR.
pub const MONITOR: (&str, &str) = ("failover_monitor", "monitor-pw");
/// The replication account the tests ask setup to create (user, password; quotes and a
/// backslash on purpose).
pub const REPLICATION: (&str, &str) = ("repl", "repl'pw\\x");

/// One initialised data directory, copied for every server (mariadb-install-db is slow).
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = TEMPLATE.get_or_init(|| {
        let dir = crate::temp_dir();
        let data = dir.path().join("data");
        // Its own temp directory: bootstraps of parallel test processes in the shared /tmp
        // were seen to trip over each other's temporary tables ("Unknown table
        // 'mysql.tmp_user_sys'").
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("the bootstrap's temp directory created");
        let output = Command::new(program("mariadb-install-db", PACKAGES))
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--user=root",
                "--skip-test-db",
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot run mariadb-install-db: {e}"));
        assert!(
            output.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        (dir, data)
    });
    path
}

/// A running `mariadbd`.
#[derive(Debug)]
pub struct Mariadb {
    /// Its name in the test (`master`, `slave`).
    pub name: String,
    /// The address it listens on.
    pub address: IpAddr,
    /// The port it listens on.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<ChildGuard>,
    server_id: u32,
}

impl Mariadb {
    /// Starts a server with binary log, `server_id` and `auto_increment_offset` = `server_id`,
    /// increment 2, and the [`ADMIN`] and [`MONITOR`] users (made without binary logging).
    pub fn start(name: &str, address: &str, port: u16, server_id: u32) -> Self {
        let dir = crate::temp_dir();
        let status = Command::new("cp")
            .arg("-a")
            .arg(template())
            .arg(dir.path().join("data"))
            .status()
            .unwrap_or_else(|e| panic!("cannot run cp: {e}"));
        assert!(status.success(), "cp -a of the data directory failed");
        let mut server = Self {
            name: name.to_owned(),
            address: address
                .parse()
                .unwrap_or_else(|e| panic!("not an IP address: {address:?}: {e}")),
            port,
            dir,
            child: None,
            server_id,
        };
        server.spawn();
        server.sql(&format!(
            "SET sql_log_bin = 0; \
             CREATE USER '{a}'@'%' IDENTIFIED BY '{ap}'; GRANT ALL ON *.* TO '{a}'@'%' WITH GRANT OPTION; \
             CREATE USER '{m}'@'%' IDENTIFIED BY '{mp}'; GRANT REPLICATION CLIENT, REPLICA MONITOR ON *.* TO '{m}'@'%';",
            a = ADMIN.0,
            ap = ADMIN.1,
            m = MONITOR.0,
            mp = MONITOR.1
        ));
        server
    }

    fn spawn(&mut self) {
        let data = self.dir.path().join("data");
        let error_log = self.dir.path().join("error.log");
        let log = std::fs::File::create(&error_log).expect("error.log created");
        self.child = Some(ChildGuard::spawn(
            Command::new(program("mariadbd", PACKAGES))
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", self.socket().display()))
                .arg(format!(
                    "--pid-file={}",
                    self.dir.path().join("pid").display()
                ))
                .arg(format!("--port={}", self.port))
                .arg(format!("--bind-address={}", self.address))
                .arg(format!("--server-id={}", self.server_id))
                .arg(format!("--log-bin={}/mysql-bin", data.display()))
                .arg(format!("--relay-log={}/relay-bin", data.display()))
                .arg(format!("--auto-increment-offset={}", self.server_id))
                .args([
                    "--user=root",
                    "--auto-increment-increment=2",
                    "--skip-name-resolve",
                    "--innodb-buffer-pool-size=8M",
                    "--performance-schema=OFF",
                ])
                .stdout(Stdio::null())
                .stderr(log),
            PACKAGES,
        ));
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!(
                    "mariadbd {} exited with {status}: {}",
                    self.name,
                    std::fs::read_to_string(&error_log).unwrap_or_default()
                );
            }
            if self.try_sql("SELECT 1").is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd {} did not start within {START_LIMIT:?}: {}",
                self.name,
                std::fs::read_to_string(&error_log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// The `mariadb` client with the options every call shares.
    fn client() -> Command {
        let mut command = Command::new(program("mariadb", PACKAGES));
        command.arg("--no-defaults");
        command
    }

    /// Runs SQL as root over the socket; the rows as tab-separated lines.
    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        let output = Self::client()
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "-N", "-B", "--connect-timeout=5", "-e", sql])
            .output()
            .map_err(|e| format!("mariadb client: {e}"))?;
        rows(&output)
    }

    /// [`Mariadb::try_sql`], panicking with the server's message when it fails.
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql)
            .unwrap_or_else(|e| panic!("{} on {}: {e}", sql, self.name))
    }

    /// Runs SQL over TCP as `user`, as the site's application would.
    pub fn try_sql_as(&self, user: &str, password: &str, sql: &str) -> Result<String, String> {
        let output = Self::client()
            .arg(format!("--host={}", self.address))
            .arg(format!("--port={}", self.port))
            .arg(format!("--user={user}"))
            .arg(format!("--password={password}"))
            .args([
                "--protocol=TCP",
                "-N",
                "-B",
                "--connect-timeout=5",
                "-e",
                sql,
            ])
            .output()
            .map_err(|e| format!("mariadb client: {e}"))?;
        rows(&output)
    }

    /// One field of `SHOW SLAVE STATUS` (empty when it replicates from nobody).
    pub fn replica_field(&self, field: &str) -> String {
        let output = Self::client()
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "-E", "-e", "SHOW SLAVE STATUS"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run the mariadb client: {e}"));
        let vertical = String::from_utf8_lossy(&output.stdout);
        vertical
            .lines()
            .find_map(|line| {
                let (name, value) = line.trim().split_once(": ")?;
                (name == field).then(|| value.to_owned())
            })
            .unwrap_or_default()
    }

    /// Whether `@@global.read_only` is set.
    pub fn read_only(&self) -> bool {
        self.sql("SELECT @@global.read_only") == "1"
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        self.child = None;
    }
}

/// The rows a client printed, or its error message when it failed.
fn rows(output: &Output) -> Result<String, String> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Two servers on 127.0.0.2 and 127.0.0.3, same port: `master` (server_id 1) and `slave` (2).
pub fn pair() -> (Mariadb, Mariadb) {
    let addresses: [IpAddr; 2] = [[127, 0, 0, 2].into(), [127, 0, 0, 3].into()];
    let port = free_port_on(&addresses);
    let master = Mariadb::start("master", "127.0.0.2", port, 1);
    let slave = Mariadb::start("slave", "127.0.0.3", port, 2);
    (master, slave)
}
