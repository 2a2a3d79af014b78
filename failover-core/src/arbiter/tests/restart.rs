//! Restarts and first starts: a restart never moves the answer by itself, a first start neither
//! serves from ignorance nor flips on one lost probe.
//!
//! Unit tests only: `arbiter/tests.rs` declares this module, itself under `#[cfg(test)]`.

use super::*;
use crate::arbiter::{ArbiterState, FirstVerdict, STATE_VERSION};

/// The test spec, starting as the daemon does: a first "down" needs `fall` failures.
fn cautious() -> ClusterSpec {
    let mut spec = spec(AllDown::KeepLast);
    spec.startup.first_verdict = FirstVerdict::AfterFall;
    spec
}

/// A clock far from the process's start, so that instants a long time back exist.
fn script(spec: ClusterSpec, policy: Box<dyn Policy>) -> Script {
    let mut s = Script::new(spec, policy);
    s.now.mono += Duration::from_secs(86_400);
    s
}

impl Script {
    /// Stops this arbiter and starts a new one from its state, `gap` later by the wall clock,
    /// on a monotonic clock that does not continue the old one (a new process).
    fn restart(&mut self, spec: ClusterSpec, policy: Box<dyn Policy>, gap: Duration) {
        let state = self.arbiter.snapshot(self.now);
        // What the daemon writes to and reads from `state_dir`.
        let json = serde_json::to_string(&state).unwrap();
        let read: ArbiterState = serde_json::from_str(&json).unwrap();
        assert_eq!(read, state, "the state survives JSON unchanged");
        self.now = Moment {
            mono: self.now.mono + gap + Duration::from_secs(3600),
            wall: self.now.wall + gap,
        };
        let mut arbiter = Arbiter::new(spec, policy).unwrap();
        arbiter.restore(&read, self.now).unwrap();
        assert!(arbiter.tick(self.now).is_empty(), "restoring does nothing");
        self.arbiter = arbiter;
    }
}

fn steady(s: &mut Script, rounds: usize) {
    for _ in 0..rounds {
        s.round(true, true);
    }
}

#[test]
fn a_restart_then_one_lost_probe_changes_nothing() {
    let mut s = script(cautious(), auto_30s());
    steady(&mut s, 3);
    s.restart(cautious(), auto_30s(), Duration::from_secs(3));
    assert_eq!(s.arbiter.answer(), names(&["master"]));
    assert_eq!(
        s.arbiter.publication().unwrap().answers[0].addresses,
        vec!["10.1.0.1".parse::<IpAddr>().unwrap()],
        "the restored answer is what the writers are handed"
    );
    let actions = s.round(false, true);
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(s.arbiter.status().nodes[0].health, Health::Up);
    steady(&mut s, 5);
    assert_eq!(
        s.published(),
        vec![names(&["master"])],
        "published once, before the restart"
    );
    assert_eq!(
        s.notified(),
        ["answer-changed"],
        "the first publication only"
    );

    // What the first probe decided before: a fresh start on one lost probe moved the answer.
    let mut fresh = script(spec(AllDown::KeepLast), auto_30s());
    fresh.round(false, true);
    assert_eq!(fresh.published(), vec![names(&["slave"])]);
}

#[test]
fn a_restart_then_fall_losses_fail_over() {
    let mut s = script(cautious(), auto_30s());
    steady(&mut s, 3);
    s.restart(cautious(), auto_30s(), Duration::from_secs(3));
    s.round(false, true);
    s.round(false, true);
    assert_eq!(s.arbiter.answer(), names(&["master"]));
    let actions = s.round(false, true);
    assert_eq!(published(&actions), vec![names(&["slave"])]);
    assert_eq!(
        s.notified(),
        ["answer-changed", "check-down", "node-down", "failover"]
    );
}

#[test]
fn failures_before_a_restart_still_count() {
    let mut s = script(cautious(), auto_30s());
    steady(&mut s, 3);
    s.round(false, true);
    s.round(false, true);
    s.restart(cautious(), auto_30s(), Duration::from_secs(3));
    let actions = s.round(false, true);
    assert_eq!(published(&actions), vec![names(&["slave"])]);
    let Some(Action::Notify(Event {
        kind: EventKind::CheckDown {
            consecutive_failures,
            ..
        },
        ..
    })) = actions.first()
    else {
        panic!("{actions:?}")
    };
    assert_eq!(*consecutive_failures, 3);
}

