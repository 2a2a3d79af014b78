//! What `failoverd check` verifies and prints: every part can be built, and what the daemon would
//! do with this config, one section after the other.

use std::fmt::Write as _;

use failover_dns::Zone;

use super::build::{check_mirror, fence};
use crate::config::{CheckKind, Config, FailbackMode, NotifierKind, PolicyKind, WriterKind};
use crate::parts::check::checks;
use crate::parts::cluster::cluster_spec;
use crate::parts::identity::{self, Found};
use crate::parts::notifier::notifiers;
use crate::parts::writer::writers;
use crate::parts::zone::load_zone;
use crate::parts::DaemonError;

/// Which observers of the file `failoverd check` checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The one this process was told it is (`--node`, `FAILOVERD_NODE`): its key, if here, must
    /// be its own.
    One(String),
    /// Every node and the witness (none when the file needs no choice): each one's key and
    /// mirror root are checked on the server that holds its key.
    Every,
}

/// Everything `failoverd check` verifies beyond the config file itself, for the observers of
/// `scope`: the zone file, the checks, the notifiers, the writers, and on the server that holds
/// its key, the node's key and mirror root. Returns the plan to print.
pub fn verify(config: &Config, scope: &Scope) -> Result<String, DaemonError> {
    let locals: Vec<String> = match scope {
        Scope::One(local) => vec![local.clone()],
        Scope::Every => config
            .every_local()
            .into_iter()
            .map(|(_, name)| name)
            .collect(),
    };
    let views: Vec<Config> = locals
        .iter()
        .map(|local| config.clone().select(Some(local.clone())))
        .collect();
    let daemons = views.is_empty() || views.iter().any(|v| !v.is_witness());
    let zone = if daemons {
        let zone = load_zone(config)?;
        fence(config)?;
        notifiers(config)?;
        writers(config)?;
        Some(zone)
    } else {
        None
    };
    checks(config)?;
    let mut blocks = Vec::new();
    for view in &views {
        let found = identity::find(view)?;
        let key = match &found {
            Found::Here(identity) => Some(identity.clone()),
            Found::Elsewhere(owner) if matches!(scope, Scope::One(_)) => {
                return Err(DaemonError::Identity {
                    path: config.path.clone(),
                    message: identity::elsewhere(view, owner),
                })
            }
            Found::NotNeeded | Found::Absent(_) | Found::Elsewhere(_) => None,
        };
        check_mirror(view, key)?;
        blocks.push(local_plan(view, &found));
    }
    if views.is_empty() {
        check_mirror(config, None)?;
    }
    Ok(plan(config, zone.as_ref(), &locals, &blocks))
}

/// What `failoverd check` prints: what the daemon would do with this config, then what each of
/// `locals` does in it (`blocks`, from `local_plan`).
pub fn plan(config: &Config, zone: Option<&Zone>, locals: &[String], blocks: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "config {} is valid{}",
        config.path.display(),
        if locals.is_empty() {
            String::new()
        } else {
            format!(" for {}", locals.join(", "))
        }
    );
    if let Some(zone) = zone {
        zone_plan(&mut out, config, zone);
    }
    nodes_plan(&mut out, config);
    checks_plan(&mut out, config);
    if zone.is_some() {
        policy_plan(&mut out, config);
        fencing_plan(&mut out, config);
        publication_plan(&mut out, config);
        notifications_plan(&mut out, config);
    }
    for block in blocks {
        out.push_str(block);
    }
    quorum_plan(&mut out, config);
    for warning in config.warnings() {
        let _ = writeln!(out, "warning: {warning}");
    }
    if let Some(warning) = crate::parts::mirror::owners_warning(config) {
        let _ = writeln!(out, "warning: {warning}");
    }
    for warning in crate::parts::access::access_warnings(config) {
        let _ = writeln!(out, "warning: {warning}");
    }
    out
}

