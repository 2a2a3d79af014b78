//! `[[check]]`: one check run against every node; the keys every kind takes, and each kind's own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::defaults;
use super::error::{Seg, Validator};
use super::kinded::{Kinded, PluginKind};
use super::plugin::{PluginSettings, Section};
use super::probe::validate_timing;
use super::{absolute, Config};

/// `[[check]]`: one check, run against every node.
pub type CheckConfig = Kinded<CheckCommon, CheckKind>;

/// The keys of `[[check]]` every kind takes.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckCommon {
    /// Its name (`http`, `mysql-port`).
    pub name: String,
    /// A node is down when a critical check is down.
    #[serde(default)]
    pub critical: bool,
    /// Overrides `[probe] interval`.
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Overrides `[probe] timeout`.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Overrides `[probe] fall`.
    pub fall: Option<u32>,
    /// Overrides `[probe] rise`.
    pub rise: Option<u32>,
}

/// The kinds of check, each with its own keys.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CheckKind {
    /// TCP connect.
    Tcp(TcpSettings),
    /// HTTP GET.
    Http(HttpSettings),
    /// SSH banner.
    Ssh(SshSettings),
    /// A DNS query.
    Dns(DnsSettings),
    /// MySQL: connect and `SELECT 1`.
    Mysql(MysqlSettings),
    /// MySQL replication: both replica threads run and the lag is at most `max_lag`.
    MysqlReplication(ReplicationSettings),
    /// The live mirror (`[mirror]`): connected, and nothing waiting longer than `max_lag`.
    Mirror(MirrorSettings),
    /// A kind a program registered ([`crate::plugins::Plugins::check`]).
    #[serde(skip)]
    Plugin(PluginSettings),
}

impl PluginKind for CheckKind {
    const SECTION: Section = Section::Check;
    fn plugin(settings: PluginSettings) -> Self {
        CheckKind::Plugin(settings)
    }
}

/// `kind = "tcp"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSettings {
    /// Port to connect to (required).
    pub port: Option<u16>,
}

/// `kind = "http"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Port to probe (default 80, 443 with `tls`).
    pub port: Option<u16>,
    /// Path to GET (default `/`).
    pub path: Option<String>,
    /// `Host` header and TLS name (default: the node's address).
    pub host: Option<String>,
    /// Use HTTPS.
    pub tls: Option<bool>,
    /// Status codes that mean healthy (default any 2xx or 3xx).
    pub expect_status: Option<Vec<u16>>,
    /// Text the body must contain.
    pub body_contains: Option<String>,
    /// Accept any TLS certificate. Anyone on the path can then answer for the node.
    pub danger_accept_invalid_certs: Option<bool>,
}

/// `kind = "ssh"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    /// Port to probe (default 22).
    pub port: Option<u16>,
}

/// `kind = "dns"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSettings {
    /// Port to ask (default 53).
    pub port: Option<u16>,
    /// The name to ask for (default: the zone's name).
    pub query: Option<String>,
    /// The record type to ask for (default `SOA`).
    pub record_type: Option<String>,
    /// `udp` or `tcp` (default `udp`).
    pub transport: Option<TransportConfig>,
    /// The rcode that means healthy (default `NOERROR`).
    pub expect_rcode: Option<String>,
    /// A value the answer must hold (an address, or record data as in a zone file).
    pub expect_answer: Option<String>,
}

/// The transport of a `dns` check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportConfig {
    /// UDP (falls back to TCP on a truncated answer).
    Udp,
    /// TCP.
    Tcp,
}

/// `kind = "mysql"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlSettings {
    /// Port of the server (default 3306).
    pub port: Option<u16>,
    /// The user to log in as (default `[mysql] user`).
    pub user: Option<String>,
    /// File holding its password (default `[mysql] password_file`).
    pub password_file: Option<PathBuf>,
}

/// `kind = "mysql-replication"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationSettings {
    /// Port of the server (default 3306).
    pub port: Option<u16>,
    /// The user to log in as (default `[mysql] user`).
    pub user: Option<String>,
    /// File holding its password (default `[mysql] password_file`).
    pub password_file: Option<PathBuf>,
    /// The most lag that is still healthy (default `"30s"`).
    #[serde(default, with = "humantime_serde")]
    pub max_lag: Option<Duration>,
}

/// `kind = "mirror"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorSettings {
    /// How long a change may wait (default `"60s"`).
    #[serde(default, with = "humantime_serde")]
    pub max_lag: Option<Duration>,
}

/// Lag a `mysql-replication` check accepts when `max_lag` is not set.
pub const DEFAULT_MAX_LAG: Duration = defaults::DEFAULT_REPLICATION_MAX_LAG;

/// Wait a `mirror` check accepts when `max_lag` is not set.
pub const DEFAULT_MIRROR_MAX_LAG: Duration = defaults::DEFAULT_MIRROR_MAX_LAG;

