//! The messages between the engine and a replica, and the link that carries them. Every
//! message is a serde type so that a network link (TLS between the servers) can carry the
//! same conversation the in-process link does.

use serde::{Deserialize, Serialize};

use crate::delta::{DeltaOp, Matching};
use crate::entry::{Entry, Owner};
use crate::error::SyncError;
use crate::owners::Owners;
use crate::path::RelPath;
use crate::refine::FineRange;
use crate::xattrs::{XattrKinds, Xattrs};

/// Version of the conversation; both ends must speak the same.
pub const PROTOCOL_VERSION: u32 = 6;

/// A handle of an open read or write on a replica.
pub type Handle = u64;

/// What the engine asks a replica: a [`RequestOf`] whose [`RequestOf::Batch`] holds
/// [`BatchRequest`]s.
pub type Request = RequestOf<Vec<BatchRequest>>;

/// A request inside a [`Request::Batch`]: any request but a batch. Its `Batch` variant holds a
/// [`NoBatch`], which cannot be built nor decoded, so batches do not nest, in the type and on
/// the wire: a decoder never recurses more than one batch deep, whatever a peer sends.
pub type BatchRequest = RequestOf<NoBatch>;

/// A replica's answer: a [`ResponseOf`] whose [`ResponseOf::Batch`] holds [`BatchResponse`]s.
pub type Response = ResponseOf<Vec<BatchResponse>>;

/// An answer inside a [`Response::Batch`]: any answer but a batch (see [`BatchRequest`]).
pub type BatchResponse = ResponseOf<NoBatch>;

/// What the `Batch` variant of a request or answer inside a batch holds: nothing, as this type
/// has no values. It is encoded as the variant alone, and decoding it always fails, before
/// anything nested is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoBatch {}

impl Serialize for NoBatch {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        match *self {}
    }
}

impl<'de> Deserialize<'de> for NoBatch {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("batches do not nest"))
    }
}

