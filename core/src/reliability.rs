//! The message layer's bookkeeping (RFC 7252 §4): retransmission timers with randomized
//! exponential back-off, duplicate detection, per-peer Message IDs, NSTART and
//! PROBING_RATE state. All tables are fixed-size; they evict, they never grow.

use core::hash::{Hash, Hasher};

use crate::config::Config;
use crate::rng::Rng;
use crate::time::{duration_ms, Instant};

/// Retransmission state of one CON message (§4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Retransmit {
    /// When the current timeout expires.
    pub next: Instant,
    /// The current timeout, doubled after each retransmission.
    pub timeout_ms: u32,
    /// Retransmissions sent so far.
    pub count: u8,
    /// Retransmissions allowed (MAX_RETRANSMIT, or less for notifications).
    pub max: u8,
}

/// What to do when a retransmission timer fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RetransmitStep {
    /// Send the message again; the timer was re-armed.
    Resend,
    /// MAX_RETRANSMIT reached and the last timeout expired: give up.
    GiveUp,
}

impl Retransmit {
    /// Arms the timer for the first transmission at `now`: the initial timeout is random in
    /// `[ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR]` (§4.2).
    pub fn start(now: Instant, config: &Config, rng: &mut Rng) -> Retransmit {
        let (lo, hi) = config.initial_timeout_range_ms();
        let timeout_ms = lo + rng.below_or_eq(hi.saturating_sub(lo));
        let timeout_ms = u32::try_from(timeout_ms).unwrap_or(u32::MAX);
        Retransmit {
            next: now.add_millis(u64::from(timeout_ms)),
            timeout_ms,
            count: 0,
            max: config.max_retransmit,
        }
    }

    /// With at most `max` retransmissions (CON notifications give up sooner, so that a
    /// vanished observer is dropped sooner: RFC 7641 §4.5).
    pub fn with_max(self, max: u8) -> Retransmit {
        Retransmit { max, ..self }
    }

    /// The timer fired at `now`: retransmit with a doubled timeout, or give up once
    /// MAX_RETRANSMIT retransmissions have been sent and the last timeout expired.
    pub fn fire(&mut self, now: Instant) -> RetransmitStep {
        if self.count >= self.max {
            return RetransmitStep::GiveUp;
        }
        self.count += 1;
        self.timeout_ms = self.timeout_ms.saturating_mul(2);
        self.next = now.add_millis(u64::from(self.timeout_ms));
        RetransmitStep::Resend
    }
}

/// What a duplicate of a remembered message gets (§4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DupAction {
    /// Send again the response held in a slot (if it is still the same generation).
    Resend { slot: u16, generation: u16 },
    /// Send an empty ACK again (CON responses we acknowledged, deferred requests).
    EmptyAck,
    /// Answer again with a response the endpoint generates itself (4.02, 5.03, ...).
    Control(crate::code::Code),
    /// Ignore (NON duplicates, §4.5).
    Ignore,
}

/// How long a duplicate-detection entry must be kept (RFC 7252 §4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retention {
    /// May be dropped before it expires when the table needs room: a duplicate of an
    /// idempotent request, or of anything that is not a request, may be processed again.
    Evictable,
    /// Must be kept until it expires: the request was not idempotent (POST, PATCH, or an
    /// unknown method), so a duplicate must never reach the handler again (at most once).
    AtMostOnce,
}

#[derive(Clone, Copy, Debug)]
struct DedupEntry<A> {
    peer: A,
    mid: u16,
    retention: Retention,
    /// Next entry in the same hash bucket ([`NO_ENTRY`] ends the chain).
    chain: u16,
    /// Expiry in whole seconds of the caller's clock, rounded up (lifetimes are minutes).
    expires_s: u32,
    action: DupAction,
}

const NO_ENTRY: u16 = u16::MAX;

