//! Before anything changes: the hello, both scans, the reconciliation, and the safety rules
//! that refuse a run (two replicas of one name, a side emptied, a mass deletion).

use failover_core::SyncOptions;

use super::answers::{scanned, unexpected};
use super::summary::RunSummary;
use crate::entry::Entry;
use crate::error::SyncError;
use crate::fsx;
use crate::index::sorted_entries;
use crate::owners::Owners;
use crate::path::RelPath;
use crate::protocol::{ReplicaLink, Request, Response, ScanReply, PROTOCOL_VERSION};
use crate::reconcile::{reconcile, Plan, SideState};
use crate::xattrs::XattrKinds;

/// Settings of the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Share of the files at the last sync (0.0 – 1.0) one run may delete without `force`.
    pub max_delete_share: f64,
    /// How owners and groups are kept (default: by name, numbers as the fallback). Both
    /// replicas follow the engine's choice; a side that may not give files to other users
    /// (not root) keeps none, and then neither does.
    pub owners: Owners,
    /// Which extended attributes are mirrored (default none, as rsync without `-X`/`-A`); a
    /// kind a side's file system cannot hold is mirrored by neither, with a warning.
    pub xattrs: XattrKinds,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_delete_share: 0.5,
            owners: Owners::default(),
            xattrs: XattrKinds::OFF,
        }
    }
}

/// What a run looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Both whole trees (a full run).
    All,
    /// Only these paths and what lies beneath them (the changes a watcher reported), as made
    /// by [`minimal_scope`](crate::minimal_scope): none beneath another.
    Paths(Vec<RelPath>),
}

/// Both sides' scans, as the reconciliation reads them.
pub(super) struct Scans {
    /// The trees now, sorted by path.
    pub(super) now: [Vec<(RelPath, Entry)>; 2],
    /// The trees at the last sync (within the scope), sorted by path.
    pub(super) base: [Vec<(RelPath, Entry)>; 2],
    /// Files in each whole index (the measure of the mass-deletion rule for a scoped run).
    pub(super) index_files: [u64; 2],
    /// Whether a side's index should be written anew for its trust window.
    pub(super) refresh: [bool; 2],
}

/// Opens the conversation with both replicas: their node names and roots go to `summary`.
/// Two replicas of the same name are refused (their conflict copies could not be told apart).
///
/// Owners are kept as `owners` asks when both sides can (both run as root); when one cannot,
/// the other is told to keep none either (else every path would differ by owner). Extended
/// attributes likewise: a kind one side's file system cannot hold is mirrored by neither. A
/// full run says so once (`warn`).
pub(super) fn hello(
    links: &mut [&mut dyn ReplicaLink; 2],
    (owners, xattrs): (Owners, XattrKinds),
    warn: bool,
    summary: &mut RunSummary,
) -> Result<(), SyncError> {
    let mut kept = [(owners, xattrs); 2];
    let mut problems = Vec::new();
    for (i, link) in links.iter_mut().enumerate() {
        let (owners_kept, xattrs_kept, problem) =
            say_hello(&mut **link, owners, xattrs, summary, i)?;
        kept[i] = (owners_kept, xattrs_kept);
        problems.extend(problem.map(|p| format!("{}: {p}", summary.nodes[i])));
    }
    let owners_both = if kept.iter().any(|k| k.0 == Owners::Off) {
        Owners::Off
    } else {
        owners
    };
    let xattrs_both = xattrs.and(kept[0].1).and(kept[1].1);
    summary.owners = owners_both;
    for (i, link) in links.iter_mut().enumerate() {
        if kept[i] != (owners_both, xattrs_both) {
            say_hello(&mut **link, owners_both, xattrs_both, summary, i)?;
        }
    }
    if warn && owners_both != owners {
        let not_root: Vec<&str> = (0..2)
            .filter(|&i| kept[i].0 == Owners::Off)
            .map(|i| summary.nodes[i].as_str())
            .collect();
        summary.warnings.push(format!(
            "{OWNERS_NOT_KEPT}: the mirror may not give files to other users on {} (not \
             root, no CAP_CHOWN), so its files belong to the user it runs as; run it as \
             root, or set owners = \"off\" to keep none without this warning",
            not_root.join(" and ")
        ));
    }
    if warn && xattrs_both != xattrs {
        summary
            .warnings
            .push(format!("{XATTRS_NOT_KEPT}: {}", problems.join("; ")));
    }
    if summary.nodes[0] == summary.nodes[1] {
        return Err(SyncError::Refused(format!(
            "both replicas are named {:?}; give them different node names",
            summary.nodes[0]
        )));
    }
    Ok(())
}

/// How the warning that owners are not kept begins (the live mirror says it once per start).
pub(crate) const OWNERS_NOT_KEPT: &str = "owners and groups are not kept";

