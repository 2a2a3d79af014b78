//! The `mysql` and `mysql-replication` health checks.

use std::time::Duration;

use async_trait::async_trait;
use failover_core::{FailureClass, HealthCheck, Outcome, Target};

use crate::client::{Credentials, Session};
use crate::endpoint::Endpoint;
use crate::error::MysqlError;
use crate::status::replica_status;

/// `mysql`: connects, runs `SELECT 1`, disconnects. Healthy when all three work within the
/// probe's timeout. Bad credentials are reported as a misconfigured check, not as a dead server.
#[derive(Clone, Debug)]
pub struct MysqlCheck {
    port: u16,
    credentials: Credentials,
}

impl MysqlCheck {
    /// Probes port `port` of each node as `credentials`.
    pub fn new(port: u16, credentials: Credentials) -> Self {
        Self { port, credentials }
    }
}

#[async_trait]
impl HealthCheck for MysqlCheck {
    fn kind(&self) -> &'static str {
        "mysql"
    }

    async fn probe(&self, target: &Target) -> Outcome {
        let endpoint = Endpoint::new(target.address, self.port);
        let mut session = match Session::connect(&endpoint, &self.credentials, target.timeout).await
        {
            Ok(session) => session,
            Err(e) => return failed(&e),
        };
        let result = session.rows("SELECT 1 AS ok, VERSION() AS version").await;
        session.close().await;
        match result {
            Ok(rows) => {
                let version = rows
                    .first()
                    .and_then(|r| r.get("version").cloned().flatten())
                    .unwrap_or_default();
                Outcome::healthy(format!("SELECT 1 answered by {version}"))
            }
            Err(e) => failed(&e),
        }
    }
}

/// The most replication lag that is still healthy, unless configured otherwise.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_secs(30);

/// `mysql-replication`: the node's replica threads. Healthy when the IO and SQL threads both
/// run and the lag is known and at most `max_lag`; otherwise the outcome carries the thread
/// states, `Last_IO_Error`, `Last_SQL_Error` and the lag (NULL is reported as unknown, never 0).
#[derive(Clone, Debug)]
pub struct ReplicationCheck {
    port: u16,
    credentials: Credentials,
    max_lag: Duration,
}

impl ReplicationCheck {
    /// Reads the replica status on port `port` of each node as `credentials` (which needs
    /// `REPLICATION CLIENT`, and `REPLICA MONITOR` on MariaDB 10.5.9+).
    pub fn new(port: u16, credentials: Credentials, max_lag: Duration) -> Self {
        Self {
            port,
            credentials,
            max_lag,
        }
    }
}

#[async_trait]
impl HealthCheck for ReplicationCheck {
    fn kind(&self) -> &'static str {
        "mysql-replication"
    }

    async fn probe(&self, target: &Target) -> Outcome {
        let endpoint = Endpoint::new(target.address, self.port);
        let mut session = match Session::connect(&endpoint, &self.credentials, target.timeout).await
        {
            Ok(session) => session,
            Err(e) => return failed(&e),
        };
        let status = replica_status(&mut session).await;
        session.close().await;
        let status = match status {
            Ok(Some(status)) => status,
            Ok(None) => {
                return Outcome::failed(
                    FailureClass::Misconfigured,
                    format!("{endpoint} replicates from nobody (SHOW REPLICA STATUS is empty): set the pair up with `failoverd mysql setup`"),
                )
            }
            Err(e) => return failed(&e),
        };
        let lag_ok = status.lag().is_some_and(|lag| lag <= self.max_lag);
        if status.running() && lag_ok {
            return Outcome::healthy(format!(
                "replicating from {}:{}: {}",
                status.source_host,
                status.source_port,
                status.summary()
            ));
        }
        let mut error = status.describe();
        if status.running() && status.lag().is_some() {
            error.push_str(&format!(
                " (max_lag {})",
                humantime::format_duration(self.max_lag)
            ));
        }
        Outcome::failed(FailureClass::Unhealthy, error)
    }
}

fn failed(error: &MysqlError) -> Outcome {
    Outcome::failed(error.class(), error.to_string())
}
