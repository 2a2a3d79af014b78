//! Assembling the daemon's parts: the supervisor (checked in full before anything starts), the
//! admin listener with the overrides' persistence, and the mirror.

use std::sync::Arc;
use std::time::Duration;

use failover_core::{
    Arbiter, CheckName, Event, NodeName, ObserverNetwork, Outcome, Publication, Supervisor,
    SupervisorHandle, SupervisorMetrics,
};
use failover_dns::ServedZone;

use crate::admin::history::History;
use crate::admin::{AdminServer, AdminState, AdminTls, Metrics};
use crate::config::Config;
use crate::parts::check::checks_with;
use crate::parts::cluster::{cluster_spec, named_policies, policy, quorum_spec};
use crate::parts::notifier::notifiers;
use crate::parts::writer::writers;
use crate::parts::{arbiter_state, mirror, overrides, DaemonError};

/// The fence of `[mysql.fencing]`, when it is configured.
pub fn fence(config: &Config) -> Result<Option<Arc<dyn failover_core::Fence>>, DaemonError> {
    crate::parts::mysql::fence(config).map_err(|message| DaemonError::Mysql {
        path: config.path.clone(),
        message,
    })
}

/// What `[mirror]` asks of this node, checked: its excludes and, with this server's key, its
/// root.
pub fn check_mirror(
    config: &Config,
    identity: Option<Arc<failover_core::peer::Identity>>,
) -> Result<(), DaemonError> {
    let error = |message| DaemonError::Mirror {
        path: config.path.clone(),
        message,
    };
    mirror::check_excludes(config).map_err(error)?;
    #[cfg(feature = "sync")]
    if let Some(identity) = identity {
        mirror::live_config(config, identity).map_err(error)?;
    }
    #[cfg(not(feature = "sync"))]
    let _ = identity;
    Ok(())
}

/// The arbiter of the config, with its policy and its named policies.
pub fn arbiter(config: &Config) -> Result<Arbiter, DaemonError> {
    Arbiter::with_policies(
        cluster_spec(config),
        policy(config)?,
        named_policies(config)?,
    )
    .map_err(|source| DaemonError::Cluster {
        path: config.path.clone(),
        source,
    })
}

/// Builds (without starting) the supervisor for `config`, publishing into `served`: every part
/// is checked here, so that a failure leaves a running daemon untouched.
pub fn build_supervisor(
    config: &Config,
    served: &ServedZone,
    observers: Option<&ObserverNetwork>,
    mirror: Option<&mirror::Running>,
) -> Result<Supervisor, DaemonError> {
    let checks_spec = cluster_spec(config).checks;
    let arbiter = arbiter(config)?;
    let mut supervisor = Supervisor::new(arbiter).writer(Arc::new(served.clone()));
    if let (Some(network), Some(quorum)) = (observers, quorum_spec(config)) {
        supervisor = supervisor.shared_observations(network.attach(quorum, &checks_spec));
    }
    for writer in writers(config)? {
        supervisor = supervisor.writer(writer);
    }
    // Overrides survive restarts.
    overrides::restore(config, &mut supervisor)?;
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
        let admin_error = |message| DaemonError::Admin {
            path: config.path.clone(),
            message,
        };
        admin.token().map_err(admin_error)?;
        // A reload with an unusable key fails here, before the running listener stops.
        AdminTls::from_config(config).map_err(admin_error)?;
    }
    Ok(supervisor)
}

/// What the admin listener reads besides the supervisor: the DNS server's counters, the
/// mirror, the daemon's registry and history.
pub struct AdminSources {
    pub dns_stats: Option<failover_dns::StatsReader>,
    pub mirror: Option<Arc<dyn failover_core::FileMirror>>,
    pub recorders: Recorders,
}

/// What each supervisor reports to as things happen, both kept for the daemon's life: the
/// Prometheus registry and the page's history.
#[derive(Clone, Debug)]
pub struct Recorders {
    pub metrics: Arc<Metrics>,
    pub history: Arc<History>,
}

impl SupervisorMetrics for Recorders {
    fn probed(&self, node: &NodeName, check: &CheckName, outcome: &Outcome, took: Duration) {
        self.metrics.probed(node, check, outcome, took);
        self.history.probed(node, check, outcome, took);
    }

    fn event(&self, event: &Event) {
        self.metrics.event(event);
    }

    fn answer(&self, publication: &Publication) {
        self.history.answer(publication);
    }

    fn published(&self, writer: &str, took: Duration, result: Result<(), &str>) {
        self.metrics.published(writer, took, result);
    }

    fn notified(&self, notifier: &str, events: usize, result: Result<(), &str>) {
        self.metrics.notified(notifier, events, result);
    }
}

/// Starts the overrides' persistence and, when configured, the admin listener.
pub async fn start_admin(
    config: &Config,
    served: &ServedZone,
    supervisor: &SupervisorHandle,
    sources: AdminSources,
) -> Result<(Option<AdminServer>, tokio::task::JoinHandle<()>), DaemonError> {
    let state_dir = config.zone.state_dir.clone();
    let (overrides_status, state_status) = (supervisor.status(), supervisor.status());
    let persist = tokio::spawn(async move {
        tokio::join!(
            overrides::persist_overrides(state_dir.clone(), overrides_status),
            arbiter_state::persist_state(state_dir, state_status),
        );
    });
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
        dns_stats: sources.dns_stats,
        mirror: sources.mirror,
        metrics: sources.recorders.metrics,
        history: sources.recorders.history,
    };
    let tls = AdminTls::from_config(config).map_err(admin_error)?;
    if admin.plain_off_loopback() {
        tracing::warn!("[admin] danger_plain_http: the admin listener serves plain HTTP on {}: the bearer token crosses the network in clear text (set [admin] tls = true)", admin.listen);
    }
    let certificate = tls.as_ref().map(AdminTls::fingerprint);
    let server = AdminServer::start(admin.listen, state, tls)
        .await
        .map_err(|e| admin_error(e.to_string()))?;
    match certificate {
        Some(certificate) => {
            tracing::info!(address = %server.address(), %certificate, "admin listener serving HTTPS")
        }
        None => tracing::info!(address = %server.address(), "admin listener serving HTTP"),
    }
    Ok((Some(server), persist))
}

/// Starts the mirror of `[mirror]` with this server's key, if this node has a part in it.
pub async fn start_mirror(
    config: &Config,
    identity: Option<Arc<failover_core::peer::Identity>>,
) -> Result<Option<mirror::Running>, DaemonError> {
    mirror::start(config, identity)
        .await
        .map_err(|message| DaemonError::Mirror {
            path: config.path.clone(),
            message,
        })
}
