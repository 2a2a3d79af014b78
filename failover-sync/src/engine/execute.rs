//! Carrying out a plan: each path's action in path order (small files batched), deletions
//! children first, then the files that take the place of a deleted directory; conflicts keep
//! both versions.

use std::collections::BTreeSet;
use std::path::PathBuf;

use failover_core::Conflict;

use super::answers::{batch, reason, unexpected};
use super::run::{fill, Done, Run, Taken};
use super::transfer::DELTA_MIN;
use crate::entry::{Entry, Kind};
use crate::error::SyncError;
use crate::path::RelPath;
use crate::protocol::{BatchRequest, BatchResponse, Request, Response};
use crate::reconcile::{Item, PathAction, Side};

/// Small files sent in one batch of requests (one round trip to each side).
const BATCH_FILES: usize = 256;
/// Bytes of small files sent in one batch.
const BATCH_BYTES: u64 = 8 << 20;

/// Paths whose other side is deleted after everything else: deletions, and the files and
/// symlinks that take the place of a directory (deleted first, then copied).
#[derive(Default)]
struct Later<'i> {
    deletions: Vec<&'i Item>,
    replaced_dirs: Vec<&'i Item>,
}

impl Run<'_> {
    /// Carries out `items` (the plan, sorted by path) and flushes every staged write.
    pub(super) fn execute(&mut self, items: Vec<Item>) -> Result<(), SyncError> {
        let bytes: u64 = items
            .iter()
            .filter(|i| i.action != PathAction::Equal)
            .filter_map(|i| i.result())
            .map(Entry::size)
            .sum();
        let changing = items
            .iter()
            .filter(|i| i.action != PathAction::Equal)
            .count();
        self.progress.start(changing as u64, bytes);
        let mut later = Later::default();
        let mut small: Vec<(&Item, Side, Entry)> = Vec::new();
        let mut small_bytes = 0;
        let mut moving: Vec<&Item> = Vec::new();
        for item in &items {
            if self.moves.contains_key(&item.path) {
                moving.push(item);
                if moving.len() >= BATCH_FILES {
                    self.take_moves(std::mem::take(&mut moving))?;
                }
                continue;
            }
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
            if !moving.is_empty() {
                self.take_moves(std::mem::take(&mut moving))?;
            }
            self.carry_out(item, &mut later)?;
        }
        self.take_small(small)?;
        self.take_moves(moving)?;
        self.flush_all()?;
        let deleted_dirs = self.delete(&later)?;
        self.replace_dirs(&later.replaced_dirs, &deleted_dirs)?;
        self.flush_all()
    }

    /// Carries out one path's action, or (a deletion, a directory replaced) notes it for later.
    fn carry_out<'i>(&mut self, item: &'i Item, later: &mut Later<'i>) -> Result<(), SyncError> {
        match &item.action {
            PathAction::Equal => self.record(item, Ok([item.now[0].clone(), item.now[1].clone()])),
            PathAction::Take { from } => {
                let to = from.other();
                match (&item.now[from.index()], &item.now[to.index()]) {
                    (None, _) => later.deletions.push(item),
                    (Some(source), Some(dest)) if !source.is_dir() && dest.is_dir() => {
                        later.replaced_dirs.push(item);
                        later.deletions.push(item);
                    }
                    (Some(source), _) => {
                        let result = self.take(item, *from, source.clone())?;
                        self.record_or_defer(item, result)?;
                    }
                }
            }
            PathAction::Conflict { winner, copy } => self.conflict(item, *winner, copy.as_ref())?,
        }
        Ok(())
    }

    /// The deletions, children before parents; returns the paths deleted.
    fn delete(&mut self, later: &Later<'_>) -> Result<BTreeSet<RelPath>, SyncError> {
        let mut deleted_dirs: BTreeSet<RelPath> = BTreeSet::new();
        for item in later.deletions.iter().rev() {
            let PathAction::Take { from } = item.action else {
                continue;
            };
            let to = from.other();
            let Some(victim) = item.now[to.index()].clone() else {
                continue;
            };
            if self.moved.contains(&item.path) {
                // Renamed to where the other side moved it.
                self.record(item, Ok([None, None]));
                continue;
            }
            self.summary.changes.push(format!(
                "delete on {}  {}",
                self.nodes[to.index()],
                item.path
            ));
            self.summary.report.deleted += 1;
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
            let is_replaced = later.replaced_dirs.iter().any(|r| r.path == item.path);
            if !is_replaced || result.is_err() {
                self.record(item, result.map(|()| [None, None]));
            }
        }
        Ok(deleted_dirs)
    }

    /// Files and symlinks that take the place of a deleted directory.
    fn replace_dirs(
        &mut self,
        replaced_dirs: &[&Item],
        deleted_dirs: &BTreeSet<RelPath>,
    ) -> Result<(), SyncError> {
        for &item in replaced_dirs {
            if !deleted_dirs.contains(&item.path) {
                continue;
            }
            if let PathAction::Take { from } = item.action {
                if let Some(source) = item.now[from.index()].clone() {
                    let mut item = item.clone();
                    item.now[from.other().index()] = None;
                    let result = self.take(&item, from, source)?;
                    self.record_or_defer(&item, result)?;
                }
            }
        }
        Ok(())
    }

    /// The side and entry of a small file that `item` copies whole to the other side, when
    /// it is one (not a dry run, the receiver has no directory or same data there).
    fn small_take(&self, item: &Item) -> Option<(Side, Entry)> {
        if self.dry_run {
            return None;
        }
        let PathAction::Take { from } = item.action else {
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
                self.summary.report.copied += 1;
                self.summary.report.file_bytes += source.size();
                self.summary.changes.push(format!(
                    "{} <- {}  {}",
                    self.nodes[to.index()],
                    self.nodes[from.index()],
                    item.path
                ));
                match response {
                    BatchResponse::Data(data) => {
                        self.summary.report.bytes_transferred += data.len() as u64 + 5;
                        self.summary.literal_bytes += data.len() as u64;
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

    fn under_failed_dir(&self, path: &RelPath) -> bool {
        path.ancestors()
            .any(|a| self.failed_dirs.iter().any(|f| f.as_str() == a))
    }

    /// Makes the other side's `item.path` like `source` (from `from`).
    pub(super) fn take(
        &mut self,
        item: &Item,
        from: Side,
        source: Entry,
    ) -> Result<Taken, SyncError> {
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
            self.summary.warnings.push(format!(
                "{}: conflict between two conflict copies; {}'s version kept, {}'s overwritten",
                item.path,
                self.nodes[winner.index()],
                self.nodes[loser.index()]
            ));
            let result = self.take(item, winner, won)?;
            return self.record_or_defer(item, result);
        };
        self.summary.report.conflicts.push(Conflict {
            path: PathBuf::from(item.path.as_str()),
            kept_as: PathBuf::from(copy.as_str()),
            winner: self.nodes[winner.index()].clone(),
        });
        self.summary.changes.push(format!(
            "conflict  {}: {}'s version kept, {}'s kept as {}",
            item.path,
            self.nodes[winner.index()],
            self.nodes[loser.index()],
            copy
        ));
        if self.dry_run {
            self.summary.report.copied += 2;
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
            action: PathAction::Take { from: loser },
        };
        let mut entries = [None, None];
        entries[loser.index()] = Some(moved);
        self.record_or_defer(&copy_item, step.map(|done| fill(entries, winner, done)))
    }
}
