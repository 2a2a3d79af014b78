//! The recent history the page draws and `/history.json` serves: per node × check, minute by
//! minute over the last 24 hours, how many probes passed and failed and how long they took; and
//! the last answer changes. Bounded in memory; no I/O, every time is passed in (the journal seeds
//! it at start: `journal::recent`).
//!
//! Why minutes and not every probe: a day of probes every 2 s is 43,200 per pair; a day of
//! minutes is 1,440 buckets of 24 bytes (about 34 KiB a pair), and the page draws minutes anyway
//! (a heartbeat bar of 60 cells, a latency chart of 60 points).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use failover_core::{CheckName, NodeName, Outcome, Publication, SupervisorMetrics};
use serde::Serialize;

/// Minutes of history kept per node × check (24 h).
pub const MINUTES_KEPT: u32 = 24 * 60;
/// Minutes the heartbeat bar and the latency chart show (1 h).
pub const MINUTES_SHOWN: u32 = 60;
/// Answer changes kept.
pub const ANSWER_CHANGES_KEPT: usize = 100;
/// Node × check pairs kept: those of the running config, and room for the ones a journal of
/// earlier configs names. Past it, the pair heard from least recently goes.
pub const MAX_PAIRS: usize = 256;

/// One minute of one node × check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Minute {
    /// Minutes since the Unix epoch (UTC).
    pub minute: u32,
    /// Probes that passed.
    pub ok: u16,
    /// Probes that failed.
    pub failed: u16,
    /// Probes whose duration is known (the journal keeps none: seeded minutes have 0).
    pub timed: u16,
    /// The longest of them, in microseconds.
    pub latency_max_us: u32,
    /// Their sum, in microseconds.
    pub latency_sum_us: u64,
}

impl Minute {
    /// What the minute's cell says.
    pub fn state(&self) -> CellState {
        match (self.ok, self.failed) {
            (0, 0) => CellState::NoData,
            (_, 0) => CellState::Up,
            (0, _) => CellState::Down,
            _ => CellState::Partial,
        }
    }

    /// The mean duration of its timed probes, in milliseconds.
    pub fn latency_mean_ms(&self) -> Option<f64> {
        (self.timed > 0).then(|| self.latency_sum_us as f64 / f64::from(self.timed) / 1000.0)
    }

    /// The longest of them, in milliseconds.
    pub fn latency_max_ms(&self) -> Option<f64> {
        (self.timed > 0).then(|| f64::from(self.latency_max_us) / 1000.0)
    }
}

/// A heartbeat cell's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellState {
    /// Every probe passed.
    Up,
    /// Every probe failed.
    Down,
    /// Some passed, some failed.
    Partial,
    /// No probe in that minute.
    NoData,
}

impl CellState {
    /// Its CSS class and JSON name.
    pub fn name(self) -> &'static str {
        match self {
            CellState::Up => "up",
            CellState::Down => "down",
            CellState::Partial => "partial",
            CellState::NoData => "no-data",
        }
    }
}

/// An answer the writers were handed, when it differed from the one before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AnswerChange {
    /// When.
    #[serde(serialize_with = "rfc3339")]
    pub at: SystemTime,
    /// Each managed name with its addresses.
    pub answers: Vec<NameAnswer>,
}

/// One managed name's addresses in an answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NameAnswer {
    /// The name, as in the zone file (`@`, `www`).
    pub name: String,
    /// Its addresses, in order.
    pub addresses: Vec<String>,
}

/// The series of one node × check: its minutes with data, oldest first, at most
/// [`MINUTES_KEPT`] of them.
#[derive(Default)]
struct Series {
    minutes: VecDeque<Minute>,
}

