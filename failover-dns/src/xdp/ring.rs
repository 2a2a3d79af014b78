//! One AF_XDP socket bound to one receive queue: its UMEM (the frames, shared with the kernel)
//! and its four rings (fill, completion, RX, TX), on rustix's sockopts and `mmap`.
//!
//! Each ring is a power-of-two array in memory mapped from the socket with a producer and a
//! consumer index; one side only ever advances each index. User space produces into the fill
//! ring (empty frames for the kernel to receive into) and the TX ring (frames to send), and
//! consumes the RX ring (received frames) and the completion ring (sent frames given back).
// The rings and frames are memory the kernel writes too: raw pointers into `mmap`ed areas, read
// and written with the acquire/release ordering the AF_XDP ABI prescribes.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::mm::{mmap, mmap_anonymous, munmap, MapFlags, ProtFlags};
use rustix::net::xdp::{
    SocketAddrXdp, SocketAddrXdpFlags, XdpDesc, XdpDescOptions, XdpRingFlags, XdpRingOffset,
    XdpUmemReg, XdpUmemRegFlags, XDP_PGOFF_RX_RING, XDP_PGOFF_TX_RING,
    XDP_UMEM_PGOFF_COMPLETION_RING, XDP_UMEM_PGOFF_FILL_RING,
};
use rustix::net::{sockopt, AddressFamily, SendFlags, SocketType};

/// Bytes per frame: a whole Ethernet frame of a 1500-byte MTU after the kernel's 256 bytes of
/// headroom.
pub(super) const FRAME_SIZE: u64 = 2048;
/// Frames per socket: the fill ring full, plus as many in flight between RX and TX.
const FRAMES: u32 = 4096;
/// Entries of each ring.
const RING_SIZE: u32 = 2048;

/// A memory mapping, unmapped when dropped.
struct Mapping {
    start: NonNull<c_void>,
    len: usize,
}

impl Mapping {
    /// The address `offset` bytes into the mapping, as a `T` pointer.
    fn at<T>(&self, offset: u64) -> *mut T {
        // Offsets come from the kernel's XDP_MMAP_OFFSETS for this very mapping, so they are
        // within it (checked in `Ring::map`).
        self.start
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(offset as usize)
            .cast()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `start` and `len` are those of a mapping this value made and owns alone; no
        // reference into it outlives `self` (the rings and frames borrow from their owner).
        let _ = unsafe { munmap(self.start.as_ptr(), self.len) };
    }
}

// SAFETY: the mapping is plain memory; the socket that owns it is used by one thread at a time.
unsafe impl Send for Mapping {}

/// One ring of `T` entries mapped from the socket, with local copies of both indices.
struct Ring<T> {
    /// Owns the memory the pointers point into (unmapped when the ring is dropped).
    _mapping: Mapping,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    entries: *mut T,
    mask: u32,
    cached_producer: u32,
    cached_consumer: u32,
}

// SAFETY: the pointers point into `mapping`, which the ring owns; see `Mapping`.
unsafe impl<T: Send> Send for Ring<T> {}