/// What one observer of the file (the one `config` was selected for) does: its key, its mirror,
/// its links.
pub fn local_plan(config: &Config, found: &Found) -> String {
    let mut out = String::new();
    let Some(local) = &config.local else {
        return out;
    };
    let what = match (config.local_node(), config.is_witness()) {
        (Some(_), _) => "node",
        (None, true) => "witness",
        (None, false) => return out,
    };
    let _ = writeln!(
        out,
        "as {what} {local}{}:",
        if config.is_witness() {
            " (failoverd witness: probes and reports, serves no DNS, publishes nothing)"
        } else {
            ""
        }
    );
    let _ = match found {
        Found::NotNeeded => writeln!(out, "  no peer link"),
        Found::Here(identity) => writeln!(
            out,
            "  key {} here ({}), the one pinned for {local}",
            identity.fingerprint(),
            config.identity.certificate.display()
        ),
        Found::Absent(message) => writeln!(out, "  warning: {message}"),
        Found::Elsewhere(owner) => writeln!(
            out,
            "  this server holds {owner}'s key: {local}'s key{} checked on {local}'s server",
            if config.mirror_link().is_some() {
                " and mirror root are"
            } else {
                " is"
            }
        ),
    };
    mirror_plan(&mut out, config);
    observers_plan(&mut out, config);
    out
}

fn zone_plan(out: &mut String, config: &Config, zone: &Zone) {
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
    if let Some(xdp) = &config.zone.xdp {
        let queues = match &xdp.queues {
            Some(queues) => format!("receive queues {queues:?}"),
            None => "every receive queue".to_owned(),
        };
        let _ = writeln!(
            out,
            "UDP queries on {} answered through AF_XDP ({queues}); TCP and the rest through the sockets",
            xdp.interface
        );
    }
    let _ = writeln!(out, "state in {}", config.zone.state_dir.display());
    let _ = writeln!(out, "managed names:");
    for record in &config.zone.records {
        let _ = writeln!(out, "  {} (ttl {} s)", record.name, record.ttl);
    }
}

fn nodes_plan(out: &mut String, config: &Config) {
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
}

fn checks_plan(out: &mut String, config: &Config) {
    let _ = writeln!(out, "checks (on every node):");
    for check in &config.checks {
        let (interval, timeout, fall, rise) = config.check_timing(check);
        let detection = interval.saturating_mul(fall).saturating_add(timeout);
        let _ = writeln!(
            out,
            "  {} ({}{}){}: every {}, timeout {}, down after {fall} failures (about {}), up after {rise} success{}",
            check.common.name,
            check.kind,
            match check.kind {
                CheckKind::Mirror(_) => " of this node's [mirror]".to_owned(),
                _ => format!(" port {}", Config::port(check)),
            },
            if check.common.critical { " critical" } else { "" },
            humantime::format_duration(interval),
            humantime::format_duration(timeout),
            humantime::format_duration(detection),
            if rise == 1 { "" } else { "es" },
        );
    }
}

fn policy_plan(out: &mut String, config: &Config) {
    let policy = &config.policy;
    match &policy.kind {
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
        PolicyKind::Plugin(kind) => {
            let _ = writeln!(out, "policy {kind} (a plugin)");
        }
    }
    let _ = writeln!(out, "when every node is down: {}", policy.all_down);
    for (key, named) in &config.policies {
        let names: Vec<&str> = config
            .zone
            .records
            .iter()
            .filter(|r| r.policy.as_deref() == Some(key.as_str()))
            .map(|r| r.name.as_str())
            .collect();
        let kind = named.kind.name();
        let nodes = if named.nodes.is_empty() {
            "every node".to_owned()
        } else {
            named.nodes.join(", ")
        };
        let _ = writeln!(
            out,
            "policy {key} ({}): {kind} among {nodes}; when they are all down: {}",
            if names.is_empty() {
                "no name uses it".to_owned()
            } else {
                names.join(", ")
            },
            named.all_down.unwrap_or(policy.all_down)
        );
    }
}

fn fencing_plan(out: &mut String, config: &Config) {
    if let Some(fencing) = config.mysql.as_ref().and_then(|m| m.fencing.as_ref()) {
        let _ = writeln!(
            out,
            "mysql fencing: before the answer moves, read_only = 1 on the old primary and 0 on the new; a new primary lagging more than {} is not promoted unless the old one has been down for {}",
            humantime::format_duration(fencing.max_promote_lag),
            humantime::format_duration(fencing.promote_after_down)
        );
    }
}

