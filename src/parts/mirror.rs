//! The live mirror from the config: `[mirror]` into a running mirror, and the `mirror` check.

use std::sync::Arc;

use failover_core::{FileMirror, HealthCheck};

use crate::config::{Config, MirrorSettings};

/// A running live mirror.
pub struct Running {
    #[cfg(feature = "sync")]
    mirror: Arc<failover_sync::live::LiveMirror>,
}

impl Running {
    /// The mirror, as the `mirror` check and the status see it.
    pub fn file_mirror(&self) -> Arc<dyn FileMirror> {
        #[cfg(feature = "sync")]
        {
            self.mirror.clone()
        }
        #[cfg(not(feature = "sync"))]
        {
            unreachable!("a mirror only runs with the sync feature")
        }
    }

    /// Sends the conflicts and unmirrored paths of every run to `events` (the supervisor's
    /// inbox), so that they are damped and notified like the arbiter's own events.
    pub fn notify_to(&self, events: tokio::sync::mpsc::Sender<failover_core::Event>) {
        #[cfg(feature = "sync")]
        self.mirror.on_report(Arc::new(move |report| {
            for event in mirror_events(report) {
                if events.try_send(event).is_err() {
                    tracing::warn!("mirror: event queue full or closed; an event was dropped");
                }
            }
        }));
        #[cfg(not(feature = "sync"))]
        let _ = events;
    }

    /// Stops it (the watcher, the link, the node's loop) and waits for it.
    pub async fn shutdown(&self) {
        #[cfg(feature = "sync")]
        self.mirror.shutdown().await;
    }
}

/// What `[mirror]` asks of this node, checked: the root exists, the excludes parse. `Ok(None)`
/// without `[mirror]` or on a node outside its pair. `identity` is this server's key.
#[cfg(feature = "sync")]
pub fn live_config(
    config: &Config,
    identity: Arc<failover_core::peer::Identity>,
) -> Result<Option<failover_sync::live::LiveConfig>, String> {
    let (Some(mirror), Some(link)) = (&config.mirror, config.mirror_link()) else {
        return Ok(None);
    };
    if !mirror.root.is_dir() {
        return Err(format!(
            "root {} is not a directory (create it, or fix the path)",
            mirror.root.display()
        ));
    }
    check_excludes(config)?;
    Ok(Some(failover_sync::live::LiveConfig {
        root: mirror.root.clone(),
        node: link.node,
        peer_node: link.peer_node,
        listen: link.listen,
        peer: link.peer,
        identity,
        peer_fingerprint: link.peer_fingerprint,
        state_dir: mirror.index_dir(&config.zone.state_dir),
        excludes: mirror.exclude.clone(),
        coalesce: mirror.coalesce,
        rescan_interval: mirror.rescan_interval,
        max_delete_share: f64::from(mirror.max_delete) / 100.0,
        fsync: true,
    }))
}

/// `[mirror] exclude` parses (what `failoverd check` can tell on any server).
pub fn check_excludes(config: &Config) -> Result<(), String> {
    #[cfg(feature = "sync")]
    if let Some(mirror) = &config.mirror {
        failover_sync::Excludes::new(&mirror.exclude).map_err(|e| e.to_string())?;
    }
    #[cfg(not(feature = "sync"))]
    if config.mirror.is_some() {
        return Err("[mirror] needs failoverd built with the sync feature".to_owned());
    }
    Ok(())
}

/// `[mirror] owners` as the mirror's setting.
#[cfg(feature = "sync")]
pub fn owners(owners: crate::config::MirrorOwners) -> failover_sync::Owners {
    use crate::config::MirrorOwners;
    match owners {
        MirrorOwners::Names => failover_sync::Owners::Names,
        MirrorOwners::Numeric => failover_sync::Owners::Numeric,
        MirrorOwners::Off => failover_sync::Owners::Off,
    }
}

