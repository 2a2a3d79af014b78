//! `failoverd mirror`: a one-off run between two local directories, and the versions area.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use failover::config::Role;

use crate::load_as;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct MirrorArgs {
    #[command(subcommand)]
    action: Option<MirrorAction>,
    /// Run once and exit (required: the live mirror comes with the peer link).
    #[arg(long, required = true)]
    once: bool,
    /// The first replica (node `a`).
    #[arg(required = true)]
    dir_a: Option<PathBuf>,
    /// The second replica (node `b`).
    #[arg(required = true)]
    dir_b: Option<PathBuf>,
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
    #[arg(long, value_delimiter = ',', num_args = 1..=2, value_name = "A,B", default_values_t = ["a".to_owned(), "b".to_owned()])]
    names: Vec<String>,
    /// Print every change.
    #[arg(long, short)]
    verbose: bool,
    /// Skip the fsyncs (faster; a power cut can then lose the last run's copies).
    #[arg(long)]
    danger_no_fsync: bool,
    /// How owners and groups are kept when run as root: by name (numbers as the fallback), by
    /// number, or not at all.
    #[arg(long, default_value = "names", value_parser = ["names", "numeric", "off"])]
    owners: String,
    /// Mirror user.* extended attributes (as rsync's -X).
    #[arg(long)]
    xattrs: bool,
    /// Mirror POSIX ACLs (as rsync's -A).
    #[arg(long)]
    acls: bool,
}

#[derive(Debug, Subcommand)]
enum MirrorAction {
    /// What the mirror replaced or deleted on this node, kept in its versions area
    /// ([mirror] versions): list, restore (the mirror then carries the file to the other node),
    /// prune.
    Versions(Box<VersionsArgs>),
}

#[derive(Debug, clap::Args)]
struct VersionsArgs {
    /// The config file: [mirror] root and state_dir, and this node's name.
    #[arg(long, short, required_unless_present = "state_dir")]
    config: Option<PathBuf>,
    /// Which node this server is [default: $FAILOVERD_NODE, else the [[node]] named like the
    /// host]; without --config, the replica's name (as `mirror --once --names` gave it).
    #[arg(long)]
    node: Option<String>,
    /// Without --config: the state directory of `mirror --once` (its --state-dir).
    #[arg(long, requires_all = ["root", "node"], conflicts_with = "config")]
    state_dir: Option<PathBuf>,
    /// Without --config: the replica's directory, where a restore writes.
    #[arg(long, requires = "state_dir")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    action: VersionsAction,
}

#[derive(Debug, Subcommand)]
enum VersionsAction {
    /// List the versions (of PATH and beneath it, or all), oldest first.
    List {
        /// A path relative to the mirrored root.
        path: Option<String>,
    },
    /// Put a version of PATH back (the newest, or VERSION: its name or the start of it).
    Restore {
        /// A path relative to the mirrored root.
        path: String,
        /// The version's name, as `list` prints it (a unique start of it is enough).
        version: Option<String>,
    },
    /// Remove the versions past keep_versions_for and the oldest past versions_max_size_mb.
    Prune,
}

/// `failoverd mirror versions`.
fn versions(args: VersionsArgs) -> ExitCode {
    use failover::mirror_cli::VersionsPlace;
    let place = match (&args.config, &args.state_dir, &args.root, &args.node) {
        (Some(path), _, _, node) => match load_as(path, Role::Daemon, node.as_deref()) {
            Ok(config) => VersionsPlace::from_config(&config),
            Err(code) => return code,
        },
        (None, Some(state_dir), Some(root), Some(node)) => Ok(VersionsPlace::new(
            root,
            state_dir,
            node,
            failover::sync::VersionPolicy::default(),
        )),
        _ => Err("give --config, or --state-dir with --root and --node".to_owned()),
    };
    let done = place.and_then(|place| match &args.action {
        VersionsAction::List { path } => place.list(path.as_deref()),
        VersionsAction::Restore { path, version } => place.restore(path, version.as_deref()),
        VersionsAction::Prune => place.prune(),
    });
    match done {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status of a mirror run that a safety rule refused.
const EXIT_REFUSED: u8 = 3;
/// Exit status of a mirror run that left some paths out of step (rsync's "partial transfer").
const EXIT_PARTIAL: u8 = 23;

pub(crate) fn mirror(args: MirrorArgs) -> ExitCode {
    use failover::sync::{sync_dirs, LocalPairConfig, SyncError, TerminalBar};
    let (dir_a, dir_b) = match (args.action, &args.dir_a, &args.dir_b) {
        (Some(MirrorAction::Versions(versions_args)), _, _) => return versions(*versions_args),
        (None, Some(a), Some(b)) => (a, b),
        _ => {
            eprintln!("error: give --once DIR_A DIR_B, or a subcommand (versions)");
            return ExitCode::from(2);
        }
    };
    let mut config = LocalPairConfig::new(dir_a, dir_b);
    if let Some(state_dir) = args.state_dir {
        config.state_dir = state_dir;
    }
    config.excludes = args.excludes;
    config.max_delete_share = (args.max_delete / 100.0).clamp(0.0, 1.0);
    config.fsync = !args.danger_no_fsync;
    config.xattrs = failover::sync::XattrKinds {
        user: args.xattrs,
        acls: args.acls,
    };
    config.owners = match args.owners.parse() {
        Ok(owners) => owners,
        Err(e) => {
            eprintln!("--owners: {e}");
            return ExitCode::from(2);
        }
    };
    match args.names.as_slice() {
        [a, b] if a != b => {
            config.node_a = a.clone();
            config.node_b = b.clone();
        }
        other => {
            eprintln!(
                "--names: two different names are needed (--names A,B), not {}",
                other.join(",")
            );
            return ExitCode::from(2);
        }
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
