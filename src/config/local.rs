//! Which server of the one config file this process is (`--node`, `FAILOVERD_NODE`, the host
//! name), and that server's part of the file: its observation links and its mirror link.
//!
//! The file is the same on every server. What differs between them sits in their `[[node]]`
//! (and the `[witness]`); [`Config::select`] marks which of them this process is, and the views
//! below read the rest from there.

use std::net::SocketAddr;
use std::time::Duration;

use failover_core::peer::Fingerprint;
use failover_core::ObserverPeer;

use super::{Config, ConfigError, NodeConfig};

/// What a process runs as: a daemon (`failoverd run`) is a `[[node]]`, a witness
/// (`failoverd witness`) is the `[witness]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `failoverd run`: one of the `[[node]]`s.
    Daemon,
    /// `failoverd witness`: the `[witness]`.
    Witness,
}

/// Where this server's name may come from, strongest first.
#[derive(Clone, Copy, Debug, Default)]
pub struct Naming<'a> {
    /// `--node NAME`.
    pub flag: Option<&'a str>,
    /// `FAILOVERD_NODE`.
    pub env: Option<&'a str>,
    /// The host name.
    pub host: Option<&'a str>,
}

impl<'a> Naming<'a> {
    /// `--node` as given, `FAILOVERD_NODE` and the host name as this machine has them.
    pub fn from_environment(flag: Option<&'a str>, env: Option<&'a str>, host: &'a str) -> Self {
        Self {
            flag,
            env: env.filter(|e| !e.is_empty()),
            host: Some(host),
        }
    }
}

/// One observer's end of the observation links, read from the file for this server.
#[derive(Clone, Debug, PartialEq)]
pub struct ObserverLinks {
    /// This observer's name.
    pub local: String,
    /// What it binds for the others' links (`None`: it only dials out).
    pub listen: Option<SocketAddr>,
    /// Every other observer.
    pub peers: Vec<ObserverPeer>,
    /// An observer not heard from for this long is out of the vote.
    pub observer_timeout: Duration,
}

/// This node's end of the mirror's link, read from the file for this server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorLink {
    /// This node.
    pub node: String,
    /// The other node of the pair.
    pub peer_node: String,
    /// What this node binds for the peer (its peer-link address, `[mirror] port`).
    pub listen: SocketAddr,
    /// Where the peer listens.
    pub peer: SocketAddr,
    /// The peer's key.
    pub peer_fingerprint: Fingerprint,
}

impl Config {
    /// Reads and validates `path` ([`Config::load`]), then selects the observer `role` is,
    /// named by `naming` ([`Config::choose`]).
    pub fn load_as(
        path: &std::path::Path,
        role: Role,
        naming: &Naming<'_>,
    ) -> Result<Self, Vec<ConfigError>> {
        let config = Self::load(path)?;
        let local = config.choose(role, naming).map_err(|e| vec![e])?;
        Ok(config.select(local))
    }

    /// Whether a process must know which server it is: with `[cluster]` or `[mirror]`.
    pub fn needs_local(&self) -> bool {
        self.cluster.is_some() || self.mirror.is_some()
    }

    /// Which observer of the file this process is, as `role`: `--node`, else `FAILOVERD_NODE`,
    /// else (a daemon) the `[[node]]` named like the host or (a witness) the `[witness]`.
    /// `Ok(None)`: a daemon that need not know (no `[cluster]`, no `[mirror]`) and was not told.
    pub fn choose(&self, role: Role, naming: &Naming<'_>) -> Result<Option<String>, ConfigError> {
        let told = naming
            .flag
            .map(|name| (name, format!("--node {name:?}")))
            .or_else(|| {
                naming
                    .env
                    .map(|name| (name, format!("FAILOVERD_NODE={name:?}")))
            });
        if let Some((name, source)) = told {
            return self.check_told(role, name, &source).map(Some);
        }
        match role {
            Role::Witness => match &self.witness {
                Some(witness) => Ok(Some(witness.name.clone())),
                None => Err(self.local_error("a witness needs a [witness] (name, fingerprint, and peer_address where the daemons reach it) and [cluster] in the file".to_owned())),
            },
            Role::Daemon if !self.needs_local() => Ok(None),
            Role::Daemon => self.by_host_name(naming.host.unwrap_or_default()).map(Some),
        }
    }

