//! The bytes a peer sends down the authenticated link once TLS is up: its hello (one frame of at
//! most 4 KiB, JSON, checked for protocol, version and service), then length-prefixed frames
//! under the frame limit, each handed to the service the hello named: the mirror's message
//! assembler or the observation decoder.

#![no_main]

use failover_core::fuzzing::{check_hello, decode_observation, read_frame, MAX_HELLO};
use failover_core::OBSERVATIONS_SERVICE;
use failover_sync::live::{Assembler, SERVICE as MIRROR_SERVICE};
use libfuzzer_sys::fuzz_target;

/// The frame limit of this target's links: small, so that a length the fuzzer writes is often
/// over it (the daemon's default is 16 MiB).
const MAX_FRAME: usize = 64 * 1024;

fuzz_target!(|stream: &[u8]| {
    let mut rest = stream;
    let hello = match read_frame(&mut rest, MAX_HELLO) {
        Ok(Some(hello)) => hello,
        Ok(None) => return,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    assert!(
        hello.len() <= MAX_HELLO,
        "a hello over the limit is refused"
    );
    let hello = match check_hello(&hello, MIRROR_SERVICE)
        .or_else(|_| check_hello(&hello, OBSERVATIONS_SERVICE))
    {
        Ok(hello) => hello,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let mut assembler = Assembler::default();
    // Bounded: every frame read takes at least its 4-byte length from the input.
    for _ in 0..=stream.len() / 4 {
        let frame = match read_frame(&mut rest, MAX_FRAME) {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(error) => {
                let _ = error.to_string();
                return;
            }
        };
        assert!(
            frame.len() <= MAX_FRAME,
            "a frame over the limit is refused"
        );
        let delivered = match hello.service.as_str() {
            MIRROR_SERVICE => assembler
                .push(&frame)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            _ => decode_observation(&frame)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        // A frame that does not decode drops the link.
        if delivered.is_err() {
            return;
        }
    }
});