/// Recently received Message IDs per peer (§4.5). A ring in arrival order: when it is full
/// the oldest entry is dropped if it is [`Retention::Evictable`] (counted in
/// [`DedupTable::evictions`]: an old duplicate of an idempotent request may then look new),
/// and never if it is [`Retention::AtMostOnce`]: until that entry expires nothing new is
/// remembered, and the endpoint refuses non-idempotent requests (5.03) rather than risk
/// executing one twice.
/// A hash index over (peer, Message ID) keeps lookups O(1) however large the table is
/// (N ≤ 65535).
pub(crate) struct DedupTable<A, const N: usize> {
    entries: [Option<DedupEntry<A>>; N],
    /// Bucket → first entry of its chain.
    heads: [u16; N],
    next: usize,
    pub evictions: u32,
}

/// FNV-1a: small, no_std, good enough to spread (peer, Message ID) over buckets.
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn secs_ceil(ms: u64) -> u32 {
    u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX)
}

impl<A: Copy + Eq + Hash, const N: usize> DedupTable<A, N> {
    pub const fn new() -> Self {
        DedupTable {
            entries: [None; N],
            heads: [NO_ENTRY; N],
            next: 0,
            evictions: 0,
        }
    }

    /// Capacity.
    pub const CAPACITY: usize = N;

    fn bucket(peer: &A, mid: u16) -> usize {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        peer.hash(&mut h);
        h.write(&mid.to_be_bytes());
        (h.finish() % (N.max(1) as u64)) as usize
    }

    /// The action remembered for `(peer, mid)` if it has not expired.
    pub fn lookup(&mut self, now: Instant, peer: A, mid: u16) -> Option<&mut DupAction> {
        let now_s = now.as_millis() / 1000;
        let mut i = *self.heads.get(Self::bucket(&peer, mid))?;
        let mut found = None;
        // Chains are short; the bound guards against any inconsistency.
        for _ in 0..N {
            let e = self.entries.get(usize::from(i))?.as_ref()?;
            if e.mid == mid && e.peer == peer {
                found = (u64::from(e.expires_s) > now_s).then_some(i);
                break;
            }
            if e.chain == NO_ENTRY {
                break;
            }
            i = e.chain;
        }
        let i = found?;
        self.entries
            .get_mut(usize::from(i))?
            .as_mut()
            .map(|e| &mut e.action)
    }

    /// Unlinks entry `i` from its bucket's chain.
    fn unlink(&mut self, i: usize) {
        let Some(Some(old)) = self.entries.get(i).copied() else {
            return;
        };
        let b = Self::bucket(&old.peer, old.mid);
        let Some(head) = self.heads.get_mut(b) else {
            return;
        };
        if usize::from(*head) == i {
            *head = old.chain;
            return;
        }
        let mut j = *head;
        for _ in 0..N {
            let Some(Some(e)) = self.entries.get_mut(usize::from(j)) else {
                return;
            };
            if usize::from(e.chain) == i {
                e.chain = old.chain;
                return;
            }
            if e.chain == NO_ENTRY {
                return;
            }
            j = e.chain;
        }
    }

    /// When the next insertion would have to drop an unexpired [`Retention::AtMostOnce`]
    /// entry: the milliseconds until that entry expires (and room is made). `None` when an
    /// entry can be remembered now.
    pub fn blocked_for(&self, now: Instant) -> Option<u64> {
        let cap = Self::CAPACITY.min(usize::from(NO_ENTRY));
        let e = self.entries.get(self.next % cap.max(1))?.as_ref()?;
        let expires_ms = u64::from(e.expires_s) * 1000;
        (e.retention == Retention::AtMostOnce && expires_ms > now.as_millis())
            .then(|| expires_ms - now.as_millis())
    }

    /// Remembers a message for `lifetime_ms` (an evictable entry).
    pub fn insert(&mut self, now: Instant, peer: A, mid: u16, lifetime_ms: u64, action: DupAction) {
        self.remember(now, peer, mid, lifetime_ms, action, Retention::Evictable);
    }

