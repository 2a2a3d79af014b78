//! [`DnsServer`]: UDP worker threads and TCP tasks serving a [`ServedZone`].

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::answer::Transport;
use crate::counters::{self, AnswerCounters, QueryOutcome, ServerStats, StatsReader};
use crate::error::DnsError;
use crate::responder::Responder;
use crate::rrl::{RateLimitConfig, RateLimiter};
use crate::secondaries::{Secondaries, SecondariesConfig};
use crate::served::ServedZone;
use crate::udp::{serve_udp, udp_socket};
use crate::xfr::{self, TransferAcl};

/// Where and how the server listens.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The addresses to serve on, UDP and TCP each (port 0 picks one free port for both).
    pub listen: Vec<SocketAddr>,
    /// UDP sockets (one thread each) per address, sharing it with `SO_REUSEPORT` when above 1.
    pub udp_workers: usize,
    /// Most TCP connections open at once; more are closed on accept.
    pub tcp_max_connections: usize,
    /// A TCP connection idle (or stalled mid-message) this long is closed.
    pub tcp_idle_timeout: Duration,
    /// Who may transfer the zone (AXFR, IXFR over TCP); nobody by default.
    pub transfer: TransferAcl,
    /// The secondaries told of every serial change (RFC 1996 NOTIFY); none by default.
    pub secondaries: SecondariesConfig,
    /// Response rate limiting over UDP: on by default ([`RateLimitConfig::default`]), `None`
    /// to switch it off.
    pub rate_limit: Option<RateLimitConfig>,
    /// The AF_XDP listener beside the sockets (feature `xdp`, Linux); none by default.
    #[cfg(all(feature = "xdp", target_os = "linux"))]
    pub xdp: Option<crate::XdpConfig>,
}

/// UDP workers (sockets, threads) per listen address, unless configured otherwise.
pub const DEFAULT_UDP_WORKERS: usize = 1;

impl ServerConfig {
    /// Listens on `listen` with one UDP worker per address, 256 TCP connections, 10 s TCP idle
    /// timeout, response rate limiting on with its default values.
    pub fn new(listen: Vec<SocketAddr>) -> Self {
        Self {
            listen,
            udp_workers: DEFAULT_UDP_WORKERS,
            tcp_max_connections: 256,
            tcp_idle_timeout: Duration::from_secs(10),
            transfer: TransferAcl::deny_all(),
            secondaries: SecondariesConfig::default(),
            rate_limit: Some(RateLimitConfig::default()),
            #[cfg(all(feature = "xdp", target_os = "linux"))]
            xdp: None,
        }
    }

    /// Also answers UDP queries through an AF_XDP listener on an interface (feature `xdp`,
    /// Linux). The listen addresses must then share one port and have at most one address per
    /// family: the XDP program matches those.
    #[cfg(all(feature = "xdp", target_os = "linux"))]
    pub fn with_xdp(mut self, xdp: crate::XdpConfig) -> Self {
        self.xdp = Some(xdp);
        self
    }

    /// Sets response rate limiting (`None`: off).
    pub fn with_rate_limit(mut self, rate_limit: Option<RateLimitConfig>) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    /// Sets who may transfer the zone.
    pub fn with_transfer_acl(mut self, transfer: TransferAcl) -> Self {
        self.transfer = transfer;
        self
    }

    /// Sets the secondaries to send NOTIFY to, and how.
    pub fn with_secondaries(mut self, secondaries: SecondariesConfig) -> Self {
        self.secondaries = secondaries;
        self
    }

    /// Sets the number of UDP workers per address.
    pub fn with_udp_workers(mut self, udp_workers: usize) -> Self {
        self.udp_workers = udp_workers;
        self
    }

    /// Sets the TCP connection limit.
    pub fn with_tcp_max_connections(mut self, tcp_max_connections: usize) -> Self {
        self.tcp_max_connections = tcp_max_connections;
        self
    }

    /// Sets the TCP idle timeout.
    pub fn with_tcp_idle_timeout(mut self, tcp_idle_timeout: Duration) -> Self {
        self.tcp_idle_timeout = tcp_idle_timeout;
        self
    }
}

/// A running DNS server. It owns its threads and tasks: [`shutdown`](Self::shutdown) stops and
/// joins them; dropping it stops them too (UDP threads then exit within 100 ms on their own).
#[derive(Debug)]
pub struct DnsServer {
    local_addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    udp_threads: Vec<thread::JoinHandle<()>>,
    tcp_tasks: Vec<tokio::task::JoinHandle<()>>,
    secondaries: Option<Secondaries>,
    /// One per UDP worker thread, written by that thread only.
    udp_counters: Vec<Arc<AnswerCounters>>,
    /// One per TCP listener, shared by its connections.
    tcp_counters: Vec<Arc<AnswerCounters>>,
    /// The AF_XDP listener, if configured (its workers' counters are among `udp_counters`).
    #[cfg(all(feature = "xdp", target_os = "linux"))]
    xdp: Option<crate::xdp::XdpListener>,
}

