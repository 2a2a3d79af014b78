//! The observation quorum: several observers' probe verdicts in, the observations the arbiter may act on out.
//!
//! Each daemon (and a witness) probes every node from where it stands. Alone, a daemon cut off
//! from the other data centre sees it as dead and fails over: split brain. The quorum sits
//! between this observer's probes and its arbiter and lets a failure through only when enough
//! observers agree:
//!
//! - every observer's latest report per node and check is kept, with when it was heard; an
//!   observer heard from within `observer_timeout` is *live* (one never heard from counts as live,
//!   with no opinion, for the first `observer_timeout` after start, so that a fresh daemon does not
//!   decide alone from ignorance);
//! - a remote observer votes "down" for a node's check when its own probes have failed `fall`
//!   times in a row (its verdict, not a single lost packet);
//! - a local failure reaches the arbiter when this observer and the remote ones voting down make
//!   a majority of all observers (2 of 2 without a witness, 2 of 3 with one); until then it is
//!   held back, and released (with the failures before it, so that the arbiter's `fall` counts
//!   them) the moment agreement arrives;
//! - when this observer is cut off from the majority (the peer is gone and there is no witness),
//!   [`OnPartition`] decides: `fail-over` decides alone, `hold` keeps every verdict as it is;
//! - a healthy local probe always goes through: the quorum only ever delays *failures*.
//!
//! Deterministic like the arbiter: no I/O, no clock; every input carries its [`Moment`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::arbiter::CheckSpec;
use crate::model::{CheckName, Moment, NodeName, Observation, Outcome};

/// What an observer cut off from the majority of observers does with its own failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnPartition {
    /// Decide alone, as a lone daemon (and the cron scripts) would: availability first. With two
    /// data centres cut apart, each serves itself.
    FailOver,
    /// Keep every verdict as it is (no node is declared down): consistency first.
    Hold,
}

impl fmt::Display for OnPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnPartition::FailOver => "fail-over",
            OnPartition::Hold => "hold",
        })
    }
}

/// Who observes, and how patiently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumSpec {
    /// This observer's name (its node name, or the witness's).
    pub local: String,
    /// The other observers (daemons and witnesses).
    pub peers: Vec<String>,
    /// An observer not heard from for this long is out of the vote.
    pub observer_timeout: Duration,
    /// What to do when cut off from the majority.
    pub on_partition: OnPartition,
}

impl QuorumSpec {
    /// How many observers make a majority: 2 of 2, 2 of 3, 3 of 4.
    pub fn majority(&self) -> usize {
        let observers = self.peers.len() + 1;
        observers / 2 + 1
    }
}

/// One probe verdict as observers exchange it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObserverReport {
    /// The node probed.
    pub node: NodeName,
    /// The check.
    pub check: CheckName,
    /// What the latest probe found.
    pub outcome: Outcome,
    /// The observer's failures in a row for this node and check (0 after a success).
    pub consecutive_failures: u32,
}

/// How one observer is doing, for status output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObserverStatus {
    /// The observer.
    pub observer: String,
    /// Whether it is in the vote.
    pub live: bool,
    /// How long ago it was last heard from (`None`: never).
    #[serde(with = "humantime_serde")]
    pub last_heard: Option<Duration>,
    /// Node checks it reports down (`http on dc1`).
    pub reports_down: Vec<String>,
}

/// A change in who is in the vote, to be logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipChange {
    /// The observer.
    pub observer: String,
    /// In the vote now (`true`) or out of it.
    pub live: bool,
}

/// One input a quorum took, as [`Quorum::take_inputs`] gives them to a journal: with the
/// quorum's spec and these, a replay gets the same observations out (see the journal of the root
/// crate's daemon).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuorumInput {
    /// One of this observer's probe results ([`Quorum::local`]).
    Local(Observation),
    /// A peer's verdict ([`Quorum::remote`]).
    Remote {
        /// The peer observer.
        observer: String,
        /// Its verdict.
        report: ObserverReport,
        /// When it was heard (wall clock).
        at: SystemTime,
    },
    /// A peer's heartbeat ([`Quorum::heard`]).
    Heard {
        /// The peer observer.
        observer: String,
        /// When (wall clock).
        at: SystemTime,
    },
}

