//! Reading a replica: its scan (with the index of the last sync), whole small files,
//! signatures, and the deltas a sender computes against the receiver's signature.

use std::io::Read;
use std::os::fd::AsFd;

use super::LocalReplica;
use crate::delta::{DeltaReader, Matching, Next};
use crate::entry::Entry;
use crate::error::SyncError;
use crate::fsx;
use crate::path::RelPath;
use crate::protocol::{BatchResponse, Failure, Handle, ScanReply};
use crate::refine::FineRange;
use crate::scan::{self, Previous};

impl LocalReplica {
    pub(super) fn scan(&mut self, scope: Option<&[RelPath]>) -> Result<BatchResponse, SyncError> {
        let (index, index_problem) = self.index()?;
        // A path excluded now is neither deleted nor copied: it leaves the index.
        let base: Vec<(RelPath, Entry)> = index
            .entries
            .iter()
            .filter(|(path, entry)| !self.excludes.is_excluded(path.as_str(), entry.is_dir()))
            .cloned()
            .collect();
        let index_files = base.iter().filter(|(_, e)| !e.is_dir()).count() as u64;
        let previous = Previous {
            entries: &base,
            trust_before_ns: index.written_at_ns.saturating_sub(1_000_000_000),
            refresh_before_ns: fsx::now_ns().saturating_sub(1_000_000_000),
        };
        let scanned = match scope {
            None => scan::scan(self.root.as_fd(), &self.excludes, &previous),
            Some(scope) => scan::scan_scope(self.root.as_fd(), scope, &self.excludes, &previous),
        };
        let mut current = scanned.entries;
        current.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.fill_scanned(
            &mut current,
            (index.xattrs == self.xattrs).then_some(&previous),
        );
        let base: Vec<(RelPath, Entry)> = match scope {
            None => base,
            Some(scope) => in_scope(&base, scope),
        };
        Ok(BatchResponse::Scanned(ScanReply {
            current,
            base,
            index_problem,
            problems: scanned.problems,
            hashed_bytes: scanned.hashed_bytes,
            index_files,
            refresh: scanned.refresh,
        }))
    }

    pub(super) fn read_whole(&self, path: &RelPath, expect: &Entry) -> BatchResponse {
        let file = match self.open_expected(path, expect) {
            Ok(file) => file,
            Err(response) => return response,
        };
        let mut data = Vec::with_capacity(expect.size() as usize);
        match file.take(expect.size() + 1).read_to_end(&mut data) {
            Ok(_) if data.len() as u64 == expect.size() => BatchResponse::Data(data),
            Ok(_) => BatchResponse::Failed(Failure::Changed),
            Err(e) => self.io_failure(path, e),
        }
    }

    /// The signature of the file `path`, which must still be `expect` (the basis of a delta).
    pub(super) fn signature(&self, path: &RelPath, expect: &Entry) -> BatchResponse {
        match self.open_expected(path, expect) {
            Ok(file) => match crate::delta::signature(&file, expect.size()) {
                Ok(signature) => BatchResponse::Signature(signature),
                Err(e) => self.io_failure(path, e),
            },
            Err(response) => response,
        }
    }

    /// Opens `path` (which must still be `expect`) for reading as a delta against
    /// `signature` (whole without one).
    pub(super) fn read_begin(
        &mut self,
        path: &RelPath,
        expect: &Entry,
        signature: Option<Vec<u8>>,
        matching: Matching,
    ) -> BatchResponse {
        match self.open_expected(path, expect) {
            Ok(file) => match DeltaReader::new(file, expect.size(), signature, matching) {
                Ok(reader) => {
                    let handle = self.handle_id();
                    self.reads.insert(handle, reader);
                    BatchResponse::Opened(handle)
                }
                Err(e) => BatchResponse::Failed(Failure::Invalid(format!("{path}: {e}"))),
            },
            Err(response) => response,
        }
    }

    /// The next instructions of the open read `handle` (none when it is done, and closed), or
    /// the fine signatures its round needs first.
    pub(super) fn read_next(&mut self, handle: Handle) -> BatchResponse {
        match self.reads.get_mut(&handle) {
            None => BatchResponse::Failed(Failure::Invalid(format!("no open read {handle}"))),
            Some(reader) => match reader.next_round() {
                Ok(Next::Refine(ranges)) => BatchResponse::Refine(ranges),
                Ok(Next::Ops(ops)) => {
                    if ops.is_empty() {
                        self.reads.remove(&handle);
                    }
                    BatchResponse::Ops(ops)
                }
                Err(e) => {
                    self.reads.remove(&handle);
                    BatchResponse::Failed(Failure::Io(e.to_string()))
                }
            },
        }
    }

    /// The round of the open read `handle` that asked for fine signatures, matched with them.
    pub(super) fn read_refine(
        &mut self,
        handle: Handle,
        signatures: Vec<Vec<u8>>,
    ) -> BatchResponse {
        match self.reads.get_mut(&handle) {
            None => BatchResponse::Failed(Failure::Invalid(format!("no open read {handle}"))),
            Some(reader) => match reader.refine(signatures) {
                Ok(ops) => BatchResponse::Ops(ops),
                Err(e) => {
                    self.reads.remove(&handle);
                    BatchResponse::Failed(Failure::Invalid(format!(
                        "the delta's second round: {e}"
                    )))
                }
            },
        }
    }

    /// Fine signatures of stretches of the basis `path`, which must still be `expect`.
    pub(super) fn sign_ranges(
        &self,
        path: &RelPath,
        expect: &Entry,
        ranges: &[FineRange],
    ) -> BatchResponse {
        match self.open_expected(path, expect) {
            Ok(file) => match crate::refine::sign(&file, expect.size(), ranges) {
                Ok(signatures) => BatchResponse::Signatures(signatures),
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    BatchResponse::Failed(Failure::Invalid(format!("{path}: {e}")))
                }
                Err(e) => self.io_failure(path, e),
            },
            Err(response) => response,
        }
    }
}

/// The entries of `base` (sorted by path) at and beneath the paths of `scope`, sorted.
fn in_scope(base: &[(RelPath, Entry)], scope: &[RelPath]) -> Vec<(RelPath, Entry)> {
    let mut found: Vec<(RelPath, Entry)> = Vec::new();
    for part in scope {
        found.extend(crate::index::within(base, part).cloned());
    }
    crate::index::sorted_entries(found)
}
