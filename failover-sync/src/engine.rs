//! The engine: one run of the two-way mirror between two replicas reached through transports.
//! Scan both, reconcile, check the safety rules, carry out the plan (parents first, deletions
//! children first), and record the new last-synced state on each side.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use failover_core::{Conflict, FailedPath, SyncOptions, SyncReport};

use crate::delta::{DeltaOp, Matching};
use crate::entry::{Entry, Kind};
use crate::error::SyncError;
use crate::fsx;
use crate::index::sorted_entries;
use crate::path::RelPath;
use crate::progress::Progress;
use crate::protocol::{
    BatchRequest, BatchResponse, Failure, Handle, Request, Response, ResponseOf, ScanReply,
    Transport, PROTOCOL_VERSION,
};
use crate::reconcile::{reconcile, Decision, Item, Side, SideState};

/// Files smaller than this are sent whole: a signature round trip costs more than it saves.
const DELTA_MIN: u64 = 64 << 10;

/// Settings of the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Share of the files at the last sync (0.0 – 1.0) one run may delete without `force`.
    pub max_delete_share: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_delete_share: 0.5,
        }
    }
}

/// What a run did, in more detail than core's [`SyncReport`].
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The summary the daemon and the trait see.
    pub report: SyncReport,
    /// The node names of A and B.
    pub nodes: [String; 2],
    /// The roots of A and B as their replicas name them.
    pub roots: [String; 2],
    /// Paths found on A and B.
    pub scanned: [usize; 2],
    /// Bytes hashed by the scans (files new or changed since the index).
    pub hashed_bytes: u64,
    /// Literal bytes sent in deltas and whole files.
    pub literal_bytes: u64,
    /// Bytes of signatures sent back by receivers.
    pub signature_bytes: u64,
    /// Paths the scans could not read (left alone), as `path: reason`.
    pub problems: Vec<String>,
    /// Warnings: an index that was ignored, a conflict copy overwritten.
    pub warnings: Vec<String>,
    /// Each change, one line each (`B <- A  path`): what was done, or with `dry_run` what
    /// would be done.
    pub changes: Vec<String>,
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

/// One run of the mirror between `a` and `b`.
pub fn sync_pair(
    a: &mut dyn Transport,
    b: &mut dyn Transport,
    config: &EngineConfig,
    options: &SyncOptions,
    progress: &dyn Progress,
) -> Result<Outcome, SyncError> {
    sync_scope(a, b, config, options, progress, &Scope::All)
}

