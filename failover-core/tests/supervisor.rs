//! The supervisor on tokio's paused clock: probes feed the arbiter, writers get the answer,
//! failed publishes are retried and reported.
#![allow(clippy::unwrap_used)] // tests

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use failover_core::*;

/// A check whose verdict per node the test sets (pure logic under test is the supervisor's).
#[derive(Default)]
struct Switch(Mutex<HashMap<String, bool>>);

impl Switch {
    fn set(&self, node: &str, up: bool) {
        self.0.lock().unwrap().insert(node.to_owned(), up);
    }
}

#[async_trait]
impl HealthCheck for Switch {
    fn kind(&self) -> &'static str {
        "switch"
    }

    async fn probe(&self, target: &Target) -> Outcome {
        let up = self.0.lock().unwrap().get(target.node.as_str()).copied();
        match up {
            Some(true) => Outcome::healthy("on"),
            Some(false) => Outcome::failed(FailureClass::Unreachable, "switched off"),
            // Never answers: the supervisor's timeout must cut it.
            None => std::future::pending().await,
        }
    }
}

/// Records publications; fails the first `fail_first` attempts.
#[derive(Default)]
struct Recorder {
    published: Mutex<Vec<Vec<NodeName>>>,
    fail_first: AtomicU32,
}

#[async_trait]
impl ZoneWriter for Recorder {
    fn describe(&self) -> String {
        "recorder".into()
    }

    async fn publish(&self, publication: &Publication) -> Result<PublishReceipt, PublishError> {
        if self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(PublishError::new("rndc: connection refused"));
        }
        self.published
            .lock()
            .unwrap()
            .push(publication.nodes.clone());
        Ok(PublishReceipt { serial: Some(7) })
    }
}

fn arbiter() -> Arbiter {
    arbiter_with(Startup::default())
}

fn arbiter_with(startup: Startup) -> Arbiter {
    let spec = ClusterSpec::new(
        vec![
            NodeSpec::new("master", ["10.1.0.1".parse().unwrap()]),
            NodeSpec::new("slave", ["10.2.0.2".parse().unwrap()]),
        ],
        vec![CheckSpec::new("http", true)],
        vec![ManagedName::new("@", 10)],
    )
    .with_all_down(AllDown::KeepLast)
    .with_damping(Damping::default())
    .with_startup(startup);
    let policy = ActivePassive::new(
        vec!["master".into(), "slave".into()],
        Failback::Auto {
            after: Duration::from_secs(30),
        },
    );
    Arbiter::new(spec, Box::new(policy)).unwrap()
}

const SCHEDULE: ProbeSchedule = ProbeSchedule {
    interval: Duration::from_secs(2),
    timeout: Duration::from_secs(1),
    jitter: Duration::ZERO,
};

fn names(list: &[&str]) -> Vec<NodeName> {
    list.iter().map(NodeName::new).collect()
}