#[test]
fn a_restored_down_check_needs_rise_successes() {
    let mut spec = cautious();
    spec.checks[0].rise = 2;
    let mut s = script(spec.clone(), active_passive(Failback::Manual));
    steady(&mut s, 1);
    for _ in 0..3 {
        s.round(false, true);
    }
    assert_eq!(s.arbiter.answer(), names(&["slave"]));
    s.restart(
        spec,
        active_passive(Failback::Manual),
        Duration::from_secs(3),
    );
    assert_eq!(s.arbiter.status().nodes[0].health, Health::Down);
    assert_eq!(s.arbiter.answer(), names(&["slave"]));
    s.round(true, true);
    assert_eq!(s.arbiter.status().nodes[0].health, Health::Down);
    s.round(true, true);
    assert_eq!(s.arbiter.status().nodes[0].health, Health::Up);
    assert_eq!(s.arbiter.answer(), names(&["slave"]), "failback is manual");
    assert_eq!(s.published().len(), 2, "{:?}", s.published());
}

#[test]
fn a_pending_failback_keeps_its_deadline_across_a_restart() {
    let mut s = script(cautious(), auto_30s());
    steady(&mut s, 1);
    for _ in 0..3 {
        s.round(false, true);
    }
    s.probe("master", "http", true);
    let due = s.now.wall + Duration::from_secs(30);
    s.advance(Duration::from_secs(10));
    s.restart(cautious(), auto_30s(), Duration::from_secs(5));
    // 15 s of the 30 s have passed, by the wall clock.
    assert_eq!(
        s.arbiter.next_deadline(),
        Some(s.now.mono + due.duration_since(s.now.wall).unwrap())
    );
    s.advance(Duration::from_secs(14));
    assert_eq!(s.arbiter.answer(), names(&["slave"]));
    s.advance(Duration::from_secs(1));
    assert_eq!(s.arbiter.answer(), names(&["master"]));
    assert_eq!(s.published().last().unwrap(), &names(&["master"]));
    assert!(s.notified().contains(&"failback"));
}

#[test]
fn overrides_and_the_all_down_state_survive_a_restart() {
    let mut s = script(cautious(), auto_30s());
    steady(&mut s, 1);
    let drain = Override::Drain {
        node: "master".into(),
    };
    s.arbiter
        .apply_override(drain.clone(), true, s.now)
        .unwrap();
    for _ in 0..3 {
        s.round(false, false);
    }
    assert!(s.arbiter.status().all_down);
    let notified = s.notified().len();
    s.restart(cautious(), auto_30s(), Duration::from_secs(3));
    let status = s.arbiter.status();
    assert_eq!(status.overrides, vec![drain.clone()]);
    assert!(status.nodes[0].drained);
    assert!(status.all_down);
    s.round(false, false);
    assert_eq!(s.notified().len(), notified, "no second all-down notice");
    // The daemon re-applies its saved overrides: one already in force changes nothing.
    assert!(s
        .arbiter
        .apply_override(drain, true, s.now)
        .unwrap()
        .is_empty());
}

#[test]
fn a_state_too_old_or_of_another_version_is_not_restored() {
    let mut s = script(cautious(), auto_30s());
    steady(&mut s, 2);
    let state = s.arbiter.snapshot(s.now);
    let later = s.now + Duration::from_secs(301);
    let mut arbiter = Arbiter::new(cautious(), auto_30s()).unwrap();
    let err = arbiter.restore(&state, later).unwrap_err();
    assert!(matches!(err, ArbiterError::StateTooOld { .. }), "{err}");
    assert!(arbiter.answer().is_empty(), "starts as at a first start");
    assert_eq!(arbiter.status().nodes[0].health, Health::Unknown);
    let state = ArbiterState {
        version: STATE_VERSION + 1,
        ..state
    };
    let err = arbiter.restore(&state, s.now).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "saved arbiter state has version {}, this arbiter reads version {STATE_VERSION}: starting without it",
            STATE_VERSION + 1
        )
    );
    // Within the bound, it is.
    let state = ArbiterState {
        version: STATE_VERSION,
        ..state
    };
    arbiter
        .restore(&state, s.now + Duration::from_secs(299))
        .unwrap();
    assert_eq!(arbiter.answer(), names(&["master"]));
}

