//! Flap damping: a subject that changes too often is notified once, then summarised.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::action::Action;
use crate::event::{Event, EventKind};
use crate::model::Moment;

/// How many changes of one subject are notified within a window before it counts as flapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damping {
    /// The window over which changes are counted.
    pub window: Duration,
    /// Changes notified within one window; the next one raises a `Flapping` event instead.
    pub max_changes: u32,
}

/// The window changes are counted over, unless configured otherwise.
pub const DEFAULT_DAMPING_WINDOW: Duration = Duration::from_secs(600);
/// Changes notified per window, unless configured otherwise.
pub const DEFAULT_DAMPING_MAX_CHANGES: u32 = 4;

impl Default for Damping {
    fn default() -> Self {
        Self {
            window: DEFAULT_DAMPING_WINDOW,
            max_changes: DEFAULT_DAMPING_MAX_CHANGES,
        }
    }
}

#[derive(Debug, Default)]
struct Subject {
    recent: VecDeque<Instant>,
    flapping: bool,
    suppressed: u32,
    last_change: Option<Instant>,
    state: String,
}

/// Per-subject damping state. Every event goes through [`Damper::pass`]; at most
/// `max_changes + 2` notifications leave per subject per window (the changes, `Flapping`,
/// `Settled`), however often it changes.
#[derive(Debug)]
pub(crate) struct Damper {
    config: Damping,
    subjects: HashMap<String, Subject>,
}

impl Damper {
    pub(crate) fn new(config: Damping) -> Self {
        Self {
            config,
            subjects: HashMap::new(),
        }
    }

    /// Turns one event into a `Notify` (or a `Record` while its subject flaps).
    pub(crate) fn pass(&mut self, event: Event, now: Moment, out: &mut Vec<Action>) {
        let key = event.subject();
        let window = self.config.window;
        let subject = self.subjects.entry(key.clone()).or_default();
        subject.last_change = Some(now.mono);
        subject.state = state_word(&event);
        if subject.flapping {
            subject.suppressed += 1;
            out.push(Action::Record(event));
            return;
        }
        while subject
            .recent
            .front()
            .is_some_and(|t| now.mono.saturating_duration_since(*t) >= window)
        {
            subject.recent.pop_front();
        }
        subject.recent.push_back(now.mono);
        if subject.recent.len() as u32 > self.config.max_changes {
            subject.flapping = true;
            let transitions = subject.recent.len() as u32;
            out.push(Action::Record(event));
            out.push(Action::Notify(Event {
                at: now.wall,
                kind: EventKind::Flapping {
                    subject: key,
                    transitions,
                    window,
                },
            }));
        } else {
            out.push(Action::Notify(event));
        }
    }

    /// Reports subjects that have been stable for a whole window.
    pub(crate) fn tick(&mut self, now: Moment, out: &mut Vec<Action>) {
        let window = self.config.window;
        let mut settled: Vec<(&String, &mut Subject)> = self
            .subjects
            .iter_mut()
            .filter(|(_, s)| {
                s.flapping
                    && s.last_change
                        .is_some_and(|t| now.mono.saturating_duration_since(t) >= window)
            })
            .collect();
        // Deterministic order for identical inputs.
        settled.sort_by(|a, b| a.0.cmp(b.0));
        for (key, subject) in settled {
            out.push(Action::Notify(Event {
                at: now.wall,
                kind: EventKind::Settled {
                    subject: key.clone(),
                    suppressed: subject.suppressed,
                    state: subject.state.clone(),
                },
            }));
            subject.flapping = false;
            subject.suppressed = 0;
            subject.recent.clear();
        }
    }

    /// When the next flapping subject may settle.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.subjects
            .values()
            .filter(|s| s.flapping)
            .filter_map(|s| s.last_change.map(|t| t + self.config.window))
            .min()
    }

    /// Whether a subject is flapping now (for status).
    pub(crate) fn is_flapping(&self, subject: &str) -> bool {
        self.subjects.get(subject).is_some_and(|s| s.flapping)
    }
}

/// The subject's state after the event, in a word or two, for the `Settled` summary.
fn state_word(event: &Event) -> String {
    match &event.kind {
        EventKind::CheckDown { .. } | EventKind::NodeDown { .. } => "down".to_owned(),
        EventKind::CheckUp { .. } | EventKind::NodeUp { .. } => "up".to_owned(),
        EventKind::Failover { to, .. }
        | EventKind::Failback { to, .. }
        | EventKind::AnswerChanged { to, .. }
        | EventKind::AllDown { answer: to, .. }
        | EventKind::PublishVetoed { kept: to, .. } => format!(
            "answer {}",
            to.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
        ),
        EventKind::PublishFailed { .. } => "failing".to_owned(),
        EventKind::PublishRecovered { .. } => "published".to_owned(),
        EventKind::Override { action } => action.clone(),
        EventKind::MirrorConflicts { count, .. } => format!("{count} conflicts in the last run"),
        EventKind::MirrorFailed { count, .. } => format!("{count} paths not mirrored"),
        EventKind::FenceStep { action, .. } => action.clone(),
        EventKind::Flapping { .. } | EventKind::Settled { .. } => String::new(),
    }
}