#[tokio::test(start_paused = true)]
async fn failover_and_failback_on_the_schedule() {
    let switch = Arc::new(Switch::default());
    switch.set("master", true);
    switch.set("slave", true);
    let recorder = Arc::new(Recorder::default());
    let handle = Supervisor::new(arbiter())
        .node("master".into(), "127.0.0.2".parse().unwrap())
        .node("slave".into(), "127.0.0.3".parse().unwrap())
        .check("http".into(), switch.clone(), SCHEDULE)
        .writer(recorder.clone())
        .spawn();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        *recorder.published.lock().unwrap(),
        vec![names(&["master"])]
    );

    switch.set("master", false);
    // Probes at 2, 4 and 6 s fail: down with the third, fall (3) × interval (2 s) after the
    // last good probe.
    tokio::time::sleep(Duration::from_millis(5_000)).await;
    assert_eq!(
        *recorder.published.lock().unwrap(),
        vec![names(&["master"])]
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        recorder.published.lock().unwrap().last().unwrap(),
        &names(&["slave"])
    );
    let status = handle.status().borrow().clone();
    assert_eq!(status.cluster.answer, names(&["slave"]));
    assert!(status.recent_events.iter().any(|e| e.name() == "failover"));
    assert_eq!(status.writers[0].serial, Some(7));

    // Master is back from the probe at 8 s; failback_after (30 s) brings the answer back at 38 s.
    switch.set("master", true);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        recorder.published.lock().unwrap().last().unwrap(),
        &names(&["slave"])
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        recorder.published.lock().unwrap().last().unwrap(),
        &names(&["master"])
    );
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_hanging_probe_times_out_and_counts_as_a_failure() {
    let switch = Arc::new(Switch::default());
    switch.set("slave", true); // master's probe never returns
    let recorder = Arc::new(Recorder::default());
    let handle = Supervisor::new(arbiter())
        .node("master".into(), "127.0.0.2".parse().unwrap())
        .node("slave".into(), "127.0.0.3".parse().unwrap())
        .check("http".into(), switch.clone(), SCHEDULE)
        .writer(recorder.clone())
        .spawn();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(*recorder.published.lock().unwrap(), vec![names(&["slave"])]);
    let status = handle.status().borrow().clone();
    let check = &status.cluster.nodes[0].checks[0];
    assert_eq!(check.health, Health::Down);
    let Some(Outcome::Failed { class, error }) = &check.last_outcome else {
        panic!("{check:?}");
    };
    assert_eq!(*class, FailureClass::Timeout);
    assert!(error.contains("within 1s"), "{error}");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_publish_is_reported_and_retried() {
    let switch = Arc::new(Switch::default());
    switch.set("master", true);
    switch.set("slave", true);
    let recorder = Arc::new(Recorder {
        fail_first: AtomicU32::new(3),
        ..Recorder::default()
    });
    let handle = Supervisor::new(arbiter())
        .node("master".into(), "127.0.0.2".parse().unwrap())
        .node("slave".into(), "127.0.0.3".parse().unwrap())
        .check("http".into(), switch.clone(), SCHEDULE)
        .writer(recorder.clone())
        .spawn();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(recorder.published.lock().unwrap().is_empty());
    let status = handle.status().borrow().clone();
    assert_eq!(
        status.writers[0].failing.as_deref(),
        Some("rndc: connection refused")
    );
    let failed: Vec<_> = status
        .recent_events
        .iter()
        .filter(|e| e.name() == "publish-failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].to_string().contains("rndc: connection refused"));
    // Backoff 1 s, 2 s, 4 s: the fourth attempt, 7 s later, succeeds.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        *recorder.published.lock().unwrap(),
        vec![names(&["master"])]
    );
    let status = handle.status().borrow().clone();
    assert_eq!(status.writers[0].failing, None);
    assert!(status
        .recent_events
        .iter()
        .any(|e| e.name() == "publish-recovered"));
    handle.shutdown().await;
}

/// A fence that refuses the first `refuse_first` calls and records every context it is given.
#[derive(Default)]
struct ScriptedFence {
    refuse_first: AtomicU32,
    contexts: Mutex<Vec<PublishContext>>,
}

#[async_trait]
impl Fence for ScriptedFence {
    fn describe(&self) -> String {
        "scripted fence".into()
    }

    async fn before_publish(&self, context: &PublishContext) -> Result<FenceReport, Veto> {
        self.contexts.lock().unwrap().push(context.clone());
        // Fencing takes time; the writers must wait for it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let step = FenceStep::done(&context.from[0], "set read_only = 1", "ok");
        if self
            .refuse_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Veto {
                reason: "replica 42 s behind".into(),
                steps: vec![step],
                retry_after: Duration::from_secs(5),
            });
        }
        Ok(FenceReport { steps: vec![step] })
    }
}

