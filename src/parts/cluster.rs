//! `[[node]]`, `[[check]]`, `[zone] records`, `[policy]`, `[damping]`, `[cluster]` and `[witness]`
//! into the arbiter's and the quorum's specs, the policy, and the observation links.

use std::sync::Arc;

use failover_core::{
    ActivePassive, AllHealthy, CheckName, CheckSpec, ClusterSpec, Damping, Failback, FirstVerdict,
    ManagedName, NamedPolicy, NodeName, NodeSpec, ObserverLinkConfig, ObserverNetwork, Policy,
    QuorumSpec, Startup,
};

use super::DaemonError;
use crate::config::{CheckKind, Config, FailbackMode, PolicyKind};

/// The policy the config asks for (`[policy]`, the default).
pub fn policy(config: &Config) -> Result<Box<dyn Policy>, DaemonError> {
    let policy = &config.policy;
    let nodes: Vec<NodeName> = config
        .nodes
        .iter()
        .map(|n| NodeName::new(&n.name))
        .collect();
    make_policy(
        config,
        Made {
            name: "policy",
            kind: &policy.kind,
            plugin: policy.plugin.as_ref(),
            nodes: &nodes,
        },
        config.order(),
        policy.failback,
        policy.failback_after,
    )
    .map_err(|message| DaemonError::Policy {
        path: config.path.clone(),
        section: "[policy]".to_owned(),
        message,
    })
}

/// The named policies of `[policies.NAME]`.
pub fn named_policies(config: &Config) -> Result<Vec<NamedPolicy>, DaemonError> {
    config
        .policies
        .iter()
        .map(|(key, p)| {
            let nodes: Vec<NodeName> = p.nodes.iter().map(NodeName::new).collect();
            let order = if !p.order.is_empty() {
                p.order.iter().map(NodeName::new).collect()
            } else if !nodes.is_empty() {
                // Its nodes, in config order.
                let mut order = nodes.clone();
                order.sort_by_key(|n| config.nodes.iter().position(|c| c.name == n.as_str()));
                order
            } else {
                config
                    .nodes
                    .iter()
                    .map(|n| NodeName::new(&n.name))
                    .collect()
            };
            let among = if nodes.is_empty() {
                config
                    .nodes
                    .iter()
                    .map(|n| NodeName::new(&n.name))
                    .collect()
            } else {
                order.clone()
            };
            let made = Made {
                name: key,
                kind: &p.kind,
                plugin: p.plugin.as_ref(),
                nodes: &among,
            };
            let policy = make_policy(config, made, order, p.failback, p.failback_after).map_err(
                |message| DaemonError::Policy {
                    path: config.path.clone(),
                    section: format!("[policies.{key}]"),
                    message,
                },
            )?;
            let mut named = NamedPolicy::new(key, policy);
            if !nodes.is_empty() {
                named = named.among(nodes);
            }
            if let Some(rule) = p.all_down {
                named = named.all_down(rule);
            }
            Ok(named)
        })
        .collect()
}

/// Which policy section is being made.
struct Made<'a> {
    name: &'a str,
    kind: &'a PolicyKind,
    plugin: Option<&'a crate::config::PluginSettings>,
    nodes: &'a [NodeName],
}

fn make_policy(
    config: &Config,
    made: Made<'_>,
    order: Vec<NodeName>,
    failback: FailbackMode,
    after: std::time::Duration,
) -> Result<Box<dyn Policy>, String> {
    Ok(match made.kind {
        PolicyKind::Plugin(kind) => {
            let context = crate::plugins::PluginContext {
                config,
                name: made.name,
                nodes: made.nodes,
            };
            let empty = toml::Table::new();
            let table = made.plugin.map_or(&empty, |p| &p.table);
            return config.plugins.build_policy(kind, table, &context);
        }
        PolicyKind::ActivePassive => Box::new(ActivePassive::new(
            order,
            match failback {
                FailbackMode::Auto => Failback::Auto { after },
                FailbackMode::Manual => Failback::Manual,
            },
        )),
        PolicyKind::AllHealthy => Box::new(AllHealthy),
    })
}

/// The arbiter's view of the config.
pub fn cluster_spec(config: &Config) -> ClusterSpec {
    ClusterSpec::new(
        config
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
        config
            .checks
            .iter()
            .map(|c| {
                let (_, _, fall, rise) = config.check_timing(c);
                CheckSpec {
                    name: CheckName::new(&c.common.name),
                    critical: c.common.critical,
                    fall,
                    rise,
                    data: matches!(
                        c.kind,
                        CheckKind::MysqlReplication(_) | CheckKind::Mirror(_)
                    ),
                }
            })
            .collect(),
        config
            .zone
            .records
            .iter()
            .map(|r| match &r.policy {
                Some(key) => ManagedName::new(&r.name, r.ttl).with_policy(key),
                None => ManagedName::new(&r.name, r.ttl),
            })
            .collect(),
    )
    .with_all_down(config.policy.all_down)
    .with_damping(Damping {
        window: config.damping.window,
        max_changes: config.damping.max_changes,
    })
    // A first start (no saved state): a check needs `fall` failures before its first down.
    .with_startup(Startup {
        first_verdict: FirstVerdict::AfterFall,
        ..Startup::default()
    })
}

/// The quorum's view of the config (`None` without `[cluster]`), for the chosen observer.
pub fn quorum_spec(config: &Config) -> Option<QuorumSpec> {
    let links = config.observer_links()?;
    Some(QuorumSpec {
        local: links.local,
        peers: links.peers.into_iter().map(|p| p.name).collect(),
        observer_timeout: links.observer_timeout,
        on_partition: config.on_partition(),
    })
}

/// The observation links' settings for the chosen observer, with this server's key; `None` when
/// the daemon decides alone.
pub fn observer_links(
    config: &Config,
    identity: Option<Arc<failover_core::peer::Identity>>,
) -> Option<ObserverLinkConfig> {
    let links = config.observer_links()?;
    Some(ObserverLinkConfig {
        identity: identity?,
        local: links.local,
        listen: links.listen,
        peers: links.peers,
        observer_timeout: links.observer_timeout,
    })
}

/// Starts the observation links when `[cluster]` is configured, with this server's key.
pub async fn start_observers(
    config: &Config,
    identity: Option<Arc<failover_core::peer::Identity>>,
) -> Result<Option<ObserverNetwork>, DaemonError> {
    let Some(links) = observer_links(config, identity) else {
        return Ok(None);
    };
    let listen = links.listen;
    let network = ObserverNetwork::start(links)
        .await
        .map_err(|e| DaemonError::Observers {
            path: config.path.clone(),
            message: match listen {
                Some(address) => format!("{e} (is {address} an address of this server? Behind NAT, set peer_listen = \"0.0.0.0:{}\" in its table)", address.port()),
                None => e.to_string(),
            },
        })?;
    Ok(Some(network))
}
