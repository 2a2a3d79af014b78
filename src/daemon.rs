//! Composition: from a validated [`Config`] to a running daemon (supervisor + DNS server).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use failover_core::probe::{HttpCheck, HttpOptions, SshCheck, TcpCheck};
use failover_core::{
    ActivePassive, AllHealthy, Arbiter, CheckName, CheckSpec, ClusterSpec, CommandNotifier,
    Damping, EmailNotifier, EmailOptions, EmailSecurity, Failback, Filtered, HealthCheck,
    LogNotifier, ManagedName, NodeName, NodeSpec, Notifier, ObserverLinkConfig, ObserverNetwork,
    ObserverPeer, Policy, ProbeSchedule, QuorumSpec, StatusReport, SubjectTemplate, Supervisor,
    SupervisorHandle, WebhookNotifier, WebhookOptions, ZoneWriter,
};
use failover_dns::{
    DnsCheck, DnsCheckOptions, DnsServer, DynamicUpdateOptions, DynamicUpdateWriter,
    SecondariesConfig, ServedZone, ServerConfig, TransferAcl, TsigKey, Zone, ZoneFileOptions,
    ZoneFileWriter,
};
use tokio::sync::watch;

use crate::admin::{AdminServer, AdminState};

use crate::config::{
    CheckKind, Config, FailbackMode, NotifyConfig, NotifyKind, PolicyKind, SecurityConfig,
    TransportConfig, WriterKind,
};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The cluster described by the config is not workable.
    #[error("{path}: {source}")]
    Cluster {
        /// The config file.
        path: std::path::PathBuf,
        /// Why.
        source: failover_core::ArbiterError,
    },
    /// A check cannot be built.
    #[error("{path}: check {check:?}: {message}")]
    Check {
        /// The config file.
        path: std::path::PathBuf,
        /// The check.
        check: String,
        /// Why.
        message: String,
    },
    /// The admin listener cannot start.
    #[error("{path}: [admin]: {message}")]
    Admin {
        /// The config file.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
    /// A zone writer cannot be built.
    #[error("{path}: writer[{index}]: {message}")]
    Writer {
        /// The config file.
        path: std::path::PathBuf,
        /// Which `[[writer]]`, from 1.
        index: usize,
        /// Why.
        message: String,
    },
    /// A notifier cannot be built.
    #[error("{path}: notify[{index}]: {message}")]
    Notify {
        /// The config file.
        path: std::path::PathBuf,
        /// Which `[[notify]]`, from 1.
        index: usize,
        /// Why.
        message: String,
    },
    /// `[mysql]` cannot be used (a password file, fencing without the `mysql` feature).
    #[error("{path}: [mysql]: {message}")]
    Mysql {
        /// The config file.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
    /// The observation links cannot start (key files, listen address).
    #[error("{path}: [cluster]: {message}")]
    Observers {
        /// The config file.
        path: std::path::PathBuf,
        /// Why, and the fix.
        message: String,
    },
    /// `[mirror]` cannot be used or started.
    #[error("{path}: [mirror]: {message}")]
    Mirror {
        /// The config file.
        path: std::path::PathBuf,
        /// Why, and the fix.
        message: String,
    },
    /// The zone cannot be loaded or served.
    #[error(transparent)]
    Dns(#[from] failover_dns::DnsError),
    /// The zone file is for another zone than `[zone] name`.
    #[error("zone file {file} is for {found}, but [zone] name is {expected:?}: point `file` at the zone's own file or fix `name`")]
    WrongZone {
        /// The zone file.
        file: std::path::PathBuf,
        /// Its origin.
        found: String,
        /// The configured name.
        expected: String,
    },
}

/// The policy the config asks for.
pub fn policy(config: &Config) -> Box<dyn Policy> {
    match config.policy.kind {
        PolicyKind::ActivePassive => Box::new(ActivePassive::new(
            config.order(),
            match config.policy.failback {
                FailbackMode::Auto => Failback::Auto {
                    after: config.policy.failback_after,
                },
                FailbackMode::Manual => Failback::Manual,
            },
        )),
        PolicyKind::AllHealthy => Box::new(AllHealthy),
    }
}

/// The arbiter's view of the config.
pub fn cluster_spec(config: &Config) -> ClusterSpec {
    ClusterSpec {
        nodes: config
            .nodes
            .iter()
            .map(|n| NodeSpec {
                name: NodeName::new(&n.name),
                publish: if n.publish.is_empty() {
                    vec![n.address]
                } else {
                    n.publish.clone()
                },
            })
            .collect(),
        checks: config
            .checks
            .iter()
            .map(|c| {
                let (_, _, fall, rise) = config.check_timing(c);
                CheckSpec {
                    name: CheckName::new(&c.name),
                    critical: c.critical,
                    fall,
                    rise,
                }
            })
            .collect(),
        managed: config
            .zone
            .records
            .iter()
            .map(|r| ManagedName::new(&r.name, r.ttl))
            .collect(),
        all_down: config.policy.all_down,
        damping: Damping {
            window: config.damping.window,
            max_changes: config.damping.max_changes,
        },
    }
}

/// A check built from the config: its name, the probe, and its schedule.
pub type BuiltCheck = (CheckName, Arc<dyn HealthCheck>, ProbeSchedule);

/// The checks the config asks for, each with its schedule (`mirror` checks see no mirror:
/// for `failoverd check`).
pub fn checks(config: &Config) -> Result<Vec<BuiltCheck>, DaemonError> {
    checks_with(config, None)
}

/// The checks the config asks for, `mirror` checks reading `mirror`.
pub fn checks_with(
    config: &Config,
    mirror: Option<Arc<dyn failover_core::FileMirror>>,
) -> Result<Vec<BuiltCheck>, DaemonError> {
    config
        .checks
        .iter()
        .map(|c| {
            let port = Config::port(c);
            let check: Arc<dyn HealthCheck> = match c.kind {
                CheckKind::Tcp => Arc::new(TcpCheck::new(port)),
                CheckKind::Ssh => Arc::new(SshCheck::new(port)),
                CheckKind::Dns => {
                    let mut options = DnsCheckOptions::new(
                        c.query.clone().unwrap_or_else(|| config.zone.name.clone()),
                    )
                    .with_port(port)
                    .with_record_type(c.record_type.clone().unwrap_or_else(|| "SOA".to_owned()))
                    .with_expect_rcode(
                        c.expect_rcode
                            .clone()
                            .unwrap_or_else(|| "NOERROR".to_owned()),
                    )
                    .with_transport(match c.transport {
                        Some(TransportConfig::Tcp) => failover_dns::Transport::Tcp,
                        _ => failover_dns::Transport::Udp,
                    });
                    if let Some(expected) = &c.expect_answer {
                        options = options.with_expect_answer(expected.clone());
                    }
                    Arc::new(DnsCheck::new(options).map_err(|e| DaemonError::Check {
                        path: config.path.clone(),
                        check: c.name.clone(),
                        message: e.to_string(),
                    })?)
                }
                CheckKind::Mirror => {
                    crate::mirror::check(config, c, mirror.clone()).map_err(|message| {
                        DaemonError::Check {
                            path: config.path.clone(),
                            check: c.name.clone(),
                            message,
                        }
                    })?
                }
                CheckKind::Mysql | CheckKind::MysqlReplication => {
                    crate::mysql_cli::check(config, c, port).map_err(|message| {
                        DaemonError::Check {
                            path: config.path.clone(),
                            check: c.name.clone(),
                            message,
                        }
                    })?
                }
                CheckKind::Http => {
                    let defaults = HttpOptions::new(port);
                    let options = HttpOptions {
                        port,
                        tls: c.tls.unwrap_or(false),
                        path: c.path.clone().unwrap_or(defaults.path),
                        host: c.host.clone(),
                        expect_status: c.expect_status.clone().unwrap_or_default(),
                        body_contains: c.body_contains.clone(),
                        danger_accept_invalid_certs: c.danger_accept_invalid_certs.unwrap_or(false),
                    };
                    Arc::new(HttpCheck::new(options).map_err(|e| DaemonError::Check {
                        path: config.path.clone(),
                        check: c.name.clone(),
                        message: e.to_string(),
                    })?)
                }
            };
            let (interval, timeout, _, _) = config.check_timing(c);
            let schedule = ProbeSchedule {
                interval,
                timeout,
                jitter: config.probe.jitter,
            };
            Ok((CheckName::new(&c.name), check, schedule))
        })
        .collect()
}

/// The notifiers: the log, and every `[[notify]]`.
pub fn notifiers(config: &Config) -> Result<Vec<Arc<dyn Notifier>>, DaemonError> {
    let mut notifiers: Vec<Arc<dyn Notifier>> = vec![Arc::new(LogNotifier)];
    for (index, notify) in config.notifiers.iter().enumerate() {
        let error = |message: String| DaemonError::Notify {
            path: config.path.clone(),
            index: index + 1,
            message,
        };
        let built: Arc<dyn Notifier> = match notify.kind {
            NotifyKind::Command => {
                let command = notify.command.clone().unwrap_or_default();
                let (program, args) = command
                    .split_first()
                    .ok_or_else(|| error("empty command".to_owned()))?;
                filtered(
                    CommandNotifier::new(program, args.to_vec(), notify.timeout),
                    notify,
                )
                .map_err(|e| error(e.to_string()))?
            }
            NotifyKind::Email => {
                let security = match notify.security {
                    None | Some(SecurityConfig::None) => EmailSecurity::None,
                    Some(SecurityConfig::Starttls) => EmailSecurity::StartTls,
                    Some(SecurityConfig::Tls) => EmailSecurity::Tls,
                };
                let port = notify.port.unwrap_or(match security {
                    EmailSecurity::StartTls => 587,
                    EmailSecurity::Tls => 465,
                    _ => 25,
                });
                let credentials = match (&notify.username, &notify.password_file) {
                    (Some(user), Some(file)) => {
                        let password = std::fs::read_to_string(file)
                            .map_err(|e| error(format!("password_file {}: {e}", file.display())))?;
                        Some((user.clone(), password.trim_end().to_owned()))
                    }
                    _ => None,
                };
                let subject = match &notify.subject {
                    Some(template) => {
                        SubjectTemplate::new(template).map_err(|e| error(e.to_string()))?
                    }
                    None => SubjectTemplate::default(),
                };
                let email = EmailNotifier::new(EmailOptions {
                    host: notify.host.clone().unwrap_or_default(),
                    port,
                    security,
                    credentials,
                    from: notify.from.clone().unwrap_or_default(),
                    to: notify.to.clone().unwrap_or_default(),
                    subject,
                    timeout: notify.timeout,
                    batch_window: notify.batch_window.unwrap_or(Duration::from_secs(2)),
                })
                .map_err(|e| error(e.to_string()))?;
                filtered(email, notify).map_err(|e| error(e.to_string()))?
            }
            NotifyKind::Webhook => {
                let webhook = WebhookNotifier::new(WebhookOptions {
                    url: notify.url.clone().unwrap_or_default(),
                    headers: notify
                        .headers
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    timeout: notify.timeout,
                })
                .map_err(|e| error(e.to_string()))?;
                filtered(webhook, notify).map_err(|e| error(e.to_string()))?
            }
        };
        notifiers.push(built);
    }
    Ok(notifiers)
}

/// Wraps `notifier` in the `events` filter when there is one.
fn filtered<N: Notifier>(
    notifier: N,
    config: &NotifyConfig,
) -> Result<Arc<dyn Notifier>, failover_core::NotifyError> {
    Ok(match &config.events {
        Some(events) => Arc::new(Filtered::new(notifier, events)?),
        None => Arc::new(notifier),
    })
}

/// The zone writers of `[[writer]]` (the built-in served zone is always one more).
pub fn writers(config: &Config) -> Result<Vec<Arc<dyn ZoneWriter>>, DaemonError> {
    let managed = cluster_spec(config).managed;
    config
        .writers
        .iter()
        .enumerate()
        .map(|(index, w)| {
            let error = |e: failover_dns::DnsError| DaemonError::Writer {
                path: config.path.clone(),
                index: index + 1,
                message: e.to_string(),
            };
            let writer: Arc<dyn ZoneWriter> = match w.kind {
                WriterKind::ZoneFile => {
                    let mut options = ZoneFileOptions::new(
                        &config.zone.name,
                        w.file.clone().unwrap_or_default(),
                        managed.clone(),
                    );
                    if let Some(reload) = &w.reload {
                        options.reload_command = reload.clone();
                    }
                    options.timeout = w.timeout;
                    options.verify_at = w.verify;
                    Arc::new(ZoneFileWriter::new(options).map_err(error)?)
                }
                WriterKind::DynamicUpdate => {
                    let key = match (&w.key, &w.key_file) {
                        (Some(key), _) => TsigKey::new(&key.name, &key.algorithm, &key.secret),
                        (None, Some(file)) => {
                            TsigKey::from_bind_key_file(file, w.key_name.as_deref())
                        }
                        (None, None) => {
                            return Err(DaemonError::Writer {
                                path: config.path.clone(),
                                index: index + 1,
                                message: "no key: set key_file or key".to_owned(),
                            })
                        }
                    }
                    .map_err(error)?;
                    let primary = w.primary.ok_or_else(|| DaemonError::Writer {
                        path: config.path.clone(),
                        index: index + 1,
                        message: "no primary".to_owned(),
                    })?;
                    let mut options =
                        DynamicUpdateOptions::new(&config.zone.name, primary, key, managed.clone());
                    options.timeout = w.timeout;
                    Arc::new(DynamicUpdateWriter::new(options).map_err(error)?)
                }
            };
            Ok(writer)
        })
        .collect()
}

/// The fence of `[mysql.fencing]`, when it is configured.
pub fn fence(config: &Config) -> Result<Option<Arc<dyn failover_core::Fence>>, DaemonError> {
    crate::mysql_cli::fence(config).map_err(|message| DaemonError::Mysql {
        path: config.path.clone(),
        message,
    })
}

/// Loads the zone file named by the config and checks the managed names against it.
pub fn load_zone(config: &Config) -> Result<Zone, DaemonError> {
    let zone = Zone::from_file_for(&config.zone.file, &config.zone.name)?;
    let found = zone.origin();
    if !found
        .trim_end_matches('.')
        .eq_ignore_ascii_case(config.zone.name.trim_end_matches('.'))
    {
        return Err(DaemonError::WrongZone {
            file: config.zone.file.clone(),
            found,
            expected: config.zone.name.clone(),
        });
    }
    Ok(zone)
}

/// What `failoverd check` prints: what the daemon would do with this config.
pub fn plan(config: &Config, zone: &Zone) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "config {} is valid", config.path.display());
    let _ = writeln!(
        out,
        "zone {} from {} (serial {}), served on {} ({} UDP worker{} each)",
        config.zone.name,
        config.zone.file.display(),
        zone.serial(),
        config
            .zone
            .listen
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        config.zone.workers,
        if config.zone.workers == 1 { "" } else { "s" },
    );
    let _ = writeln!(out, "state in {}", config.zone.state_dir.display());
    let _ = writeln!(out, "managed names:");
    for record in &config.zone.records {
        let _ = writeln!(out, "  {} (ttl {} s)", record.name, record.ttl);
    }
    let _ = writeln!(out, "nodes:");
    let spec = cluster_spec(config);
    for (node, spec) in config.nodes.iter().zip(&spec.nodes) {
        let publish = spec
            .publish
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "  {}: probed at {}, publishes {publish}",
            node.name, node.address
        );
    }
    let _ = writeln!(out, "checks (on every node):");
    for check in &config.checks {
        let (interval, timeout, fall, rise) = config.check_timing(check);
        let detection = interval.saturating_mul(fall).saturating_add(timeout);
        let _ = writeln!(
            out,
            "  {} ({}{}){}: every {}, timeout {}, down after {fall} failures (about {}), up after {rise} success{}",
            check.name,
            check.kind,
            match check.kind {
                CheckKind::Mirror => " of this node's [mirror]".to_owned(),
                _ => format!(" port {}", Config::port(check)),
            },
            if check.critical { " critical" } else { "" },
            humantime::format_duration(interval),
            humantime::format_duration(timeout),
            humantime::format_duration(detection),
            if rise == 1 { "" } else { "es" },
        );
    }
    let policy = &config.policy;
    match policy.kind {
        PolicyKind::ActivePassive => {
            let order = config
                .order()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" > ");
            let failback = match policy.failback {
                FailbackMode::Auto => format!(
                    "back to a preferred node once it has been up for {}",
                    humantime::format_duration(policy.failback_after)
                ),
                FailbackMode::Manual => {
                    "back to a preferred node only when an operator asks".to_owned()
                }
            };
            let _ = writeln!(
                out,
                "policy active-passive: {order}; failover at once, {failback}"
            );
        }
        PolicyKind::AllHealthy => {
            let _ = writeln!(
                out,
                "policy all-healthy: every node that is up is published"
            );
        }
    }
    let _ = writeln!(out, "when every node is down: {}", policy.all_down);
    if let Some(fencing) = config.mysql.as_ref().and_then(|m| m.fencing.as_ref()) {
        let _ = writeln!(
            out,
            "mysql fencing: before the answer moves, read_only = 1 on the old primary and 0 on the new; a new primary lagging more than {} is not promoted unless the old one has been down for {}",
            humantime::format_duration(fencing.max_promote_lag),
            humantime::format_duration(fencing.promote_after_down)
        );
    }
    if let Some(mirror) = &config.mirror {
        let peer = config.mirror_peer().unwrap_or_default();
        let _ = writeln!(
            out,
            "mirror {} with {peer} ({}): {}; changes go after {} of quiet at most, full rescan every {}, a run may delete at most {} % of the files",
            mirror.root.display(),
            mirror.peer_fingerprint,
            if mirror.node < peer {
                format!("this node drives, connecting to {}", mirror.peer)
            } else {
                format!("{peer} drives, this node listens on {}", mirror.listen)
            },
            humantime::format_duration(mirror.coalesce),
            humantime::format_duration(mirror.rescan_interval),
            mirror.max_delete
        );
    }
    if !config.zone.allow_transfer.is_empty() || !config.zone.notify.is_empty() {
        let _ = writeln!(
            out,
            "zone transfers allowed to: {}; NOTIFY sent to: {}",
            list_or_none(&config.zone.allow_transfer),
            list_or_none(&config.zone.notify)
        );
    }
    for writer in &config.writers {
        let _ = match writer.kind {
            WriterKind::ZoneFile => writeln!(
                out,
                "also published to zone file {} (reload: {})",
                writer.file.clone().unwrap_or_default().display(),
                writer
                    .reload
                    .clone()
                    .unwrap_or_else(|| failover_dns::default_reload_command(&config.zone.name))
                    .join(" ")
            ),
            WriterKind::DynamicUpdate => writeln!(
                out,
                "also published by dynamic update (TSIG) to {}",
                writer.primary.map(|p| p.to_string()).unwrap_or_default()
            ),
        };
    }
    let _ = writeln!(
        out,
        "notifications: log{}",
        config
            .notifiers
            .iter()
            .map(|n| {
                let target = match n.kind {
                    NotifyKind::Command => n.command.clone().unwrap_or_default().join(" "),
                    NotifyKind::Email => format!(
                        "to {} via {}",
                        n.to.clone().unwrap_or_default().join(", "),
                        n.host.clone().unwrap_or_default()
                    ),
                    NotifyKind::Webhook => n.url.clone().unwrap_or_default(),
                };
                let events = n
                    .events
                    .as_ref()
                    .map(|e| format!(" ({})", e.join(", ")))
                    .unwrap_or_default();
                format!(", {} {target}{events}", n.kind)
            })
            .collect::<String>()
    );
    if let (Some(cluster), Some(quorum)) = (&config.cluster, quorum_spec(config)) {
        let _ = writeln!(
            out,
            "observers: {} (this one{}), {}",
            cluster.observer,
            cluster
                .listen
                .map(|l| format!(", peers dial {l}"))
                .unwrap_or_default(),
            config
                .peers
                .iter()
                .map(|p| match p.address {
                    Some(address) => format!("{} at {address}", p.name),
                    None => format!("{} (dials in)", p.name),
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            out,
            "a node is declared down when {} of {} observers agree; an observer silent for {} is out of the vote; cut off from the majority: {}",
            quorum.majority(),
            quorum.peers.len() + 1,
            humantime::format_duration(quorum.observer_timeout),
            quorum.on_partition
        );
    }
    for warning in config.warnings() {
        let _ = writeln!(out, "warning: {warning}");
    }
    out
}

fn list_or_none<T: ToString>(items: &[T]) -> String {
    if items.is_empty() {
        "nobody".to_owned()
    } else {
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Everything `failoverd check` verifies beyond the config file itself: the zone file, the
/// checks, the notifiers, the writers and this observer's key can all be built. Returns the
/// plan to print.
pub fn check(config: &Config) -> Result<String, DaemonError> {
    let zone = load_zone(config)?;
    checks(config)?;
    crate::mirror::live_config(config).map_err(|message| DaemonError::Mirror {
        path: config.path.clone(),
        message,
    })?;
    fence(config)?;
    notifiers(config)?;
    writers(config)?;
    observer_links(config)?;
    Ok(plan(config, &zone))
}

/// The observation links' settings from `[cluster]` and `[[peer]]` (the key is loaded here);
/// `None` when the daemon decides alone.
pub fn observer_links(config: &Config) -> Result<Option<ObserverLinkConfig>, DaemonError> {
    let Some(cluster) = &config.cluster else {
        return Ok(None);
    };
    let identity = failover_core::peer::Identity::load(&cluster.certificate, &cluster.key)
        .map_err(|e| DaemonError::Observers {
            path: config.path.clone(),
            message: e.to_string(),
        })?;
    Ok(Some(ObserverLinkConfig {
        identity: Arc::new(identity),
        local: cluster.observer.clone(),
        listen: cluster.listen,
        peers: config
            .peers
            .iter()
            .map(|p| ObserverPeer {
                name: p.name.clone(),
                address: p.address,
                fingerprint: p.fingerprint,
            })
            .collect(),
        observer_timeout: cluster.observer_timeout,
    }))
}

/// The quorum's view of the config (`None` without `[cluster]`).
pub fn quorum_spec(config: &Config) -> Option<QuorumSpec> {
    let cluster = config.cluster.as_ref()?;
    Some(QuorumSpec {
        local: cluster.observer.clone(),
        peers: config.peers.iter().map(|p| p.name.clone()).collect(),
        observer_timeout: cluster.observer_timeout,
        on_partition: config.on_partition(),
    })
}

/// Starts the observation links when `[cluster]` is configured.
async fn start_observers(config: &Config) -> Result<Option<ObserverNetwork>, DaemonError> {
    let Some(links) = observer_links(config)? else {
        return Ok(None);
    };
    let network = ObserverNetwork::start(links)
        .await
        .map_err(|e| DaemonError::Observers {
            path: config.path.clone(),
            message: e.to_string(),
        })?;
    Ok(Some(network))
}

/// Builds (without starting) the supervisor for `config`, publishing into `served`: every part
/// is checked here, so that a failure leaves a running daemon untouched.
fn build_supervisor(
    config: &Config,
    served: &ServedZone,
    observers: Option<&ObserverNetwork>,
    mirror: Option<&crate::mirror::Running>,
) -> Result<Supervisor, DaemonError> {
    let spec = cluster_spec(config);
    let checks_spec = spec.checks.clone();
    let arbiter = Arbiter::new(spec, policy(config)).map_err(|source| DaemonError::Cluster {
        path: config.path.clone(),
        source,
    })?;
    let mut supervisor = Supervisor::new(arbiter).writer(Arc::new(served.clone()));
    if let (Some(network), Some(quorum)) = (observers, quorum_spec(config)) {
        supervisor = supervisor.shared_observations(network.attach(quorum, &checks_spec));
    }
    for writer in writers(config)? {
        supervisor = supervisor.writer(writer);
    }
    // Overrides survive restarts; one that no longer fits the config is dropped loudly.
    let overrides = crate::admin::load_overrides(&config.zone.state_dir).map_err(|message| {
        DaemonError::Admin {
            path: config.path.clone(),
            message,
        }
    })?;
    for saved in overrides {
        let now = failover_core::Moment::now();
        match supervisor
            .arbiter_mut()
            .apply_override(saved.clone(), true, now)
        {
            Ok(_) => tracing::warn!("override restored from the state directory: {saved}"),
            Err(e) => tracing::error!("override {saved} dropped: {e}"),
        }
    }
    for node in &config.nodes {
        supervisor = supervisor.node(NodeName::new(&node.name), node.address);
    }
    for (name, check, schedule) in checks_with(config, mirror.map(|m| m.file_mirror()))? {
        supervisor = supervisor.check(name, check, schedule);
    }
    for notifier in notifiers(config)? {
        supervisor = supervisor.notifier(notifier);
    }
    if let Some(fence) = fence(config)? {
        supervisor = supervisor.fence(fence);
    }
    if let Some(admin) = &config.admin {
        admin.token().map_err(|message| DaemonError::Admin {
            path: config.path.clone(),
            message,
        })?;
    }
    Ok(supervisor)
}

/// Starts the overrides' persistence and, when configured, the admin listener.
async fn start_admin(
    config: &Config,
    served: &ServedZone,
    supervisor: &SupervisorHandle,
) -> Result<(Option<AdminServer>, tokio::task::JoinHandle<()>), DaemonError> {
    let persist = tokio::spawn(crate::admin::persist_overrides(
        config.zone.state_dir.clone(),
        supervisor.status(),
    ));
    let Some(admin) = &config.admin else {
        return Ok((None, persist));
    };
    let admin_error = |message: String| DaemonError::Admin {
        path: config.path.clone(),
        message,
    };
    let token = admin.token().map_err(admin_error)?;
    let zone = served.clone();
    let state = AdminState {
        status: supervisor.status(),
        commander: supervisor.commander(),
        zone_name: config.zone.name.clone(),
        serial: Arc::new(move || zone.serial()),
        token,
    };
    let server = AdminServer::start(admin.listen, state)
        .await
        .map_err(|e| admin_error(e.to_string()))?;
    Ok((Some(server), persist))
}

/// A witness: a third observer that probes every node and sends its verdicts to the daemons, so
/// that two of three decide. It serves no DNS and publishes nothing; its log shows what it sees.
pub struct Witness {
    supervisor: SupervisorHandle,
    observers: ObserverNetwork,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness").finish_non_exhaustive()
    }
}

impl Witness {
    /// Starts the links and the probes (the config's `[zone]`, `[policy]`, `[[writer]]`,
    /// `[[notify]]` and `[admin]` are not used). Must run inside a tokio runtime.
    pub async fn start(config: &Config) -> Result<Self, DaemonError> {
        let (Some(network), Some(quorum)) = (start_observers(config).await?, quorum_spec(config))
        else {
            return Err(DaemonError::Observers {
                path: config.path.clone(),
                message: "a witness needs [cluster] (its observer name, key and listen address) and the daemons as [[peer]]s".to_owned(),
            });
        };
        let spec = cluster_spec(config);
        let checks_spec = spec.checks.clone();
        let arbiter =
            Arbiter::new(spec, policy(config)).map_err(|source| DaemonError::Cluster {
                path: config.path.clone(),
                source,
            })?;
        let mut supervisor = Supervisor::new(arbiter)
            .notifier(Arc::new(LogNotifier))
            .shared_observations(network.attach(quorum, &checks_spec));
        for node in &config.nodes {
            supervisor = supervisor.node(NodeName::new(&node.name), node.address);
        }
        for (name, check, schedule) in checks(config)? {
            supervisor = supervisor.check(name, check, schedule);
        }
        Ok(Self {
            supervisor: supervisor.spawn(),
            observers: network,
        })
    }

    /// What the witness sees.
    pub fn status(&self) -> watch::Receiver<StatusReport> {
        self.supervisor.status()
    }

    /// Where it accepts the daemons' links.
    pub fn observer_address(&self) -> Option<SocketAddr> {
        self.observers.local_addr()
    }

    /// Stops probing and reporting.
    pub async fn shutdown(self) {
        self.supervisor.shutdown().await;
        self.observers.shutdown().await;
    }
}

async fn start_mirror(config: &Config) -> Result<Option<crate::mirror::Running>, DaemonError> {
    crate::mirror::start(config)
        .await
        .map_err(|message| DaemonError::Mirror {
            path: config.path.clone(),
            message,
        })
}

/// A running daemon: the DNS server answering, the supervisor probing and publishing.
pub struct Daemon {
    supervisor: SupervisorHandle,
    server: Option<DnsServer>,
    served: ServedZone,
    admin: Option<AdminServer>,
    persist: tokio::task::JoinHandle<()>,
    observers: Option<ObserverNetwork>,
    mirror: Option<crate::mirror::Running>,
    config: Config,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon").finish_non_exhaustive()
    }
}

impl Daemon {
    /// Loads the zone, binds the DNS server and starts probing. Must run inside a tokio runtime.
    pub async fn start(config: &Config) -> Result<Self, DaemonError> {
        let zone = load_zone(config)?;
        let managed: Vec<ManagedName> = cluster_spec(config).managed;
        let served = ServedZone::new(zone, &managed, &config.zone.state_dir)?;
        let server = if config.zone.listen.is_empty() {
            None
        } else {
            let server_config = ServerConfig::new(config.zone.listen.clone())
                .with_udp_workers(config.zone.workers)
                .with_transfer_acl(TransferAcl::allow(
                    config.zone.allow_transfer.iter().copied(),
                ))
                .with_secondaries(SecondariesConfig::new(config.zone.notify.clone()));
            Some(DnsServer::start(served.clone(), &server_config)?)
        };
        let observers = start_observers(config).await?;
        let mirror = start_mirror(config).await?;
        let supervisor = build_supervisor(config, &served, observers.as_ref(), mirror.as_ref())?;
        if let Some(mirror) = &mirror {
            mirror.notify_to(supervisor.event_sender());
        }
        let supervisor = supervisor.spawn();
        let (admin, persist) = start_admin(config, &served, &supervisor).await?;
        Ok(Self {
            supervisor,
            server,
            served,
            admin,
            persist,
            observers,
            mirror,
            config: config.clone(),
        })
    }

    /// Applies a new config without ever stopping the DNS answers: everything is built and
    /// checked first, so a config that fails leaves the running one untouched (`Err` says why).
    /// The zone file is reloaded into the served zone (answers kept, serial raised); probes,
    /// policy, notifiers, writers and the admin listener restart with the new settings.
    /// Listen addresses, workers, transfers and NOTIFY targets need a restart (a warning says so).
    pub async fn reload(&mut self, config: &Config) -> Result<(), DaemonError> {
        let zone = load_zone(config)?;
        if config.mirror != self.config.mirror {
            // Checked in full before the running mirror is stopped.
            crate::mirror::live_config(config).map_err(|message| DaemonError::Mirror {
                path: config.path.clone(),
                message,
            })?;
            build_supervisor(config, &self.served, self.observers.as_ref(), None)?;
            if let Some(old) = self.mirror.take() {
                old.shutdown().await;
            }
            self.mirror = start_mirror(config).await?;
        }
        let mut supervisor = build_supervisor(
            config,
            &self.served,
            self.observers.as_ref(),
            self.mirror.as_ref(),
        )?;
        // What is live stays live: the new arbiter starts from it, not from a first publication.
        let answer = self.supervisor.status().borrow().cluster.answer.clone();
        supervisor.arbiter_mut().assume_published(answer);
        if self.config.cluster.as_ref().map(|c| {
            (
                &c.observer,
                c.listen,
                &c.certificate,
                &c.key,
                c.observer_timeout,
            )
        }) != config.cluster.as_ref().map(|c| {
            (
                &c.observer,
                c.listen,
                &c.certificate,
                &c.key,
                c.observer_timeout,
            )
        }) || self
            .config
            .peers
            .iter()
            .map(|p| (&p.name, p.address, p.fingerprint))
            .ne(config
                .peers
                .iter()
                .map(|p| (&p.name, p.address, p.fingerprint)))
        {
            tracing::warn!("[cluster] and [[peer]] changes take effect at the next restart (on_partition applies now)");
        }
        let old = &self.config.zone;
        let new = &config.zone;
        if old.listen != new.listen
            || old.workers != new.workers
            || old.allow_transfer != new.allow_transfer
            || old.notify != new.notify
            || old.state_dir != new.state_dir
        {
            tracing::warn!(
                "[zone] listen, workers, allow_transfer, notify and state_dir changes take effect at the next restart"
            );
        }
        let serial = self.served.reload(zone, &cluster_spec(config).managed)?;
        // Stop the old admin listener first so that the new one can bind the same address.
        if let Some(admin) = self.admin.take() {
            admin.shutdown().await;
        }
        if let Some(mirror) = &self.mirror {
            mirror.notify_to(supervisor.event_sender());
        }
        let old_supervisor = std::mem::replace(&mut self.supervisor, supervisor.spawn());
        old_supervisor.shutdown().await;
        let _ = (&mut self.persist).await;
        let (admin, persist) = start_admin(config, &self.served, &self.supervisor).await?;
        self.admin = admin;
        self.persist = persist;
        self.config = config.clone();
        tracing::info!(serial, "configuration reloaded");
        Ok(())
    }

    /// The status, updated after every change.
    pub fn status(&self) -> watch::Receiver<StatusReport> {
        self.supervisor.status()
    }

    /// The addresses the DNS server is bound to (useful with port 0).
    pub fn dns_addresses(&self) -> Vec<SocketAddr> {
        self.server
            .as_ref()
            .map(|s| s.local_addrs().to_vec())
            .unwrap_or_default()
    }

    /// Where the observation listener is bound, when `[cluster] listen` is set.
    pub fn observer_address(&self) -> Option<SocketAddr> {
        self.observers
            .as_ref()
            .and_then(ObserverNetwork::local_addr)
    }

    /// The served zone (its serial and answers).
    pub fn zone(&self) -> &ServedZone {
        &self.served
    }

    /// Where the admin listener listens, if it is on.
    pub fn admin_address(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(AdminServer::address)
    }

    /// A command line to the arbiter (what the admin endpoints use).
    pub fn commander(&self) -> failover_core::Commander {
        self.supervisor.commander()
    }

    /// Stops probing, then stops answering.
    pub async fn shutdown(self) {
        if let Some(admin) = self.admin {
            admin.shutdown().await;
        }
        self.supervisor.shutdown().await;
        if let Some(observers) = self.observers {
            observers.shutdown().await;
        }
        // The status channel is closed now: the persisting task ends after its last write.
        let _ = self.persist.await;
        if let Some(mirror) = self.mirror {
            mirror.shutdown().await;
        }
        if let Some(server) = self.server {
            server.shutdown().await;
        }
    }
}
