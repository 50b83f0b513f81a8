//! The two budgets of a session table: half-open handshakes (in all and per source host)
//! and established sessions, kept apart so that handshakes anyone can start cheaply never
//! displace an association a client has completed.
//!
//! A half-open session exists only after its client echoed a valid cookie (RFC 6347
//! §4.2.1), i.e. proved that it receives at its address; that is cheap for anyone with a
//! range of addresses (one host with many ports, or a block of them). So:
//! - at most [`Config::max_handshakes`] are half-open at once, and at most
//!   [`Config::max_handshakes_per_host`] from one host; beyond either the oldest of them
//!   (of that host first) is dropped, never an established session;
//! - each expires [`Config::handshake_timeout`] after it was created, whatever the engine's
//!   retransmission timers say;
//! - a new association while [`Config::max_sessions`] are established is refused or evicts
//!   the least recently active one, as [`Config::when_full`] says.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::{Config, Finish, HandshakeErrorOr, Role, Session, Sessions, State, WhenFull};
use crate::error::{CloseReason, HandshakeError};

/// The source a per-host budget counts: an IPv4 address, or the /64 of an IPv6 one (a
/// site usually holds a whole /64, so counting single IPv6 addresses would bound nothing).
/// IPv4-mapped IPv6 addresses (a dual-stack socket) count as the IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Host {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

impl Host {
    pub(super) fn of(addr: SocketAddr) -> Host {
        match addr.ip().to_canonical() {
            IpAddr::V4(ip) => Host::V4(ip.octets()),
            IpAddr::V6(ip) => {
                let [a, b, c, d, e, f, g, h, ..] = ip.octets();
                Host::V6Prefix([a, b, c, d, e, f, g, h])
            }
        }
    }
}

impl Session {
    fn is_handshaking(&self) -> bool {
        matches!(self.state, State::Handshaking { .. })
    }

    /// When this session's handshake deadline passes (None once established).
    pub(super) fn handshake_deadline(&self, config: &Config) -> Option<Instant> {
        if self.is_handshaking() {
            self.started.checked_add(config.handshake_timeout)
        } else {
            None
        }
    }
}

impl<R: Role> Sessions<R> {
    /// Half-open sessions, in all.
    pub(super) fn handshaking(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| s.is_handshaking())
            .count()
    }

    /// Established sessions.
    pub(super) fn established(&self) -> usize {
        self.sessions.len() - self.handshaking()
    }

    /// Before a new half-open session with `addr` is created: drops the oldest half-open
    /// sessions of its host beyond [`Config::max_handshakes_per_host`] (servers only: a
    /// client's sessions all go to servers it chose), then the oldest of all beyond
    /// [`Config::max_handshakes`]. Established sessions are never touched.
    pub(super) fn make_room_for_handshake(&mut self, now: Instant, addr: SocketAddr) {
        if R::SERVER {
            let host = Host::of(addr);
            let per_host = self.config.max_handshakes_per_host.max(1);
            self.drop_oldest_half_open(now, per_host, |s| Host::of(s.id.addr) == host);
        }
        let total = self.config.max_handshakes.max(1);
        self.drop_oldest_half_open(now, total, |_| true);
    }

    /// Drops the oldest half-open sessions matching `which` until fewer than `limit` are
    /// left (room for one more).
    fn drop_oldest_half_open(
        &mut self,
        now: Instant,
        limit: usize,
        which: impl Fn(&Session) -> bool,
    ) {
        // Each round removes one session: bounded by the table size.
        for _ in 0..=self.sessions.len() {
            let matching = self
                .sessions
                .values()
                .filter(|s| s.is_handshaking() && which(s));
            if matching.clone().count() < limit {
                return;
            }
            let Some(victim) = matching.min_by_key(|s| s.started).map(|s| s.id.addr) else {
                return;
            };
            self.out.stats.half_open_dropped += 1;
            let error =
                HandshakeErrorOr(HandshakeError::Dropped, HandshakeError::Dropped.to_string());
            self.finish(now, victim, Finish::Error(error), false);
        }
    }

    /// Whether a server should refuse a new association with `addr` now: the established
    /// table is full, the policy is [`WhenFull::Refuse`], and `addr` has no session that the
    /// new one would replace (a replacement does not grow the table).
    pub(super) fn refuses_new_session(&self, addr: SocketAddr) -> bool {
        self.config.when_full == WhenFull::Refuse
            && !self.sessions.contains_key(&addr)
            && self.established() >= self.config.max_sessions.max(1)
    }

    /// After `keep` may have completed its handshake: brings the established table back to
    /// [`Config::max_sessions`]. Under [`WhenFull::EvictLeastRecent`] the least recently
    /// active other sessions go; under [`WhenFull::Refuse`] (the table filled up while
    /// `keep`'s handshake ran) `keep` itself goes. Both with close_notify.
    pub(super) fn enforce_established_limit(&mut self, now: Instant, keep: SocketAddr) {
        let max = self.config.max_sessions.max(1);
        // Each round removes one session: bounded by the table size.
        for _ in 0..=self.sessions.len() {
            if self.established() <= max {
                return;
            }
            let victim = match self.config.when_full {
                WhenFull::EvictLeastRecent => self
                    .sessions
                    .values()
                    .filter(|s| !s.is_handshaking() && s.id.addr != keep)
                    .min_by_key(|s| s.last_activity)
                    .map(|s| s.id.addr),
                WhenFull::Refuse => Some(keep),
            };
            let Some(victim) = victim else {
                return;
            };
            self.out.stats.evicted += 1;
            self.finish(now, victim, Finish::Closed(CloseReason::Evicted), true);
        }
    }

    /// Fails every half-open session whose [`Config::handshake_timeout`] has passed.
    pub(super) fn expire_handshakes(&mut self, now: Instant) {
        let expired: Vec<SocketAddr> = self
            .sessions
            .values()
            .filter(|s| s.handshake_deadline(&self.config).is_some_and(|d| d <= now))
            .map(|s| s.id.addr)
            .collect();
        for addr in expired {
            self.out.stats.handshakes_expired += 1;
            let error = HandshakeErrorOr(HandshakeError::Timeout, "handshake timed out".into());
            self.finish(now, addr, Finish::Error(error), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Host;
    use std::net::SocketAddr;

    fn host(s: &str) -> Host {
        Host::of(s.parse::<SocketAddr>().unwrap())
    }

    #[test]
    fn a_host_is_an_ipv4_address_or_an_ipv6_64() {
        assert_eq!(host("192.0.2.1:1"), host("192.0.2.1:2"));
        assert_ne!(host("192.0.2.1:1"), host("192.0.2.2:1"));
        // A dual-stack socket's IPv4-mapped form is the same host.
        assert_eq!(host("[::ffff:192.0.2.1]:5"), host("192.0.2.1:6"));
        assert_eq!(
            host("[2001:db8:1:2::1]:1"),
            host("[2001:db8:1:2:ffff::9]:7")
        );
        assert_ne!(host("[2001:db8:1:2::1]:1"), host("[2001:db8:1:3::1]:1"));
    }
}
