//! `failoverd replay`: the journal's inputs fed through an arbiter built from a config (the same
//! one, or another), and what that arbiter does beside what the daemon did.
//!
//! The arbiter is deterministic, so with the same config a replay gives the recorded answer
//! changes and events; with another `fall`, policy or damping it shows what those would have
//! done. Timers are the replay's own: its arbiter is ticked at its own deadlines. A start or a
//! reload in the journal hands the replay's arbiter state to a new arbiter, as the daemon does.
//! With shared observations (`[cluster]`), the journal holds this observer's own probes and the
//! peers' verdicts and heartbeats before the quorum: they go through a quorum built from the
//! config given (its `on_partition`, `observer_timeout`, witness), or straight to the arbiter when
//! that config decides alone. Not replayed: events reported from outside the arbiter (the
//! mirror's), publish failures.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use failover_core::{
    Action, Arbiter, ArbiterState, CheckName, Moment, NodeName, Observation, ObserverReport,
    Outcome, Override, Quorum,
};
use serde::Serialize;

use super::codec::{decode_all, Record};
use super::writer::{segments, CLASSES};
use crate::config::{Config, NotifierKind};
use crate::parts::cluster::{cluster_spec, named_policies, policy, quorum_spec};

/// The part of the journal to replay.
#[derive(Clone, Copy, Debug, Default)]
pub struct Window {
    /// Answers and events before this are not shown (the inputs before it still count).
    pub from: Option<SystemTime>,
    /// Nothing after this is read.
    pub to: Option<SystemTime>,
}

/// One change of the published answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// When.
    #[serde(with = "humantime_serde")]
    pub at: SystemTime,
    /// Each managed name with its addresses.
    pub answers: Vec<(String, Vec<String>)>,
}

/// One event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventLine {
    /// When.
    #[serde(with = "humantime_serde")]
    pub at: SystemTime,
    /// Its kind (`failover`, `check-down`, ...).
    pub name: String,
    /// What it is about.
    pub subject: String,
    /// Its text.
    pub text: String,
}

/// What a run did (recorded) or would have done (replayed).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timeline {
    /// Each change of the answer.
    pub changes: Vec<Change>,
    /// Each event.
    pub events: Vec<EventLine>,
    /// Notifications per notifier of the replayed config (`log`, `email to ...`).
    pub notifications: Vec<(String, usize)>,
    /// Time spent on each answer (its first name's addresses), in seconds.
    pub time_on: Vec<(String, u64)>,
}

impl Timeline {
    /// How many events of kind `name`.
    pub fn count(&self, name: &str) -> usize {
        self.events.iter().filter(|e| e.name == name).count()
    }

    /// Whether the answer changes and the events (kind and subject, in order) are the same as
    /// `other`'s.
    pub fn same_as(&self, other: &Timeline) -> bool {
        let answers = |t: &Timeline| {
            t.changes
                .iter()
                .map(|c| c.answers.clone())
                .collect::<Vec<_>>()
        };
        let events = |t: &Timeline| {
            t.events
                .iter()
                .map(|e| (e.name.clone(), e.subject.clone()))
                .collect::<Vec<_>>()
        };
        answers(self) == answers(other) && events(self) == events(other)
    }
}

/// A replay and the run it replays.
#[derive(Clone, Debug, Serialize)]
pub struct Replay {
    /// From the journal's first record shown to its last.
    #[serde(with = "humantime_serde")]
    pub begin: Option<SystemTime>,
    /// Its last record.
    #[serde(with = "humantime_serde")]
    pub end: Option<SystemTime>,
    /// Probe results fed.
    pub probes: u64,
    /// Starts and reloads in the journal.
    pub starts: usize,
    /// What the config given would have done.
    pub replayed: Timeline,
    /// What the daemon did.
    pub recorded: Timeline,
    /// Whether both are the same.
    pub same: bool,
    /// What was skipped (torn records, states that could not be restored).
    pub warnings: Vec<String>,
}

