//! Where the proxies may forward to: a destination policy checked after name resolution.
//!
//! A forward proxy reachable by strangers is a way into every network it can reach, the
//! proxy host itself included (RFC 7252 §11.2 on proxies; RFC 8075 §9). So by default both
//! sides of `coap proxy` refuse, unless `--allow`ed:
//! - loopback (127.0.0.0/8, ::1): services bound to loopback are bound there so that
//!   nobody else reaches them; a proxy listening on `[::]` would undo that for everyone
//!   who can reach the proxy. A development proxy in front of local servers says
//!   `--allow 127.0.0.0/8 --allow ::1` (every test of ours does);
//! - link-local (169.254.0.0/16, where cloud metadata services live, and fe80::/10);
//! - broadcast: 255.255.255.255 and the directed broadcast addresses of this host's
//!   interfaces (read once at start from `/proc/net/fib_trie` on Linux; elsewhere, and
//!   for interfaces that appear later, only 255.255.255.255 — a limit: a directed
//!   broadcast of a remote network cannot be told from a unicast address at all);
//! - multicast (224.0.0.0/4, ff00::/8): a proxy request is unicast (RFC 8075 §8.4);
//! - the unspecified addresses and 0.0.0.0/8 ("this network", a source-only range);
//! - the proxy's own listening sockets (a request to itself loops until Hop-Limit runs
//!   out); bound to a wildcard address, that is the port on every local address. Only an
//!   `--allow ADDR:PORT` naming the socket exactly reaches it: a network rule like
//!   `--allow 127.0.0.0/8` does not.
//!
//! Private networks (10/8, 172.16/12, 192.168/16, fc00::/7) and public addresses are
//! forwarded to: a proxy at a network's edge is usually there to reach them; deny them with
//! `--deny`.
//!
//! Rules: an address (`169.254.169.254`, `::1`), an address with a port
//! (`127.0.0.1:5683`, `[::1]:5683`), a network in CIDR (`10.0.0.0/8`, `fe80::/10`), or a
//! host pattern (`example.com`, `*.example.com`, matched case-insensitively against the
//! URI's host name). Order of decision: the proxy's own sockets are refused unless an
//! `ADDR:PORT` allow rule names them; otherwise an `allow` rule matching the name or the
//! address forwards; otherwise a `deny` rule or the default set refuses. So
//! `--deny 0.0.0.0/0 --deny ::/0 --allow 10.1.2.3` forwards to 10.1.2.3 only. Every address
//! a name resolves to must pass, and the request then goes to exactly those addresses
//! ([`Checked::pin`]), so a name cannot resolve differently between the check and the
//! send (DNS rebinding).
//!
//! The reverse map's targets (`--reverse`) are the operator's own choice and are not
//! checked; fronting a server on loopback is what a reverse proxy is for.

use std::net::{IpAddr, SocketAddr};

/// One `--allow` / `--deny` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// One address, optionally one port of it.
    Addr(IpAddr, Option<u16>),
    /// A network: address and prefix length.
    Net(IpAddr, u8),
    /// A host name, or with a leading `*.` any name below it.
    Host(String),
}

impl std::str::FromStr for Rule {
    type Err = String;

    fn from_str(s: &str) -> Result<Rule, String> {
        let bad =
            || format!("{s}: expected an address, ADDR:PORT, a CIDR network or a host pattern");
        if let Some((net, len)) = s.split_once('/') {
            let ip: IpAddr = net.parse().map_err(|_| bad())?;
            let len: u8 = len.parse().map_err(|_| bad())?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if len > max {
                return Err(bad());
            }
            return Ok(Rule::Net(ip, len));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Rule::Addr(ip, None));
        }
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return Ok(Rule::Addr(sa.ip(), Some(sa.port())));
        }
        let name = s.strip_prefix("*.").unwrap_or(s);
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !valid {
            return Err(bad());
        }
        Ok(Rule::Host(s.to_ascii_lowercase()))
    }
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is (so `::ffff:169.254.169.254`
/// cannot slip past an IPv4 rule).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Rule {
    fn matches(&self, host: Option<&str>, to: SocketAddr) -> bool {
        let ip = canonical(to.ip());
        match self {
            Rule::Addr(a, port) => canonical(*a) == ip && port.is_none_or(|p| p == to.port()),
            Rule::Net(n, len) => in_net(ip, canonical(*n), *len) || in_net(to.ip(), *n, *len),
            Rule::Host(pattern) => host.is_some_and(|h| {
                let h = h.trim_end_matches('.').to_ascii_lowercase();
                match pattern.strip_prefix("*.") {
                    Some(parent) => h.ends_with(&format!(".{parent}")),
                    None => h == *pattern,
                }
            }),
        }
    }
}

