//! Serves a zone file until killed, with `@` and `www` managed and nothing published: a
//! benchmark target.
//!
//! `cargo run --release -p failover-dns --example serve -- ZONEFILE LISTEN_ADDR [WORKERS] [RRL]`
//!
//! RRL: `off` (the default here, so that a load generator is answered in full), `on` (the
//! library's default limits) or `unlimited` (every response checked, no limit ever reached: what
//! rate limiting costs a client within its rate).

use std::error::Error;
use std::net::SocketAddr;

use failover_dns::{DnsServer, ManagedName, RateLimitConfig, ServedZone, ServerConfig, Zone};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: serve ZONEFILE LISTEN_ADDR [WORKERS] [off|on|unlimited]";
    let zone_file = args.next().ok_or(usage)?;
    let listen: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let workers: usize = args.next().map_or(Ok(1), |w| w.parse())?;
    let rate_limit = match args.next().as_deref() {
        None | Some("off") => None,
        Some("on") => Some(RateLimitConfig::default()),
        Some("unlimited") => Some(RateLimitConfig::default().with_rates(u32::MAX, u32::MAX)),
        Some(_) => return Err(usage.into()),
    };

    let state = tempfile::tempdir()?;
    let zone = Zone::from_file(&zone_file)?;
    let managed = [ManagedName::new("@", 10), ManagedName::new("www", 10)];
    let served = ServedZone::new(zone, &managed, state.path())?;

    // TCP only needs a small runtime; UDP is served from the server's own threads.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = DnsServer::start(
            served.clone(),
            &ServerConfig::new(vec![listen])
                .with_udp_workers(workers)
                .with_rate_limit(rate_limit.clone()),
        )?;
        eprintln!(
            "serving {} (serial {}) on {:?} with {workers} udp worker(s), rate limit {rate_limit:?}; \
             ctrl-c to stop",
            served.origin(),
            served.serial(),
            server.local_addrs()
        );
        tokio::signal::ctrl_c().await?;
        server.shutdown().await;
        Ok(())
    })
}
