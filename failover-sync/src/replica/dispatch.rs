//! Answering the engine: each request goes to the step that carries it out; what a request
//! changes is recorded in the watcher's [`Echo`] (marked before, recorded after).

use super::LocalReplica;
use crate::error::SyncError;
use crate::owners::{can_keep_owners, Owners};
use crate::path::RelPath;
use crate::protocol::{
    BatchRequest, BatchResponse, Handle, Handler, Request, Response, PROTOCOL_VERSION,
};
use crate::xattrs::XattrKinds;

impl LocalReplica {
    /// Answers one request (not a batch), recording what it changes for the watcher.
    fn handle_one(&mut self, request: BatchRequest) -> Result<BatchResponse, SyncError> {
        let Some(echo) = self.echo.clone() else {
            return self.dispatch(request);
        };
        let touched: Vec<(Option<Handle>, RelPath)> = match &request {
            BatchRequest::Delete { path, .. }
            | BatchRequest::Mkdir { path, .. }
            | BatchRequest::Symlink { path, .. }
            | BatchRequest::Chmod { path, .. } => vec![(None, path.clone())],
            BatchRequest::Rename { from, to, .. } => vec![(None, from.clone()), (None, to.clone())],
            BatchRequest::Flush => self
                .staged
                .iter()
                .map(|s| (Some(s.handle), s.path.clone()))
                .collect(),
            _ => return self.dispatch(request),
        };
        for (_, path) in &touched {
            echo.begin(path);
        }
        let response = self.dispatch(request);
        match &response {
            Ok(BatchResponse::Done) => echo.left(&touched[0].1, None),
            Ok(BatchResponse::Installed(entry)) => {
                if touched.len() == 2 {
                    echo.left(&touched[0].1, None);
                }
                if let Some((_, path)) = touched.last() {
                    echo.left(path, Some(entry));
                }
            }
            Ok(BatchResponse::Flushed(results)) => {
                for (handle, result) in results {
                    if let Some((_, path)) = touched.iter().find(|(h, _)| *h == Some(*handle)) {
                        match result {
                            Ok(entry) => echo.left(path, Some(entry)),
                            Err(_) => echo.forget(path),
                        }
                    }
                }
            }
            _ => {
                for (_, path) in &touched {
                    echo.forget(path);
                }
            }
        }
        response
    }
}

impl Handler for LocalReplica {
    fn handle(&mut self, request: Request) -> Result<Response, SyncError> {
        match BatchRequest::try_from(request) {
            Ok(one) => self.handle_one(one).map(Response::from),
            Err(requests) => {
                let mut responses = Vec::with_capacity(requests.len());
                for request in requests {
                    responses.push(self.handle_one(request)?);
                }
                Ok(Response::Batch(responses))
            }
        }
    }
}

impl LocalReplica {
    /// Carries out one request (not a batch).
    fn dispatch(&mut self, request: BatchRequest) -> Result<BatchResponse, SyncError> {
        let installed = if self.xattrs.is_off() {
            Vec::new()
        } else {
            self.installed_paths(&request)
        };
        let mut response = self.carry_out(request)?;
        if !installed.is_empty() {
            self.fill_installed(&mut response, &installed);
        }
        Ok(self.present(response))
    }

    /// The entries of an answer as the other side is shown them: owners as this
    /// conversation keeps them (none, numbers, or numbers and names).
    fn present(&mut self, mut response: BatchResponse) -> BatchResponse {
        match &mut response {
            BatchResponse::Scanned(reply) => {
                for (_, entry) in &mut reply.current {
                    self.owners.present(entry);
                }
            }
            BatchResponse::Installed(entry) => self.owners.present(entry),
            BatchResponse::Flushed(results) => {
                for entry in results.iter_mut().filter_map(|(_, r)| r.as_mut().ok()) {
                    self.owners.present(entry);
                }
            }
            _ => {}
        }
        response
    }

