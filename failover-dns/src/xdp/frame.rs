//! A query's Ethernet frame read, and turned into its answer's frame in place: addresses and
//! ports swapped, lengths and checksums set, the DNS answer after the headers.
//!
//! Only what the XDP program redirects reaches here: Ethernet II, IPv4 without options and not a
//! fragment, or IPv6 with UDP right after the fixed header. Anything else is refused (the worker
//! drops it), as a broken datagram would be by the kernel.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const ETHERNET: usize = 14;
const IPV4: usize = 20;
const IPV6: usize = 40;
const UDP: usize = 8;
const PROTOCOL_UDP: u8 = 17;
/// The hop limit of answers, as the kernel's default (`net.ipv4.ip_default_ttl`).
const HOP_LIMIT: u8 = 64;

/// Where a query's DNS message is in its frame, and who asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Query {
    /// Bytes of Ethernet, IP and UDP headers before the DNS message.
    pub(super) headers: usize,
    /// The DNS message's length.
    pub(super) len: usize,
    /// The sender's address.
    pub(super) peer: IpAddr,
}

impl Query {
    /// The DNS message within `frame`.
    pub(super) fn message<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        &frame[self.headers..self.headers + self.len]
    }
}

/// Reads a query's headers; `None` for anything but a whole UDP datagram from a real port.
pub(super) fn parse(frame: &[u8]) -> Option<Query> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let (headers, udp_len, peer) = match ethertype {
        0x0800 => {
            let ip = frame.get(ETHERNET..ETHERNET + IPV4 + UDP)?;
            let fragment = ip[6] & 0x3f != 0 || ip[7] != 0;
            if ip[0] != 0x45 || fragment || ip[9] != PROTOCOL_UDP {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let source: [u8; 4] = ip[12..16].try_into().ok()?;
            let headers = ETHERNET + IPV4 + UDP;
            (
                headers,
                total.checked_sub(IPV4)?,
                IpAddr::V4(Ipv4Addr::from(source)),
            )
        }
        0x86dd => {
            let ip = frame.get(ETHERNET..ETHERNET + IPV6 + UDP)?;
            if ip[0] >> 4 != 6 || ip[6] != PROTOCOL_UDP {
                return None;
            }
            let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            let source: [u8; 16] = ip[8..24].try_into().ok()?;
            let headers = ETHERNET + IPV6 + UDP;
            (headers, payload, IpAddr::V6(Ipv6Addr::from(source)))
        }
        _ => return None,
    };
    let udp = &frame[headers - UDP..headers];
    let source_port = u16::from_be_bytes([udp[0], udp[1]]);
    let declared = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if source_port == 0 || declared != udp_len || headers - UDP + udp_len > frame.len() {
        return None;
    }
    Some(Query {
        headers,
        len: udp_len.checked_sub(UDP)?,
        peer,
    })
}

