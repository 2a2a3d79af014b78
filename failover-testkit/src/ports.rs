//! Free loopback ports for servers the test starts itself.

use std::net::{IpAddr, TcpListener, UdpSocket};

/// How many ephemeral ports to try before giving up.
const ATTEMPTS: usize = 50;

/// A port free on `address` (e.g. `"127.0.0.2"`) for both TCP and UDP, at the time of asking.
pub fn free_port(address: &str) -> u16 {
    let address: IpAddr = address
        .parse()
        .unwrap_or_else(|e| panic!("not an IP address: {address:?}: {e}"));
    free_port_on(&[address])
}

/// A port free for both TCP and UDP on every one of `addresses` (servers of a pair on one port).
pub fn free_port_on(addresses: &[IpAddr]) -> u16 {
    let Some((first, others)) = addresses.split_first() else {
        panic!("free_port_on needs at least one address");
    };
    for _ in 0..ATTEMPTS {
        let held = TcpListener::bind((*first, 0))
            .unwrap_or_else(|e| panic!("cannot bind a TCP port on {first}: {e}"));
        let port = held
            .local_addr()
            .unwrap_or_else(|e| panic!("the address of a bound socket: {e}"))
            .port();
        let free = UdpSocket::bind((*first, port)).is_ok()
            && others.iter().all(|address| {
                TcpListener::bind((*address, port)).is_ok()
                    && UdpSocket::bind((*address, port)).is_ok()
            });
        if free {
            return port;
        }
    }
    panic!("no port free for both TCP and UDP on {addresses:?} after {ATTEMPTS} tries");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn a_free_port_takes_a_tcp_listener_and_a_udp_socket() {
        let port = free_port("127.0.0.1");
        let _tcp = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let _udp = UdpSocket::bind(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn a_port_free_on_two_addresses_is_free_on_both() {
        let addresses: [IpAddr; 2] = [[127, 0, 0, 2].into(), [127, 0, 0, 3].into()];
        let port = free_port_on(&addresses);
        for address in addresses {
            let _tcp = TcpListener::bind((address, port)).unwrap();
            let _udp = UdpSocket::bind((address, port)).unwrap();
        }
    }
}
