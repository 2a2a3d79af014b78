//! A frame of the mirror's peer protocol, put together by the link's `Assembler` into a message
//! (requests to a replica, its answers, change notices, reports), and what a replica or an
//! engine does with the peer's bytes inside it: a signature read against a basis file to make a
//! delta, delta instructions applied to that basis. A message that decodes must encode again and
//! decode to the same bytes: the two ends agree on what crosses.

#![no_main]

use std::fs::File;
use std::io;
use std::sync::OnceLock;

use failover_fuzz::{basis_file, BASIS_LEN};
use failover_sync::live::{encode, Assembler, Message};
use failover_sync::{
    Applier, BatchRequest, BatchResponse, DeltaOp, DeltaReader, Matching, Request, RequestOf,
    Response, ResponseOf,
};
use libfuzzer_sys::fuzz_target;

fn basis() -> &'static File {
    static BASIS: OnceLock<File> = OnceLock::new();
    BASIS.get_or_init(basis_file)
}

/// The peer's signatures and delta instructions inside a message.
#[derive(Default)]
struct PeerData {
    signatures: Vec<(Vec<u8>, Matching)>,
    ops: Vec<Vec<DeltaOp>>,
}

impl PeerData {
    fn request<B>(&mut self, request: &RequestOf<B>) {
        match request {
            RequestOf::ReadBegin {
                signature: Some(signature),
                matching,
                ..
            } => self.signatures.push((signature.clone(), *matching)),
            RequestOf::WriteOps { ops, .. } => self.ops.push(ops.clone()),
            _ => {}
        }
    }

    fn response<B>(&mut self, response: &ResponseOf<B>) {
        match response {
            // An engine reads a signature with the matching it asked for: both are tried.
            ResponseOf::Signature(signature) => {
                self.signatures.push((signature.clone(), Matching::Fast));
                self.signatures.push((signature.clone(), Matching::Strict));
            }
            ResponseOf::Ops(ops) => self.ops.push(ops.clone()),
            _ => {}
        }
    }

    fn of(message: &Message) -> Self {
        let mut data = PeerData::default();
        match message {
            Message::Call(Request::Batch(batch)) => {
                batch.iter().for_each(|r: &BatchRequest| data.request(r))
            }
            Message::Call(request) => data.request(request),
            Message::Reply(Ok(Response::Batch(batch))) => {
                batch.iter().for_each(|r: &BatchResponse| data.response(r))
            }
            Message::Reply(Ok(response)) => data.response(response),
            _ => {}
        }
        data
    }
}

/// A delta of the basis against the peer's `signature`, as a replica makes it for `ReadBegin`.
fn delta_against(signature: Vec<u8>, matching: Matching) -> io::Result<()> {
    let file = basis().try_clone()?;
    let mut reader = DeltaReader::new(file, BASIS_LEN as u64, Some(signature), matching)?;
    let mut produced = 0u64;
    // Bounded: every round covers part of the file, and an empty round ends it.
    for _ in 0..=BASIS_LEN {
        let ops = reader.next_ops()?;
        if ops.is_empty() {
            break;
        }
        produced += ops.iter().map(DeltaOp::output_len).sum::<u64>();
    }
    assert_eq!(
        produced, BASIS_LEN as u64,
        "a delta rebuilds the whole file"
    );
    Ok(())
}

/// The peer's `ops` applied to the basis, as a replica applies `WriteOps`.
fn apply(ops: &[DeltaOp]) -> io::Result<()> {
    let mut applier = Applier::new(io::sink(), Some(basis().try_clone()?))?;
    applier.apply(ops, 1 << 20)?;
    assert!(
        applier.written() <= 1 << 20,
        "the announced size bounds the output"
    );
    Ok(())
}

fuzz_target!(|frame: &[u8]| {
    let message = match Assembler::default().push(frame) {
        Ok(Some(message)) => message,
        Ok(None) => return,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let _ = message.name();
    // What decodes encodes again, to the same message.
    let frames = encode(&message).expect("a decoded message encodes");
    let mut assembler = Assembler::default();
    let mut again = None;
    for frame in &frames {
        again = assembler.push(frame).expect("an encoded message decodes");
    }
    let again = again.expect("the last frame completes the message");
    assert_eq!(
        encode(&again).expect("it encodes"),
        frames,
        "a message survives a round trip"
    );
    let data = PeerData::of(&message);
    for (signature, matching) in data.signatures {
        let _ = delta_against(signature, matching);
    }
    for ops in &data.ops {
        let _ = apply(ops);
    }
});