#[tokio::test(start_paused = true)]
async fn a_fence_holds_the_failover_until_it_approves() {
    let switch = Arc::new(Switch::default());
    switch.set("master", true);
    switch.set("slave", true);
    let recorder = Arc::new(Recorder::default());
    let fence = Arc::new(ScriptedFence {
        refuse_first: AtomicU32::new(1),
        ..ScriptedFence::default()
    });
    let handle = Supervisor::new(arbiter())
        .node("master".into(), "127.0.0.2".parse().unwrap())
        .node("slave".into(), "127.0.0.3".parse().unwrap())
        .check("http".into(), switch.clone(), SCHEDULE)
        .writer(recorder.clone())
        .fence(fence.clone())
        .spawn();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The first publication is not a move: nothing to fence.
    assert_eq!(
        *recorder.published.lock().unwrap(),
        vec![names(&["master"])]
    );
    assert!(fence.contexts.lock().unwrap().is_empty());

    switch.set("master", false);
    // Down with the probe at 6 s; the fence refuses at 6.3 s.
    tokio::time::sleep(Duration::from_millis(6_500)).await;
    assert_eq!(
        *recorder.published.lock().unwrap(),
        vec![names(&["master"])],
        "a refused failover is not published"
    );
    let status = handle.status().borrow().clone();
    assert_eq!(status.cluster.answer, names(&["master"]));
    let kinds: Vec<&str> = status.recent_events.iter().map(|e| e.name()).collect();
    assert!(
        kinds.ends_with(&["fence-step", "publish-vetoed"]),
        "{kinds:?}"
    );
    {
        let contexts = fence.contexts.lock().unwrap();
        assert_eq!(contexts.len(), 1);
        assert_eq!(contexts[0].from, names(&["master"]));
        assert_eq!(contexts[0].to, names(&["slave"]));
        assert_eq!(contexts[0].leaving[0].health, Health::Down);
        assert_eq!(contexts[0].leaving[0].down_for, Some(Duration::ZERO));
    }

    // Decided again 5 s after the refusal (11.3 s); approved 0.3 s later.
    tokio::time::sleep(Duration::from_millis(4_900)).await;
    assert_eq!(fence.contexts.lock().unwrap().len(), 2);
    assert_eq!(recorder.published.lock().unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        recorder.published.lock().unwrap().last().unwrap(),
        &names(&["slave"])
    );
    {
        let contexts = fence.contexts.lock().unwrap();
        assert_eq!(
            contexts[1].leaving[0].down_for,
            Some(Duration::from_millis(5_300))
        );
    }
    let status = handle.status().borrow().clone();
    assert_eq!(status.cluster.answer, names(&["slave"]));
    assert_eq!(status.recent_events.last().unwrap().name(), "fence-step");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn events_from_outside_are_damped_and_notified_like_the_arbiters() {
    let switch = Arc::new(Switch::default());
    switch.set("master", true);
    switch.set("slave", true);
    let supervisor = Supervisor::new(arbiter())
        .node("master".into(), "127.0.0.2".parse().unwrap())
        .node("slave".into(), "127.0.0.3".parse().unwrap())
        .check("http".into(), switch.clone(), SCHEDULE)
        .writer(Arc::new(Recorder::default()));
    let inbox = supervisor.event_sender();
    let handle = supervisor.spawn();
    let conflict = |n: u64| Event {
        at: std::time::SystemTime::now(),
        kind: EventKind::MirrorConflicts {
            count: n,
            examples: vec![Conflict {
                path: "uploads/a.jpg".into(),
                kept_as: "uploads/a.conflict-slave-20261122T120000Z.jpg".into(),
                winner: "master".into(),
            }],
        },
    };
    for n in 1..=10 {
        inbox.try_send(conflict(n)).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = handle.status().borrow().clone();
    let names: Vec<&str> = status.recent_events.iter().map(|e| e.name()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "mirror-conflicts").count(),
        10,
        "{names:?}"
    );
    assert!(
        names.contains(&"flapping"),
        "ten in a row are damped: {names:?}"
    );
    assert!(status.recent_events.iter().any(|e| e
        .to_string()
        .contains("uploads/a.jpg: master's version kept, the other as uploads/a.conflict-slave-20261122T120000Z.jpg")));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_restarted_supervisor_hands_the_restored_answer_to_the_writers_and_one_lost_probe_moves_nothing(
) {
    let switch = Arc::new(Switch::default());
    switch.set("master", true);
    switch.set("slave", true);
    let start = |recorder: Arc<Recorder>, state: Option<ArbiterState>| {
        let mut supervisor = Supervisor::new(arbiter_with(Startup {
            first_verdict: FirstVerdict::AfterFall,
            ..Startup::default()
        }));
        if let Some(state) = state {
            supervisor.restore(&state).unwrap();
        }
        supervisor
            .node("master".into(), "127.0.0.2".parse().unwrap())
            .node("slave".into(), "127.0.0.3".parse().unwrap())
            .check("http".into(), switch.clone(), SCHEDULE)
            .writer(recorder)
            .spawn()
    };
    let first = Arc::new(Recorder::default());
    let handle = start(first.clone(), None);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(*first.published.lock().unwrap(), vec![names(&["master"])]);
    let state = handle.status().borrow().state.clone();
    handle.shutdown().await;

    // The restart: master's next probe is lost.
    switch.set("master", false);
    let second = Arc::new(Recorder::default());
    let handle = start(second.clone(), Some(state));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        *second.published.lock().unwrap(),
        vec![names(&["master"])],
        "the restored answer, handed over at start"
    );
    switch.set("master", true);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(*second.published.lock().unwrap(), vec![names(&["master"])]);
    let status = handle.status().borrow().clone();
    assert_eq!(status.cluster.answer, names(&["master"]));
    assert_eq!(status.cluster.nodes[0].health, Health::Up);
    assert!(
        status.recent_events.iter().all(|e| e.name() != "failover"
            && e.name() != "check-down"
            && e.name() != "answer-changed"),
        "{:?}",
        status.recent_events
    );
    handle.shutdown().await;
}

/// Records each publication's answers per name.
#[derive(Default)]
struct Answers(Mutex<Vec<Vec<(String, usize)>>>);

#[async_trait]
impl ZoneWriter for Answers {
    fn describe(&self) -> String {
        "answers".into()
    }

    async fn publish(&self, publication: &Publication) -> Result<PublishReceipt, PublishError> {
        let answers = publication
            .answers
            .iter()
            .map(|a| (a.name.clone(), a.addresses.len()))
            .collect();
        self.0.lock().unwrap().push(answers);
        Ok(PublishReceipt::default())
    }
}

#[tokio::test(start_paused = true)]
async fn a_name_with_its_own_policy_moves_without_the_fence_while_the_fenced_answer_stays() {
    let switch = Arc::new(Switch::default());
    switch.set("master", true);
    switch.set("slave", true);
    let spec = ClusterSpec::new(
        vec![
            NodeSpec::new("master", ["10.1.0.1".parse().unwrap()]),
            NodeSpec::new("slave", ["10.2.0.2".parse().unwrap()]),
        ],
        vec![CheckSpec::new("http", true)],
        vec![
            ManagedName::new("@", 10),
            ManagedName::new("api", 10).with_policy("every"),
        ],
    )
    .with_all_down(AllDown::KeepLast)
    .with_damping(Damping::default())
    .with_startup(Startup::default());
    let policy = ActivePassive::new(names(&["master", "slave"]), Failback::Manual);
    let arbiter = Arbiter::with_policies(
        spec,
        Box::new(policy),
        vec![NamedPolicy::new("every", Box::new(AllHealthy))],
    )
    .unwrap();
    let answers = Arc::new(Answers::default());
    let fence = Arc::new(ScriptedFence::default());
    let handle = Supervisor::new(arbiter)
        .node("master".into(), "127.0.0.2".parse().unwrap())
        .node("slave".into(), "127.0.0.3".parse().unwrap())
        .check("http".into(), switch.clone(), SCHEDULE)
        .writer(answers.clone())
        .fence(fence.clone())
        .spawn();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let both = vec![("@".to_owned(), 1), ("api".to_owned(), 2)];
    assert_eq!(*answers.0.lock().unwrap(), vec![both.clone()]);

    // slave dies: `@` stays on master (nothing to fence), `api` drops slave.
    switch.set("slave", false);
    tokio::time::sleep(Duration::from_millis(6_500)).await;
    assert_eq!(
        *answers.0.lock().unwrap(),
        vec![both, vec![("@".to_owned(), 1), ("api".to_owned(), 1)]]
    );
    assert!(fence.contexts.lock().unwrap().is_empty());
    let status = handle.status().borrow().clone();
    let api = status
        .cluster
        .names
        .iter()
        .find(|n| n.name == "api")
        .unwrap();
    assert_eq!(api.answer, names(&["master"]));
    handle.shutdown().await;
}

/// What the supervisor told its metrics, as lines (`probe master http unreachable 1000ms`).
#[derive(Default)]
struct Told(Mutex<Vec<String>>);

impl SupervisorMetrics for Told {
    fn probed(&self, node: &NodeName, check: &CheckName, outcome: &Outcome, took: Duration) {
        let result = match outcome {
            Outcome::Healthy { .. } => "healthy".to_owned(),
            Outcome::Failed { class, .. } => class.to_string(),
        };
        self.0.lock().unwrap().push(format!(
            "probe {node} {check} {result} {}ms",
            took.as_millis()
        ));
    }

    fn event(&self, event: &Event) {
        self.0
            .lock()
            .unwrap()
            .push(format!("event {}", event.name()));
    }

    fn published(&self, writer: &str, _took: Duration, result: Result<(), &str>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("publish {writer} {result:?}"));
    }

    fn notified(&self, notifier: &str, events: usize, result: Result<(), &str>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("notify {notifier} {events} {}", result.is_ok()));
    }
}

