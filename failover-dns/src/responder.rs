//! [`Responder`]: what a server worker answers with: the served zone, the TSIG keys it knows,
//! the rate limiter it obeys and the counters it keeps.

use std::net::IpAddr;
use std::sync::Arc;

use crate::answer::Transport;
use crate::counters::{AnswerCounters, QueryOutcome};
use crate::rrl::{self, RateLimiter, RateVerdict};
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
    /// The server's response rate limiter (UDP only), if it limits.
    rate_limiter: Option<Arc<RateLimiter>>,
}

impl Responder {
    pub(crate) fn new(
        zone: ServedZone,
        keys: Arc<[TsigKey]>,
        rate_limiter: Option<Arc<RateLimiter>>,
    ) -> Self {
        Self {
            zone,
            keys,
            counters: Arc::default(),
            shared: false,
            rate_limiter,
        }
    }

    /// The current second of the rate limiter's clock (0 without one): read once per batch.
    pub(crate) fn now(&self) -> u32 {
        self.rate_limiter
            .as_ref()
            .map_or(0, |limiter| limiter.now())
    }

    /// Answers one UDP query from `peer` into `out`, rate limited, and counts it; false when
    /// nothing must be sent. `now` is from [`now`](Self::now).
    pub(crate) fn answer_udp(
        &self,
        query: &[u8],
        peer: IpAddr,
        now: u32,
        out: &mut Vec<u8>,
    ) -> bool {
        if !self
            .zone
            .answer_with_keys(query, Transport::Udp, &self.keys, out)
        {
            self.record(QueryOutcome::Dropped);
            return false;
        }
        let verdict = match &self.rate_limiter {
            Some(limiter) => limiter.check(peer, query, out, now),
            None => RateVerdict::Send,
        };
        match verdict {
            RateVerdict::Drop => {
                self.record(QueryOutcome::RateLimited);
                false
            }
            RateVerdict::Slip => {
                rrl::slip(out);
                self.record(QueryOutcome::Slipped(out));
                true
            }
            _ => {
                self.record(QueryOutcome::Answered(out));
                true
            }
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

    /// Answers one query into `out` without rate limiting (TCP) and counts it; false when
    /// nothing must be sent.
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
