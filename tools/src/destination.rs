//! Where the proxies may forward to: a destination policy checked after name resolution.
//!
//! A forward proxy reachable by strangers is a way into the networks it can reach
//! (RFC 7252 §11.2 on proxies; RFC 8075 §9). The default refuses destinations that no
//! public CoAP proxy should reach on a client's behalf: link-local addresses
//! (169.254.0.0/16, where cloud metadata services live, and fe80::/10), the limited
//! broadcast address, multicast, unspecified addresses, and the proxy's own listening
//! sockets (a request to itself would loop until Hop-Limit runs out). Loopback and private
//! networks are forwarded to by default (a development proxy talks to local servers);
//! an operator exposing the proxy denies them with `--deny`.
//!
//! Rules: an address (`169.254.169.254`, `::1`), an address with a port
//! (`127.0.0.1:5683`, `[::1]:5683`), a network in CIDR (`10.0.0.0/8`, `fe80::/10`), or a
//! host pattern (`example.com`, `*.example.com`, matched case-insensitively against the
//! URI's host name). Order of decision: an `allow` rule matching the name or the address
//! forwards; otherwise a `deny` rule or the default set refuses. So `--deny 0.0.0.0/0
//! --deny ::/0 --allow 10.1.2.3` forwards to 10.1.2.3 only. Every address a name resolves
//! to must pass.

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

/// Why a destination is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A `--deny` rule matched.
    Denied(SocketAddr),
    /// In the default-refused set (link-local, broadcast, multicast, unspecified).
    Special(SocketAddr),
    /// One of the proxy's own listening sockets.
    Itself(SocketAddr),
    /// The name did not resolve.
    Unresolved(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Denied(a) => write!(f, "destination {a} is denied by the proxy's policy"),
            Refusal::Special(a) => write!(
                f,
                "destination {a} is link-local, broadcast, multicast or unspecified \
                 (not forwarded unless --allow'ed)"
            ),
            Refusal::Itself(a) => write!(f, "destination {a} is the proxy itself"),
            Refusal::Unresolved(h) => write!(f, "cannot resolve {h}"),
        }
    }
}

/// The proxies' destination policy (see the [module docs](self)).
#[derive(Clone, Debug, Default)]
pub struct DestinationPolicy {
    /// Rules that forward whatever else says.
    pub allow: Vec<Rule>,
    /// Rules that refuse.
    pub deny: Vec<Rule>,
    /// The proxy's own listening sockets.
    pub own: Vec<SocketAddr>,
}

fn special(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(a) => {
            a.is_link_local() || a.is_broadcast() || a.is_multicast() || a.is_unspecified()
        }
        IpAddr::V6(a) => {
            (a.segments()[0] & 0xffc0) == 0xfe80 || a.is_multicast() || a.is_unspecified()
        }
    }
}

impl DestinationPolicy {
    /// Whether the proxy may forward to `to`, reached through `host` (the URI's host name,
    /// `None` for an address literal).
    pub fn check_addr(&self, host: Option<&str>, to: SocketAddr) -> Result<(), Refusal> {
        if self.allow.iter().any(|r| r.matches(host, to)) {
            return Ok(());
        }
        if self.deny.iter().any(|r| r.matches(host, to)) {
            return Err(Refusal::Denied(to));
        }
        if special(to.ip()) {
            return Err(Refusal::Special(to));
        }
        let ip = canonical(to.ip());
        let itself = self.own.iter().any(|o| {
            o.port() == to.port()
                && (canonical(o.ip()) == ip
                    // Bound to the unspecified address: reachable at least over loopback.
                    || (o.ip().is_unspecified() && ip.is_loopback()))
        });
        if itself {
            return Err(Refusal::Itself(to));
        }
        Ok(())
    }

    /// Resolves the host of a `coap://` URI and checks every address it names.
    pub async fn check_uri(&self, uri: &str) -> Result<(), Refusal> {
        let parsed = coap_core::Uri::parse(uri).map_err(|_| Refusal::Unresolved(uri.to_owned()))?;
        let port = parsed.port();
        match parsed.host() {
            coap_core::Host::Ip(ip) => self.check_addr(None, SocketAddr::new(ip, port)),
            coap_core::Host::Name(name) => {
                let name = name.to_owned();
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
                    .await
                    .map_err(|_| Refusal::Unresolved(name.clone()))?
                    .collect();
                if addrs.is_empty() {
                    return Err(Refusal::Unresolved(name));
                }
                for a in addrs {
                    self.check_addr(Some(&name), a)?;
                }
                Ok(())
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
    fn defaults_refuse_special_and_own_sockets_but_forward_loopback() {
        let p = DestinationPolicy {
            own: vec![sa("0.0.0.0:5683")],
            ..Default::default()
        };
        for bad in [
            "169.254.169.254:80",
            "[fe80::1]:5683",
            "255.255.255.255:5683",
            "224.0.1.187:5683",
            "[ff02::fd]:5683",
            "0.0.0.0:5683",
            "[::]:5683",
            "[::ffff:169.254.169.254]:5683",
            "127.0.0.1:5683",
        ] {
            assert!(p.check_addr(None, sa(bad)).is_err(), "{bad}");
        }
        for ok in [
            "127.0.0.1:5684",
            "[::1]:5684",
            "10.0.0.1:5683",
            "192.0.2.1:5683",
        ] {
            assert_eq!(p.check_addr(None, sa(ok)), Ok(()), "{ok}");
        }
    }

    #[test]
    fn allow_beats_deny_and_defaults() {
        let p = DestinationPolicy {
            allow: vec![
                "169.254.169.254".parse().unwrap(),
                "*.lab.example".parse().unwrap(),
            ],
            deny: vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
            own: vec![],
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
