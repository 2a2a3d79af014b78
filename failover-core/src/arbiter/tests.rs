//! The arbiter's tests: scripted clusters on a clock that only moves when the test says so.
//!
//! Unit tests only: the parent declares this module under `#[cfg(test)]`.

#![allow(clippy::unwrap_used)] // tests

use super::*;
use crate::action::Action;
use crate::damping::Damping;
use crate::event::{Event, EventKind};
use crate::fence::{FenceStep, Veto};
use crate::model::{FailureClass, Health, Moment, NodeName, Observation, Outcome};
use crate::policy::{ActivePassive, AllDown, AllHealthy, Failback, Policy};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

const INTERVAL: Duration = Duration::from_secs(2);

fn spec(all_down: AllDown) -> ClusterSpec {
    ClusterSpec {
        nodes: vec![
            NodeSpec::new("master", ["10.1.0.1".parse().unwrap()]),
            NodeSpec::new("slave", ["10.2.0.2".parse().unwrap()]),
        ],
        checks: vec![CheckSpec::new("http", true), CheckSpec::new("ssh", false)],
        managed: vec![ManagedName::new("@", 10), ManagedName::new("www", 10)],
        all_down,
        damping: Damping::default(),
        startup: Startup::default(),
    }
}

fn active_passive(failback: Failback) -> Box<dyn Policy> {
    Box::new(ActivePassive::new(
        vec!["master".into(), "slave".into()],
        failback,
    ))
}

fn auto_30s() -> Box<dyn Policy> {
    active_passive(Failback::Auto {
        after: Duration::from_secs(30),
    })
}

/// A scripted cluster on a clock that only moves when the test says so.
struct Script {
    arbiter: Arbiter,
    now: Moment,
    actions: Vec<Action>,
}

impl Script {
    fn new(spec: ClusterSpec, policy: Box<dyn Policy>) -> Self {
        Self {
            arbiter: Arbiter::new(spec, policy).unwrap(),
            now: Moment::now(),
            actions: Vec::new(),
        }
    }

    fn probe(&mut self, node: &str, check: &str, ok: bool) -> Vec<Action> {
        let outcome = if ok {
            Outcome::healthy("HTTP 200")
        } else {
            Outcome::failed(FailureClass::Unreachable, "connection refused")
        };
        let actions = self.arbiter.observe(Observation {
            node: node.into(),
            check: check.into(),
            outcome,
            at: self.now,
        });
        self.actions.extend(actions.iter().cloned());
        actions
    }

    /// One probe round of `http` on both nodes, then the clock moves one interval.
    fn round(&mut self, master_ok: bool, slave_ok: bool) -> Vec<Action> {
        let mut actions = self.probe("master", "http", master_ok);
        actions.extend(self.probe("slave", "http", slave_ok));
        self.advance(INTERVAL);
        actions
    }

    fn advance(&mut self, by: Duration) {
        self.now = self.now + by;
        let actions = self.arbiter.tick(self.now);
        self.actions.extend(actions);
    }

    fn published(&self) -> Vec<Vec<NodeName>> {
        published(&self.actions)
    }

    fn notified(&self) -> Vec<&'static str> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Notify(e) => Some(e.name()),
                _ => None,
            })
            .collect()
    }
}

fn published(actions: &[Action]) -> Vec<Vec<NodeName>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish(p) => Some(p.nodes.clone()),
            _ => None,
        })
        .collect()
}

fn names(list: &[&str]) -> Vec<NodeName> {
    list.iter().map(NodeName::new).collect()
}

#[test]
fn nothing_is_published_before_every_node_has_a_verdict() {
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    assert!(published(&s.probe("master", "http", true)).is_empty());
    // A non-critical check does not complete the picture.
    assert!(published(&s.probe("slave", "ssh", true)).is_empty());
    let actions = s.probe("slave", "http", true);
    assert_eq!(published(&actions), vec![names(&["master"])]);
    let publication = s.arbiter.publication().unwrap();
    assert_eq!(publication.answers.len(), 2);
    assert_eq!(
        publication.answers[1].addresses,
        vec!["10.1.0.1".parse::<IpAddr>().unwrap()]
    );
}

