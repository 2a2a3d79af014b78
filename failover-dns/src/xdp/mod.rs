//! The opt-in AF_XDP listener (feature `xdp`, Linux): UDP queries answered straight from the
//! receive queues' frames, past the kernel's socket layer.
//!
//! A small XDP program on the interface (`xdp/redirect.c`) sends UDP datagrams to the served
//! port and address to an AF_XDP socket per receive queue, and passes everything else to the
//! kernel: TCP, ARP and neighbour discovery, fragments, IPv4 options, IPv6 extension headers,
//! VLAN tags, other ports, and the queues without a socket. One worker thread per socket takes
//! its frames in batches, answers each with the same [`Responder`] as the UDP workers (the
//! precomputed fast path without allocation, rate limiting, counters) and writes the answer in
//! the query's own frame, headers swapped, onto the TX ring. An answer longer than the link's
//! MTU leaves through the kernel's UDP socket instead, which fragments it. The normal UDP and
//! TCP listeners keep running beside it.
//!
//! What is deliberately not here: zero-copy tuning (the driver picks copy or zero-copy), VLAN
//! tags, answers through another interface than the query came in on (the answer goes back to
//! the sender's MAC address, as Knot's `xdp-listen` does without its route option).

mod frame;
mod program;
mod ring;
mod worker;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread;

use crate::counters::AnswerCounters;
use crate::error::DnsError;
use crate::responder::Responder;
use program::{Filter, Program};
use ring::XdpSocket;
use worker::Fallback;

/// Where the AF_XDP listener takes its queries: an interface and some of its receive queues.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct XdpConfig {
    /// The network interface (`eth0`) the queries arrive on.
    pub interface: String,
    /// Its receive queues to serve, one socket and thread each; `None` for all of them. Frames
    /// on other queues go to the kernel's path.
    pub queues: Option<Vec<u32>>,
}

impl XdpConfig {
    /// Serves every receive queue of `interface`.
    pub fn new(interface: impl Into<String>) -> Self {
        Self {
            interface: interface.into(),
            queues: None,
        }
    }

    /// Serves only these receive queues.
    pub fn with_queues(mut self, queues: Vec<u32>) -> Self {
        self.queues = Some(queues);
        self
    }

    /// Whether the XDP program can match these listen addresses (one fixed port, at most one
    /// address per family); what is wrong otherwise.
    pub fn check_listen(listen: &[SocketAddr]) -> Result<(), String> {
        Filter::for_listen(listen).map(|_| ())
    }
}

/// A running AF_XDP listener: the attached program and the workers' threads. Dropping it (after
/// the workers have stopped) detaches the program.
#[derive(Debug)]
pub(crate) struct XdpListener {
    /// Detaches the program from the interface when dropped.
    _program: Program,
    pub(crate) threads: Vec<thread::JoinHandle<()>>,
    pub(crate) counters: Vec<Arc<AnswerCounters>>,
}