impl Series {
    fn add(&mut self, minute: u32, healthy: bool, took: Option<Duration>) {
        let newest = self.minutes.back().map_or(minute, |m| m.minute.max(minute));
        if minute.saturating_add(MINUTES_KEPT) <= newest {
            return; // older than what is kept (the wall clock went back a day)
        }
        // Pruned before the insert, so that the buffer never holds more than a day of minutes
        // and never grows past its first allocation.
        while self
            .minutes
            .front()
            .is_some_and(|m| m.minute.saturating_add(MINUTES_KEPT) <= newest)
        {
            self.minutes.pop_front();
        }
        if self.minutes.capacity() == 0 {
            self.minutes.reserve_exact(MINUTES_KEPT as usize);
        }
        let slot = match self.minutes.back() {
            Some(last) if last.minute == minute => self.minutes.len() - 1,
            Some(last) if last.minute > minute => {
                // The wall clock stepped back: find or make the minute in order.
                let at = self.minutes.partition_point(|m| m.minute < minute);
                if self.minutes.get(at).is_none_or(|m| m.minute != minute) {
                    self.minutes.insert(at, Minute::new(minute));
                }
                at
            }
            _ => {
                self.minutes.push_back(Minute::new(minute));
                self.minutes.len() - 1
            }
        };
        if let Some(bucket) = self.minutes.get_mut(slot) {
            bucket.count(healthy, took);
        }
    }
}

impl Minute {
    fn new(minute: u32) -> Self {
        Self {
            minute,
            ..Self::default()
        }
    }

    fn count(&mut self, healthy: bool, took: Option<Duration>) {
        if healthy {
            self.ok = self.ok.saturating_add(1);
        } else {
            self.failed = self.failed.saturating_add(1);
        }
        if let Some(took) = took {
            let us = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
            self.timed = self.timed.saturating_add(1);
            self.latency_max_us = self.latency_max_us.max(us);
            self.latency_sum_us = self.latency_sum_us.saturating_add(u64::from(us));
        }
    }
}

#[derive(Default)]
struct Inner {
    series: BTreeMap<(String, String), Series>,
    answers: VecDeque<AnswerChange>,
}

/// The recent history of a daemon: one for its life (kept across reloads), fed by each
/// supervisor through [`SupervisorMetrics`] (the probes with their durations, the answers handed
/// to the writers) and at start from the journal.
#[derive(Default)]
pub struct History {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History").finish_non_exhaustive()
    }
}

/// Minutes since the Unix epoch at `at` (0 before it).
pub fn minute_of(at: SystemTime) -> u32 {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    u32::try_from(secs / 60).unwrap_or(u32::MAX)
}