fn mirror_plan(out: &mut String, config: &Config) {
    let Some(mirror) = &config.mirror else {
        return;
    };
    let Some(link) = config.mirror_link() else {
        if !config.is_witness() {
            let _ = writeln!(
                out,
                "  no mirror here: [mirror] is between {}",
                config
                    .mirror_pair()
                    .map(|[a, b]| format!("{} and {}", a.name, b.name))
                    .unwrap_or_default()
            );
        }
        return;
    };
    let _ = writeln!(
        out,
        "  mirror {} with {} ({}): {}; changes go after {} of quiet at most, full rescan every {}, a run may delete at most {} % of the files; owners kept: {}",
        mirror.root.display(),
        link.peer_node,
        link.peer_fingerprint,
        if link.node < link.peer_node {
            format!("this node drives, connecting to {}", link.peer)
        } else {
            format!("{} drives, this node listens on {}", link.peer_node, link.listen)
        },
        humantime::format_duration(mirror.coalesce),
        humantime::format_duration(mirror.rescan_interval),
        mirror.max_delete,
        mirror.owners.as_str()
    );
    let versions = match mirror.version_policy() {
        Some((keep_for, max_bytes)) => format!(
            "what the mirror replaces or deletes here is kept {} (at most {} MiB) in {}",
            humantime::format_duration(keep_for),
            max_bytes >> 20,
            mirror
                .index_dir(&config.zone.state_dir)
                .join("versions")
                .join(&link.node)
                .display()
        ),
        None => "no versions kept (versions = false)".to_owned(),
    };
    let attributes = match (mirror.xattrs, mirror.acls) {
        (false, false) => "no extended attributes or ACLs",
        (true, false) => "user.* extended attributes",
        (false, true) => "POSIX ACLs",
        (true, true) => "user.* extended attributes and POSIX ACLs",
    };
    let _ = writeln!(out, "    {versions}; mirrors {attributes}");
}

fn publication_plan(out: &mut String, config: &Config) {
    if !config.zone.listen.is_empty() {
        let _ = writeln!(out, "response rate limit (UDP): {}", config.zone.rate_limit);
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
        let _ = match &writer.kind {
            WriterKind::ZoneFile(settings) => writeln!(
                out,
                "also published to zone file {} (reload: {})",
                settings.file.clone().unwrap_or_default().display(),
                settings
                    .reload
                    .clone()
                    .unwrap_or_else(|| failover_dns::default_reload_command(&config.zone.name))
                    .join(" ")
            ),
            WriterKind::DynamicUpdate(settings) => writeln!(
                out,
                "also published by dynamic update (TSIG) to {}",
                settings.primary.map(|p| p.to_string()).unwrap_or_default()
            ),
            WriterKind::Plugin(settings) => {
                writeln!(out, "also published by {} (a plugin)", settings.kind)
            }
        };
    }
}

fn notifications_plan(out: &mut String, config: &Config) {
    let _ = writeln!(
        out,
        "notifications: log{}",
        config
            .notifiers
            .iter()
            .map(|n| {
                let target = match &n.kind {
                    NotifierKind::Command(s) => s.command.clone().unwrap_or_default().join(" "),
                    NotifierKind::Email(s) => format!(
                        "to {} via {}",
                        s.to.clone().unwrap_or_default().join(", "),
                        s.host.clone().unwrap_or_default()
                    ),
                    NotifierKind::Webhook(s) => s.url.clone().unwrap_or_default(),
                    NotifierKind::Plugin(_) => "(a plugin)".to_owned(),
                };
                let events = n
                    .common
                    .events
                    .as_ref()
                    .map(|e| format!(" ({})", e.join(", ")))
                    .unwrap_or_default();
                format!(", {} {target}{events}", n.kind)
            })
            .collect::<String>()
    );
}

fn observers_plan(out: &mut String, config: &Config) {
    let Some(links) = config.observer_links() else {
        return;
    };
    let _ = writeln!(
        out,
        "  observers: {} (this one, {}), {}",
        links.local,
        links
            .listen
            .map_or("dials out only".to_owned(), |l| format!("listening on {l}")),
        links
            .peers
            .iter()
            .map(|p| match p.address {
                Some(address) => format!("{} at {address}", p.name),
                None => format!("{} (dials in)", p.name),
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn quorum_plan(out: &mut String, config: &Config) {
    let Some(cluster) = &config.cluster else {
        return;
    };
    let names = config.observer_names();
    let observers = names.len();
    let majority = failover_core::QuorumSpec {
        local: names.first().map(|n| n.to_string()).unwrap_or_default(),
        peers: names.iter().skip(1).map(|n| n.to_string()).collect(),
        observer_timeout: cluster.observer_timeout,
        on_partition: config.on_partition(),
    }
    .majority();
    let _ = writeln!(
        out,
        "a node is declared down when {majority} of {observers} observers agree; an observer silent for {} is out of the vote; cut off from the majority: {}",
        humantime::format_duration(cluster.observer_timeout),
        config.on_partition()
    );
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
