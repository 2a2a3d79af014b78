//! The DNS server's counters in `/status` and `failoverd status`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::metrics::rcode_name;

/// The built-in DNS server's counters since it started, by transport (`dns` in `/status`).
#[derive(Clone, Debug, Serialize)]
pub struct DnsStatus {
    /// Over UDP.
    pub udp: TransportCounts,
    /// Over TCP (a zone transfer counts as one query).
    pub tcp: TransportCounts,
}

/// One transport's counters.
#[derive(Clone, Debug, Serialize)]
pub struct TransportCounts {
    /// Queries received.
    pub queries: u64,
    /// Responses sent.
    pub responses: u64,
    /// Responses by rcode (`NOERROR`, `NXDOMAIN`, ...), those sent at least once.
    pub responses_by_rcode: BTreeMap<String, u64>,
    /// Responses sent truncated (too large for the client, or slipped).
    pub truncated: u64,
    /// Malformed queries dropped unanswered.
    pub malformed_dropped: u64,
    /// Responses withheld by response rate limiting.
    pub rate_limited: u64,
    /// Rate-limited responses sent truncated instead.
    pub slipped: u64,
}

impl From<&failover_dns::TransportStats> for TransportCounts {
    fn from(t: &failover_dns::TransportStats) -> Self {
        TransportCounts {
            queries: t.queries,
            responses: t.responses,
            responses_by_rcode: t
                .responses_by_rcode
                .iter()
                .enumerate()
                .filter(|(_, &count)| count > 0)
                .map(|(rcode, &count)| (rcode_name(rcode), count))
                .collect(),
            truncated: t.truncated,
            malformed_dropped: t.malformed_dropped,
            rate_limited: t.rate_limited,
            slipped: t.slipped,
        }
    }
}

impl From<&failover_dns::ServerStats> for DnsStatus {
    fn from(stats: &failover_dns::ServerStats) -> Self {
        DnsStatus {
            udp: (&stats.udp).into(),
            tcp: (&stats.tcp).into(),
        }
    }
}

impl DnsStatus {
    /// The `dns` lines of `failoverd status`.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "\ndns (since the server started):");
        for (transport, t) in [("udp", &self.udp), ("tcp", &self.tcp)] {
            let rcodes = t
                .responses_by_rcode
                .iter()
                .map(|(rcode, count)| format!("{rcode} {count}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "  {transport}: {} queries, {} responses{}, {} truncated, {} rate-limited ({} slipped), {} malformed dropped",
                t.queries,
                t.responses,
                if rcodes.is_empty() {
                    String::new()
                } else {
                    format!(" ({rcodes})")
                },
                t.truncated,
                t.rate_limited,
                t.slipped,
                t.malformed_dropped,
            );
        }
    }
}