#[tokio::test(start_paused = true)]
async fn metrics_are_told_each_probe_event_publication_and_notification_as_it_happens() {
    let switch = Arc::new(Switch::default());
    switch.set("slave", true); // master's probe hangs: cut off by the timeout
    let recorder = Arc::new(Recorder {
        fail_first: AtomicU32::new(1),
        ..Recorder::default()
    });
    let told = Arc::new(Told::default());
    let handle = Supervisor::new(arbiter())
        .node("master".into(), "127.0.0.2".parse().unwrap())
        .node("slave".into(), "127.0.0.3".parse().unwrap())
        .check("http".into(), switch.clone(), SCHEDULE)
        .writer(recorder.clone())
        .notifier(Arc::new(LogNotifier))
        .metrics(told.clone())
        .spawn();
    // The timed-out probe at 1 s, the publish that fails, its retry 1 s later.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let lines = told.0.lock().unwrap().clone();
    for wanted in [
        "probe slave http healthy 0ms",
        "probe master http timeout 1000ms",
        "publish recorder Err(\"rndc: connection refused\")",
        "publish recorder Ok(())",
        "event publish-failed",
        "notify log 1 true",
    ] {
        assert!(
            lines.iter().any(|line| line == wanted),
            "{wanted:?} not told: {lines:#?}"
        );
    }
    handle.shutdown().await;
}