/// The start of minute `minute`.
pub fn minute_start(minute: u32) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::from(minute) * 60)
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counts, never a broken invariant.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One probe of `check` on `node` at `at`: passed or not, and how long it took if known.
    pub fn record_probe(
        &self,
        node: &str,
        check: &str,
        healthy: bool,
        took: Option<Duration>,
        at: SystemTime,
    ) {
        let minute = minute_of(at);
        let mut inner = self.lock();
        let key = (node.to_owned(), check.to_owned());
        if !inner.series.contains_key(&key) && inner.series.len() >= MAX_PAIRS {
            let stalest = inner
                .series
                .iter()
                .min_by_key(|(_, s)| s.minutes.back().map_or(0, |m| m.minute))
                .map(|(k, _)| k.clone());
            if let Some(stalest) = stalest {
                inner.series.remove(&stalest);
            }
        }
        inner
            .series
            .entry(key)
            .or_default()
            .add(minute, healthy, took);
    }

    /// The writers were handed `answers` at `at`: kept when it differs from the last answer.
    pub fn record_answer(&self, answers: Vec<NameAnswer>, at: SystemTime) {
        let mut inner = self.lock();
        if inner
            .answers
            .back()
            .is_some_and(|last| last.answers == answers)
        {
            return;
        }
        if inner.answers.len() >= ANSWER_CHANGES_KEPT {
            inner.answers.pop_front();
        }
        inner.answers.push_back(AnswerChange { at, answers });
    }

    /// What it holds at `now`, for the page and `/history.json`.
    pub fn view(&self, now: SystemTime) -> HistoryView {
        let inner = self.lock();
        let now_minute = minute_of(now);
        let checks = inner
            .series
            .iter()
            .map(|((node, check), series)| CheckHistory {
                node: node.clone(),
                check: check.clone(),
                uptime_1h: uptime(&series.minutes, now_minute, MINUTES_SHOWN),
                uptime_24h: uptime(&series.minutes, now_minute, MINUTES_KEPT),
                minutes: series
                    .minutes
                    .iter()
                    .filter(|m| in_window(m.minute, now_minute, MINUTES_KEPT))
                    .copied()
                    .collect(),
            })
            .collect();
        HistoryView {
            now,
            checks,
            answer_changes: inner.answers.iter().cloned().collect(),
        }
    }

    /// The heap it takes now, in bytes (the buffers' capacities and the names), for the docs'
    /// figure and its test.
    pub fn heap_bytes(&self) -> usize {
        let inner = self.lock();
        let series: usize = inner
            .series
            .iter()
            .map(|((node, check), s)| {
                node.capacity()
                    + check.capacity()
                    + s.minutes.capacity() * std::mem::size_of::<Minute>()
                    // a B-tree entry: key and value, give or take the node's share
                    + std::mem::size_of::<((String, String), Series)>()
            })
            .sum();
        let answers: usize = inner.answers.capacity() * std::mem::size_of::<AnswerChange>()
            + inner
                .answers
                .iter()
                .flat_map(|a| &a.answers)
                .map(|n| {
                    std::mem::size_of::<NameAnswer>()
                        + n.name.capacity()
                        + n.addresses.iter().map(|a| a.capacity() + 24).sum::<usize>()
                })
                .sum::<usize>();
        series + answers
    }
}

/// Whether `minute` is one of the `span` minutes that end with `now_minute`.
fn in_window(minute: u32, now_minute: u32, span: u32) -> bool {
    minute <= now_minute && minute.saturating_add(span) > now_minute
}

/// The share of probes that passed in the `span` minutes that end with `now_minute`; `None`
/// without a probe.
pub fn uptime(minutes: &VecDeque<Minute>, now_minute: u32, span: u32) -> Option<f64> {
    let (ok, failed) = minutes
        .iter()
        .filter(|m| in_window(m.minute, now_minute, span))
        .fold((0u64, 0u64), |(ok, failed), m| {
            (ok + u64::from(m.ok), failed + u64::from(m.failed))
        });
    (ok + failed > 0).then(|| ok as f64 / (ok + failed) as f64)
}

/// What the history holds at one moment.
#[derive(Clone, Debug)]
pub struct HistoryView {
    /// The moment.
    pub now: SystemTime,
    /// Each node × check, in name order.
    pub checks: Vec<CheckHistory>,
    /// The answer changes, oldest first.
    pub answer_changes: Vec<AnswerChange>,
}

/// One node × check's history.
#[derive(Clone, Debug)]
pub struct CheckHistory {
    /// The node.
    pub node: String,
    /// The check.
    pub check: String,
    /// Share of probes that passed in the last hour (`None`: no probe).
    pub uptime_1h: Option<f64>,
    /// The same over 24 hours.
    pub uptime_24h: Option<f64>,
    /// Its minutes with data in the last 24 hours, oldest first.
    pub minutes: Vec<Minute>,
}

impl HistoryView {
    /// The history of `node` × `check`, if it has one.
    pub fn check(&self, node: &str, check: &str) -> Option<&CheckHistory> {
        self.checks
            .iter()
            .find(|c| c.node == node && c.check == check)
    }
}