/// What the engine asks a replica, with `B` in [`RequestOf::Batch`]: see [`Request`] and
/// [`BatchRequest`].
///
/// Mutating requests carry what the engine believes is on the replica now (`expect`,
/// `replace`): the replica checks it before changing anything and answers
/// [`Failure::Changed`] when the path changed since the scan, so a concurrent edit is never
/// overwritten.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestOf<B> {
    /// Opens the conversation: versions must match; the replica takes its lock.
    Hello {
        /// The engine's [`PROTOCOL_VERSION`].
        version: u32,
        /// How owners are kept this conversation (the replica answers what it can do).
        owners: Owners,
        /// Which extended attributes are mirrored this conversation (the replica answers what
        /// its file system holds).
        xattrs: XattrKinds,
    },
    /// Scan the tree and return it with the index of the last sync.
    Scan,
    /// Scan only these paths and everything beneath them (the changes a watcher saw), with
    /// the index entries of the same paths.
    ScanPaths {
        /// The paths; none is beneath another.
        scope: Vec<RelPath>,
    },
    /// Signature of the file at `path` (the basis of a delta), which must still be `expect`.
    Signature {
        /// The basis.
        path: RelPath,
        /// What the basis is believed to be.
        expect: Entry,
    },
    /// Start reading `path` (which must still be `expect`) as a delta against `signature`,
    /// or whole when there is none.
    ReadBegin {
        /// The file to send.
        path: RelPath,
        /// What it is believed to be.
        expect: Entry,
        /// The receiver's signature of its basis.
        signature: Option<Vec<u8>>,
        /// How blocks are matched against the signature.
        matching: Matching,
    },
    /// The next window of instructions of an open read.
    ReadNext {
        /// From [`Response::Opened`].
        handle: Handle,
    },
    /// The receiver's side of a delta's second round: fine signatures of stretches of the
    /// basis `path` (which must still be `expect`), answered by [`Response::Signatures`].
    SignRanges {
        /// The basis.
        path: RelPath,
        /// What the basis is believed to be.
        expect: Entry,
        /// The stretches and their block sizes, as the sender asked ([`Response::Refine`]).
        ranges: Vec<FineRange>,
    },
    /// The sender's side: the fine signatures its open read asked for (one per range, empty
    /// for one the receiver could not sign); answered by the round's [`Response::Ops`].
    ReadRefine {
        /// From [`Response::Opened`].
        handle: Handle,
        /// The receiver's [`Response::Signatures`].
        signatures: Vec<Vec<u8>>,
    },
    /// Start writing `path` as `target` into a temp file beside it.
    WriteBegin {
        /// The file to write.
        path: RelPath,
        /// What is there now (`None`: nothing); checked again before the rename.
        replace: Option<Entry>,
        /// The file copies are taken from, with what it is believed to be.
        basis: Option<(RelPath, Entry)>,
        /// The file as it must be: size, hash, mode and mtime.
        target: Entry,
    },
    /// Instructions for an open write.
    WriteOps {
        /// From [`Response::Opened`].
        handle: Handle,
        /// Copies from the basis and literal data, in order.
        ops: Vec<DeltaOp>,
    },
    /// Check the hash and set mode and mtime; the file is then staged (answer
    /// [`Response::Staged`]) until the next [`Request::Flush`].
    WriteCommit {
        /// From [`Response::Opened`].
        handle: Handle,
    },
    /// Drop an open read or write (its temp file is removed).
    Abort {
        /// The handle.
        handle: Handle,
    },
    /// Delete `path` (an empty directory, a file or a symlink), which must still be `expect`.
    Delete {
        /// The path.
        path: RelPath,
        /// What it is believed to be.
        expect: Entry,
    },
    /// Make `path` a directory with `mode` and `owner`, replacing `replace` (a file or
    /// symlink) if any.
    Mkdir {
        /// The path.
        path: RelPath,
        /// Permission bits.
        mode: u32,
        /// Owner and group (as the sending side names them; `None`: left as made).
        owner: Option<Box<Owner>>,
        /// What is there now.
        replace: Option<Entry>,
        /// Extended attributes (`None`: left as they are).
        xattrs: Option<Box<Xattrs>>,
    },
    /// Make `path` a symlink to `target`, replacing `replace` (not a directory) if any.
    Symlink {
        /// The path.
        path: RelPath,
        /// The link's target, verbatim.
        target: String,
        /// Owner and group of the link itself (`None`: left as made).
        owner: Option<Box<Owner>>,
        /// What is there now.
        replace: Option<Entry>,
    },
    /// Set the mode, owner (and, for files, the mtime) of `path`, which must still be
    /// `expect`.
    Chmod {
        /// The path.
        path: RelPath,
        /// What it is believed to be.
        expect: Entry,
        /// Permission bits.
        mode: u32,
        /// Owner and group (`None`: left as they are).
        owner: Option<Box<Owner>>,
        /// Modification time (files only).
        mtime_ns: i64,
        /// Extended attributes (`None`: left as they are).
        xattrs: Option<Box<Xattrs>>,
    },
    /// Rename `from` (which must still be `expect`) to `to`, which must not exist: how the
    /// losing version of a conflict is kept.
    Rename {
        /// The current name.
        from: RelPath,
        /// The new name.
        to: RelPath,
        /// What `from` is believed to be.
        expect: Entry,
    },
    /// fsync every staged file (in parallel: the file system commits them together) and
    /// rename each over its path; answers [`Response::Flushed`].
    Flush,
    /// Make every change durable, then record `entries` as the new last-synced state.
    Commit {
        /// The complete index.
        entries: Vec<(RelPath, Entry)>,
    },
    /// Like [`Request::Commit`] after a [`Request::ScanPaths`]: the index entries at and
    /// beneath `scope` are replaced by `entries`; the rest of the index is kept.
    CommitPaths {
        /// The scope of the scan.
        scope: Vec<RelPath>,
        /// The new entries within it.
        entries: Vec<(RelPath, Entry)>,
    },
    /// The whole content of the small file `path`, which must still be `expect`: one request
    /// instead of a read conversation.
    ReadWhole {
        /// The file.
        path: RelPath,
        /// What it is believed to be.
        expect: Entry,
    },
    /// [`Request::WriteBegin`] + [`Request::WriteOps`] + [`Request::WriteCommit`] of a small
    /// file in one request; answers [`Response::StagedAs`].
    WriteWhole {
        /// The file to write.
        path: RelPath,
        /// What is there now (`None`: nothing).
        replace: Option<Entry>,
        /// The file as it must be.
        target: Entry,
        /// Its content.
        data: Vec<u8>,
    },
    /// Several requests answered in one [`Response::Batch`], in order: what lets a burst of
    /// small files cross a network link in a few round trips. Batches do not nest: inside
    /// one, `B` is [`NoBatch`].
    Batch(B),
}

