//! Recording a run: the touched directories fsynced, then the index written (whole, or the
//! scope of a scoped run merged into the index kept).

use std::os::fd::AsFd;

use super::{LocalReplica, FSYNC_THREADS};
use crate::entry::Entry;
use crate::error::SyncError;
use crate::fsx;
use crate::index::Index;
use crate::path::RelPath;
use crate::protocol::BatchResponse;

impl LocalReplica {
    pub(super) fn commit(
        &mut self,
        entries: Vec<(RelPath, Entry)>,
    ) -> Result<BatchResponse, SyncError> {
        self.sync_touched()?;
        self.store(crate::index::sorted_entries(entries))
    }

    pub(super) fn commit_paths(
        &mut self,
        scope: &[RelPath],
        entries: Vec<(RelPath, Entry)>,
    ) -> Result<BatchResponse, SyncError> {
        self.sync_touched()?;
        let (index, _) = self.index()?;
        // Made minimal (sorted, none beneath another): an entry is replaced when it lies within
        // the last part at or before it.
        let scope = crate::path::minimal_scope(scope.iter().cloned());
        let outside = |path: &RelPath| {
            let at = scope.partition_point(|part| part <= path);
            !(at > 0 && path.is_within(&scope[at - 1]))
        };
        let mut all: Vec<(RelPath, Entry)> = index
            .entries
            .iter()
            .filter(|(path, _)| outside(path))
            .cloned()
            .collect();
        all.extend(entries);
        self.store(crate::index::sorted_entries(all))
    }

    /// Writes the index of `entries` (sorted by path, each once).
    fn store(&mut self, entries: Vec<(RelPath, Entry)>) -> Result<BatchResponse, SyncError> {
        let index = Index {
            entries,
            written_at_ns: fsx::now_ns(),
            xattrs: self.xattrs,
        };
        self.cached_index = None;
        index.store(&self.index_path)?;
        self.cached_index = Some(std::sync::Arc::new(index));
        self.prune_versions(false);
        Ok(BatchResponse::Done)
    }

    /// Every rename of this run is on disk before the index says it happened (the files
    /// themselves were fsynced before their rename).
    fn sync_touched(&mut self) -> Result<(), SyncError> {
        if self.config.fsync {
            // Every rename of this run is on disk before the index says it happened (the
            // files themselves were fsynced before their rename).
            let dirs: Vec<String> = std::mem::take(&mut self.touched_dirs).into_iter().collect();
            let chunk = dirs.len().div_ceil(FSYNC_THREADS).max(1);
            let root = self.root.as_fd();
            let failures: Vec<(String, std::io::Error)> = std::thread::scope(|scope| {
                let workers: Vec<_> = dirs
                    .chunks(chunk)
                    .map(|part| {
                        scope.spawn(move || {
                            let mut failed = Vec::new();
                            for dir in part {
                                let rel = (!dir.is_empty()).then_some(dir.as_str());
                                match fsx::open_dir(root, rel) {
                                    Ok(fd) => {
                                        if let Err(e) = rustix::fs::fsync(&fd) {
                                            failed.push((dir.clone(), e.into()));
                                        }
                                    }
                                    // Deleted later in the run: its parent is in the set too.
                                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                                    Err(e) => failed.push((dir.clone(), e)),
                                }
                            }
                            failed
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|w| {
                        w.join().unwrap_or_else(|_| {
                            vec![(
                                String::new(),
                                std::io::Error::other("fsync thread panicked"),
                            )]
                        })
                    })
                    .collect()
            });
            if let Some((dir, e)) = failures.into_iter().next() {
                return Err(SyncError::io(self.config.root.join(dir), e));
            }
        } else {
            self.touched_dirs.clear();
        }
        Ok(())
    }
}
