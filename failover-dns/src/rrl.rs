//! Response rate limiting (RRL) over UDP, in the manner of BIND, NSD and Knot: a server that
//! answers anyone must not be usable to reflect a flood at a victim whose address is forged.
//!
//! Responses are counted per second in buckets keyed by the client's prefix (IPv4 /24, IPv6 /56
//! by default) and what is answered: positive and no-data answers by query name and type
//! (a busy resolver asking many names is not limited as one), NXDOMAIN and errors by prefix
//! alone (random names must not escape the limit). Over the limit a response is dropped, but
//! every `slip`-th one is sent truncated instead, empty, so a real client behind a forged
//! flood retries over TCP and is answered there (TCP is never limited).
//!
//! The table is a fixed array of atomic buckets shared by the UDP workers: no allocation, no
//! lock, one compare-and-swap per response. Two keys that land in the same bucket take it from
//! each other (each finds a foreign tag and starts over), which errs towards answering.

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ipnet::IpNet;

/// How response rate limiting is set up. [`Default`] is on, with the values documented per field.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// Positive and no-data responses per second per client prefix, query name and type (100;
    /// 0: no limit; a bucket counts to 65,535 a second, so a higher limit limits at 65,534).
    pub responses_per_second: u32,
    /// NXDOMAIN and error responses (REFUSED, FORMERR, SERVFAIL, NOTIMP...) per second per
    /// client prefix, whatever the name (20; 0: no limit).
    pub errors_per_second: u32,
    /// Every `slip`-th response over the limit is sent truncated instead of dropped (2, as BIND
    /// and NSD; 1 truncates all of them, 0 drops all of them).
    pub slip: u32,
    /// The length of the IPv4 prefix clients are grouped by (24).
    pub ipv4_prefix: u8,
    /// The length of the IPv6 prefix clients are grouped by (56).
    pub ipv6_prefix: u8,
    /// Clients never limited (none by default; monitoring hosts, the peer server, load tests).
    pub exempt: Vec<IpNet>,
    /// Buckets in the table (65536, 512 KiB): more than the clients active in one second.
    pub buckets: usize,
}

/// [`RateLimitConfig::responses_per_second`]'s default.
pub const DEFAULT_RESPONSES_PER_SECOND: u32 = 100;
/// [`RateLimitConfig::errors_per_second`]'s default.
pub const DEFAULT_ERRORS_PER_SECOND: u32 = 20;
/// [`RateLimitConfig::slip`]'s default.
pub const DEFAULT_SLIP: u32 = 2;
/// [`RateLimitConfig::ipv4_prefix`]'s default.
pub const DEFAULT_IPV4_PREFIX: u8 = 24;
/// [`RateLimitConfig::ipv6_prefix`]'s default.
pub const DEFAULT_IPV6_PREFIX: u8 = 56;

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            responses_per_second: DEFAULT_RESPONSES_PER_SECOND,
            errors_per_second: DEFAULT_ERRORS_PER_SECOND,
            slip: DEFAULT_SLIP,
            ipv4_prefix: DEFAULT_IPV4_PREFIX,
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
            exempt: Vec::new(),
            buckets: 1 << 16,
        }
    }
}

impl RateLimitConfig {
    /// Sets the positive and error limits, per second.
    pub fn with_rates(mut self, responses_per_second: u32, errors_per_second: u32) -> Self {
        self.responses_per_second = responses_per_second;
        self.errors_per_second = errors_per_second;
        self
    }

    /// Sets the slip ratio.
    pub fn with_slip(mut self, slip: u32) -> Self {
        self.slip = slip;
        self
    }

    /// Sets the prefix lengths clients are grouped by (clamped to 32 and 128).
    pub fn with_prefixes(mut self, ipv4_prefix: u8, ipv6_prefix: u8) -> Self {
        self.ipv4_prefix = ipv4_prefix.min(32);
        self.ipv6_prefix = ipv6_prefix.min(128);
        self
    }

    /// Sets the networks never limited.
    pub fn with_exempt(mut self, exempt: Vec<IpNet>) -> Self {
        self.exempt = exempt;
        self
    }
}

/// What to do with one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateVerdict {
    /// Within the limit (or exempt): send it.
    Send,
    /// Over the limit: send nothing.
    Drop,
    /// Over the limit, and this one slips: send it truncated and empty.
    Slip,
}

/// The shared rate-limit table of one server. Cheap to consult from many threads at once.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateLimitConfig,
    buckets: Box<[AtomicU64]>,
    hasher: foldhash::fast::RandomState,
    start: Instant,
}

/// Bucket layout: tag (24 bits) | second (24 bits) | count (16 bits).
const COUNT_BITS: u32 = 16;
const SECOND_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const SECOND_MASK: u64 = (1 << SECOND_BITS) - 1;

