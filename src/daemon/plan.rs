//! What `failoverd check` verifies and prints: every part can be built, and what the daemon would
//! do with this config, one section after the other.

use std::fmt::Write as _;

use failover_dns::Zone;

use super::build::{check_mirror, fence};
use crate::config::{CheckKind, Config, FailbackMode, NotifierKind, PolicyKind, WriterKind};
use crate::parts::check::checks;
use crate::parts::cluster::{cluster_spec, observer_links, quorum_spec};
use crate::parts::notifier::notifiers;
use crate::parts::writer::writers;
use crate::parts::zone::load_zone;
use crate::parts::DaemonError;

/// Everything `failoverd check` verifies beyond the config file itself: the zone file, the
/// checks, the notifiers, the writers and this observer's key can all be built. Returns the
/// plan to print.
pub fn verify(config: &Config) -> Result<String, DaemonError> {
    let zone = load_zone(config)?;
    checks(config)?;
    check_mirror(config)?;
    fence(config)?;
    notifiers(config)?;
    writers(config)?;
    observer_links(config)?;
    Ok(plan(config, &zone))
}

/// What `failoverd check` prints: what the daemon would do with this config.
pub fn plan(config: &Config, zone: &Zone) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "config {} is valid", config.path.display());
    zone_plan(&mut out, config, zone);
    nodes_plan(&mut out, config);
    checks_plan(&mut out, config);
    policy_plan(&mut out, config);
    fencing_and_mirror_plan(&mut out, config);
    publication_plan(&mut out, config);
    notifications_plan(&mut out, config);
    observers_plan(&mut out, config);
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

fn fencing_and_mirror_plan(out: &mut String, config: &Config) {
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
            "mirror {} with {peer} ({}): {}; changes go after {} of quiet at most, full rescan every {}, a run may delete at most {} % of the files; owners kept: {}",
            mirror.root.display(),
            mirror.peer_fingerprint,
            if mirror.node < peer {
                format!("this node drives, connecting to {}", mirror.peer)
            } else {
                format!("{peer} drives, this node listens on {}", mirror.listen)
            },
            humantime::format_duration(mirror.coalesce),
            humantime::format_duration(mirror.rescan_interval),
            mirror.max_delete,
            mirror.owners.as_str()
        );
    }
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
    let (Some(cluster), Some(quorum)) = (&config.cluster, quorum_spec(config)) else {
        return;
    };
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
