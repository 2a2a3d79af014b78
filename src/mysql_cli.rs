//! The `failoverd mysql` commands: `status` and `setup` of the master-master pair.

#[cfg(feature = "mysql")]
use crate::config::Config;
#[cfg(feature = "mysql")]
use crate::parts::mysql::admin_credentials;
#[cfg(feature = "mysql")]
use failover_mysql::{Credentials, Endpoint, PairMember};

#[cfg(feature = "mysql")]
fn pair(config: &Config) -> Result<[PairMember; 2], String> {
    let port = config
        .mysql
        .as_ref()
        .map_or(crate::config::defaults::DEFAULT_MYSQL_PORT, |m| m.port);
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
        .map_or(crate::config::defaults::DEFAULT_MYSQL_TIMEOUT, |m| {
            m.timeout
        });
    let status =
        failover_mysql::PairStatus::fetch(&a, &b, &admin_credentials(config)?, timeout).await;
    Ok((status.to_string(), status.is_healthy()))
}

/// `failoverd mysql setup`: makes the two nodes a master-master pair; returns what it did.
#[cfg(feature = "mysql")]
pub async fn setup(config: &Config) -> Result<String, String> {
    let servers = pair(config)?;
    let admin = admin_credentials(config)?;
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