/// The state of a replay while it reads the journal.
struct Run<'a> {
    config: &'a Config,
    /// The config file's digest: a start recorded with the same config restores the state the
    /// daemon restored (which a kill may have left a little behind); with another config, the
    /// replay's own state goes on.
    digest: String,
    window: Window,
    arbiter: Option<Arbiter>,
    /// The quorum of shared observations, when the journal has the peers' words and the config
    /// shares observations.
    quorum: Option<Quorum>,
    base: Option<(Instant, SystemTime)>,
    /// The replay's clock: the last input or deadline taken.
    last: Option<Moment>,
    replay: Replay,
}

/// Replays the journal in `dir` through an arbiter built from `config`.
pub fn replay(config: &Config, dir: &Path, window: Window) -> Result<Replay, String> {
    let found = segments(dir).map_err(|e| format!("cannot read the journal in {}: {e} (the daemon keeps it in [zone] state_dir/journal; --journal DIR reads another)", dir.display()))?;
    if found.is_empty() {
        return Err(format!(
            "no journal in {} (the daemon writes one while it runs, unless [journal] enabled = false)",
            dir.display()
        ));
    }
    let mut run = Run {
        config,
        digest: super::config_digest(&config.path),
        window,
        arbiter: None,
        quorum: None,
        base: None,
        last: None,
        replay: Replay {
            begin: None,
            end: None,
            probes: 0,
            starts: 0,
            replayed: Timeline::default(),
            recorded: Timeline::default(),
            same: false,
            warnings: Vec::new(),
        },
    };
    'segments: for (_, path) in &found {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (records, torn) = decode_all(&bytes);
        if let Some(torn) = torn {
            run.replay.warnings.push(format!(
                "{}: the records from byte {} on are skipped ({}; a kill can tear the last one)",
                path.display(),
                torn.offset,
                torn.reason
            ));
        }
        let mut segment = SegmentState::default();
        for record in records {
            if let Some(dt) = record.dt() {
                segment.clock += u64::from(dt);
            }
            let at = UNIX_EPOCH + Duration::from_millis(segment.clock);
            if run.window.to.is_some_and(|to| at > to) {
                break 'segments;
            }
            if run.apply(record, at, &mut segment, path)? {
                run.replay.begin.get_or_insert(at);
                run.replay.end = Some(at);
            }
        }
    }
    if let Some(end) = run.replay.end {
        run.tick_until(end);
    }
    Ok(run.finish())
}

/// What the records of one segment refer back to.
#[derive(Default)]
struct SegmentState {
    /// Milliseconds since the epoch at the last record.
    clock: u64,
    pairs: Vec<(NodeName, CheckName)>,
    details: Vec<String>,
    /// The observer the daemon was, when it shared observations (its `Probe` records are then
    /// the quorum's output, which the replay makes itself).
    observer: Option<String>,
    peers: Vec<String>,
}

