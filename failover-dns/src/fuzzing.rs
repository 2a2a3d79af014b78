//! Hooks for the fuzz targets in `fuzz/`: the server's answering without its sockets.
//!
//! Not an API: hidden from the docs, public only so that the fuzz crate (a crate of its own)
//! reaches the same code a server worker runs on a packet from the network.

use std::net::IpAddr;
use std::sync::Arc;

use crate::answer::Transport;
use crate::responder::Responder;
use crate::rrl::{RateLimitConfig, RateLimiter};
use crate::served::ServedZone;
use crate::xfr::{self, TransferAcl};

/// One server worker's answering: the zone, the transfer ACL (and its TSIG keys), the rate
/// limiter, the counters.
#[derive(Debug)]
pub struct Worker {
    responder: Responder,
    acl: TransferAcl,
}

impl Worker {
    /// A worker as [`DnsServer::start`](crate::DnsServer::start) builds it.
    pub fn new(zone: ServedZone, acl: TransferAcl, rate_limit: Option<RateLimitConfig>) -> Self {
        let limiter = rate_limit.map(|config| Arc::new(RateLimiter::new(config)));
        Self {
            responder: Responder::new(zone, Arc::from(acl.keys()), limiter),
            acl,
        }
    }

    /// A UDP worker's answer to `query` from `peer` in the limiter's second `now` (rate
    /// limited, counted); false when nothing is sent.
    pub fn udp(&self, query: &[u8], peer: IpAddr, now: u32, out: &mut Vec<u8>) -> bool {
        self.responder.answer_udp(query, peer, now, out)
    }

    /// The messages a TCP connection sends back for `query` from `peer`: a transfer's stream,
    /// one answer, or none.
    pub fn tcp(&self, query: &[u8], peer: IpAddr) -> Vec<Vec<u8>> {
        if xfr::is_transfer(query) {
            return xfr::respond(&self.responder.zone.snapshot(), query, peer, &self.acl);
        }
        let mut out = Vec::new();
        match self.responder.answer(query, Transport::Tcp, &mut out) {
            true => vec![out],
            false => Vec::new(),
        }
    }
}