/// The kinds of address refused unless allowed (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reserved {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// 255.255.255.255 or an interface's directed broadcast address.
    Broadcast,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 0.0.0.0/8, `::`.
    Unspecified,
}

impl Reserved {
    /// The networks to name in an `--allow` that lets this kind through.
    fn allow_hint(self) -> &'static str {
        match self {
            Reserved::Loopback => "--allow 127.0.0.0/8 --allow ::1",
            Reserved::LinkLocal => "--allow 169.254.0.0/16 --allow fe80::/10",
            Reserved::Broadcast | Reserved::Multicast | Reserved::Unspecified => "--allow ADDR",
        }
    }
}

impl std::fmt::Display for Reserved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reserved::Loopback => "loopback",
            Reserved::LinkLocal => "link-local",
            Reserved::Broadcast => "broadcast",
            Reserved::Multicast => "multicast",
            Reserved::Unspecified => "unspecified",
        })
    }
}

/// Why a destination is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A `--deny` rule matched.
    Denied(SocketAddr),
    /// In the default-refused set.
    Reserved(SocketAddr, Reserved),
    /// One of the proxy's own listening sockets.
    Itself(SocketAddr),
    /// The name did not resolve.
    Unresolved(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Denied(a) => write!(f, "destination {a} is denied by the proxy's policy"),
            Refusal::Reserved(a, kind) => write!(
                f,
                "destination {a} is {kind}, not forwarded to unless allowed ({})",
                kind.allow_hint()
            ),
            Refusal::Itself(a) => write!(f, "destination {a} is the proxy itself"),
            Refusal::Unresolved(h) => write!(f, "cannot resolve {h}"),
        }
    }
}

/// This host's interface addresses that matter to the policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interfaces {
    /// Local unicast addresses (where a wildcard-bound socket is reached too).
    pub local: Vec<IpAddr>,
    /// Directed broadcast addresses of the IPv4 interfaces.
    pub broadcast: Vec<IpAddr>,
}

impl Interfaces {
    /// Read from `/proc/net/fib_trie` and `/proc/net/if_inet6` (Linux); empty elsewhere
    /// or when they cannot be read.
    pub fn of_this_host() -> Interfaces {
        let mut i = std::fs::read_to_string("/proc/net/fib_trie")
            .map(|t| Interfaces::from_fib_trie(&t))
            .unwrap_or_default();
        if let Ok(t) = std::fs::read_to_string("/proc/net/if_inet6") {
            for line in t.lines() {
                let hex = line.split_whitespace().next().unwrap_or("");
                if let Ok(v) = u128::from_str_radix(hex, 16) {
                    if hex.len() == 32 {
                        i.local.push(IpAddr::V6(v.into()));
                    }
                }
            }
        }
        i
    }

    /// The kernel's routing trie as text: each `|-- ADDR` leaf followed by its routes;
    /// `/32 host LOCAL` is a local address, `/32 link BROADCAST` a broadcast address.
    pub fn from_fib_trie(text: &str) -> Interfaces {
        let mut out = Interfaces::default();
        let mut leaf: Option<IpAddr> = None;
        for line in text.lines() {
            let t = line.trim();
            if let Some(addr) = t.strip_prefix("|-- ") {
                leaf = addr.trim().parse().ok();
            } else if let Some(ip) = leaf {
                let list = if t.starts_with("/32 link BROADCAST") {
                    &mut out.broadcast
                } else if t.starts_with("/32 host LOCAL") {
                    &mut out.local
                } else {
                    continue;
                };
                if !list.contains(&ip) {
                    list.push(ip);
                }
            }
        }
        out
    }
}