impl<T: Copy> Ring<T> {
    /// Maps the ring at page offset `page` of `fd`, laid out as `offsets` says.
    fn map(fd: BorrowedFd<'_>, offsets: &XdpRingOffset, page: u64) -> io::Result<Self> {
        let entries_len = RING_SIZE as usize * size_of::<T>();
        let len = offsets.desc as usize + entries_len;
        let Some(flags) = offsets.flags else {
            return Err(io::Error::other(
                "the kernel's AF_XDP rings have no flags (Linux 5.4 or later needed)",
            ));
        };
        let within = |offset: u64, size: usize| offset as usize + size <= len;
        if !within(offsets.producer, 4) || !within(offsets.consumer, 4) || !within(flags, 4) {
            return Err(io::Error::other("AF_XDP ring offsets outside the ring"));
        }
        // SAFETY: a fresh shared mapping of the socket's ring at the kernel's page offset; the
        // kernel sizes it (desc offset + entries), and nothing else refers to that address.
        let start = unsafe {
            mmap(
                ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED | MapFlags::POPULATE,
                fd,
                page,
            )
        }?;
        let mapping = Mapping {
            start: NonNull::new(start).ok_or_else(|| io::Error::other("mmap gave null"))?,
            len,
        };
        let producer: *const AtomicU32 = mapping.at(offsets.producer);
        let consumer: *const AtomicU32 = mapping.at(offsets.consumer);
        // SAFETY: both indices are u32s inside the mapping (checked above), aligned as the
        // kernel lays them out, and only read here.
        let (cached_producer, cached_consumer) = unsafe {
            (
                (*producer).load(Ordering::Acquire),
                (*consumer).load(Ordering::Acquire),
            )
        };
        Ok(Self {
            producer,
            consumer,
            flags: mapping.at(flags),
            entries: mapping.at(offsets.desc),
            mask: RING_SIZE - 1,
            cached_producer,
            cached_consumer,
            _mapping: mapping,
        })
    }

    /// Producer side: how many of `wanted` entries there is room for now.
    fn room(&mut self, wanted: u32) -> u32 {
        let used = self.cached_producer.wrapping_sub(self.cached_consumer);
        if RING_SIZE - used < wanted {
            // SAFETY: the kernel's consumer index, inside the mapping (see `map`).
            self.cached_consumer = unsafe { (*self.consumer).load(Ordering::Acquire) };
        }
        wanted.min(RING_SIZE - self.cached_producer.wrapping_sub(self.cached_consumer))
    }

    /// Producer side: writes the entry `index` places after the last one submitted (within
    /// the [`room`](Self::room) found).
    fn write(&mut self, index: u32, value: T) {
        let slot = (self.cached_producer.wrapping_add(index) & self.mask) as usize;
        // SAFETY: `slot` is below RING_SIZE, the number of entries mapped; the kernel does not
        // read this slot until the producer index passes it (`submit`).
        unsafe { self.entries.add(slot).write(value) };
    }

    /// Producer side: hands the next `count` written entries to the kernel.
    fn submit(&mut self, count: u32) {
        self.cached_producer = self.cached_producer.wrapping_add(count);
        // SAFETY: our producer index, inside the mapping; release orders the entries before it.
        unsafe { (*self.producer).store(self.cached_producer, Ordering::Release) };
    }

    /// Consumer side: how many entries (at most `wanted`) are ready.
    fn ready(&mut self, wanted: u32) -> u32 {
        if self.cached_producer == self.cached_consumer {
            // SAFETY: the kernel's producer index, inside the mapping (see `map`).
            self.cached_producer = unsafe { (*self.producer).load(Ordering::Acquire) };
        }
        wanted.min(self.cached_producer.wrapping_sub(self.cached_consumer))
    }

    /// Consumer side: the entry `index` places after the last one released (within the
    /// [`ready`](Self::ready) count).
    fn read(&self, index: u32) -> T {
        let slot = (self.cached_consumer.wrapping_add(index) & self.mask) as usize;
        // SAFETY: `slot` is below RING_SIZE; the kernel wrote it before publishing the
        // producer index read with acquire ordering in `ready`.
        unsafe { self.entries.add(slot).read() }
    }

    /// Consumer side: gives the next `count` entries back to the kernel.
    fn release(&mut self, count: u32) {
        self.cached_consumer = self.cached_consumer.wrapping_add(count);
        // SAFETY: our consumer index, inside the mapping; release orders our reads before it.
        unsafe { (*self.consumer).store(self.cached_consumer, Ordering::Release) };
    }

    /// Whether the kernel asks to be woken (`XDP_RING_NEED_WAKEUP`).
    fn needs_wakeup(&self) -> bool {
        // SAFETY: the flags word inside the mapping (see `map`).
        let flags = unsafe { (*self.flags).load(Ordering::Relaxed) };
        flags & XdpRingFlags::XDP_RING_NEED_WAKEUP.bits() != 0
    }