#[test]
fn three_failures_take_a_check_down_two_do_not() {
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    s.round(true, true);
    s.round(false, true);
    s.round(false, true);
    s.round(true, true);
    assert_eq!(
        s.published(),
        vec![names(&["master"])],
        "2 failures then a success: still up"
    );
    assert_eq!(s.arbiter.status().nodes[0].health, Health::Up);
    s.round(false, true);
    s.round(false, true);
    assert_eq!(s.arbiter.status().nodes[0].health, Health::Up);
    let actions = s.round(false, true);
    assert_eq!(s.arbiter.status().nodes[0].health, Health::Down);
    assert_eq!(published(&actions), vec![names(&["slave"])]);
    let kinds: Vec<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(e) => Some(e.name()),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["check-down", "node-down", "failover"]);
    let Some(Action::Notify(Event {
        kind:
            EventKind::CheckDown {
                error,
                consecutive_failures,
                ..
            },
        ..
    })) = actions.first()
    else {
        panic!("first action should be the check-down event: {actions:?}");
    };
    assert_eq!(error, "connection refused");
    assert_eq!(*consecutive_failures, 3);
}

#[test]
fn rise_two_needs_two_successes() {
    let mut spec = spec(AllDown::KeepLast);
    spec.checks[0].rise = 2;
    let mut s = Script::new(spec, auto_30s());
    s.round(true, true);
    for _ in 0..3 {
        s.round(false, true);
    }
    s.round(true, true);
    assert_eq!(s.arbiter.status().nodes[0].health, Health::Down);
    s.round(true, true);
    assert_eq!(s.arbiter.status().nodes[0].health, Health::Up);
}

#[test]
fn failback_waits_for_failback_after() {
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    s.round(true, true);
    for _ in 0..3 {
        s.round(false, true);
    }
    assert_eq!(s.published().last().unwrap(), &names(&["slave"]));
    // Master comes back at this moment; the answer stays on slave for 30 s.
    let back_at = s.now;
    s.round(true, true);
    while s.now.since(back_at) < Duration::from_secs(30) {
        assert_eq!(s.published().last().unwrap(), &names(&["slave"]));
        assert!(s.arbiter.next_deadline().is_some());
        s.round(true, true);
    }
    assert_eq!(s.published().last().unwrap(), &names(&["master"]));
    assert!(s.notified().contains(&"failback"));
}

#[test]
fn failback_timer_fires_without_new_observations() {
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    s.round(true, true);
    for _ in 0..3 {
        s.round(false, true);
    }
    s.probe("master", "http", true);
    let deadline = s.arbiter.next_deadline().unwrap();
    assert_eq!(deadline, s.now.mono + Duration::from_secs(30));
    s.advance(Duration::from_secs(29));
    assert_eq!(s.published().last().unwrap(), &names(&["slave"]));
    s.advance(Duration::from_secs(1));
    assert_eq!(s.published().last().unwrap(), &names(&["master"]));
}

#[test]
fn a_relapse_during_failback_after_restarts_the_wait() {
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    s.round(true, true);
    for _ in 0..3 {
        s.round(false, true);
    }
    s.round(true, true); // master up again
    for _ in 0..3 {
        s.round(false, true); // and down again
    }
    s.round(true, true);
    for _ in 0..10 {
        s.round(true, true); // 22 s since it came back the second time
    }
    assert_eq!(s.published().last().unwrap(), &names(&["slave"]));
    for _ in 0..5 {
        s.round(true, true);
    }
    assert_eq!(s.published().last().unwrap(), &names(&["master"]));
}

#[test]
fn manual_failback_waits_for_the_operator() {
    let mut s = Script::new(spec(AllDown::KeepLast), active_passive(Failback::Manual));
    s.round(true, true);
    for _ in 0..3 {
        s.round(false, true);
    }
    for _ in 0..100 {
        s.round(true, true);
    }
    assert_eq!(s.published().last().unwrap(), &names(&["slave"]));
    let actions = s.arbiter.request_failback(s.now);
    assert_eq!(published(&actions), vec![names(&["master"])]);
}

