//! Shared observations: the supervisor with a quorum (on tokio's paused clock), the observation
//! links between real observers on loopback, and the data a failover may be missing.
#![allow(clippy::unwrap_used)] // tests

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use failover_core::peer::Identity;
use failover_core::*;
use failover_testkit::{eventually, Wait};

/// A check whose verdict per node the test sets.
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
        match self.0.lock().unwrap().get(target.node.as_str()).copied() {
            Some(false) => Outcome::failed(FailureClass::Unreachable, "switched off"),
            _ => Outcome::healthy("on"),
        }
    }
}

const INTERVAL: Duration = Duration::from_millis(500);

fn spec() -> ClusterSpec {
    ClusterSpec::new(
        vec![
            NodeSpec::new("dc1", ["10.1.0.1".parse().unwrap()]),
            NodeSpec::new("dc2", ["10.2.0.2".parse().unwrap()]),
        ],
        vec![
            CheckSpec::new("http", true),
            CheckSpec::new("mirror", false).about_data(),
        ],
        vec![ManagedName::new("@", 10)],
    )
    .with_all_down(AllDown::KeepLast)
    .with_damping(Damping::default())
    .with_startup(Startup::default())
}

fn supervisor(switch: &Arc<Switch>) -> Supervisor {
    let policy = ActivePassive::new(
        vec!["dc1".into(), "dc2".into()],
        Failback::Auto {
            after: Duration::from_secs(5),
        },
    );
    let schedule = ProbeSchedule {
        interval: INTERVAL,
        timeout: Duration::from_millis(200),
        jitter: Duration::ZERO,
    };
    Supervisor::new(Arbiter::new(spec(), Box::new(policy)).unwrap())
        .node("dc1".into(), "127.0.0.1".parse().unwrap())
        .node("dc2".into(), "127.0.0.1".parse().unwrap())
        .check("http".into(), switch.clone(), schedule)
        .check("mirror".into(), switch.clone(), schedule)
}

fn quorum(local: &str, peers: &[&str], on_partition: OnPartition) -> QuorumSpec {
    QuorumSpec {
        local: local.to_owned(),
        peers: peers.iter().map(|p| (*p).to_owned()).collect(),
        observer_timeout: Duration::from_secs(3),
        on_partition,
    }
}

fn report(node: &str, up: bool, consecutive_failures: u32) -> ObserverReport {
    ObserverReport {
        node: node.into(),
        check: "http".into(),
        outcome: if up {
            Outcome::healthy("on")
        } else {
            Outcome::failed(FailureClass::Unreachable, "refused")
        },
        consecutive_failures,
    }
}

async fn answer_after(
    status: &tokio::sync::watch::Receiver<StatusReport>,
    wait: Duration,
) -> Vec<NodeName> {
    tokio::time::sleep(wait).await;
    status.borrow().cluster.answer.clone()
}