/// Turns the query frame `frame` (as [`parse`] read it into `query`) into the frame of `answer`:
/// the answer after the headers, sender and receiver swapped, lengths and checksums set (the
/// UDP checksum too, which IPv6 requires). Returns the frame's length, or `None` when it would
/// not fit in `frame` (`frame`'s length is the most the link takes).
pub(super) fn answer_in_place(frame: &mut [u8], query: &Query, answer: &[u8]) -> Option<usize> {
    let total = query.headers + answer.len();
    let udp_len = u16::try_from(UDP + answer.len()).ok()?;
    frame.get_mut(query.headers..total)?.copy_from_slice(answer);
    let (ethernet, rest) = frame.split_at_mut(ETHERNET);
    let (destination, source) = ethernet.split_at_mut(6);
    destination.swap_with_slice(&mut source[..6]);
    let ip_len = query.headers - ETHERNET - UDP;
    let (ip, rest) = rest.split_at_mut(ip_len);
    let udp = &mut rest[..total - ETHERNET - ip_len];
    let pseudo = if ip_len == IPV4 {
        let ip_total = u16::try_from(IPV4 + UDP + answer.len()).ok()?;
        ip[0] = 0x45;
        ip[1] = 0;
        ip[2..4].copy_from_slice(&ip_total.to_be_bytes());
        // No identification; don't fragment (as the kernel's UDP sockets send by default).
        ip[4..8].copy_from_slice(&[0, 0, 0x40, 0]);
        ip[8] = HOP_LIMIT;
        ip[10..12].fill(0);
        let (source, destination) = ip[12..20].split_at_mut(4);
        source.swap_with_slice(destination);
        let checksum = finish(sum(ip, 0));
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());
        sum(&ip[12..20], u64::from(PROTOCOL_UDP) + u64::from(udp_len))
    } else {
        ip[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
        ip[4..6].copy_from_slice(&udp_len.to_be_bytes());
        ip[7] = HOP_LIMIT;
        let (source, destination) = ip[8..40].split_at_mut(16);
        source.swap_with_slice(destination);
        sum(&ip[8..40], u64::from(PROTOCOL_UDP) + u64::from(udp_len))
    };
    let (source_port, destination_port) = udp[0..4].split_at_mut(2);
    source_port.swap_with_slice(destination_port);
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    udp[6..8].fill(0);
    // A computed zero is sent as all ones (RFC 768); zero would mean "no checksum".
    let checksum = match finish(sum(udp, pseudo)) {
        0 => 0xffff,
        checksum => checksum,
    };
    udp[6..8].copy_from_slice(&checksum.to_be_bytes());
    Some(total)
}