/// A replica's answer, with `B` in [`ResponseOf::Batch`]: see [`Response`] and
/// [`BatchResponse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseOf<B> {
    /// Done, nothing to return.
    Done,
    /// The replica's name and root, for messages.
    Hello {
        /// The replica's node name.
        node: String,
        /// Its root, as its operator knows it.
        root: String,
        /// How it keeps owners: what was asked, or [`Owners::Off`] when it cannot (it does
        /// not run as root).
        owners: Owners,
        /// Which extended attributes it mirrors: what was asked, less what its file system
        /// cannot hold.
        xattrs: XattrKinds,
        /// Why some that were asked are not mirrored, when they are not.
        xattrs_problem: Option<String>,
    },
    /// The tree and the index.
    Scanned(ScanReply),
    /// A signature.
    Signature(Vec<u8>),
    /// A read or write was opened.
    Opened(Handle),
    /// Instructions of a read; empty when the file is done.
    Ops(Vec<DeltaOp>),
    /// A read's round has literal data that may match smaller blocks: the stretches of the
    /// basis it asks fine signatures of ([`Request::SignRanges`], then [`Request::ReadRefine`]).
    Refine(Vec<FineRange>),
    /// Fine signatures, one per stretch asked ([`Request::SignRanges`]).
    Signatures(Vec<Vec<u8>>),
    /// The entry as it now is on the replica (after a write, mkdir, symlink, chmod, rename).
    Installed(Entry),
    /// A written file passed its hash check and waits for the next flush.
    Staged,
    /// The outcome of each staged write, by handle: the entry now at its path, or why it
    /// was not installed (its temp file is then removed).
    Flushed(Vec<(Handle, Result<Entry, Failure>)>),
    /// The request failed for this path; the conversation goes on.
    Failed(Failure),
    /// The content of a file ([`Request::ReadWhole`]).
    Data(Vec<u8>),
    /// A [`Request::WriteWhole`] passed its hash check and is staged under this handle until
    /// the next flush.
    StagedAs(Handle),
    /// The answers of a [`Request::Batch`], in order (`B` is [`NoBatch`] inside a batch).
    Batch(B),
}

