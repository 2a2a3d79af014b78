//! `[mirror]`: the live mirror of a directory (the web root) with the peer node.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::check::CheckKind;
use super::error::{Seg, Validator};
use super::probe::NodeConfig;
use super::{absolute, Config};

/// `[mirror]`: the live mirror of a directory (the web root) with the peer node.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// The directory mirrored (must exist).
    pub root: PathBuf,
    /// This node's name: one of the `[[node]]`s.
    pub node: String,
    /// The other node's name (default: the other `[[node]]` when there are two).
    pub peer_node: Option<String>,
    /// Where this node listens for the other (`"0.0.0.0:7480"`).
    pub listen: SocketAddr,
    /// Where the other node listens (`"10.2.0.2:7480"`).
    pub peer: SocketAddr,
    /// This node's certificate, from `failoverd keygen` (default `node.crt` beside the config).
    #[serde(default = "default_mirror_certificate")]
    pub certificate: PathBuf,
    /// Its key (default `node.key` beside the config).
    #[serde(default = "default_mirror_key")]
    pub key: PathBuf,
    /// The other node's certificate fingerprint (`"sha256:..."`, what keygen printed there).
    pub peer_fingerprint: String,
    /// Where the mirror's index is kept (default `[zone] state_dir`/mirror).
    pub state_dir: Option<PathBuf>,
    /// Paths not mirrored, gitignore syntax (`["*.log", "/cache/"]`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Most a change waits for the changes after it before a run starts.
    #[serde(default = "default_mirror_coalesce", with = "humantime_serde")]
    pub coalesce: Duration,
    /// Time between two full runs (a rescan of both trees).
    #[serde(default = "default_mirror_rescan", with = "humantime_serde")]
    pub rescan_interval: Duration,
    /// Share (percent) of the files of the last sync one run may delete.
    #[serde(default = "default_mirror_max_delete")]
    pub max_delete: u32,
    /// How owners and groups are kept (when the mirror may chown).
    #[serde(default)]
    pub owners: MirrorOwners,
}

/// `[mirror] owners`: how owners and groups are kept across the mirror.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MirrorOwners {
    /// By user and group name, the number when a side has no name for it (rsync's default).
    #[default]
    Names,
    /// By number, whatever the names (rsync's `--numeric-ids`).
    Numeric,
    /// Not kept: files belong to the user the mirror runs as.
    Off,
}

impl MirrorOwners {
    /// The word in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Names => "names",
            Self::Numeric => "numeric",
            Self::Off => "off",
        }
    }
}

fn default_mirror_certificate() -> PathBuf {
    PathBuf::from("node.crt")
}
fn default_mirror_key() -> PathBuf {
    PathBuf::from("node.key")
}
fn default_mirror_coalesce() -> Duration {
    super::defaults::DEFAULT_COALESCE
}
fn default_mirror_rescan() -> Duration {
    super::defaults::DEFAULT_RESCAN_INTERVAL
}
fn default_mirror_max_delete() -> u32 {
    super::defaults::max_delete_percent()
}

impl MirrorConfig {
    /// Makes its files absolute, relative to `base`; the index goes under `state_dir` (already
    /// absolute) unless set.
    pub(super) fn resolve(&mut self, base: &Path, state_dir: &Path) {
        absolute(base, &mut self.certificate);
        absolute(base, &mut self.key);
        match &mut self.state_dir {
            Some(dir) => absolute(base, dir),
            None => self.state_dir = Some(self.index_dir(state_dir)),
        }
    }

    /// Where the mirror's index is kept: `state_dir`, else `mirror` in `[zone] state_dir`.
    pub fn index_dir(&self, zone_state_dir: &Path) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| zone_state_dir.join("mirror"))
    }
}

impl Config {
    /// The `[mirror]` peer's node name: `peer_node`, or the other of two `[[node]]`s.
    pub fn mirror_peer(&self) -> Option<String> {
        let mirror = self.mirror.as_ref()?;
        if let Some(peer) = &mirror.peer_node {
            return Some(peer.clone());
        }
        let others: Vec<&NodeConfig> = self
            .nodes
            .iter()
            .filter(|n| n.name != mirror.node)
            .collect();
        match others.as_slice() {
            [one] => Some(one.name.clone()),
            _ => None,
        }
    }
}

/// Checks `[mirror]` (and that a `mirror` check has one): its nodes, key, limits and paths.
pub(super) fn validate(config: &Config, v: &mut Validator<'_>) {
    use Seg::{Index, Key};
    for (i, check) in config.checks.iter().enumerate() {
        if matches!(check.kind, CheckKind::Mirror(_)) && config.mirror.is_none() {
            v.fail(
                &[Key("check"), Index(i), Key("kind")],
                "kind = \"mirror\" needs a [mirror] section",
            );
        }
    }
    let Some(mirror) = &config.mirror else { return };
    let at = |key| [Key("mirror"), Key(key)];
    let known = config.nodes.iter().any(|n| n.name == mirror.node);
    if !known {
        v.fail(
            &at("node"),
            format!(
                "{:?} is not a [[node]] (expected one of: {})",
                mirror.node,
                config
                    .nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    match config.mirror_peer() {
        None if known => v.fail(
            &at("peer_node"),
            "set peer_node: the other node's name (needed when there are not exactly two [[node]]s)",
        ),
        Some(peer) if peer == mirror.node => {
            v.fail(&at("peer_node"), "the peer must be another node")
        }
        _ => {}
    }
    if let Err(e) = mirror
        .peer_fingerprint
        .parse::<failover_core::peer::Fingerprint>()
    {
        v.fail(&at("peer_fingerprint"), format!("{e} on the peer"));
    }
    validate_limits(mirror, v);
    if mirror.listen.port() == 0 || mirror.peer.port() == 0 {
        v.fail(&at("listen"), "port 0 (expected e.g. \"0.0.0.0:7480\")");
    }
    if !mirror.root.is_absolute() {
        v.fail(
            &at("root"),
            "must be an absolute path (e.g. \"/var/www/site\")",
        );
    }
}

/// `coalesce`, `rescan_interval` and `max_delete` within their ranges.
fn validate_limits(mirror: &MirrorConfig, v: &mut Validator<'_>) {
    let at = |key| [Seg::Key("mirror"), Seg::Key(key)];
    if mirror.coalesce.is_zero() || mirror.coalesce > Duration::from_secs(60) {
        v.fail(
            &at("coalesce"),
            "out of range (expected 1ms to 60s, e.g. \"100ms\")",
        );
    }
    if mirror.rescan_interval < Duration::from_secs(60) {
        v.fail(
            &at("rescan_interval"),
            "below a minute: full rescans that often keep both disks busy (expected e.g. \"1h\")",
        );
    }
    if mirror.max_delete == 0 || mirror.max_delete > 100 {
        v.fail(
            &at("max_delete"),
            format!(
                "{} is out of range (expected a percentage, 1 to 100)",
                mirror.max_delete
            ),
        );
    }
}
