//! The admin listener: `/status` (JSON), `/status.txt`, `/metrics` (Prometheus), `/` (a page for
//! people) and the authenticated override endpoints under `/admin/`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use failover_core::{AdminCommand, Commander, Health, NodeName, Override, StatusReport};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

mod dns;
pub mod history;
mod metrics;
mod page;
mod tls;

pub use dns::{DnsStatus, TransportCounts};
pub use metrics::{render_metrics, Metrics, METRIC_PREFIX};
pub use page::render_html;
pub use tls::AdminTls;

/// Most admin connections open at once.
const MAX_CONNECTIONS: usize = 64;

/// What the admin listener serves from.
#[derive(Clone)]
pub struct AdminState {
    /// The supervisor's status.
    pub status: watch::Receiver<StatusReport>,
    /// The supervisor's command line.
    pub commander: Commander,
    /// The zone's name and a way to read its serial.
    pub zone_name: String,
    /// The served zone's current serial.
    pub serial: std::sync::Arc<dyn Fn() -> u32 + Send + Sync>,
    /// The token overrides need; `None` refuses every override.
    pub token: Option<String>,
    /// The built-in DNS server's counters (`None` without `[zone] listen`).
    pub dns_stats: Option<failover_dns::StatsReader>,
    /// The running mirror, for its counters and lag (`None` without one on this node).
    pub mirror: Option<std::sync::Arc<dyn failover_core::FileMirror>>,
    /// The daemon's registry, kept across reloads.
    pub metrics: std::sync::Arc<Metrics>,
    /// The recent history the page draws, kept across reloads.
    pub history: std::sync::Arc<history::History>,
}

/// The JSON document at `/status`.
#[derive(Serialize)]
pub struct StatusDocument<'a> {
    /// The zone and its serial.
    pub zone: ZoneStatus,
    /// Everything the supervisor knows.
    #[serde(flatten)]
    pub report: &'a StatusReport,
    /// The built-in DNS server's counters (none when it does not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsStatus>,
}

/// The zone part of `/status`.
#[derive(Serialize)]
pub struct ZoneStatus {
    /// Its name.
    pub name: String,
    /// Its SOA serial now.
    pub serial: u32,
}

/// A running admin listener; stopped on [`AdminServer::shutdown`] or drop.
#[derive(Debug)]
pub struct AdminServer {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl AdminServer {
    /// Binds `listen` and serves `state`, over HTTPS with `tls`.
    pub async fn start(
        listen: SocketAddr,
        state: AdminState,
        tls: Option<AdminTls>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("admin listener cannot bind {listen}: {e} (is another failoverd running? change [admin] listen)"),
            )
        })?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: do not spin.
                        tracing::warn!("admin listener: accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Reap finished connections, and keep a bound on the open ones.
                while connections.try_join_next().is_some() {}
                if connections.len() >= MAX_CONNECTIONS {
                    tracing::warn!(
                        "admin listener: {MAX_CONNECTIONS} connections open; refusing one"
                    );
                    drop(stream);
                    continue;
                }
                connections.spawn(tls::serve(stream, tls.clone(), state.clone()));
            }
        });
        Ok(Self { address, task })
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops listening and drops every connection.
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

fn json_error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    reply(
        status,
        "application/json",
        serde_json::json!({ "error": message }).to_string(),
    )
}