impl<B> RequestOf<B> {
    /// The same request with `batch` applied to what a batch holds; any other request is
    /// moved over as it is.
    // Long: one arm per request, each moving its fields over; split, the arms would only scatter.
    pub fn map_batch<C, E>(self, batch: impl FnOnce(B) -> Result<C, E>) -> Result<RequestOf<C>, E> {
        Ok(match self {
            RequestOf::Hello {
                version,
                owners,
                xattrs,
            } => RequestOf::Hello {
                version,
                owners,
                xattrs,
            },
            RequestOf::Scan => RequestOf::Scan,
            RequestOf::ScanPaths { scope } => RequestOf::ScanPaths { scope },
            RequestOf::Signature { path, expect } => RequestOf::Signature { path, expect },
            RequestOf::ReadBegin {
                path,
                expect,
                signature,
                matching,
            } => RequestOf::ReadBegin {
                path,
                expect,
                signature,
                matching,
            },
            RequestOf::ReadNext { handle } => RequestOf::ReadNext { handle },
            RequestOf::SignRanges {
                path,
                expect,
                ranges,
            } => RequestOf::SignRanges {
                path,
                expect,
                ranges,
            },
            RequestOf::ReadRefine { handle, signatures } => {
                RequestOf::ReadRefine { handle, signatures }
            }
            RequestOf::WriteBegin {
                path,
                replace,
                basis,
                target,
            } => RequestOf::WriteBegin {
                path,
                replace,
                basis,
                target,
            },
            RequestOf::WriteOps { handle, ops } => RequestOf::WriteOps { handle, ops },
            RequestOf::WriteCommit { handle } => RequestOf::WriteCommit { handle },
            RequestOf::Abort { handle } => RequestOf::Abort { handle },
            RequestOf::Delete { path, expect } => RequestOf::Delete { path, expect },
            RequestOf::Mkdir {
                path,
                mode,
                owner,
                replace,
                xattrs,
            } => RequestOf::Mkdir {
                path,
                mode,
                owner,
                replace,
                xattrs,
            },
            RequestOf::Symlink {
                path,
                target,
                owner,
                replace,
            } => RequestOf::Symlink {
                path,
                target,
                owner,
                replace,
            },
            RequestOf::Chmod {
                path,
                expect,
                mode,
                owner,
                mtime_ns,
                xattrs,
            } => RequestOf::Chmod {
                path,
                expect,
                mode,
                owner,
                mtime_ns,
                xattrs,
            },
            RequestOf::Rename { from, to, expect } => RequestOf::Rename { from, to, expect },
            RequestOf::Flush => RequestOf::Flush,
            RequestOf::Commit { entries } => RequestOf::Commit { entries },
            RequestOf::CommitPaths { scope, entries } => RequestOf::CommitPaths { scope, entries },
            RequestOf::ReadWhole { path, expect } => RequestOf::ReadWhole { path, expect },
            RequestOf::WriteWhole {
                path,
                replace,
                target,
                data,
            } => RequestOf::WriteWhole {
                path,
                replace,
                target,
                data,
            },
            RequestOf::Batch(b) => RequestOf::Batch(batch(b)?),
        })
    }
}

impl From<BatchRequest> for Request {
    fn from(one: BatchRequest) -> Self {
        match one.map_batch::<_, std::convert::Infallible>(|none| match none {}) {
            Ok(widened) => widened,
            Err(never) => match never {},
        }
    }
}

impl TryFrom<Request> for BatchRequest {
    /// A batch, handed back.
    type Error = Vec<BatchRequest>;

    fn try_from(any: Request) -> Result<Self, Self::Error> {
        any.map_batch(Err)
    }
}

impl<B> ResponseOf<B> {
    /// The same answer with `batch` applied to what a batch holds; any other answer is
    /// moved over as it is.
    pub fn map_batch<C, E>(
        self,
        batch: impl FnOnce(B) -> Result<C, E>,
    ) -> Result<ResponseOf<C>, E> {
        Ok(match self {
            ResponseOf::Done => ResponseOf::Done,
            ResponseOf::Hello {
                node,
                root,
                owners,
                xattrs,
                xattrs_problem,
            } => ResponseOf::Hello {
                node,
                root,
                owners,
                xattrs,
                xattrs_problem,
            },
            ResponseOf::Scanned(x) => ResponseOf::Scanned(x),
            ResponseOf::Signature(x) => ResponseOf::Signature(x),
            ResponseOf::Opened(x) => ResponseOf::Opened(x),
            ResponseOf::Ops(x) => ResponseOf::Ops(x),
            ResponseOf::Refine(x) => ResponseOf::Refine(x),
            ResponseOf::Signatures(x) => ResponseOf::Signatures(x),
            ResponseOf::Installed(x) => ResponseOf::Installed(x),
            ResponseOf::Staged => ResponseOf::Staged,
            ResponseOf::Flushed(x) => ResponseOf::Flushed(x),
            ResponseOf::Failed(x) => ResponseOf::Failed(x),
            ResponseOf::Data(x) => ResponseOf::Data(x),
            ResponseOf::StagedAs(x) => ResponseOf::StagedAs(x),
            ResponseOf::Batch(b) => ResponseOf::Batch(batch(b)?),
        })
    }
}