impl Run<'_> {
    /// Takes one record at `at`; whether it counts for the journal's span.
    fn apply(
        &mut self,
        record: Record,
        at: SystemTime,
        segment: &mut SegmentState,
        path: &Path,
    ) -> Result<bool, String> {
        match record {
            Record::Start {
                wall_ms,
                reason,
                restored,
                config: digest,
            } => {
                segment.clock = wall_ms;
                segment.pairs.clear();
                segment.details.clear();
                segment.observer = None;
                segment.peers.clear();
                if reason != "rotate" {
                    self.quorum = None;
                }
                let restored = restored.filter(|_| digest == self.digest);
                let at = UNIX_EPOCH + Duration::from_millis(wall_ms);
                self.start(&reason, restored, at)?;
                return Ok(false);
            }
            Record::Pair { node, check } => {
                segment
                    .pairs
                    .push((NodeName::new(&node), CheckName::new(&check)));
                segment.details.push(String::new());
            }
            Record::Probe {
                pair,
                class,
                detail,
                ..
            } => {
                if segment.observer.is_some() {
                    // What the daemon's quorum released: the replay's own quorum decides.
                    return Ok(true);
                }
                self.warn_without_peers();
                return Ok(self.probe(pair, class, detail, at, segment, path));
            }
            Record::Observer { .. }
            | Record::Peer { .. }
            | Record::Remote { .. }
            | Record::Heard { .. } => return Ok(self.shared(record, at, segment, path)),
            Record::Local {
                pair,
                class,
                detail,
                ..
            } => return Ok(self.probe(pair, class, detail, at, segment, path)),
            Record::Override { what, set, .. } => {
                let Ok(what) = serde_json::from_str::<Override>(&what) else {
                    self.replay
                        .warnings
                        .push(format!("an unreadable override skipped: {what}"));
                    return Ok(false);
                };
                self.input(at, |arbiter, now| {
                    arbiter.apply_override(what, set, now).unwrap_or_default()
                });
            }
            Record::Failback { .. } => {
                self.input(at, |arbiter, now| arbiter.request_failback(now));
            }
            Record::Published { answers, .. } => {
                if self.shown(at) {
                    self.replay.recorded.changes.push(Change { at, answers });
                }
            }
            Record::Event {
                name,
                subject,
                text,
                ..
            } => {
                if self.shown(at) {
                    self.replay.recorded.events.push(EventLine {
                        at,
                        name,
                        subject,
                        text,
                    });
                }
            }
        }
        Ok(true)
    }
    /// A record of shared observations (the observer, a peer, a peer's verdict or heartbeat);
    /// whether it counts for the journal's span.
    fn shared(
        &mut self,
        record: Record,
        at: SystemTime,
        segment: &mut SegmentState,
        path: &Path,
    ) -> bool {
        match record {
            Record::Observer { name } => {
                segment.observer = Some(name.clone());
                if self.quorum.is_none() {
                    self.start_quorum(name, at);
                }
                return false;
            }
            Record::Peer { name } => segment.peers.push(name),
            Record::Remote {
                peer,
                pair,
                class,
                failures,
                ..
            } => {
                let (Some(observer), Some((node, check))) = (
                    segment.peers.get(peer as usize).cloned(),
                    segment.pairs.get(pair as usize).cloned(),
                ) else {
                    self.replay.warnings.push(format!(
                        "{}: a verdict of an unknown peer {peer} or pair {pair} skipped",
                        path.display()
                    ));
                    return false;
                };
                let report = ObserverReport {
                    node,
                    check,
                    outcome: outcome(class, String::new()),
                    consecutive_failures: failures,
                };
                self.quorum_input(at, |quorum, now| quorum.remote(&observer, report, now));
            }
            Record::Heard { peer, .. } => {
                if let Some(observer) = segment.peers.get(peer as usize).cloned() {
                    self.quorum_input(at, |quorum, now| quorum.heard(&observer, now));
                }
            }
            _ => return false,
        }
        true
    }

    /// The replay's clock at wall time `at`: monotonic time advances with the journal's.
    fn moment(&mut self, at: SystemTime) -> Moment {
        let (mono, wall) = *self.base.get_or_insert((Instant::now(), at));
        let offset = at.duration_since(wall).unwrap_or_default();
        Moment {
            mono: mono + offset,
            wall: at,
        }
    }

    fn shown(&self, at: SystemTime) -> bool {
        self.window.from.is_none_or(|from| at >= from)
    }

    /// A start or a reload: a new arbiter from the config, starting from the replay's own state
    /// (or, at the first start, the state the daemon restored).
    fn start(
        &mut self,
        reason: &str,
        restored: Option<String>,
        at: SystemTime,
    ) -> Result<(), String> {
        if reason == "rotate" && self.arbiter.is_some() {
            return Ok(());
        }
        self.replay.starts += 1;
        let now = self.moment(at);
        self.tick_until(at);
        let recorded: Option<ArbiterState> =
            restored.and_then(|json| serde_json::from_str(&json).ok());
        let state = match (&self.arbiter, recorded) {
            (_, Some(recorded)) => Some(recorded),
            (Some(arbiter), None) => Some(arbiter.snapshot(now)),
            (None, None) => None,
        };
        let mut fresh = Arbiter::with_policies(
            cluster_spec(self.config),
            policy(self.config).map_err(|e| e.to_string())?,
            named_policies(self.config).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("{}: {e}", self.config.path.display()))?;
        if let Some(state) = state {
            if let Err(e) = fresh.restore(&state, now) {
                self.replay.warnings.push(format!(
                    "at {}: the state before this {reason} not carried over ({e}): the arbiter starts fresh, as the daemon would",
                    humantime::format_rfc3339_seconds(at)
                ));
            }
        }
        self.arbiter = Some(fresh);
        Ok(())
    }

    /// One probe result, through the arbiter; whether it was taken.
    fn probe(
        &mut self,
        pair: u32,
        class: u8,
        detail: Option<String>,
        at: SystemTime,
        segment: &mut SegmentState,
        path: &Path,
    ) -> bool {
        let index = pair as usize;
        let (Some((node, check)), Some(last)) =
            (segment.pairs.get(index), segment.details.get_mut(index))
        else {
            self.replay.warnings.push(format!(
                "{}: a probe of an unknown pair {pair} skipped",
                path.display()
            ));
            return false;
        };
        if let Some(detail) = detail {
            *last = detail;
        }
        let observation = Observation {
            node: node.clone(),
            check: check.clone(),
            outcome: outcome(class, last.clone()),
            at: self.moment(at),
        };
        self.replay.probes += 1;
        match &self.quorum {
            Some(_) => self.quorum_input(at, |quorum, _| quorum.local(observation).observations),
            None => self.input(at, |arbiter, _| arbiter.observe(observation)),
        }
        true
    }

    /// The quorum of the config given, for the journal's observer `name` (none when that config
    /// decides alone: the observer's own probes then go straight to the arbiter).
    fn start_quorum(&mut self, name: String, at: SystemTime) {
        let spec = quorum_spec(&self.config.clone().select(Some(name)));
        let now = self.moment(at);
        self.quorum = spec.map(|spec| Quorum::new(spec, &cluster_spec(self.config).checks, now));
    }

    fn warn_without_peers(&mut self) {
        const WARNING: &str = "the journal was recorded without shared observations: it has no peers' words, so the [cluster] of this config is not replayed (each probe goes straight to the arbiter)";
        if quorum_spec(self.config).is_some() && !self.replay.warnings.iter().any(|w| w == WARNING)
        {
            self.replay.warnings.push(WARNING.to_owned());
        }
    }

    /// One input of the quorum at `at` (after the timers due before it); what it releases goes
    /// to the arbiter.
    fn quorum_input(
        &mut self,
        at: SystemTime,
        take: impl FnOnce(&mut Quorum, Moment) -> Vec<Observation>,
    ) {
        self.tick_until(at);
        let now = self.moment(at);
        self.last = Some(now);
        let Some(quorum) = &mut self.quorum else {
            return;
        };
        let released = take(quorum, now);
        let Some(arbiter) = &mut self.arbiter else {
            return;
        };
        let actions: Vec<Action> = released
            .into_iter()
            .flat_map(|observation| arbiter.observe(observation))
            .collect();
        self.collect(actions, at);
    }

    /// Ticks the arbiter at each of its deadlines up to `at`.
    fn tick_until(&mut self, at: SystemTime) {
        let limit = self.moment(at).mono;
        let Some((base_mono, base_wall)) = self.base else {
            return;
        };
        // Bounded: an arbiter whose deadline does not move on is not ticked forever.
        for _ in 0..100_000 {
            let Some(arbiter) = &mut self.arbiter else {
                return;
            };
            let clock = self.last.unwrap_or(Moment {
                mono: limit,
                wall: at,
            });
            let quorum_due = self.quorum.as_ref().and_then(|q| q.next_deadline(clock));
            let arbiter_due = arbiter.next_deadline();
            let Some(deadline) = [arbiter_due, quorum_due]
                .into_iter()
                .flatten()
                .min()
                .filter(|d| *d <= limit)
            else {
                return;
            };
            let now = Moment {
                mono: deadline,
                wall: base_wall + deadline.saturating_duration_since(base_mono),
            };
            self.last = Some(now);
            let mut actions = Vec::new();
            if quorum_due.is_some_and(|d| d <= deadline) {
                if let Some(quorum) = &mut self.quorum {
                    for observation in quorum.tick(now) {
                        actions.extend(arbiter.observe(observation));
                    }
                }
            }
            if arbiter_due.is_some_and(|d| d <= deadline) {
                actions.extend(arbiter.tick(now));
            }
            self.collect(actions, now.wall);
        }
    }

    /// One input at `at`, after the timers due before it.
    fn input(&mut self, at: SystemTime, take: impl FnOnce(&mut Arbiter, Moment) -> Vec<Action>) {
        self.tick_until(at);
        let now = self.moment(at);
        self.last = Some(now);
        let Some(arbiter) = &mut self.arbiter else {
            return;
        };
        let actions = take(arbiter, now);
        self.collect(actions, at);
    }

    fn collect(&mut self, actions: Vec<Action>, at: SystemTime) {
        if !self.shown(at) {
            return;
        }
        for action in actions {
            match action {
                Action::Publish(publication) => self.replay.replayed.changes.push(Change {
                    at,
                    answers: publication
                        .answers
                        .iter()
                        .map(|a| {
                            (
                                a.name.clone(),
                                a.addresses.iter().map(ToString::to_string).collect(),
                            )
                        })
                        .collect(),
                }),
                Action::Notify(event) => self.replay.replayed.events.push(EventLine {
                    at: event.at,
                    name: event.name().to_owned(),
                    subject: event.subject(),
                    text: event.to_string(),
                }),
                _ => {}
            }
        }
    }

    fn finish(mut self) -> Replay {
        let end = self.replay.end;
        for timeline in [&mut self.replay.replayed, &mut self.replay.recorded] {
            timeline.notifications = notifications(self.config, &timeline.events);
            timeline.time_on = time_on(&timeline.changes, end);
        }
        self.replay.same = self.replay.replayed.same_as(&self.replay.recorded);
        self.replay
    }
}

