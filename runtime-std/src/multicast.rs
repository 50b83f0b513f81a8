//! Sockets for group communication (RFC 7252 §8): a server's unicast socket and one socket
//! per joined group, so that the loop knows which datagrams arrived on a group address and
//! feeds them to [`coap_core::Endpoint::handle_group_datagram`] (the core applies the rules;
//! the sockets only tell it how a datagram arrived).

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::str::FromStr;

use socket2::{Domain, Protocol, Socket, Type};

/// The IPv4 "All CoAP Nodes" address (RFC 7252 §12.8).
pub const ALL_COAP_NODES_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 1, 187);

/// A group to join: a multicast address and the interface to join it on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    /// The group address (e.g. 224.0.1.187, ff02::fd, ff05::fd).
    pub addr: IpAddr,
    /// The interface: for IPv6 its index (0: the system's choice); for IPv4 its address
    /// (unspecified: the system's choice).
    pub interface: Interface,
}

/// Which interface a group is joined on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interface {
    /// The system's choice (the route to the group).
    Default,
    /// An IPv4 interface, by its address.
    V4(Ipv4Addr),
    /// An IPv6 interface, by its index.
    Index(u32),
}

/// Why a group could not be parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct GroupParseError(String);

impl fmt::Display for GroupParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GroupParseError {}

impl FromStr for Group {
    type Err = GroupParseError;

    /// `224.0.1.187`, `224.0.1.187@192.0.2.1` (IPv4 interface address), `ff02::fd%eth0` or
    /// `ff02::fd%3` (IPv6 interface name or index).
    fn from_str(s: &str) -> Result<Group, GroupParseError> {
        let err = |m: &str| GroupParseError(format!("{s}: {m}"));
        let (addr, interface) = if let Some((a, iface)) = s.split_once('%') {
            let index = iface
                .parse()
                .ok()
                .or_else(|| interface_index(iface))
                .ok_or_else(|| err("unknown interface"))?;
            (a, Interface::Index(index))
        } else if let Some((a, iface)) = s.split_once('@') {
            let ip: Ipv4Addr = iface.parse().map_err(|_| err("bad interface address"))?;
            (a, Interface::V4(ip))
        } else {
            (s, Interface::Default)
        };
        let addr: IpAddr = addr
            .trim_matches(['[', ']'])
            .parse()
            .map_err(|_| err("not an IP address"))?;
        if !addr.is_multicast() {
            return Err(err("not a multicast address"));
        }
        match (addr, interface) {
            (IpAddr::V4(_), Interface::Index(_)) => Err(err("an IPv4 group takes @ADDRESS")),
            (IpAddr::V6(_), Interface::V4(_)) => Err(err("an IPv6 group takes %INTERFACE")),
            _ => Ok(Group { addr, interface }),
        }
    }
}

/// The index of a network interface by name (Linux: /sys/class/net/NAME/ifindex).
pub fn interface_index(name: &str) -> Option<u32> {
    if name.is_empty() || name.contains(['/', '.']) {
        return None;
    }
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The unicast socket of a server that joins groups: address reuse (the group sockets bind
/// the same port) and, on Linux, no delivery of groups joined by other sockets
/// (`IP_MULTICAST_ALL` off), so that a group datagram arrives once, on its group socket.
pub fn unicast_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    #[cfg(target_os = "linux")]
    {
        match addr {
            SocketAddr::V4(_) => socket.set_multicast_all_v4(false)?,
            SocketAddr::V6(_) => {
                socket.set_multicast_all_v6(false)?;
                // A dual-stack socket also receives IPv4 groups; best effort.
                let _ = socket.set_multicast_all_v4(false);
            }
        }
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// A socket that receives the datagrams sent to `group` on `port`: bound to the group
/// address itself, so nothing else arrives on it.
pub fn group_socket(group: &Group, port: u16) -> io::Result<UdpSocket> {
    let bind: SocketAddr = match (group.addr, group.interface) {
        (IpAddr::V6(ip), Interface::Index(i)) => SocketAddrV6::new(ip, port, 0, i).into(),
        (ip, _) => SocketAddr::new(ip, port),
    };
    let socket = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    if bind.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&bind.into())?;
    match (group.addr, group.interface) {
        (IpAddr::V4(ip), Interface::V4(iface)) => socket.join_multicast_v4(&ip, &iface)?,
        (IpAddr::V4(ip), _) => socket.join_multicast_v4(&ip, &Ipv4Addr::UNSPECIFIED)?,
        (IpAddr::V6(ip), Interface::Index(i)) => socket.join_multicast_v6(&ip, i)?,
        (IpAddr::V6(ip), _) => socket.join_multicast_v6(&ip, 0)?,
    }
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_parse_with_their_interface() {
        let g: Group = "224.0.1.187".parse().unwrap();
        assert_eq!(g.interface, Interface::Default);
        let g: Group = "224.0.1.187@10.0.0.1".parse().unwrap();
        assert_eq!(g.interface, Interface::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let g: Group = "ff02::fd%7".parse().unwrap();
        assert_eq!(g.interface, Interface::Index(7));
        let g: Group = "[ff05::fd]".parse().unwrap();
        assert_eq!(g.addr, "ff05::fd".parse::<IpAddr>().unwrap());
        let g: Group = "ff02::fd%lo".parse().unwrap();
        assert!(matches!(g.interface, Interface::Index(i) if i > 0));
        assert!("10.0.0.1"
            .parse::<Group>()
            .unwrap_err()
            .0
            .contains("not a multicast"));
        assert!("ff02::fd%no-such-if".parse::<Group>().is_err());
        assert!("224.0.1.187%3".parse::<Group>().is_err());
        assert!("ff02::fd@10.0.0.1".parse::<Group>().is_err());
    }

    #[test]
    fn a_group_socket_binds_beside_a_unicast_one() {
        // Port shared by the unicast socket and the group socket (both reuse the address).
        let unicast = unicast_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = unicast.local_addr().unwrap().port();
        let group = Group {
            addr: "224.0.1.187".parse().unwrap(),
            interface: Interface::V4(Ipv4Addr::LOCALHOST),
        };
        // Joining needs a multicast-capable interface; loopback may not be one here, so
        // only the bind is checked when the join is refused.
        match group_socket(&group, port) {
            Ok(s) => assert_eq!(s.local_addr().unwrap().port(), port),
            Err(e) => assert_ne!(e.kind(), io::ErrorKind::AddrInUse, "{e}"),
        }
    }
}
