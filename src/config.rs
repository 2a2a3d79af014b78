//! The `failoverd` config file: TOML parsed once into validated types.
//!
//! Every error names the file, the line and the key, and says what was expected.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use failover_core::peer::Fingerprint;
use failover_core::{AllDown, NodeName, OnPartition};

/// The whole config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The zone and how it is served.
    pub zone: ZoneConfig,
    /// Defaults for every check.
    #[serde(default)]
    pub probe: ProbeConfig,
    /// The servers, in config order.
    #[serde(rename = "node")]
    pub nodes: Vec<NodeConfig>,
    /// The checks, each run against every node.
    #[serde(rename = "check", default)]
    pub checks: Vec<CheckConfig>,
    /// Which nodes the managed names point at.
    pub policy: PolicyConfig,
    /// Where events go besides the log.
    #[serde(rename = "notify", default)]
    pub notifiers: Vec<NotifyConfig>,
    /// Other places the answer is published: a BIND zone file, a primary taking dynamic updates.
    #[serde(rename = "writer", default)]
    pub writers: Vec<WriterConfig>,
    /// Damping of notifications for things that change state too often.
    #[serde(default)]
    pub damping: DampingConfig,
    /// The admin listener (status, metrics, overrides); off when absent.
    pub admin: Option<AdminConfig>,
    /// The MySQL/MariaDB pair: credentials, and fencing on failover.
    pub mysql: Option<MysqlConfig>,
    /// This daemon as one observer among several (shared observations); alone when absent.
    pub cluster: Option<ClusterConfig>,
    /// The other observers: the other daemons and a witness.
    #[serde(rename = "peer", default)]
    pub peers: Vec<PeerEntry>,
    /// The live mirror of the web root with the peer; off when absent.
    pub mirror: Option<MirrorConfig>,
    /// Where the file was read from (set by [`Config::load`]).
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[zone]`: the zone the daemon serves.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// The zone's name (`test.ru`).
    pub name: String,
    /// Zone file with the static records (SOA, NS, MX...), relative to the config file.
    pub file: PathBuf,
    /// Addresses to serve DNS on, UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// UDP sockets per listen address (SO_REUSEPORT), one thread each.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Directory for state that must survive restarts (the SOA serial).
    pub state_dir: PathBuf,
    /// The managed names and their TTLs.
    pub records: Vec<RecordConfig>,
    /// Addresses or networks allowed to transfer the zone (AXFR/IXFR); none by default.
    #[serde(default, deserialize_with = "addresses_or_networks")]
    pub allow_transfer: Vec<ipnet::IpNet>,
    /// Secondaries to NOTIFY on every serial change (`"192.0.2.53:53"`).
    #[serde(default)]
    pub notify: Vec<SocketAddr>,
}

/// `"192.0.2.1"` or `"192.0.2.0/24"`: an address is a network of one.
fn addresses_or_networks<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let texts: Vec<String> = Vec::deserialize(deserializer)?;
    texts
        .iter()
        .map(|text| {
            text.parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{text:?} is neither an address nor a network (expected e.g. \"192.0.2.1\" or \"192.0.2.0/24\")"
                    ))
                })
        })
        .collect()
}

fn default_workers() -> usize {
    1
}

/// A managed name: `{ name = "www", ttl = 10 }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    /// Relative to the zone (`@` for the apex).
    pub name: String,
    /// TTL in seconds.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
}

fn default_ttl() -> u32 {
    10
}

/// `[probe]`: defaults for every check.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Time between two probes of one node (`"2s"`).
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Hard limit of one probe (`"1s"`).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Random spread added to each interval.
    #[serde(default = "default_jitter", with = "humantime_serde")]
    pub jitter: Duration,
    /// Failures in a row that take a check down.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// Successes in a row that bring it up again.
    #[serde(default = "default_rise")]
    pub rise: u32,
}

fn default_interval() -> Duration {
    Duration::from_secs(2)
}
fn default_timeout() -> Duration {
    Duration::from_secs(1)
}
fn default_jitter() -> Duration {
    Duration::from_millis(200)
}
fn default_fall() -> u32 {
    3
}
fn default_rise() -> u32 {
    1
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            timeout: default_timeout(),
            jitter: default_jitter(),
            fall: default_fall(),
            rise: default_rise(),
        }
    }
}

/// `[[node]]`: one server.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Its name, used in `order`, events and status.
    pub name: String,
    /// The address probed, and published unless `publish` is set.
    pub address: IpAddr,
    /// Addresses to publish instead of `address` (e.g. an IPv4 and an IPv6).
    #[serde(default)]
    pub publish: Vec<IpAddr>,
}

/// The kinds of check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// TCP connect.
    Tcp,
    /// HTTP GET.
    Http,
    /// SSH banner.
    Ssh,
    /// A DNS query.
    Dns,
    /// MySQL: connect and `SELECT 1`.
    Mysql,
    /// MySQL replication: both replica threads run and the lag is at most `max_lag`.
    MysqlReplication,
    /// The live mirror (`[mirror]`): connected, and nothing waiting longer than `max_lag`.
    Mirror,
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckKind::Tcp => "tcp",
            CheckKind::Http => "http",
            CheckKind::Ssh => "ssh",
            CheckKind::Dns => "dns",
            CheckKind::Mysql => "mysql",
            CheckKind::MysqlReplication => "mysql-replication",
            CheckKind::Mirror => "mirror",
        })
    }
}

/// `[[check]]`: one check, run against every node.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// Its name (`http`, `mysql-port`).
    pub name: String,
    /// `tcp`, `http` or `ssh`.
    pub kind: CheckKind,
    /// Port to probe (default: 80 for http, 443 for http with tls, 22 for ssh; required for tcp).
    pub port: Option<u16>,
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
    /// http: path to GET (default `/`).
    pub path: Option<String>,
    /// http: `Host` header and TLS name (default: the node's address).
    pub host: Option<String>,
    /// http: use HTTPS.
    pub tls: Option<bool>,
    /// http: status codes that mean healthy (default any 2xx or 3xx).
    pub expect_status: Option<Vec<u16>>,
    /// http: text the body must contain.
    pub body_contains: Option<String>,
    /// http: accept any TLS certificate. Anyone on the path can then answer for the node.
    pub danger_accept_invalid_certs: Option<bool>,
    /// dns: the name to ask for (default: the zone's name).
    pub query: Option<String>,
    /// dns: the record type to ask for (default `SOA`).
    pub record_type: Option<String>,
    /// dns: `udp` or `tcp` (default `udp`).
    pub transport: Option<TransportConfig>,
    /// dns: the rcode that means healthy (default `NOERROR`).
    pub expect_rcode: Option<String>,
    /// dns: a value the answer must hold (an address, or record data as in a zone file).
    pub expect_answer: Option<String>,
    /// mysql, mysql-replication: the user to log in as (default `[mysql] user`).
    pub user: Option<String>,
    /// mysql, mysql-replication: file holding its password (default `[mysql] password_file`).
    pub password_file: Option<PathBuf>,
    /// mysql-replication: the most lag that is still healthy (default `"30s"`); mirror: how
    /// long a change may wait (default `"60s"`).
    #[serde(default, with = "humantime_serde")]
    pub max_lag: Option<Duration>,
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