/// A journal's outcome class (0 healthy, else 1 + the failure class) with its text.
fn outcome(class: u8, detail: String) -> Outcome {
    match class {
        0 => Outcome::healthy(detail),
        n => Outcome::failed(CLASSES[usize::from(n - 1).min(CLASSES.len() - 1)], detail),
    }
}

/// How many of `events` each notifier of `config` would send (the log takes every one).
fn notifications(config: &Config, events: &[EventLine]) -> Vec<(String, usize)> {
    let mut out = vec![("log".to_owned(), events.len())];
    for notify in &config.notifiers {
        let label = match &notify.kind {
            NotifierKind::Email(s) => {
                format!("email to {}", s.to.clone().unwrap_or_default().join(", "))
            }
            NotifierKind::Webhook(s) => format!("webhook {}", s.url.clone().unwrap_or_default()),
            NotifierKind::Command(s) => format!(
                "command {}",
                s.command.clone().unwrap_or_default().join(" ")
            ),
            NotifierKind::Plugin(s) => s.kind.clone(),
        };
        let count = match &notify.common.events {
            Some(names) => events.iter().filter(|e| names.contains(&e.name)).count(),
            None => events.len(),
        };
        out.push((label, count));
    }
    out
}

/// Seconds on each answer (its first name's addresses) from the first change to `end`.
fn time_on(changes: &[Change], end: Option<SystemTime>) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    let label = |c: &Change| {
        c.answers
            .first()
            .map(|(_, addresses)| addresses.join(", "))
            .unwrap_or_default()
    };
    for (i, change) in changes.iter().enumerate() {
        let until = changes
            .get(i + 1)
            .map(|c| c.at)
            .or(end)
            .unwrap_or(change.at);
        let seconds = until.duration_since(change.at).map_or(0, |d| d.as_secs());
        let name = label(change);
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += seconds,
            None => out.push((name, seconds)),
        }
    }
    out
}