impl From<BatchResponse> for Response {
    fn from(one: BatchResponse) -> Self {
        match one.map_batch::<_, std::convert::Infallible>(|none| match none {}) {
            Ok(widened) => widened,
            Err(never) => match never {},
        }
    }
}

impl TryFrom<Response> for BatchResponse {
    /// A batch, handed back.
    type Error = Vec<BatchResponse>;

    fn try_from(any: Response) -> Result<Self, Self::Error> {
        any.map_batch(Err)
    }
}

/// The tree of a replica and its index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanReply {
    /// Every path now, sorted.
    pub current: Vec<(RelPath, Entry)>,
    /// Every path at the last sync, sorted.
    pub base: Vec<(RelPath, Entry)>,
    /// Why the index was ignored, if it was (damaged, other format).
    pub index_problem: Option<String>,
    /// Paths that could not be scanned, with the reason; they are left alone.
    pub problems: Vec<(String, String)>,
    /// Bytes hashed by this scan.
    pub hashed_bytes: u64,
    /// Files (not directories) in the whole index, also when `base` holds only a scope: the
    /// measure of the mass-deletion rule.
    pub index_files: u64,
    /// Files hashed only because they changed too close to the index's writing to be trusted,
    /// found unchanged and old enough now: an index written now would spare the next scan
    /// hashing them again.
    pub refresh: u64,
}

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    /// The path is no longer what the engine believed: left alone, retried next run.
    Changed,
    /// The received content does not have the announced hash: nothing was replaced.
    HashMismatch,
    /// An I/O error (disk full, permission denied, ...), as text.
    Io(String),
    /// The request was invalid (unknown handle, a copy outside the basis, ...).
    Invalid(String),
}

/// Something that takes requests to a replica and brings back its answers: the replica in this
/// process ([`InProcess`]) or a connection to the peer ([`crate::live::RemoteReplica`]).
///
/// # Contract
///
/// `call` returns `Err` only when the conversation itself is broken (the peer is gone, a
/// message could not be carried): the engine then stops the run. A failure about one path is
/// an `Ok(Response::Failed(..))`. Requests are answered in order.
pub trait ReplicaLink: Send {
    /// Sends `request` and waits for its answer.
    fn call(&mut self, request: Request) -> Result<Response, SyncError>;
}

/// Anything that answers requests: what a link delivers to on the far side.
pub trait Handler: Send {
    /// Answers `request`.
    fn handle(&mut self, request: Request) -> Result<Response, SyncError>;
}

/// The in-process link: calls the handler directly. With `serializing`, every request
/// and answer goes through postcard first (what a network link would send), which tests
/// use to prove the conversation is complete as data.
pub struct InProcess<H: Handler> {
    handler: H,
    serializing: bool,
}

impl<H: Handler> InProcess<H> {
    /// A link to `handler`.
    pub fn new(handler: H) -> Self {
        InProcess {
            handler,
            serializing: false,
        }
    }

    /// A link that encodes and decodes every message.
    pub fn serializing(handler: H) -> Self {
        InProcess {
            handler,
            serializing: true,
        }
    }

    /// The handler.
    pub fn into_inner(self) -> H {
        self.handler
    }
}

fn through_wire<T: Serialize + for<'de> Deserialize<'de>>(value: &T) -> Result<T, SyncError> {
    let bytes = postcard::to_allocvec(value).map_err(|e| SyncError::Peer(e.to_string()))?;
    postcard::from_bytes(&bytes).map_err(|e| SyncError::Peer(e.to_string()))
}

impl<H: Handler> ReplicaLink for InProcess<H> {
    fn call(&mut self, request: Request) -> Result<Response, SyncError> {
        if !self.serializing {
            return self.handler.handle(request);
        }
        let request = through_wire(&request)?;
        let response = self.handler.handle(request)?;
        through_wire(&response)
    }
}