/// The kinds of response limited separately.
#[derive(Clone, Copy, Hash)]
enum Category {
    Answer = 0,
    NxDomain = 1,
    Error = 2,
}

impl RateLimiter {
    /// A table for `config` (at least 1024 buckets, rounded up to a power of two).
    pub fn new(config: RateLimitConfig) -> Self {
        let size = config.buckets.max(1024).next_power_of_two();
        Self {
            buckets: (0..size).map(|_| AtomicU64::new(0)).collect(),
            config,
            hasher: foldhash::fast::RandomState::default(),
            start: Instant::now(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// The current second of this limiter's clock: read it once per batch of queries.
    pub fn now(&self) -> u32 {
        u32::try_from(self.start.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    /// Counts `response` (to `query`, from `peer`, in second `now`) and says whether to send it.
    pub fn check(&self, peer: IpAddr, query: &[u8], response: &[u8], now: u32) -> RateVerdict {
        let Some(&flags) = response.get(3) else {
            return RateVerdict::Send;
        };
        let peer = peer.to_canonical();
        let (category, limit) = match flags & 0x0f {
            0 => (Category::Answer, self.config.responses_per_second),
            3 => (Category::NxDomain, self.config.errors_per_second),
            _ => (Category::Error, self.config.errors_per_second),
        };
        if limit == 0 || self.config.exempt.iter().any(|net| net.contains(&peer)) {
            return RateVerdict::Send;
        }
        let mut hasher = self.hasher.build_hasher();
        match peer {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                let prefix = u32::from(self.config.ipv4_prefix.min(32));
                let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
                hasher.write_u32(bits & mask);
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let prefix = u32::from(self.config.ipv6_prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
                hasher.write_u128(bits & mask);
            }
        }
        hasher.write_u8(category as u8);
        if let Category::Answer = category {
            hash_question(&mut hasher, query);
        }
        let hash = hasher.finish();
        let count = self.count(hash, now);
        // A bucket counts to 65,535 a second: a higher limit limits there, not never.
        let limit = u64::from(limit).min(COUNT_MASK - 1);
        if count <= limit {
            return RateVerdict::Send;
        }
        let over = count - limit;
        match self.config.slip {
            0 => RateVerdict::Drop,
            slip if over.is_multiple_of(u64::from(slip)) => RateVerdict::Slip,
            _ => RateVerdict::Drop,
        }
    }

    /// Adds one to the bucket of `hash` for second `now` and returns its count.
    fn count(&self, hash: u64, now: u32) -> u64 {
        let mask = self.buckets.len() - 1;
        // The low bits pick the bucket; the top 24 bits tell keys sharing it apart.
        let bucket = &self.buckets[(hash as usize) & mask];
        let tag = hash >> (64 - 24);
        let second = u64::from(now) & SECOND_MASK;
        let mut current = bucket.load(Ordering::Relaxed);
        loop {
            let same = current >> (COUNT_BITS + SECOND_BITS) == tag
                && (current >> COUNT_BITS) & SECOND_MASK == second;
            let count = if same {
                ((current & COUNT_MASK) + 1).min(COUNT_MASK)
            } else {
                1
            };
            let next = tag << (COUNT_BITS + SECOND_BITS) | second << COUNT_BITS | count;
            match bucket.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return count,
                Err(actual) => current = actual,
            }
        }
    }
}

/// Hashes the question's name (ASCII case folded, 8 bytes at a time) and type, as they stand in
/// the query; a query too short to hold them hashes what it has.
fn hash_question(hasher: &mut impl Hasher, query: &[u8]) {
    let question = query.get(12..).unwrap_or_default();
    let mut end = 0;
    while let Some(&len) = question.get(end) {
        end += 1;
        if len == 0 || len >= 64 {
            break;
        }
        end += usize::from(len);
    }
    let end = (end + 2).min(question.len()); // and the type
    let mut chunks = question[..end].chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // Sets the 0x20 bit of every byte: folds ASCII case (other bytes may collide, which
        // only merges buckets).
        hasher.write_u64(u64::from_le_bytes(word) | 0x2020_2020_2020_2020);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        hasher.write_u64(u64::from_le_bytes(word) | 0x2020_2020_2020_2020);
    }
}

/// Rewrites `response` into its slipped form: the header with TC set and no records, and the
/// question it echoes (the first `question_end` bytes of a response whose question is not
/// compressed, as both answer paths write it).
pub(crate) fn slip(response: &mut Vec<u8>) {
    if response.len() < 12 {
        return;
    }
    let mut end = 12;
    if response[4..6] == [0, 1] {
        while let Some(&len) = response.get(end) {
            end += 1;
            if len == 0 || len >= 64 {
                break;
            }
            end += usize::from(len);
        }
        end = (end + 4).min(response.len());
    }
    response.truncate(end);
    response[2] |= 0x02; // TC
    response[6..12].fill(0);
    if end == 12 {
        response[4..6].fill(0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    fn query(name: &[u8]) -> Vec<u8> {
        let mut query = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        query.extend_from_slice(name);
        query.extend_from_slice(&[0, 1, 0, 1]);
        query
    }

    const NOERROR: [u8; 4] = [0x12, 0x34, 0x84, 0x00];
    const NXDOMAIN: [u8; 4] = [0x12, 0x34, 0x84, 0x03];

    fn verdicts(
        limiter: &RateLimiter,
        peer: &str,
        query: &[u8],
        response: &[u8],
        n: usize,
    ) -> Vec<RateVerdict> {
        (0..n)
            .map(|_| limiter.check(peer.parse().unwrap(), query, response, 7))
            .collect()
    }

    #[test]
    fn answers_over_the_limit_are_dropped_and_every_second_one_slips() {
        let limiter = RateLimiter::new(RateLimitConfig::default().with_rates(5, 2));
        let www = query(b"\x03www\x04test\x02ru\x00");
        let got = verdicts(&limiter, "192.0.2.1", &www, &NOERROR, 9);
        use RateVerdict::{Drop, Send, Slip};
        assert_eq!(got, [Send, Send, Send, Send, Send, Drop, Slip, Drop, Slip]);
        // The same /24, the name in other case: the same bucket.
        let upper = query(b"\x03WWW\x04Test\x02RU\x00");
        assert_eq!(
            verdicts(&limiter, "192.0.2.200", &upper, &NOERROR, 1),
            [Drop]
        );
        // Another name, another /24, the next second: buckets of their own.
        let mail = query(b"\x04mail\x04test\x02ru\x00");
        assert_eq!(verdicts(&limiter, "192.0.2.1", &mail, &NOERROR, 1), [Send]);
        assert_eq!(verdicts(&limiter, "192.0.3.1", &www, &NOERROR, 1), [Send]);
        assert_eq!(
            limiter.check("192.0.2.1".parse().unwrap(), &www, &NOERROR, 8),
            Send
        );
        // NXDOMAIN: by prefix alone, whatever the name.
        let names: Vec<Vec<u8>> = (b'a'..=b'e').map(|c| query(&[1, c, 0])).collect();
        let nx: Vec<_> = names
            .iter()
            .map(|name| limiter.check("198.51.100.9".parse().unwrap(), name, &NXDOMAIN, 7))
            .collect();
        assert_eq!(nx, [Send, Send, Drop, Slip, Drop]);
    }

    #[test]
    fn a_limit_past_what_a_bucket_counts_still_limits() {
        let limiter = RateLimiter::new(
            RateLimitConfig::default()
                .with_rates(1_000_000, 0)
                .with_slip(0),
        );
        let www = query(b"\x03www\x04test\x02ru\x00");
        let got = verdicts(&limiter, "192.0.2.1", &www, &NOERROR, 70_000);
        let sent = got.iter().filter(|v| **v == RateVerdict::Send).count();
        assert_eq!(sent, 65_534);
    }

    #[test]
    fn exempt_networks_zero_limits_and_ipv6_prefixes() {
        let config = RateLimitConfig::default()
            .with_rates(1, 0)
            .with_slip(0)
            .with_exempt(vec!["10.0.0.0/8".parse().unwrap()]);
        let limiter = RateLimiter::new(config);
        let www = query(b"\x03www\x00");
        assert!(verdicts(&limiter, "10.1.2.3", &www, &NOERROR, 5)
            .iter()
            .all(|v| *v == RateVerdict::Send));
        assert!(verdicts(&limiter, "192.0.2.1", &www, &NXDOMAIN, 5)
            .iter()
            .all(|v| *v == RateVerdict::Send));
        assert_eq!(
            verdicts(&limiter, "2001:db8:0:ff::1", &www, &NOERROR, 2),
            [RateVerdict::Send, RateVerdict::Drop]
        );
        assert_eq!(
            verdicts(&limiter, "2001:db8:0:aa::2", &www, &NOERROR, 1),
            [RateVerdict::Drop],
            "same /56"
        );
        assert_eq!(
            verdicts(&limiter, "2001:db8:0:100::1", &www, &NOERROR, 1),
            [RateVerdict::Send],
            "next /56"
        );
    }

    #[test]
    fn a_slipped_response_is_the_header_and_question_with_tc() {
        let mut response = query(b"\x03www\x00");
        response[2] = 0x84;
        response[7] = 1; // one answer
        response.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 10, 0, 4, 10, 0, 0, 1]);
        slip(&mut response);
        assert_eq!(response.len(), 12 + 5 + 4);
        assert_eq!(response[2], 0x86);
        assert_eq!(&response[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
    }
}