/// `failoverd replay`'s text: what the config would have done and, with `compare`, beside what
/// the daemon did.
pub fn render(replay: &Replay, config: &Path, compare: bool) -> String {
    use std::fmt::Write as _;
    let time = |at: SystemTime| humantime::format_rfc3339_seconds(at).to_string();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "journal {} .. {}: {} probe results, {} start{} or reload{}",
        replay.begin.map(time).unwrap_or_default(),
        replay.end.map(time).unwrap_or_default(),
        replay.probes,
        replay.starts,
        if replay.starts == 1 { "" } else { "s" },
        if replay.starts == 1 { "" } else { "s" },
    );
    for warning in &replay.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    let _ = writeln!(out, "\nwith {}:", config.display());
    timeline(&mut out, &replay.replayed, &time);
    if compare {
        let _ = writeln!(out, "\nrecorded (what the daemon did):");
        timeline(&mut out, &replay.recorded, &time);
        let _ = writeln!(out);
        if replay.same {
            let _ = writeln!(out, "the same answer changes and events as recorded");
        } else {
            let _ = writeln!(out, "with this config: {}", differences(replay, &time));
        }
    }
    out
}

fn timeline(out: &mut String, timeline: &Timeline, time: &dyn Fn(SystemTime) -> String) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "  answer changes: {}", timeline.changes.len());
    for change in &timeline.changes {
        let answers: Vec<String> = change
            .answers
            .iter()
            .map(|(name, addresses)| format!("{name} {}", addresses.join(" ")))
            .collect();
        let _ = writeln!(out, "    {}  {}", time(change.at), answers.join("; "));
    }
    let _ = writeln!(out, "  events: {}", timeline.events.len());
    for event in &timeline.events {
        let _ = writeln!(
            out,
            "    {}  {:<14} {}",
            time(event.at),
            event.name,
            event.text
        );
    }
    let sent: Vec<String> = timeline
        .notifications
        .iter()
        .map(|(notifier, count)| format!("{notifier} {count}"))
        .collect();
    let _ = writeln!(out, "  notifications: {}", sent.join(", "));
    let on: Vec<String> = timeline
        .time_on
        .iter()
        .map(|(answer, seconds)| {
            format!(
                "{answer} {}",
                humantime::format_duration(Duration::from_secs(*seconds))
            )
        })
        .collect();
    let _ = writeln!(out, "  time on each answer: {}", on.join(", "));
}

