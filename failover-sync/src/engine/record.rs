//! Recording what each step left: the new index entries of both sides, failures, and the
//! staged writes that a flush installs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use failover_core::FailedPath;

use super::answers::{reason, unexpected};
use super::run::{Pending, Run, Taken};
use crate::entry::Entry;
use crate::error::SyncError;
use crate::protocol::{Handle, Request, Response};
use crate::reconcile::{Item, Side};

/// Staged writes on one side before the engine asks for a flush.
const FLUSH_FILES: usize = 512;
/// Staged bytes on one side before the engine asks for a flush.
const FLUSH_BYTES: u64 = 128 << 20;

impl Run<'_> {
    /// Records now, or once the staged write is installed; flushes the side when enough is
    /// staged there.
    pub(super) fn record_or_defer(&mut self, item: &Item, result: Taken) -> Result<(), SyncError> {
        if let Some(side) = self.defer(item, result) {
            self.flush_if_full(side)?;
        }
        Ok(())
    }

    /// Records now, or notes the staged write for the next flush of its side (returned). A
    /// flush installs everything staged on that side, so every staged write of a batch must
    /// be noted before the next flush: callers check [`Self::flush_if_full`] after the batch.
    pub(super) fn defer(&mut self, item: &Item, result: Taken) -> Option<Side> {
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

    pub(super) fn flush_if_full(&mut self, side: Side) -> Result<(), SyncError> {
        let i = side.index();
        if self.pending[i].len() >= FLUSH_FILES || self.pending_bytes[i] >= FLUSH_BYTES {
            self.flush(side)?;
        }
        Ok(())
    }

    pub(super) fn flush_all(&mut self) -> Result<(), SyncError> {
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
    pub(super) fn record(&mut self, item: &Item, result: Result<[Option<Entry>; 2], String>) {
        let entries = match result {
            Ok(entries) => entries,
            Err(reason) => {
                if item.result().is_some_and(Entry::is_dir) {
                    self.failed_dirs.insert(item.path.clone());
                }
                self.summary.report.failed.push(FailedPath {
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
}
