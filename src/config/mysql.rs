//! `[mysql]`: the MySQL/MariaDB pair's credentials, and `[mysql.fencing]` on failover.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::check::{CheckConfig, CheckKind};
use super::defaults;
use super::error::{Seg, Validator};
use super::policy::PolicyKind;
use super::{absolute, Config};

/// `[mysql]`: the database pair on the nodes (each node's `address`, `port`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlConfig {
    /// Port of each node's server, and the default of mysql checks.
    #[serde(default = "default_mysql_port")]
    pub port: u16,
    /// The user checks log in as (needs `REPLICATION CLIENT`, and `REPLICA MONITOR` on MariaDB).
    pub user: Option<String>,
    /// File holding its password.
    pub password_file: Option<PathBuf>,
    /// An administrator, for fencing, `failoverd mysql status` and `failoverd mysql setup`.
    pub admin_user: Option<String>,
    /// File holding its password.
    pub admin_password_file: Option<PathBuf>,
    /// The replication user `failoverd mysql setup` creates on both servers.
    #[serde(default = "default_replication_user")]
    pub replication_user: String,
    /// File holding its password (needed by `failoverd mysql setup`).
    pub replication_password_file: Option<PathBuf>,
    /// Budget of each call to a server (fencing, status, setup).
    #[serde(default = "default_mysql_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Fencing on failover; off when absent.
    pub fencing: Option<FencingConfig>,
}

/// `[mysql.fencing]`: `read_only` on the old primary, the lag gate on the new one.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FencingConfig {
    /// A new primary further behind than this (or with unapplied relay log) is not promoted.
    #[serde(default = "default_max_promote_lag", with = "humantime_serde")]
    pub max_promote_lag: Duration,
    /// ... unless the old primary has been down for longer than this.
    #[serde(default = "default_promote_after_down", with = "humantime_serde")]
    pub promote_after_down: Duration,
    /// How long a refused promotion waits before it is decided again.
    #[serde(default = "default_fencing_retry", with = "humantime_serde")]
    pub retry_after: Duration,
}

fn default_mysql_port() -> u16 {
    defaults::DEFAULT_MYSQL_PORT
}
fn default_replication_user() -> String {
    "repl".to_owned()
}
fn default_mysql_timeout() -> Duration {
    defaults::DEFAULT_MYSQL_TIMEOUT
}
fn default_max_promote_lag() -> Duration {
    defaults::DEFAULT_MAX_PROMOTE_LAG
}
fn default_promote_after_down() -> Duration {
    defaults::DEFAULT_PROMOTE_AFTER_DOWN
}
fn default_fencing_retry() -> Duration {
    defaults::DEFAULT_RETRY_AFTER
}

impl MysqlConfig {
    /// Makes its password files absolute, relative to `base`.
    pub(super) fn resolve(&mut self, base: &Path) {
        for file in [
            &mut self.password_file,
            &mut self.admin_password_file,
            &mut self.replication_password_file,
        ]
        .into_iter()
        .flatten()
        {
            absolute(base, file);
        }
    }
}

impl Config {
    /// A mysql check's user and password file: its own, or `[mysql]`'s.
    pub fn mysql_login(&self, check: &CheckConfig) -> Option<(String, PathBuf)> {
        let section = self.mysql.as_ref();
        let (user, file) = check.kind.login();
        let user = user
            .cloned()
            .or_else(|| section.and_then(|m| m.user.clone()))?;
        let file = file
            .cloned()
            .or_else(|| section.and_then(|m| m.password_file.clone()))?;
        Some((user, file))
    }
}

/// Checks `[mysql]` and the mysql checks' logins: credentials in pairs, fencing's needs.
pub(super) fn validate(config: &Config, v: &mut Validator<'_>) {
    use Seg::{Index, Key};
    for (i, check) in config.checks.iter().enumerate() {
        let mysql = matches!(
            check.kind,
            CheckKind::Mysql(_) | CheckKind::MysqlReplication(_)
        );
        if mysql && config.mysql_login(check).is_none() {
            v.fail(
                &[Key("check"), Index(i)],
                format!(
                    "kind = \"{}\" needs user and password_file (here or in [mysql])",
                    check.kind
                ),
            );
        }
    }
    let Some(mysql) = &config.mysql else { return };
    let at = |key| [Key("mysql"), Key(key)];
    if mysql.user.is_some() != mysql.password_file.is_some() {
        v.fail(&at("user"), "user and password_file go together");
    }
    if mysql.admin_user.is_some() != mysql.admin_password_file.is_some() {
        v.fail(
            &at("admin_user"),
            "admin_user and admin_password_file go together",
        );
    }
    if mysql.port == 0 {
        v.fail(&at("port"), "port 0 cannot be reached (expected e.g. 3306)");
    }
    if mysql.timeout.is_zero() {
        v.fail(&at("timeout"), "0 (expected e.g. \"5s\")");
    }
    if mysql.fencing.is_some() {
        if mysql.admin_user.is_none() {
            v.fail(
                &at("fencing"),
                "fencing sets read_only: it needs admin_user and admin_password_file in [mysql]",
            );
        }
        if config.policy.kind != PolicyKind::ActivePassive {
            v.fail(
                &at("fencing"),
                "fencing keeps one writer: it needs [policy] kind = \"active-passive\"",
            );
        }
    }
}