impl CheckKind {
    /// The kind's name, as in the config.
    pub fn name(&self) -> &str {
        match self {
            CheckKind::Plugin(settings) => &settings.kind,
            CheckKind::Tcp(_) => "tcp",
            CheckKind::Http(_) => "http",
            CheckKind::Ssh(_) => "ssh",
            CheckKind::Dns(_) => "dns",
            CheckKind::Mysql(_) => "mysql",
            CheckKind::MysqlReplication(_) => "mysql-replication",
            CheckKind::Mirror(_) => "mirror",
        }
    }

    /// The port set in the config, if any (a mirror check has none).
    pub fn configured_port(&self) -> Option<u16> {
        match self {
            CheckKind::Tcp(s) => s.port,
            CheckKind::Http(s) => s.port,
            CheckKind::Ssh(s) => s.port,
            CheckKind::Dns(s) => s.port,
            CheckKind::Mysql(s) => s.port,
            CheckKind::MysqlReplication(s) => s.port,
            CheckKind::Mirror(_) | CheckKind::Plugin(_) => None,
        }
    }

    /// The port probed: the configured one, or the kind's default (0 for tcp without a port,
    /// which validation refuses, and for the mirror, which has no port).
    pub fn port(&self) -> u16 {
        self.configured_port().unwrap_or(match self {
            CheckKind::Http(s) if s.tls == Some(true) => 443,
            CheckKind::Http(_) => 80,
            CheckKind::Ssh(_) => 22,
            CheckKind::Dns(_) => 53,
            CheckKind::Mysql(_) | CheckKind::MysqlReplication(_) => defaults::DEFAULT_MYSQL_PORT,
            CheckKind::Tcp(_) | CheckKind::Mirror(_) | CheckKind::Plugin(_) => 0,
        })
    }

    /// A mysql check's own user and password file (`None`s for the other kinds).
    pub fn login(&self) -> (Option<&String>, Option<&PathBuf>) {
        match self {
            CheckKind::Mysql(s) => (s.user.as_ref(), s.password_file.as_ref()),
            CheckKind::MysqlReplication(s) => (s.user.as_ref(), s.password_file.as_ref()),
            _ => (None, None),
        }
    }

    fn password_file_mut(&mut self) -> Option<&mut PathBuf> {
        match self {
            CheckKind::Mysql(s) => s.password_file.as_mut(),
            CheckKind::MysqlReplication(s) => s.password_file.as_mut(),
            _ => None,
        }
    }
}

impl std::fmt::Display for CheckKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl CheckConfig {
    /// Makes its password file absolute, relative to `base`.
    pub(super) fn resolve(&mut self, base: &Path) {
        if let Some(file) = self.kind.password_file_mut() {
            absolute(base, file);
        }
    }
}

/// Checks `[[check]]`: some critical check, unique names, ports, http settings, timings.
pub(super) fn validate(config: &Config, v: &mut Validator<'_>) {
    use Seg::{Index, Key};
    if config.checks.is_empty() {
        v.fail(&[Key("check")], "no checks: nothing would ever tell a node is down (add a [[check]] with critical = true)");
    }
    if !config.checks.is_empty() && !config.checks.iter().any(|c| c.common.critical) {
        v.fail(&[Key("check")], "no check is critical: nodes could never be down (set critical = true on the service the site needs, e.g. http)");
    }
    for (i, check) in config.checks.iter().enumerate() {
        let at = |key| [Key("check"), Index(i), Key(key)];
        let name = &check.common.name;
        if config.checks[..i].iter().any(|c| &c.common.name == name) {
            v.fail(&at("name"), format!("check {name:?} is defined twice"));
        }
        if let CheckKind::Tcp(TcpSettings { port: None }) = check.kind {
            v.fail(
                &at("kind"),
                format!("check {name:?}: kind \"tcp\" needs a port (e.g. port = 3306)"),
            );
        }
        if check.kind.configured_port() == Some(0) {
            v.fail(&at("port"), "port 0 cannot be probed (expected 1 to 65535)");
        }
        if let CheckKind::Http(http) = &check.kind {
            validate_http(http, at, v);
        }
        let (interval, timeout, fall, rise) = config.check_timing(check);
        validate_timing(v, &[Key("check"), Index(i)], interval, timeout, fall, rise);
    }
}

fn validate_http<'a>(
    http: &HttpSettings,
    at: impl Fn(&'a str) -> [Seg<'a>; 3],
    v: &mut Validator<'_>,
) {
    if let Some(path) = &http.path {
        if !path.starts_with('/') {
            v.fail(&at("path"), format!("{path:?} must start with \"/\""));
        }
    }
    for status in http.expect_status.iter().flatten() {
        if !(100..=599).contains(status) {
            v.fail(
                &at("expect_status"),
                format!("{status} is not an HTTP status code (expected 100 to 599)"),
            );
        }
    }
}
