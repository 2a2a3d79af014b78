//! UDP workers: one thread per socket, answering queries in batches (`recvmmsg`/`sendmmsg` on Linux).
//!
//! The answer itself costs tens of nanoseconds; a worker's time goes to system calls and the
//! kernel's per-packet work. So on Linux a worker takes every queued query with one `recvmmsg`,
//! answers them all, and sends the responses with one `sendmmsg`. Elsewhere it falls back to one
//! `recv_from` and one `send_to` per query. Either way: no allocation per query once the response
//! buffers have grown to the largest answer, a stop flag looked at every [`STOP_POLL`] at least,
//! and a packet that does not fit or a send that fails never stops the worker.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::error::DnsError;
use crate::responder::Responder;

/// How often a UDP worker blocked in a receive looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Largest UDP query read; anything longer arrives truncated and is answered FORMERR.
const UDP_QUERY_MAX: usize = 4096;

/// Initial capacity of a response buffer: any UDP answer without EDNS. A buffer that needs more
/// grows once and keeps its capacity, so there is no allocation per query in steady state.
const RESPONSE_CAPACITY: usize = 512;

/// A UDP socket bound to `addr`, with the read timeout the stop flag needs.
pub(crate) fn udp_socket(addr: SocketAddr, reuse_port: bool) -> Result<UdpSocket, DnsError> {
    let error = |source| DnsError::bind("udp", addr, source);
    let socket =
        Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(error)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(error)?;
    }
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuse_port(true).map_err(error)?;
    }
    #[cfg(not(unix))]
    let _ = reuse_port;
    // Room for bursts; the kernel caps it at net.core.rmem_max, which is fine.
    let _ = socket.set_recv_buffer_size(1 << 20);
    socket.bind(&addr.into()).map_err(error)?;
    socket.set_read_timeout(Some(STOP_POLL)).map_err(error)?;
    Ok(socket.into())
}

/// One UDP worker: receive, answer, send, until `stop` is set.
pub(crate) fn serve_udp(socket: &UdpSocket, responder: &Responder, stop: &AtomicBool) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    batched::serve(socket, responder, stop);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    serve_one_by_one(socket, responder, stop);
}

/// After a failed receive: nothing for the read timeout (WouldBlock on Unix, TimedOut on
/// Windows) or a signal; otherwise (ICMP errors from earlier sends and the like) a log line and a
/// pause, never a spin on a broken socket.
fn back_off_after(error: &io::Error) {
    if !matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    ) {
        tracing::debug!(%error, "udp receive failed");
        thread::sleep(Duration::from_millis(1));
    }
}

/// The portable worker: one system call per query and one per response.
#[cfg(any(test, not(any(target_os = "linux", target_os = "android"))))]
fn serve_one_by_one(socket: &UdpSocket, responder: &Responder, stop: &AtomicBool) {
    use std::sync::atomic::Ordering;

    let mut query = vec![0u8; UDP_QUERY_MAX];
    let mut response = Vec::with_capacity(RESPONSE_CAPACITY);
    while !stop.load(Ordering::Relaxed) {
        let (len, peer) = match socket.recv_from(&mut query) {
            Ok(received) => received,
            Err(error) => {
                back_off_after(&error);
                continue;
            }
        };
        if peer.port() == 0 {
            continue;
        }
        if responder.answer_udp(&query[..len], peer.ip(), responder.now(), &mut response) {
            if let Err(error) = socket.send_to(&response, peer) {
                tracing::debug!(%error, %peer, "udp send failed");
            }
        }
    }
}