/// The kinds of zone writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriterKind {
    /// Rewrite a BIND zone file and reload it.
    ZoneFile,
    /// Send RFC 2136 updates to a primary.
    DynamicUpdate,
}

impl fmt::Display for WriterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriterKind::ZoneFile => "zone-file",
            WriterKind::DynamicUpdate => "dynamic-update",
        })
    }
}

/// An inline TSIG key: `{ name = "failover-key", algorithm = "hmac-sha256", secret = "..." }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigKeyConfig {
    /// The key's name, as the primary knows it.
    pub name: String,
    /// `hmac-sha256` (default), `hmac-sha384` or `hmac-sha512`.
    #[serde(default = "default_tsig_algorithm")]
    pub algorithm: String,
    /// The base64 secret.
    pub secret: String,
}

fn default_tsig_algorithm() -> String {
    "hmac-sha256".to_owned()
}

/// `[[writer]]`: another place the answer is published.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterConfig {
    /// `zone-file` or `dynamic-update`.
    pub kind: WriterKind,
    /// Budget of each step (write, reload, update).
    #[serde(default = "default_hook_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// zone-file: the zone file BIND loads.
    pub file: Option<PathBuf>,
    /// zone-file: the reload command (default `["rndc", "reload", ZONE]`).
    pub reload: Option<Vec<String>>,
    /// zone-file: ask this server for the SOA after the reload until it serves the new serial.
    pub verify: Option<SocketAddr>,
    /// dynamic-update: the primary's address (`"192.0.2.53:53"`).
    pub primary: Option<SocketAddr>,
    /// dynamic-update: a BIND key file (`tsig-keygen` output).
    pub key_file: Option<PathBuf>,
    /// dynamic-update: which key of `key_file`, when it holds several.
    pub key_name: Option<String>,
    /// dynamic-update: the key inline instead of `key_file`.
    pub key: Option<TsigKeyConfig>,
}

/// The kinds of policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// One node at a time, in `order`.
    ActivePassive,
    /// Every node that is up.
    AllHealthy,
}

/// When `active-passive` returns to the preferred node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailbackMode {
    /// After `failback_after`.
    Auto,
    /// When an operator asks.
    Manual,
}

/// `[policy]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// `active-passive` or `all-healthy`.
    pub kind: PolicyKind,
    /// active-passive: nodes by preference (default: config order).
    #[serde(default)]
    pub order: Vec<String>,
    /// active-passive: `auto` or `manual`.
    #[serde(default = "default_failback")]
    pub failback: FailbackMode,
    /// active-passive, failback `auto`: how long the preferred node must be up again.
    #[serde(default = "default_failback_after", with = "humantime_serde")]
    pub failback_after: Duration,
    /// What to publish when every node is down.
    #[serde(default)]
    pub all_down: AllDown,
}

fn default_failback() -> FailbackMode {
    FailbackMode::Auto
}
fn default_failback_after() -> Duration {
    Duration::from_secs(30)
}

/// The kinds of notifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyKind {
    /// Run a program per event.
    Command,
    /// Send mail through an SMTP relay.
    Email,
    /// POST each event as JSON.
    Webhook,
}

impl fmt::Display for NotifyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotifyKind::Command => "command",
            NotifyKind::Email => "email",
            NotifyKind::Webhook => "webhook",
        })
    }
}

/// SMTP connection security.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecurityConfig {
    /// Plain SMTP.
    None,
    /// STARTTLS, required.
    Starttls,
    /// TLS from the start.
    Tls,
}

/// `[[notify]]`: somewhere events go (the log always gets them).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// `command`, `email` or `webhook`.
    pub kind: NotifyKind,
    /// Only these events (names as in `FAILOVER_EVENT`); all when unset.
    pub events: Option<Vec<String>>,
    /// How long one delivery may take.
    #[serde(default = "default_hook_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// command: the program and its arguments.
    pub command: Option<Vec<String>>,
    /// email: the relay's host name or address.
    pub host: Option<String>,
    /// email: the relay's port (default 25, 587 with starttls, 465 with tls).
    pub port: Option<u16>,
    /// email: `none`, `starttls` or `tls` (default `none`).
    pub security: Option<SecurityConfig>,
    /// email: user name for SMTP authentication.
    pub username: Option<String>,
    /// email: file holding the SMTP password (kept out of the config).
    pub password_file: Option<PathBuf>,
    /// email: the sender address.
    pub from: Option<String>,
    /// email: the recipients.
    pub to: Option<Vec<String>>,
    /// email: the subject template.
    pub subject: Option<String>,
    /// email: events arriving within this window go into one message (default 2s).
    #[serde(default, with = "humantime_serde")]
    pub batch_window: Option<Duration>,
    /// webhook: the URL to POST to.
    pub url: Option<String>,
    /// webhook: extra headers.
    pub headers: Option<std::collections::BTreeMap<String, String>>,
}

fn default_hook_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `[admin]`: the admin listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Where to listen (keep it off the public interface).
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
    /// File holding the token that overrides need (`Authorization: Bearer ...`); without it,
    /// overrides are refused.
    pub token_file: Option<PathBuf>,
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8053))
}

impl AdminConfig {
    /// Reads the token (trimmed); `None` when no token file is configured.
    pub fn token(&self) -> Result<Option<String>, String> {
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let token = std::fs::read_to_string(path)
            .map_err(|e| format!("[admin] token_file {}: {e}", path.display()))?;
        let token = token.trim().to_owned();
        if token.len() < 16 {
            return Err(format!(
                "[admin] token_file {}: the token is shorter than 16 characters (e.g. `openssl rand -hex 32 > {}`)",
                path.display(),
                path.display()
            ));
        }
        Ok(Some(token))
    }
}

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
    3306
}
fn default_replication_user() -> String {
    "repl".to_owned()
}
fn default_mysql_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_max_promote_lag() -> Duration {
    Duration::from_secs(10)
}
fn default_promote_after_down() -> Duration {
    Duration::from_secs(300)
}
fn default_fencing_retry() -> Duration {
    Duration::from_secs(5)
}
/// `[mirror]`: the live mirror of a directory (the web root) with the peer node.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// The directory mirrored (must exist).
    pub root: PathBuf,
    /// This node's name: one of the `[[node]]`s.
    pub node: String,
    /// The other node's name (default: the other `[[node]]` when there are two).
    pub peer_node: Option<String>,
    /// Where this node listens for the other (`"0.0.0.0:7480"`).
    pub listen: SocketAddr,
    /// Where the other node listens (`"10.2.0.2:7480"`).
    pub peer: SocketAddr,
    /// This node's certificate, from `failoverd keygen` (default `node.crt` beside the config).
    #[serde(default = "default_mirror_certificate")]
    pub certificate: PathBuf,
    /// Its key (default `node.key` beside the config).
    #[serde(default = "default_mirror_key")]
    pub key: PathBuf,
    /// The other node's certificate fingerprint (`"sha256:..."`, what keygen printed there).
    pub peer_fingerprint: String,
    /// Where the mirror's index is kept (default `[zone] state_dir`/mirror).
    pub state_dir: Option<PathBuf>,
    /// Paths not mirrored, gitignore syntax (`["*.log", "/cache/"]`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Most a change waits for the changes after it before a run starts.
    #[serde(default = "default_mirror_coalesce", with = "humantime_serde")]
    pub coalesce: Duration,
    /// Time between two full runs (a rescan of both trees).
    #[serde(default = "default_mirror_rescan", with = "humantime_serde")]
    pub rescan_interval: Duration,
    /// Share (percent) of the files of the last sync one run may delete.
    #[serde(default = "default_mirror_max_delete")]
    pub max_delete: u32,
}