/// How the warning that some extended attributes are not mirrored begins.
pub(crate) const XATTRS_NOT_KEPT: &str =
    "extended attributes or ACLs are not mirrored, the file system does not hold them";

/// One hello: the replica's name and root go to `summary`; returns how it keeps owners, which
/// attributes it mirrors, and why not all that were asked.
fn say_hello(
    link: &mut dyn ReplicaLink,
    owners: Owners,
    xattrs: XattrKinds,
    summary: &mut RunSummary,
    i: usize,
) -> Result<(Owners, XattrKinds, Option<String>), SyncError> {
    match link.call(Request::Hello {
        version: PROTOCOL_VERSION,
        owners,
        xattrs,
    })? {
        Response::Hello {
            node,
            root,
            owners,
            xattrs,
            xattrs_problem,
        } => {
            summary.nodes[i] = node;
            summary.roots[i] = root;
            Ok((owners, xattrs, xattrs_problem))
        }
        other => Err(unexpected(&other)),
    }
}

/// Scans both sides over `scope`; what the scans counted and could not read goes to `summary`.
pub(super) fn scan_both(
    links: &mut [&mut dyn ReplicaLink; 2],
    scope: &Scope,
    summary: &mut RunSummary,
) -> Result<Scans, SyncError> {
    let replies: Vec<ScanReply> = {
        // Scanning is the slow part of a run with few changes: both sides at once.
        let [ta, tb] = links;
        let request = || match scope {
            Scope::All => Request::Scan,
            Scope::Paths(paths) => Request::ScanPaths {
                scope: paths.clone(),
            },
        };
        let (sa, sb) = rayon::join(|| ta.call(request()), || tb.call(request()));
        vec![scanned(sa?)?, scanned(sb?)?]
    };
    let mut scans = Scans {
        now: [Vec::new(), Vec::new()],
        base: [Vec::new(), Vec::new()],
        index_files: [0; 2],
        refresh: [false; 2],
    };
    for (i, mut scan) in replies.into_iter().enumerate() {
        // Sorted by the replica already (then this only checks): a peer's lists are put in
        // order here whatever it sent, because the reconciliation walks them in order.
        scans.now[i] = sorted_entries(std::mem::take(&mut scan.current));
        scans.base[i] = sorted_entries(std::mem::take(&mut scan.base));
        scans.index_files[i] = scan.index_files;
        scans.refresh[i] = scan.refresh > 0;
        summary.scanned[i] = scans.now[i].len();
        summary.hashed_bytes += scan.hashed_bytes;
        if let Some(problem) = &scan.index_problem {
            summary.warnings.push(problem.clone());
        }
        for (path, reason) in &scan.problems {
            summary
                .problems
                .push(format!("{}/{path}: {reason}", summary.roots[i]));
        }
    }
    Ok(scans)
}

/// The plan of the run: [`reconcile`] over both scans.
pub(super) fn reconcile_scans(scans: &Scans, nodes: &[String; 2]) -> Plan {
    reconcile(
        &SideState {
            node: &nodes[0],
            now: &scans.now[0],
            base: &scans.base[0],
        },
        &SideState {
            node: &nodes[1],
            now: &scans.now[1],
            base: &scans.base[1],
        },
        fsx::now_ns(),
    )
}

/// The safety rules (unless `force`): a whole side that is empty but held paths at the last
/// sync (unmounted?), and a plan deleting more than `max_delete_share` of the files of the last
/// sync, are refused before anything changes. `roots` name the sides in the message.
pub(super) fn check_safety(
    scans: &Scans,
    plan: &Plan,
    scope: &Scope,
    config: &EngineConfig,
    options: &SyncOptions,
    roots: &[String; 2],
) -> Result<(), SyncError> {
    let base_files = match scope {
        Scope::All => plan.base_files,
        Scope::Paths(_) => plan
            .base_files
            .max(scans.index_files[0].min(scans.index_files[1])),
    };
    if options.force {
        return Ok(());
    }
    for (i, side_now) in scans.now.iter().enumerate() {
        if *scope == Scope::All && side_now.is_empty() && !scans.base[i].is_empty() {
            return Err(SyncError::Refused(format!(
                "{} is empty but held {} paths at the last sync; if it was emptied on \
                 purpose run again with --force, otherwise check that it is mounted",
                roots[i],
                scans.base[i].len()
            )));
        }
    }
    if base_files > 0 && plan.deletions as f64 > config.max_delete_share * base_files as f64 {
        return Err(SyncError::Refused(format!(
            "this run would delete {} of the {} files of the last sync (more than {:.0} %); \
             nothing was changed; check both trees, then run again with --force if that \
             is what you want",
            plan.deletions,
            base_files,
            config.max_delete_share * 100.0
        )));
    }
    Ok(())
}
