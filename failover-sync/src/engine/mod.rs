//! The engine: one run of the two-way mirror between two replicas reached through
//! [`ReplicaLink`]s. Scan both, reconcile, check the safety rules, carry out the plan (parents
//! first, deletions children first), and record the new last-synced state on each side.
//!
//! `plan.rs` holds what comes before any change (hello, scans, reconciliation, safety rules);
//! `run.rs` the state of a run; `execute.rs` carries the plan out; `transfer.rs` sends one
//! path (deltas and their retries); `record.rs` gathers the new indexes and flushes staged
//! writes; `summary.rs` is what a run reports; `answers.rs` reads a replica's answers.

mod answers;
mod execute;
mod moves;
mod plan;
mod record;
mod run;
mod summary;
mod transfer;

use std::time::Instant;

use failover_core::SyncOptions;

use crate::entry::Entry;
use crate::error::SyncError;
use crate::index::sorted_entries;
use crate::path::RelPath;
use crate::progress::Progress;
use crate::protocol::{ReplicaLink, Request, Response};

use answers::unexpected;
pub use plan::{EngineConfig, Scope};
pub(crate) use plan::{OWNERS_NOT_KEPT, XATTRS_NOT_KEPT};
use run::Run;
pub use summary::{human_bytes, RunSummary};

/// One run of the mirror between `a` and `b`.
pub fn sync_pair(
    a: &mut dyn ReplicaLink,
    b: &mut dyn ReplicaLink,
    config: &EngineConfig,
    options: &SyncOptions,
    progress: &dyn Progress,
) -> Result<RunSummary, SyncError> {
    sync_scope(a, b, config, options, progress, &Scope::All)
}

/// One run of the mirror between `a` and `b` over `scope`: the same rules as a full run
/// within the scope; the mass-deletion rule still measures against the whole index.
pub fn sync_scope(
    a: &mut dyn ReplicaLink,
    b: &mut dyn ReplicaLink,
    config: &EngineConfig,
    options: &SyncOptions,
    progress: &dyn Progress,
    scope: &Scope,
) -> Result<RunSummary, SyncError> {
    let started = Instant::now();
    let mut summary = RunSummary::default();
    let mut links: [&mut dyn ReplicaLink; 2] = [a, b];
    let full = *scope == Scope::All;
    plan::hello(
        &mut links,
        (config.owners, config.xattrs),
        full,
        &mut summary,
    )?;
    let scans = plan::scan_both(&mut links, scope, &mut summary)?;
    tracing::debug!(elapsed = ?started.elapsed(), "mirror run: both sides scanned");
    let mut plan = plan::reconcile_scans(&scans, &summary.nodes);
    // A file deleted at one path and created at another with the same hash is renamed, not
    // sent, and is no deletion for the mass-deletion rule.
    let moves = crate::moves::find_moves(&plan.items);
    plan.deletions = plan.deletions.saturating_sub(moves.len() as u64);
    plan::check_safety(&scans, &plan, scope, config, options, &summary.roots)?;
    let mut run = Run::new(links, summary, options.dry_run, progress);
    run.moves = moves.into_iter().map(|m| (m.to.clone(), m)).collect();
    // An index whose trust window made this scan hash unchanged files again is written anew
    // (with the entries it holds), so that the next scan trusts them.
    run.index_changed = [
        plan.equal_changed[0] || scans.refresh[0],
        plan.equal_changed[1] || scans.refresh[1],
    ];
    // The paths the same on both sides are recorded as they are now, straight from the scans.
    let item_paths: Vec<RelPath> = plan.items.iter().map(|i| i.path.clone()).collect();
    let now = scans.now;
    drop(scans.base);
    tracing::debug!(elapsed = ?started.elapsed(), items = plan.items.len(), "mirror run: planned");
    run.execute(plan.items)?;
    tracing::debug!(elapsed = ?started.elapsed(), "mirror run: plan carried out");
    record_unplanned(&mut run, now, &item_paths);
    if !options.dry_run {
        commit_indexes(&mut run, scope)?;
    }
    tracing::debug!(elapsed = ?started.elapsed(), "mirror run: indexes written");
    progress.finish();
    Ok(run.summary)
}

/// Adds the paths the plan left out (the same on both sides) to the new index of each side
/// that is written, as the scan found them now.
fn record_unplanned(run: &mut Run<'_>, now: [Vec<(RelPath, Entry)>; 2], item_paths: &[RelPath]) {
    for (side, now) in now.into_iter().enumerate() {
        if run.index_changed[side] {
            let mut entries: Vec<(RelPath, Entry)> = now
                .into_iter()
                .filter(|(path, _)| item_paths.binary_search(path).is_err())
                .collect();
            entries.append(&mut run.index[side]);
            run.index[side] = entries;
        }
    }
}

/// Writes the new index on each side whose index changed. A side whose index would say what
/// it says now is left as it is; the others write theirs at the same time (each ends with
/// fsyncs).
fn commit_indexes(run: &mut Run<'_>, scope: &Scope) -> Result<(), SyncError> {
    let commit = |link: &mut &mut dyn ReplicaLink,
                  changed: bool,
                  entries: &mut Vec<(RelPath, Entry)>|
     -> Result<(), SyncError> {
        if !changed {
            return Ok(());
        }
        let entries = sorted_entries(std::mem::take(entries));
        let request = match scope {
            Scope::All => Request::Commit { entries },
            Scope::Paths(paths) => Request::CommitPaths {
                scope: paths.clone(),
                entries,
            },
        };
        match link.call(request)? {
            Response::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    };
    let [ta, tb] = &mut run.links;
    let [ia, ib] = &mut run.index;
    let [ca, cb] = run.index_changed;
    let (ra, rb) = rayon::join(|| commit(ta, ca, ia), || commit(tb, cb, ib));
    ra?;
    rb?;
    Ok(())
}
