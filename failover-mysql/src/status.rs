//! What a server says about itself: variables that matter for a pair, and its replica threads.

use std::time::Duration;

use serde::Serialize;

use crate::client::{Session, TextRow};
use crate::error::MysqlError;

/// The replica side of a server, from `SHOW REPLICA STATUS` (or `SHOW SLAVE STATUS`), read
/// under either naming (`Replica_IO_Running` or `Slave_IO_Running`, `Source_Host` or
/// `Master_Host`, ...), so that MariaDB 10.5+ and MySQL 8.x read the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReplicaStatus {
    /// The server it replicates from.
    pub source_host: String,
    /// Its port.
    pub source_port: u16,
    /// The IO thread: `Yes`, `No` or `Connecting`.
    pub io_running: String,
    /// The SQL thread: `Yes` or `No`.
    pub sql_running: String,
    /// `Seconds_Behind_Source`; `None` is SQL NULL (the lag is unknown, never "0").
    pub seconds_behind: Option<u64>,
    /// `Last_IO_Error`, when there is one.
    pub last_io_error: Option<String>,
    /// `Last_SQL_Error`, when there is one.
    pub last_sql_error: Option<String>,
    /// The source's binary log the IO thread reads, and how far (`Read_Source_Log_Pos`).
    pub read_position: Option<(String, u64)>,
    /// The source's binary log position the SQL thread has applied (`Exec_Source_Log_Pos`).
    pub exec_position: Option<(String, u64)>,
    /// GTIDs received (MariaDB `Gtid_IO_Pos`, MySQL `Retrieved_Gtid_Set`).
    pub gtid_received: Option<String>,
    /// The replica's state in words (`Waiting for master to send event`).
    pub io_state: Option<String>,
}

impl ReplicaStatus {
    /// Reads one row of `SHOW REPLICA STATUS` / `SHOW SLAVE STATUS`.
    pub(crate) fn from_row(row: &TextRow) -> Self {
        let text = |names: &[&str]| -> Option<String> {
            names
                .iter()
                .find_map(|n| row.get(*n).cloned().flatten())
                .filter(|v| !v.is_empty())
        };
        let number = |names: &[&str]| text(names).and_then(|v| v.parse::<u64>().ok());
        let position = |file: &[&str], pos: &[&str]| text(file).zip(number(pos));
        Self {
            source_host: text(&["Source_Host", "Master_Host"]).unwrap_or_default(),
            source_port: number(&["Source_Port", "Master_Port"])
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0),
            io_running: text(&["Replica_IO_Running", "Slave_IO_Running"])
                .unwrap_or_else(|| "No".to_owned()),
            sql_running: text(&["Replica_SQL_Running", "Slave_SQL_Running"])
                .unwrap_or_else(|| "No".to_owned()),
            seconds_behind: number(&["Seconds_Behind_Source", "Seconds_Behind_Master"]),
            last_io_error: text(&["Last_IO_Error"]),
            last_sql_error: text(&["Last_SQL_Error"]),
            read_position: position(
                &["Source_Log_File", "Master_Log_File"],
                &["Read_Source_Log_Pos", "Read_Master_Log_Pos"],
            ),
            exec_position: position(
                &["Relay_Source_Log_File", "Relay_Master_Log_File"],
                &["Exec_Source_Log_Pos", "Exec_Master_Log_Pos"],
            ),
            gtid_received: text(&["Gtid_IO_Pos", "Retrieved_Gtid_Set"]),
            io_state: text(&["Replica_IO_State", "Slave_IO_State"]),
        }
    }

    /// Both threads run.
    pub fn running(&self) -> bool {
        self.io_running == "Yes" && self.sql_running == "Yes"
    }

    /// The SQL thread has not applied everything the IO thread has received.
    pub fn unapplied_relay_log(&self) -> bool {
        match (&self.read_position, &self.exec_position) {
            (Some(read), Some(exec)) => read != exec,
            _ => false,
        }
    }

    /// The lag, if known.
    pub fn lag(&self) -> Option<Duration> {
        self.seconds_behind.map(Duration::from_secs)
    }

    /// `IO Yes, SQL Yes, lag 0 s` (or `lag NULL`).
    pub fn summary(&self) -> String {
        format!(
            "IO {}, SQL {}, lag {}",
            self.io_running,
            self.sql_running,
            match self.seconds_behind {
                Some(s) => format!("{s} s"),
                None => "NULL (unknown)".to_owned(),
            }
        )
    }

    /// The summary with the errors and the source: what an event about a broken replica says.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "replication from {}:{}: {}",
            self.source_host,
            self.source_port,
            self.summary()
        );
        if let Some(e) = &self.last_io_error {
            text.push_str(&format!("; Last_IO_Error: {e}"));
        }
        if let Some(e) = &self.last_sql_error {
            text.push_str(&format!("; Last_SQL_Error: {e}"));
        }
        text
    }
}

