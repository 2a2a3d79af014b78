//! `failoverd mirror versions`: list, restore and prune what the mirror replaced or deleted on
//! this node (its versions area, `state_dir/versions/<node>/`).
//!
//! A restore writes the version back into this node's root as an edit would (temp file, then
//! rename); the running mirror sees the change and carries it to the other node, so one
//! restore undoes a destructive edit on both servers.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use failover_sync::{human_bytes, RelPath, Version, VersionPolicy, Versions};

use crate::config::Config;

/// One node's mirrored root and its versions area.
pub struct VersionsPlace {
    /// The mirrored directory.
    pub root: PathBuf,
    /// The node's name.
    pub node: String,
    /// Its versions.
    pub versions: Versions,
}

impl VersionsPlace {
    /// The root and versions of this node's `[mirror]` (the config loaded for this node).
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let Some(mirror) = &config.mirror else {
            return Err("the config has no [mirror] section: there are no versions".to_owned());
        };
        let Some(link) = config.mirror_link() else {
            return Err(format!(
                "this server ({}) is not one of the two nodes of [mirror]; run the command on \
                 one of them, or name it with --node",
                config.local.as_deref().unwrap_or("no node chosen")
            ));
        };
        let (keep_for, max_bytes) = mirror.version_policy().unwrap_or((
            crate::config::defaults::DEFAULT_KEEP_VERSIONS_FOR,
            crate::config::defaults::DEFAULT_VERSIONS_MAX_BYTES,
        ));
        let state_dir = mirror.index_dir(&config.zone.state_dir);
        Ok(Self::new(
            &mirror.root,
            &state_dir,
            &link.node,
            VersionPolicy {
                keep_for,
                max_bytes,
            },
        ))
    }

    /// The versions of `node` in `state_dir`, restored into `root`.
    pub fn new(root: &Path, state_dir: &Path, node: &str, policy: VersionPolicy) -> Self {
        VersionsPlace {
            root: root.to_path_buf(),
            node: node.to_owned(),
            versions: Versions::new(state_dir, node, policy),
        }
    }

    /// `list [PATH]`: one line per version (path, version, why, size, age), oldest first for
    /// each path.
    pub fn list(&self, path: Option<&str>) -> Result<String, String> {
        let under = path.map(relative).transpose()?;
        let found = self
            .versions
            .list(under.as_ref())
            .map_err(|e| e.to_string())?;
        if found.is_empty() {
            return Ok(format!(
                "no versions{} in {}\n",
                path.map(|p| format!(" of {p}")).unwrap_or_default(),
                self.versions.dir().display()
            ));
        }
        let now = SystemTime::now();
        let mut out = String::new();
        for version in &found {
            let age = now
                .duration_since(version.kept_at)
                .map(|d| std::time::Duration::from_secs(d.as_secs()))
                .unwrap_or_default();
            out.push_str(&format!(
                "{}  {}  {}  {} ago\n",
                version.path,
                version.name,
                human_bytes(version.size),
                humantime::format_duration(age)
            ));
        }
        Ok(out)
    }

    /// `restore PATH [VERSION]`: the version named (or a unique start of its name), else the
    /// newest, put back at its path.
    pub fn restore(&self, path: &str, version: Option<&str>) -> Result<String, String> {
        let rel = relative(path)?;
        let found: Vec<Version> = self
            .versions
            .list(Some(&rel))
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|v| v.path == rel)
            .collect();
        let chosen = match version {
            None => found.last(),
            Some(wanted) => {
                let matching: Vec<&Version> = found
                    .iter()
                    .filter(|v| v.name.starts_with(wanted))
                    .collect();
                if matching.len() > 1 {
                    return Err(format!(
                        "{wanted:?} names {} versions of {path}; give more of the name \
                         (failoverd mirror versions list {path})",
                        matching.len()
                    ));
                }
                matching.first().copied()
            }
        };
        let Some(chosen) = chosen else {
            return Err(format!(
                "no version{} of {path} on {} (failoverd mirror versions list shows what there is)",
                version.map(|v| format!(" {v:?}")).unwrap_or_default(),
                self.node
            ));
        };
        self.versions
            .restore(&self.root, chosen)
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "restored {path} on {} from {} (the mirror carries it to the other node as an edit; \
             what was there is kept as a version)\n",
            self.node, chosen.name
        ))
    }

    /// `prune`: applies the retention now.
    pub fn prune(&self) -> Result<String, String> {
        let pruned = self
            .versions
            .prune(SystemTime::now())
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "removed {} versions ({}); kept {} ({})\n",
            pruned.removed,
            human_bytes(pruned.removed_bytes),
            pruned.kept,
            human_bytes(pruned.kept_bytes)
        ))
    }
}

/// A path relative to the root as the operator types it (a leading `/` or `./` is dropped).
fn relative(path: &str) -> Result<RelPath, String> {
    let trimmed = path.trim_start_matches("./").trim_start_matches('/');
    let trimmed = trimmed.trim_end_matches('/');
    RelPath::new(trimmed).map_err(|e| {
        format!("{e} (expected a path relative to the mirrored root, e.g. site/index.html)")
    })
}