    /// Carries out one request (not a batch), its entries as `stat` gave them.
    fn carry_out(&mut self, request: BatchRequest) -> Result<BatchResponse, SyncError> {
        Ok(match request {
            BatchRequest::Hello {
                version,
                owners,
                xattrs,
            } => self.hello(version, owners, xattrs)?,
            BatchRequest::Scan => {
                // A full run (on connect, then every rescan interval) ages the versions out.
                self.prune_versions(true);
                self.scan(None)?
            }
            BatchRequest::ScanPaths { scope } => self.scan(Some(&scope))?,
            BatchRequest::Signature { path, expect } => self.signature(&path, &expect),
            BatchRequest::ReadBegin {
                path,
                expect,
                signature,
                matching,
            } => self.read_begin(&path, &expect, signature, matching),
            BatchRequest::ReadNext { handle } => self.read_next(handle),
            BatchRequest::SignRanges {
                path,
                expect,
                ranges,
            } => self.sign_ranges(&path, &expect, &ranges),
            BatchRequest::ReadRefine { handle, signatures } => self.read_refine(handle, signatures),
            BatchRequest::WriteBegin {
                path,
                replace,
                basis,
                target,
            } => self.write_begin(path, replace, basis, target),
            BatchRequest::WriteOps { handle, ops } => self.write_ops(handle, &ops),
            BatchRequest::WriteCommit { handle } => self.write_commit(handle),
            BatchRequest::Abort { handle } => self.abort(handle),
            BatchRequest::Delete { path, expect } => self.delete(&path, &expect),
            BatchRequest::Mkdir {
                path,
                mode,
                owner,
                replace,
                xattrs,
            } => self.mkdir(
                &path,
                (mode, owner.as_deref(), xattrs.as_deref()),
                replace.as_ref(),
            ),
            BatchRequest::Symlink {
                path,
                target,
                owner,
                replace,
            } => self.symlink(&path, &target, owner.as_deref(), replace.as_ref()),
            BatchRequest::Chmod {
                path,
                expect,
                mode,
                owner,
                mtime_ns,
                xattrs,
            } => self.chmod(
                &path,
                &expect,
                (mode, owner.as_deref(), xattrs.as_deref()),
                mtime_ns,
            ),
            BatchRequest::Rename { from, to, expect } => self.rename(&from, &to, &expect),
            BatchRequest::Flush => self.flush(),
            BatchRequest::Commit { entries } => self.commit(entries)?,
            BatchRequest::CommitPaths { scope, entries } => self.commit_paths(&scope, entries)?,
            BatchRequest::ReadWhole { path, expect } => self.read_whole(&path, &expect),
            BatchRequest::WriteWhole {
                path,
                replace,
                target,
                data,
            } => self.write_whole(path, replace, target, data),
            BatchRequest::Batch(none) => match none {},
        })
    }

    /// Opens a conversation: the versions must match; whatever an earlier one left open is
    /// dropped. Owners are kept as asked, or not at all when this process cannot give files to
    /// other users (not root: no `CAP_CHOWN`).
    fn hello(
        &mut self,
        version: u32,
        owners: Owners,
        xattrs: XattrKinds,
    ) -> Result<BatchResponse, SyncError> {
        if version != PROTOCOL_VERSION {
            return Err(SyncError::Protocol(format!(
                "the other side speaks version {version}, this one {PROTOCOL_VERSION}; \
                 run the same failoverd version on both servers"
            )));
        }
        self.reset();
        // The engine says it (once per run): it knows both sides.
        let owners = if owners != Owners::Off && !can_keep_owners() {
            Owners::Off
        } else {
            owners
        };
        self.owners.start(owners);
        let (xattrs, xattrs_problem) = self.probe_xattrs(xattrs);
        self.xattrs = xattrs;
        Ok(BatchResponse::Hello {
            node: self.config.node.clone(),
            root: self.config.root.display().to_string(),
            owners,
            xattrs,
            xattrs_problem,
        })
    }
}