#[test]
fn failover_happens_at_once_when_the_active_node_dies() {
    // No failback_after wait applies to a failover.
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    s.round(true, true);
    for _ in 0..3 {
        s.round(false, true);
    }
    s.round(true, true);
    s.round(true, true);
    let len = s.published().len();
    for _ in 0..3 {
        s.round(true, false);
    }
    assert_eq!(s.published().len(), len + 1);
    assert_eq!(s.published().last().unwrap(), &names(&["master"]));
    assert!(s.notified().iter().filter(|k| **k == "failover").count() >= 2);
}

fn all_down_case(rule: AllDown) -> Script {
    let mut s = Script::new(spec(rule), auto_30s());
    s.round(true, true);
    for _ in 0..3 {
        s.round(true, false);
    }
    for _ in 0..3 {
        s.round(false, false);
    }
    s
}

#[test]
fn all_down_keep_last_keeps_the_answer() {
    let s = all_down_case(AllDown::KeepLast);
    assert_eq!(s.published(), vec![names(&["master"])]);
    assert!(s.notified().contains(&"all-down"));
    assert!(s.arbiter.status().all_down);
}

#[test]
fn all_down_serve_all_publishes_every_node() {
    let s = all_down_case(AllDown::ServeAll);
    assert_eq!(s.published().last().unwrap(), &names(&["master", "slave"]));
}

#[test]
fn all_down_serve_primary_publishes_the_first_in_order() {
    let mut s = Script::new(spec(AllDown::ServePrimary), auto_30s());
    s.round(true, true);
    for _ in 0..3 {
        s.round(false, true);
    }
    assert_eq!(s.published().last().unwrap(), &names(&["slave"]));
    for _ in 0..3 {
        s.round(false, false);
    }
    assert_eq!(s.published().last().unwrap(), &names(&["master"]));
    // Recovery of one node leaves the all-down state.
    s.round(false, true);
    assert_eq!(s.published().last().unwrap(), &names(&["slave"]));
    assert!(!s.arbiter.status().all_down);
}

#[test]
fn all_down_at_start_publishes_nothing_with_keep_last() {
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    s.round(false, false);
    assert!(s.published().is_empty());
    assert!(s.notified().contains(&"all-down"));
}

#[test]
fn all_healthy_publishes_every_up_node() {
    let mut s = Script::new(spec(AllDown::KeepLast), Box::new(AllHealthy));
    s.round(true, true);
    assert_eq!(s.published(), vec![names(&["master", "slave"])]);
    for _ in 0..3 {
        s.round(true, false);
    }
    assert_eq!(s.published().last().unwrap(), &names(&["master"]));
    s.round(true, true);
    assert_eq!(s.published().last().unwrap(), &names(&["master", "slave"]));
    let publication = s.arbiter.publication().unwrap();
    assert_eq!(publication.answers[0].addresses.len(), 2);
}

#[test]
fn a_check_failing_every_other_probe_never_changes_state() {
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    for i in 0..1000 {
        s.round(i % 2 == 0, true);
    }
    assert_eq!(s.published(), vec![names(&["master"])]);
    assert!(s.notified().len() <= 1, "{:?}", s.notified());
}

#[test]
fn a_flapping_check_gives_a_bounded_number_of_notifications() {
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    // Down for three probes, up for one, for an hour: 450 transitions of the check.
    let rounds = 3600 / INTERVAL.as_secs() as usize;
    for i in 0..rounds {
        s.round(i % 4 == 3, true);
    }
    let transitions = s
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Notify(e) | Action::Record(e) if e.name() == "check-down"))
        .count();
    assert!(transitions > 200, "the script should flap: {transitions}");
    let notified = s.notified().len();
    // Per 10-minute window and subject at most max_changes + Flapping + Settled: three
    // subjects (check, node, answer) over six windows.
    assert!(notified <= 3 * 6 * 6, "{notified} notifications");
    assert!(s.notified().contains(&"flapping"));
    // The answer does not flap: failback_after holds it on the slave.
    assert!(s.published().len() <= 3, "{:?}", s.published());
    // After it stops flapping a window later, one summary arrives.
    for _ in 0..400 {
        s.round(true, true);
    }
    assert!(s.notified().contains(&"settled"));
    assert!(s.arbiter.status().nodes[0].checks[0].health == Health::Up);
}