    /// Remembers a message for `lifetime_ms` with `retention`. Returns false, remembering
    /// nothing, when that would drop an unexpired at-most-once entry (see
    /// [`DedupTable::blocked_for`]).
    pub fn remember(
        &mut self,
        now: Instant,
        peer: A,
        mid: u16,
        lifetime_ms: u64,
        action: DupAction,
        retention: Retention,
    ) -> bool {
        let cap = Self::CAPACITY.min(usize::from(NO_ENTRY));
        if cap == 0 || self.blocked_for(now).is_some() {
            return false;
        }
        let i = self.next % cap;
        self.next = (i + 1) % cap;
        if matches!(self.entries.get(i), Some(Some(e)) if u64::from(e.expires_s) > now.as_millis() / 1000)
        {
            self.evictions = self.evictions.saturating_add(1);
        }
        self.unlink(i);
        let b = Self::bucket(&peer, mid);
        let Some(head) = self.heads.get_mut(b) else {
            return false;
        };
        let chain = *head;
        *head = i as u16;
        if let Some(slot) = self.entries.get_mut(i) {
            *slot = Some(DedupEntry {
                peer,
                mid,
                retention,
                chain,
                expires_s: secs_ceil(now.as_millis().saturating_add(lifetime_ms)),
                action,
            });
        }
        true
    }

    /// Number of unexpired entries.
    pub fn live(&self, now: Instant) -> usize {
        let now_s = now.as_millis() / 1000;
        self.entries
            .iter()
            .flatten()
            .filter(|e| u64::from(e.expires_s) > now_s)
            .count()
    }
}

/// Per-peer state: the next Message ID, activity for PROBING_RATE.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer<A> {
    pub addr: A,
    pub next_mid: u16,
    /// Seconds of the caller's clock, for least-recently-used eviction.
    pub last_used_s: u32,
    /// The peer has not answered a whole exchange: limit to PROBING_RATE (§4.7).
    pub unresponsive: bool,
    /// Earliest time the next request may go to an unresponsive peer.
    pub probe_not_before: Instant,
}

/// Peers this endpoint talks to, least recently used evicted first. A new peer starts its
/// Message IDs at a random value (§4.4).
pub(crate) struct PeerTable<A, const N: usize> {
    peers: [Option<Peer<A>>; N],
}

impl<A: Copy + Eq, const N: usize> PeerTable<A, N> {
    pub const fn new() -> Self {
        PeerTable { peers: [None; N] }
    }

    /// A copy of the entry for `addr`, without touching its LRU state.
    pub fn find(&self, addr: A) -> Option<Peer<A>> {
        self.peers
            .iter()
            .flatten()
            .find(|p| p.addr == addr)
            .copied()
    }

    pub fn get(&mut self, addr: A) -> Option<&mut Peer<A>> {
        self.peers.iter_mut().flatten().find(|p| p.addr == addr)
    }

    /// The entry for `addr`, created (evicting the least recently used) if needed.
    pub fn entry(&mut self, now: Instant, addr: A, rng: &mut Rng) -> Option<&mut Peer<A>> {
        let flat = &mut self.peers;
        let pos = match flat
            .iter()
            .position(|p| matches!(p, Some(p) if p.addr == addr))
        {
            Some(i) => i,
            None => {
                let i = match flat.iter().position(Option::is_none) {
                    Some(i) => i,
                    None => flat
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, p)| p.map(|p| p.last_used_s))
                        .map(|(i, _)| i)?,
                };
                *flat.get_mut(i)? = Some(Peer {
                    addr,
                    next_mid: rng.next_u64() as u16,
                    last_used_s: secs_ceil(now.as_millis()),
                    unresponsive: false,
                    probe_not_before: Instant::ZERO,
                });
                i
            }
        };
        let p = flat.get_mut(pos)?.as_mut()?;
        p.last_used_s = secs_ceil(now.as_millis());
        Some(p)
    }

    /// Allocates the next Message ID for `addr`.
    pub fn next_mid(&mut self, now: Instant, addr: A, rng: &mut Rng) -> u16 {
        match self.entry(now, addr, rng) {
            Some(p) => {
                let mid = p.next_mid;
                p.next_mid = p.next_mid.wrapping_add(1);
                mid
            }
            None => rng.next_u64() as u16,
        }
    }
}