#[tokio::test(start_paused = true)]
async fn a_node_is_declared_down_only_when_the_peer_agrees() {
    let switch = Arc::new(Switch::default());
    let (hook, peer) =
        SharedObservations::detached(quorum("dc2", &["dc1"], OnPartition::Hold), &spec().checks);
    let handle = supervisor(&switch).shared_observations(hook).spawn();
    let status = handle.status();
    peer.inject("dc1", Some(report("dc1", true, 0)));
    assert_eq!(answer_after(&status, INTERVAL).await, ["dc1".into()]);

    // Seen from here dc1 is dead, but the peer still sees it up: no failover, for a long time.
    switch.set("dc1", false);
    for _ in 0..20 {
        peer.inject("dc1", Some(report("dc1", true, 0)));
        tokio::time::sleep(INTERVAL).await;
    }
    assert_eq!(status.borrow().cluster.answer, ["dc1".into()]);
    assert_eq!(status.borrow().observers[0].observer, "dc1");
    assert!(status.borrow().observers[0].live);

    // The peer's own verdict turns to down (3 failures in a row): the answer moves at once,
    // with no further three intervals to wait.
    for failures in 1..=3 {
        peer.inject("dc1", Some(report("dc1", false, failures)));
    }
    assert_eq!(
        answer_after(&status, Duration::from_millis(10)).await,
        ["dc2".into()]
    );
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn with_fail_over_a_silent_peer_leaves_the_vote_and_this_observer_decides_alone() {
    let switch = Arc::new(Switch::default());
    let (hook, peer) = SharedObservations::detached(
        quorum("dc2", &["dc1"], OnPartition::FailOver),
        &spec().checks,
    );
    let handle = supervisor(&switch).shared_observations(hook).spawn();
    let status = handle.status();
    peer.inject("dc1", None);
    assert_eq!(answer_after(&status, INTERVAL).await, ["dc1".into()]);
    // The link is cut: dc1 is unreachable from here and the peer falls silent.
    peer.inject("dc1", None);
    switch.set("dc1", false);
    assert_eq!(
        answer_after(&status, Duration::from_millis(2800)).await,
        ["dc1".into()],
        "still within the observer timeout"
    );
    assert_eq!(
        answer_after(&status, Duration::from_millis(400)).await,
        ["dc2".into()],
        "the timeout passed: decided alone"
    );
    assert!(!status.borrow().observers[0].live);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn with_hold_a_silent_peer_changes_nothing() {
    let switch = Arc::new(Switch::default());
    let (hook, peer) =
        SharedObservations::detached(quorum("dc2", &["dc1"], OnPartition::Hold), &spec().checks);
    let handle = supervisor(&switch).shared_observations(hook).spawn();
    let status = handle.status();
    peer.inject("dc1", None);
    assert_eq!(answer_after(&status, INTERVAL).await, ["dc1".into()]);
    switch.set("dc1", false);
    assert_eq!(
        answer_after(&status, Duration::from_secs(60)).await,
        ["dc1".into()]
    );
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn local_verdicts_go_out_with_their_failures_in_a_row() {
    let switch = Arc::new(Switch::default());
    let (hook, peer) =
        SharedObservations::detached(quorum("dc2", &["dc1"], OnPartition::Hold), &spec().checks);
    let mut sent = peer.sent();
    switch.set("dc1", false);
    let handle = supervisor(&switch).shared_observations(hook).spawn();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let report = sent.recv().await.unwrap();
        if report.node == "dc1".into() && report.check == "http".into() {
            seen.push(report.consecutive_failures);
        }
    }
    assert_eq!(seen, [1, 2, 3]);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failover_says_what_the_new_node_may_be_missing() {
    // dc2's mirror is behind (a non-critical check), then dc1 dies: the failover still happens
    // and its event names what dc2 may be missing.
    let http = Arc::new(Switch::default());
    let mirror = Arc::new(Switch::default());
    let policy = ActivePassive::new(
        vec!["dc1".into(), "dc2".into()],
        Failback::Auto {
            after: Duration::from_secs(5),
        },
    );
    let schedule = ProbeSchedule {
        interval: INTERVAL,
        timeout: Duration::from_millis(200),
        jitter: Duration::ZERO,
    };
    let handle = Supervisor::new(Arbiter::new(spec(), Box::new(policy)).unwrap())
        .node("dc1".into(), "127.0.0.1".parse().unwrap())
        .node("dc2".into(), "127.0.0.1".parse().unwrap())
        .check("http".into(), http.clone(), schedule)
        .check("mirror".into(), mirror.clone(), schedule)
        .spawn();
    let status = handle.status();
    assert_eq!(answer_after(&status, INTERVAL).await, ["dc1".into()]);
    mirror.set("dc2", false);
    tokio::time::sleep(INTERVAL * 4).await;
    http.set("dc1", false);
    assert_eq!(
        answer_after(&status, INTERVAL * 4).await,
        ["dc2".into()],
        "a degraded target still takes over when the primary is really down"
    );
    let failover = status
        .borrow()
        .recent_events
        .iter()
        .find(|e| e.name() == "failover")
        .cloned()
        .unwrap();
    let EventKind::Failover { degraded, .. } = &failover.kind else {
        panic!("{failover:?}")
    };
    assert_eq!(degraded.len(), 1);
    assert_eq!(degraded[0].check, "mirror".into());
    assert_eq!(degraded[0].node, "dc2".into());
    assert!(
        failover
            .to_string()
            .ends_with("it may be missing data: mirror on dc2 is down (switched off)"),
        "{failover}"
    );
    assert!(failover
        .to_json()
        .contains("\"degraded\":[{\"node\":\"dc2\",\"check\":\"mirror\""));
    handle.shutdown().await;
}

/// An observer on loopback: its links and a supervisor reporting through them.
struct Observer {
    network: Option<ObserverNetwork>,
    handle: Option<SupervisorHandle>,
}

impl Observer {
    async fn start(
        name: &str,
        identity: &Arc<Identity>,
        listen: bool,
        peers: Vec<ObserverPeer>,
        switch: &Arc<Switch>,
    ) -> Self {
        let network = ObserverNetwork::start(ObserverLinkConfig {
            identity: identity.clone(),
            local: name.to_owned(),
            listen: listen.then(|| "127.0.0.1:0".parse().unwrap()),
            peers: peers.clone(),
            observer_timeout: Duration::from_secs(1),
        })
        .await
        .unwrap();
        let mut spec = quorum(name, &[], OnPartition::Hold);
        spec.peers = peers.iter().map(|p| p.name.clone()).collect();
        spec.observer_timeout = Duration::from_secs(1);
        let hook = network.attach(spec, &self::spec().checks);
        let handle = supervisor(switch).shared_observations(hook).spawn();
        Self {
            network: Some(network),
            handle: Some(handle),
        }
    }

    fn address(&self) -> std::net::SocketAddr {
        self.network.as_ref().unwrap().local_addr().unwrap()
    }

    fn observers(&self) -> Vec<ObserverStatus> {
        self.handle
            .as_ref()
            .unwrap()
            .status()
            .borrow()
            .observers
            .clone()
    }

    async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
        if let Some(network) = self.network.take() {
            network.shutdown().await;
        }
    }
}

/// How long the observers get to notice something over their links.
const WAIT: Wait = Wait::up_to(Duration::from_secs(10)).every(Duration::from_millis(50));

#[tokio::test]
async fn observers_exchange_verdicts_over_pinned_links_and_notice_silence() {
    let dc1_key = Arc::new(Identity::generate("dc1").unwrap());
    let dc2_key = Arc::new(Identity::generate("dc2").unwrap());
    let stranger_key = Arc::new(Identity::generate("dc1").unwrap());
    let switch = Arc::new(Switch::default());
    switch.set("dc1", false);

    // dc2 listens; dc1 dials it and reports.
    let mut dc2 = Observer::start(
        "dc2",
        &dc2_key,
        true,
        vec![ObserverPeer {
            name: "dc1".into(),
            address: None,
            fingerprint: dc1_key.fingerprint(),
        }],
        &Arc::new(Switch::default()),
    )
    .await;
    let mut dc1 = Observer::start(
        "dc1",
        &dc1_key,
        false,
        vec![ObserverPeer {
            name: "dc2".into(),
            address: Some(dc2.address()),
            fingerprint: dc2_key.fingerprint(),
        }],
        &switch,
    )
    .await;
    eventually(
        WAIT,
        "dc2 hears dc1's verdict that dc1's http is down",
        || {
            dc2.observers().first().is_some_and(|seen| {
                seen.live && seen.reports_down.contains(&"http on dc1".to_owned())
            })
        },
    )
    .await;

    // dc1 stops: after the observer timeout it is out of dc2's vote.
    dc1.stop().await;
    eventually(WAIT, "dc1 leaves the vote", || !dc2.observers()[0].live).await;

    // A stranger with another key, claiming to be dc1, is refused: dc1 stays out of the vote.
    let mut stranger = Observer::start(
        "dc1",
        &stranger_key,
        false,
        vec![ObserverPeer {
            name: "dc2".into(),
            address: Some(dc2.address()),
            fingerprint: dc2_key.fingerprint(),
        }],
        &switch,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!dc2.observers()[0].live, "an unpinned key was let in");
    stranger.stop().await;
    dc2.stop().await;
}