impl CheckHistory {
    /// The last [`MINUTES_SHOWN`] minutes up to `now`, oldest first, with empty ones where no
    /// probe ran: the heartbeat bar's cells and the latency chart's points.
    pub fn last_hour(&self, now: SystemTime) -> Vec<Minute> {
        let now_minute = minute_of(now);
        let first = now_minute.saturating_sub(MINUTES_SHOWN - 1);
        // The minutes are in order: walk those from `first` on beside the cells.
        let mut kept = self.minutes[self.minutes.partition_point(|m| m.minute < first)..]
            .iter()
            .peekable();
        (first..=now_minute)
            .map(|minute| match kept.next_if(|m| m.minute == minute) {
                Some(found) => *found,
                None => Minute::new(minute),
            })
            .collect()
    }
}

fn rfc3339<S: serde::Serializer>(at: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_rfc3339_seconds(*at))
}

/// `/history.json`.
impl Serialize for HistoryView {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        #[derive(Serialize)]
        struct MinuteJson {
            start: String,
            state: CellState,
            ok: u16,
            failed: u16,
            #[serde(skip_serializing_if = "Option::is_none")]
            latency_mean_ms: Option<f64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            latency_max_ms: Option<f64>,
        }
        #[derive(Serialize)]
        struct CheckJson<'a> {
            node: &'a str,
            check: &'a str,
            uptime_1h: Option<f64>,
            uptime_24h: Option<f64>,
            minutes: Vec<MinuteJson>,
        }
        let checks: Vec<CheckJson<'_>> = self
            .checks
            .iter()
            .map(|c| CheckJson {
                node: &c.node,
                check: &c.check,
                uptime_1h: c.uptime_1h,
                uptime_24h: c.uptime_24h,
                minutes: c
                    .minutes
                    .iter()
                    .map(|m| MinuteJson {
                        start: humantime::format_rfc3339_seconds(minute_start(m.minute))
                            .to_string(),
                        state: m.state(),
                        ok: m.ok,
                        failed: m.failed,
                        latency_mean_ms: m.latency_mean_ms(),
                        latency_max_ms: m.latency_max_ms(),
                    })
                    .collect(),
            })
            .collect();
        let mut s = serializer.serialize_struct("HistoryView", 4)?;
        s.serialize_field(
            "now",
            &humantime::format_rfc3339_seconds(self.now).to_string(),
        )?;
        s.serialize_field("minutes_kept", &MINUTES_KEPT)?;
        s.serialize_field("checks", &checks)?;
        s.serialize_field("answer_changes", &self.answer_changes)?;
        s.end()
    }
}

/// The answers of a publication as the history keeps them.
pub fn name_answers(publication: &Publication) -> Vec<NameAnswer> {
    publication
        .answers
        .iter()
        .map(|a| NameAnswer {
            name: a.name.clone(),
            addresses: a.addresses.iter().map(ToString::to_string).collect(),
        })
        .collect()
}

/// Fed by the supervisor as things happen, on the wall clock.
impl SupervisorMetrics for History {
    fn probed(&self, node: &NodeName, check: &CheckName, outcome: &Outcome, took: Duration) {
        self.record_probe(
            node.as_str(),
            check.as_str(),
            outcome.is_healthy(),
            Some(took),
            SystemTime::now(),
        );
    }

    fn answer(&self, publication: &Publication) {
        self.record_answer(name_answers(publication), SystemTime::now());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    /// A moment `minutes` and `seconds` after a fixed start (a whole minute).
    fn at(minutes: u64, seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 / 60 * 60 + minutes * 60 + seconds)
    }