fn default_mirror_certificate() -> PathBuf {
    PathBuf::from("node.crt")
}
fn default_mirror_key() -> PathBuf {
    PathBuf::from("node.key")
}
fn default_mirror_coalesce() -> Duration {
    Duration::from_millis(100)
}
fn default_mirror_rescan() -> Duration {
    Duration::from_secs(3600)
}
fn default_mirror_max_delete() -> u32 {
    50
}
/// Wait a `mirror` check accepts when `max_lag` is not set.
pub const DEFAULT_MIRROR_MAX_LAG: Duration = Duration::from_secs(60);

impl Config {
    /// The `[mirror]` peer's node name: `peer_node`, or the other of two `[[node]]`s.
    pub fn mirror_peer(&self) -> Option<String> {
        let mirror = self.mirror.as_ref()?;
        if let Some(peer) = &mirror.peer_node {
            return Some(peer.clone());
        }
        let others: Vec<&NodeConfig> = self
            .nodes
            .iter()
            .filter(|n| n.name != mirror.node)
            .collect();
        match others.as_slice() {
            [one] => Some(one.name.clone()),
            _ => None,
        }
    }

    fn validate_mirror(&self, v: &mut Validator<'_>) {
        use Seg::{Index, Key};
        for (i, check) in self.checks.iter().enumerate() {
            if check.kind == CheckKind::Mirror && self.mirror.is_none() {
                v.fail(
                    &[Key("check"), Index(i), Key("kind")],
                    "kind = \"mirror\" needs a [mirror] section",
                );
            }
        }
        let Some(mirror) = &self.mirror else { return };
        let at = |key| [Key("mirror"), Key(key)];
        if !self.nodes.iter().any(|n| n.name == mirror.node) {
            v.fail(
                &at("node"),
                format!(
                    "{:?} is not a [[node]] (expected one of: {})",
                    mirror.node,
                    self.nodes
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        let known = self.nodes.iter().any(|n| n.name == mirror.node);
        match self.mirror_peer() {
            None if known => v.fail(
                &at("peer_node"),
                "set peer_node: the other node's name (needed when there are not exactly two [[node]]s)",
            ),
            Some(peer) if peer == mirror.node => {
                v.fail(&at("peer_node"), "the peer must be another node")
            }
            _ => {}
        }
        if let Err(e) = mirror
            .peer_fingerprint
            .parse::<failover_core::peer::Fingerprint>()
        {
            v.fail(&at("peer_fingerprint"), format!("{e} on the peer"));
        }
        if mirror.coalesce.is_zero() || mirror.coalesce > Duration::from_secs(60) {
            v.fail(
                &at("coalesce"),
                "out of range (expected 1ms to 60s, e.g. \"100ms\")",
            );
        }
        if mirror.rescan_interval < Duration::from_secs(60) {
            v.fail(
                &at("rescan_interval"),
                "below a minute: full rescans that often keep both disks busy (expected e.g. \"1h\")",
            );
        }
        if mirror.max_delete == 0 || mirror.max_delete > 100 {
            v.fail(
                &at("max_delete"),
                format!(
                    "{} is out of range (expected a percentage, 1 to 100)",
                    mirror.max_delete
                ),
            );
        }
        if mirror.listen.port() == 0 || mirror.peer.port() == 0 {
            v.fail(&at("listen"), "port 0 (expected e.g. \"0.0.0.0:7480\")");
        }
        if !mirror.root.is_absolute() {
            v.fail(
                &at("root"),
                "must be an absolute path (e.g. \"/var/www/site\")",
            );
        }
    }
}

/// Lag a `mysql-replication` check accepts when `max_lag` is not set.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_secs(30);

impl Config {
    /// A mysql check's user and password file: its own, or `[mysql]`'s.
    pub fn mysql_login(&self, check: &CheckConfig) -> Option<(String, PathBuf)> {
        let section = self.mysql.as_ref();
        let user = check
            .user
            .clone()
            .or_else(|| section.and_then(|m| m.user.clone()))?;
        let file = check
            .password_file
            .clone()
            .or_else(|| section.and_then(|m| m.password_file.clone()))?;
        Some((user, file))
    }

    fn validate_mysql(&self, v: &mut Validator<'_>) {
        use Seg::{Index, Key};
        for (i, check) in self.checks.iter().enumerate() {
            let mysql = matches!(check.kind, CheckKind::Mysql | CheckKind::MysqlReplication);
            let at = |key| [Key("check"), Index(i), Key(key)];
            for (key, set, applies) in [
                ("user", check.user.is_some(), mysql),
                ("password_file", check.password_file.is_some(), mysql),
                (
                    "max_lag",
                    check.max_lag.is_some(),
                    matches!(check.kind, CheckKind::MysqlReplication | CheckKind::Mirror),
                ),
            ] {
                if set && !applies {
                    let owner = if key == "max_lag" {
                        "mysql-replication\" or \"mirror"
                    } else {
                        "mysql\" or \"mysql-replication"
                    };
                    v.fail(&at(key), format!("{key} only applies to kind = \"{owner}\" (this check is kind = \"{}\")", check.kind));
                }
            }
            if mysql && self.mysql_login(check).is_none() {
                v.fail(
                    &[Key("check"), Index(i)],
                    format!(
                        "kind = \"{}\" needs user and password_file (here or in [mysql])",
                        check.kind
                    ),
                );
            }
        }
        let Some(mysql) = &self.mysql else { return };
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
                v.fail(&[Key("mysql"), Key("fencing")], "fencing sets read_only: it needs admin_user and admin_password_file in [mysql]");
            }
            if self.policy.kind != PolicyKind::ActivePassive {
                v.fail(
                    &[Key("mysql"), Key("fencing")],
                    "fencing keeps one writer: it needs [policy] kind = \"active-passive\"",
                );
            }
        }
    }
}

/// `[cluster]`: this daemon (or witness) as one observer among several.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This observer's name, told to peers: its `[[node]]` name on a daemon, e.g. `witness` on
    /// a witness.
    pub observer: String,
    /// Where peers dial in to send their verdicts (`"0.0.0.0:8054"`); none when nobody does.
    pub listen: Option<SocketAddr>,
    /// This observer's certificate, made by `failoverd keygen` (default `node.crt` beside the
    /// config file).
    #[serde(default = "default_certificate")]
    pub certificate: PathBuf,
    /// Its private key (default `node.key` beside the config file).
    #[serde(default = "default_key")]
    pub key: PathBuf,
    /// An observer not heard from for this long is out of the vote.
    #[serde(default = "default_observer_timeout", with = "humantime_serde")]
    pub observer_timeout: Duration,
    /// When this observer is cut off from the majority: `fail-over` (decide alone) or `hold`
    /// (keep every verdict). Default: `fail-over` with two observers, `hold` with more.
    pub on_partition: Option<OnPartition>,
}