    /// Entries produced and not yet consumed by the other side.
    fn outstanding(&mut self) -> u32 {
        // SAFETY: the kernel's consumer index, inside the mapping.
        self.cached_consumer = unsafe { (*self.consumer).load(Ordering::Acquire) };
        self.cached_producer.wrapping_sub(self.cached_consumer)
    }
}

/// A received frame: where it is in the UMEM and how long.
#[derive(Clone, Copy, Debug)]
pub(super) struct Received {
    pub(super) address: u64,
    pub(super) len: u32,
}

/// An AF_XDP socket bound to one queue of one interface, with its frames and rings.
pub(super) struct XdpSocket {
    umem: Mapping,
    fill: Ring<u64>,
    completion: Ring<u64>,
    rx: Ring<XdpDesc>,
    tx: Ring<XdpDesc>,
    /// Frames (their start addresses) in no ring: user space's to hand out.
    free: Vec<u64>,
    fd: OwnedFd,
}

impl XdpSocket {
    /// Opens a socket on receive queue `queue` of interface `ifindex` (copy or zero-copy, as
    /// the driver can), its fill ring filled.
    pub(super) fn open(ifindex: u32, queue: u32) -> io::Result<Self> {
        let fd = rustix::net::socket(AddressFamily::XDP, SocketType::RAW, None)?;
        let umem_len = FRAMES as usize * FRAME_SIZE as usize;
        // SAFETY: a fresh private anonymous mapping that nothing else refers to.
        let start = unsafe {
            mmap_anonymous(
                ptr::null_mut(),
                umem_len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::POPULATE,
            )
        }?;
        let umem = Mapping {
            start: NonNull::new(start).ok_or_else(|| io::Error::other("mmap gave null"))?,
            len: umem_len,
        };
        sockopt::set_xdp_umem_reg(
            &fd,
            XdpUmemReg {
                addr: start as u64,
                len: umem_len as u64,
                chunk_size: FRAME_SIZE as u32,
                headroom: 0,
                flags: XdpUmemRegFlags::empty(),
                tx_metadata_len: 0,
            },
        )?;
        sockopt::set_xdp_umem_fill_ring_size(&fd, RING_SIZE)?;
        sockopt::set_xdp_umem_completion_ring_size(&fd, RING_SIZE)?;
        sockopt::set_xdp_rx_ring_size(&fd, RING_SIZE)?;
        sockopt::set_xdp_tx_ring_size(&fd, RING_SIZE)?;
        let offsets = sockopt::xdp_mmap_offsets(&fd)?;
        let borrowed = fd.as_fd();
        let mut socket = Self {
            fill: Ring::map(borrowed, &offsets.fr, XDP_UMEM_PGOFF_FILL_RING)?,
            completion: Ring::map(borrowed, &offsets.cr, XDP_UMEM_PGOFF_COMPLETION_RING)?,
            rx: Ring::map(borrowed, &offsets.rx, XDP_PGOFF_RX_RING)?,
            tx: Ring::map(borrowed, &offsets.tx, XDP_PGOFF_TX_RING)?,
            umem,
            free: (0..u64::from(FRAMES))
                .rev()
                .map(|i| i * FRAME_SIZE)
                .collect(),
            fd,
        };
        let address = SocketAddrXdp::new(SocketAddrXdpFlags::XDP_USE_NEED_WAKEUP, ifindex, queue);
        rustix::net::bind(&socket.fd, &address)?;
        socket.refill();
        Ok(socket)
    }

    /// The socket, for the XSKMAP and for waiting.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Hands free frames to the kernel to receive into, keeping the fill ring full.
    pub(super) fn refill(&mut self) {
        let count = self.fill.room(self.free.len() as u32);
        for index in 0..count {
            if let Some(address) = self.free.pop() {
                self.fill.write(index, address);
            }
        }
        self.fill.submit(count);
        if self.fill.needs_wakeup() {
            // Zero-copy drivers wait for a wake-up to use the new frames.
            let _ = poll(
                &mut [PollFd::new(&self.fd, PollFlags::IN)],
                Some(&Timespec::default()),
            );
        }
    }

