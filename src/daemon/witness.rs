//! The witness: a third observer that probes and votes, and publishes nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use failover_core::{
    LogNotifier, NodeName, ObserverNetwork, StatusReport, Supervisor, SupervisorHandle,
};
use tokio::sync::watch;

use super::build::arbiter;
use crate::config::Config;
use crate::parts::check::checks;
use crate::parts::cluster::{cluster_spec, quorum_spec, start_observers};
use crate::parts::{identity, DaemonError};

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
    /// Starts the links and the probes of the config's `[witness]` (chosen with
    /// [`Config::select`]); its `[zone]`, `[policy]`, `[[writer]]`, `[[notify]]`, `[admin]` and
    /// `[mirror]` are not used. Must run inside a tokio runtime.
    pub async fn start(config: &Config) -> Result<Self, DaemonError> {
        let not_a_witness = || {
            DaemonError::Observers {
            path: config.path.clone(),
            message: "a witness needs [cluster] and a [witness] (its name, fingerprint and peer_address) in the file, and is started as it (failoverd witness)".to_owned(),
        }
        };
        if !config.is_witness() {
            return Err(not_a_witness());
        }
        let identity = identity::load(config)?;
        let (Some(network), Some(quorum)) = (
            start_observers(config, identity).await?,
            quorum_spec(config),
        ) else {
            return Err(not_a_witness());
        };
        let checks_spec = cluster_spec(config).checks;
        let mut supervisor = Supervisor::new(arbiter(config)?)
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
