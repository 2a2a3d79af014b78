//! Real MariaDB servers for the tests: each in its own temporary data directory, on its own
//! loopback address, socket and port, killed on drop whatever happens.
#![allow(clippy::unwrap_used, dead_code)] // test helpers

use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use failover_mysql::{Credentials, Endpoint, PairMember};

pub const ADMIN: (&str, &str) = ("failover_admin", "admin-pw");
pub const MONITOR: (&str, &str) = ("failover_monitor", "monitor-pw");
pub const REPLICATION: (&str, &str) = ("repl", "repl'pw\\x");

pub fn admin() -> Credentials {
    Credentials::new(ADMIN.0, ADMIN.1)
}

pub fn monitor() -> Credentials {
    Credentials::new(MONITOR.0, MONITOR.1)
}

pub fn replication() -> Credentials {
    Credentials::new(REPLICATION.0, REPLICATION.1)
}

const MISSING: &str = "install mariadb-server (apt-get install mariadb-server)";

fn binary(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("{name} not found: {MISSING}");
}

/// One initialised data directory, copied for every server (mariadb-install-db is slow).
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // Its own temp directory: bootstraps of parallel test processes in the shared /tmp
        // were seen to trip over each other's temporary tables ("Unknown table
        // 'mysql.tmp_user_sys'").
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let output = Command::new(binary("mariadb-install-db"))
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--user=root",
                "--skip-test-db",
            ])
            .output()
            .unwrap_or_else(|e| panic!("mariadb-install-db: {e}: {MISSING}"));
        assert!(
            output.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        (dir, data)
    });
    path
}

/// A port free on both addresses.
pub fn free_port(addresses: &[IpAddr]) -> u16 {
    for _ in 0..50 {
        let first = TcpListener::bind((addresses[0], 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        if addresses[1..]
            .iter()
            .all(|a| TcpListener::bind((*a, port)).is_ok())
        {
            return port;
        }
    }
    panic!("no port free on {addresses:?}");
}

/// A running `mariadbd`.
pub struct Mariadb {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    server_id: u32,
}

impl Mariadb {
    /// Starts a server with binary log, `server_id` and `auto_increment_offset` = `server_id`,
    /// increment 2, and the test's admin and monitor users (made without binary logging).
    pub fn start(name: &str, address: &str, port: u16, server_id: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(template())
            .arg(dir.path().join("data"))
            .status()
            .unwrap();
        assert!(status.success());
        let mut server = Self {
            name: name.to_owned(),
            address: address.parse().unwrap(),
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
        let log = std::fs::File::create(self.dir.path().join("error.log")).unwrap();
        let child = Command::new(binary("mariadbd"))
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
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("mariadbd: {e}: {MISSING}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "mariadbd {} exited with {status}: {}",
                    self.name,
                    std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
                );
            }
            if self.try_sql("SELECT 1").is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd {} did not start within 60 s: {}",
                self.name,
                std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.address, self.port)
    }

    pub fn member(&self) -> PairMember {
        PairMember::new(&self.name, self.endpoint())
    }

    /// Runs SQL as root over the socket; the rows as tab-separated lines.
    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        let output = Command::new(binary("mariadb"))
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "-N", "-B", "--connect-timeout=5", "-e", sql])
            .output()
            .map_err(|e| format!("mariadb client: {e}: {MISSING}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql)
            .unwrap_or_else(|e| panic!("{} on {}: {e}", sql, self.name))
    }

    /// Runs SQL over TCP as `user`, as the site's application would.
    pub fn try_sql_as(&self, user: &str, password: &str, sql: &str) -> Result<String, String> {
        let output = Command::new(binary("mariadb"))
            .arg("--no-defaults")
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
            .map_err(|e| format!("mariadb client: {e}: {MISSING}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// One field of `SHOW SLAVE STATUS` (empty when it replicates from nobody).
    pub fn replica_field(&self, field: &str) -> String {
        let output = Command::new(binary("mariadb"))
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "-E", "-e", "SHOW SLAVE STATUS"])
            .output()
            .unwrap();
        let vertical = String::from_utf8_lossy(&output.stdout);
        vertical
            .lines()
            .find_map(|line| {
                let (name, value) = line.trim().split_once(": ")?;
                (name == field).then(|| value.to_owned())
            })
            .unwrap_or_default()
    }

    pub fn read_only(&self) -> bool {
        self.sql("SELECT @@global.read_only") == "1"
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Two servers on 127.0.0.2 and 127.0.0.3, same port: `master` (server_id 1) and `slave` (2).
pub fn pair() -> (Mariadb, Mariadb) {
    let addresses: [IpAddr; 2] = ["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()];
    let port = free_port(&addresses);
    let master = Mariadb::start("master", "127.0.0.2", port, 1);
    let slave = Mariadb::start("slave", "127.0.0.3", port, 2);
    (master, slave)
}

/// Waits up to `limit` for `condition`, checking every 100 ms.
pub async fn eventually(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