/// The time a PROBING_RATE-limited peer must wait after `bytes` were sent to it.
pub(crate) fn probing_delay_ms(config: &Config, bytes: usize) -> u64 {
    let rate = u64::from(config.probing_rate.max(1));
    (bytes as u64).saturating_mul(1000) / rate
}

/// Milliseconds of a lifetime, for dedup entries.
pub(crate) fn lifetime_ms(d: core::time::Duration) -> u64 {
    duration_ms(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_gives_up() {
        let c = Config::default();
        let mut rng = Rng::new(1);
        for seed in 0..200 {
            rng = Rng::new(seed);
            let r = Retransmit::start(Instant::ZERO, &c, &mut rng);
            assert!((2000..=3000).contains(&r.timeout_ms));
        }
        let mut r = Retransmit::start(Instant::ZERO, &c, &mut rng);
        let t0 = r.timeout_ms;
        let mut now = r.next;
        for k in 1..=4u32 {
            assert_eq!(r.fire(now), RetransmitStep::Resend);
            assert_eq!(r.timeout_ms, t0 << k);
            now = r.next;
        }
        assert_eq!(r.fire(now), RetransmitStep::GiveUp);
        // Give-up time = t0 * 31, at most MAX_TRANSMIT_WAIT.
        assert_eq!(now.as_millis(), u64::from(t0) * 31);
        assert!(now.as_millis() <= 93_000);
    }

    #[test]
    fn dedup_ring_bounded_and_expiring() {
        let mut t: DedupTable<u32, 8> = DedupTable::new();
        for i in 0..8u32 {
            t.insert(Instant::ZERO, i, 1, 1000, DupAction::Ignore);
        }
        assert_eq!(t.live(Instant::ZERO), 8);
        assert!(t.lookup(Instant::ZERO, 0, 1).is_some());
        t.insert(Instant::ZERO, 100, 1, 1000, DupAction::Ignore);
        assert!(t.lookup(Instant::ZERO, 0, 1).is_none(), "oldest evicted");
        assert_eq!(t.evictions, 1);
        assert!(
            t.lookup(Instant::from_millis(1000), 100, 1).is_none(),
            "expired"
        );
    }

    /// The hash index agrees with a plain model of the ring under many collisions.
    #[test]
    fn dedup_index_matches_a_model() {
        extern crate std;
        use std::vec::Vec;
        let mut t: DedupTable<u32, 64> = DedupTable::new();
        let mut model: Vec<(u32, u16)> = Vec::new();
        let mut rng = Rng::new(3);
        for n in 0..5000u32 {
            let peer = (rng.next_u64() % 7) as u32;
            let mid = (rng.next_u64() % 50) as u16;
            if t.lookup(Instant::ZERO, peer, mid).is_none() {
                t.insert(Instant::ZERO, peer, mid, 1_000_000, DupAction::Ignore);
                model.push((peer, mid));
                if model.len() > 64 {
                    model.remove(0);
                }
            }
            for (p, m) in &model {
                assert!(
                    t.lookup(Instant::ZERO, *p, *m).is_some(),
                    "step {n}: lost ({p}, {m})"
                );
            }
            assert_eq!(t.live(Instant::ZERO), model.len());
        }
    }

    #[test]
    fn peers_lru_and_random_mid_start() {
        let mut rng = Rng::new(7);
        let mut t: PeerTable<u32, 2> = PeerTable::new();
        let a = t.next_mid(Instant::from_millis(1000), 1, &mut rng);
        assert_eq!(
            t.next_mid(Instant::from_millis(2000), 1, &mut rng),
            a.wrapping_add(1)
        );
        t.next_mid(Instant::from_millis(3000), 2, &mut rng);
        t.next_mid(Instant::from_millis(4000), 3, &mut rng); // evicts peer 1 (LRU)
        assert!(t.get(1).is_none());
        assert!(t.get(2).is_some() && t.get(3).is_some());
    }
}
