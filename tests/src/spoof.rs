//! Many source addresses on loopback, for the hostile-network tests (issue 26).
//!
//! The whole of 127.0.0.0/8 is local on Linux's `lo`, so a socket bound to 127.A.B.C sends
//! with that source address and receives what is sent back to it. A test that plays an
//! attacker spoofing a victim's address binds the victim's address: what the attacker sends
//! carries the victim's source, and what the server sends in answer is what the victim
//! receives, counted here. No other address is ever used.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// The `i`-th spoofed source address (0-based): 127.77.x.y, away from 127.0.0.1 where the
/// servers under test listen, and never .0 or .255 in the last octet.
pub fn source_addr(i: u32) -> Ipv4Addr {
    let host = i % 254 + 1;
    let net = (i / 254) % 256;
    Ipv4Addr::new(127, 77, net as u8, host as u8)
}

/// `n` UDP sockets, each bound to its own spoofed source address (`source_addr(0..n)`) on an
/// ephemeral port, non-blocking.
pub fn sources(n: u32) -> std::io::Result<Vec<UdpSocket>> {
    (0..n)
        .map(|i| {
            let s = UdpSocket::bind(SocketAddr::from((source_addr(i), 0)))?;
            s.set_nonblocking(true)?;
            Ok(s)
        })
        .collect()
}

/// What arrived at a set of sockets during a drain.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Datagrams received.
    pub datagrams: u64,
    /// Bytes of UDP payload received.
    pub bytes: u64,
}

/// Reads every datagram that reaches `sockets` for `window` (bounded: it polls every 5 ms
/// and stops at the deadline), and returns the totals. The sockets must be non-blocking.
pub fn drain(sockets: &[UdpSocket], window: Duration) -> Received {
    let deadline = Instant::now() + window;
    let mut total = Received::default();
    let mut buf = [0u8; 2048];
    loop {
        let mut any = false;
        for s in sockets {
            // Bounded per socket per round: a flood cannot keep this loop past its deadline
            // for more than one round.
            for _ in 0..64 {
                match s.recv(&mut buf) {
                    Ok(n) => {
                        total.datagrams += 1;
                        total.bytes += n as u64;
                        any = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // ICMP errors surfacing on a connected-less socket: not data.
                    Err(_) => break,
                }
            }
        }
        if Instant::now() >= deadline {
            return total;
        }
        if !any {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_loopback_and_distinct() {
        let a: Vec<_> = (0..600).map(source_addr).collect();
        assert!(a.iter().all(|ip| ip.is_loopback()));
        let mut d = a.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 600);
        assert!(a
            .iter()
            .all(|ip| ip.octets()[3] != 0 && ip.octets()[3] != 255));
    }

    #[test]
    fn a_spoofed_source_receives_what_is_sent_to_it() {
        let victims = sources(3).unwrap();
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        for v in &victims {
            v.send_to(b"ping", server.local_addr().unwrap()).unwrap();
        }
        let mut buf = [0u8; 16];
        for _ in 0..3 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            assert!(from.ip().to_string().starts_with("127.77."));
            server.send_to(&buf[..n], from).unwrap();
            server.send_to(b"xx", from).unwrap();
        }
        let got = drain(&victims, Duration::from_millis(200));
        assert_eq!(
            got,
            Received {
                datagrams: 6,
                bytes: 3 * 6
            }
        );
    }
}