    #[test]
    fn probes_add_up_by_minute_with_their_latency_and_state() {
        let history = History::new();
        let ms = |n| Some(Duration::from_millis(n));
        history.record_probe("master", "http", true, ms(2), at(0, 1));
        history.record_probe("master", "http", true, ms(4), at(0, 30));
        history.record_probe("master", "http", false, ms(9), at(1, 0));
        history.record_probe("master", "http", true, None, at(1, 59));
        history.record_probe("master", "http", false, None, at(2, 10));
        let view = history.view(at(3, 0));
        let minutes = &view.check("master", "http").unwrap().minutes;
        assert_eq!(minutes.len(), 3);
        assert_eq!((minutes[0].ok, minutes[0].failed), (2, 0));
        assert_eq!(minutes[0].state(), CellState::Up);
        assert_eq!(minutes[0].latency_mean_ms(), Some(3.0));
        assert_eq!(minutes[0].latency_max_ms(), Some(4.0));
        assert_eq!(minutes[1].state(), CellState::Partial);
        // Only the timed probe counts for its latency.
        assert_eq!(
            (minutes[1].timed, minutes[1].latency_mean_ms()),
            (1, Some(9.0))
        );
        assert_eq!(minutes[2].state(), CellState::Down);
        assert_eq!(minutes[2].latency_mean_ms(), None);
        // The last hour: 60 cells, the empty ones without data.
        let cells = view.check("master", "http").unwrap().last_hour(at(3, 0));
        assert_eq!(cells.len(), 60);
        assert_eq!(cells[59].state(), CellState::NoData);
        assert_eq!(cells[58].state(), CellState::Down);
        assert_eq!(cells[56].state(), CellState::Up);
        assert_eq!(cells[0].minute, minute_of(at(3, 0)) - 59);
    }

    #[test]
    fn uptime_counts_probes_in_the_last_hour_and_the_last_day() {
        let history = History::new();
        // A day ago (outside the hour): 10 failures. In the last hour: 3 of 4 passed.
        for s in 0..10 {
            history.record_probe("a", "tcp", false, None, at(100, s));
        }
        for (s, ok) in [(0, true), (1, true), (2, false), (3, true)] {
            history.record_probe("a", "tcp", ok, None, at(1000, s));
        }
        let view = history.view(at(1010, 0));
        let a = view.check("a", "tcp").unwrap();
        assert_eq!(a.uptime_1h, Some(0.75));
        assert_eq!(a.uptime_24h, Some(3.0 / 14.0));
        // Nothing in the window: no figure, not 0 % or 100 %.
        let later = history.view(at(1000 + 61, 0));
        assert_eq!(later.check("a", "tcp").unwrap().uptime_1h, None);
        assert!(later.check("a", "tcp").unwrap().uptime_24h.is_some());
    }

    #[test]
    fn a_day_is_kept_and_no_more_even_when_the_clock_steps_back() {
        let history = History::new();
        for minute in 0..3000 {
            history.record_probe("a", "http", true, None, at(minute, 0));
        }
        let view = history.view(at(2999, 30));
        let minutes = &view.check("a", "http").unwrap().minutes;
        assert_eq!(minutes.len(), MINUTES_KEPT as usize);
        assert_eq!(minutes[0].minute, minute_of(at(2999 - 1439, 0)));
        // Back ten minutes: counted in its own minute, order kept.
        history.record_probe("a", "http", false, None, at(2990, 5));
        // Back two days: dropped.
        history.record_probe("a", "http", false, None, at(10, 0));
        let view = history.view(at(2999, 30));
        let minutes = &view.check("a", "http").unwrap().minutes;
        assert_eq!(minutes.len(), MINUTES_KEPT as usize);
        assert!(minutes.windows(2).all(|w| w[0].minute < w[1].minute));
        let back = minutes.iter().find(|m| m.minute == minute_of(at(2990, 0)));
        assert_eq!(back.map(Minute::state), Some(CellState::Partial));
        assert_eq!(minutes.iter().map(|m| u32::from(m.failed)).sum::<u32>(), 1);
    }