/// The warning of `failoverd check` when `[mirror]` keeps owners but this process may not chown.
pub fn owners_warning(config: &Config) -> Option<&'static str> {
    let mirror = config.mirror.as_ref()?;
    #[cfg(feature = "sync")]
    let can = failover_sync::can_keep_owners();
    #[cfg(not(feature = "sync"))]
    let can = true;
    (mirror.owners != crate::config::MirrorOwners::Off && !can).then_some(
        "owners and groups are not kept: the service has no CAP_CHOWN; run it as root, add CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE, or set owners = \"off\"",
    )
}

/// Starts the mirror of `[mirror]` on this node with this server's key, if it has a part in it.
pub async fn start(
    config: &Config,
    identity: Option<Arc<failover_core::peer::Identity>>,
) -> Result<Option<Running>, String> {
    #[cfg(feature = "sync")]
    {
        let Some(identity) = identity else {
            return Ok(None);
        };
        let Some(live) = live_config(config, identity)? else {
            return Ok(None);
        };
        let options = failover_sync::live::LiveOptions {
            owners: owners(config.mirror.as_ref().map(|m| m.owners).unwrap_or_default()),
            bwlimit: config
                .mirror
                .as_ref()
                .map(|m| m.bwlimit.saturating_mul(1024))
                .filter(|&rate| rate > 0),
            versions: config.mirror.as_ref().and_then(|m| m.version_policy()).map(
                |(keep_for, max_bytes)| failover_sync::VersionPolicy {
                    keep_for,
                    max_bytes,
                },
            ),
            xattrs: config
                .mirror
                .as_ref()
                .map(|m| failover_sync::XattrKinds {
                    user: m.xattrs,
                    acls: m.acls,
                })
                .unwrap_or_default(),
        };
        let listen = live.listen;
        let mirror = failover_sync::live::LiveMirror::start_with(live, options)
            .await
            .map_err(|e| {
                format!("{e} (this node's mirror listens on {listen}: its peer_address IP, or peer_listen's, at [mirror] port; is it an address of this server?)")
            })?;
        Ok(Some(Running {
            mirror: Arc::new(mirror),
        }))
    }
    #[cfg(not(feature = "sync"))]
    {
        let _ = identity;
        check_excludes(config).map(|()| None)
    }
}

/// The `mirror` check with `check`'s settings, over `mirror` (`None` when no mirror runs, e.g. in
/// `failoverd check`).
pub fn check(
    config: &Config,
    check: &MirrorSettings,
    mirror: Option<Arc<dyn FileMirror>>,
) -> Result<Arc<dyn HealthCheck>, String> {
    #[cfg(feature = "sync")]
    {
        let [a, b] = config.mirror_pair().ok_or("needs a [mirror] section")?;
        Ok(Arc::new(failover_sync::live::MirrorCheck::new(
            mirror,
            &a.name,
            &b.name,
            check
                .max_lag
                .unwrap_or(crate::config::DEFAULT_MIRROR_MAX_LAG),
        )))
    }
    #[cfg(not(feature = "sync"))]
    {
        let _ = (config, check, mirror);
        Err("kind = \"mirror\" needs failoverd built with the sync feature".to_owned())
    }
}

/// The events one mirror run is worth: its conflicts (a few named), its unmirrored paths.
pub fn mirror_events(report: &failover_core::SyncReport) -> Vec<failover_core::Event> {
    use failover_core::{Event, EventKind};
    let at = std::time::SystemTime::now();
    let mut events = Vec::new();
    if !report.conflicts.is_empty() {
        events.push(Event {
            at,
            kind: EventKind::MirrorConflicts {
                count: report.conflicts.len() as u64,
                examples: report.conflicts.iter().take(5).cloned().collect(),
            },
        });
    }
    if let Some(first) = report.failed.first() {
        events.push(Event {
            at,
            kind: EventKind::MirrorFailed {
                count: report.failed.len() as u64,
                example: first.path.display().to_string(),
                reason: first.reason.clone(),
            },
        });
    }
    events
}