type Pair = (NodeName, CheckName);

#[derive(Debug)]
struct Remote {
    name: String,
    last_heard: Option<Instant>,
    latest: HashMap<Pair, ObserverReport>,
    was_live: bool,
}

/// Local failures held back until the observers agree.
#[derive(Debug)]
struct Held {
    latest: Observation,
    count: u32,
}

/// Most held failures released at once (more than any sensible `fall`).
const MAX_HELD: u32 = 64;

/// The observation quorum: a node's check counts as down when a majority of the observers
/// (this one, the other daemons, a witness) see it down; see [`QuorumSpec`].
#[derive(Debug)]
pub struct Quorum {
    spec: QuorumSpec,
    falls: HashMap<CheckName, u32>,
    started: Instant,
    remotes: Vec<Remote>,
    local_failures: HashMap<Pair, u32>,
    held: BTreeMap<Pair, Held>,
    /// The inputs taken since the last [`Quorum::take_inputs`], when recording.
    recorded: Option<Vec<QuorumInput>>,
}

/// What one local probe result gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalResult {
    /// Observations for the arbiter, in order (none while a failure is held back).
    pub observations: Vec<Observation>,
    /// The verdict to send to the other observers.
    pub report: ObserverReport,
}

/// Most (node, check) pairs kept per remote observer.
const MAX_REMOTE_PAIRS: usize = 4096;

impl Quorum {
    /// A quorum for `spec` whose checks (and their `fall`) are `checks`, started at `now`.
    pub fn new(spec: QuorumSpec, checks: &[CheckSpec], now: Moment) -> Self {
        let remotes = spec
            .peers
            .iter()
            .map(|name| Remote {
                name: name.clone(),
                last_heard: None,
                latest: HashMap::new(),
                was_live: true,
            })
            .collect();
        Self {
            falls: checks.iter().map(|c| (c.name.clone(), c.fall)).collect(),
            spec,
            started: now.mono,
            remotes,
            local_failures: HashMap::new(),
            held: BTreeMap::new(),
            recorded: None,
        }
    }

    /// From now on, keeps every input taken (local results, peers' verdicts and heartbeats) for
    /// [`Quorum::take_inputs`].
    pub fn record_inputs(&mut self) {
        self.recorded.get_or_insert_with(Vec::new);
    }

