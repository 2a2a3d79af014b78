//! `failoverd`: the reference daemon. A thin layer over the `failover` library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use failover::config::Config;
use failover::daemon::{self, Daemon};

/// Keeps a website up across servers in different data centres.
#[derive(Debug, Parser)]
#[command(name = "failoverd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the zone and move its answer to the nodes that are up, until SIGINT or SIGTERM.
    Run {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file (and its zone file) and print what the daemon would do.
    Check {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the running daemon's status at a glance (from its [admin] listener).
    Status {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Print the JSON document instead.
        #[arg(long)]
        json: bool,
    },
    /// Operator overrides on the running daemon (need [admin] token_file).
    Admin {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        #[command(subcommand)]
        action: AdminAction,
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

/// Exit status for an unusable config (sysexits' EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|errors| {
        for error in &errors {
            eprintln!("error: {error}");
        }
        eprintln!(
            "{} error{} in {}; nothing was started",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            path.display()
        );
        ExitCode::from(EXIT_CONFIG)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(match cli.command {
                    Command::Demo { .. } => "error",
                    _ => "info",
                })
            }),
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
    runtime.block_on(async {
        match cli.command {
            Command::Check { config } => {
                let config = match load(&config) {
                    Ok(config) => config,
                    Err(code) => return code,
                };
                match daemon::check(&config) {
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
            Command::Run { config } => {
                let config = match load(&config) {
                    Ok(config) => config,
                    Err(code) => return code,
                };
                let daemon = match Daemon::start(&config).await {
                    Ok(daemon) => daemon,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                tracing::info!(addresses = ?daemon.dns_addresses(), zone = %config.zone.name, "serving");
                failover::shutdown_signal().await;
                tracing::info!("stopping");
                daemon.shutdown().await;
                ExitCode::SUCCESS
            }
            Command::Status { config, json } => {
                let config = match load(&config) {
                    Ok(config) => config,
                    Err(code) => return code,
                };
                let path = if json { "/status" } else { "/status.txt" };
                match failover::client::get(&config, path).await {
                    Ok(text) => {
                        print!("{text}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::from(EXIT_UNAVAILABLE)
                    }
                }
            }
            Command::Admin { config, action } => {
                let config = match load(&config) {
                    Ok(config) => config,
                    Err(code) => return code,
                };
                let path = match action {
                    AdminAction::Drain { node } => format!("drain/{node}"),
                    AdminAction::Undrain { node } => format!("undrain/{node}"),
                    AdminAction::ForceUp { target } => format!("force-up/{target}"),
                    AdminAction::ForceDown { target } => format!("force-down/{target}"),
                    AdminAction::Unforce { target } => format!("unforce/{target}"),
                    AdminAction::Failback => "failback".to_owned(),
                };
                match failover::client::admin(&config, &path).await {
                    Ok(done) => {
                        println!("done: {done}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            #[cfg(feature = "mysql")]
            Command::Mysql { action } => {
                let (MysqlAction::Status { config } | MysqlAction::Setup { config }) = &action;
                let config = match load(config) {
                    Ok(config) => config,
                    Err(code) => return code,
                };
                let result = match action {
                    MysqlAction::Status { .. } => failover::mysql_cli::status(&config)
                        .await
                        .map(|(text, healthy)| (text, if healthy { ExitCode::SUCCESS } else { ExitCode::FAILURE })),
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
            Command::Demo {
                listen,
                web_port,
                exit_after_cycle,
            } => {
                let options = failover::demo::DemoOptions {
                    listen,
                    web_port,
                    exit_after_cycle,
                };
                match failover::demo::run(options).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        ExitCode::FAILURE
                    }
                }
            }
        }
    })
}
