//! A policy plugin of your own, run through the same arbiter as the built-in ones.
//!
//! `MaintenanceWindow` behaves like active-passive, except that during a daily window (the
//! primary's nightly backup, say) it prefers the second node while that one is up. The example
//! replays a made-up day against it, on the arbiter's injected clock, and prints every answer.
//!
//! Run: `cargo run --example custom_policy`

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use failover::core::{
    Action, Arbiter, CheckSpec, ClusterSpec, ClusterView, Damping, Decision, FailureClass,
    ManagedName, Moment, NodeName, NodeSpec, Observation, Outcome, Policy, Startup,
};

/// Prefers `order[1]` between `start_hour` and `end_hour` (UTC), `order[0]` otherwise.
struct MaintenanceWindow {
    order: Vec<NodeName>,
    start_hour: u64,
    end_hour: u64,
}

impl MaintenanceWindow {
    fn in_window(&self, view: &ClusterView<'_>) -> bool {
        let seconds = view
            .now
            .wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let hour = (seconds / 3600) % 24;
        (self.start_hour..self.end_hour).contains(&hour)
    }
}

impl Policy for MaintenanceWindow {
    fn name(&self) -> &str {
        "maintenance-window"
    }

    fn primary(&self) -> Option<&NodeName> {
        self.order.first()
    }

    fn decide(&mut self, view: &ClusterView<'_>) -> Decision {
        let mut preference: Vec<&NodeName> = self.order.iter().collect();
        if self.in_window(view) {
            preference.swap(0, 1);
        }
        let chosen = preference.into_iter().find(|n| view.is_up(n)).cloned();
        // Ask again at the next full hour, so the window opens and closes on time even when no
        // probe result changes anything.
        let seconds = view
            .now
            .wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let to_next_hour = Duration::from_secs(3600 - seconds % 3600);
        Decision {
            answer: chosen.into_iter().collect(),
            recheck_at: Some(view.now.mono + to_next_hour),
        }
    }
}

fn main() {
    let spec = ClusterSpec::new(
        vec![
            NodeSpec::new("master", ["192.0.2.1".parse().expect("literal address")]),
            NodeSpec::new("slave", ["198.51.100.2".parse().expect("literal address")]),
        ],
        vec![CheckSpec::new("http", true)],
        vec![ManagedName::new("@", 10)],
    )
    .with_all_down(Default::default())
    .with_damping(Damping::default())
    .with_startup(Startup::default());
    let policy = MaintenanceWindow {
        order: vec!["master".into(), "slave".into()],
        start_hour: 2,
        end_hour: 3,
    };
    let mut arbiter = Arbiter::new(spec, Box::new(policy)).expect("a valid spec");

    // A day starting at midnight UTC, probed every minute; master's web server dies at 10:00
    // for 20 minutes.
    let midnight = UNIX_EPOCH + Duration::from_secs(20_000 * 86_400);
    let start = Moment::now();
    let mut now = Moment {
        mono: start.mono,
        wall: midnight,
    };
    for minute in 0..24 * 60 {
        let master_ok = !(600..620).contains(&minute);
        let mut actions = arbiter.tick(now);
        for (node, ok) in [("master", master_ok), ("slave", true)] {
            actions.extend(arbiter.observe(Observation {
                node: node.into(),
                check: "http".into(),
                outcome: if ok {
                    Outcome::healthy("HTTP 200")
                } else {
                    Outcome::failed(FailureClass::Unreachable, "connection refused")
                },
                at: now,
            }));
        }
        for action in actions {
            if let Action::Publish(publication) = action {
                println!(
                    "{} answer -> {:?}",
                    clock(now.wall, midnight),
                    publication.answers[0].addresses
                );
            }
        }
        now = now + Duration::from_secs(60);
    }
}

fn clock(at: SystemTime, midnight: SystemTime) -> String {
    let minutes = at.duration_since(midnight).map_or(0, |d| d.as_secs() / 60);
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}
