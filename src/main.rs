//! `failoverd`: the reference daemon. A thin layer over the `failover` library.
// The doc comments here are clap's help text, where `[cluster]` and `[[node]]` are config
// sections, not links.
#![allow(rustdoc::broken_intra_doc_links)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use failover::config::{Config, Naming, Role};
use failover::daemon;

#[cfg(feature = "sync")]
mod mirror_cmd;
#[cfg(feature = "sync")]
use mirror_cmd::{mirror, MirrorArgs};

/// Keeps a website up across servers in different data centres.
#[derive(Debug, Parser)]
#[command(name = "failoverd", version, about)]
struct Cli {
    /// Log format on standard error: `text` for people, `json` for log collectors.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the zone and move its answer to the nodes that are up, until SIGINT or SIGTERM;
    /// SIGHUP reloads the config (a bad one is refused and the running one stays).
    Run {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Which [[node]] of the file this server is [default: $FAILOVERD_NODE, else the
        /// [[node]] named like the host].
        #[arg(long)]
        node: Option<String>,
    },
    /// Validate a config file (and its zone file) and print what the daemon would do.
    Check {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Check the file for this [[node]] or the [witness] only [default: $FAILOVERD_NODE,
        /// else every one].
        #[arg(long)]
        node: Option<String>,
    },
    /// Print the running daemon's status at a glance (from its [admin] listener).
    Status {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Print the JSON document instead.
        #[arg(long)]
        json: bool,
        /// Ask this [[node]]'s listener (with [admin] tls: pin its fingerprint) [default:
        /// $FAILOVERD_NODE, else this server's].
        #[arg(long)]
        node: Option<String>,
    },
    /// Operator overrides on the running daemon (need [admin] token_file).
    Admin {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Send it to this [[node]]'s listener (with [admin] tls: pin its fingerprint)
        /// [default: $FAILOVERD_NODE, else this server's].
        #[arg(long)]
        node: Option<String>,
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Be the witness: probe every node and report to the daemons (two of three then decide),
    /// serving no DNS, until SIGINT or SIGTERM.
    Witness {
        /// The config file (the daemons' one, with [cluster] and the [witness]).
        #[arg(long, short)]
        config: PathBuf,
        /// The [witness]'s name [default: $FAILOVERD_NODE, else the file's [witness]].
        #[arg(long)]
        node: Option<String>,
    },
    /// Feed the observation journal through the arbiter of a config and print what it would
    /// have done: answer changes, events, notifications, time on each answer.
    Replay {
        /// The config to replay with (the running one, or another to try).
        #[arg(long, short)]
        config: PathBuf,
        /// The journal's directory (default: the config's state_dir/journal).
        #[arg(long)]
        journal: Option<PathBuf>,
        /// Show nothing before this time (RFC 3339, e.g. 2026-12-02T10:00:00Z).
        #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
        from: Option<std::time::SystemTime>,
        /// Read nothing after this time (RFC 3339).
        #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
        to: Option<std::time::SystemTime>,
        /// Put it beside what the daemon recorded, with the differences.
        #[arg(long)]
        compare: bool,
        /// Print JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Make this node's key for the peer link (node.crt, node.key) and print what peers pin.
    Keygen {
        /// Directory to write node.crt and node.key into.
        #[arg(long, default_value = "/etc/failoverd")]
        dir: PathBuf,
        /// This server's name (its [[node]] or [witness] name in the config).
        #[arg(long)]
        name: String,
        /// Print the fingerprint of the existing key instead of making one.
        #[arg(long)]
        show: bool,
    },
    /// The MySQL/MariaDB pair on the nodes ([mysql] in the config).
    #[cfg(feature = "mysql")]
    Mysql {
        #[command(subcommand)]
        action: MysqlAction,
    },
    /// A self-contained demonstration on loopback: two web nodes, the zone, a failover and back.
    Demo {
        /// Where to serve the demo zone.
        #[arg(long, default_value = "127.0.0.1:5353")]
        listen: SocketAddr,
        /// Port of the two web nodes (on 127.0.0.2 and 127.0.0.3).
        #[arg(long, default_value_t = 8080)]
        web_port: u16,
        /// Exit after one failover and failback instead of serving until Ctrl-C.
        #[arg(long)]
        exit_after_cycle: bool,
    },
    /// Two-way sync of two directories: changes on either side reach the other, a path
    /// changed on both keeps the newer version and the other as a conflict copy.
    #[cfg(feature = "sync")]
    Mirror(MirrorArgs),
    /// Print the shell completions for SHELL on standard output (the Debian package installs
    /// bash, zsh and fish's).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on standard output (`failoverd man | man -l -`), or write
    /// one page per command into a directory.
    Man {
        /// Write failoverd.1, failoverd-run.1, ... into this directory instead.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[cfg(feature = "mysql")]
#[derive(Debug, Subcommand)]
enum MysqlAction {
    /// Print both directions of the pair: threads, lag, errors, read_only, GTID positions, and
    /// warnings. Exits 0 when all is well, 1 otherwise.
    Status {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Make the two nodes a master-master pair (replication user, CHANGE MASTER TO, start) with
    /// [mysql] admin_user; refuses a server that replicates from elsewhere; safe to run again.
    Setup {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AdminAction {
    /// Take NODE out of the answer whatever its health (kept across restarts).
    Drain {
        /// The node.
        node: String,
    },
    /// Put NODE back.
    Undrain {
        /// The node.
        node: String,
    },
    /// Force NODE/CHECK up whatever its probes say.
    ForceUp {
        /// NODE/CHECK, e.g. master/http.
        target: String,
    },
    /// Force NODE/CHECK down whatever its probes say.
    ForceDown {
        /// NODE/CHECK, e.g. master/http.
        target: String,
    },
    /// Let NODE/CHECK's probes decide again.
    Unforce {
        /// NODE/CHECK, e.g. master/http.
        target: String,
    },
    /// Move the answer back to the preferred node now (for failback = "manual").
    Failback,
}

/// Exit status for a daemon that cannot be reached (sysexits' EX_UNAVAILABLE).
const EXIT_UNAVAILABLE: u8 = 69;

use failover::EXIT_CONFIG;

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|errors| refused(path, &errors))
}

/// Prints why the config at `path` cannot be used; exit 78.
fn refused(path: &std::path::Path, errors: &[failover::config::ConfigError]) -> ExitCode {
    for error in errors {
        eprintln!("error: {error}");
    }
    eprintln!(
        "{} error{} in {}; nothing was started",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" },
        path.display()
    );
    ExitCode::from(EXIT_CONFIG)
}

/// Loads the config at `path` as the `role` named by `--node` (`node`), `FAILOVERD_NODE` or
/// the host name.
fn load_as(path: &std::path::Path, role: Role, node: Option<&str>) -> Result<Config, ExitCode> {
    let (env, host) = naming_sources();
    let naming = Naming::from_environment(node, env.as_deref(), &host);
    Config::load_as(path, role, &naming).map_err(|errors| refused(path, &errors))
}

/// `FAILOVERD_NODE` and the host name, which name this server after `--node`.
fn naming_sources() -> (Option<String>, String) {
    (
        std::env::var("FAILOVERD_NODE").ok(),
        failover::core::host_name(),
    )
}

/// `failoverd keygen`: a node's key for the peer link, and the line its peers pin.
fn keygen(dir: &std::path::Path, name: &str, show: bool) -> ExitCode {
    use failover::core::peer::Identity;
    let identity = if show {
        Identity::load(&dir.join("node.crt"), &dir.join("node.key"))
    } else {
        Identity::generate(name).and_then(|identity| {
            let (certificate, key) = identity.write(dir)?;
            println!(
                "wrote {} and {} (keep the key secret)",
                certificate.display(),
                key.display()
            );
            Ok(identity)
        })
    };
    match identity {
        Ok(identity) => {
            println!(
                "in the config's table of {name} ([[node]] or [witness]), on every server: fingerprint = \"{}\"",
                identity.fingerprint()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `failoverd run`: serve as node `node` (else `FAILOVERD_NODE`, else the host name's) until
/// SIGINT/SIGTERM, reload on SIGHUP, tell systemd how it goes.
async fn run(config: PathBuf, node: Option<String>) -> ExitCode {
    match daemon::DaemonBuilder::new(config).node(node).run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.report();
            e.exit_code()
        }
    }
}

/// `failoverd witness`: probe and report until SIGINT/SIGTERM.
async fn witness(config: Config) -> ExitCode {
    use tokio::signal::unix::{signal, SignalKind};
    let witness = match daemon::Witness::start(&config).await {
        Ok(witness) => witness,
        Err(e @ daemon::DaemonError::Observers { .. }) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(e) => {
            eprintln!("error: cannot handle signals: {e}");
            witness.shutdown().await;
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(listen = ?witness.observer_address(), "witness observing");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("stopping");
    witness.shutdown().await;
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(&cli);
    // The one-shot mirror needs no runtime (its warnings go to the log set up above).
    #[cfg(feature = "sync")]
    if let Command::Mirror(args) = cli.command {
        return mirror(args);
    }
    match cli.command {
        Command::Completions { shell } => {
            return failover::manual::completions(Cli::command(), shell)
        }
        Command::Man { dir } => return failover::manual::man_pages(Cli::command(), dir.as_deref()),
        _ => {}
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(dispatch(cli.command))
}

/// Logs to stderr, as text or JSON; quieter for the demo and the one-shot mirror.
fn init_logs(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(match cli.command {
            Command::Demo { .. } => "error",
            #[cfg(feature = "sync")]
            Command::Mirror(_) => "warn",
            _ => "info",
        })
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
}

/// Runs one subcommand (all but the one-shot mirror) inside the runtime.
async fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Check { config, node } => match load(&config) {
            Ok(config) => check(config, node).await,
            Err(code) => code,
        },
        Command::Run { config, node } => run(config, node).await,
        Command::Keygen { dir, name, show } => keygen(&dir, &name, show),
        Command::Witness { config, node } => {
            match load_as(&config, Role::Witness, node.as_deref()) {
                Ok(config) => witness(config).await,
                Err(code) => code,
            }
        }
        Command::Replay {
            config,
            journal,
            from,
            to,
            compare,
            json,
        } => {
            let window = failover::journal::replay::Window { from, to };
            with_config(&config, |config| async move {
                replay(&config, journal, window, compare, json)
            })
            .await
        }
        Command::Status { config, json, node } => {
            with_config(&config, |config| status(config, json, node)).await
        }
        Command::Admin {
            config,
            node,
            action,
        } => with_config(&config, |config| admin(config, node, action)).await,
        #[cfg(feature = "mysql")]
        Command::Mysql { action } => {
            let (MysqlAction::Status { config } | MysqlAction::Setup { config }) = &action;
            let config = config.clone();
            with_config(&config, |config| mysql(config, action)).await
        }
        Command::Demo {
            listen,
            web_port,
            exit_after_cycle,
        } => {
            demo(failover::demo::DemoOptions {
                listen,
                web_port,
                exit_after_cycle,
            })
            .await
        }
        #[cfg(feature = "sync")]
        // handled before the runtime starts
        Command::Mirror(_) | Command::Completions { .. } | Command::Man { .. } => ExitCode::SUCCESS,
    }
}

/// Loads the config at `path` (exit 78 when it is not usable) and runs `command` with it.
async fn with_config<F, Fut>(path: &std::path::Path, command: F) -> ExitCode
where
    F: FnOnce(Config) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    match load(path) {
        Ok(config) => command(config).await,
        Err(code) => code,
    }
}

/// `failoverd replay`: the journal through the config's arbiter. Exit 0 when the replay ran
/// (whatever it found), 1 when the journal cannot be read.
fn replay(
    config: &Config,
    journal: Option<PathBuf>,
    window: failover::journal::replay::Window,
    compare: bool,
    json: bool,
) -> ExitCode {
    use failover::journal::{journal_dir, replay};
    let dir = journal.unwrap_or_else(|| journal_dir(config));
    match replay::replay(config, &dir, window) {
        Ok(result) if json => match serde_json::to_string_pretty(&result) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(result) => {
            print!("{}", replay::render(&result, &config.path, compare));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `failoverd check`: the config, and everything it names, can be used by the node or witness
/// `--node` (or `FAILOVERD_NODE`) names, else by every one; prints the plan.
async fn check(config: Config, node: Option<String>) -> ExitCode {
    let env = std::env::var("FAILOVERD_NODE")
        .ok()
        .filter(|e| !e.is_empty());
    let scope = match node.or(env) {
        Some(name) => {
            let role = match &config.witness {
                Some(witness) if witness.name == name => Role::Witness,
                _ => Role::Daemon,
            };
            let naming = Naming {
                flag: Some(&name),
                ..Naming::default()
            };
            match config.choose(role, &naming) {
                Ok(Some(local)) => daemon::Scope::One(local),
                Ok(None) => daemon::Scope::Every,
                Err(e) => return refused(&config.path, &[e]),
            }
        }
        None => daemon::Scope::Every,
    };
    match daemon::verify(&config, &scope) {
        Ok(plan) => {
            print!("{plan}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// `failoverd status`: the running daemon's status, as text or JSON.
async fn status(config: Config, json: bool, node: Option<String>) -> ExitCode {
    let path = if json { "/status" } else { "/status.txt" };
    let (env, host) = naming_sources();
    let naming = Naming::from_environment(node.as_deref(), env.as_deref(), &host);
    match failover::client::get(&config, &naming, path).await {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => client_failed(&e),
    }
}

/// `failoverd admin`: one override sent to the running daemon.
async fn admin(config: Config, node: Option<String>, action: AdminAction) -> ExitCode {
    let path = match action {
        AdminAction::Drain { node } => format!("drain/{node}"),
        AdminAction::Undrain { node } => format!("undrain/{node}"),
        AdminAction::ForceUp { target } => format!("force-up/{target}"),
        AdminAction::ForceDown { target } => format!("force-down/{target}"),
        AdminAction::Unforce { target } => format!("unforce/{target}"),
        AdminAction::Failback => "failback".to_owned(),
    };
    let (env, host) = naming_sources();
    let naming = Naming::from_environment(node.as_deref(), env.as_deref(), &host);
    match failover::client::admin(&config, &naming, &path).await {
        Ok(done) => {
            println!("done: {done}");
            ExitCode::SUCCESS
        }
        Err(e) => client_failed(&e),
    }
}

/// Says why `status` or `admin` failed; the exit code tells the kind (docs/operations.md).
fn client_failed(error: &failover::client::ClientError) -> ExitCode {
    use failover::client::ClientError;
    eprintln!("error: {error}");
    match error {
        ClientError::Config(_) => ExitCode::from(EXIT_CONFIG),
        ClientError::Unavailable(_) => ExitCode::from(EXIT_UNAVAILABLE),
        ClientError::Refused(_) => ExitCode::FAILURE,
    }
}

/// `failoverd mysql status|setup`.
#[cfg(feature = "mysql")]
async fn mysql(config: Config, action: MysqlAction) -> ExitCode {
    let result = match action {
        MysqlAction::Status { .. } => {
            failover::mysql_cli::status(&config)
                .await
                .map(|(text, healthy)| {
                    let code = if healthy {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    };
                    (text, code)
                })
        }
        MysqlAction::Setup { .. } => failover::mysql_cli::setup(&config)
            .await
            .map(|text| (text, ExitCode::SUCCESS)),
    };
    match result {
        Ok((text, code)) => {
            print!("{text}");
            code
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `failoverd demo`: two web servers, the daemon, and the answer moving back and forth.
async fn demo(options: failover::demo::DemoOptions) -> ExitCode {
    match failover::demo::run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