#[test]
fn a_first_start_with_one_lost_probe_publishes_nothing_and_flips_nothing() {
    let mut s = script(cautious(), auto_30s());
    let actions = s.round(false, true);
    assert!(
        published(&actions).is_empty(),
        "nothing from ignorance: {actions:?}"
    );
    assert_eq!(s.arbiter.status().nodes[0].health, Health::Unknown);
    assert!(s.notified().is_empty(), "{:?}", s.notified());
    let actions = s.round(true, true);
    assert_eq!(published(&actions), vec![names(&["master"])]);
    steady(&mut s, 20);
    assert_eq!(s.published(), vec![names(&["master"])]);
    assert_eq!(s.notified(), ["answer-changed"]);
}

#[test]
fn a_first_start_before_the_web_servers_answer_notifies_nothing() {
    let mut s = script(cautious(), auto_30s());
    // Both answer on their third probe: each had its `fall` chances.
    s.round(false, false);
    s.round(false, false);
    s.round(true, true);
    assert_eq!(s.published(), vec![names(&["master"])]);
    assert_eq!(
        s.notified(),
        ["answer-changed"],
        "no check-down, node-down or all-down"
    );
}

#[test]
fn a_first_start_tells_of_every_node_down_once_each_had_fall_chances() {
    let mut s = script(cautious(), auto_30s());
    s.round(false, false);
    s.round(false, false);
    assert!(s.notified().is_empty(), "{:?}", s.notified());
    s.round(false, false);
    assert!(s.notified().contains(&"all-down"), "{:?}", s.notified());
    assert!(s.published().is_empty(), "keep-last has nothing to keep");
}

/// A small deterministic generator (xorshift), so that the timeline is the same every run.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Phases of steady probes (each node up, down, or losing one probe in four) for `rounds`;
/// with `restarts`, the arbiter restarts from its state before random probes.
fn timeline(seed: u64, rounds: usize, restarts: bool) -> Vec<String> {
    let mut s = script(cautious(), auto_30s());
    s.now.wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut dice = Dice(seed);
    let mut restart_dice = Dice(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut phase = [0u64; 2];
    let mut phase_left = 0;
    for round in 0..rounds {
        if phase_left == 0 {
            phase = [dice.below(3), dice.below(3)];
            phase_left = 5 + dice.below(40);
        }
        phase_left -= 1;
        for (index, node) in ["master", "slave"].into_iter().enumerate() {
            let ok = match phase[index] {
                0 => true,
                1 => false,
                _ => round % 4 != 0,
            };
            if restarts && restart_dice.below(13) == 0 {
                s.restart(cautious(), auto_30s(), Duration::ZERO);
            }
            s.probe(node, "http", ok);
        }
        s.advance(INTERVAL);
    }
    // What a user sees: every publication, every event (damping's windows start afresh after a
    // restart, so whether an event was mailed or only recorded, and flapping summaries, may
    // differ; the events themselves may not).
    s.actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish(p) => Some(format!("publish {p:?}")),
            Action::Notify(e) | Action::Record(e)
                if !matches!(
                    e.kind,
                    EventKind::Flapping { .. } | EventKind::Settled { .. }
                ) =>
            {
                Some(format!("{:?} {e}", e.at))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn restarts_at_arbitrary_points_give_the_same_actions_as_none() {
    for seed in [1, 7, 42, 2026, 0xdead_beef] {
        let without = timeline(seed, 1500, false);
        let with = timeline(seed, 1500, true);
        assert!(
            without.iter().filter(|a| a.starts_with("publish")).count() > 5,
            "seed {seed}: the timeline should move the answer: {without:#?}"
        );
        assert_eq!(with, without, "seed {seed}");
    }
}