impl DnsServer {
    /// Binds every address of `config` (UDP and TCP) and starts serving `zone`.
    ///
    /// UDP is served from dedicated threads (blocking receive, no async overhead per query); TCP
    /// from tasks on the current tokio runtime, which must exist.
    pub fn start(zone: ServedZone, config: &ServerConfig) -> Result<Self, DnsError> {
        if config.listen.is_empty() {
            return Err(DnsError::Config("no listen address".to_owned()));
        }
        if config.udp_workers == 0 || config.tcp_max_connections == 0 {
            return Err(DnsError::Config(
                "udp_workers and tcp_max_connections must be at least 1".to_owned(),
            ));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| DnsError::NoRuntime)?;
        let mut server = Self {
            local_addrs: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            udp_threads: Vec::new(),
            tcp_tasks: Vec::new(),
            secondaries: None,
            udp_counters: Vec::new(),
            tcp_counters: Vec::new(),
            #[cfg(all(feature = "xdp", target_os = "linux"))]
            xdp: None,
        };
        // A copy of each address's first UDP socket, for the AF_XDP listener's long answers.
        #[cfg(all(feature = "xdp", target_os = "linux"))]
        let mut first_udp = Vec::new();
        let connections = Arc::new(Semaphore::new(config.tcp_max_connections));
        let transfer = Arc::new(config.transfer.clone());
        let rate_limiter = config
            .rate_limit
            .clone()
            .map(|rate_limit| Arc::new(RateLimiter::new(rate_limit)));
        let responder = Responder::new(
            zone.clone(),
            Arc::from(config.transfer.keys()),
            rate_limiter,
        );
        for &requested in &config.listen {
            let (udp, tcp, local) = bind_pair(requested, config.udp_workers)?;
            #[cfg(all(feature = "xdp", target_os = "linux"))]
            first_udp.push(
                udp[0]
                    .try_clone()
                    .map_err(|source| DnsError::bind("udp", requested, source))?,
            );
            for (index, socket) in udp.into_iter().enumerate() {
                let responder = responder.with_own_counters(false);
                server.udp_counters.push(Arc::clone(&responder.counters));
                let stop = Arc::clone(&server.stop);
                let thread = thread::Builder::new()
                    .name(format!("dns-udp-{local}-{index}"))
                    .spawn(move || serve_udp(&socket, &responder, &stop))
                    .map_err(DnsError::Spawn)?;
                server.udp_threads.push(thread);
            }
            let listener = {
                let _guard = runtime.enter();
                TcpListener::from_std(tcp)
                    .map_err(|source| DnsError::bind("tcp", requested, source))?
            };
            let tcp_responder = responder.with_own_counters(true);
            server
                .tcp_counters
                .push(Arc::clone(&tcp_responder.counters));
            server.tcp_tasks.push(runtime.spawn(accept_tcp(
                listener,
                tcp_responder,
                Arc::clone(&connections),
                config.tcp_idle_timeout,
                Arc::clone(&transfer),
            )));
            tracing::info!(address = %local, zone = %zone.origin(), "dns server listening");
            server.local_addrs.push(local);
        }
        #[cfg(all(feature = "xdp", target_os = "linux"))]
        if let Some(xdp) = &config.xdp {
            let listener = crate::xdp::XdpListener::start(
                xdp,
                &server.local_addrs,
                &first_udp,
                &responder,
                &server.stop,
            )?;
            server
                .udp_counters
                .extend(listener.counters.iter().cloned());
            server.xdp = Some(listener);
        }
        if !config.secondaries.addresses.is_empty() {
            server.secondaries = Some(Secondaries::start(&zone, &config.secondaries)?);
        }
        Ok(server)
    }

    /// The addresses actually bound, in the order of the config (with real ports for port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// What the server has answered so far, by transport: the workers' counters summed now
    /// (no lock is taken; each count is exact, the set is not one atomic instant).
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            udp: counters::sum(self.udp_counters.iter().map(Arc::as_ref)),
            tcp: counters::sum(self.tcp_counters.iter().map(Arc::as_ref)),
        }
    }

    /// A handle reading the same counts as [`stats`](Self::stats), for a task that does not own
    /// the server (the daemon's metrics endpoint).
    pub fn stats_reader(&self) -> StatsReader {
        StatsReader {
            udp: self.udp_counters.iter().cloned().collect(),
            tcp: self.tcp_counters.iter().cloned().collect(),
        }
    }

    /// Stops serving and waits until every thread and task has finished.
    pub async fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(secondaries) = self.secondaries.take() {
            secondaries.shutdown().await;
        }
        for task in self.tcp_tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        #[allow(unused_mut)] // mutated with the feature `xdp` only
        let mut threads: Vec<_> = self.udp_threads.drain(..).collect();
        #[cfg(all(feature = "xdp", target_os = "linux"))]
        let xdp = self.xdp.take().map(|mut listener| {
            threads.append(&mut listener.threads);
            listener
        });
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
            // The workers are done: now detach the XDP program.
            #[cfg(all(feature = "xdp", target_os = "linux"))]
            drop(xdp);
        })
        .await;
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tcp_tasks {
            task.abort();
        }
    }
}