/// The Linux worker: `recvmmsg` takes up to [`BATCH`](batched::BATCH) queued queries in one call;
/// their responses leave in a few `sendmmsg` calls, grouped with UDP GSO where possible.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod batched {
    use std::io::{self, IoSlice, IoSliceMut};
    use std::net::{IpAddr, Ipv6Addr, UdpSocket};
    use std::os::fd::{AsRawFd, RawFd};
    use std::sync::atomic::{AtomicBool, Ordering};

    use nix::errno::Errno;
    use nix::sys::socket::{
        getsockopt, recvmmsg, sendmmsg, sockopt, ControlMessage, MsgFlags, MultiHeaders,
        SockaddrStorage,
    };

    use super::{back_off_after, RESPONSE_CAPACITY, UDP_QUERY_MAX};
    use crate::responder::Responder;

    /// Most queries taken per `recvmmsg`. Under load the socket queue holds many; more per call
    /// means fewer calls, fewer wake-ups of the clients (they get their responses in bursts)
    /// and longer GSO trains. Measured with dnsperf on loopback: 128 costs about 15% less CPU
    /// per query than 64, and 256 no less than 128; it takes 512 KiB of query buffers per worker.
    pub(super) const BATCH: usize = 128;

    /// Batch positions are stored as `u8`.
    const _: () = assert!(BATCH <= 256);

    /// Most datagrams in one GSO send (the kernel's `UDP_MAX_SEGMENTS` is 64 or more).
    const GSO_MAX_SEGMENTS: usize = 64;

    /// Longest response sent with GSO: every segment must fit the path MTU unfragmented, and
    /// 1232 bytes fit the IPv6 minimum (1280) with the headers. Longer ones go one by one.
    const GSO_MAX_SEGMENT_LEN: usize = 1232;

    /// Serves with GSO when the kernel has it (Linux 4.18 and later).
    pub(super) fn serve(socket: &UdpSocket, responder: &Responder, stop: &AtomicBool) {
        // Older kernels ignore the UDP_SEGMENT control message and would send a group as one
        // datagram; they also lack this socket option, which tells them apart.
        let gso = getsockopt(socket, sockopt::UdpGsoSegment).is_ok();
        serve_with(socket, responder, stop, gso);
    }

    /// The worker loop, with or without GSO.
    pub(super) fn serve_with(
        socket: &UdpSocket,
        responder: &Responder,
        stop: &AtomicBool,
        gso: bool,
    ) {
        let Some(mut buffers) = Buffers::new(gso) else {
            return;
        };
        let fd = socket.as_raw_fd();
        while !stop.load(Ordering::Relaxed) {
            match buffers.receive_and_answer(fd, responder) {
                Ok(ready) => buffers.send(fd, ready),
                Err(error) => back_off_after(&error),
            }
        }
    }

    /// The buffers of one worker, allocated once.
    struct Buffers {
        queries: Box<[[u8; UDP_QUERY_MAX]; BATCH]>,
        responses: [Vec<u8>; BATCH],
        /// The receiver of each response of the current batch.
        peers: [Option<SockaddrStorage>; BATCH],
        receive_headers: MultiHeaders<SockaddrStorage>,
        send_headers: MultiHeaders<SockaddrStorage>,
        /// Like `send_headers`, with room for a `UDP_SEGMENT` control message each.
        gso_headers: MultiHeaders<SockaddrStorage>,
        /// Whether to group responses with GSO (cleared when the kernel refuses it).
        gso: bool,
        /// The receivers of one `sendmmsg`.
        scratch_peers: [Option<SockaddrStorage>; BATCH],
    }

    /// Batch positions of responses still to send one by one.
    struct Singles {
        positions: [u8; BATCH],
        len: usize,
    }

    impl Singles {
        fn push(&mut self, position: u8) {
            if let Some(slot) = self.positions.get_mut(self.len) {
                *slot = position;
                self.len += 1;
            }
        }

        fn as_slice(&self) -> &[u8] {
            &self.positions[..self.len]
        }
    }

    impl Buffers {
        fn new(gso: bool) -> Option<Self> {
            let queries = vec![[0u8; UDP_QUERY_MAX]; BATCH]
                .into_boxed_slice()
                .try_into()
                .ok()?;
            Some(Self {
                queries,
                responses: std::array::from_fn(|_| Vec::with_capacity(RESPONSE_CAPACITY)),
                peers: [None; BATCH],
                receive_headers: MultiHeaders::preallocate(BATCH, None),
                send_headers: MultiHeaders::preallocate(BATCH, None),
                gso_headers: MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(u16))),
                gso,
                scratch_peers: [None; BATCH],
            })
        }

        /// Waits (up to the socket's read timeout) for one query, takes whatever else is
        /// queued (up to [`BATCH`]) and answers them all; returns how many responses are ready.
        fn receive_and_answer(&mut self, fd: RawFd, responder: &Responder) -> io::Result<usize> {
            let Self {
                queries,
                responses,
                peers,
                receive_headers,
                ..
            } = self;
            let mut slices = queries.each_mut().map(|query| [IoSliceMut::new(query)]);
            let results = recvmmsg(
                fd,
                receive_headers,
                &mut slices,
                MsgFlags::MSG_WAITFORONE,
                None,
            )?;
            let mut ready = 0;
            let now = responder.now();
            for message in results {
                let Some(peer) = message.address.filter(|peer| peer_key(Some(peer)).1 != 0) else {
                    continue;
                };
                // Empty datagrams have no slice; they would not be answered anyway.
                let Some(query) = message.iovs().next() else {
                    continue;
                };
                if responder.answer_udp(query, peer_ip(&peer), now, &mut responses[ready]) {
                    peers[ready] = Some(peer);
                    ready += 1;
                }
            }
            Ok(ready)
        }

        /// Sends the first `ready` responses.
        ///
        /// Responses to the same client with the same length leave as one UDP GSO send
        /// (`UDP_SEGMENT`), which the kernel cuts back into the very same datagrams: one trip
        /// through the IP stack per group instead of per response. That pays when a client
        /// sends many queries from one port (forwarders, load generators); otherwise the groups
        /// are single responses and the cost is one sort of the batch.
        fn send(&mut self, fd: RawFd, ready: usize) {
            let mut singles = Singles {
                positions: [0; BATCH],
                len: 0,
            };
            if self.gso && ready > 1 {
                // By length, then client, then arrival: each group is a contiguous run.
                let mut keys: [SendKey; BATCH] = std::array::from_fn(|position| {
                    let peer = peer_key(self.peers[position].as_ref());
                    SendKey {
                        length: self.responses[position].len(),
                        address: peer.0,
                        port: peer.1,
                        position: position as u8,
                    }
                });
                let keys = &mut keys[..ready];
                keys.sort_unstable();
                for block in keys.chunk_by(|a, b| a.length == b.length) {
                    if block[0].length <= GSO_MAX_SEGMENT_LEN && self.gso {
                        self.send_trains(fd, block, &mut singles);
                    } else {
                        block.iter().for_each(|key| singles.push(key.position));
                    }
                }
            } else {
                (0..ready).for_each(|position| singles.push(position as u8));
            }
            self.send_each(fd, singles.as_slice());
        }

        /// Sends `block` (responses of one length, ordered by client) as one GSO datagram train
        /// per client; lone responses, and those of a train the kernel refuses, are left in
        /// `singles`.
        fn send_trains(&mut self, fd: RawFd, block: &[SendKey], singles: &mut Singles) {
            let Ok(segment) = u16::try_from(block[0].length) else {
                block.iter().for_each(|key| singles.push(key.position));
                return;
            };
            let Self {
                responses,
                peers,
                gso_headers,
                scratch_peers,
                gso,
                ..
            } = self;
            let iov: [IoSlice<'_>; BATCH] = std::array::from_fn(|index| {
                let position = block.get(index).map(|key| usize::from(key.position));
                IoSlice::new(position.map_or(&[][..], |position| &responses[position]))
            });
            let mut trains: [&[IoSlice<'_>]; BATCH] = [&[]; BATCH];
            let mut firsts = [0usize; BATCH];
            let mut count = 0;
            let mut first = 0;
            for train in block.chunk_by(|a, b| (a.address, a.port) == (b.address, b.port)) {
                for part in train.chunks(GSO_MAX_SEGMENTS) {
                    if let [lone] = part {
                        singles.push(lone.position);
                    } else {
                        trains[count] = &iov[first..first + part.len()];
                        scratch_peers[count] = peers[usize::from(part[0].position)];
                        firsts[count] = first;
                        count += 1;
                    }
                    first += part.len();
                }
            }
            let control = [ControlMessage::UdpGsoSegments(&segment)];
            let mut sent = 0;
            while sent < count {
                match sendmmsg(
                    fd,
                    gso_headers,
                    &trains[sent..count],
                    &scratch_peers[sent..count],
                    control,
                    MsgFlags::empty(),
                ) {
                    // After a partial send the next call starts with the refused train, and so
                    // reports its error.
                    Ok(results) => sent += results.count().max(1),
                    Err(Errno::EINTR) => {}
                    Err(error) => {
                        // EIO: no checksum offload on the route (older kernels) or IPsec.
                        if matches!(error, Errno::EIO | Errno::EINVAL | Errno::ENOPROTOOPT) {
                            tracing::debug!(%error, "udp gso refused, sending one by one from now on");
                            *gso = false;
                        }
                        let train = &block[firsts[sent]..firsts[sent] + trains[sent].len()];
                        train.iter().for_each(|key| singles.push(key.position));
                        sent += 1;
                    }
                }
            }
        }

        /// Sends the responses at batch `positions`, one datagram each. A response the kernel
        /// refuses (a spoofed broadcast sender, no route) is logged and skipped; the rest go.
        fn send_each(&mut self, fd: RawFd, positions: &[u8]) {
            let Self {
                responses,
                peers,
                send_headers,
                scratch_peers,
                ..
            } = self;
            let slices: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|index| {
                let position = positions.get(index).map(|&position| usize::from(position));
                [IoSlice::new(
                    position.map_or(&[][..], |position| &responses[position]),
                )]
            });
            for (slot, &position) in scratch_peers.iter_mut().zip(positions) {
                *slot = peers[usize::from(position)];
            }
            let count = positions.len();
            let no_control: [ControlMessage<'_>; 0] = [];
            let mut start = 0;
            while start < count {
                match sendmmsg(
                    fd,
                    send_headers,
                    &slices[start..count],
                    &scratch_peers[start..count],
                    no_control,
                    MsgFlags::empty(),
                ) {
                    // After a partial send the next call starts with the refused message, and
                    // so reports its error.
                    Ok(results) => start += results.count().max(1),
                    Err(Errno::EINTR) => {}
                    Err(error) => {
                        tracing::debug!(%error, peer = ?scratch_peers[start], "udp send failed");
                        start += 1;
                    }
                }
            }
        }
    }

    /// Where a response goes in the send order: by length, then client, then arrival.
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    struct SendKey {
        length: usize,
        address: u128,
        port: u16,
        position: u8,
    }

    /// The IP address of a sender (IPv4 as such, so that rate limiting sees its prefix).
    fn peer_ip(address: &SockaddrStorage) -> IpAddr {
        match address.as_sockaddr_in() {
            Some(v4) => IpAddr::V4(v4.ip()),
            None => IpAddr::V6(Ipv6Addr::from_bits(peer_key(Some(address)).0)),
        }
    }

    /// A client's address and port as one sortable key; port 0 (never a real sender) for an
    /// address of another family.
    fn peer_key(address: Option<&SockaddrStorage>) -> (u128, u16) {
        if let Some(v4) = address.and_then(SockaddrStorage::as_sockaddr_in) {
            (u128::from(v4.ip().to_bits()), v4.port())
        } else if let Some(v6) = address.and_then(SockaddrStorage::as_sockaddr_in6) {
            (v6.ip().to_bits(), v6.port())
        } else {
            (0, 0)
        }
    }

    #[cfg(test)]
    #[allow(clippy::unwrap_used)] // tests
    mod tests {
        use std::net::SocketAddr;
        use std::time::Duration;

        use super::*;

        #[test]
        fn a_refused_response_does_not_stop_the_others() {
            // Broadcast without SO_BROADCAST: the kernel refuses it (EACCES), as it would a
            // query with a spoofed broadcast sender.
            let refused: SocketAddr = "255.255.255.255:53".parse().unwrap();
            for gso in [true, false] {
                let server = UdpSocket::bind("127.0.0.1:0").unwrap();
                let client = UdpSocket::bind("127.0.0.1:0").unwrap();
                client
                    .set_read_timeout(Some(Duration::from_millis(300)))
                    .unwrap();
                let receivers = [client.local_addr().unwrap(), refused];
                let mut buffers = Buffers::new(gso).unwrap();
                // Equal lengths, alternating receivers: with GSO, one train each.
                for position in 0..6 {
                    buffers.responses[position] = vec![position as u8; 40];
                    buffers.peers[position] = Some(SockaddrStorage::from(receivers[position % 2]));
                }
                buffers.send(server.as_raw_fd(), 6);
                let mut got = Vec::new();
                let mut buffer = [0u8; 100];
                while let Ok(len) = client.recv(&mut buffer) {
                    got.push(buffer[..len].to_vec());
                }
                let expected: Vec<Vec<u8>> = [0u8, 2, 4].iter().map(|&b| vec![b; 40]).collect();
                assert_eq!(got, expected, "gso {gso}");
                assert_eq!(
                    buffers.gso, gso,
                    "a refused receiver is no reason to give up GSO"
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use super::*;
    use crate::answer::Transport;
    use crate::{ManagedName, ServedZone, Zone};

    const ZONE: &str = "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns1 admin 1 10 10 10 10\n\
                        @ IN NS ns1\n@ IN NS ns2\nns1 IN A 10.0.0.53\nns2 IN A 10.0.0.54\n\
                        www IN A 10.1.0.1\n";

    type Worker = fn(&UdpSocket, &Responder, &AtomicBool);

    fn served() -> (tempfile::TempDir, ServedZone) {
        let state = tempfile::tempdir().unwrap();
        let zone = Zone::parse("test", ZONE).unwrap();
        let served = ServedZone::new(zone, &[ManagedName::new("www", 10)], state.path()).unwrap();
        (state, served)
    }

    /// A query with the given ID for one of a few names and types (answers of several lengths).
    fn query(id: u16) -> Vec<u8> {
        let mut packet = id.to_be_bytes().to_vec();
        packet.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        let (name, qtype): (&[u8], u16) = match id % 5 {
            0 => (b"\x03www\x04test\x02ru\x00", 1),
            1 => (b"\x04test\x02ru\x00", 2),
            2 => (b"\x02nx\x04test\x02ru\x00", 1),
            3 => (b"\x04test\x02ru\x00", 6),
            _ => (b"\x03www\x04test\x02ru\x00", 28),
        };
        packet.extend_from_slice(name);
        packet.extend_from_slice(&qtype.to_be_bytes());
        packet.extend_from_slice(&[0, 1]);
        packet
    }

    /// Runs `worker` on a loopback socket, sends `count` queries at once from three clients
    /// (plus one longer than the buffer) and checks every client gets exactly the in-process
    /// answers, byte for byte; then stops the worker.
    fn check_worker(worker: Worker, count: u16) {
        let (_state, zone) = served();
        let socket = udp_socket("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let responder = Responder::new(zone.clone(), Arc::from([]), None);
            let stop = Arc::clone(&stop);
            thread::spawn(move || worker(&socket, &responder, &stop))
        };
        let clients: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut expected: Vec<HashMap<u16, Vec<u8>>> = vec![HashMap::new(); clients.len()];
        let mut send = |client: usize, packet: &[u8], answered: &[u8]| {
            clients[client].send_to(packet, addr).unwrap();
            let mut response = Vec::new();
            if zone.answer(answered, Transport::Udp, &mut response) {
                let id = u16::from_be_bytes([response[0], response[1]]);
                assert!(expected[client].insert(id, response).is_none());
            }
        };
        // A query padded past the buffer: the worker sees (and answers) its first 4096 bytes.
        let mut oversized = query(count);
        oversized.resize(UDP_QUERY_MAX + 100, 0);
        send(0, &oversized, &oversized[..UDP_QUERY_MAX]);
        for id in 0..count {
            let packet = query(id);
            send(usize::from(id % 3), &packet, &packet);
        }
        let mut buffer = [0u8; 65535];
        for (client, expected) in clients.iter().zip(expected) {
            client
                .set_read_timeout(Some(Duration::from_secs(3)))
                .unwrap();
            let mut got = HashMap::new();
            while got.len() < expected.len() {
                let (len, from) = client.recv_from(&mut buffer).unwrap();
                assert_eq!(from, addr);
                let id = u16::from_be_bytes([buffer[0], buffer[1]]);
                assert!(
                    got.insert(id, buffer[..len].to_vec()).is_none(),
                    "answer {id} twice"
                );
            }
            assert_eq!(got, expected);
        }
        stop.store(true, Ordering::Relaxed);
        thread.join().unwrap();
    }

    #[test]
    fn worker_answers_a_burst_larger_than_a_batch() {
        check_worker(serve_udp, 300);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn batched_worker_without_gso_answers_the_same() {
        check_worker(
            |socket, responder, stop| batched::serve_with(socket, responder, stop, false),
            300,
        );
    }

    #[test]
    fn portable_worker_answers_every_query() {
        check_worker(serve_one_by_one, 50);
    }
}
