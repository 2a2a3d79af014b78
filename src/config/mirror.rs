//! `[mirror]`: the live mirror of a directory (the web root) with the peer node.

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
    /// The two nodes whose roots are mirrored (default: the two `[[node]]`s when there are two).
    #[serde(default)]
    pub nodes: Vec<String>,
    /// The port the mirror listens on, on each node's peer-link address.
    #[serde(default = "default_mirror_port")]
    pub port: u16,
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
    /// Most this node sends its peer, in KiB per second, as rsync's `--bwlimit` (none when
    /// absent or 0).
    #[serde(default)]
    pub bwlimit: u64,
    /// Whether what the mirror replaces or deletes on this node is kept in the versions area
    /// (`state_dir/versions/<node>/`), for `failoverd mirror versions`.
    #[serde(default = "default_versions")]
    pub versions: bool,
    /// How long a kept version stays.
    #[serde(default = "default_keep_versions_for", with = "humantime_serde")]
    pub keep_versions_for: Duration,
    /// Most the versions of this node take, in MiB; past it the oldest go.
    #[serde(default = "default_versions_max_size_mb")]
    pub versions_max_size_mb: u64,
    /// Whether `user.*` extended attributes are mirrored (as rsync's `-X`).
    #[serde(default)]
    pub xattrs: bool,
    /// Whether POSIX ACLs are mirrored (as rsync's `-A`).
    #[serde(default)]
    pub acls: bool,
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

fn default_mirror_port() -> u16 {
    super::defaults::DEFAULT_MIRROR_PORT
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
fn default_versions() -> bool {
    true
}
fn default_keep_versions_for() -> Duration {
    super::defaults::DEFAULT_KEEP_VERSIONS_FOR
}
fn default_versions_max_size_mb() -> u64 {
    super::defaults::DEFAULT_VERSIONS_MAX_BYTES >> 20
}

impl MirrorConfig {
    /// Makes its index directory absolute, relative to `base`; it goes under `state_dir`
    /// (already absolute) unless set.
    pub(super) fn resolve(&mut self, base: &Path, state_dir: &Path) {
        match &mut self.state_dir {
            Some(dir) => absolute(base, dir),
            None => self.state_dir = Some(self.index_dir(state_dir)),
        }
    }

    /// The versions policy of `versions`, `keep_versions_for` and `versions_max_size_mb`
    /// (`None`: versions off).
    pub fn version_policy(&self) -> Option<(Duration, u64)> {
        self.versions.then(|| {
            (
                self.keep_versions_for,
                self.versions_max_size_mb.saturating_mul(1 << 20),
            )
        })
    }

    /// Where the mirror's index is kept: `state_dir`, else `mirror` in `[zone] state_dir`.
    pub fn index_dir(&self, zone_state_dir: &Path) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| zone_state_dir.join("mirror"))
    }
}

impl Config {
    /// The two nodes of `[mirror]`: `nodes`, or the two `[[node]]`s when there are two.
    pub fn mirror_pair(&self) -> Option<[&NodeConfig; 2]> {
        let mirror = self.mirror.as_ref()?;
        let pair: Vec<&NodeConfig> = if mirror.nodes.is_empty() {
            self.nodes.iter().collect()
        } else {
            mirror
                .nodes
                .iter()
                .filter_map(|name| self.nodes.iter().find(|n| &n.name == name))
                .collect()
        };
        match pair.as_slice() {
            [a, b] if a.name != b.name => Some([a, b]),
            _ => None,
        }
    }
}

/// Checks `[mirror]` (and that a `mirror` check has one): its nodes, their links, its limits.
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
    let names = || {
        config
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (i, name) in mirror.nodes.iter().enumerate() {
        if !config.nodes.iter().any(|n| &n.name == name) {
            v.fail(
                &[Key("mirror"), Key("nodes"), Index(i)],
                format!("{name:?} is not a [[node]] (expected one of: {})", names()),
            );
        }
    }
    match config.mirror_pair() {
        Some(pair) => {
            for node in pair {
                let i = config
                    .nodes
                    .iter()
                    .position(|n| n.name == node.name)
                    .expect("a node of the pair is one of the nodes");
                if config.cluster.is_none() {
                    // With [cluster], every node needs them already (and says so once).
                    super::cluster::require_link(v, &[Key("node"), Index(i)], node, "[mirror]");
                }
                if node.peer_address.is_some_and(|a| a.port() == mirror.port) {
                    v.fail(&at("port"), format!("{} is also node {:?}'s peer_address port: the mirror needs a port of its own (e.g. 8055)", mirror.port, node.name));
                }
            }
        }
        None if mirror.nodes.is_empty() => v.fail(
            &at("root"),
            format!(
                "set nodes = [\"a\", \"b\"] in [mirror]: the two nodes whose roots are mirrored (there are {} [[node]]s: {})",
                config.nodes.len(),
                names()
            ),
        ),
        None => v.fail(
            &at("nodes"),
            format!("expected two different nodes (of: {})", names()),
        ),
    }
    validate_limits(mirror, v);
    if mirror.port == 0 {
        v.fail(&at("port"), "port 0 (expected e.g. 8055)");
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
    if mirror.versions && mirror.keep_versions_for.is_zero() {
        v.fail(
            &at("keep_versions_for"),
            "0 keeps nothing (expected e.g. \"30d\", or versions = false to keep none)",
        );
    }
    if mirror.versions && mirror.versions_max_size_mb == 0 {
        v.fail(
            &at("versions_max_size_mb"),
            "0 keeps nothing (expected e.g. 1024, or versions = false to keep none)",
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
