//! ICMP errors for the std endpoints (Linux): with `IP_RECVERR` / `IPV6_RECVERR` the kernel
//! queues the ICMP errors that answer our datagrams on the socket's error queue, even on an
//! unconnected socket, and makes the next receive fail (ECONNREFUSED and the like). The
//! loop then reads the queue and hands each error, with the destination of the datagram
//! that caused it, to the driver (`Endpoint::handle_unreachable`), so that what waits on
//! that peer fails at once instead of when its timers run out. Path-MTU errors (ICMP
//! "fragmentation needed", RFC 1191; ICMPv6 "packet too big", RFC 8201 §4; and the
//! kernel's own EMSGSIZE for a datagram larger than the path MTU it knows) carry the MTU,
//! which goes to `Endpoint::handle_path_mtu`: block-wise transfers with that address go on
//! in blocks that fit.
//!
//! Other platforms keep the timers: a Windows socket reports WSAECONNRESET without the
//! peer, the BSDs report nothing on an unconnected socket.

use std::io;
use std::net::SocketAddr;

use coap_core::Unreachable;

/// What one error-queue entry says about the destination of the datagram that caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NetError {
    /// The destination cannot be reached.
    Unreachable(Unreachable),
    /// The path to the destination carries IP packets of at most this many bytes.
    PathMtu(u32),
}

/// Error-queue entries read in one go (each is one ICMP error); the rest waits for the
/// next receive error.
#[cfg(target_os = "linux")]
const DRAIN: usize = 64;

/// Asks the kernel to queue ICMP errors on `socket` (both families on an IPv6 socket, whose
/// IPv4-mapped peers' errors come as IPv4 ones). Elsewhere a no-op.
pub(crate) fn enable(socket: &std::net::UdpSocket) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{setsockopt, sockopt};
        if socket.local_addr()?.is_ipv6() {
            setsockopt(socket, sockopt::Ipv6RecvErr, &true)?;
            // An IPv6-only socket refuses nothing here; its IPv4 errors simply never come.
            let _ = setsockopt(socket, sockopt::Ipv4RecvErr, &true);
        } else {
            setsockopt(socket, sockopt::Ipv4RecvErr, &true)?;
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
    Ok(())
}

/// RFC 792 (type 3, Destination Unreachable) codes as Linux reports them.
#[cfg(target_os = "linux")]
fn icmp4(kind: u8, code: u8) -> Option<Unreachable> {
    const DEST_UNREACH: u8 = 3;
    if kind != DEST_UNREACH {
        return None;
    }
    Some(match code {
        // Network unreachable, unknown, isolated, for the type of service.
        0 | 6 | 8 | 11 => Unreachable::Network,
        // Host unreachable, unknown, for the type of service; protocol unreachable.
        1 | 2 | 7 | 12 => Unreachable::Host,
        3 => Unreachable::Port,
        // Prohibited (network, host, by filtering), precedence violation or cutoff
        // (RFC 1812 §5.2.7.1).
        9 | 10 | 13..=15 => Unreachable::Prohibited,
        // 4: fragmentation needed (a path-MTU signal, not an unreachable peer: see
        // `classify`); 5: source route failed; others unknown.
        _ => return None,
    })
}

/// RFC 4443 §3.1 (type 1, Destination Unreachable) codes.
#[cfg(target_os = "linux")]
fn icmp6(kind: u8, code: u8) -> Option<Unreachable> {
    const DST_UNREACH: u8 = 1;
    if kind != DST_UNREACH {
        return None;
    }
    Some(match code {
        0 => Unreachable::Network,
        // Administratively prohibited, source address failed ingress/egress policy,
        // reject route to destination.
        1 | 5 | 6 => Unreachable::Prohibited,
        // Beyond scope of source address, address unreachable.
        2 | 3 => Unreachable::Host,
        4 => Unreachable::Port,
        _ => return None,
    })
}

/// ICMP type 3 code 4, "fragmentation needed and DF set" (RFC 792, RFC 1191 §4).
#[cfg(target_os = "linux")]
const FRAG_NEEDED: (u8, u8) = (3, 4);
/// ICMPv6 type 2, "packet too big" (RFC 4443 §3.2).
#[cfg(target_os = "linux")]
const PACKET_TOO_BIG: u8 = 2;

/// What one error-queue entry says: an ICMP or ICMPv6 destination-unreachable error, or a
/// path-MTU error (from the network, or the kernel's own EMSGSIZE: origin LOCAL), whose MTU
/// the kernel gives in `ee_info` (ip(7), ipv6(7)).
#[cfg(target_os = "linux")]
fn classify(err: &nix::libc::sock_extended_err) -> Option<NetError> {
    use nix::libc::{EMSGSIZE, SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6, SO_EE_ORIGIN_LOCAL};
    let emsgsize = err.ee_errno == EMSGSIZE as u32;
    match err.ee_origin {
        SO_EE_ORIGIN_ICMP if (err.ee_type, err.ee_code) == FRAG_NEEDED => {
            Some(NetError::PathMtu(err.ee_info))
        }
        SO_EE_ORIGIN_ICMP6 if err.ee_type == PACKET_TOO_BIG => Some(NetError::PathMtu(err.ee_info)),
        SO_EE_ORIGIN_LOCAL if emsgsize => Some(NetError::PathMtu(err.ee_info)),
        SO_EE_ORIGIN_ICMP => icmp4(err.ee_type, err.ee_code).map(NetError::Unreachable),
        SO_EE_ORIGIN_ICMP6 => icmp6(err.ee_type, err.ee_code).map(NetError::Unreachable),
        _ => None,
    }
}