impl XdpListener {
    /// Opens a socket per receive queue of `config`, attaches the program for `listen` and
    /// starts a worker per socket, answering with copies of `responder` until `stop` is set.
    /// `udp` are the server's UDP sockets, which send answers too long for a frame.
    pub(crate) fn start(
        config: &XdpConfig,
        listen: &[SocketAddr],
        udp: &[UdpSocket],
        responder: &Responder,
        stop: &Arc<AtomicBool>,
    ) -> Result<Self, DnsError> {
        let interface = &config.interface;
        let error = |reason: String| DnsError::Xdp {
            interface: interface.clone(),
            reason,
        };
        let filter = Filter::for_listen(listen).map_err(error)?;
        let device = Path::new("/sys/class/net").join(interface);
        let ifindex: u32 = read_number(&device.join("ifindex")).map_err(|e| {
            error(format!(
                "no such network interface ({e}; `ip link` lists them)"
            ))
        })?;
        let mtu: usize = read_number(&device.join("mtu")).map_err(|e| error(e.to_string()))?;
        let queues = match &config.queues {
            Some(queues) => queues.clone(),
            None => receive_queues(&device).map_err(|e| error(e.to_string()))?,
        };
        let mut sockets = Vec::with_capacity(queues.len());
        for &queue in &queues {
            let socket = XdpSocket::open(ifindex, queue)
                .map_err(|e| error(format!("AF_XDP socket on queue {queue}: {e}{}", hint(&e))))?;
            sockets.push((queue, socket));
        }
        let mut program = Program::attach(&filter, ifindex)
            .map_err(|e| error(format!("XDP program: {}{}", chain(&e), errno_hint(&e))))?;
        for (queue, socket) in &sockets {
            program
                .register(*queue, socket.fd())
                .map_err(|e| error(format!("XSKMAP entry of queue {queue}: {}", chain(&e))))?;
        }
        let mut listener = Self {
            _program: program,
            threads: Vec::new(),
            counters: Vec::new(),
        };
        for (queue, socket) in sockets {
            let fallback = Fallback {
                v4: fallback_socket(listen, udp, true),
                v6: fallback_socket(listen, udp, false),
            };
            let responder = responder.with_own_counters(false);
            listener.counters.push(Arc::clone(&responder.counters));
            let stop = Arc::clone(stop);
            // The frame limit: the MTU plus the Ethernet header.
            let frame_limit = mtu + 14;
            let thread = thread::Builder::new()
                .name(format!("dns-xdp-{interface}-{queue}"))
                .spawn(move || worker::serve(socket, &responder, &fallback, frame_limit, &stop))
                .map_err(DnsError::Spawn)?;
            listener.threads.push(thread);
        }
        tracing::info!(%interface, ?queues, "dns af_xdp listener started");
        Ok(listener)
    }
}

/// A copy of the server's UDP socket for the family (IPv4 when `v4`), if it serves it.
fn fallback_socket(listen: &[SocketAddr], udp: &[UdpSocket], v4: bool) -> Option<UdpSocket> {
    let position = listen.iter().position(|a| a.is_ipv4() == v4)?;
    udp.get(position)?.try_clone().ok()
}

/// A number from a sysfs file.
fn read_number<T: std::str::FromStr>(path: &Path) -> io::Result<T> {
    let text = std::fs::read_to_string(path)?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::other(format!("{}: not a number: {text:?}", path.display())))
}

/// The receive queues of the interface at `device` (`queues/rx-N` in sysfs).
fn receive_queues(device: &Path) -> io::Result<Vec<u32>> {
    let mut queues: Vec<u32> = std::fs::read_dir(device.join("queues"))?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            name.to_str()?.strip_prefix("rx-")?.parse().ok()
        })
        .collect();
    queues.sort_unstable();
    if queues.is_empty() {
        return Err(io::Error::other("the interface has no receive queues"));
    }
    Ok(queues)
}

/// An error with its sources, `: `-separated.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The fix for an error of the operating system from setting up AF_XDP, starting with `; `.
fn hint(error: &io::Error) -> &'static str {
    match error.raw_os_error() {
        Some(code) if code == rustix::io::Errno::PERM.raw_os_error() => {
            "; AF_XDP needs CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_IPC_LOCK: run as root or \
             grant them (packaging/failoverd.service.d/xdp.conf)"
        }
        Some(code) if code == rustix::io::Errno::AFNOSUPPORT.raw_os_error() => {
            "; this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS): remove [zone.xdp]"
        }
        Some(code) if code == rustix::io::Errno::BUSY.raw_os_error() => {
            "; another AF_XDP socket serves this queue (another daemon's xdp listener?)"
        }
        Some(code) if code == rustix::io::Errno::INVAL.raw_os_error() => {
            "; no such receive queue on this interface (see /sys/class/net/IFACE/queues)"
        }
        Some(code) if code == rustix::io::Errno::NOMEM.raw_os_error() => {
            "; the frames cannot be locked in memory: grant CAP_IPC_LOCK or raise LimitMEMLOCK"
        }
        _ => "",
    }
}

/// [`hint`] for the first operating system error among `error`'s sources.
fn errno_hint(error: &(dyn std::error::Error + 'static)) -> &'static str {
    let mut source = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            if io.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error())
                || io.raw_os_error() == Some(rustix::io::Errno::EXIST.raw_os_error())
            {
                return "; the interface has an XDP program already (`ip link show` names it; \
                        `ip link set IFACE xdp off` removes it)";
            }
            return hint(io);
        }
        source = cause.source();
    }
    ""
}