/// The proxies' destination policy (see the [module docs](self)).
#[derive(Clone, Debug, Default)]
pub struct DestinationPolicy {
    /// Rules that forward whatever else says (but see [`DestinationPolicy::own`]).
    pub allow: Vec<Rule>,
    /// Rules that refuse.
    pub deny: Vec<Rule>,
    /// The proxy's own listening sockets.
    pub own: Vec<SocketAddr>,
    /// This host's addresses (for the wildcard-bound own sockets and directed broadcast):
    /// empty in `Default`, read from the system by [`DestinationPolicy::new`].
    pub interfaces: Interfaces,
}

/// The default-refused kind of `ip`, if any.
pub fn reserved(ip: IpAddr, interfaces: &Interfaces) -> Option<Reserved> {
    let ip = canonical(ip);
    if interfaces.broadcast.iter().any(|b| canonical(*b) == ip) {
        return Some(Reserved::Broadcast);
    }
    match ip {
        IpAddr::V4(a) => Some(if a.is_loopback() {
            Reserved::Loopback
        } else if a.is_link_local() {
            Reserved::LinkLocal
        } else if a.is_broadcast() {
            Reserved::Broadcast
        } else if a.is_multicast() {
            Reserved::Multicast
        } else if a.octets()[0] == 0 {
            Reserved::Unspecified
        } else {
            return None;
        }),
        IpAddr::V6(a) => Some(if a.is_loopback() {
            Reserved::Loopback
        } else if (a.segments()[0] & 0xffc0) == 0xfe80 {
            Reserved::LinkLocal
        } else if a.is_multicast() {
            Reserved::Multicast
        } else if a.is_unspecified() {
            Reserved::Unspecified
        } else {
            return None;
        }),
    }
}

/// A destination that passed: where the request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The URI's host name with its port and the addresses checked for it (`None` for an
    /// address literal).
    pub name: Option<(String, u16, Vec<SocketAddr>)>,
}

impl Checked {
    /// `client`, resolving the checked name to exactly the checked addresses, so that the
    /// request cannot go anywhere the policy did not see.
    pub fn pin(self, client: &coap_tokio::Client) -> coap_tokio::Client {
        match self.name {
            None => client.clone(),
            Some((name, port, addrs)) => client.clone().with_host(&name, port, addrs),
        }
    }
}

impl DestinationPolicy {
    /// The policy of `allow` and `deny` for a proxy listening on `own`, with this host's
    /// interfaces.
    pub fn new(allow: Vec<Rule>, deny: Vec<Rule>, own: Vec<SocketAddr>) -> DestinationPolicy {
        DestinationPolicy {
            allow,
            deny,
            own,
            interfaces: Interfaces::of_this_host(),
        }
    }

    /// Whether `to` is one of the proxy's own listening sockets.
    fn is_own(&self, to: SocketAddr) -> bool {
        let ip = canonical(to.ip());
        self.own.iter().any(|o| {
            o.port() == to.port()
                && (canonical(o.ip()) == ip
                    // Bound to a wildcard: reached on every local address.
                    || (o.ip().is_unspecified()
                        && (ip.is_loopback()
                            || self.interfaces.local.iter().any(|l| canonical(*l) == ip))))
        })
    }