/// Reads the socket's error queue (never blocks): each destination-unreachable or path-MTU
/// error with the destination of the datagram that caused it (the kernel gives it as the
/// message's address, ip(7); for its own IPv4 EMSGSIZE on an unconnected socket the port
/// is 0: a path MTU concerns the address, not a port). Other errors are read and dropped.
#[cfg(target_os = "linux")]
pub(crate) fn drain(fd: std::os::fd::BorrowedFd<'_>) -> Vec<(SocketAddr, NetError)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;

    let mut found = Vec::new();
    // The queued datagram itself (our own message) is not needed: a short buffer takes its
    // start and the rest is cut off.
    let mut payload = [0u8; 64];
    let mut cmsg = nix::cmsg_space!(nix::libc::sock_extended_err, nix::libc::sockaddr_in6);
    for _ in 0..DRAIN {
        let mut iov = [IoSliceMut::new(&mut payload)];
        let flags = MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT;
        let Ok(msg) = recvmsg::<SockaddrStorage>(fd.as_raw_fd(), &mut iov, Some(&mut cmsg), flags)
        else {
            // EAGAIN: the queue is empty.
            break;
        };
        let dest = msg.address.as_ref().and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::from(*v4))
                .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6)))
        });
        let Ok(cmsgs) = msg.cmsgs() else { continue };
        for c in cmsgs {
            let err = match c {
                ControlMessageOwned::Ipv4RecvErr(err, _)
                | ControlMessageOwned::Ipv6RecvErr(err, _) => err,
                _ => continue,
            };
            if let (Some(dest), Some(why)) = (dest, classify(&err)) {
                found.push((dest, why));
            }
        }
    }
    found
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};

    /// A datagram to a closed loopback port comes back as a port-unreachable error for
    /// that address, on both families.
    #[test]
    fn closed_port_is_reported_with_its_address() {
        for local in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(socket) = UdpSocket::bind(local) else {
                continue; // no IPv6 loopback on this machine
            };
            enable(&socket).unwrap();
            socket.set_nonblocking(true).unwrap();
            // A port that was just free: bound, noted, closed.
            let closed = UdpSocket::bind(local).unwrap().local_addr().unwrap();
            socket.send_to(b"x", closed).unwrap();
            let deadline = Instant::now() + Duration::from_secs(3);
            let mut got = Vec::new();
            while got.is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
                got = drain(std::os::fd::AsFd::as_fd(&socket));
            }
            assert_eq!(
                got,
                vec![(closed, NetError::Unreachable(Unreachable::Port))],
                "from {local}"
            );
            // The error also made the next receive fail (how the loop notices).
            let mut buf = [0u8; 8];
            let e = socket.recv_from(&mut buf).unwrap_err();
            assert!(matches!(
                e.kind(),
                io::ErrorKind::ConnectionRefused | io::ErrorKind::WouldBlock
            ));
        }
    }

    fn queued(origin: u8, kind: u8, code: u8, errno: i32, info: u32) -> Option<NetError> {
        classify(&nix::libc::sock_extended_err {
            ee_errno: errno as u32,
            ee_origin: origin,
            ee_type: kind,
            ee_code: code,
            ee_pad: 0,
            ee_info: info,
            ee_data: 0,
        })
    }

    /// Path-MTU errors carry the MTU (ee_info): from the network on both families, and the
    /// kernel's own EMSGSIZE; unreachable errors keep their reasons.
    #[test]
    fn path_mtu_errors_carry_the_mtu() {
        use nix::libc::{
            ECONNREFUSED, EMSGSIZE, SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6, SO_EE_ORIGIN_LOCAL,
        };
        let mtu = Some(NetError::PathMtu(576));
        assert_eq!(queued(SO_EE_ORIGIN_ICMP, 3, 4, EMSGSIZE, 576), mtu);
        assert_eq!(queued(SO_EE_ORIGIN_ICMP6, 2, 0, EMSGSIZE, 576), mtu);
        assert_eq!(queued(SO_EE_ORIGIN_LOCAL, 0, 0, EMSGSIZE, 576), mtu);
        assert_eq!(queued(SO_EE_ORIGIN_LOCAL, 0, 0, ECONNREFUSED, 0), None);
        assert_eq!(
            queued(SO_EE_ORIGIN_ICMP, 3, 3, ECONNREFUSED, 0),
            Some(NetError::Unreachable(Unreachable::Port))
        );
        assert_eq!(
            queued(SO_EE_ORIGIN_ICMP6, 1, 4, ECONNREFUSED, 0),
            Some(NetError::Unreachable(Unreachable::Port))
        );
    }

    #[test]
    fn codes_map_to_reasons() {
        assert_eq!(icmp4(3, 3), Some(Unreachable::Port));
        assert_eq!(icmp4(3, 1), Some(Unreachable::Host));
        assert_eq!(icmp4(3, 0), Some(Unreachable::Network));
        assert_eq!(icmp4(3, 13), Some(Unreachable::Prohibited));
        assert_eq!(icmp4(3, 4), None);
        assert_eq!(icmp4(11, 0), None);
        assert_eq!(icmp6(1, 4), Some(Unreachable::Port));
        assert_eq!(icmp6(1, 3), Some(Unreachable::Host));
        assert_eq!(icmp6(1, 1), Some(Unreachable::Prohibited));
        assert_eq!(icmp6(2, 0), None);
    }
}
