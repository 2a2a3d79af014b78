//! `[mysql]` into parts: the `mysql` and `mysql-replication` checks, and the fence of
//! `[mysql.fencing]`.

use std::sync::Arc;

use failover_core::HealthCheck;

use crate::config::{CheckConfig, Config};
#[cfg(feature = "mysql")]
use crate::config::{CheckKind, DEFAULT_MAX_LAG};

#[cfg(feature = "mysql")]
use failover_mysql::{Credentials, Endpoint, FenceOptions, MysqlFence};

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
    Ok(match &check.kind {
        CheckKind::MysqlReplication(settings) => Arc::new(failover_mysql::ReplicationCheck::new(
            port,
            credentials,
            settings.max_lag.unwrap_or(DEFAULT_MAX_LAG),
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
        admin: admin_credentials(config)?,
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

/// The administrator of `[mysql]` (for fencing, status and setup).
#[cfg(feature = "mysql")]
pub fn admin_credentials(config: &Config) -> Result<Credentials, String> {
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
