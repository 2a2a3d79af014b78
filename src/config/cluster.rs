//! `[cluster]` (the observers share their verdicts), `[witness]` (the observer that is no
//! node) and `[identity]` (this server's key for the peer link).
//!
//! The file is the same on every server: each `[[node]]` and the `[witness]` carry their own
//! peer-link address and fingerprint, and which one a process is comes from `--node` (see
//! [`super::local`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use failover_core::peer::Fingerprint;
use failover_core::OnPartition;

use super::error::{Seg, Validator};
use super::{absolute, Config};

/// `[cluster]`: every `[[node]]` and the `[witness]` share their probe verdicts, and a failure
/// counts only when a majority of them sees it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// An observer not heard from for this long is out of the vote.
    #[serde(default = "default_observer_timeout", with = "humantime_serde")]
    pub observer_timeout: Duration,
    /// When an observer is cut off from the majority: `fail-over` (decide alone) or `hold`
    /// (keep every verdict). Default: `fail-over` with two observers, `hold` with more.
    pub on_partition: Option<OnPartition>,
}

fn default_observer_timeout() -> Duration {
    super::defaults::DEFAULT_OBSERVER_TIMEOUT
}

/// `[witness]`: the observer in a third place that probes and votes but serves nothing
/// (`failoverd witness`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// Its name, in the daemons' status and logs (e.g. `"witness"`).
    pub name: String,
    /// Where the daemons reach it to send their verdicts (`"203.0.113.10:8054"`); leave it out
    /// when it cannot be reached: it then only reports to them.
    pub peer_address: Option<SocketAddr>,
    /// What it binds when `peer_address` is not an address of its own (behind NAT).
    pub peer_listen: Option<SocketAddr>,
    /// Its key's fingerprint, as `failoverd keygen` printed it there (`"sha256:..."`).
    pub fingerprint: Fingerprint,
}

/// `[identity]`: this server's key for the peer link (the mirror and the observers), made by
/// `failoverd keygen`. The paths are the same on every server, the keys are not.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// This server's certificate (default `node.crt` beside the config file).
    #[serde(default = "default_certificate")]
    pub certificate: PathBuf,
    /// Its private key (default `node.key` beside the config file).
    #[serde(default = "default_key")]
    pub key: PathBuf,
}

fn default_certificate() -> PathBuf {
    PathBuf::from("node.crt")
}
fn default_key() -> PathBuf {
    PathBuf::from("node.key")
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            certificate: default_certificate(),
            key: default_key(),
        }
    }
}

impl IdentityConfig {
    /// Makes the certificate and key absolute, relative to `base`.
    pub(super) fn resolve(&mut self, base: &Path) {
        absolute(base, &mut self.certificate);
        absolute(base, &mut self.key);
    }
}

impl Config {
    /// The names of the observers of `[cluster]`: every `[[node]]`, then the `[witness]` (none
    /// without `[cluster]`).
    pub fn observer_names(&self) -> Vec<&str> {
        if self.cluster.is_none() {
            return Vec::new();
        }
        self.nodes
            .iter()
            .map(|n| n.name.as_str())
            .chain(self.witness.as_ref().map(|w| w.name.as_str()))
            .collect()
    }

    /// The rule an observer cut off from the majority follows.
    pub fn on_partition(&self) -> OnPartition {
        match &self.cluster {
            Some(ClusterConfig {
                on_partition: Some(rule),
                ..
            }) => *rule,
            _ if self.observer_names().len() >= 3 => OnPartition::Hold,
            _ => OnPartition::FailOver,
        }
    }
}

