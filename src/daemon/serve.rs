//! The complete daemon as `failoverd run` runs it, for programs that add their own kinds:
//! [`DaemonBuilder`] reads the config with the registered [`Plugins`], serves until SIGINT or
//! SIGTERM, reloads on SIGHUP (a bad config is refused and the running one stays) and tells
//! systemd how it goes. `failoverd run` is `DaemonBuilder::new(path).run()`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{Config, ConfigError, Naming, Role};
use crate::plugins::Plugins;

use super::{Daemon, DaemonError};

/// Why [`DaemonBuilder::run`] stopped other than on a signal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The config file is unusable (every error names the file, the line and the key).
    #[error("{} error{} in {}; nothing was started", .errors.len(), if .errors.len() == 1 { "" } else { "s" }, .path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        errors: Vec<ConfigError>,
    },
    /// The daemon could not start (e.g. the DNS port is taken).
    #[error("{0}")]
    Start(#[from] DaemonError),
    /// The signal handlers could not be installed.
    #[error("cannot handle signals: {0}")]
    Signals(std::io::Error),
}

impl RunError {
    /// The exit status `failoverd run` ends with: 78 (sysexits' `EX_CONFIG`) for an unusable
    /// config, 1 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            RunError::Config { .. } => ExitCode::from(crate::EXIT_CONFIG),
            _ => ExitCode::FAILURE,
        }
    }

    /// Prints the error (each config error on its own line) on standard error.
    pub fn report(&self) {
        if let RunError::Config { errors, .. } = self {
            for error in errors {
                eprintln!("error: {error}");
            }
        }
        eprintln!("error: {self}");
    }
}

/// Builds and runs the complete daemon (DNS, writers, admin listener, SIGHUP reload, cluster,
/// mirror) from a config file, with the kinds a program registers.
///
/// ```no_run
/// use failover::daemon::DaemonBuilder;
/// use failover::plugins::Plugins;
///
/// # async fn run() {
/// let plugins = Plugins::new(); // .check("disk-free", ...).policy("my-policy", ...)
/// if let Err(e) = DaemonBuilder::new("/etc/failoverd/failoverd.toml")
///     .plugins(plugins)
///     .run()
///     .await
/// {
///     e.report();
///     std::process::exit(1);
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct DaemonBuilder {
    path: PathBuf,
    plugins: Plugins,
    node: Option<String>,
}

impl DaemonBuilder {
    /// The daemon of the config file at `path`, with the built-in kinds only.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            plugins: Plugins::default(),
            node: None,
        }
    }

    /// Runs as the `[[node]]` named `node` (`failoverd run --node`); `None`: `FAILOVERD_NODE`,
    /// else the node named like the host (see [`Config::choose`]).
    pub fn node(mut self, node: Option<String>) -> Self {
        self.node = node;
        self
    }

    /// Adds the kinds `plugins` registers.
    pub fn plugins(mut self, plugins: Plugins) -> Self {
        self.plugins = plugins;
        self
    }

    /// Reads and validates the config file with the registered kinds, as the node this process
    /// is told it is ([`node`](Self::node), `FAILOVERD_NODE` or the host name).
    pub fn load(&self) -> Result<Config, RunError> {
        let refused = |errors| RunError::Config {
            path: self.path.clone(),
            errors,
        };
        let config = Config::load_with(&self.path, &self.plugins).map_err(refused)?;
        let env = std::env::var("FAILOVERD_NODE").ok();
        let host = failover_core::host_name();
        let naming = Naming::from_environment(self.node.as_deref(), env.as_deref(), &host);
        let local = config
            .choose(Role::Daemon, &naming)
            .map_err(|e| refused(vec![e]))?;
        Ok(config.select(local))
    }

    /// Reads the config and starts the daemon, without the signal handling of
    /// [`run`](Self::run) (for tests and programs that stop it themselves).
    pub async fn start(&self) -> Result<Daemon, RunError> {
        let config = self.load()?;
        Ok(Daemon::start(&config).await?)
    }

    /// Serves until SIGINT or SIGTERM; SIGHUP reads the config file again and applies it (a
    /// config that fails is logged and the running one stays). `Ok` after a clean stop. Must
    /// run inside a tokio runtime.
    pub async fn run(mut self) -> Result<(), RunError> {
        use tokio::signal::unix::{signal, SignalKind};
        let config = self.load()?;
        // A reload stays the same node, whatever the new file says of host names.
        self.node = config.local.clone().or(self.node);
        let mut daemon = Daemon::start(&config).await?;
        let (mut hangup, mut terminate) = match (
            signal(SignalKind::hangup()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(hangup), Ok(terminate)) => (hangup, terminate),
            (Err(e), _) | (_, Err(e)) => {
                daemon.shutdown().await;
                return Err(RunError::Signals(e));
            }
        };
        tracing::info!(addresses = ?daemon.dns_addresses(), zone = %config.zone.name, "serving");
        // The zone is being served: systemd (Type=notify) may now consider the service started.
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
                _ = hangup.recv() => self.reload(&mut daemon).await,
            }
        }
        tracing::info!("stopping");
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        daemon.shutdown().await;
        Ok(())
    }

    /// SIGHUP: the config read again and applied, or refused with the reason.
    async fn reload(&self, daemon: &mut Daemon) {
        let mut states = vec![sd_notify::NotifyState::Reloading];
        states.extend(sd_notify::NotifyState::monotonic_usec_now().ok());
        let _ = sd_notify::notify(&states);
        match self.load() {
            Err(RunError::Config { errors, .. }) => {
                for error in &errors {
                    tracing::error!("reload refused: {error}");
                }
                tracing::error!("the running configuration stays in force");
            }
            Err(e) => {
                tracing::error!("reload refused: {e}; the running configuration stays in force")
            }
            Ok(new) => match daemon.reload(&new).await {
                Ok(()) => tracing::info!("reloaded {}", self.path.display()),
                Err(e) => {
                    tracing::error!("reload refused: {e}; the running configuration stays in force")
                }
            },
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }
}