#[test]
fn the_same_inputs_give_the_same_actions() {
    let run = || {
        let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
        s.now = Moment {
            mono: s.now.mono,
            wall: SystemTime::UNIX_EPOCH,
        };
        for i in 0..200 {
            s.round(i % 5 != 0 && i % 7 != 0, i % 11 != 0);
        }
        s.actions
    };
    // Monotonic bases differ between runs; compare what a user sees.
    let a: Vec<String> = run().iter().map(|a| format!("{a:?}")).collect();
    let b: Vec<String> = run().iter().map(|a| format!("{a:?}")).collect();
    assert_eq!(a, b);
}

#[test]
fn drain_moves_the_answer_away_and_undrain_brings_it_back() {
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    s.round(true, true);
    let drain = Override::Drain {
        node: "master".into(),
    };
    let actions = s
        .arbiter
        .apply_override(drain.clone(), true, s.now)
        .unwrap();
    assert_eq!(published(&actions), vec![names(&["slave"])]);
    assert!(s.arbiter.status().nodes[0].drained);
    assert_eq!(
        s.arbiter.status().nodes[0].health,
        Health::Up,
        "health is still measured"
    );
    for _ in 0..20 {
        s.round(true, true);
    }
    assert_eq!(
        s.arbiter.answer(),
        names(&["slave"]),
        "a drained node is not failed back to"
    );
    // Setting it twice changes nothing.
    assert!(s
        .arbiter
        .apply_override(drain.clone(), true, s.now)
        .unwrap()
        .is_empty());
    let actions = s.arbiter.apply_override(drain, false, s.now).unwrap();
    assert_eq!(published(&actions), vec![names(&["master"])]);
}

#[test]
fn forcing_a_check_down_fails_the_node_over_and_clearing_it_restores() {
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    s.round(true, true);
    let force = Override::Force {
        node: "master".into(),
        check: "http".into(),
        health: Health::Down,
    };
    let actions = s
        .arbiter
        .apply_override(force.clone(), true, s.now)
        .unwrap();
    assert_eq!(published(&actions), vec![names(&["slave"])]);
    let status = s.arbiter.status();
    assert_eq!(status.nodes[0].health, Health::Down);
    assert_eq!(status.nodes[0].checks[0].forced, Some(Health::Down));
    assert_eq!(status.overrides, vec![force.clone()]);
    s.arbiter.apply_override(force, false, s.now).unwrap();
    assert_eq!(s.arbiter.status().nodes[0].health, Health::Up);
}

#[test]
fn overrides_naming_unknown_things_are_refused() {
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    let err = s
        .arbiter
        .apply_override(
            Override::Drain {
                node: "mastr".into(),
            },
            true,
            s.now,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown node \"mastr\" (nodes: master, slave)"
    );
    let err = s
        .arbiter
        .apply_override(
            Override::Force {
                node: "master".into(),
                check: "htp".into(),
                health: Health::Up,
            },
            true,
            s.now,
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "unknown check \"htp\" (checks: http, ssh)");
}

#[test]
fn an_assumed_answer_is_kept_until_the_policy_moves_it() {
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    s.arbiter.assume_published(names(&["slave", "nobody"]));
    assert_eq!(s.arbiter.answer(), names(&["slave"]));
    // Both up: master is preferred, but failback_after applies as for any failback.
    s.round(true, true);
    assert!(s.published().is_empty());
    for _ in 0..15 {
        s.round(true, true);
    }
    assert_eq!(s.published(), vec![names(&["master"])]);
}

