//! The MySQL side of the daemon: checks and the fence from the config, and the `failoverd mysql`
//! commands (`status`, `setup`).

use std::sync::Arc;

use failover_core::HealthCheck;

use crate::config::{CheckConfig, Config};
#[cfg(feature = "mysql")]
use crate::config::{CheckKind, DEFAULT_MAX_LAG};

#[cfg(feature = "mysql")]
use failover_mysql::{Credentials, Endpoint, FenceOptions, MysqlFence, PairMember};

/// The `mysql` or `mysql-replication` check `check` asks for.
#[cfg(feature = "mysql")]
pub fn check(
    config: &Config,
    check: &CheckConfig,
    port: u16,
) -> Result<Arc<dyn HealthCheck>, String> {
    let (user, file) = config
        .mysql_login(check)
        .ok_or("needs user and password_file (here or in [mysql])")?;
    let credentials = Credentials::with_password_file(user, &file).map_err(|e| e.to_string())?;
    Ok(match check.kind {
        CheckKind::MysqlReplication => Arc::new(failover_mysql::ReplicationCheck::new(
            port,
            credentials,
            check.max_lag.unwrap_or(DEFAULT_MAX_LAG),
        )),
        _ => Arc::new(failover_mysql::MysqlCheck::new(port, credentials)),
    })
}

/// Without the `mysql` feature, mysql checks cannot be built.
#[cfg(not(feature = "mysql"))]
pub fn check(
    _config: &Config,
    check: &CheckConfig,
    _port: u16,
) -> Result<Arc<dyn HealthCheck>, String> {
    Err(format!(
        "kind = \"{}\" needs failoverd built with the mysql feature",
        check.kind
    ))
}

/// The fence of `[mysql.fencing]`, if configured.
#[cfg(feature = "mysql")]
pub fn fence(config: &Config) -> Result<Option<Arc<dyn failover_core::Fence>>, String> {
    let Some(mysql) = &config.mysql else {
        return Ok(None);
    };
    let Some(fencing) = &mysql.fencing else {
        return Ok(None);
    };
    let options = FenceOptions {
        servers: config
            .nodes
            .iter()
            .map(|n| {
                (
                    failover_core::NodeName::new(&n.name),
                    Endpoint::new(n.address, mysql.port),
                )
            })
            .collect(),
        admin: admin(config)?,
        max_promote_lag: fencing.max_promote_lag,
        promote_after_down: fencing.promote_after_down,
        timeout: mysql.timeout,
        retry_after: fencing.retry_after,
    };
    Ok(Some(Arc::new(MysqlFence::new(options))))
}

/// Without the `mysql` feature there is no fence; configuring one is an error.
#[cfg(not(feature = "mysql"))]
pub fn fence(config: &Config) -> Result<Option<Arc<dyn failover_core::Fence>>, String> {
    match config.mysql.as_ref().and_then(|m| m.fencing.as_ref()) {
        Some(_) => Err("fencing needs failoverd built with the mysql feature".to_owned()),
        None => Ok(None),
    }
}

#[cfg(feature = "mysql")]
fn admin(config: &Config) -> Result<Credentials, String> {
    let mysql = config
        .mysql
        .as_ref()
        .ok_or("no [mysql] section (expected admin_user and admin_password_file there)")?;
    match (&mysql.admin_user, &mysql.admin_password_file) {
        (Some(user), Some(file)) => {
            Credentials::with_password_file(user, file).map_err(|e| e.to_string())
        }
        _ => Err("[mysql] needs admin_user and admin_password_file".to_owned()),
    }
}

#[cfg(feature = "mysql")]
fn pair(config: &Config) -> Result<[PairMember; 2], String> {
    let port = config.mysql.as_ref().map_or(3306, |m| m.port);
    match config.nodes.as_slice() {
        [a, b] => Ok([
            PairMember::new(&a.name, Endpoint::new(a.address, port)),
            PairMember::new(&b.name, Endpoint::new(b.address, port)),
        ]),
        nodes => Err(format!(
            "a master-master pair needs exactly two [[node]]s ({} configured)",
            nodes.len()
        )),
    }
}

/// `failoverd mysql status`: both directions at a glance, and whether all is well.
#[cfg(feature = "mysql")]
pub async fn status(config: &Config) -> Result<(String, bool), String> {
    let [a, b] = pair(config)?;
    let timeout = config
        .mysql
        .as_ref()
        .map_or(std::time::Duration::from_secs(5), |m| m.timeout);
    let status = failover_mysql::PairStatus::fetch(&a, &b, &admin(config)?, timeout).await;
    Ok((status.to_string(), status.is_healthy()))
}

/// `failoverd mysql setup`: makes the two nodes a master-master pair; returns what it did.
#[cfg(feature = "mysql")]
pub async fn setup(config: &Config) -> Result<String, String> {
    let servers = pair(config)?;
    let admin = admin(config)?;
    let mysql = config.mysql.as_ref().ok_or("no [mysql] section")?;
    let file = mysql.replication_password_file.as_ref().ok_or(
        "[mysql] needs replication_password_file (the password setup gives the replication user)",
    )?;
    let replication = Credentials::with_password_file(&mysql.replication_user, file)
        .map_err(|e| e.to_string())?;
    let report = failover_mysql::setup_pair(&failover_mysql::SetupOptions {
        servers,
        admin,
        replication,
        timeout: mysql.timeout,
        wait_running: mysql.timeout.saturating_mul(4),
    })
    .await
    .map_err(|e| e.to_string())?;
    let mut out = String::new();
    for step in &report.steps {
        out.push_str(step);
        out.push('\n');
    }
    for warning in &report.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    Ok(out)
}
