//! Counters of the answer path: [`AnswerCounters`] kept by each worker without locks, summed
//! on read into [`ServerStats`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What one transport of a server has answered so far (counts since the server started).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// Queries received (every datagram or TCP message that reached the answer path).
    pub queries: u64,
    /// Responses sent (including truncated and slipped ones).
    pub responses: u64,
    /// Responses by the rcode in their header (index 0 NOERROR, 1 FORMERR, 2 SERVFAIL,
    /// 3 NXDOMAIN, 4 NOTIMP, 5 REFUSED, 9 NOTAUTH; extended rcodes such as BADVERS count under
    /// their low four bits).
    pub responses_by_rcode: [u64; 16],
    /// Responses sent with the TC flag (too large for the client's UDP size, or slipped).
    pub truncated: u64,
    /// Queries dropped without a response because they were malformed (no header, or a
    /// response sent to us).
    pub malformed_dropped: u64,
    /// Responses withheld by response rate limiting.
    pub rate_limited: u64,
    /// Rate-limited responses sent truncated instead (the slip), counted in `truncated` too.
    pub slipped: u64,
}

impl TransportStats {
    fn add(&mut self, other: &Self) {
        self.queries += other.queries;
        self.responses += other.responses;
        for (sum, count) in self
            .responses_by_rcode
            .iter_mut()
            .zip(other.responses_by_rcode)
        {
            *sum += count;
        }
        self.truncated += other.truncated;
        self.malformed_dropped += other.malformed_dropped;
        self.rate_limited += other.rate_limited;
        self.slipped += other.slipped;
    }
}

/// What a [`DnsServer`](crate::DnsServer) has answered, by transport: a snapshot summed over
/// its workers when [`DnsServer::stats`](crate::DnsServer::stats) is called.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Queries over UDP.
    pub udp: TransportStats,
    /// Queries over TCP (a zone transfer counts as one query and one response, by the rcode of
    /// its first message).
    pub tcp: TransportStats,
}

/// What happened to one query, for [`AnswerCounters::record`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueryOutcome<'a> {
    /// This response was sent.
    Answered(&'a [u8]),
    /// Nothing was sent: the query was malformed.
    Dropped,
    /// Nothing was sent: response rate limiting withheld it.
    RateLimited,
    /// This response was sent truncated instead of the rate-limited one (the slip).
    Slipped(&'a [u8]),
}

/// The counters of one worker: plain atomics on their own cache lines, written by that worker
/// alone and read by anyone, so counting costs a few loads and stores, never a lock.
///
/// Public for embedders that run their own socket loop over
/// [`ServedZone::answer`](crate::ServedZone::answer): one `AnswerCounters` per thread,
/// [`record`](Self::record) after each query, [`snapshot`](Self::snapshot) summed on read.
#[derive(Debug, Default)]
#[repr(align(128))] // two workers' counters never share a cache line
pub struct AnswerCounters {
    queries: AtomicU64,
    responses: AtomicU64,
    responses_by_rcode: [AtomicU64; 16],
    truncated: AtomicU64,
    malformed_dropped: AtomicU64,
    rate_limited: AtomicU64,
    slipped: AtomicU64,
}

/// Adds `n` to a counter that only the calling thread writes: a load and a store, no locked
/// read-modify-write (a concurrent writer could lose counts, never corrupt anything).
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

impl AnswerCounters {
    /// Counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one query and its outcome. One writer at a time: each worker owns its counters
    /// (use [`record_shared`](Self::record_shared) where several tasks share them).
    pub fn record(&self, outcome: QueryOutcome<'_>) {
        self.count(outcome, bump);
    }

    /// [`record`](Self::record) for counters shared by several writers (locked adds).
    pub fn record_shared(&self, outcome: QueryOutcome<'_>) {
        self.count(outcome, |counter, n| {
            counter.fetch_add(n, Ordering::Relaxed);
        });
    }

    fn count(&self, outcome: QueryOutcome<'_>, add: impl Fn(&AtomicU64, u64)) {
        add(&self.queries, 1);
        let response = match outcome {
            QueryOutcome::Answered(response) => response,
            QueryOutcome::Slipped(response) => {
                add(&self.slipped, 1);
                response
            }
            QueryOutcome::Dropped => return add(&self.malformed_dropped, 1),
            QueryOutcome::RateLimited => return add(&self.rate_limited, 1),
        };
        add(&self.responses, 1);
        if let Some(flags) = response.get(2..4) {
            add(&self.responses_by_rcode[usize::from(flags[1] & 0x0f)], 1);
            if flags[0] & 0x02 != 0 {
                add(&self.truncated, 1);
            }
        }
    }

    /// The counts so far.
    pub fn snapshot(&self) -> TransportStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TransportStats {
            queries: read(&self.queries),
            responses: read(&self.responses),
            responses_by_rcode: std::array::from_fn(|rcode| read(&self.responses_by_rcode[rcode])),
            truncated: read(&self.truncated),
            malformed_dropped: read(&self.malformed_dropped),
            rate_limited: read(&self.rate_limited),
            slipped: read(&self.slipped),
        }
    }
}

/// Reads a server's counters from anywhere (a metrics endpoint, a status page): cheap to clone,
/// it holds the workers' counters themselves, and still reads the last counts once the server
/// has stopped. Made by [`DnsServer::stats_reader`](crate::DnsServer::stats_reader).
#[derive(Clone, Debug, Default)]
pub struct StatsReader {
    pub(crate) udp: Arc<[Arc<AnswerCounters>]>,
    pub(crate) tcp: Arc<[Arc<AnswerCounters>]>,
}

impl StatsReader {
    /// The counts now, summed over the workers (see [`DnsServer::stats`](crate::DnsServer::stats)).
    pub fn read(&self) -> ServerStats {
        ServerStats {
            udp: sum(self.udp.iter().map(Arc::as_ref)),
            tcp: sum(self.tcp.iter().map(Arc::as_ref)),
        }
    }
}

/// Sums the snapshots of `counters`.
pub(crate) fn sum<'a>(counters: impl IntoIterator<Item = &'a AnswerCounters>) -> TransportStats {
    let mut total = TransportStats::default();
    for worker in counters {
        total.add(&worker.snapshot());
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_by_rcode_and_flag() {
        let counters = AnswerCounters::new();
        let noerror = [0, 1, 0x84, 0x00];
        let nxdomain_truncated = [0, 1, 0x86, 0x03];
        counters.record(QueryOutcome::Answered(&noerror));
        counters.record(QueryOutcome::Answered(&nxdomain_truncated));
        counters.record(QueryOutcome::Dropped);
        counters.record_shared(QueryOutcome::RateLimited);
        counters.record(QueryOutcome::Slipped(&[0, 1, 0x86, 0x00]));
        let stats = counters.snapshot();
        assert_eq!(stats.queries, 5);
        assert_eq!(stats.responses, 3);
        assert_eq!(stats.responses_by_rcode[0], 2);
        assert_eq!(stats.responses_by_rcode[3], 1);
        assert_eq!(stats.truncated, 2);
        assert_eq!(stats.malformed_dropped, 1);
        assert_eq!(stats.rate_limited, 1);
        assert_eq!(stats.slipped, 1);
        let total = sum([&counters, &counters]);
        assert_eq!(total.queries, 10);
        assert_eq!(total.responses_by_rcode[3], 2);
    }
}
