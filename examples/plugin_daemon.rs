//! A complete failover daemon with a check and a policy of its own: everything `failoverd run`
//! does (DNS, writers, admin listener, SIGHUP reload, cluster, mirror), plus
//!
//! - `[[check]] kind = "disk-free"`: asks each node's small HTTP endpoint how much disk is free
//!   (`GET http://NODE:PORT/disk.json` → `{"free_mb": 1234}`) and counts the node down below
//!   `min_free_mb` (a full disk breaks uploads and sessions long before the web server stops
//!   answering);
//! - `[policy] kind = "maintenance-window"`: active-passive in `order`, except that during a daily
//!   window (UTC, e.g. the primary's nightly backup) the second node is preferred while it is up.
//!
//! Run: `cargo run --example plugin_daemon -- --config FILE` (see `tests/plugins_e2e.rs` for a
//! config); SIGHUP reloads it, SIGINT/SIGTERM stop it.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use failover::core::{
    ClusterView, Decision, FailureClass, HealthCheck, NodeName, Outcome, Policy, Target,
};
use failover::daemon::DaemonBuilder;
use failover::plugins::{PluginContext, Plugins};
use serde::Deserialize;

/// `[[check]] kind = "disk-free"`: its own keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiskFreeSettings {
    /// The port of the node's endpoint.
    port: u16,
    /// Its path (default `/disk.json`).
    #[serde(default = "default_path")]
    path: String,
    /// Down below this many MiB free.
    min_free_mb: u64,
}

fn default_path() -> String {
    "/disk.json".to_owned()
}

/// What the endpoint answers.
#[derive(Deserialize)]
struct DiskReport {
    free_mb: u64,
}

struct DiskFree {
    settings: DiskFreeSettings,
    client: reqwest::Client,
}

#[async_trait::async_trait]
impl HealthCheck for DiskFree {
    fn kind(&self) -> &'static str {
        "disk-free"
    }

    async fn probe(&self, target: &Target) -> Outcome {
        let host = match target.address {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        let url = format!("http://{host}:{}{}", self.settings.port, self.settings.path);
        let response = match self.client.get(&url).timeout(target.timeout).send().await {
            Ok(response) if response.status().is_success() => response,
            Ok(response) => {
                return Outcome::failed(
                    FailureClass::Unhealthy,
                    format!("{url}: HTTP {}", response.status()),
                )
            }
            Err(e) if e.is_timeout() => {
                return Outcome::failed(FailureClass::Timeout, e.to_string())
            }
            Err(e) => return Outcome::failed(FailureClass::Unreachable, e.to_string()),
        };
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => return Outcome::failed(FailureClass::Unreachable, format!("{url}: {e}")),
        };
        match serde_json::from_slice::<DiskReport>(&body) {
            Ok(report) if report.free_mb >= self.settings.min_free_mb => {
                Outcome::healthy(format!("{} MiB free", report.free_mb))
            }
            Ok(report) => Outcome::failed(
                FailureClass::Unhealthy,
                format!(
                    "{} MiB free, below min_free_mb = {}",
                    report.free_mb, self.settings.min_free_mb
                ),
            ),
            Err(e) => Outcome::failed(
                FailureClass::Unhealthy,
                format!("{url}: expected {{\"free_mb\": N}}: {e}"),
            ),
        }
    }
}

/// `[policy] kind = "maintenance-window"`: its own keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowSettings {
    /// Nodes by preference (default: the policy's nodes in config order).
    #[serde(default)]
    order: Vec<String>,
    /// The daily window, UTC, `"HH:MM-HH:MM"` (it may cross midnight).
    window: String,
}

/// Minutes since midnight of `"HH:MM"`.
fn minutes(text: &str) -> Result<u64, String> {
    let (hours, mins) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not HH:MM"))?;
    let hours: u64 = hours
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not HH:MM"))?;
    let mins: u64 = mins
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not HH:MM"))?;
    if hours > 23 || mins > 59 {
        return Err(format!("{text:?} is not a time of day"));
    }
    Ok(hours * 60 + mins)
}

struct MaintenanceWindow {
    order: Vec<NodeName>,
    /// Minutes since midnight UTC: [start, end).
    start: u64,
    end: u64,
}

impl MaintenanceWindow {
    fn new(settings: WindowSettings, context: &PluginContext<'_>) -> Result<Self, String> {
        let (start, end) = settings
            .window
            .split_once('-')
            .ok_or_else(|| format!("window: {:?} is not HH:MM-HH:MM", settings.window))?;
        let order: Vec<NodeName> = if settings.order.is_empty() {
            context.nodes.to_vec()
        } else {
            settings.order.iter().map(NodeName::new).collect()
        };
        if let Some(unknown) = order.iter().find(|n| !context.nodes.contains(n)) {
            return Err(format!("order: unknown node {unknown}"));
        }
        if order.len() < 2 {
            return Err(
                "order: needs two nodes (the preferred one and the one for the window)".into(),
            );
        }
        Ok(Self {
            order,
            start: minutes(start).map_err(|e| format!("window: {e}"))?,
            end: minutes(end).map_err(|e| format!("window: {e}"))?,
        })
    }

    /// Whether `minute` of the day is in the window, and how long until the window opens or
    /// closes.
    fn at(&self, minute: u64) -> (bool, u64) {
        let inside = if self.start <= self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        };
        let edge = if inside { self.end } else { self.start };
        (inside, (edge + 24 * 60 - minute) % (24 * 60))
    }
}

impl Policy for MaintenanceWindow {
    fn name(&self) -> &str {
        "maintenance-window"
    }

    fn primary(&self) -> Option<&NodeName> {
        self.order.first()
    }

    fn decide(&mut self, view: &ClusterView<'_>) -> Decision {
        let seconds = view
            .now
            .wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (inside, until_edge) = self.at(seconds / 60 % (24 * 60));
        let mut preference: Vec<&NodeName> = self.order.iter().collect();
        if inside {
            preference.swap(0, 1);
        }
        let chosen = preference.into_iter().find(|n| view.is_up(n)).cloned();
        // Decide again when the window opens or closes, even if no probe changes anything.
        let to_edge = Duration::from_secs(until_edge.max(1) * 60 - seconds % 60);
        Decision {
            answer: chosen.into_iter().collect(),
            recheck_at: Some(view.now.mono + to_edge),
        }
    }
}

/// The kinds this daemon adds to failoverd's.
fn plugins() -> Plugins {
    Plugins::new()
        .check("disk-free", |settings: DiskFreeSettings, _context| {
            failover::core::install_crypto_provider();
            let client = reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(|e| format!("http client: {e}"))?;
            let check: Arc<dyn HealthCheck> = Arc::new(DiskFree { settings, client });
            Ok(check)
        })
        .policy("maintenance-window", |settings: WindowSettings, context| {
            let policy: Box<dyn Policy> = Box::new(MaintenanceWindow::new(settings, context)?);
            Ok(policy)
        })
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let config = match (args.next().as_deref(), args.next()) {
        (Some("--config" | "-c"), Some(path)) => path,
        _ => {
            eprintln!("usage: plugin_daemon --config FILE");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(DaemonBuilder::new(config).plugins(plugins()).run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.report();
            e.exit_code()
        }
    }
}
