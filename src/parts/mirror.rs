//! The live mirror from the config: `[mirror]` into a running mirror, and the `mirror` check.

use std::sync::Arc;

use failover_core::{FileMirror, HealthCheck};

use crate::config::{Config, MirrorConfig, MirrorSettings};

/// A running live mirror and the section it was started from.
pub struct Running {
    #[cfg(feature = "sync")]
    mirror: Arc<failover_sync::live::LiveMirror>,
    section: MirrorConfig,
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

    /// The `[mirror]` section it runs with.
    pub fn section(&self) -> &MirrorConfig {
        &self.section
    }

    /// Stops it (the watcher, the link, the node's loop) and waits for it.
    pub async fn shutdown(&self) {
        #[cfg(feature = "sync")]
        self.mirror.shutdown().await;
    }
}

/// What `[mirror]` asks for, checked: the root exists, the key and certificate load.
#[cfg(feature = "sync")]
pub fn live_config(config: &Config) -> Result<Option<failover_sync::live::LiveConfig>, String> {
    let Some(mirror) = &config.mirror else {
        return Ok(None);
    };
    if !mirror.root.is_dir() {
        return Err(format!(
            "root {} is not a directory (create it, or fix the path)",
            mirror.root.display()
        ));
    }
    let identity =
        failover_core::peer::Identity::load(&mirror.certificate, &mirror.key).map_err(|e| {
            format!(
                "{e} (make them with `failoverd keygen --dir {} --name {}`)",
                mirror
                    .certificate
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                mirror.node
            )
        })?;
    let peer_fingerprint = mirror
        .peer_fingerprint
        .parse()
        .map_err(|e| format!("peer_fingerprint: {e}"))?;
    failover_sync::Excludes::new(&mirror.exclude).map_err(|e| e.to_string())?;
    Ok(Some(failover_sync::live::LiveConfig {
        root: mirror.root.clone(),
        node: mirror.node.clone(),
        peer_node: config.mirror_peer().ok_or("no peer_node")?,
        listen: mirror.listen,
        peer: mirror.peer,
        identity: Arc::new(identity),
        peer_fingerprint,
        state_dir: mirror.index_dir(&config.zone.state_dir),
        excludes: mirror.exclude.clone(),
        coalesce: mirror.coalesce,
        rescan_interval: mirror.rescan_interval,
        max_delete_share: f64::from(mirror.max_delete) / 100.0,
        fsync: true,
    }))
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

/// Without the `sync` feature there is no mirror.
#[cfg(not(feature = "sync"))]
pub fn live_config(config: &Config) -> Result<Option<()>, String> {
    match config.mirror {
        Some(_) => Err("[mirror] needs failoverd built with the sync feature".to_owned()),
        None => Ok(None),
    }
}

/// Starts the mirror of `[mirror]`, if there is one.
pub async fn start(config: &Config) -> Result<Option<Running>, String> {
    #[cfg(feature = "sync")]
    {
        let Some(live) = live_config(config)? else {
            return Ok(None);
        };
        let options = failover_sync::live::LiveOptions {
            owners: owners(config.mirror.as_ref().map(|m| m.owners).unwrap_or_default()),
        };
        let mirror = failover_sync::live::LiveMirror::start_with(live, options)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Some(Running {
            mirror: Arc::new(mirror),
            section: config.mirror.clone().ok_or("no [mirror]")?,
        }))
    }
    #[cfg(not(feature = "sync"))]
    {
        live_config(config).map(|_| None)
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
        let section = config.mirror.as_ref().ok_or("needs a [mirror] section")?;
        Ok(Arc::new(failover_sync::live::MirrorCheck::new(
            mirror,
            &section.node,
            &config.mirror_peer().unwrap_or_default(),
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