    /// The inputs taken since the last call, in order (none unless
    /// [`record_inputs`](Quorum::record_inputs) was called).
    pub fn take_inputs(&mut self) -> Vec<QuorumInput> {
        self.recorded
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn record(&mut self, input: impl FnOnce() -> QuorumInput) {
        if let Some(recorded) = &mut self.recorded {
            recorded.push(input());
        }
    }

    /// The spec.
    pub fn spec(&self) -> &QuorumSpec {
        &self.spec
    }

    /// Takes in one of this observer's own probe results.
    pub fn local(&mut self, observation: Observation) -> LocalResult {
        self.record(|| QuorumInput::Local(observation.clone()));
        let pair = (observation.node.clone(), observation.check.clone());
        let failures = self.local_failures.entry(pair.clone()).or_insert(0);
        *failures = if observation.outcome.is_healthy() {
            0
        } else {
            failures.saturating_add(1)
        };
        let report = ObserverReport {
            node: observation.node.clone(),
            check: observation.check.clone(),
            outcome: observation.outcome.clone(),
            consecutive_failures: *failures,
        };
        let now = observation.at;
        let observations = if observation.outcome.is_healthy() {
            self.held.remove(&pair);
            vec![observation]
        } else if self.agreed(&pair, now.mono) {
            let mut out = self.release(&pair, now);
            out.push(observation);
            out
        } else {
            let held = self.held.entry(pair).or_insert(Held {
                latest: observation.clone(),
                count: 0,
            });
            held.latest = observation;
            held.count = (held.count + 1).min(MAX_HELD);
            Vec::new()
        };
        LocalResult {
            observations,
            report,
        }
    }

    /// Takes in a report from observer `from`, heard at `now`; returns the held failures it
    /// releases. Reports from unknown observers are ignored.
    pub fn remote(&mut self, from: &str, report: ObserverReport, now: Moment) -> Vec<Observation> {
        if !self.remotes.iter().any(|r| r.name == from) {
            return Vec::new();
        }
        self.record(|| QuorumInput::Remote {
            observer: from.to_owned(),
            report: report.clone(),
            at: now.wall,
        });
        let Some(remote) = self.remotes.iter_mut().find(|r| r.name == from) else {
            return Vec::new();
        };
        remote.last_heard = Some(now.mono);
        // A peer's report is kept only for a check of ours, and only so many pairs are kept:
        // a peer (even a pinned one) cannot grow this observer's memory without bound.
        let key = (report.node.clone(), report.check.clone());
        let known_check = self.falls.contains_key(&report.check);
        if known_check
            && (remote.latest.contains_key(&key) || remote.latest.len() < MAX_REMOTE_PAIRS)
        {
            remote.latest.insert(key, report);
        }
        self.release_agreed(now)
    }

    /// Observer `from` is alive (a heartbeat); returns the held failures this releases.
    pub fn heard(&mut self, from: &str, now: Moment) -> Vec<Observation> {
        if let Some(remote) = self.remotes.iter_mut().find(|r| r.name == from) {
            remote.last_heard = Some(now.mono);
            self.record(|| QuorumInput::Heard {
                observer: from.to_owned(),
                at: now.wall,
            });
        }
        self.release_agreed(now)
    }

    /// Lets time pass: observers whose reports stopped leave the vote, which may release held
    /// failures (`on_partition = "fail-over"`).
    pub fn tick(&mut self, now: Moment) -> Vec<Observation> {
        self.release_agreed(now)
    }

    /// When [`tick`](Quorum::tick) next may have something to do: the moment the next live
    /// observer would time out, while failures are held.
    pub fn next_deadline(&self, now: Moment) -> Option<Instant> {
        if self.held.is_empty() {
            return None;
        }
        self.remotes
            .iter()
            .filter(|r| self.is_live(r, now.mono))
            .map(|r| r.last_heard.unwrap_or(self.started) + self.spec.observer_timeout)
            .min()
    }

    /// Who joined or left the vote since the last call.
    pub fn membership_changes(&mut self, now: Moment) -> Vec<MembershipChange> {
        let mut changes = Vec::new();
        for index in 0..self.remotes.len() {
            let live = self.is_live(&self.remotes[index], now.mono);
            let remote = &mut self.remotes[index];
            if live != remote.was_live {
                remote.was_live = live;
                changes.push(MembershipChange {
                    observer: remote.name.clone(),
                    live,
                });
            }
        }
        changes
    }

    /// Every remote observer, for status output.
    pub fn status(&self, now: Moment) -> Vec<ObserverStatus> {
        self.remotes
            .iter()
            .map(|r| {
                let mut reports_down: Vec<String> = r
                    .latest
                    .values()
                    .filter(|report| self.votes_down(report))
                    .map(|report| format!("{} on {}", report.check, report.node))
                    .collect();
                reports_down.sort();
                ObserverStatus {
                    observer: r.name.clone(),
                    live: self.is_live(r, now.mono),
                    last_heard: r
                        .last_heard
                        .map(|at| now.mono.saturating_duration_since(at)),
                    reports_down,
                }
            })
            .collect()
    }

    fn is_live(&self, remote: &Remote, now: Instant) -> bool {
        let since = remote.last_heard.unwrap_or(self.started);
        now.saturating_duration_since(since) < self.spec.observer_timeout
    }

    fn votes_down(&self, report: &ObserverReport) -> bool {
        let fall = self.falls.get(&report.check).copied().unwrap_or(1);
        !report.outcome.is_healthy() && report.consecutive_failures >= fall
    }

    /// Whether a local failure of `pair` may go to the arbiter now.
    fn agreed(&self, pair: &Pair, now: Instant) -> bool {
        let majority = self.spec.majority();
        let mut live = 1;
        let mut down = 1;
        for remote in &self.remotes {
            if !self.is_live(remote, now) {
                continue;
            }
            live += 1;
            if remote.latest.get(pair).is_some_and(|r| self.votes_down(r)) {
                down += 1;
            }
        }
        if down >= majority {
            return true;
        }
        live < majority && self.spec.on_partition == OnPartition::FailOver
    }

    fn release(&mut self, pair: &Pair, now: Moment) -> Vec<Observation> {
        let Some(held) = self.held.remove(pair) else {
            return Vec::new();
        };
        // The arbiter counts failures in a row: it gets every one that was held back.
        (0..held.count)
            .map(|_| Observation {
                at: now,
                ..held.latest.clone()
            })
            .collect()
    }

    fn release_agreed(&mut self, now: Moment) -> Vec<Observation> {
        let ready: Vec<Pair> = self
            .held
            .keys()
            .filter(|pair| self.agreed(pair, now.mono))
            .cloned()
            .collect();
        ready
            .iter()
            .flat_map(|pair| self.release(pair, now))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use crate::model::FailureClass;

    const INTERVAL: Duration = Duration::from_secs(2);
    const TIMEOUT: Duration = Duration::from_secs(10);

    fn spec(peers: &[&str], on_partition: OnPartition) -> QuorumSpec {
        QuorumSpec {
            local: "dc1".to_owned(),
            peers: peers.iter().map(|p| (*p).to_owned()).collect(),
            observer_timeout: TIMEOUT,
            on_partition,
        }
    }

    fn outcome(ok: bool) -> Outcome {
        if ok {
            Outcome::healthy("HTTP 200")
        } else {
            Outcome::failed(FailureClass::Timeout, "no answer within 1s")
        }
    }

    /// A quorum on a clock that only moves when the test says so.
    struct Script {
        quorum: Quorum,
        now: Moment,
        /// Failures in a row each remote observer has seen of dc2/http.
        remote_failures: HashMap<String, u32>,
        to_arbiter: Vec<Observation>,
    }

    impl Script {
        fn new(peers: &[&str], on_partition: OnPartition) -> Self {
            let now = Moment::now();
            Self {
                quorum: Quorum::new(
                    spec(peers, on_partition),
                    &[CheckSpec::new("http", true)],
                    now,
                ),
                now,
                remote_failures: HashMap::new(),
                to_arbiter: Vec::new(),
            }
        }

        /// This observer probes dc2's http.
        fn local(&mut self, ok: bool) -> usize {
            let result = self.quorum.local(Observation {
                node: "dc2".into(),
                check: "http".into(),
                outcome: outcome(ok),
                at: self.now,
            });
            let n = result.observations.len();
            self.to_arbiter.extend(result.observations);
            n
        }

        /// Observer `from` reports its probe of dc2's http.
        fn remote(&mut self, from: &str, ok: bool) -> usize {
            let failures = self.remote_failures.entry(from.to_owned()).or_insert(0);
            *failures = if ok { 0 } else { *failures + 1 };
            let report = ObserverReport {
                node: "dc2".into(),
                check: "http".into(),
                outcome: outcome(ok),
                consecutive_failures: *failures,
            };
            let released = self.quorum.remote(from, report, self.now);
            let n = released.len();
            self.to_arbiter.extend(released);
            n
        }

        fn advance(&mut self, by: Duration) {
            self.now = self.now + by;
            let released = self.quorum.tick(self.now);
            self.to_arbiter.extend(released);
        }

        fn failures_passed(&self) -> usize {
            self.to_arbiter
                .iter()
                .filter(|o| !o.outcome.is_healthy())
                .count()
        }
    }

    #[test]
    fn majorities() {
        assert_eq!(spec(&["dc2"], OnPartition::Hold).majority(), 2);
        assert_eq!(spec(&["dc2", "witness"], OnPartition::Hold).majority(), 2);
        assert_eq!(spec(&["a", "b", "c"], OnPartition::Hold).majority(), 3);
    }

    #[test]
    fn healthy_probes_always_go_through() {
        let mut s = Script::new(&["dc3"], OnPartition::Hold);
        assert_eq!(s.local(true), 1);
        s.advance(Duration::from_secs(60));
        assert_eq!(s.local(true), 1);
    }

    #[test]
    fn a_failure_waits_for_the_peer_to_agree_and_then_every_held_failure_is_released() {
        let mut s = Script::new(&["dc3"], OnPartition::FailOver);
        s.remote("dc3", true);
        // Three local failures while the peer still sees the node up: none passes.
        for round in 0..3 {
            assert_eq!(s.local(false), 0);
            if round < 2 {
                s.remote("dc3", false);
            }
            s.advance(INTERVAL);
        }
        assert_eq!(s.failures_passed(), 0);
        // The peer's third failure in a row is its verdict: down. All three go to the arbiter
        // at once, so that its `fall` is reached without waiting another three intervals.
        assert_eq!(s.remote("dc3", false), 3);
        // From now on each local failure passes at once.
        assert_eq!(s.local(false), 1);
        assert_eq!(s.failures_passed(), 4);
    }

    #[test]
    fn a_peer_that_sees_the_node_up_keeps_it_up() {
        let mut s = Script::new(&["dc3"], OnPartition::FailOver);
        for _ in 0..20 {
            s.remote("dc3", true);
            s.local(false);
            s.advance(INTERVAL);
        }
        assert_eq!(s.failures_passed(), 0);
        // A success clears what was held: nothing stale is released later.
        s.local(true);
        for _ in 0..3 {
            s.remote("dc3", false);
        }
        assert_eq!(s.failures_passed(), 0);
    }

    #[test]
    fn one_lost_probe_of_the_peer_is_not_a_vote() {
        let mut s = Script::new(&["dc3"], OnPartition::FailOver);
        for _ in 0..5 {
            s.remote("dc3", false);
            s.remote("dc3", true);
            s.local(false);
            s.advance(INTERVAL);
        }
        assert_eq!(s.failures_passed(), 0);
    }

    #[test]
    fn a_peer_gone_with_fail_over_decides_alone_once_its_timeout_passes() {
        let mut s = Script::new(&["dc2"], OnPartition::FailOver);
        s.remote("dc2", true);
        // The link is cut: nothing more from the peer.
        let mut passed_at = None;
        for round in 0..10 {
            s.local(false);
            s.advance(INTERVAL);
            if passed_at.is_none() && s.failures_passed() > 0 {
                passed_at = Some(round);
            }
        }
        // The peer's last word was 0 s in; it is out of the vote 10 s later (the fifth interval),
        // and the held failures go through on the tick, not one probe later.
        assert_eq!(passed_at, Some(4));
        assert_eq!(s.failures_passed(), 10);
        assert_eq!(
            s.quorum.membership_changes(s.now),
            [MembershipChange {
                observer: "dc2".into(),
                live: false
            }]
        );
    }

    #[test]
    fn a_peer_gone_with_hold_changes_nothing() {
        let mut s = Script::new(&["dc2"], OnPartition::Hold);
        s.remote("dc2", true);
        for _ in 0..60 {
            s.local(false);
            s.advance(INTERVAL);
        }
        assert_eq!(s.failures_passed(), 0);
        assert_eq!(
            s.quorum.next_deadline(s.now),
            None,
            "nobody live to wait for"
        );
    }

    #[test]
    fn with_a_witness_two_of_three_decide() {
        let mut s = Script::new(&["dc2", "witness"], OnPartition::FailOver);
        s.remote("witness", true);
        // dc2 is cut off (its node seen down from here), the witness still sees it: no change,
        // even after dc2 leaves the vote, and even with on_partition = fail-over (dc1 and the
        // witness are a majority, so this is no partition for dc1).
        for _ in 0..30 {
            s.local(false);
            s.remote("witness", true);
            s.advance(INTERVAL);
        }
        assert_eq!(s.failures_passed(), 0);
        // Now the witness sees it down too: 2 of 3.
        for _ in 0..3 {
            s.local(false);
            s.remote("witness", false);
            s.advance(INTERVAL);
        }
        assert!(s.failures_passed() >= 3, "{}", s.failures_passed());
    }

    #[test]
    fn a_node_cut_from_everyone_cannot_declare_anything_down_with_a_witness() {
        let mut s = Script::new(&["dc2", "witness"], OnPartition::Hold);
        for _ in 0..60 {
            s.local(false);
            s.advance(INTERVAL);
        }
        assert_eq!(s.failures_passed(), 0);
    }

    #[test]
    fn a_fresh_observer_does_not_decide_from_ignorance() {
        // Nobody heard from yet: for observer_timeout after start the peer counts as live
        // with no opinion, so a failure is held even with fail-over.
        let mut s = Script::new(&["dc2"], OnPartition::FailOver);
        assert_eq!(s.local(false), 0);
        s.advance(Duration::from_secs(5));
        assert_eq!(s.local(false), 0);
        // Its first report, agreeing, arrives: released.
        s.remote("dc2", false);
        s.remote("dc2", false);
        assert_eq!(s.remote("dc2", false), 2);
    }

    #[test]
    fn reports_carry_the_local_failures_in_a_row() {
        let mut s = Script::new(&["dc2"], OnPartition::Hold);
        let mut report = |ok| {
            s.quorum
                .local(Observation {
                    node: "dc2".into(),
                    check: "http".into(),
                    outcome: outcome(ok),
                    at: s.now,
                })
                .report
                .consecutive_failures
        };
        assert_eq!(
            [report(false), report(false), report(true), report(false)],
            [1, 2, 0, 1]
        );
    }

    #[test]
    fn status_shows_who_is_live_and_what_they_see_down() {
        let mut s = Script::new(&["dc2", "witness"], OnPartition::Hold);
        for _ in 0..3 {
            s.remote("dc2", false);
        }
        s.advance(Duration::from_secs(11));
        s.remote("dc2", false);
        let status = s.quorum.status(s.now);
        assert_eq!(status[0].observer, "dc2");
        assert!(status[0].live);
        assert_eq!(status[0].reports_down, ["http on dc2"]);
        assert!(!status[1].live);
        assert_eq!(status[1].last_heard, None);
    }

    #[test]
    fn the_same_inputs_give_the_same_outputs() {
        let run = || {
            let mut s = Script::new(&["dc2", "witness"], OnPartition::FailOver);
            for i in 0..40 {
                s.local(i % 3 != 0);
                s.remote("witness", i % 4 == 0);
                if i < 10 {
                    s.remote("dc2", i % 2 == 0);
                }
                s.advance(INTERVAL);
            }
            s.to_arbiter
                .iter()
                .map(|o| (o.outcome.is_healthy(), s.now.since(o.at)))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn recorded_inputs_fed_to_a_fresh_quorum_give_the_same_releases() {
        let mut s = Script::new(&["dc2"], OnPartition::FailOver);
        let started = s.now;
        s.quorum.record_inputs();
        s.remote("dc2", true);
        for i in 0..12 {
            s.local(i < 2);
            if i < 4 {
                s.remote("dc2", false);
                s.quorum.heard("dc2", s.now);
            }
            s.advance(INTERVAL);
        }
        let inputs = s.quorum.take_inputs();
        assert!(s.quorum.take_inputs().is_empty(), "taken once");
        assert_eq!(
            inputs
                .iter()
                .filter(|i| matches!(i, QuorumInput::Local(_)))
                .count(),
            12
        );
        assert!(matches!(&inputs[0], QuorumInput::Remote { observer, .. } if observer == "dc2"));
        // The replay: the same inputs at the same moments, with the ticks in between.
        let mut again = Quorum::new(
            spec(&["dc2"], OnPartition::FailOver),
            &[CheckSpec::new("http", true)],
            started,
        );
        let mut released = Vec::new();
        let mut now = started;
        for input in inputs {
            let at = match &input {
                QuorumInput::Local(observation) => observation.at,
                QuorumInput::Remote { at, .. } | QuorumInput::Heard { at, .. } => {
                    started + at.duration_since(started.wall).unwrap()
                }
            };
            while (now + INTERVAL).mono <= at.mono {
                now = now + INTERVAL;
                released.extend(again.tick(now));
            }
            released.extend(match input {
                QuorumInput::Local(observation) => again.local(observation).observations,
                QuorumInput::Remote {
                    observer, report, ..
                } => again.remote(&observer, report, at),
                QuorumInput::Heard { observer, .. } => again.heard(&observer, at),
            });
        }
        released.extend(again.tick(s.now));
        assert!(s.failures_passed() > 0);
        assert_eq!(released, s.to_arbiter);
    }
}