#[test]
fn bad_specs_are_refused_with_a_reason() {
    let mut s = spec(AllDown::KeepLast);
    s.nodes.push(s.nodes[0].clone());
    let err = Arbiter::new(s, auto_30s()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "duplicate node name \"master\": names must be unique"
    );
    let mut s = spec(AllDown::KeepLast);
    s.checks[0].fall = 0;
    assert!(matches!(
        Arbiter::new(s, auto_30s()),
        Err(ArbiterError::ZeroThreshold(_))
    ));
}

#[test]
fn the_publish_context_says_how_long_the_old_primary_has_been_down() {
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    s.round(true, true);
    let failed_at = s.now;
    let mut moved = Vec::new();
    for _ in 0..3 {
        moved.extend(s.round(false, true));
    }
    let publication = match moved.iter().find(|a| matches!(a, Action::Publish(_))) {
        Some(Action::Publish(p)) => p.clone(),
        _ => panic!("no failover: {moved:?}"),
    };
    // The third failure came two intervals after the first; one more interval has passed.
    let context = s
        .arbiter
        .publish_context(s.now, &names(&["master"]), &publication);
    assert_eq!(context.to, names(&["slave"]));
    assert_eq!(context.leaving.len(), 1);
    assert_eq!(context.leaving[0].health, Health::Down);
    assert_eq!(context.leaving[0].down_for, Some(INTERVAL));
    assert!(s.now.since(failed_at) > INTERVAL);
    // A failback leaves a node that is up: no down time.
    let back = s.arbiter.publish_context(
        s.now,
        &names(&["slave"]),
        &s.arbiter.publication_for(&names(&["master"])),
    );
    assert_eq!(back.leaving[0].health, Health::Up);
    assert_eq!(back.leaving[0].down_for, None);
}

#[test]
fn a_vetoed_failover_keeps_the_answer_and_is_decided_again_after_retry_after() {
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    s.round(true, true);
    for _ in 0..3 {
        s.round(false, true);
    }
    assert_eq!(s.arbiter.answer(), names(&["slave"]));
    let veto = Veto {
        reason: "slave's SQL thread is 42 s behind".into(),
        steps: vec![FenceStep::done(&"master".into(), "set read_only = 1", "ok")],
        retry_after: Duration::from_secs(10),
    };
    let actions = s.arbiter.publish_vetoed(
        s.now,
        "mysql fencing",
        names(&["master"]),
        names(&["slave"]),
        veto,
    );
    let kinds: Vec<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(e) => Some(e.name()),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["fence-step", "publish-vetoed"]);
    let Some(Action::Notify(refusal)) = actions.last() else {
        panic!("{actions:?}")
    };
    assert_eq!(
        refusal.to_string(),
        "mysql fencing refused to move the answer to slave: slave's SQL thread is 42 s behind; the answer stays on master, decided again in 10s"
    );
    assert_eq!(s.arbiter.answer(), names(&["master"]));
    assert!(published(&actions).is_empty());
    // New probes within the hold do not publish the refused answer again...
    let before = s.published().len();
    for _ in 0..4 {
        s.round(false, true);
    }
    assert_eq!(s.published().len(), before);
    assert_eq!(s.arbiter.answer(), names(&["master"]));
    // ...and once it has passed (10 s after the veto) the arbiter decides again.
    s.round(false, true);
    assert_eq!(s.published().len(), before + 1);
    assert_eq!(s.arbiter.answer(), names(&["slave"]));
}

#[test]
fn a_veto_of_an_answer_no_longer_current_changes_nothing() {
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    s.round(true, true);
    let veto = Veto {
        reason: "late".into(),
        steps: Vec::new(),
        retry_after: Duration::from_secs(10),
    };
    let actions = s
        .arbiter
        .publish_vetoed(s.now, "f", names(&["master"]), names(&["slave"]), veto);
    assert_eq!(actions.len(), 1, "the refusal is still reported");
    assert_eq!(s.arbiter.answer(), names(&["master"]));
    assert!(s.arbiter.next_deadline().is_none());
}

mod data;
mod names;
mod restart;