    /// Whether the proxy may forward to `to`, reached through `host` (the URI's host name,
    /// `None` for an address literal).
    pub fn check_addr(&self, host: Option<&str>, to: SocketAddr) -> Result<(), Refusal> {
        if self.is_own(to) {
            let named = self.allow.iter().any(|r| {
                matches!(r, Rule::Addr(a, Some(p)) if canonical(*a) == canonical(to.ip()) && *p == to.port())
            });
            return if named {
                Ok(())
            } else {
                Err(Refusal::Itself(to))
            };
        }
        if self.allow.iter().any(|r| r.matches(host, to)) {
            return Ok(());
        }
        if self.deny.iter().any(|r| r.matches(host, to)) {
            return Err(Refusal::Denied(to));
        }
        match reserved(to.ip(), &self.interfaces) {
            Some(kind) => Err(Refusal::Reserved(to, kind)),
            None => Ok(()),
        }
    }

    /// Resolves the host of a `coap://` URI and checks every address it names.
    pub async fn check_uri(&self, uri: &str) -> Result<Checked, Refusal> {
        let parsed = coap_core::Uri::parse(uri).map_err(|_| Refusal::Unresolved(uri.to_owned()))?;
        let port = parsed.port();
        match parsed.host() {
            coap_core::Host::Ip(ip) => {
                self.check_addr(None, SocketAddr::new(ip, port))?;
                Ok(Checked { name: None })
            }
            coap_core::Host::Name(name) => {
                let name = name.to_owned();
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
                    .await
                    .map_err(|_| Refusal::Unresolved(name.clone()))?
                    .collect();
                if addrs.is_empty() {
                    return Err(Refusal::Unresolved(name));
                }
                for a in &addrs {
                    self.check_addr(Some(&name), *a)?;
                }
                Ok(Checked {
                    name: Some((name, port, addrs)),
                })
            }
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
    fn defaults_refuse_reserved_addresses_and_own_sockets() {
        let p = DestinationPolicy {
            own: vec![sa("0.0.0.0:5683")],
            interfaces: Interfaces {
                local: vec!["192.0.2.2".parse().unwrap()],
                broadcast: vec!["192.0.2.255".parse().unwrap()],
            },
            ..Default::default()
        };
        let kind = |s: &str| match p.check_addr(None, sa(s)) {
            Err(Refusal::Reserved(_, k)) => Some(k),
            _ => None,
        };
        assert_eq!(kind("169.254.169.254:80"), Some(Reserved::LinkLocal));
        assert_eq!(kind("[fe80::1]:5683"), Some(Reserved::LinkLocal));
        assert_eq!(
            kind("[::ffff:169.254.169.254]:5683"),
            Some(Reserved::LinkLocal)
        );
        assert_eq!(kind("255.255.255.255:5683"), Some(Reserved::Broadcast));
        assert_eq!(kind("192.0.2.255:5683"), Some(Reserved::Broadcast));
        assert_eq!(kind("224.0.1.187:5683"), Some(Reserved::Multicast));
        assert_eq!(kind("[ff02::fd]:5683"), Some(Reserved::Multicast));
        assert_eq!(kind("0.0.0.0:5684"), Some(Reserved::Unspecified));
        assert_eq!(kind("0.1.2.3:5684"), Some(Reserved::Unspecified));
        assert_eq!(kind("[::]:5684"), Some(Reserved::Unspecified));
        assert_eq!(kind("127.0.0.1:5684"), Some(Reserved::Loopback));
        assert_eq!(kind("[::1]:5684"), Some(Reserved::Loopback));
        // The wildcard-bound socket on every local address.
        for own in [
            "127.0.0.1:5683",
            "192.0.2.2:5683",
            "[::ffff:192.0.2.2]:5683",
        ] {
            assert_eq!(
                p.check_addr(None, sa(own)),
                Err(Refusal::Itself(sa(own))),
                "{own}"
            );
        }
        for ok in [
            "10.0.0.1:5683",
            "192.0.2.1:5683",
            "192.0.2.2:5684",
            "[2001:db8::1]:1",
        ] {
            assert_eq!(p.check_addr(None, sa(ok)), Ok(()), "{ok}");
        }
        // The diagnostic says how to allow it.
        let why = p
            .check_addr(None, sa("127.0.0.1:9"))
            .unwrap_err()
            .to_string();
        assert!(
            why.contains("loopback") && why.contains("--allow 127.0.0.0/8"),
            "{why}"
        );
    }

    #[test]
    fn only_an_exact_rule_reaches_the_proxy_itself() {
        let mut p = DestinationPolicy {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
            own: vec![sa("127.0.0.1:5683")],
            ..Default::default()
        };
        assert_eq!(p.check_addr(None, sa("127.0.0.1:5684")), Ok(()));
        assert_eq!(
            p.check_addr(None, sa("127.0.0.1:5683")),
            Err(Refusal::Itself(sa("127.0.0.1:5683")))
        );
        p.allow.push("127.0.0.1:5683".parse().unwrap());
        assert_eq!(p.check_addr(None, sa("127.0.0.1:5683")), Ok(()));
    }

    #[test]
    fn fib_trie_gives_local_and_broadcast_addresses() {
        let text = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
            \x20    +-- 127.0.0.0/8 2 0 2\n           |-- 127.0.0.0\n              /8 host LOCAL\n\
            \x20          |-- 127.0.0.1\n              /32 host LOCAL\n\
            \x20       |-- 127.255.255.255\n           /32 link BROADCAST\n\
            \x20          |-- 10.1.0.7\n              /32 host LOCAL\n\
            \x20       |-- 10.1.1.255\n           /32 link BROADCAST\n\
            Local:\n           |-- 10.1.0.7\n              /32 host LOCAL\n";
        let i = Interfaces::from_fib_trie(text);
        let ips = |v: &[&str]| {
            v.iter()
                .map(|s| s.parse().unwrap())
                .collect::<Vec<IpAddr>>()
        };
        assert_eq!(i.local, ips(&["127.0.0.1", "10.1.0.7"]));
        assert_eq!(i.broadcast, ips(&["127.255.255.255", "10.1.1.255"]));
    }

    #[test]
    fn allow_beats_deny_and_defaults() {
        let p = DestinationPolicy {
            allow: vec![
                "169.254.169.254".parse().unwrap(),
                "*.lab.example".parse().unwrap(),
            ],
            deny: vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
            ..Default::default()
        };
        assert_eq!(p.check_addr(None, sa("169.254.169.254:5683")), Ok(()));
        assert_eq!(
            p.check_addr(Some("a.lab.example"), sa("10.9.9.9:5683")),
            Ok(())
        );
        assert_eq!(
            p.check_addr(Some("lab.example"), sa("10.9.9.9:5683")),
            Err(Refusal::Denied(sa("10.9.9.9:5683")))
        );
        assert!(p.check_addr(None, sa("[::1]:5683")).is_err());
    }

    #[tokio::test]
    async fn a_name_is_checked_by_its_addresses_and_pinned_to_them() {
        let p = DestinationPolicy::default();
        // localhost resolves to loopback, refused by default whatever its name.
        assert!(matches!(
            p.check_uri("coap://localhost:5683/x").await,
            Err(Refusal::Reserved(_, Reserved::Loopback))
        ));
        let allowed = DestinationPolicy {
            allow: vec!["127.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()],
            ..Default::default()
        };
        let checked = allowed.check_uri("coap://localhost:5683/x").await.unwrap();
        let (name, port, addrs) = checked.name.unwrap();
        assert_eq!((name.as_str(), port), ("localhost", 5683));
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
        assert_eq!(
            allowed.check_uri("coap://127.0.0.1:9/").await,
            Ok(Checked { name: None })
        );
    }

    #[test]
    fn rules_parse_or_explain() {
        assert_eq!(
            "10.0.0.0/8".parse(),
            Ok(Rule::Net("10.0.0.0".parse().unwrap(), 8))
        );
        assert_eq!(
            "[::1]:5683".parse(),
            Ok(Rule::Addr("::1".parse().unwrap(), Some(5683)))
        );
        assert_eq!(
            "*.Example.com".parse(),
            Ok(Rule::Host("*.example.com".into()))
        );
        assert!("10.0.0.0/33".parse::<Rule>().is_err());
        assert!("a b".parse::<Rule>().is_err());
    }
}
