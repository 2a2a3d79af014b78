//! The running daemon: the DNS server answering, the supervisor probing and publishing, the
//! admin listener, the observer links and the mirror; started from a validated [`Config`] and
//! reloaded in place.

use std::net::SocketAddr;
use std::sync::Arc;

use failover_core::{ObserverNetwork, StatusReport, SupervisorHandle};
use failover_dns::{DnsServer, ServedZone};
use tokio::sync::watch;

use crate::admin::history::History;
use crate::admin::{AdminServer, Metrics};
use crate::config::Config;
use crate::journal::{journal_dir, recent, Journal};
use crate::parts::arbiter_state::restore_saved;
use crate::parts::cluster::{cluster_spec, start_observers};
use crate::parts::zone::{load_zone, start_server};
use crate::parts::{identity, mirror};
use build::{build_supervisor, check_mirror, start_admin, start_mirror, AdminSources, Recorders};

mod build;
mod plan;
mod serve;
mod witness;

pub use crate::parts::DaemonError;
pub use plan::{plan, verify, Scope};
pub use serve::{DaemonBuilder, RunError};
pub use witness::Witness;

/// A running daemon: the DNS server answering, the supervisor probing and publishing.
pub struct Daemon {
    supervisor: SupervisorHandle,
    server: Option<DnsServer>,
    served: ServedZone,
    admin: Option<AdminServer>,
    persist: tokio::task::JoinHandle<()>,
    observers: Option<ObserverNetwork>,
    mirror: Option<mirror::Running>,
    journal: Option<Journal>,
    /// The Prometheus registry and the page's history: one each for the daemon's life, fed by
    /// each supervisor.
    recorders: Recorders,
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
        let managed = cluster_spec(config).managed;
        let served = ServedZone::new(zone, &managed, &config.zone.state_dir)?;
        let identity = identity::load(config)?;
        let observers = start_observers(config, identity.clone()).await?;
        let mirror = start_mirror(config, identity).await?;
        let mut supervisor =
            build_supervisor(config, &served, observers.as_ref(), mirror.as_ref())?;
        // What the previous run knew: a restart moves nothing by itself. Its answer is in the
        // served zone before the first query is answered (never the zone file's own records).
        let restored = restore_saved(&config.zone.state_dir, &mut supervisor);
        if let Some(publication) = supervisor.arbiter_mut().publication() {
            served.publish_blocking(&publication)?;
        }
        // The page's history of the last day, from the journal of the runs before.
        let history = Arc::new(History::new());
        if config.journal.enabled {
            let now = std::time::SystemTime::now();
            let seeded = recent::seed(&history, &journal_dir(config), now);
            tracing::debug!(?seeded, "history seeded from the journal");
        }
        let mut journal = Journal::start(
            config,
            restored.and_then(|state| serde_json::to_string(&state).ok()),
        );
        if let Some(journal) = &mut journal {
            supervisor = supervisor.journal(journal.attach());
        }
        let recorders = Recorders {
            metrics: Arc::new(Metrics::new()),
            history,
        };
        supervisor = supervisor.metrics(Arc::new(recorders.clone()));
        let server = start_server(config, &served)?;
        if let Some(mirror) = &mirror {
            mirror.notify_to(supervisor.event_sender());
        }
        let supervisor = supervisor.spawn();
        let sources = AdminSources {
            dns_stats: server.as_ref().map(DnsServer::stats_reader),
            mirror: mirror.as_ref().map(mirror::Running::file_mirror),
            recorders: recorders.clone(),
        };
        let (admin, persist) = start_admin(config, &served, &supervisor, sources).await?;
        Ok(Self {
            supervisor,
            server,
            served,
            admin,
            persist,
            observers,
            mirror,
            journal,
            recorders,
            config: config.clone(),
        })
    }

    /// Applies a new config without ever stopping the DNS answers: everything is built and
    /// checked first, so a config that fails leaves the running one untouched (`Err` says why).
    /// The zone file is reloaded into the served zone (answers kept, serial raised); probes,
    /// policy, notifiers, writers and the admin listener restart with the new settings.
    /// Listen addresses, workers, transfers and their keys, the rate limit and NOTIFY targets need a
    /// restart (a warning says so).
    pub async fn reload(&mut self, config: &Config) -> Result<(), DaemonError> {
        let zone = load_zone(config)?;
        let identity = identity::load(config)?;
        if mirror_changed(&self.config, config) {
            // Checked in full before the running mirror is stopped.
            check_mirror(config, identity.clone())?;
            build_supervisor(config, &self.served, self.observers.as_ref(), None)?;
            if let Some(old) = self.mirror.take() {
                old.shutdown().await;
            }
            self.mirror = start_mirror(config, identity).await?;
        }
        let mut supervisor = build_supervisor(
            config,
            &self.served,
            self.observers.as_ref(),
            self.mirror.as_ref(),
        )?
        .metrics(Arc::new(self.recorders.clone()));
        warn_restart_only(&self.config, config);
        let serial = self.served.reload(zone, &cluster_spec(config).managed)?;
        // Stop the old admin listener first so that the new one can bind the same address.
        if let Some(admin) = self.admin.take() {
            admin.shutdown().await;
        }
        if let Some(mirror) = &self.mirror {
            mirror.notify_to(supervisor.event_sender());
        }
        // What the old arbiter knew when it stopped (verdicts, the answer, a pending failback)
        // goes on in the new one, nothing it saw in between lost; should it be refused, what is
        // live at least stays live.
        self.supervisor.stop().await;
        let last = self.supervisor.status().borrow().clone();
        if let Some(journal) = &mut self.journal {
            journal.detach().await;
            journal.reload(config).await;
            supervisor = supervisor.journal(journal.attach());
        }
        if let Err(e) = supervisor.restore(&last.state) {
            tracing::warn!(
                "the running arbiter's state not carried over ({e}): keeping its answer"
            );
            supervisor
                .arbiter_mut()
                .assume_published(last.cluster.answer);
        }
        self.supervisor = supervisor.spawn();
        // The old status channel is closed now: the persisting task ends after its last write.
        let _ = (&mut self.persist).await;
        let sources = AdminSources {
            dns_stats: self.server.as_ref().map(DnsServer::stats_reader),
            mirror: self.mirror.as_ref().map(mirror::Running::file_mirror),
            recorders: self.recorders.clone(),
        };
        let (admin, persist) = start_admin(config, &self.served, &self.supervisor, sources).await?;
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

    /// Where the observation listener is bound, with `[cluster]`.
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
        if let Some(journal) = self.journal {
            journal.shutdown().await;
        }
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

/// Whether a reload must restart the mirror: its section, this node's link or the key moved.
fn mirror_changed(old: &Config, new: &Config) -> bool {
    old.mirror != new.mirror
        || old.mirror_link() != new.mirror_link()
        || (new.mirror.is_some() && old.identity != new.identity)
}

/// Warns about the changes a reload does not apply: they wait for a restart.
fn warn_restart_only(old_config: &Config, config: &Config) {
    let links = |c: &Config| {
        c.observer_links()
            .map(|l| (l.listen, l.peers, l.observer_timeout))
    };
    if links(old_config) != links(config)
        || (config.cluster.is_some() && old_config.identity != config.identity)
    {
        tracing::warn!("[cluster], [witness], the nodes' peer_address, peer_listen and fingerprint, and [identity] take effect at the next restart (on_partition applies now)");
    }
    let old = &old_config.zone;
    let new = &config.zone;
    if old.listen != new.listen
        || old.workers != new.workers
        || old.allow_transfer != new.allow_transfer
        || old.keys != new.keys
        || old.rate_limit != new.rate_limit
        || old.notify != new.notify
        || old.state_dir != new.state_dir
        || old.xdp != new.xdp
    {
        tracing::warn!(
            "[zone] listen, workers, allow_transfer, keys, rate_limit, notify, state_dir and xdp changes take effect at the next restart"
        );
    }
}