fn default_certificate() -> PathBuf {
    PathBuf::from("node.crt")
}
fn default_key() -> PathBuf {
    PathBuf::from("node.key")
}
fn default_observer_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `[[peer]]`: another observer (a daemon or a witness).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    /// Its name, as in its own `[cluster] observer`.
    pub name: String,
    /// Where to send it this observer's verdicts (`"10.0.2.1:8054"`); leave it out for a peer
    /// that only reports here.
    pub address: Option<SocketAddr>,
    /// Its certificate's fingerprint, as `failoverd keygen` prints it (`"sha256:..."`).
    pub fingerprint: Fingerprint,
}

/// `[damping]`: how many changes of one thing are notified before it counts as flapping.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DampingConfig {
    /// The window changes are counted over.
    #[serde(default = "default_damping_window", with = "humantime_serde")]
    pub window: Duration,
    /// Changes notified per window; past that one `flapping` event, then a summary.
    #[serde(default = "default_damping_changes")]
    pub max_changes: u32,
}

fn default_damping_window() -> Duration {
    Duration::from_secs(600)
}
fn default_damping_changes() -> u32 {
    4
}

impl Default for DampingConfig {
    fn default() -> Self {
        Self {
            window: default_damping_window(),
            max_changes: default_damping_changes(),
        }
    }
}

/// A config that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, a wrong type.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// toml's message, with the line and a caret.
        message: String,
    },
    /// Well-formed but wrong.
    #[error("{path}{}: {key}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line of the key, when it can be found.
        line: Option<usize>,
        /// The key (`policy.order`, `check[2].port`).
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
}