/// Which SQL dialect of replication a server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flavor {
    /// MariaDB: `CHANGE MASTER TO`, `START SLAVE`, `gtid_current_pos`.
    MariaDb,
    /// MySQL 8.0.23 and later: `CHANGE REPLICATION SOURCE TO`, `START REPLICA`.
    MySqlReplica,
    /// Older MySQL: `CHANGE MASTER TO`, `START SLAVE`.
    MySqlLegacy,
}

impl Flavor {
    /// The flavor a `version` string (`10.11.19-MariaDB-0+deb12u1`, `8.0.36`) tells.
    pub fn from_version(version: &str) -> Self {
        if version.to_ascii_lowercase().contains("mariadb") {
            return Flavor::MariaDb;
        }
        let mut parts = version
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|p| p.parse::<u32>().ok());
        let triple = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        if triple >= (8, 0, 23) {
            Flavor::MySqlReplica
        } else {
            Flavor::MySqlLegacy
        }
    }

    /// `START SLAVE` or `START REPLICA`.
    pub(crate) fn start_replica(self) -> &'static str {
        match self {
            Flavor::MySqlReplica => "START REPLICA",
            _ => "START SLAVE",
        }
    }
}

/// Everything about one server that matters for a master-master pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerState {
    /// `version` (`10.11.19-MariaDB-0+deb12u1`).
    pub version: String,
    /// Its replication dialect.
    pub flavor: Flavor,
    /// `server_id`.
    pub server_id: u64,
    /// `read_only`.
    pub read_only: bool,
    /// `super_read_only`, where it exists (MySQL).
    pub super_read_only: Option<bool>,
    /// `auto_increment_increment`.
    pub auto_increment_increment: u64,
    /// `auto_increment_offset`.
    pub auto_increment_offset: u64,
    /// `log_bin`: whether it writes a binary log (a source needs one).
    pub log_bin: bool,
    /// Its GTID position (MariaDB `gtid_current_pos`, MySQL `gtid_executed`).
    pub gtid_position: Option<String>,
    /// Its replica threads, when it replicates.
    pub replica: Option<ReplicaStatus>,
}

impl ServerState {
    /// Reads the state over `session`.
    pub(crate) async fn fetch(session: &mut Session) -> Result<Self, MysqlError> {
        let variables = session
            .rows(
                "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('version', 'server_id', 'read_only', \
                 'super_read_only', 'auto_increment_increment', 'auto_increment_offset', 'log_bin', \
                 'gtid_current_pos', 'gtid_executed')",
            )
            .await?;
        let variable = |name: &str| -> Option<String> {
            variables.iter().find_map(|row| {
                (row.get("Variable_name").cloned().flatten().as_deref() == Some(name))
                    .then(|| row.get("Value").cloned().flatten())
                    .flatten()
            })
        };
        let on = |name: &str| {
            variable(name).map(|v| matches!(v.to_ascii_uppercase().as_str(), "ON" | "1"))
        };
        let number = |name: &str| variable(name).and_then(|v| v.parse::<u64>().ok());
        let version = variable("version").unwrap_or_default();
        let replica = replica_status(session).await?;
        Ok(Self {
            flavor: Flavor::from_version(&version),
            version,
            server_id: number("server_id").unwrap_or(0),
            read_only: on("read_only").unwrap_or(false),
            super_read_only: on("super_read_only"),
            auto_increment_increment: number("auto_increment_increment").unwrap_or(1),
            auto_increment_offset: number("auto_increment_offset").unwrap_or(1),
            log_bin: on("log_bin").unwrap_or(false),
            gtid_position: variable("gtid_current_pos")
                .or_else(|| variable("gtid_executed"))
                .filter(|g| !g.is_empty()),
            replica,
        })
    }
}