    /// `name`, told by `source`, is an observer this role can be.
    fn check_told(&self, role: Role, name: &str, source: &str) -> Result<String, ConfigError> {
        let is_witness = self.witness.as_ref().is_some_and(|w| w.name == name);
        let is_node = self.nodes.iter().any(|n| n.name == name);
        match (role, is_node, is_witness) {
            (Role::Daemon, true, _) | (Role::Witness, _, true) => Ok(name.to_owned()),
            (Role::Daemon, _, true) => Err(self.local_error(format!(
                "{source} is the [witness]: start it with `failoverd witness`, not `run`"
            ))),
            (Role::Witness, true, _) => {
                Err(self.local_error(format!(
                    "{source} is a [[node]]: a witness is the [witness] ({})",
                    self.witness.as_ref().map_or(
                        "there is none in the file".to_owned(),
                        |w| format!("here {:?}", w.name)
                    )
                )))
            }
            _ => Err(self.local_error(format!(
                "{source} is none of the {} in the file ({})",
                match role {
                    Role::Daemon => "[[node]]s",
                    Role::Witness => "[witness]",
                },
                self.names_for(role)
            ))),
        }
    }

    /// The `[[node]]` named like this host (the whole name, or its first label).
    fn by_host_name(&self, host: &str) -> Result<String, ConfigError> {
        let short = host.split('.').next().unwrap_or(host);
        let matching: Vec<&NodeConfig> = self
            .nodes
            .iter()
            .filter(|n| n.name.eq_ignore_ascii_case(host) || n.name.eq_ignore_ascii_case(short))
            .collect();
        match matching.as_slice() {
            [one] => Ok(one.name.clone()),
            [] => Err(self.local_error(format!(
                "which node is this? The host name {host:?} is none of the [[node]]s ({}): start failoverd with --node NAME, set FAILOVERD_NODE=NAME (in the systemd unit: Environment=FAILOVERD_NODE=NAME), or name the [[node]] after the host",
                self.names_for(Role::Daemon)
            ))),
            several => Err(self.local_error(format!(
                "which node is this? The host name {host:?} matches several [[node]]s ({}): start failoverd with --node NAME or set FAILOVERD_NODE=NAME",
                several.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    fn names_for(&self, role: Role) -> String {
        match role {
            Role::Daemon => self
                .nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            Role::Witness => self
                .witness
                .as_ref()
                .map_or("none".to_owned(), |w| w.name.clone()),
        }
    }

    fn local_error(&self, message: String) -> ConfigError {
        ConfigError::Local {
            path: self.path.clone(),
            message,
        }
    }

    /// This config as seen by the observer `local` (a name [`Config::choose`] gave).
    pub fn select(mut self, local: Option<String>) -> Self {
        self.local = local;
        self
    }

    /// Every observer a process can be, for `failoverd check` without `--node`: the nodes, then
    /// the witness (none when the file needs no choice).
    pub fn every_local(&self) -> Vec<(Role, String)> {
        if !self.needs_local() {
            return Vec::new();
        }
        self.nodes
            .iter()
            .map(|n| (Role::Daemon, n.name.clone()))
            .chain(self.witness.iter().map(|w| (Role::Witness, w.name.clone())))
            .collect()
    }

    /// The `[[node]]` this process is, if it is one.
    pub fn local_node(&self) -> Option<&NodeConfig> {
        let local = self.local.as_deref()?;
        self.nodes.iter().find(|n| n.name == local)
    }

    /// Whether this process is the `[witness]`.
    pub fn is_witness(&self) -> bool {
        self.witness
            .as_ref()
            .is_some_and(|w| Some(w.name.as_str()) == self.local.as_deref())
    }

    /// The fingerprint pinned for this process's observer (what its key must be).
    pub fn local_fingerprint(&self) -> Option<Fingerprint> {
        if self.is_witness() {
            return self.witness.as_ref().map(|w| w.fingerprint);
        }
        self.local_node().and_then(|n| n.fingerprint)
    }

    /// This observer's links to every other one (`None` without `[cluster]` or before
    /// [`Config::select`]).
    pub fn observer_links(&self) -> Option<ObserverLinks> {
        let cluster = self.cluster.as_ref()?;
        let local = self.local.clone()?;
        let listen = match (self.local_node(), &self.witness) {
            (Some(node), _) => node.peer_listen.or(node.peer_address),
            (None, Some(witness)) if witness.name == local => {
                witness.peer_listen.or(witness.peer_address)
            }
            _ => return None,
        };
        let nodes = self.nodes.iter().filter_map(|n| {
            Some(ObserverPeer {
                name: n.name.clone(),
                address: n.peer_address,
                fingerprint: n.fingerprint?,
            })
        });
        let witness = self.witness.iter().map(|w| ObserverPeer {
            name: w.name.clone(),
            address: w.peer_address,
            fingerprint: w.fingerprint,
        });
        Some(ObserverLinks {
            peers: nodes.chain(witness).filter(|p| p.name != local).collect(),
            local,
            listen,
            observer_timeout: cluster.observer_timeout,
        })
    }

    /// This node's end of the mirror (`None` without `[mirror]`, before [`Config::select`], or
    /// on a node outside the mirror's pair).
    pub fn mirror_link(&self) -> Option<MirrorLink> {
        let mirror = self.mirror.as_ref()?;
        let local = self.local.as_deref()?;
        let [a, b] = self.mirror_pair()?;
        let (node, peer) = if a.name == local {
            (a, b)
        } else if b.name == local {
            (b, a)
        } else {
            return None;
        };
        let bind = node.peer_listen.or(node.peer_address)?;
        Some(MirrorLink {
            node: node.name.clone(),
            peer_node: peer.name.clone(),
            listen: SocketAddr::new(bind.ip(), mirror.port),
            peer: SocketAddr::new(peer.peer_address?.ip(), mirror.port),
            peer_fingerprint: peer.fingerprint?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::super::tests::{linked, parse, GOOD};
    use super::*;

    const FP3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    /// Both nodes on the peer link (slave binding another address), a witness, `[cluster]`
    /// and `[mirror]`.
    fn one_file() -> String {
        linked().replace(
            "peer_address = \"198.51.100.2:8054\"\n",
            "peer_address = \"198.51.100.2:8054\"\npeer_listen = \"0.0.0.0:8054\"\n",
        ) + &format!(
            "\n[witness]\nname = \"witness\"\npeer_address = \"203.0.113.3:8054\"\nfingerprint = \"{FP3}\"\n\n[cluster]\n\n[mirror]\nroot = \"/var/www/site\"\n"
        )
    }

    fn naming<'a>(flag: Option<&'a str>, env: Option<&'a str>, host: &'a str) -> Naming<'a> {
        Naming::from_environment(flag, env, host)
    }

    #[test]
    fn the_node_comes_from_the_flag_then_the_environment_then_the_host_name() {
        let config = parse(&one_file()).unwrap();
        let choose = |n: Naming<'_>| config.choose(Role::Daemon, &n);
        let host = "slave.example.com";
        assert_eq!(
            choose(naming(Some("master"), Some("slave"), host)).unwrap(),
            Some("master".to_owned())
        );
        assert_eq!(
            choose(naming(None, Some("master"), host)).unwrap(),
            Some("master".to_owned())
        );
        assert_eq!(
            choose(naming(None, None, host)).unwrap(),
            Some("slave".to_owned())
        );
        assert_eq!(
            choose(naming(None, None, "MASTER")).unwrap(),
            Some("master".to_owned())
        );
        // An empty FAILOVERD_NODE is as good as none.
        assert_eq!(
            choose(naming(None, Some(""), "master")).unwrap(),
            Some("master".to_owned())
        );
        // The witness needs no name: there is one [witness].
        assert_eq!(
            config
                .choose(Role::Witness, &naming(None, None, host))
                .unwrap(),
            Some("witness".to_owned())
        );
    }

    #[test]
    fn no_match_or_a_wrong_name_is_an_error_that_names_the_nodes_and_the_fix() {
        let config = parse(&one_file()).unwrap();
        let error = config
            .choose(Role::Daemon, &naming(None, None, "web7"))
            .unwrap_err()
            .to_string();
        assert_eq!(error, "/etc/failoverd/failoverd.toml: which node is this? The host name \"web7\" is none of the [[node]]s (master, slave): start failoverd with --node NAME, set FAILOVERD_NODE=NAME (in the systemd unit: Environment=FAILOVERD_NODE=NAME), or name the [[node]] after the host");
        let error = config
            .choose(Role::Daemon, &naming(Some("mastr"), None, "web7"))
            .unwrap_err()
            .to_string();
        assert!(
            error
                .ends_with("--node \"mastr\" is none of the [[node]]s in the file (master, slave)"),
            "{error}"
        );
        let error = config
            .choose(Role::Daemon, &naming(None, Some("witness"), "web7"))
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with("FAILOVERD_NODE=\"witness\" is the [witness]: start it with `failoverd witness`, not `run`"),
            "{error}"
        );
        let error = config
            .choose(Role::Witness, &naming(Some("master"), None, "web7"))
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with("a witness is the [witness] (here \"witness\")"),
            "{error}"
        );
        let two = parse(&(one_file().replace(
            "\n[witness]",
            &format!("\n[[node]]\nname = \"master.test.ru\"\naddress = \"192.0.2.9\"\npeer_address = \"192.0.2.9:8054\"\nfingerprint = \"sha256:{}\"\n\n[witness]", "4".repeat(64)),
        ) + "nodes = [\"master\", \"slave\"]\n"))
        .unwrap();
        let error = two
            .choose(Role::Daemon, &naming(None, None, "master.test.ru"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("matches several [[node]]s (master, master.test.ru)"),
            "{error}"
        );
    }

    #[test]
    fn a_file_without_cluster_or_mirror_needs_no_name() {
        let config = parse(GOOD).unwrap();
        assert_eq!(
            config
                .choose(Role::Daemon, &naming(None, None, "web7"))
                .unwrap(),
            None
        );
        assert!(config
            .choose(Role::Daemon, &naming(Some("nobody"), None, "web7"))
            .is_err());
        assert!(config.every_local().is_empty());
    }

    #[test]
    fn each_server_reads_its_own_links_from_the_same_file() {
        let config = parse(&one_file()).unwrap();
        assert_eq!(
            config.every_local(),
            [
                (Role::Daemon, "master".to_owned()),
                (Role::Daemon, "slave".to_owned()),
                (Role::Witness, "witness".to_owned())
            ]
        );
        let master = config.clone().select(Some("master".to_owned()));
        let links = master.observer_links().unwrap();
        assert_eq!(links.local, "master");
        assert_eq!(links.listen, Some("192.0.2.1:8054".parse().unwrap()));
        let peers: Vec<(&str, Option<SocketAddr>)> = links
            .peers
            .iter()
            .map(|p| (p.name.as_str(), p.address))
            .collect();
        assert_eq!(
            peers,
            [
                ("slave", Some("198.51.100.2:8054".parse().unwrap())),
                ("witness", Some("203.0.113.3:8054".parse().unwrap()))
            ]
        );
        let mirror = master.mirror_link().unwrap();
        assert_eq!(mirror.peer_node, "slave");
        assert_eq!(mirror.listen, "192.0.2.1:8055".parse().unwrap());
        assert_eq!(mirror.peer, "198.51.100.2:8055".parse().unwrap());
        assert_eq!(Some(mirror.peer_fingerprint), config.nodes[1].fingerprint);
        assert_eq!(master.local_fingerprint(), config.nodes[0].fingerprint);

        // slave binds its peer_listen (behind NAT), the others dial its peer_address.
        let slave = config.clone().select(Some("slave".to_owned()));
        assert_eq!(
            slave.observer_links().unwrap().listen,
            Some("0.0.0.0:8054".parse().unwrap())
        );
        assert_eq!(
            slave.mirror_link().unwrap().listen,
            "0.0.0.0:8055".parse().unwrap()
        );
        assert_eq!(
            slave.mirror_link().unwrap().peer,
            "192.0.2.1:8055".parse().unwrap()
        );

        let witness = config.select(Some("witness".to_owned()));
        assert!(witness.is_witness());
        assert!(witness.mirror_link().is_none());
        let links = witness.observer_links().unwrap();
        assert_eq!(links.peers.len(), 2);
        assert_eq!(links.listen, Some("203.0.113.3:8054".parse().unwrap()));
        assert_eq!(witness.local_fingerprint().unwrap().to_string(), FP3);
    }
}
