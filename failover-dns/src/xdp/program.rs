//! The XDP program (`xdp/redirect.c`, shipped compiled as `xdp/redirect.o`): loaded with aya,
//! told the served port and addresses, attached to the interface; its XSKMAP gets the sockets.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::BorrowedFd;

use aya::maps::XskMap;
use aya::programs::{Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};

/// The compiled program: `failover-dns/xdp/build.sh` makes it from `redirect.c` (the test
/// `xdp_program` checks that it still does).
static OBJECT: &[u8] = aya::include_bytes_aligned!("../../xdp/redirect.o");

/// `filter` bits of the program: which families it redirects, and whether it matches the
/// destination address (else any address of the interface).
const FILTER_V4: u32 = 1;
const FILTER_V6: u32 = 2;
const FILTER_V4_ADDRESS: u32 = 4;
const FILTER_V6_ADDRESS: u32 = 8;

/// Which datagrams the program redirects: to this port, at these addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Filter {
    port: u16,
    flags: u32,
    ipv4: [u8; 4],
    ipv6: [u8; 16],
}

impl Filter {
    /// The filter for the server's listen addresses: one port, at most one address per family
    /// (an unspecified one, `0.0.0.0` or `::`, matches every address of the interface).
    pub(super) fn for_listen(listen: &[SocketAddr]) -> Result<Self, String> {
        let mut filter = Filter {
            port: listen.first().map_or(0, SocketAddr::port),
            flags: 0,
            ipv4: [0; 4],
            ipv6: [0; 16],
        };
        for address in listen {
            if address.port() != filter.port || address.port() == 0 {
                return Err(format!(
                    "the listen addresses must share one fixed port (found {address} beside port {})",
                    filter.port
                ));
            }
            let (family, matched) = match address.ip() {
                IpAddr::V4(ip) => {
                    filter.ipv4 = ip.octets();
                    (
                        FILTER_V4,
                        (!ip.is_unspecified()).then_some(FILTER_V4_ADDRESS),
                    )
                }
                IpAddr::V6(ip) => {
                    filter.ipv6 = ip.octets();
                    (
                        FILTER_V6,
                        (!ip.is_unspecified()).then_some(FILTER_V6_ADDRESS),
                    )
                }
            };
            if filter.flags & family != 0 {
                return Err(format!(
                    "at most one listen address per address family (found a second: {address})"
                ));
            }
            filter.flags |= family | matched.unwrap_or(0);
        }
        Ok(filter)
    }
}

/// The loaded and attached program; dropping it detaches it from the interface.
pub(super) struct Program {
    ebpf: Ebpf,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Program")
    }
}

impl Program {
    /// Loads the program with `filter` and attaches it to interface `ifindex` (native mode
    /// where the driver has it, else generic).
    pub(super) fn attach(filter: &Filter, ifindex: u32) -> Result<Self, aya::EbpfError> {
        let mut ebpf = EbpfLoader::new()
            .override_global("dns_port", &filter.port, true)
            .override_global("filter", &filter.flags, true)
            .override_global("ipv4_address", &filter.ipv4, true)
            .override_global("ipv6_address", &filter.ipv6, true)
            .load(OBJECT)?;
        let program: &mut Xdp = ebpf
            .program_mut("xdp_dns")
            .ok_or_else(|| missing("program xdp_dns"))?
            .try_into()
            .map_err(aya::EbpfError::ProgramError)?;
        program.load().map_err(aya::EbpfError::ProgramError)?;
        program
            .attach_to_if_index(ifindex, XdpMode::Default)
            .map_err(aya::EbpfError::ProgramError)?;
        Ok(Self { ebpf })
    }

    /// Sends the frames of receive queue `queue` to `socket`.
    pub(super) fn register(
        &mut self,
        queue: u32,
        socket: BorrowedFd<'_>,
    ) -> Result<(), aya::maps::MapError> {
        let map = self
            .ebpf
            .map_mut("xsks")
            .ok_or(aya::maps::MapError::InvalidName {
                name: "xsks".to_owned(),
            })?;
        XskMap::try_from(map)?.set(queue, socket, 0)
    }
}

/// An error for a part missing from the shipped object (a broken build of it).
fn missing(what: &str) -> aya::EbpfError {
    aya::EbpfError::FileError {
        path: "failover-dns/xdp/redirect.o".into(),
        error: std::io::Error::new(std::io::ErrorKind::NotFound, format!("no {what}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    fn filter(listen: &[&str]) -> Result<Filter, String> {
        let listen: Vec<SocketAddr> = listen.iter().map(|a| a.parse().unwrap()).collect();
        Filter::for_listen(&listen)
    }

    #[test]
    fn the_filter_matches_the_listen_addresses() {
        let both = filter(&["192.0.2.53:53", "[::]:53"]).unwrap();
        assert_eq!(both.port, 53);
        assert_eq!(both.flags, FILTER_V4 | FILTER_V6 | FILTER_V4_ADDRESS);
        assert_eq!(both.ipv4, [192, 0, 2, 53]);
        let v6 = filter(&["[2001:db8::53]:5353"]).unwrap();
        assert_eq!(v6.flags, FILTER_V6 | FILTER_V6_ADDRESS);
        assert_eq!(v6.ipv6[15], 0x53);
    }

    #[test]
    fn the_filter_refuses_what_the_program_cannot_match() {
        let error = filter(&["192.0.2.53:53", "[::1]:54"]).unwrap_err();
        assert!(error.contains("share one fixed port"), "{error}");
        let error = filter(&["192.0.2.53:53", "192.0.2.54:53"]).unwrap_err();
        assert!(
            error.contains("one listen address per address family"),
            "{error}"
        );
        assert!(filter(&["127.0.0.1:0"]).is_err());
    }
}