/// `SHOW REPLICA STATUS`, falling back to `SHOW SLAVE STATUS` (MariaDB before 10.5, MySQL
/// before 8.0.22). `None` when the server replicates from nobody.
pub(crate) async fn replica_status(
    session: &mut Session,
) -> Result<Option<ReplicaStatus>, MysqlError> {
    let rows = match session.rows("SHOW REPLICA STATUS").await {
        // 1064: a syntax error, an older server.
        Err(MysqlError::Server { code: 1064, .. }) => session.rows("SHOW SLAVE STATUS").await?,
        other => other?,
    };
    Ok(rows.first().map(ReplicaStatus::from_row))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    fn row(pairs: &[(&str, Option<&str>)]) -> TextRow {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn both_namings_read_the_same() {
        let mariadb = row(&[
            ("Master_Host", Some("10.2.0.2")),
            ("Master_Port", Some("3306")),
            ("Slave_IO_Running", Some("Yes")),
            ("Slave_SQL_Running", Some("Yes")),
            ("Seconds_Behind_Master", Some("3")),
            ("Master_Log_File", Some("mysql-bin.000002")),
            ("Read_Master_Log_Pos", Some("900")),
            ("Relay_Master_Log_File", Some("mysql-bin.000002")),
            ("Exec_Master_Log_Pos", Some("800")),
            ("Last_IO_Error", Some("")),
        ]);
        let mysql = row(&[
            ("Source_Host", Some("10.2.0.2")),
            ("Source_Port", Some("3306")),
            ("Replica_IO_Running", Some("Yes")),
            ("Replica_SQL_Running", Some("Yes")),
            ("Seconds_Behind_Source", Some("3")),
            ("Source_Log_File", Some("mysql-bin.000002")),
            ("Read_Source_Log_Pos", Some("900")),
            ("Relay_Source_Log_File", Some("mysql-bin.000002")),
            ("Exec_Source_Log_Pos", Some("800")),
            ("Last_IO_Error", Some("")),
        ]);
        let a = ReplicaStatus::from_row(&mariadb);
        assert_eq!(a, ReplicaStatus::from_row(&mysql));
        assert!(a.running());
        assert!(a.unapplied_relay_log());
        assert_eq!(a.lag(), Some(Duration::from_secs(3)));
        assert_eq!(a.last_io_error, None, "an empty error is no error");
    }

    #[test]
    fn null_lag_is_unknown_not_zero() {
        let status = ReplicaStatus::from_row(&row(&[
            ("Slave_IO_Running", Some("Connecting")),
            ("Slave_SQL_Running", Some("Yes")),
            ("Seconds_Behind_Master", None),
        ]));
        assert_eq!(status.seconds_behind, None);
        assert_eq!(
            status.summary(),
            "IO Connecting, SQL Yes, lag NULL (unknown)"
        );
    }

    #[test]
    fn flavors_from_versions() {
        assert_eq!(
            Flavor::from_version("10.11.19-MariaDB-0+deb12u1"),
            Flavor::MariaDb
        );
        assert_eq!(Flavor::from_version("8.0.36"), Flavor::MySqlReplica);
        assert_eq!(Flavor::from_version("8.0.22-log"), Flavor::MySqlLegacy);
        assert_eq!(Flavor::from_version("5.7.44"), Flavor::MySqlLegacy);
    }
}
