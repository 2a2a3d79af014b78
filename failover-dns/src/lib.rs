//! DNS for failover: the zone model and a built-in authoritative DNS server whose answers for
//! the managed names (`@`, `www`) move when the arbiter publishes.
//!
//! What is here: [`Zone`] (an RFC 1035 zone file, parsed with hickory-proto and validated),
//! [`ServedZone`] (the zone as served, a [`ZoneWriter`](failover_core::ZoneWriter) whose
//! `publish` swaps precomputed answers atomically and keeps the SOA serial growing across
//! restarts) and [`DnsServer`] (UDP worker threads and TCP on tokio).
//!
//! Zone writers that steer another name server instead: [`ZoneFileWriter`] (rewrites a BIND
//! zone file's managed records, raises the serial, replaces the file atomically, runs
//! `rndc reload`) and [`DynamicUpdateWriter`] (a TSIG-signed RFC 2136 UPDATE to a primary,
//! keys from [`TsigKey`]). Common queries are
//! answered from precomputed wire-format responses without allocating; everything else goes
//! through hickory-proto's full decode and encode.
//!
//! The server is a primary for standard secondaries (BIND, NSD, Knot): AXFR over TCP to the
//! clients its [`TransferAcl`] admits, by address or by TSIG key (the answer then signed; IXFR
//! is answered with the whole zone), and NOTIFY to
//! configured secondaries on every serial change ([`Secondaries`]). [`DnsCheck`] is the `dns`
//! health check, built on the small client [`query`].
//!
//! With the feature `xdp` (Linux), `ServerConfig::with_xdp` adds an opt-in AF_XDP listener
//! (`XdpConfig`): UDP queries on one interface answered in the frames of its receive queues,
//! past the kernel's socket layer, with the same answers; TCP and everything else take the
//! kernel's path to the normal listeners.
//!
//! Facing the open internet: responses over UDP are rate limited per client prefix
//! ([`RateLimitConfig`], on by default: see its fields for the values), and
//! [`DnsServer::stats`] sums the counters each worker keeps without locks ([`ServerStats`]).
//!
//! What is deliberately not here (yet): recursion, DNSSEC signing, incremental transfers from a
//! history of changes, dynamic updates received from others, several zones per server.
//!
//! Entry points: [`Zone::from_file`], [`ServedZone::new`], [`DnsServer::start`] (with
//! [`ServerConfig::with_transfer_acl`], [`ServerConfig::with_secondaries`] and
//! [`ServerConfig::with_rate_limit`]), [`DnsCheck::new`].
//!
//! # Example
//!
//! ```
//! use failover_core::{ManagedAnswer, Publication};
//! use failover_dns::{DnsServer, ManagedName, ServedZone, ServerConfig, Zone};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let zone = Zone::parse(
//!     "example",
//!     "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns1 admin 1 10 10 10 10\n@ IN NS ns1\nns1 IN A 10.0.0.53\nwww IN A 10.1.0.1\n",
//! )?;
//! let state = tempfile::tempdir()?;
//! let served = ServedZone::new(zone, &[ManagedName::new("www", 10)], state.path())?;
//! let serial = served.serial();
//!
//! let publication = Publication {
//!     nodes: vec![],
//!     answers: vec![ManagedAnswer { name: "www".into(), ttl: 10, addresses: vec!["10.2.0.1".parse()?] }],
//! };
//! assert_eq!(served.publish_blocking(&publication)?, serial + 1);
//! assert_eq!(served.current_answer("www"), Some(vec!["10.2.0.1".parse()?]));
//!
//! let runtime = tokio::runtime::Runtime::new()?;
//! runtime.block_on(async {
//!     let server = DnsServer::start(served, &ServerConfig::new(vec!["127.0.0.1:0".parse()?]))?;
//!     println!("serving on {:?}", server.local_addrs());
//!     server.shutdown().await;
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok(())
//! # }
//! ```

mod answer;
mod client;
mod counters;
mod error;
mod exchange;
#[cfg(test)]
mod tests;
// For the fuzz targets in `fuzz/` only: not an API.
#[doc(hidden)]
pub mod fuzzing;
mod probe;
mod responder;
mod rrl;
mod secondaries;
mod served;
mod server;
mod tsig;
mod udp;
mod writer;
#[cfg(all(feature = "xdp", target_os = "linux"))]
mod xdp;
mod xfr;
mod xfr_tsig;
mod zone;

pub use answer::{Transport, EDNS_PAYLOAD};
pub use client::query;
pub use counters::{AnswerCounters, QueryOutcome, ServerStats, StatsReader, TransportStats};
pub use error::DnsError;
pub use ipnet::IpNet;
pub use probe::{DnsCheck, DnsCheckOptions};
pub use rrl::{
    RateLimitConfig, RateLimiter, RateVerdict, DEFAULT_ERRORS_PER_SECOND, DEFAULT_IPV4_PREFIX,
    DEFAULT_IPV6_PREFIX, DEFAULT_RESPONSES_PER_SECOND, DEFAULT_SLIP,
};
pub use secondaries::{Secondaries, SecondariesConfig};
pub use served::{ManagedName, ServedZone};
pub use server::{DnsServer, ServerConfig, DEFAULT_UDP_WORKERS};
pub use tsig::{TsigAlgorithm, TsigKey, TSIG_FUDGE};
pub use writer::{
    default_reload_command, DynamicUpdateOptions, DynamicUpdateWriter, ZoneFileOptions,
    ZoneFileWriter, DEFAULT_STEP_TIMEOUT,
};
#[cfg(all(feature = "xdp", target_os = "linux"))]
pub use xdp::XdpConfig;
pub use xfr::TransferAcl;
pub use zone::Zone;