/// Checks `[cluster]`, `[witness]` and the peer-link keys of `[[node]]`: every observer can be
/// reached and has its own key.
pub(super) fn validate(config: &Config, v: &mut Validator<'_>) {
    use Seg::{Index, Key};
    if let Some(witness) = &config.witness {
        if config.cluster.is_none() {
            v.fail(
                &[Key("witness")],
                "a [witness] needs a [cluster] section (the observers share their verdicts there)",
            );
        }
        if witness.name.is_empty() {
            v.fail(
                &[Key("witness"), Key("name")],
                "empty name (e.g. \"witness\")",
            );
        }
        if config.nodes.iter().any(|n| n.name == witness.name) {
            v.fail(
                &[Key("witness"), Key("name")],
                format!(
                    "{:?} is also a [[node]]: the witness needs a name of its own",
                    witness.name
                ),
            );
        }
        validate_addresses(
            v,
            &[Key("witness")],
            witness.peer_address,
            witness.peer_listen,
        );
    }
    for (i, node) in config.nodes.iter().enumerate() {
        validate_addresses(
            v,
            &[Key("node"), Index(i)],
            node.peer_address,
            node.peer_listen,
        );
    }
    validate_fingerprints(config, v);
    let Some(cluster) = &config.cluster else {
        return;
    };
    if config.observer_names().len() < 2 {
        v.fail(&[Key("cluster")], "one observer only: nobody to share verdicts with (add the other [[node]]s, and a [witness] in a third place)");
    }
    for (i, node) in config.nodes.iter().enumerate() {
        require_link(v, &[Key("node"), Index(i)], node, "[cluster]");
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
}

/// A node taking part in `section` (`[cluster]`, `[mirror]`) needs its peer-link address and
/// fingerprint.
pub(super) fn require_link(
    v: &mut Validator<'_>,
    at: &[Seg<'_>],
    node: &super::NodeConfig,
    section: &str,
) {
    let with = |key| {
        let mut path = at.to_vec();
        path.push(Seg::Key(key));
        path
    };
    if node.peer_address.is_none() {
        v.fail(
            &with("name"),
            format!(
                "node {:?} has no peer_address: {section} needs where the others reach it (peer_address = \"IP:8054\" in its [[node]])",
                node.name
            ),
        );
    }
    if node.fingerprint.is_none() {
        v.fail(
            &with("name"),
            format!(
                "node {:?} has no fingerprint: {section} needs its key's (run `failoverd keygen --name {}` on that server and put the printed fingerprint = \"sha256:...\" in its [[node]])",
                node.name, node.name
            ),
        );
    }
}

/// `peer_address` and `peer_listen` of one observer: real ports, and no listen without address.
fn validate_addresses(
    v: &mut Validator<'_>,
    at: &[Seg<'_>],
    address: Option<SocketAddr>,
    listen: Option<SocketAddr>,
) {
    let with = |key| {
        let mut path = at.to_vec();
        path.push(Seg::Key(key));
        path
    };
    if address.is_some_and(|a| a.port() == 0) {
        v.fail(
            &with("peer_address"),
            "port 0 (expected e.g. \"192.0.2.10:8054\")",
        );
    }
    if listen.is_some_and(|a| a.port() == 0) {
        v.fail(
            &with("peer_listen"),
            "port 0 (expected e.g. \"0.0.0.0:8054\")",
        );
    }
    if listen.is_some() && address.is_none() {
        v.fail(
            &with("peer_listen"),
            "peer_listen without peer_address: set peer_address, where the others reach it",
        );
    }
}

/// Each observer has a key of its own.
fn validate_fingerprints(config: &Config, v: &mut Validator<'_>) {
    use Seg::{Index, Key};
    let mut seen: Vec<(&str, Fingerprint)> = Vec::new();
    let nodes = config
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (vec![Key("node"), Index(i)], n.name.as_str(), n.fingerprint));
    let witness = config
        .witness
        .iter()
        .map(|w| (vec![Key("witness")], w.name.as_str(), Some(w.fingerprint)));
    for (mut at, name, fingerprint) in nodes.chain(witness) {
        let Some(fingerprint) = fingerprint else {
            continue;
        };
        if let Some((other, _)) = seen.iter().find(|(_, f)| *f == fingerprint) {
            at.push(Key("fingerprint"));
            v.fail(&at, format!("{name:?} has the same fingerprint as {other:?}: each server needs its own key (failoverd keygen on each)"));
        }
        seen.push((name, fingerprint));
    }
}
