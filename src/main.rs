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
}

#[cfg(feature = "sync")]
#[derive(Debug, clap::Args)]
struct MirrorArgs {
    /// Run once and exit (required: the live mirror comes with the peer link).
    #[arg(long, required = true)]
    once: bool,
    /// The first replica (node `a`).
    dir_a: PathBuf,
    /// The second replica (node `b`).
    dir_b: PathBuf,
    /// Apply what a safety rule refuses (mass deletion, an emptied root).
    #[arg(long)]
    force: bool,
    /// Show what would be done; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Where the indexes of last-synced state are kept [default: $XDG_STATE_HOME/failover-sync
    /// or ~/.local/state/failover-sync].
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Gitignore-syntax pattern of paths to leave alone (repeatable): `*.log`, `/cache/`.
    #[arg(long = "exclude", value_name = "PATTERN")]
    excludes: Vec<String>,
    /// Largest share of the last sync's files one run may delete without --force, in percent.
    #[arg(long, default_value_t = 50.0, value_name = "PERCENT")]
    max_delete: f64,
    /// Node names of the two replicas (they name conflict copies).
    #[arg(long, value_delimiter = ',', num_args = 2, default_values_t = ["a".to_owned(), "b".to_owned()])]
    names: Vec<String>,
    /// Print every change.
    #[arg(long, short)]
    verbose: bool,
    /// Skip the fsyncs (faster; a power cut can then lose the last run's copies).
    #[arg(long)]
    danger_no_fsync: bool,
}

/// Exit status of a mirror run that a safety rule refused.
#[cfg(feature = "sync")]
const EXIT_REFUSED: u8 = 3;
/// Exit status of a mirror run that left some paths out of step (rsync's "partial transfer").
#[cfg(feature = "sync")]
const EXIT_PARTIAL: u8 = 23;

#[cfg(feature = "sync")]
fn mirror(args: MirrorArgs) -> ExitCode {
    use failover::sync::{sync_dirs, MirrorConfig, SyncError, TerminalBar};
    let mut config = MirrorConfig::new(&args.dir_a, &args.dir_b);
    if let Some(state_dir) = args.state_dir {
        config.state_dir = state_dir;
    }
    config.excludes = args.excludes;
    config.max_delete_share = (args.max_delete / 100.0).clamp(0.0, 1.0);
    config.fsync = !args.danger_no_fsync;
    if let [a, b] = args.names.as_slice() {
        config.node_a = a.clone();
        config.node_b = b.clone();
    }
    let options = failover::core::SyncOptions {
        force: args.force,
        dry_run: args.dry_run,
    };
    let started = std::time::Instant::now();
    let progress = TerminalBar::new();
    match sync_dirs(&config, &options, &progress) {
        Ok(outcome) => {
            for warning in &outcome.warnings {
                eprintln!("warning: {warning}");
            }
            for problem in &outcome.problems {
                eprintln!("skipped: {problem}");
            }
            if args.verbose || args.dry_run {
                for change in &outcome.changes {
                    println!("{change}");
                }
            }
            for conflict in &outcome.report.conflicts {
                println!(
                    "conflict: {} kept {}'s version; the other is {}",
                    conflict.path.display(),
                    conflict.winner,
                    conflict.kept_as.display()
                );
            }
            for failed in &outcome.report.failed {
                eprintln!("error: {}: {}", failed.path.display(), failed.reason);
            }
            println!(
                "{}{} in {:.2} s",
                if args.dry_run { "dry run: " } else { "" },
                outcome.summary(),
                started.elapsed().as_secs_f64()
            );
            if outcome.report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_PARTIAL)
            }
        }
        Err(SyncError::Refused(message)) => {
            eprintln!("refused: {message}");
            ExitCode::from(EXIT_REFUSED)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

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
    #[cfg(feature = "sync")]
    if let Command::Mirror(args) = cli.command {
        return mirror(args);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(match cli.command {
                    Command::Demo { .. } => "error",
                    #[cfg(feature = "sync")]
                    Command::Mirror(_) => "warn",
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
                match daemon::load_zone(&config) {
                    Ok(zone) => {
                        print!("{}", daemon::plan(&config, &zone));
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
            #[cfg(feature = "sync")]
            Command::Mirror(_) => ExitCode::SUCCESS, // handled before the runtime starts
        }
    })
}