/// "3 more failovers (first at ...), 14 more notifications by email to ..., 12m more on ...".
fn differences(replay: &Replay, time: &dyn Fn(SystemTime) -> String) -> String {
    let (new, old) = (&replay.replayed, &replay.recorded);
    let more = |n: i64, what: &str| match n {
        0 => None,
        n if n > 0 => Some(format!("{n} more {what}")),
        n => Some(format!("{} fewer {what}", -n)),
    };
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let mut parts = Vec::new();
    for kind in ["failover", "failback", "all-down", "node-down"] {
        let delta = count(new.count(kind)) - count(old.count(kind));
        if let Some(text) = more(delta, &format!("{kind} events")) {
            let first = (delta > 0)
                .then(|| new.events.iter().find(|e| e.name == kind))
                .flatten()
                .map(|e| format!(" (first at {})", time(e.at)))
                .unwrap_or_default();
            parts.push(format!("{text}{first}"));
        }
    }
    parts.extend(more(
        count(new.changes.len()) - count(old.changes.len()),
        "answer changes",
    ));
    for (notifier, sent) in &new.notifications {
        let before = old
            .notifications
            .iter()
            .find(|(n, _)| n == notifier)
            .map_or(0, |(_, c)| *c);
        parts.extend(more(
            count(*sent) - count(before),
            &format!("notifications by {notifier}"),
        ));
    }
    for (answer, seconds) in &new.time_on {
        let before = old
            .time_on
            .iter()
            .find(|(a, _)| a == answer)
            .map_or(0, |(_, s)| *s);
        let delta =
            i64::try_from(*seconds).unwrap_or(i64::MAX) - i64::try_from(before).unwrap_or(i64::MAX);
        if delta != 0 {
            parts.push(format!(
                "{} {} on {answer}",
                humantime::format_duration(Duration::from_secs(delta.unsigned_abs())),
                if delta > 0 { "more" } else { "less" }
            ));
        }
    }
    if parts.is_empty() {
        "the same counts, but the answer changes or events differ in order or subject (see above)"
            .to_owned()
    } else {
        parts.join(", ")
    }
}