/// Binds the UDP sockets and the TCP listener of one address, on the same port.
fn bind_pair(
    requested: SocketAddr,
    workers: usize,
) -> Result<(Vec<UdpSocket>, std::net::TcpListener, SocketAddr), DnsError> {
    // With port 0, the port the kernel picks for UDP may be taken for TCP: try a few.
    let attempts = if requested.port() == 0 { 8 } else { 1 };
    let mut last_error = None;
    for _ in 0..attempts {
        let first = udp_socket(requested, workers > 1)?;
        let local = first
            .local_addr()
            .map_err(|source| DnsError::bind("udp", requested, source))?;
        let mut udp = vec![first];
        for _ in 1..workers {
            udp.push(udp_socket(local, true)?);
        }
        match tcp_listener(local) {
            Ok(tcp) => return Ok((udp, tcp, local)),
            Err(error) if requested.port() == 0 => last_error = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last_error
        .unwrap_or_else(|| DnsError::bind("tcp", requested, io::ErrorKind::AddrInUse.into())))
}

fn tcp_listener(addr: SocketAddr) -> Result<std::net::TcpListener, DnsError> {
    let error = |source| DnsError::bind("tcp", addr, source);
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(error)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(error)?;
    }
    socket.set_reuse_address(true).map_err(error)?;
    socket.bind(&addr.into()).map_err(error)?;
    socket.listen(1024).map_err(error)?;
    socket.set_nonblocking(true).map_err(error)?;
    Ok(socket.into())
}

/// Accepts TCP connections until aborted; the connection tasks die with it (their `JoinSet`).
async fn accept_tcp(
    listener: TcpListener,
    responder: Responder,
    connections: Arc<Semaphore>,
    idle: Duration,
    transfer: Arc<TransferAcl>,
) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match Arc::clone(&connections).try_acquire_owned() {
                    Ok(permit) => {
                        let client = Client { peer, transfer: Arc::clone(&transfer) };
                        tasks.spawn(serve_tcp(stream, responder.clone(), idle, permit, client));
                    }
                    Err(_) => tracing::debug!(%peer, "tcp connection limit reached, closing"),
                },
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// Who is at the other end of a TCP connection, and who may transfer the zone.
struct Client {
    peer: SocketAddr,
    transfer: Arc<TransferAcl>,
}

/// Serves one TCP connection: length-prefixed queries, answered in order (pipelining allowed).
async fn serve_tcp(
    mut stream: TcpStream,
    responder: Responder,
    idle: Duration,
    _permit: OwnedSemaphorePermit,
    client: Client,
) {
    let _ = stream.set_nodelay(true);
    let mut query = vec![0u8; usize::from(u16::MAX)];
    let mut response = Vec::with_capacity(4096);
    let mut frame = Vec::with_capacity(4096);
    loop {
        let mut length = [0u8; 2];
        if !matches!(
            timeout(idle, stream.read_exact(&mut length)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let length = usize::from(u16::from_be_bytes(length));
        if !matches!(
            timeout(idle, stream.read_exact(&mut query[..length])).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let request = &query[..length];
        if xfr::is_transfer(request) {
            // One snapshot for the whole transfer, however many publishes happen meanwhile.
            let messages = xfr::respond(
                &responder.zone.snapshot(),
                request,
                client.peer.ip(),
                &client.transfer,
            );
            if let Some(first) = messages.first() {
                responder.record(QueryOutcome::Answered(first));
            }
            for message in &messages {
                if !send_framed(&mut stream, &mut frame, message, idle).await {
                    return;
                }
            }
            continue;
        }
        if responder.answer(request, Transport::Tcp, &mut response)
            && !send_framed(&mut stream, &mut frame, &response, idle).await
        {
            return;
        }
    }
}

/// Writes one length-prefixed message; false when the connection is unusable.
async fn send_framed(
    stream: &mut TcpStream,
    frame: &mut Vec<u8>,
    message: &[u8],
    idle: Duration,
) -> bool {
    let Ok(length) = u16::try_from(message.len()) else {
        return false; // never happens: answers and transfer messages stay below 65535 bytes
    };
    frame.clear();
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(message);
    matches!(timeout(idle, stream.write_all(frame)).await, Ok(Ok(())))
}
