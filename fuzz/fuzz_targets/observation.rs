//! What observers send each other on an observation link: JSON frames, a probe verdict or a
//! heartbeat, decoded as the link decodes them, then taken in by the quorum (held failures
//! released or kept) and the arbiter behind it, on a clock that moves a second per frame.
//! The input is a sequence of frames separated by 0xFF (a byte JSON text never holds); a
//! minute of silence follows the last.

#![no_main]

use std::time::Duration;

use failover_core::fuzzing::decode_observation;
use failover_core::{FailureClass, Moment, Observation, Outcome};
use failover_fuzz::observer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut now = Moment::now();
    let (mut quorum, mut arbiter) = observer(now);
    // This observer sees dc1's http fail: held until a peer agrees.
    for node in ["dc1", "dc2"] {
        let local = quorum.local(Observation {
            node: node.into(),
            check: "http".into(),
            outcome: Outcome::failed(FailureClass::Timeout, "no answer within 1s"),
            at: now,
        });
        for observation in local.observations {
            let _ = arbiter.observe(observation);
        }
    }
    for (index, frame) in data.split(|&byte| byte == 0xff).enumerate() {
        now.mono += Duration::from_secs(1);
        now.wall += Duration::from_secs(1);
        let from = if index % 2 == 0 { "dc2" } else { "witness" };
        let released = match decode_observation(frame) {
            Ok(Some(report)) => quorum.remote(from, report, now),
            Ok(None) => quorum.heard(from, now),
            // An unreadable frame drops the link: nothing more is heard on it.
            Err(error) => {
                let _ = error.to_string();
                break;
            }
        };
        let _ = quorum.membership_changes(now);
        let mut actions = arbiter.tick(now);
        for observation in released {
            actions.extend(arbiter.observe(observation));
        }
        for action in actions {
            let _ = format!("{action:?}");
        }
    }
    now.mono += Duration::from_secs(60);
    now.wall += Duration::from_secs(60);
    for observation in quorum.tick(now) {
        let _ = arbiter.observe(observation);
    }
    let _ = quorum.status(now);
    let _ = arbiter.status();
});
