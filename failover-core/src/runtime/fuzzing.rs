//! Hooks for the fuzz targets in `fuzz/`: the peer link's decoders without a TLS stream.
//!
//! Not an API: hidden from the docs, public only so that the fuzz crate (a crate of its own)
//! reaches the code a link runs on the bytes a peer sends.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::quorum::ObserverReport;
use crate::runtime::observers;
use crate::runtime::peer::{self, Hello, PeerError};

/// The largest hello a link reads.
pub const MAX_HELLO: usize = peer::MAX_HELLO;

/// Reads one frame of at most `max_frame` bytes from the front of `bytes` (advanced past it),
/// as a link reads from its stream; `None` at the end.
pub fn read_frame(bytes: &mut &[u8], max_frame: usize) -> Result<Option<Vec<u8>>, PeerError> {
    let read = pin!(peer::read_frame(bytes, "fuzz", max_frame));
    // A slice never makes a read wait: the future is ready on its first poll.
    match read.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(frame) => frame,
        Poll::Pending => Err(PeerError::Protocol {
            peer: "fuzz".to_owned(),
            reason: "a read from memory would wait".to_owned(),
        }),
    }
}

/// Checks a peer's hello frame, as a link does before anything else, for `service`.
pub fn check_hello(frame: &[u8], service: &str) -> Result<Hello, PeerError> {
    peer::check_hello("fuzz", frame, service)
}

/// Decodes one frame of an observation link: a report, or `None` for a heartbeat.
pub fn decode_observation(frame: &[u8]) -> Result<Option<ObserverReport>, serde_json::Error> {
    observers::decode_frame(frame)
}