/// One run of the mirror between `a` and `b` over `scope`: the same rules as a full run
/// within the scope; the mass-deletion rule still measures against the whole index.
pub fn sync_scope(
    a: &mut dyn Transport,
    b: &mut dyn Transport,
    config: &EngineConfig,
    options: &SyncOptions,
    progress: &dyn Progress,
    scope: &Scope,
) -> Result<Outcome, SyncError> {
    let started = std::time::Instant::now();
    let mut outcome = Outcome::default();
    let mut transports: [&mut dyn Transport; 2] = [a, b];
    for (i, transport) in transports.iter_mut().enumerate() {
        match transport.call(Request::Hello {
            version: PROTOCOL_VERSION,
        })? {
            Response::Hello { node, root } => {
                outcome.nodes[i] = node;
                outcome.roots[i] = root;
            }
            other => return Err(unexpected(&other)),
        }
    }
    if outcome.nodes[0] == outcome.nodes[1] {
        return Err(SyncError::Refused(format!(
            "both replicas are named {:?}; give them different node names",
            outcome.nodes[0]
        )));
    }
    let scans: Vec<ScanReply> = {
        // Scanning is the slow part of a run with few changes: both sides at once.
        let [ta, tb] = &mut transports;
        let request = || match scope {
            Scope::All => Request::Scan,
            Scope::Paths(paths) => Request::ScanPaths {
                scope: paths.clone(),
            },
        };
        let (sa, sb) = rayon::join(|| ta.call(request()), || tb.call(request()));
        vec![scanned(sa?)?, scanned(sb?)?]
    };
    let mut now: [Vec<(RelPath, Entry)>; 2] = [Vec::new(), Vec::new()];
    let mut base: [Vec<(RelPath, Entry)>; 2] = [Vec::new(), Vec::new()];
    let mut index_files = [0; 2];
    let mut refresh = [false; 2];
    for (i, mut scan) in scans.into_iter().enumerate() {
        // Sorted by the replica already (then this only checks): a peer's lists are put in
        // order here whatever it sent, because the reconciliation walks them in order.
        now[i] = sorted_entries(std::mem::take(&mut scan.current));
        base[i] = sorted_entries(std::mem::take(&mut scan.base));
        index_files[i] = scan.index_files;
        refresh[i] = scan.refresh > 0;
        outcome.scanned[i] = now[i].len();
        outcome.hashed_bytes += scan.hashed_bytes;
        if let Some(problem) = &scan.index_problem {
            outcome.warnings.push(problem.clone());
        }
        for (path, reason) in &scan.problems {
            outcome
                .problems
                .push(format!("{}/{path}: {reason}", outcome.roots[i]));
        }
    }
    tracing::debug!(elapsed = ?started.elapsed(), "mirror run: both sides scanned");
    let plan = reconcile(
        &SideState {
            node: &outcome.nodes[0],
            now: &now[0],
            base: &base[0],
        },
        &SideState {
            node: &outcome.nodes[1],
            now: &now[1],
            base: &base[1],
        },
        fsx::now_ns(),
    );
    let base_files = match scope {
        Scope::All => plan.base_files,
        Scope::Paths(_) => plan.base_files.max(index_files[0].min(index_files[1])),
    };
    if !options.force {
        for (i, side_now) in now.iter().enumerate() {
            if *scope == Scope::All && side_now.is_empty() && !base[i].is_empty() {
                return Err(SyncError::Refused(format!(
                    "{} is empty but held {} paths at the last sync; if it was emptied on \
                     purpose run again with --force, otherwise check that it is mounted",
                    outcome.roots[i],
                    base[i].len()
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
    }
    let mut run = Run {
        transports,
        nodes: outcome.nodes.clone(),
        dry_run: options.dry_run,
        index: [Vec::new(), Vec::new()],
        index_changed: [false, false],
        failed_dirs: BTreeSet::new(),
        outcome,
        progress,
        pending: [Vec::new(), Vec::new()],
        pending_bytes: [0, 0],
    };
    // An index whose trust window made this scan hash unchanged files again is written anew
    // (with the entries it holds), so that the next scan trusts them.
    run.index_changed = [
        plan.equal_changed[0] || refresh[0],
        plan.equal_changed[1] || refresh[1],
    ];
    // The paths the same on both sides are recorded as they are now, straight from the scans.
    let item_paths: Vec<RelPath> = plan.items.iter().map(|i| i.path.clone()).collect();
    drop(base);
    tracing::debug!(elapsed = ?started.elapsed(), items = plan.items.len(), "mirror run: planned");
    run.execute(plan.items)?;
    tracing::debug!(elapsed = ?started.elapsed(), "mirror run: plan carried out");
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
    if !options.dry_run {
        // A side whose index would say what it says now is left as it is; the others write
        // theirs at the same time (each ends with fsyncs).
        let commit = |transport: &mut &mut dyn Transport,
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
            match transport.call(request)? {
                Response::Done => Ok(()),
                other => Err(unexpected(&other)),
            }
        };
        let [ta, tb] = &mut run.transports;
        let [ia, ib] = &mut run.index;
        let [ca, cb] = run.index_changed;
        let (ra, rb) = rayon::join(|| commit(ta, ca, ia), || commit(tb, cb, ib));
        ra?;
        rb?;
    }
    tracing::debug!(elapsed = ?started.elapsed(), "mirror run: indexes written");
    progress.finish();
    Ok(run.outcome)
}

/// The answers of a batch of `count` requests.
fn batch(response: Response, count: usize) -> Result<Vec<BatchResponse>, SyncError> {
    match response {
        Response::Batch(answers) if answers.len() == count => Ok(answers),
        Response::Batch(answers) => Err(SyncError::Protocol(format!(
            "a batch of {count} requests got {} answers",
            answers.len()
        ))),
        other => Err(unexpected(&other)),
    }
}

fn scanned(response: Response) -> Result<ScanReply, SyncError> {
    match response {
        Response::Scanned(reply) => Ok(reply),
        other => Err(unexpected(&other)),
    }
}

fn unexpected<B: std::fmt::Debug>(response: &ResponseOf<B>) -> SyncError {
    let name = match response {
        ResponseOf::Failed(failure) => format!("failure {failure:?}"),
        other => format!("{other:?}").chars().take(60).collect(),
    };
    SyncError::Protocol(format!("unexpected answer: {name}"))
}

/// Why one step failed, for the report.
fn reason(failure: &Failure) -> String {
    match failure {
        Failure::Changed => {
            "changed during the sync; left as it is, the next run picks it up".to_owned()
        }
        Failure::HashMismatch => {
            "changed while it was being sent (hash mismatch); nothing was replaced".to_owned()
        }
        Failure::Io(message) => message.clone(),
        Failure::Invalid(message) => format!("refused by the replica: {message}"),
    }
}

/// A file written on the receiving side: installed now, or staged until the next flush.
enum Done {
    Now(Entry),
    Later(Handle),
}

/// The result of one step on one path, or why it failed.
type Step = Result<Done, String>;

/// The entries of a path on both sides after a step, and the staged write still to come.
type Taken = Result<([Option<Entry>; 2], Option<(Side, Handle)>), String>;

/// A staged write and what to record once it is installed.
struct Pending {
    handle: Handle,
    item: Item,
    entries: [Option<Entry>; 2],
}

/// Small files sent in one batch of requests (one round trip to each side).
const BATCH_FILES: usize = 256;
/// Bytes of small files sent in one batch.
const BATCH_BYTES: u64 = 8 << 20;

/// Staged writes on one side before the engine asks for a flush.
const FLUSH_FILES: usize = 512;
/// Staged bytes on one side before the engine asks for a flush.
const FLUSH_BYTES: u64 = 128 << 20;

struct Run<'a> {
    transports: [&'a mut dyn Transport; 2],
    nodes: [String; 2],
    dry_run: bool,
    /// The new last-synced state of each side (in no particular order, a path may come
    /// twice: the last counts).
    index: [Vec<(RelPath, Entry)>; 2],
    /// Whether a side's new state differs from its last-synced state.
    index_changed: [bool; 2],
    /// Directories that could not be made: what is beneath them is not attempted.
    failed_dirs: BTreeSet<RelPath>,
    outcome: Outcome,
    progress: &'a dyn Progress,
    /// Staged writes per side, and their bytes.
    pending: [Vec<Pending>; 2],
    pending_bytes: [u64; 2],
}

impl Run<'_> {
    fn call(&mut self, side: Side, request: Request) -> Result<Response, SyncError> {
        self.transports[side.index()].call(request)
    }

    fn execute(&mut self, items: Vec<Item>) -> Result<(), SyncError> {
        let bytes: u64 = items
            .iter()
            .filter(|i| i.decision != Decision::Equal)
            .filter_map(|i| i.result())
            .map(Entry::size)
            .sum();
        let changing = items
            .iter()
            .filter(|i| i.decision != Decision::Equal)
            .count();
        self.progress.start(changing as u64, bytes);
        let mut deletions: Vec<&Item> = Vec::new();
        let mut replaced_dirs: Vec<&Item> = Vec::new();
        let mut small: Vec<(&Item, Side, Entry)> = Vec::new();
        let mut small_bytes = 0;
        for item in &items {
            if let Some((from, source)) = self.small_take(item) {
                small_bytes += source.size();
                small.push((item, from, source));
                if small.len() >= BATCH_FILES || small_bytes >= BATCH_BYTES {
                    self.take_small(std::mem::take(&mut small))?;
                    small_bytes = 0;
                }
                continue;
            }
            if !small.is_empty() {
                // Keep the order: a directory made below comes after the files before it.
                self.take_small(std::mem::take(&mut small))?;
                small_bytes = 0;
            }
            match &item.decision {
                Decision::Equal => {
                    self.record(item, Ok([item.now[0].clone(), item.now[1].clone()]))
                }
                Decision::Take { from } => {
                    let to = from.other();
                    match (&item.now[from.index()], &item.now[to.index()]) {
                        (None, _) => deletions.push(item),
                        (Some(source), Some(dest)) if !source.is_dir() && dest.is_dir() => {
                            replaced_dirs.push(item);
                            deletions.push(item);
                        }
                        (Some(source), _) => {
                            let result = self.take(item, *from, source.clone())?;
                            self.record_or_defer(item, result)?;
                        }
                    }
                }
                Decision::Conflict { winner, copy } => {
                    self.conflict(item, *winner, copy.as_ref())?
                }
            }
        }
        self.take_small(small)?;
        self.flush_all()?;
        // Deletions, children before parents.
        let mut deleted_dirs: BTreeSet<RelPath> = BTreeSet::new();
        for item in deletions.iter().rev() {
            let Decision::Take { from } = item.decision else {
                continue;
            };
            let to = from.other();
            let Some(victim) = item.now[to.index()].clone() else {
                continue;
            };
            self.outcome.changes.push(format!(
                "delete on {}  {}",
                self.nodes[to.index()],
                item.path
            ));
            self.outcome.report.deleted += 1;
            let result = if self.dry_run {
                Ok(())
            } else {
                match self.call(
                    to,
                    Request::Delete {
                        path: item.path.clone(),
                        expect: victim,
                    },
                )? {
                    Response::Done => Ok(()),
                    Response::Failed(failure) => Err(reason(&failure)),
                    other => return Err(unexpected(&other)),
                }
            };
            self.progress.advance(0);
            if result.is_ok() {
                deleted_dirs.insert(item.path.clone());
            }
            let is_replaced = replaced_dirs.iter().any(|r| r.path == item.path);
            if !is_replaced || result.is_err() {
                self.record(item, result.map(|()| [None, None]));
            }
        }
        // Files and symlinks that take the place of a deleted directory.
        for item in replaced_dirs {
            if !deleted_dirs.contains(&item.path) {
                continue;
            }
            if let Decision::Take { from } = item.decision {
                if let Some(source) = item.now[from.index()].clone() {
                    let mut item = item.clone();
                    item.now[from.other().index()] = None;
                    let result = self.take(&item, from, source)?;
                    self.record_or_defer(&item, result)?;
                }
            }
        }
        self.flush_all()
    }

    /// The side and entry of a small file that `item` copies whole to the other side, when
    /// it is one (not a dry run, the receiver has no directory or same data there).
    fn small_take(&self, item: &Item) -> Option<(Side, Entry)> {
        if self.dry_run {
            return None;
        }
        let Decision::Take { from } = item.decision else {
            return None;
        };
        let source = item.now[from.index()].as_ref()?;
        if !matches!(source.kind, Kind::File { .. }) || source.size() >= DELTA_MIN {
            return None;
        }
        match &item.now[from.other().index()] {
            Some(dest) if dest.is_dir() || dest.same_data(source) => None,
            _ if self.under_failed_dir(&item.path) => None,
            _ => Some((from, source.clone())),
        }
    }

    /// Copies small files whole: one batch of reads from each sending side, one batch of
    /// writes to each receiving side.
    fn take_small(&mut self, group: Vec<(&Item, Side, Entry)>) -> Result<(), SyncError> {
        if group.is_empty() {
            return Ok(());
        }
        for from in [Side::A, Side::B] {
            let mine: Vec<&(&Item, Side, Entry)> =
                group.iter().filter(|(_, side, _)| *side == from).collect();
            if mine.is_empty() {
                continue;
            }
            let to = from.other();
            let reads = mine
                .iter()
                .map(|(item, _, source)| BatchRequest::ReadWhole {
                    path: item.path.clone(),
                    expect: source.clone(),
                })
                .collect();
            let read = batch(self.call(from, Request::Batch(reads))?, mine.len())?;
            let mut writes = Vec::new();
            let mut written: Vec<&(&Item, Side, Entry)> = Vec::new();
            for (one, response) in mine.iter().zip(read) {
                let (item, _, source) = *one;
                self.outcome.report.copied += 1;
                self.outcome.report.file_bytes += source.size();
                self.outcome.changes.push(format!(
                    "{} <- {}  {}",
                    self.nodes[to.index()],
                    self.nodes[from.index()],
                    item.path
                ));
                match response {
                    BatchResponse::Data(data) => {
                        self.outcome.report.bytes_transferred += data.len() as u64 + 5;
                        self.outcome.literal_bytes += data.len() as u64;
                        writes.push(BatchRequest::WriteWhole {
                            path: item.path.clone(),
                            replace: item.now[to.index()].clone(),
                            target: source.clone(),
                            data,
                        });
                        written.push(one);
                    }
                    BatchResponse::Failed(failure) => {
                        self.progress.advance(source.size());
                        self.record(item, Err(reason(&failure)));
                    }
                    other => return Err(unexpected(&other)),
                }
            }
            if writes.is_empty() {
                continue;
            }
            let answers = batch(self.call(to, Request::Batch(writes))?, written.len())?;
            for ((item, _, source), response) in written.into_iter().zip(answers) {
                self.progress.advance(source.size());
                let mut entries = [None, None];
                entries[from.index()] = Some(source.clone());
                let done = match response {
                    BatchResponse::StagedAs(handle) => Ok(Done::Later(handle)),
                    BatchResponse::Installed(entry) => Ok(Done::Now(entry)),
                    BatchResponse::Failed(failure) => Err(reason(&failure)),
                    other => return Err(unexpected(&other)),
                };
                self.defer(item, done.map(|done| fill(entries, to, done)));
            }
            self.flush_if_full(to)?;
        }
        Ok(())
    }

    /// Records now, or once the staged write is installed; flushes the side when enough is
    /// staged there.
    fn record_or_defer(&mut self, item: &Item, result: Taken) -> Result<(), SyncError> {
        if let Some(side) = self.defer(item, result) {
            self.flush_if_full(side)?;
        }
        Ok(())
    }

    /// Records now, or notes the staged write for the next flush of its side (returned). A
    /// flush installs everything staged on that side, so every staged write of a batch must
    /// be noted before the next flush: callers check [`Self::flush_if_full`] after the batch.
    fn defer(&mut self, item: &Item, result: Taken) -> Option<Side> {
        match result {
            Ok((entries, None)) => self.record(item, Ok(entries)),
            Ok((entries, Some((side, handle)))) => {
                let bytes = entries.iter().flatten().map(Entry::size).max().unwrap_or(0);
                let i = side.index();
                self.pending[i].push(Pending {
                    handle,
                    item: item.clone(),
                    entries,
                });
                self.pending_bytes[i] += bytes;
                return Some(side);
            }
            Err(why) => self.record(item, Err(why)),
        }
        None
    }

    fn flush_if_full(&mut self, side: Side) -> Result<(), SyncError> {
        let i = side.index();
        if self.pending[i].len() >= FLUSH_FILES || self.pending_bytes[i] >= FLUSH_BYTES {
            self.flush(side)?;
        }
        Ok(())
    }

    fn flush_all(&mut self) -> Result<(), SyncError> {
        self.flush(Side::A)?;
        self.flush(Side::B)
    }

    /// Asks `side` to install its staged writes, and records each.
    fn flush(&mut self, side: Side) -> Result<(), SyncError> {
        let i = side.index();
        if self.pending[i].is_empty() {
            return Ok(());
        }
        let mut pending: BTreeMap<Handle, Pending> = std::mem::take(&mut self.pending[i])
            .into_iter()
            .map(|p| (p.handle, p))
            .collect();
        self.pending_bytes[i] = 0;
        let results = match self.call(side, Request::Flush)? {
            Response::Flushed(results) => results,
            other => return Err(unexpected(&other)),
        };
        for (handle, result) in results {
            let Some(mut done) = pending.remove(&handle) else {
                return Err(SyncError::Protocol(format!(
                    "flushed an unknown write {handle}"
                )));
            };
            match result {
                Ok(entry) => {
                    done.entries[i] = Some(entry);
                    self.record(&done.item, Ok(done.entries));
                }
                Err(failure) => self.record(&done.item, Err(reason(&failure))),
            }
        }
        if let Some(missing) = pending.into_values().next() {
            return Err(SyncError::Protocol(format!(
                "the flush did not report {}",
                missing.item.path
            )));
        }
        Ok(())
    }

    /// Records a path in both new indexes: the entries now there, or (after a failure) the
    /// last-synced entries as they were, so that the next run tries again.
    fn record(&mut self, item: &Item, result: Result<[Option<Entry>; 2], String>) {
        let entries = match result {
            Ok(entries) => entries,
            Err(reason) => {
                if item.result().is_some_and(Entry::is_dir) {
                    self.failed_dirs.insert(item.path.clone());
                }
                self.outcome.report.failed.push(FailedPath {
                    path: PathBuf::from(item.path.as_str()),
                    reason,
                });
                item.base.clone()
            }
        };
        for (side, entry) in entries.into_iter().enumerate() {
            if entry != item.base[side] {
                self.index_changed[side] = true;
            }
            if let Some(entry) = entry {
                self.index[side].push((item.path.clone(), entry));
            }
        }
    }

    fn under_failed_dir(&self, path: &RelPath) -> bool {
        path.ancestors()
            .any(|a| self.failed_dirs.iter().any(|f| f.as_str() == a))
    }

    /// Makes the other side's `item.path` like `source` (from `from`).
    fn take(&mut self, item: &Item, from: Side, source: Entry) -> Result<Taken, SyncError> {
        let to = from.other();
        if self.under_failed_dir(&item.path) {
            return Ok(Err("its directory could not be made".to_owned()));
        }
        let dest = item.now[to.index()].clone();
        let step = self.install(from, &item.path, &source, &item.path, dest, None)?;
        let mut entries = [None, None];
        entries[from.index()] = Some(source);
        Ok(step.map(|done| fill(entries, to, done)))
    }

    fn conflict(
        &mut self,
        item: &Item,
        winner: Side,
        copy: Option<&RelPath>,
    ) -> Result<(), SyncError> {
        let loser = winner.other();
        let (Some(won), Some(lost)) = (
            item.now[winner.index()].clone(),
            item.now[loser.index()].clone(),
        ) else {
            return Ok(());
        };
        let Some(copy) = copy else {
            self.outcome.warnings.push(format!(
                "{}: conflict between two conflict copies; {}'s version kept, {}'s overwritten",
                item.path,
                self.nodes[winner.index()],
                self.nodes[loser.index()]
            ));
            let result = self.take(item, winner, won)?;
            return self.record_or_defer(item, result);
        };
        self.outcome.report.conflicts.push(Conflict {
            path: PathBuf::from(item.path.as_str()),
            kept_as: PathBuf::from(copy.as_str()),
            winner: self.nodes[winner.index()].clone(),
        });
        self.outcome.changes.push(format!(
            "conflict  {}: {}'s version kept, {}'s kept as {}",
            item.path,
            self.nodes[winner.index()],
            self.nodes[loser.index()],
            copy
        ));
        if self.dry_run {
            self.outcome.report.copied += 2;
            return Ok(());
        }
        // 1. On the loser's side, its version moves aside.
        let moved = match self.call(
            loser,
            Request::Rename {
                from: item.path.clone(),
                to: copy.clone(),
                expect: lost.clone(),
            },
        )? {
            Response::Installed(entry) => entry,
            Response::Failed(failure) => {
                self.record(item, Err(reason(&failure)));
                return Ok(());
            }
            other => return Err(unexpected(&other)),
        };
        // 2. The winner's version takes the name there (the moved version is a good basis).
        let basis = matches!(moved.kind, Kind::File { .. }).then(|| (copy.clone(), moved.clone()));
        let step = self.install(winner, &item.path, &won, &item.path, None, basis)?;
        let mut entries = [None, None];
        entries[winner.index()] = Some(won.clone());
        self.record_or_defer(item, step.map(|done| fill(entries, loser, done)))?;
        // 3. The moved version is copied to the winner's side under the copy's name.
        let basis = matches!(won.kind, Kind::File { .. }).then(|| (item.path.clone(), won.clone()));
        let step = self.install(loser, copy, &moved, copy, None, basis)?;
        let copy_item = Item {
            path: copy.clone(),
            now: [None, None],
            base: [None, None],
            decision: Decision::Take { from: loser },
        };
        let mut entries = [None, None];
        entries[loser.index()] = Some(moved);
        self.record_or_defer(&copy_item, step.map(|done| fill(entries, winner, done)))
    }

    /// Puts `source` (at `source_path` on `from`) at `path` on the other side, where `dest`
    /// is now. `basis` is a file on the receiving side to take copies from when `dest` is not
    /// one.
    fn install(
        &mut self,
        from: Side,
        source_path: &RelPath,
        source: &Entry,
        path: &RelPath,
        dest: Option<Entry>,
        basis: Option<(RelPath, Entry)>,
    ) -> Result<Step, SyncError> {
        let to = from.other();
        self.outcome.report.copied += 1;
        self.outcome.changes.push(format!(
            "{} <- {}  {}",
            self.nodes[to.index()],
            self.nodes[from.index()],
            path
        ));
        if self.dry_run {
            self.outcome.report.file_bytes += source.size();
            return Ok(Ok(Done::Now(source.clone())));
        }
        let response = match &source.kind {
            Kind::Dir => self.call(
                to,
                Request::Mkdir {
                    path: path.clone(),
                    mode: source.mode,
                    replace: dest,
                },
            )?,
            Kind::Symlink { target } => self.call(
                to,
                Request::Symlink {
                    path: path.clone(),
                    target: target.clone(),
                    replace: dest,
                },
            )?,
            Kind::File { .. } => {
                if let Some(dest) = dest.as_ref().filter(|d| d.same_data(source)) {
                    self.call(
                        to,
                        Request::Chmod {
                            path: path.clone(),
                            expect: dest.clone(),
                            mode: source.mode,
                            mtime_ns: source.mtime_ns,
                        },
                    )?
                } else {
                    let basis = match &dest {
                        Some(d) if matches!(d.kind, Kind::File { .. }) => {
                            Some((path.clone(), d.clone()))
                        }
                        _ => basis,
                    };
                    let step = self.transfer(from, source_path, source, path, dest, basis)?;
                    self.progress.advance(source.size());
                    return Ok(step);
                }
            }
        };
        self.progress.advance(0);
        match response {
            Response::Installed(entry) => Ok(Ok(Done::Now(entry))),
            Response::Failed(failure) => Ok(Err(reason(&failure))),
            other => Err(unexpected(&other)),
        }
    }

    /// Sends a file: as a delta against `basis` when there is one worth it, whole otherwise;
    /// a delta whose result fails the hash check is retried whole once.
    fn transfer(
        &mut self,
        from: Side,
        source_path: &RelPath,
        source: &Entry,
        path: &RelPath,
        dest: Option<Entry>,
        basis: Option<(RelPath, Entry)>,
    ) -> Result<Step, SyncError> {
        let basis = basis.filter(|(_, b)| b.size() >= DELTA_MIN && source.size() >= DELTA_MIN);
        if basis.is_none() {
            let whole = self.transfer_once(from, source_path, source, path, dest, None)?;
            return Ok(whole.map_err(|f| reason(&f)));
        }
        // A delta with fast matching; after a false match, one where every block is checked;
        // after that, the whole file.
        for matching in [Matching::Fast, Matching::Strict] {
            let delta = basis.clone().map(|(p, e)| (p, e, matching));
            match self.transfer_once(from, source_path, source, path, dest.clone(), delta)? {
                Err(Failure::HashMismatch) => {}
                other => return Ok(other.map_err(|f| reason(&f))),
            }
        }
        let whole = self.transfer_once(from, source_path, source, path, dest, None)?;
        Ok(whole.map_err(|f| reason(&f)))
    }

    fn transfer_once(
        &mut self,
        from: Side,
        source_path: &RelPath,
        source: &Entry,
        path: &RelPath,
        dest: Option<Entry>,
        delta: Option<(RelPath, Entry, Matching)>,
    ) -> Result<Result<Done, Failure>, SyncError> {
        let matching = delta.as_ref().map_or(Matching::Strict, |d| d.2);
        let basis = delta.map(|(path, entry, _)| (path, entry));
        let to = from.other();
        self.outcome.report.file_bytes += source.size();
        let signature = match &basis {
            Some((basis_path, basis_entry)) => match self.call(
                to,
                Request::Signature {
                    path: basis_path.clone(),
                    expect: basis_entry.clone(),
                },
            )? {
                Response::Signature(bytes) => {
                    self.outcome.signature_bytes += bytes.len() as u64;
                    self.outcome.report.bytes_transferred += bytes.len() as u64;
                    Some(bytes)
                }
                Response::Failed(_) => None,
                other => return Err(unexpected(&other)),
            },
            None => None,
        };
        let basis = if signature.is_some() { basis } else { None };
        let write = match self.call(
            to,
            Request::WriteBegin {
                path: path.clone(),
                replace: dest,
                basis,
                target: source.clone(),
            },
        )? {
            Response::Opened(handle) => handle,
            Response::Failed(failure) => return Ok(Err(failure)),
            other => return Err(unexpected(&other)),
        };
        let read = match self.call(
            from,
            Request::ReadBegin {
                path: source_path.clone(),
                expect: source.clone(),
                signature,
                matching,
            },
        )? {
            Response::Opened(handle) => handle,
            Response::Failed(failure) => {
                self.call(to, Request::Abort { handle: write })?;
                return Ok(Err(failure));
            }
            other => return Err(unexpected(&other)),
        };
        // The sender computes the next round of instructions while the receiver applies the
        // last one.
        let mut unwritten: Option<Vec<DeltaOp>> = None;
        loop {
            let (read_next, written) = match unwritten.take() {
                None => (self.call(from, Request::ReadNext { handle: read })?, None),
                Some(ops) => {
                    let [a, b] = &mut self.transports;
                    let (sender, receiver) = match from {
                        Side::A => (a, b),
                        Side::B => (b, a),
                    };
                    let (r, w) = rayon::join(
                        || sender.call(Request::ReadNext { handle: read }),
                        || receiver.call(Request::WriteOps { handle: write, ops }),
                    );
                    (r?, Some(w?))
                }
            };
            match written {
                None | Some(Response::Done) => {}
                Some(Response::Failed(failure)) => {
                    if !matches!(read_next, Response::Ops(ref ops) if ops.is_empty()) {
                        self.call(from, Request::Abort { handle: read })?;
                    }
                    return Ok(Err(failure));
                }
                Some(other) => return Err(unexpected(&other)),
            }
            let ops = match read_next {
                Response::Ops(ops) => ops,
                Response::Failed(failure) => {
                    self.call(to, Request::Abort { handle: write })?;
                    return Ok(Err(failure));
                }
                other => return Err(unexpected(&other)),
            };
            if ops.is_empty() {
                break;
            }
            for op in &ops {
                self.outcome.report.bytes_transferred += op.wire_len();
                if let DeltaOp::Literal(data) = op {
                    self.outcome.literal_bytes += data.len() as u64;
                }
            }
            unwritten = Some(ops);
        }
        match self.call(to, Request::WriteCommit { handle: write })? {
            Response::Staged => Ok(Ok(Done::Later(write))),
            Response::Installed(entry) => Ok(Ok(Done::Now(entry))),
            Response::Failed(failure) => Ok(Err(failure)),
            other => Err(unexpected(&other)),
        }
    }
}

/// `entries` with `side`'s entry filled in (now, or when its staged write is installed).
fn fill(
    mut entries: [Option<Entry>; 2],
    side: Side,
    done: Done,
) -> ([Option<Entry>; 2], Option<(Side, Handle)>) {
    match done {
        Done::Now(entry) => {
            entries[side.index()] = Some(entry);
            (entries, None)
        }
        Done::Later(handle) => (entries, Some((side, handle))),
    }
}

impl Outcome {
    /// One line for a human: what changed and what crossed between the replicas.
    pub fn summary(&self) -> String {
        let report = &self.report;
        let mut text = format!(
            "{} copied, {} deleted, {} conflict{}",
            report.copied,
            report.deleted,
            report.conflicts.len(),
            if report.conflicts.len() == 1 { "" } else { "s" }
        );
        if !report.failed.is_empty() {
            text.push_str(&format!(", {} failed", report.failed.len()));
        }
        text.push_str(&format!(
            "; sent {} for {} of files (literal {}, signatures {}); scanned {} + {} paths, hashed {}",
            human_bytes(report.bytes_transferred),
            human_bytes(report.file_bytes),
            human_bytes(self.literal_bytes),
            human_bytes(self.signature_bytes),
            self.scanned[0],
            self.scanned[1],
            human_bytes(self.hashed_bytes),
        ));
        text
    }
}

/// `1.5 MiB`, `312 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