    #[test]
    fn answer_changes_are_kept_when_they_change_and_at_most_a_hundred() {
        let history = History::new();
        let answer = |address: &str| {
            vec![NameAnswer {
                name: "@".into(),
                addresses: vec![address.into()],
            }]
        };
        history.record_answer(answer("127.0.0.2"), at(0, 0));
        history.record_answer(answer("127.0.0.2"), at(1, 0));
        history.record_answer(answer("127.0.0.3"), at(2, 0));
        let view = history.view(at(3, 0));
        assert_eq!(view.answer_changes.len(), 2);
        assert_eq!(view.answer_changes[1].at, at(2, 0));
        for i in 0..300u64 {
            history.record_answer(answer(&format!("10.0.0.{}", i % 2)), at(10 + i, 0));
        }
        let view = history.view(at(400, 0));
        assert_eq!(view.answer_changes.len(), ANSWER_CHANGES_KEPT);
        assert_eq!(view.answer_changes.last().unwrap().at, at(309, 0));
    }

    #[test]
    fn pairs_past_the_bound_push_out_the_stalest() {
        let history = History::new();
        for i in 0..MAX_PAIRS + 10 {
            history.record_probe(&format!("n{i:04}"), "c", true, None, at(i as u64, 0));
        }
        let view = history.view(at(MAX_PAIRS as u64 + 10, 0));
        assert_eq!(view.checks.len(), MAX_PAIRS);
        assert!(view.check("n0000", "c").is_none());
        assert!(view.check(&format!("n{:04}", MAX_PAIRS + 9), "c").is_some());
    }

    /// The figure docs/operations.md quotes: two nodes × four checks probed every 2 s for a day,
    /// with a hundred answer changes.
    #[test]
    fn a_day_of_eight_checks_every_two_seconds_takes_a_bounded_few_hundred_kib() {
        let history = History::new();
        let checks = ["http", "mysql", "ssh", "dns"];
        for second in (0..2 * 24 * 3600u64).step_by(2) {
            for node in ["master", "slave"] {
                for check in checks {
                    let took = Some(Duration::from_micros(300 + second % 700));
                    history.record_probe(node, check, second % 97 != 0, took, at(0, second));
                }
            }
        }
        for i in 0..200u64 {
            let answers = vec![NameAnswer {
                name: "@".into(),
                addresses: vec![format!("192.0.2.{}", i % 2)],
            }];
            history.record_answer(answers, at(i, 0));
        }
        let bytes = history.heap_bytes();
        // Each pair's buffer is one day of minutes, allocated once; the rest is names and answers.
        let per_pair = MINUTES_KEPT as usize * std::mem::size_of::<Minute>();
        assert!(bytes >= 8 * per_pair, "{bytes} bytes");
        assert!(bytes <= 8 * per_pair + 32 * 1024, "{bytes} bytes");
        let view = history.view(at(0, 2 * 24 * 3600 - 1));
        assert_eq!(view.checks.len(), 8);
        assert!(view
            .checks
            .iter()
            .all(|c| c.minutes.len() == MINUTES_KEPT as usize));
        eprintln!(
            "a day of 2 nodes x 4 checks every 2 s, 100 answer changes: {} KiB ({} bytes a minute)",
            bytes / 1024,
            std::mem::size_of::<Minute>()
        );
    }

    #[test]
    fn the_json_names_each_minute_and_the_answer_changes() {
        let history = History::new();
        history.record_probe(
            "master",
            "http",
            true,
            Some(Duration::from_millis(3)),
            at(0, 5),
        );
        history.record_answer(
            vec![NameAnswer {
                name: "@".into(),
                addresses: vec!["127.0.0.2".into()],
            }],
            at(0, 6),
        );
        let json = serde_json::to_value(history.view(at(0, 30))).unwrap();
        let check = &json["checks"][0];
        assert_eq!(check["node"], "master");
        assert_eq!(check["uptime_1h"], 1.0);
        assert_eq!(check["minutes"][0]["state"], "up");
        assert_eq!(check["minutes"][0]["latency_mean_ms"], 3.0);
        assert_eq!(
            check["minutes"][0]["start"],
            humantime::format_rfc3339_seconds(at(0, 0)).to_string()
        );
        assert_eq!(
            json["answer_changes"][0]["answers"][0]["addresses"][0],
            "127.0.0.2"
        );
        assert_eq!(json["minutes_kept"], 1440);
    }
}
