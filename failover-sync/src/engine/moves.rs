//! Carrying out the plan's moves ([`crate::moves`]): a batch of renames on the receiving side
//! instead of a deletion and a copy. The replica renames only when the old path is still what
//! its scan saw (size, mtime, inode, ctime: the identity its BLAKE3 was taken for) and the new
//! one is free; a rename it refuses falls back to the copy and the deletion.

use super::answers::{batch, reason, unexpected};
use super::run::Run;
use crate::error::SyncError;
use crate::protocol::{BatchRequest, BatchResponse, Request, Response};
use crate::reconcile::{Item, PathAction, Side};

impl Run<'_> {
    /// Renames the moves whose new paths are `group`'s items, one batch per side.
    pub(super) fn take_moves(&mut self, group: Vec<&Item>) -> Result<(), SyncError> {
        for side in [Side::A, Side::B] {
            let mine: Vec<(&Item, crate::moves::Move)> = group
                .iter()
                .filter_map(|item| {
                    let found = self.moves.get(&item.path)?;
                    (found.side == side).then(|| (*item, found.clone()))
                })
                .collect();
            if mine.is_empty() {
                continue;
            }
            if self.dry_run {
                for (item, found) in &mine {
                    self.moved_note(item, found);
                }
                continue;
            }
            let renames = mine
                .iter()
                .map(|(_, found)| BatchRequest::Rename {
                    from: found.from.clone(),
                    to: found.to.clone(),
                    expect: found.expect.clone(),
                })
                .collect();
            let answers = batch(self.call(side, Request::Batch(renames))?, mine.len())?;
            for ((item, found), answer) in mine.into_iter().zip(answers) {
                match answer {
                    BatchResponse::Installed(entry) => self.moved(item, &found, entry)?,
                    BatchResponse::Failed(failure) => {
                        tracing::debug!(
                            "mirror: {} -> {} not renamed ({}); sent instead",
                            found.from,
                            found.to,
                            reason(&failure)
                        );
                        self.moves.remove(&item.path);
                        let PathAction::Take { from } = item.action else {
                            continue;
                        };
                        if let Some(source) = item.now[from.index()].clone() {
                            let result = self.take(item, from, source)?;
                            self.record_or_defer(item, result)?;
                        }
                    }
                    other => return Err(unexpected(&other)),
                }
            }
        }
        Ok(())
    }

    /// Notes a move done (or, in a dry run, to be done): its old path is then recorded as
    /// deleted on both sides instead of deleted again.
    fn moved_note(&mut self, item: &Item, found: &crate::moves::Move) {
        self.moved.insert(found.from.clone());
        self.summary.moved += 1;
        self.summary.changes.push(format!(
            "move on {}  {} -> {}",
            self.nodes[found.side.index()],
            found.from,
            item.path
        ));
        self.progress.advance(0);
    }

    /// Records a rename done: the mode, owner and mtime of the sender's version follow when
    /// they differ from the renamed file's.
    fn moved(
        &mut self,
        item: &Item,
        found: &crate::moves::Move,
        renamed: crate::entry::Entry,
    ) -> Result<(), SyncError> {
        self.moved_note(item, found);
        let from = found.side.other();
        let Some(source) = item.now[from.index()].clone() else {
            return Ok(());
        };
        let mut entries = [None, None];
        entries[from.index()] = Some(source.clone());
        if renamed.same_content(&source) && renamed.mtime_ns == source.mtime_ns {
            entries[found.side.index()] = Some(renamed);
            self.record(item, Ok(entries));
            return Ok(());
        }
        let chmod = Request::Chmod {
            path: item.path.clone(),
            expect: renamed,
            mode: source.mode,
            owner: source.owner.clone(),
            mtime_ns: source.mtime_ns,
            xattrs: source.xattrs.clone(),
        };
        let result = match self.call(found.side, chmod)? {
            Response::Installed(entry) => {
                entries[found.side.index()] = Some(entry);
                Ok(entries)
            }
            Response::Failed(failure) => Err(reason(&failure)),
            other => return Err(unexpected(&other)),
        };
        self.record(item, result);
        Ok(())
    }
}