async fn handle(request: Request<Incoming>, state: &AdminState) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    match (request.method(), path.as_str()) {
        (&Method::GET, "/") => {
            let report = state.status.borrow().clone();
            reply(
                StatusCode::OK,
                "text/html; charset=utf-8",
                render_html(state, &report),
            )
        }
        (&Method::GET, "/status") => {
            let report = state.status.borrow().clone();
            let document = StatusDocument {
                zone: ZoneStatus {
                    name: state.zone_name.clone(),
                    serial: (state.serial)(),
                },
                report: &report,
                dns: state.dns_stats.as_ref().map(|s| DnsStatus::from(&s.read())),
            };
            match serde_json::to_string_pretty(&document) {
                Ok(json) => reply(StatusCode::OK, "application/json", json),
                Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
        (&Method::GET, "/history.json") => {
            let view = state.history.view(std::time::SystemTime::now());
            match serde_json::to_string(&view) {
                Ok(json) => reply(StatusCode::OK, "application/json", json),
                Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
        (&Method::GET, "/status.txt") => {
            let report = state.status.borrow().clone();
            reply(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                render_text(state, &report),
            )
        }
        (&Method::GET, "/metrics") => {
            let report = state.status.borrow().clone();
            match render_metrics(state, &report) {
                Ok(text) => reply(
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    text,
                ),
                Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
        (&Method::POST, admin) if admin.starts_with("/admin/") => {
            if let Some(refusal) = authenticate(&request, state) {
                return refusal;
            }
            // Drain the (ignored) body so keep-alive connections stay usable.
            let _ = http_body_util::Limited::new(request.into_body(), 64 * 1024)
                .collect()
                .await;
            let command = match parse_command(&admin["/admin/".len()..]) {
                Ok(command) => command,
                Err(message) => return json_error(StatusCode::NOT_FOUND, &message),
            };
            match state.commander.command(command.clone()).await {
                Ok(()) => reply(
                    StatusCode::OK,
                    "application/json",
                    serde_json::json!({ "done": describe(&command) }).to_string(),
                ),
                Err(e) => json_error(StatusCode::BAD_REQUEST, &e.to_string()),
            }
        }
        (_, "/" | "/status" | "/status.txt" | "/metrics" | "/history.json") => {
            json_error(StatusCode::METHOD_NOT_ALLOWED, "use GET")
        }
        _ => json_error(
            StatusCode::NOT_FOUND,
            "not found (try /, /status, /status.txt, /history.json, /metrics, POST /admin/...)",
        ),
    }
}

/// `None` when the request carries the admin token; the refusal otherwise.
fn authenticate(request: &Request<Incoming>, state: &AdminState) -> Option<Response<Full<Bytes>>> {
    let Some(token) = &state.token else {
        return Some(json_error(
            StatusCode::FORBIDDEN,
            "overrides are disabled: set [admin] token_file in the config",
        ));
    };
    let given = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if constant_time_eq(given.as_bytes(), token.as_bytes()) {
        None
    } else {
        tracing::warn!("admin request refused: missing or wrong token");
        Some(json_error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token (send Authorization: Bearer <the token in [admin] token_file>)",
        ))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `drain/master`, `force-down/master/http`, `failback`, ...
pub fn parse_command(path: &str) -> Result<AdminCommand, String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let node = |name: &str| NodeName::new(name);
    let set = |what, set| AdminCommand::Override { what, set };
    let force = |n: &str, c: &str, health| Override::Force {
        node: node(n),
        check: c.into(),
        health,
    };
    Ok(match parts.as_slice() {
        ["drain", n] => set(Override::Drain { node: node(n) }, true),
        ["undrain", n] => set(Override::Drain { node: node(n) }, false),
        ["force-up", n, c] => set(force(n, c, Health::Up), true),
        ["force-down", n, c] => set(force(n, c, Health::Down), true),
        // Clearing removes either forced verdict.
        ["unforce", n, c] => set(force(n, c, Health::Unknown), false),
        ["failback"] => AdminCommand::Failback,
        _ => {
            return Err(format!(
                "unknown admin command {path:?} (expected drain/NODE, undrain/NODE, force-up/NODE/CHECK, force-down/NODE/CHECK, unforce/NODE/CHECK, failback)"
            ))
        }
    })
}

fn describe(command: &AdminCommand) -> String {
    match command {
        AdminCommand::Override { what, set: true } => what.to_string(),
        AdminCommand::Override {
            what: Override::Force { node, check, .. },
            set: false,
        } => format!("unforce {check} on {node}"),
        AdminCommand::Override { what, set: false } => format!("undo {what}"),
        AdminCommand::Failback => "failback".to_owned(),
    }
}

fn since(at: Option<std::time::SystemTime>) -> String {
    at.map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|| "-".to_owned())
}

fn answer_text(report: &StatusReport) -> String {
    match &report.publication {
        Some(publication) => format!(
            "{} ({})",
            publication
                .nodes
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            publication
                .answers
                .first()
                .map(|a| a
                    .addresses
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        ),
        None => "nothing published yet (waiting for first verdicts)".to_owned(),
    }
}

fn node_state(node: &failover_core::NodeStatus) -> String {
    let mut state = node.health.to_string();
    if node.drained {
        state.push_str(", drained");
    }
    state
}

fn check_state(check: &failover_core::CheckStatus) -> String {
    let mut state = check.health.to_string();
    if let Some(forced) = check.forced {
        let _ = write!(state, " (forced {forced})");
    }
    if check.flapping {
        state.push_str(" (flapping)");
    }
    state
}

fn last_error(check: &failover_core::CheckStatus) -> String {
    match &check.last_outcome {
        Some(failover_core::Outcome::Failed { error, .. }) => error.clone(),
        Some(failover_core::Outcome::Healthy { detail }) => detail.clone(),
        None => "-".to_owned(),
    }
}

/// The terminal view (`failoverd status`).
pub fn render_text(state: &AdminState, report: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "zone {} serial {}   policy {}{}",
        state.zone_name,
        (state.serial)(),
        report.cluster.policy,
        if report.cluster.all_down {
            "   EVERY NODE IS DOWN"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "answer: {}", answer_text(report));
    for node in &report.cluster.nodes {
        let _ = writeln!(
            out,
            "\nnode {} [{}] since {}",
            node.node,
            node_state(node),
            since(node.since)
        );
        for check in &node.checks {
            let _ = writeln!(
                out,
                "  {:<12} {:<18} fails {:>2}  oks {:>3}  changed {}  {}{}",
                check.check.as_str(),
                check_state(check),
                check.consecutive_failures,
                check.consecutive_successes,
                since(check.changed_at),
                last_error(check),
                if check.critical {
                    ""
                } else {
                    "  (not critical)"
                }
            );
        }
    }
    for writer in &report.writers {
        let _ = writeln!(
            out,
            "\nwriter {}: {}",
            writer.writer,
            match &writer.failing {
                Some(error) => format!("FAILING: {error}"),
                None => format!("ok, last published {}", since(writer.last_success)),
            }
        );
    }
    if !report.cluster.overrides.is_empty() {
        let _ = writeln!(out, "\noverrides:");
        for o in &report.cluster.overrides {
            let _ = writeln!(out, "  {o}");
        }
    }
    if !report.observers.is_empty() {
        let _ = writeln!(out, "\nobservers:");
        for o in &report.observers {
            let heard = o.last_heard.map_or_else(
                || "never heard".to_owned(),
                |ago| {
                    format!(
                        "heard {} ago",
                        humantime::format_duration(Duration::from_secs(ago.as_secs()))
                    )
                },
            );
            let down = if o.reports_down.is_empty() {
                String::new()
            } else {
                format!("; sees down: {}", o.reports_down.join(", "))
            };
            let _ = writeln!(
                out,
                "  {}: {} ({heard}){down}",
                o.observer,
                if o.live {
                    "in the vote"
                } else {
                    "OUT of the vote"
                }
            );
        }
    }
    if let Some(stats) = &state.dns_stats {
        DnsStatus::from(&stats.read()).render(&mut out);
    }
    let _ = writeln!(out, "\nrecent events:");
    for event in report.recent_events.iter().rev().take(10) {
        let _ = writeln!(out, "  {}  {event}", since(Some(event.at)));
    }
    out
}