    /// Waits up to `timeout` for received frames.
    pub(super) fn wait(&mut self, timeout: &Timespec) {
        if self.rx.ready(1) == 0 {
            let _ = poll(&mut [PollFd::new(&self.fd, PollFlags::IN)], Some(timeout));
        }
    }

    /// How many received frames (at most `wanted`) are ready to [`take`](Self::take).
    pub(super) fn received(&mut self, wanted: u32) -> u32 {
        self.rx.ready(wanted)
    }

    /// The `index`th ready received frame.
    pub(super) fn take(&self, index: u32) -> Received {
        let desc = self.rx.read(index);
        Received {
            address: desc.addr,
            len: desc.len,
        }
    }

    /// Gives the first `count` ready received frames' ring entries back (their frames are now
    /// user space's: sent with [`send`](Self::send) or [`recycle`](Self::recycle)d).
    pub(super) fn taken(&mut self, count: u32) {
        self.rx.release(count);
    }

    /// The frame at UMEM address `address`, from there to the end of its chunk; empty for an
    /// address outside the UMEM.
    pub(super) fn frame_mut(&mut self, address: u64) -> &mut [u8] {
        let chunk_end = (address / FRAME_SIZE + 1) * FRAME_SIZE;
        if chunk_end > self.umem.len as u64 {
            return &mut [];
        }
        let len = (chunk_end - address) as usize;
        // SAFETY: `address..chunk_end` lies inside the UMEM (checked above). The frame is in no
        // ring (it came off the RX ring and has not gone on the TX ring), so the kernel does not
        // touch it while this borrow of `self` lives.
        unsafe { std::slice::from_raw_parts_mut(self.umem.at::<u8>(address), len) }
    }

    /// Room on the TX ring for up to `wanted` frames.
    pub(super) fn tx_room(&mut self, wanted: u32) -> u32 {
        self.tx.room(wanted)
    }

    /// Puts the frame at `address` (`len` bytes) on the TX ring, `index` places after the last
    /// sent (within [`tx_room`](Self::tx_room)); [`flush`](Self::flush) hands them over.
    pub(super) fn send(&mut self, index: u32, address: u64, len: u32) {
        let desc = XdpDesc {
            addr: address,
            len,
            options: XdpDescOptions::empty(),
        };
        self.tx.write(index, desc);
    }

    /// A frame not sent goes back to the free frames.
    pub(super) fn recycle(&mut self, address: u64) {
        self.free.push(address - address % FRAME_SIZE);
    }

    /// Submits `count` frames put on the TX ring and has the kernel send them; then takes
    /// back the frames it has finished with.
    pub(super) fn flush(&mut self, count: u32) {
        self.tx.submit(count);
        // In copy mode each wake-up sends a limited batch (32 frames): repeat while frames
        // wait, a bounded number of times.
        for _ in 0..RING_SIZE / 16 {
            if self.tx.outstanding() == 0 {
                break;
            }
            if self.tx.needs_wakeup() {
                match rustix::net::send(&self.fd, &[], SendFlags::DONTWAIT) {
                    Ok(_) => {}
                    Err(rustix::io::Errno::AGAIN | rustix::io::Errno::BUSY) => {}
                    Err(rustix::io::Errno::NOBUFS) => self.complete(),
                    Err(error) => {
                        tracing::debug!(%error, "af_xdp send failed");
                        break;
                    }
                }
            } else {
                break;
            }
        }
        self.complete();
    }

    /// Takes sent frames back from the completion ring.
    pub(super) fn complete(&mut self) {
        let count = self.completion.ready(RING_SIZE);
        for index in 0..count {
            let address = self.completion.read(index);
            self.free.push(address - address % FRAME_SIZE);
        }
        self.completion.release(count);
    }
}