/// One step of a key path: a table key or an array index.
#[derive(Clone, Copy, Debug)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// The 1-based line of a key path in TOML source, if it is there: the key's own line, or the
/// deepest part of the path that exists.
fn line_of(source: &str, path: &[Seg<'_>]) -> Option<usize> {
    let document = toml_edit::Document::parse(source).ok()?;
    let mut item = document.as_item();
    let mut span = None;
    for seg in path {
        let next = match seg {
            Seg::Key(key) => {
                let Some((key_repr, next)) =
                    item.as_table_like().and_then(|t| t.get_key_value(key))
                else {
                    break;
                };
                span = key_repr.span().or_else(|| next.span()).or(span);
                next
            }
            Seg::Index(index) => {
                let Some(next) = item.get(*index) else { break };
                span = next.span().or(span);
                next
            }
        };
        item = next;
    }
    span.map(|s| line_number(source, s.start))
}

fn line_number(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

struct Validator<'a> {
    path: &'a Path,
    source: &'a str,
    errors: Vec<ConfigError>,
}

impl Validator<'_> {
    fn fail(&mut self, at: &[Seg<'_>], message: impl Into<String>) {
        let key = at
            .iter()
            .map(|s| match s {
                Seg::Key(k) => format!(".{k}"),
                Seg::Index(i) => format!("[{}]", i + 1),
            })
            .collect::<String>()
            .trim_start_matches('.')
            .to_owned();
        self.errors.push(ConfigError::Invalid {
            path: self.path.to_owned(),
            line: line_of(self.source, at),
            key,
            message: message.into(),
        });
    }
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, Vec<ConfigError>> {
        let source = std::fs::read_to_string(path).map_err(|source| {
            vec![ConfigError::Read {
                path: path.to_owned(),
                source,
            }]
        })?;
        Self::parse(&source, path)
    }

    /// Parses and validates `source`, read from `path` (relative paths in it are relative to
    /// `path`'s directory).
    pub fn parse(source: &str, path: &Path) -> Result<Self, Vec<ConfigError>> {
        let mut config: Config = toml::from_str(source).map_err(|e| {
            vec![ConfigError::Syntax {
                path: path.to_owned(),
                message: e.to_string().trim_end().to_owned(),
            }]
        })?;
        config.path = path.to_owned();
        let base = path.parent().unwrap_or(Path::new("."));
        if config.zone.file.is_relative() {
            config.zone.file = base.join(&config.zone.file);
        }
        if config.zone.state_dir.is_relative() {
            config.zone.state_dir = base.join(&config.zone.state_dir);
        }
        for writer in &mut config.writers {
            for file in [&mut writer.file, &mut writer.key_file]
                .into_iter()
                .flatten()
            {
                if file.is_relative() {
                    *file = base.join(&*file);
                }
            }
        }
        for check in &mut config.checks {
            if let Some(file) = &mut check.password_file {
                if file.is_relative() {
                    *file = base.join(&*file);
                }
            }
        }
        if let Some(mysql) = &mut config.mysql {
            for file in [
                &mut mysql.password_file,
                &mut mysql.admin_password_file,
                &mut mysql.replication_password_file,
            ]
            .into_iter()
            .flatten()
            {
                if file.is_relative() {
                    *file = base.join(&*file);
                }
            }
        }
        if let Some(cluster) = &mut config.cluster {
            for file in [&mut cluster.certificate, &mut cluster.key] {
                if file.is_relative() {
                    *file = base.join(&*file);
                }
            }
        }
        if let Some(mirror) = &mut config.mirror {
            for file in [&mut mirror.certificate, &mut mirror.key] {
                if file.is_relative() {
                    *file = base.join(&*file);
                }
            }
            match &mut mirror.state_dir {
                Some(dir) if dir.is_relative() => *dir = base.join(&*dir),
                Some(_) => {}
                None => mirror.state_dir = Some(config.zone.state_dir.join("mirror")),
            }
        }
        if let Some(admin) = &mut config.admin {
            if let Some(file) = &mut admin.token_file {
                if file.is_relative() {
                    *file = base.join(&*file);
                }
            }
        }
        let mut v = Validator {
            path,
            source,
            errors: Vec::new(),
        };
        config.validate(&mut v);
        config.validate_mysql(&mut v);
        config.validate_mirror(&mut v);
        if v.errors.is_empty() {
            Ok(config)
        } else {
            Err(v.errors)
        }
    }

    fn validate(&self, v: &mut Validator<'_>) {
        use Seg::{Index, Key};
        let zone = &self.zone;
        if zone.name.trim_end_matches('.').is_empty() || zone.name.contains(char::is_whitespace) {
            v.fail(
                &[Key("zone"), Key("name")],
                format!(
                    "{:?} is not a domain name (expected e.g. \"example.com\")",
                    zone.name
                ),
            );
        }
        if zone.listen.is_empty() && self.writers.is_empty() {
            v.fail(&[Key("zone"), Key("listen")], "no address to serve DNS on and no [[writer]]: the answer would go nowhere (expected e.g. listen = [\"0.0.0.0:53\"])");
        }
        if !zone.notify.is_empty() && zone.listen.is_empty() {
            v.fail(
                &[Key("zone"), Key("notify")],
                "notify needs the built-in server: set listen",
            );
        }
        if zone.workers == 0 || zone.workers > 64 {
            v.fail(
                &[Key("zone"), Key("workers")],
                format!("{} is out of range (expected 1 to 64)", zone.workers),
            );
        }
        if zone.records.is_empty() {
            v.fail(
                &[Key("zone"), Key("records")],
                "no managed names (expected e.g. [{ name = \"@\", ttl = 10 }])",
            );
        }
        for (i, record) in zone.records.iter().enumerate() {
            let at = [Key("zone"), Key("records"), Index(i)];
            if record.name.is_empty()
                || record.name.ends_with('.')
                    && record.name != "@"
                    && !record
                        .name
                        .trim_end_matches('.')
                        .ends_with(zone.name.trim_end_matches('.'))
            {
                v.fail(
                    &at,
                    format!(
                        "name {:?} must be relative to the zone (\"@\", \"www\") or end in {}",
                        record.name, zone.name
                    ),
                );
            }
            if zone.records[..i].iter().any(|r| r.name == record.name) {
                v.fail(&at, format!("name {:?} is listed twice", record.name));
            }
        }

        if self.nodes.is_empty() {
            v.fail(
                &[Key("node")],
                "no nodes (expected at least one [[node]] with name and address)",
            );
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let at = [Key("node"), Index(i), Key("name")];
            if node.name.is_empty() {
                v.fail(&at, "empty name");
            }
            if self.nodes[..i].iter().any(|n| n.name == node.name) {
                v.fail(&at, format!("node {:?} is defined twice", node.name));
            }
        }

        let probe = &self.probe;
        self.validate_timing(
            v,
            &[Key("probe")],
            probe.interval,
            probe.timeout,
            probe.fall,
            probe.rise,
        );
        if probe.jitter > probe.interval {
            v.fail(
                &[Key("probe"), Key("jitter")],
                format!(
                    "{} is more than the interval ({})",
                    humantime::format_duration(probe.jitter),
                    humantime::format_duration(probe.interval)
                ),
            );
        }
        if self.checks.is_empty() {
            v.fail(&[Key("check")], "no checks: nothing would ever tell a node is down (add a [[check]] with critical = true)");
        }
        if !self.checks.is_empty() && !self.checks.iter().any(|c| c.critical) {
            v.fail(&[Key("check")], "no check is critical: nodes could never be down (set critical = true on the service the site needs, e.g. http)");
        }
        for (i, check) in self.checks.iter().enumerate() {
            let at = |key| [Key("check"), Index(i), Key(key)];
            if self.checks[..i].iter().any(|c| c.name == check.name) {
                v.fail(
                    &at("name"),
                    format!("check {:?} is defined twice", check.name),
                );
            }
            if check.kind == CheckKind::Tcp && check.port.is_none() {
                v.fail(
                    &at("kind"),
                    format!(
                        "check {:?}: kind \"tcp\" needs a port (e.g. port = 3306)",
                        check.name
                    ),
                );
            }
            if check.port == Some(0) {
                v.fail(&at("port"), "port 0 cannot be probed (expected 1 to 65535)");
            }
            let allowed: &[&str] = match check.kind {
                CheckKind::Http => &[
                    "path",
                    "host",
                    "tls",
                    "expect_status",
                    "body_contains",
                    "danger_accept_invalid_certs",
                ],
                CheckKind::Dns => &[
                    "query",
                    "record_type",
                    "transport",
                    "expect_rcode",
                    "expect_answer",
                ],
                CheckKind::Tcp
                | CheckKind::Ssh
                | CheckKind::Mysql
                | CheckKind::MysqlReplication
                | CheckKind::Mirror => &[],
            };
            for (key, set) in [
                ("path", check.path.is_some()),
                ("host", check.host.is_some()),
                ("tls", check.tls.is_some()),
                ("expect_status", check.expect_status.is_some()),
                ("body_contains", check.body_contains.is_some()),
                (
                    "danger_accept_invalid_certs",
                    check.danger_accept_invalid_certs.is_some(),
                ),
                ("query", check.query.is_some()),
                ("record_type", check.record_type.is_some()),
                ("transport", check.transport.is_some()),
                ("expect_rcode", check.expect_rcode.is_some()),
                ("expect_answer", check.expect_answer.is_some()),
            ] {
                if set && !allowed.contains(&key) {
                    let owner = if [
                        "query",
                        "record_type",
                        "transport",
                        "expect_rcode",
                        "expect_answer",
                    ]
                    .contains(&key)
                    {
                        "dns"
                    } else {
                        "http"
                    };
                    v.fail(&at(key), format!("{key} only applies to kind = \"{owner}\" (this check is kind = \"{}\")", check.kind));
                }
            }
            if let Some(path) = &check.path {
                if !path.starts_with('/') {
                    v.fail(&at("path"), format!("{path:?} must start with \"/\""));
                }
            }
            for status in check.expect_status.iter().flatten() {
                if !(100..=599).contains(status) {
                    v.fail(
                        &at("expect_status"),
                        format!("{status} is not an HTTP status code (expected 100 to 599)"),
                    );
                }
            }
            let (interval, timeout, fall, rise) = self.check_timing(check);
            self.validate_timing(v, &[Key("check"), Index(i)], interval, timeout, fall, rise);
        }

        let policy = &self.policy;
        for (i, name) in policy.order.iter().enumerate() {
            if !self.nodes.iter().any(|n| &n.name == name) {
                let known = self
                    .nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                v.fail(
                    &[Key("policy"), Key("order"), Index(i)],
                    format!("unknown node {name:?} (nodes: {known})"),
                );
            }
            if policy.order[..i].contains(name) {
                v.fail(
                    &[Key("policy"), Key("order"), Index(i)],
                    format!("node {name:?} is listed twice"),
                );
            }
        }
        if policy.kind == PolicyKind::AllHealthy && !policy.order.is_empty() {
            v.fail(
                &[Key("policy"), Key("order")],
                "order only applies to kind = \"active-passive\"",
            );
        }
        for (i, notify) in self.notifiers.iter().enumerate() {
            let at = |key| [Key("notify"), Index(i), Key(key)];
            let kind = notify.kind;
            let allowed: &[&str] = match kind {
                NotifyKind::Command => &["command"],
                NotifyKind::Email => &[
                    "host",
                    "port",
                    "security",
                    "username",
                    "password_file",
                    "from",
                    "to",
                    "subject",
                    "batch_window",
                ],
                NotifyKind::Webhook => &["url", "headers"],
            };
            for (key, set) in [
                ("command", notify.command.is_some()),
                ("host", notify.host.is_some()),
                ("port", notify.port.is_some()),
                ("security", notify.security.is_some()),
                ("username", notify.username.is_some()),
                ("password_file", notify.password_file.is_some()),
                ("from", notify.from.is_some()),
                ("to", notify.to.is_some()),
                ("subject", notify.subject.is_some()),
                ("batch_window", notify.batch_window.is_some()),
                ("url", notify.url.is_some()),
                ("headers", notify.headers.is_some()),
            ] {
                if set && !allowed.contains(&key) {
                    v.fail(
                        &at(key),
                        format!(
                            "{key} does not apply to kind = \"{kind}\" (it takes: {})",
                            allowed.join(", ")
                        ),
                    );
                }
            }
            let required: &[(&str, bool)] = match kind {
                NotifyKind::Command => &[(
                    "command",
                    notify
                        .command
                        .as_ref()
                        .and_then(|c| c.first())
                        .is_some_and(|c| !c.is_empty()),
                )],
                NotifyKind::Email => &[
                    ("host", notify.host.is_some()),
                    ("from", notify.from.is_some()),
                    ("to", notify.to.as_ref().is_some_and(|t| !t.is_empty())),
                ],
                NotifyKind::Webhook => &[("url", notify.url.is_some())],
            };
            for (key, present) in required {
                if !present {
                    let example = match *key {
                        "command" => "[\"/usr/local/bin/page-admin\", \"--urgent\"]",
                        "host" => "\"10.6.6.6\"",
                        "from" => "\"failoverd@example.com\"",
                        "to" => "[\"admin@example.com\"]",
                        _ => "\"https://hooks.example.com/failover\"",
                    };
                    v.fail(
                        &[Key("notify"), Index(i)],
                        format!("kind = \"{kind}\" needs {key} (e.g. {key} = {example})"),
                    );
                }
            }
            if notify.username.is_some() != notify.password_file.is_some() {
                v.fail(&at("username"), "username and password_file go together");
            }
            if let Some(events) = &notify.events {
                for (j, name) in events.iter().enumerate() {
                    if !failover_core::EVENT_NAMES.contains(&name.as_str()) {
                        v.fail(
                            &[Key("notify"), Index(i), Key("events"), Index(j)],
                            format!(
                                "unknown event {name:?} (expected one of: {})",
                                failover_core::EVENT_NAMES.join(", ")
                            ),
                        );
                    }
                }
            }
            if let Some(subject) = &notify.subject {
                if let Err(e) = failover_core::SubjectTemplate::new(subject) {
                    v.fail(&at("subject"), e.to_string());
                }
            }
        }
        for (i, writer) in self.writers.iter().enumerate() {
            let at = |key| [Key("writer"), Index(i), Key(key)];
            let kind = writer.kind;
            let allowed: &[&str] = match kind {
                WriterKind::ZoneFile => &["file", "reload", "verify"],
                WriterKind::DynamicUpdate => &["primary", "key_file", "key_name", "key"],
            };
            for (key, set) in [
                ("file", writer.file.is_some()),
                ("reload", writer.reload.is_some()),
                ("verify", writer.verify.is_some()),
                ("primary", writer.primary.is_some()),
                ("key_file", writer.key_file.is_some()),
                ("key_name", writer.key_name.is_some()),
                ("key", writer.key.is_some()),
            ] {
                if set && !allowed.contains(&key) {
                    v.fail(
                        &at(key),
                        format!(
                            "{key} does not apply to kind = \"{kind}\" (it takes: {})",
                            allowed.join(", ")
                        ),
                    );
                }
            }
            match kind {
                WriterKind::ZoneFile if writer.file.is_none() => v.fail(&[Key("writer"), Index(i)], "kind = \"zone-file\" needs file (e.g. file = \"/etc/bind/db.example.com\")"),
                WriterKind::DynamicUpdate if writer.primary.is_none() => v.fail(&[Key("writer"), Index(i)], "kind = \"dynamic-update\" needs primary (e.g. primary = \"192.0.2.53:53\")"),
                WriterKind::DynamicUpdate if writer.key.is_some() == writer.key_file.is_some() => v.fail(&[Key("writer"), Index(i)], "kind = \"dynamic-update\" needs exactly one of key_file (a tsig-keygen file) or key = { name, algorithm, secret }"),
                _ => {}
            }
            if writer
                .reload
                .as_ref()
                .is_some_and(|r| r.first().is_none_or(|c| c.is_empty()))
            {
                v.fail(
                    &at("reload"),
                    "empty command (expected e.g. [\"rndc\", \"reload\", \"example.com\"])",
                );
            }
        }
        self.validate_cluster(v);
        if self.damping.max_changes == 0 {
            v.fail(
                &[Key("damping"), Key("max_changes")],
                "0 would silence every change (expected at least 1)",
            );
        }
    }

    fn validate_cluster(&self, v: &mut Validator<'_>) {
        use Seg::{Index, Key};
        let Some(cluster) = &self.cluster else {
            if !self.peers.is_empty() {
                v.fail(&[Key("peer")], "[[peer]] needs a [cluster] section (observer = this node's name; the key made by failoverd keygen)");
            }
            return;
        };
        if cluster.observer.is_empty() {
            v.fail(
                &[Key("cluster"), Key("observer")],
                "empty name (expected this node's [[node]] name, or e.g. \"witness\")",
            );
        }
        if self.peers.is_empty() {
            v.fail(&[Key("cluster")], "no [[peer]]: nobody to share observations with (add the other daemon, and a witness, each with name, address and fingerprint)");
        }
        if cluster.observer_timeout < Duration::from_millis(500) {
            v.fail(
                &[Key("cluster"), Key("observer_timeout")],
                format!(
                    "{} is too short (expected at least 500ms; heartbeats go every quarter of it)",
                    humantime::format_duration(cluster.observer_timeout)
                ),
            );
        }
        for (i, peer) in self.peers.iter().enumerate() {
            let at = [Key("peer"), Index(i), Key("name")];
            if peer.name.is_empty() {
                v.fail(&at, "empty name");
            }
            if peer.name == cluster.observer {
                v.fail(&at, format!("{:?} is this observer's own name ([cluster] observer); list only the others", peer.name));
            }
            if self.peers[..i].iter().any(|p| p.name == peer.name) {
                v.fail(&at, format!("peer {:?} is listed twice", peer.name));
            }
            if self.peers[..i]
                .iter()
                .any(|p| p.fingerprint == peer.fingerprint)
            {
                v.fail(&[Key("peer"), Index(i), Key("fingerprint")], format!("peer {:?} has the same fingerprint as another peer: each observer needs its own key (failoverd keygen on each)", peer.name));
            }
        }
    }

    /// The rule an observer cut off from the majority follows.
    pub fn on_partition(&self) -> OnPartition {
        match &self.cluster {
            Some(ClusterConfig {
                on_partition: Some(rule),
                ..
            }) => *rule,
            _ if self.peers.len() >= 2 => OnPartition::Hold,
            _ => OnPartition::FailOver,
        }
    }

    fn validate_timing(
        &self,
        v: &mut Validator<'_>,
        at: &[Seg<'_>],
        interval: Duration,
        timeout: Duration,
        fall: u32,
        rise: u32,
    ) {
        let with = |key| {
            let mut path = at.to_vec();
            path.push(Seg::Key(key));
            path
        };
        if interval < Duration::from_millis(100) {
            v.fail(
                &with("interval"),
                format!(
                    "{} is too short (expected at least 100ms)",
                    humantime::format_duration(interval)
                ),
            );
        }
        if interval > Duration::from_secs(86_400) {
            v.fail(
                &with("interval"),
                format!(
                    "{} is too long (expected at most 1 day)",
                    humantime::format_duration(interval)
                ),
            );
        }
        for (key, count) in [("fall", fall), ("rise", rise)] {
            if count > 1000 {
                v.fail(
                    &with(key),
                    format!("{count} probes in a row is too many (expected e.g. 3)"),
                );
            }
        }
        if timeout.is_zero() || timeout > interval {
            v.fail(
                &with("timeout"),
                format!(
                    "{} must be more than 0 and at most the interval ({})",
                    humantime::format_duration(timeout),
                    humantime::format_duration(interval)
                ),
            );
        }
        if fall == 0 {
            v.fail(&with("fall"), "0 (expected at least 1 failure in a row)");
        }
        if rise == 0 {
            v.fail(&with("rise"), "0 (expected at least 1 success in a row)");
        }
    }

    /// A check's interval, timeout, fall and rise with `[probe]`'s defaults applied.
    pub fn check_timing(&self, check: &CheckConfig) -> (Duration, Duration, u32, u32) {
        (
            check.interval.unwrap_or(self.probe.interval),
            check.timeout.unwrap_or(self.probe.timeout),
            check.fall.unwrap_or(self.probe.fall),
            check.rise.unwrap_or(self.probe.rise),
        )
    }

    /// The policy's node order (config order when `order` is not given).
    pub fn order(&self) -> Vec<NodeName> {
        if self.policy.order.is_empty() {
            self.nodes.iter().map(|n| NodeName::new(&n.name)).collect()
        } else {
            self.policy.order.iter().map(NodeName::new).collect()
        }
    }

    /// A check's port with the kind's default.
    pub fn port(check: &CheckConfig) -> u16 {
        check.port.unwrap_or(match check.kind {
            CheckKind::Http if check.tls == Some(true) => 443,
            CheckKind::Http => 80,
            CheckKind::Ssh => 22,
            CheckKind::Dns => 53,
            CheckKind::Mysql | CheckKind::MysqlReplication => 3306,
            CheckKind::Tcp | CheckKind::Mirror => 0,
        })
    }

    /// Warnings: legal but probably not what the user wants.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for check in &self.checks {
            if check.danger_accept_invalid_certs == Some(true) {
                warnings.push(format!("check {:?} accepts any TLS certificate: anyone on the path can answer for the node", check.name));
            }
            let (interval, timeout, fall, _) = self.check_timing(check);
            let detection = interval.saturating_mul(fall).saturating_add(timeout);
            if check.critical && detection > Duration::from_secs(120) {
                warnings.push(format!(
                    "check {:?} needs {} to detect a failure (interval × fall + timeout)",
                    check.name,
                    humantime::format_duration(detection)
                ));
            }
        }
        if let Some(admin) = &self.admin {
            if !admin.listen.ip().is_loopback() {
                warnings.push(format!("[admin] listen {} is not a loopback address: status is readable by anyone who can reach it", admin.listen));
            }
            if admin.token_file.is_none() {
                warnings.push(
                    "[admin] has no token_file: overrides (drain, force) are refused".to_owned(),
                );
            }
        }
        if self.nodes.len() < 2 {
            warnings.push("one node only: there is nothing to fail over to".to_owned());
        }
        if self.nodes.len() == 2 && self.peers.len() < 2 {
            warnings.push(match &self.cluster {
                None => "two nodes, each deciding alone: when the link between them breaks, each sees the other down and serves itself (split brain); add [cluster] and [[peer]]s, with a witness in a third place".to_owned(),
                Some(_) => format!("two nodes and no witness: when the link between them breaks, on_partition = {} decides ({}); a witness in a third place breaks the tie", self.on_partition(), match self.on_partition() {
                    OnPartition::FailOver => "each serves itself",
                    OnPartition::Hold => "nothing changes, even if a node really died",
                }),
            });
        }
        if let Some(cluster) = &self.cluster {
            if cluster.listen.is_none() && !self.peers.is_empty() {
                warnings.push("[cluster] has no listen: peers cannot send their verdicts here, and will be out of this observer's vote".to_owned());
            }
        }
        for record in &self.zone.records {
            if record.ttl > 60 {
                warnings.push(format!("managed name {:?} has ttl {} s: resolvers keep a dead answer that long (10 s is usual)", record.name, record.ttl));
            }
        }
        warnings
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    const GOOD: &str = r#"
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["127.0.0.1:5353"]
state_dir = "state"
records = [{ name = "@", ttl = 10 }, { name = "www", ttl = 10 }]

[probe]
interval = "2s"
timeout = "1s"
fall = 3
rise = 1

[[node]]
name = "master"
address = "192.0.2.1"

[[node]]
name = "slave"
address = "198.51.100.2"

[[check]]
name = "http"
kind = "http"
port = 80
critical = true

[[check]]
name = "ssh"
kind = "ssh"

[policy]
kind = "active-passive"
order = ["master", "slave"]
failback = "auto"
failback_after = "30s"
all_down = "keep-last"
"#;

    fn parse(source: &str) -> Result<Config, Vec<ConfigError>> {
        Config::parse(source, Path::new("/etc/failoverd/failoverd.toml"))
    }

    fn errors_of(source: &str) -> Vec<String> {
        parse(source)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_documented_example_parses() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.zone.file, Path::new("/etc/failoverd/db.test.ru"));
        assert_eq!(config.zone.state_dir, Path::new("/etc/failoverd/state"));
        assert_eq!(config.policy.failback_after, Duration::from_secs(30));
        assert_eq!(Config::port(&config.checks[1]), 22);
        assert_eq!(
            config.order(),
            vec![NodeName::new("master"), NodeName::new("slave")]
        );
    }

    #[test]
    fn an_unknown_kind_names_the_line_and_the_choices() {
        let errors = errors_of(&GOOD.replace("kind = \"http\"", "kind = \"htpp\""));
        assert_eq!(errors.len(), 1);
        let e = &errors[0];
        assert!(
            e.starts_with("/etc/failoverd/failoverd.toml: TOML parse error at line 25"),
            "{e}"
        );
        assert!(
            e.contains("unknown variant `htpp`, expected one of `tcp`, `http`, `ssh`"),
            "{e}"
        );
    }

    const MIRROR: &str = r#"
[mirror]
root = "/var/www/site"
node = "master"
listen = "0.0.0.0:7480"
peer = "198.51.100.2:7480"
peer_fingerprint = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
exclude = ["*.log"]
"#;

    #[test]
    fn a_mirror_section_gets_its_defaults_and_its_errors_name_the_key() {
        let config = parse(&format!("{GOOD}{MIRROR}")).unwrap();
        let mirror = config.mirror.as_ref().unwrap();
        assert_eq!(config.mirror_peer().as_deref(), Some("slave"));
        assert_eq!(mirror.certificate, Path::new("/etc/failoverd/node.crt"));
        assert_eq!(
            mirror.state_dir.as_deref(),
            Some(Path::new("/etc/failoverd/state/mirror"))
        );
        assert_eq!(mirror.coalesce, Duration::from_millis(100));
        assert_eq!(mirror.rescan_interval, Duration::from_secs(3600));
        assert_eq!(mirror.max_delete, 50);

        let bad = format!("{GOOD}{MIRROR}")
            .replace("node = \"master\"\nlisten", "node = \"mastr\"\nlisten")
            .replace("sha256:00", "sha256:zz")
            .replace("exclude", "max_delete = 0\nexclude");
        let errors = errors_of(&bad);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("line 42: mirror.node: \"mastr\" is not a [[node]] (expected one of: master, slave)"), "{errors:?}");
        assert!(errors[1].contains("mirror.peer_fingerprint:"), "{errors:?}");
        assert!(
            errors[2].contains("mirror.max_delete: 0 is out of range"),
            "{errors:?}"
        );

        let check = GOOD.replace("kind = \"ssh\"", "kind = \"mirror\"");
        let errors = errors_of(&check);
        assert!(
            errors[0].contains("check[2].kind: kind = \"mirror\" needs a [mirror] section"),
            "{errors:?}"
        );
    }

    #[test]
    fn an_unknown_key_is_an_error() {
        let errors = errors_of(&GOOD.replace("fall = 3", "fall = 3\nfails = 4"));
        assert!(
            errors[0].contains("line 13") && errors[0].contains("unknown field `fails`"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_bad_duration_says_what_was_expected() {
        let errors = errors_of(&GOOD.replace("interval = \"2s\"", "interval = \"2 parsecs\""));
        assert!(
            errors[0].contains("line 10") && errors[0].contains("expected a duration"),
            "{errors:?}"
        );
    }

    #[test]
    fn notifiers_are_checked_per_kind() {
        let with = |notify: &str| format!("{GOOD}\n{notify}");
        assert!(parse(&with("[[notify]]\nkind = \"email\"\nhost = \"192.0.2.25\"\nfrom = \"f@test.ru\"\nto = [\"a@test.ru\"]\nevents = [\"failover\"]\n")).is_ok());
        let errors = errors_of(&with("[[notify]]\nkind = \"email\"\nhost = \"192.0.2.25\"\nurl = \"http://x\"\nevents = [\"failovr\"]\n"));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("notify[1].url: url does not apply to kind = \"email\"")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("kind = \"email\" needs from")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("notify[1].events[1]: unknown event \"failovr\"")),
            "{errors:?}"
        );
        let errors = errors_of(&with(
            "[[notify]]\nkind = \"webhook\"\nurl = \"http://x\"\nsubject = \"{x}\"\n",
        ));
        assert!(
            errors.iter().any(|e| e.contains("subject does not apply")),
            "{errors:?}"
        );
    }

    #[test]
    fn semantic_errors_name_line_and_key() {
        let errors = errors_of(&GOOD.replace(
            "order = [\"master\", \"slave\"]",
            "order = [\"master\", \"slvae\"]",
        ));
        assert_eq!(
            errors,
            ["/etc/failoverd/failoverd.toml line 35: policy.order[2]: unknown node \"slvae\" (nodes: master, slave)"]
        );
        let errors = errors_of(&GOOD.replace("kind = \"ssh\"", "kind = \"ssh\"\npath = \"/\""));
        assert_eq!(
            errors,
            ["/etc/failoverd/failoverd.toml line 32: check[2].path: path only applies to kind = \"http\" (this check is kind = \"ssh\")"]
        );
        let errors = errors_of(&GOOD.replace("kind = \"ssh\"", "kind = \"tcp\""));
        assert!(
            errors[0].contains("line 31: check[2].kind: check \"ssh\": kind \"tcp\" needs a port"),
            "{errors:?}"
        );
        let errors = errors_of(&GOOD.replace("timeout = \"1s\"", "timeout = \"5s\""));
        assert!(
            errors[0].contains(
                "line 11: probe.timeout: 5s must be more than 0 and at most the interval (2s)"
            ),
            "{errors:?}"
        );
        let errors = errors_of(&GOOD.replace("critical = true", "critical = false"));
        assert!(errors[0].contains("no check is critical"), "{errors:?}");
    }
    const FP1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const FP2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn with_cluster(cluster: &str, peers: &[(&str, &str)]) -> String {
        let mut source = format!("{GOOD}\n[cluster]\n{cluster}\n");
        for (name, fingerprint) in peers {
            source.push_str(&format!(
                "\n[[peer]]\nname = \"{name}\"\naddress = \"198.51.100.2:8054\"\nfingerprint = \"{fingerprint}\"\n"
            ));
        }
        source
    }

    #[test]
    fn cluster_and_peers_parse_with_their_defaults() {
        let config = parse(&with_cluster(
            "observer = \"master\"\nlisten = \"0.0.0.0:8054\"",
            &[("slave", FP1)],
        ))
        .unwrap();
        let cluster = config.cluster.as_ref().unwrap();
        assert_eq!(cluster.certificate, Path::new("/etc/failoverd/node.crt"));
        assert_eq!(cluster.key, Path::new("/etc/failoverd/node.key"));
        assert_eq!(cluster.observer_timeout, Duration::from_secs(10));
        assert_eq!(config.on_partition(), OnPartition::FailOver);
        assert_eq!(config.peers[0].fingerprint.to_string(), FP1);
        // A witness makes three observers: a node cut off from two of them holds by default.
        let config = parse(&with_cluster(
            "observer = \"master\"\nlisten = \"0.0.0.0:8054\"",
            &[("slave", FP1), ("witness", FP2)],
        ))
        .unwrap();
        assert_eq!(config.on_partition(), OnPartition::Hold);
        let config = parse(&with_cluster(
            "observer = \"master\"\non_partition = \"hold\"",
            &[("slave", FP1)],
        ))
        .unwrap();
        assert_eq!(config.on_partition(), OnPartition::Hold);
    }

    #[test]
    fn cluster_mistakes_name_the_key_and_the_fix() {
        let errors = errors_of(&with_cluster(
            "observer = \"master\"\non_partition = \"failover\"",
            &[("slave", FP1)],
        ));
        assert!(
            errors[0].contains("unknown variant `failover`, expected `fail-over` or `hold`"),
            "{errors:?}"
        );
        let errors = errors_of(&with_cluster(
            "observer = \"master\"",
            &[("slave", "sha256:abc")],
        ));
        assert!(
            errors[0].contains(
                "is not sha256:<64 hex digits> (print yours with failoverd keygen --show)"
            ),
            "{errors:?}"
        );
        let errors = errors_of(&with_cluster(
            "observer = \"master\"",
            &[("master", FP1), ("slave", FP1)],
        ));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("peer[1].name: \"master\" is this observer's own name")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("peer[2].fingerprint: peer \"slave\" has the same fingerprint")),
            "{errors:?}"
        );
        let errors = errors_of(&with_cluster("observer = \"master\"", &[]));
        assert!(errors[0].contains("cluster: no [[peer]]"), "{errors:?}");
        let errors = errors_of(&format!(
            "{GOOD}\n[[peer]]\nname = \"slave\"\nfingerprint = \"{FP1}\"\n"
        ));
        assert!(
            errors[0].contains("peer: [[peer]] needs a [cluster] section"),
            "{errors:?}"
        );
    }

    #[test]
    fn two_nodes_without_a_witness_are_warned_about() {
        let alone = parse(GOOD).unwrap().warnings();
        assert!(
            alone
                .iter()
                .any(|w| w.contains("each deciding alone") && w.contains("split brain")),
            "{alone:?}"
        );
        let pair = parse(&with_cluster(
            "observer = \"master\"\nlisten = \"0.0.0.0:8054\"",
            &[("slave", FP1)],
        ))
        .unwrap()
        .warnings();
        assert!(
            pair.iter().any(|w| w.contains("two nodes and no witness")
                && w.contains("on_partition = fail-over decides (each serves itself)")),
            "{pair:?}"
        );
        let with_witness = parse(&with_cluster(
            "observer = \"master\"\nlisten = \"0.0.0.0:8054\"",
            &[("slave", FP1), ("witness", FP2)],
        ))
        .unwrap()
        .warnings();
        assert!(
            !with_witness.iter().any(|w| w.contains("witness")),
            "{with_witness:?}"
        );
    }
}
