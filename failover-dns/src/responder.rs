//! [`Responder`]: what a server worker answers with: the served zone, the TSIG keys it knows and
//! the counters it keeps.

use std::sync::Arc;

use crate::answer::Transport;
use crate::counters::{AnswerCounters, QueryOutcome};
use crate::served::ServedZone;
use crate::tsig::TsigKey;

/// The answering side of one worker (UDP thread, or the TCP connections of one listener).
#[derive(Clone, Debug)]
pub(crate) struct Responder {
    pub(crate) zone: ServedZone,
    /// The transfer ACL's keys: queries signed by one get signed answers.
    keys: Arc<[TsigKey]>,
    /// This worker's counters.
    pub(crate) counters: Arc<AnswerCounters>,
    /// Whether several tasks write `counters` (TCP connections): then adds are locked.
    shared: bool,
}

impl Responder {
    pub(crate) fn new(zone: ServedZone, keys: Arc<[TsigKey]>) -> Self {
        Self {
            zone,
            keys,
            counters: Arc::default(),
            shared: false,
        }
    }

    /// The same zone and keys with counters of its own; `shared` when several tasks use it.
    pub(crate) fn with_own_counters(&self, shared: bool) -> Self {
        Self {
            counters: Arc::default(),
            shared,
            ..self.clone()
        }
    }

    /// Answers one query into `out` and counts it; false when nothing must be sent.
    pub(crate) fn answer(&self, query: &[u8], transport: Transport, out: &mut Vec<u8>) -> bool {
        let answered = self
            .zone
            .answer_with_keys(query, transport, &self.keys, out);
        self.record(if answered {
            QueryOutcome::Answered(out)
        } else {
            QueryOutcome::Dropped
        });
        answered
    }

    /// Counts one query's outcome.
    pub(crate) fn record(&self, outcome: QueryOutcome<'_>) {
        if self.shared {
            self.counters.record_shared(outcome);
        } else {
            self.counters.record(outcome);
        }
    }
}
