//! One AF_XDP worker: takes the frames of its receive queue in batches, answers each in its own
//! frame and puts it on the TX ring, until told to stop.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::event::Timespec;

use super::frame::{self, Query};
use super::ring::XdpSocket;
use crate::responder::Responder;

/// Most frames taken from the RX ring per round.
const BATCH: u32 = 64;

/// Initial capacity of the answer buffer: any UDP answer without EDNS. It grows once to the
/// largest answer and keeps its capacity: no allocation per query in steady state.
const ANSWER_CAPACITY: usize = 512;

/// What a worker sends through the kernel instead of a frame: answers longer than the link's
/// MTU, which only the kernel's path can fragment.
#[derive(Debug)]
pub(super) struct Fallback {
    /// A UDP socket on the served IPv4 address and port, if IPv4 is served.
    pub(super) v4: Option<UdpSocket>,
    /// The same for IPv6.
    pub(super) v6: Option<UdpSocket>,
}

/// Serves `socket` with `responder` until `stop` is set; `frame_limit` is the longest frame the
/// link takes (its MTU plus the Ethernet header).
pub(super) fn serve(
    mut socket: XdpSocket,
    responder: &Responder,
    fallback: &Fallback,
    frame_limit: usize,
    stop: &AtomicBool,
) {
    let mut answer = Vec::with_capacity(ANSWER_CAPACITY);
    let poll_timeout = Timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    while !stop.load(Ordering::Relaxed) {
        let received = socket.received(BATCH);
        if received == 0 {
            socket.complete();
            socket.refill();
            socket.wait(&poll_timeout);
            continue;
        }
        let room = socket.tx_room(received);
        let now = responder.now();
        let mut sent = 0;
        for index in 0..received {
            let frame = socket.take(index);
            let answered = if sent < room {
                let bytes = socket.frame_mut(frame.address);
                let context = (responder, now, frame_limit);
                answer_frame(bytes, frame.len as usize, context, &mut answer)
            } else {
                None // the TX ring is full: dropped, as a full socket buffer drops
            };
            match answered {
                Some(Answered::InFrame(len)) => {
                    socket.send(sent, frame.address, len);
                    sent += 1;
                }
                Some(Answered::Oversized(peer)) => {
                    send_through_kernel(fallback, &answer, peer);
                    socket.recycle(frame.address);
                }
                None => socket.recycle(frame.address),
            }
        }
        socket.taken(received);
        socket.flush(sent);
        socket.refill();
    }
}

/// What became of one query frame.
enum Answered {
    /// The answer is in the frame, this long.
    InFrame(u32),
    /// The answer is in the answer buffer, too long for a frame: it goes to this client
    /// through the kernel.
    Oversized(SocketAddr),
}

/// Answers the query in `frame` (`len` bytes received) in place, with the responder, its
/// clock's second and the longest frame the link takes; `None` when nothing is sent (not a
/// query, or the responder sends nothing: malformed, rate limited).
fn answer_frame(
    frame: &mut [u8],
    len: usize,
    (responder, now, frame_limit): (&Responder, u32, usize),
    answer: &mut Vec<u8>,
) -> Option<Answered> {
    let received = frame.get(..len)?;
    let query = frame::parse(received)?;
    let peer = client(received, &query);
    if !responder.answer_udp(query.message(received), query.peer, now, answer) {
        return None;
    }
    let limit = frame.len().min(frame_limit);
    Some(
        match frame::answer_in_place(&mut frame[..limit], &query, answer) {
            Some(total) => Answered::InFrame(total as u32),
            None => Answered::Oversized(peer),
        },
    )
}

/// Sends an answer too long for one frame from the served address through the kernel's UDP
/// socket (which fragments it as the socket path would).
fn send_through_kernel(fallback: &Fallback, answer: &[u8], peer: SocketAddr) {
    let socket = match peer.ip() {
        IpAddr::V4(_) => fallback.v4.as_ref(),
        IpAddr::V6(_) => fallback.v6.as_ref(),
    };
    if let Some(socket) = socket {
        if let Err(error) = socket.send_to(answer, peer) {
            tracing::debug!(%error, %peer, "udp send failed");
        }
    }
}

/// The client's address and port from a parsed query frame.
fn client(frame: &[u8], query: &Query) -> SocketAddr {
    let udp = query.headers - 8;
    let port = u16::from_be_bytes([frame[udp], frame[udp + 1]]);
    SocketAddr::new(query.peer, port)
}