/// Adds `data` as big-endian 16-bit words (the last byte padded) to `sum`.
fn sum(data: &[u8], mut sum: u64) -> u64 {
    let mut words = data.chunks_exact(2);
    for word in &mut words {
        sum += u64::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// The Internet checksum of a sum: folded to 16 bits, ones' complement.
fn finish(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

    /// A query frame from `client` port 40000 to `server` port 53, UDP checksum left 0 (IPv4)
    /// or set (IPv6), as a client's kernel would send it.
    fn query_frame(client: IpAddr, server: IpAddr, message: &[u8]) -> Vec<u8> {
        let mut frame = SERVER_MAC.to_vec();
        frame.extend_from_slice(&CLIENT_MAC);
        let udp_len = (UDP + message.len()) as u16;
        let mut udp = [
            40000u16.to_be_bytes(),
            53u16.to_be_bytes(),
            udp_len.to_be_bytes(),
        ]
        .concat();
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(message);
        match (client, server) {
            (IpAddr::V4(client), IpAddr::V4(server)) => {
                frame.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
                frame.extend_from_slice(&(IPV4 as u16 + udp_len).to_be_bytes());
                frame.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, 17, 0, 0]);
                frame.extend_from_slice(&client.octets());
                frame.extend_from_slice(&server.octets());
            }
            (IpAddr::V6(client), IpAddr::V6(server)) => {
                frame.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
                frame.extend_from_slice(&udp_len.to_be_bytes());
                frame.extend_from_slice(&[17, 64]);
                frame.extend_from_slice(&client.octets());
                frame.extend_from_slice(&server.octets());
            }
            _ => unreachable!(),
        }
        frame.extend_from_slice(&udp);
        frame
    }

    /// Checks a checksum the way a receiver does: the sum over the covered bytes with the
    /// checksum in place folds to zero.
    fn verifies(data: &[u8], pseudo: u64) -> bool {
        finish(sum(data, pseudo)) == 0
    }

    #[test]
    fn an_ipv4_query_becomes_its_answer_with_valid_checksums() {
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let server: IpAddr = "192.0.2.53".parse().unwrap();
        let mut frame = query_frame(client, server, b"query-of-odd-length");
        frame.resize(2048, 0xee);
        let query = parse(&frame).unwrap();
        assert_eq!(query.peer, client);
        assert_eq!(query.message(&frame), b"query-of-odd-length");
        let len = answer_in_place(&mut frame, &query, b"a longer answer, odd").unwrap();
        let frame = &frame[..len];
        assert_eq!(len, 14 + 20 + 8 + 20);
        assert_eq!(&frame[..6], &CLIENT_MAC);
        assert_eq!(&frame[6..12], &SERVER_MAC);
        let ip = &frame[14..34];
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 48);
        assert_eq!(&ip[12..16], &[192, 0, 2, 53]);
        assert_eq!(&ip[16..20], &[192, 0, 2, 7]);
        assert!(verifies(ip, 0), "IPv4 header checksum");
        let udp = &frame[34..];
        assert_eq!(&udp[..4], &[0, 53, 0x9c, 0x40]);
        assert_eq!(u16::from_be_bytes([udp[4], udp[5]]), 28);
        assert!(verifies(udp, sum(&ip[12..20], 17 + 28)), "UDP checksum");
        assert_eq!(&udp[8..], b"a longer answer, odd");
        // What the client's kernel would accept is what the answer's parse gives back.
        let back = parse(frame).unwrap();
        assert_eq!(back.peer, server);
        assert_eq!(back.message(frame), b"a longer answer, odd");
    }

    #[test]
    fn an_ipv6_query_becomes_its_answer_with_a_valid_udp_checksum() {
        let client: IpAddr = "2001:db8::7".parse().unwrap();
        let server: IpAddr = "2001:db8::53".parse().unwrap();
        let mut frame = query_frame(client, server, b"q");
        frame.resize(2048, 0);
        let query = parse(&frame).unwrap();
        assert_eq!((query.headers, query.len, query.peer), (62, 1, client));
        let len = answer_in_place(&mut frame, &query, &[0xab; 300]).unwrap();
        let frame = &frame[..len];
        let ip = &frame[14..54];
        assert_eq!(ip[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), 308);
        assert_eq!((ip[6], ip[7]), (17, 64));
        assert_eq!(
            &ip[8..24],
            &"2001:db8::53".parse::<Ipv6Addr>().unwrap().octets()
        );
        let udp = &frame[54..];
        assert_ne!(&udp[6..8], &[0, 0], "IPv6 requires the UDP checksum");
        assert!(verifies(udp, sum(&ip[8..40], 17 + 308)));
    }

    #[test]
    fn an_answer_that_does_not_fit_the_frame_is_refused() {
        let mut frame = query_frame(
            "192.0.2.7".parse().unwrap(),
            "192.0.2.53".parse().unwrap(),
            b"q",
        );
        let query = parse(&frame).unwrap();
        frame.resize(42 + 100, 0);
        let before = frame.clone();
        assert_eq!(answer_in_place(&mut frame, &query, &[1; 101]), None);
        assert_eq!(frame, before, "a refused answer leaves the frame alone");
        assert_eq!(answer_in_place(&mut frame, &query, &[1; 100]), Some(142));
    }

    #[test]
    fn fragments_options_other_protocols_and_port_zero_are_not_queries() {
        let v4 = query_frame(
            "192.0.2.7".parse().unwrap(),
            "192.0.2.53".parse().unwrap(),
            b"0123456789ab",
        );
        assert!(parse(&v4).is_some());
        let changed = |at: usize, value: u8| {
            let mut frame = v4.clone();
            frame[at] = value;
            parse(&frame)
        };
        assert_eq!(changed(14, 0x46), None, "IPv4 options");
        assert_eq!(changed(20, 0x20), None, "more fragments");
        assert_eq!(changed(21, 1), None, "a fragment's offset");
        assert_eq!(changed(23, 6), None, "TCP");
        assert_eq!(changed(12, 0x86), None, "another ethertype");
        let mut port_zero = v4.clone();
        port_zero[34..36].fill(0);
        assert_eq!(parse(&port_zero), None, "source port 0");
        assert_eq!(changed(39, 0), None, "UDP length not the IP payload's");
        assert_eq!(parse(&v4[..v4.len() - 1]), None, "cut short");
        let v6 = query_frame(
            "2001:db8::7".parse().unwrap(),
            "2001:db8::53".parse().unwrap(),
            b"0123456789ab",
        );
        assert!(parse(&v6).is_some());
        let mut hop_by_hop = v6.clone();
        hop_by_hop[20] = 0;
        assert_eq!(parse(&hop_by_hop), None, "an IPv6 extension header");
    }
}
