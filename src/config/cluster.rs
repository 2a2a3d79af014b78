//! `[cluster]` (this daemon as one observer among several) and `[[peer]]` (the other observers).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use failover_core::peer::Fingerprint;
use failover_core::OnPartition;

use super::error::{Seg, Validator};
use super::{absolute, Config};

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
    super::defaults::DEFAULT_OBSERVER_TIMEOUT
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

impl ClusterConfig {
    /// Makes the certificate and key absolute, relative to `base`.
    pub(super) fn resolve(&mut self, base: &Path) {
        absolute(base, &mut self.certificate);
        absolute(base, &mut self.key);
    }
}

impl Config {
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
}

/// Checks `[cluster]` and `[[peer]]`: names, a peer to talk to, one key per observer.
pub(super) fn validate(config: &Config, v: &mut Validator<'_>) {
    use Seg::{Index, Key};
    let Some(cluster) = &config.cluster else {
        if !config.peers.is_empty() {
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
    if config.peers.is_empty() {
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
    for (i, peer) in config.peers.iter().enumerate() {
        let at = [Key("peer"), Index(i), Key("name")];
        if peer.name.is_empty() {
            v.fail(&at, "empty name");
        }
        if peer.name == cluster.observer {
            v.fail(
                &at,
                format!(
                    "{:?} is this observer's own name ([cluster] observer); list only the others",
                    peer.name
                ),
            );
        }
        if config.peers[..i].iter().any(|p| p.name == peer.name) {
            v.fail(&at, format!("peer {:?} is listed twice", peer.name));
        }
        if config.peers[..i]
            .iter()
            .any(|p| p.fingerprint == peer.fingerprint)
        {
            v.fail(&[Key("peer"), Index(i), Key("fingerprint")], format!("peer {:?} has the same fingerprint as another peer: each observer needs its own key (failoverd keygen on each)", peer.name));
        }
    }
}
