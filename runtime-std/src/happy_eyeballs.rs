//! Address selection for a host name that resolves to several addresses, in the manner of
//! "Happy Eyeballs" (RFC 8305) adapted to a connectionless protocol: a client tries every
//! address it can reach, IPv6 and IPv4 interleaved (RFC 8305 §4), and moves on to the
//! next after an ICMP error (read on Linux, see `icmp`) or when the first attempt goes
//! unanswered for [`Fallback::attempt_timeout`]; the address that answered is kept for the
//! origin (host and port), so that later requests go to it first.
//!
//! CoAP has no connection to open first: each attempt is the request itself. So only a
//! safe request (GET, FETCH) races as RFC 8305 §5 connection attempts do — the next
//! address is tried every [`Fallback::attempt_delay`] while none has answered, the first
//! answer wins — and any other request tries one address at a time, since two copies of a
//! non-idempotent request in flight to two addresses of one server could both be executed
//! (RFC 7252 §5.1).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Origins remembered; beyond that the table is cleared (a client talking to this many
/// hosts re-learns at the cost of one fallback each).
const ORIGINS: usize = 256;

/// How a client moves between the addresses of a host name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fallback {
    /// How long an attempt to an address that is not the last may stay unanswered before
    /// the next address is tried. The default, 2 s, is RFC 7252's ACK_TIMEOUT: by then a
    /// reachable server has usually answered the first transmission.
    pub attempt_timeout: Duration,
    /// For a safe request (GET, FETCH): how long to wait for an answer before the next
    /// address is tried as well, the earlier attempts staying in the race. RFC 8305 §5's
    /// "Connection Attempt Delay", whose recommended 250 ms is the default.
    pub attempt_delay: Duration,
}

impl Default for Fallback {
    fn default() -> Self {
        Fallback {
            attempt_timeout: Duration::from_secs(2),
            attempt_delay: Duration::from_millis(250),
        }
    }
}

/// Where a host name's request goes: the addresses to try in order, and the origin to
/// remember the answering one under.
#[derive(Debug)]
pub(crate) struct Candidates {
    pub addrs: Vec<SocketAddr>,
    pub origin: Option<(String, u16)>,
}

/// The address that last answered for each origin (host name in lower case, port).
#[derive(Clone, Debug, Default)]
pub(crate) struct Origins(Arc<Mutex<HashMap<(String, u16), SocketAddr>>>);

impl Origins {
    /// Remembers that `addr` answered for `origin`.
    pub fn answered(&self, origin: &(String, u16), addr: SocketAddr) {
        let Ok(mut map) = self.0.lock() else { return };
        if map.len() >= ORIGINS && !map.contains_key(origin) {
            map.clear();
        }
        map.insert(origin.clone(), addr);
    }

    /// Forgets `origin`'s address (it stopped answering).
    pub fn forget(&self, origin: &(String, u16)) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(origin);
        }
    }

    /// `addrs` with the address that last answered for `origin`, if among them, first.
    pub fn order(&self, origin: &(String, u16), mut addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
        let known = self.0.lock().ok().and_then(|m| m.get(origin).copied());
        if let Some(pos) = known.and_then(|k| addrs.iter().position(|a| *a == k)) {
            let first = addrs.remove(pos);
            addrs.insert(0, first);
        }
        addrs
    }
}

/// Whether `a` is (or maps) an IPv4 address.
fn is_v4(a: &SocketAddr) -> bool {
    match a.ip() {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
    }
}

/// The resolved addresses a socket bound to `local` can send to, in the order to try them:
/// the family of the first address first, then alternating (RFC 8305 §4, "First Address
/// Family Count" of one), each family in the resolver's order, duplicates dropped. A
/// socket bound to the unspecified IPv6 address is dual-stack and reaches IPv4 peers as
/// IPv4-mapped addresses; any other socket reaches its own family only.
pub(crate) fn reachable(resolved: &[SocketAddr], local: SocketAddr) -> Vec<SocketAddr> {
    let dual = matches!(local, SocketAddr::V6(l) if l.ip().is_unspecified());
    let usable = resolved.iter().filter_map(|a| match (a, local) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) | (SocketAddr::V6(_), SocketAddr::V6(_)) => Some(*a),
        (SocketAddr::V4(v4), SocketAddr::V6(_)) if dual => Some(SocketAddr::new(
            IpAddr::V6(v4.ip().to_ipv6_mapped()),
            v4.port(),
        )),
        _ => None,
    });
    let mut unique: Vec<SocketAddr> = Vec::new();
    for a in usable {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    let Some(first_v4) = unique.first().map(is_v4) else {
        return unique;
    };
    let (mut first, mut second): (Vec<_>, Vec<_>) =
        unique.into_iter().partition(|a| is_v4(a) == first_v4);
    let mut out = Vec::with_capacity(first.len() + second.len());
    first.reverse();
    second.reverse();
    loop {
        match (first.pop(), second.pop()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn families_interleave_starting_with_the_first() {
        let resolved = [
            sa("[2001:db8::1]:5683"),
            sa("[2001:db8::2]:5683"),
            sa("[2001:db8::3]:5683"),
            sa("192.0.2.1:5683"),
        ];
        assert_eq!(
            reachable(&resolved, sa("[::]:0")),
            vec![
                sa("[2001:db8::1]:5683"),
                sa("[::ffff:192.0.2.1]:5683"),
                sa("[2001:db8::2]:5683"),
                sa("[2001:db8::3]:5683"),
            ]
        );
        let v4_first = [sa("127.0.0.1:7"), sa("[::1]:7"), sa("127.0.0.1:7")];
        assert_eq!(
            reachable(&v4_first, sa("[::]:0")),
            vec![sa("[::ffff:127.0.0.1]:7"), sa("[::1]:7")]
        );
    }

    #[test]
    fn a_socket_reaches_its_family_only_unless_dual_stack() {
        let both = [sa("[::1]:7"), sa("127.0.0.1:7")];
        assert_eq!(reachable(&both, sa("0.0.0.0:0")), vec![sa("127.0.0.1:7")]);
        assert_eq!(reachable(&both, sa("[::1]:0")), vec![sa("[::1]:7")]);
        assert_eq!(reachable(&[sa("127.0.0.1:7")], sa("[::1]:0")), vec![]);
        assert_eq!(reachable(&[], sa("[::]:0")), vec![]);
    }

    #[test]
    fn the_answering_address_goes_first() {
        let origins = Origins::default();
        let key = ("localhost".to_owned(), 7);
        let addrs = vec![sa("[::1]:7"), sa("[::ffff:127.0.0.1]:7")];
        assert_eq!(origins.order(&key, addrs.clone()), addrs);
        origins.answered(&key, sa("[::ffff:127.0.0.1]:7"));
        assert_eq!(
            origins.order(&key, addrs.clone()),
            vec![sa("[::ffff:127.0.0.1]:7"), sa("[::1]:7")]
        );
        origins.forget(&key);
        assert_eq!(origins.order(&key, addrs.clone()), addrs);
    }
}
