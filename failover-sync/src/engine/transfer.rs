//! Sending one path to the other side: a directory, a symlink or a mode change in one
//! request; a file as a delta against a basis the receiver has (fast matching, then strict after
//! a false match, then whole), or whole, the sender and the receiver working at once.

use super::answers::{reason, unexpected};
use super::run::{Done, Run, Step};
use crate::delta::{DeltaOp, Matching};
use crate::entry::{Entry, Kind};
use crate::error::SyncError;
use crate::path::RelPath;
use crate::protocol::{Failure, Handle, Request, Response};
use crate::reconcile::Side;
use crate::refine::FineRange;

/// Files smaller than this are sent whole: a signature round trip costs more than it saves.
pub(super) const DELTA_MIN: u64 = 64 << 10;

impl Run<'_> {
    /// Puts `source` (at `source_path` on `from`) at `path` on the other side, where `dest`
    /// is now. `basis` is a file on the receiving side to take copies from when `dest` is not
    /// one.
    pub(super) fn install(
        &mut self,
        from: Side,
        source_path: &RelPath,
        source: &Entry,
        path: &RelPath,
        dest: Option<Entry>,
        basis: Option<(RelPath, Entry)>,
    ) -> Result<Step, SyncError> {
        let to = from.other();
        self.summary.report.copied += 1;
        self.summary.changes.push(format!(
            "{} <- {}  {}",
            self.nodes[to.index()],
            self.nodes[from.index()],
            path
        ));
        if self.dry_run {
            self.summary.report.file_bytes += source.size();
            return Ok(Ok(Done::Now(source.clone())));
        }
        let response = match &source.kind {
            Kind::Dir => self.call(
                to,
                Request::Mkdir {
                    path: path.clone(),
                    mode: source.mode,
                    owner: source.owner.clone(),
                    replace: dest,
                    xattrs: source.xattrs.clone(),
                },
            )?,
            Kind::Symlink { target } => self.call(
                to,
                Request::Symlink {
                    path: path.clone(),
                    target: target.clone(),
                    owner: source.owner.clone(),
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
                            owner: source.owner.clone(),
                            mtime_ns: source.mtime_ns,
                            xattrs: source.xattrs.clone(),
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

    /// One attempt at sending a file: whole, or as a delta with `delta`'s basis and matching.
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
        self.summary.report.file_bytes += source.size();
        let signature = self.signature(to, basis.as_ref())?;
        let basis = if signature.is_some() { basis } else { None };
        let write = match self.call(
            to,
            Request::WriteBegin {
                path: path.clone(),
                replace: dest,
                basis: basis.clone(),
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
        if let Err(failure) = self.pump(from, read, write, basis.as_ref())? {
            return Ok(Err(failure));
        }
        match self.call(to, Request::WriteCommit { handle: write })? {
            Response::Staged => Ok(Ok(Done::Later(write))),
            Response::Installed(entry) => Ok(Ok(Done::Now(entry))),
            Response::Failed(failure) => Ok(Err(failure)),
            other => Err(unexpected(&other)),
        }
    }

    /// The signature of `basis` on side `to`, when there is a basis and it is still there.
    fn signature(
        &mut self,
        to: Side,
        basis: Option<&(RelPath, Entry)>,
    ) -> Result<Option<Vec<u8>>, SyncError> {
        let Some((basis_path, basis_entry)) = basis else {
            return Ok(None);
        };
        match self.call(
            to,
            Request::Signature {
                path: basis_path.clone(),
                expect: basis_entry.clone(),
            },
        )? {
            Response::Signature(bytes) => {
                self.summary.signature_bytes += bytes.len() as u64;
                self.summary.report.bytes_transferred += bytes.len() as u64;
                Ok(Some(bytes))
            }
            Response::Failed(_) => Ok(None),
            other => Err(unexpected(&other)),
        }
    }

    /// Carries the instructions of the open `read` on `from` to the open `write` on the other
    /// side until the read is done. The sender computes the next round of instructions while
    /// the receiver applies the last one; a round that asks for fine signatures of the
    /// receiver's `basis` gets them first. After a failure, the other end is aborted.
    fn pump(
        &mut self,
        from: Side,
        read: Handle,
        write: Handle,
        basis: Option<&(RelPath, Entry)>,
    ) -> Result<Result<(), Failure>, SyncError> {
        let to = from.other();
        let mut unwritten: Option<Vec<DeltaOp>> = None;
        loop {
            let (read_next, written) = match unwritten.take() {
                None => (self.call(from, Request::ReadNext { handle: read })?, None),
                Some(ops) => {
                    let [a, b] = &mut self.links;
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
            let read_next = match read_next {
                Response::Refine(ranges) => self.second_round(from, read, basis, ranges)?,
                other => other,
            };
            let ops = match read_next {
                Response::Ops(ops) => ops,
                Response::Failed(failure) => {
                    self.call(to, Request::Abort { handle: write })?;
                    return Ok(Err(failure));
                }
                other => return Err(unexpected(&other)),
            };
            if ops.is_empty() {
                return Ok(Ok(()));
            }
            for op in &ops {
                self.summary.report.bytes_transferred += op.wire_len();
                if let DeltaOp::Literal(data) = op {
                    self.summary.literal_bytes += data.len() as u64;
                }
            }
            unwritten = Some(ops);
        }
    }

    /// The second round of a delta ([`crate::refine`]): the receiver signs the stretches of
    /// `basis` the sender asked for, and the sender matches the round's literals against them.
    /// A receiver that cannot sign them (the basis changed) leaves the literals as they are.
    fn second_round(
        &mut self,
        from: Side,
        read: Handle,
        basis: Option<&(RelPath, Entry)>,
        ranges: Vec<FineRange>,
    ) -> Result<Response, SyncError> {
        let unsigned = vec![Vec::new(); ranges.len()];
        self.summary.report.bytes_transferred += ranges.len() as u64 * RANGE_WIRE_LEN;
        let signatures = match basis {
            None => unsigned,
            Some((path, expect)) => match self.call(
                from.other(),
                Request::SignRanges {
                    path: path.clone(),
                    expect: expect.clone(),
                    ranges,
                },
            )? {
                Response::Signatures(signatures) => signatures,
                Response::Failed(_) => unsigned,
                other => return Err(unexpected(&other)),
            },
        };
        let bytes: u64 = signatures.iter().map(|s| s.len() as u64).sum();
        self.summary.signature_bytes += bytes;
        self.summary.fine_signature_bytes += bytes;
        self.summary.report.bytes_transferred += bytes;
        self.call(
            from,
            Request::ReadRefine {
                handle: read,
                signatures,
            },
        )
    }
}

/// Bytes one [`FineRange`] takes on the wire, about.
const RANGE_WIRE_LEN: u64 = 16;
