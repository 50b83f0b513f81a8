//! Duplicate detection (RFC 7252 §4.5): the Message IDs received recently, per peer, and
//! what a duplicate of each gets. The entries live in caller-provided storage
//! ([`DedupStore`]): a fixed array by default, or a store that grows on demand (the std
//! crates'), so that a busy server keeps its at-most-once window instead of forgetting.

use core::hash::{Hash, Hasher};
use core::marker::PhantomData;

use crate::reliability::{secs_ceil, DupAction, Retention};
use crate::storage::Index;
use crate::time::Instant;

/// One entry of a duplicate-detection table, or none. Opaque: only its storage is the
/// caller's.
#[derive(Clone, Copy, Debug)]
pub struct DedupEntry<A, I>(Option<Entry<A, I>>);

impl<A, I> DedupEntry<A, I> {
    /// No entry (what storage is filled with).
    pub const EMPTY: Self = DedupEntry(None);
}

#[derive(Clone, Copy, Debug)]
struct Entry<A, I> {
    peer: A,
    mid: u16,
    retention: Retention,
    /// Next entry in the same hash bucket ([`Index::NONE`] ends the chain).
    chain: I,
    /// Expiry in whole seconds of the caller's clock, rounded up (lifetimes are minutes).
    expires_s: u32,
    action: DupAction,
}

/// A store's entries and bucket heads, borrowed together.
pub type DedupParts<'a, A, I> = (&'a mut [DedupEntry<A, I>], &'a mut [I]);

/// Storage for duplicate detection: the entries, and as many hash bucket heads (kept
/// apart: a head is two bytes on a microcontroller, where padding inside the entries would
/// cost four). [`FixedDedup`] is the fixed one (up to 65,535 entries); a growable store
/// with `u32` indices comes from the std crates.
pub trait DedupStore<A> {
    /// How positions are stored.
    type Index: Index;
    /// Whether the store can grow at all (fixed arrays cannot: their growth code is
    /// left out of the build).
    const GROWS: bool = true;
    /// An empty store.
    fn empty() -> Self;
    /// The entries; as many as the heads.
    fn entries(&self) -> &[DedupEntry<A, Self::Index>];
    /// The bucket heads.
    fn heads(&self) -> &[Self::Index];
    /// Both, mutably.
    fn parts_mut(&mut self) -> DedupParts<'_, A, Self::Index>;
    /// Grows to `len` entries (empty) and heads (`Index::NONE`) if the store's limit
    /// allows; whether it did. Fixed storage never grows.
    fn grow_to(&mut self, len: usize) -> bool {
        let _ = len;
        false
    }
    /// The most entries this store will ever hold.
    fn limit(&self) -> usize {
        self.entries().len()
    }
    /// How far the store grows to keep entries that may be forgotten (of idempotent
    /// requests, RFC 7252 §4.5): beyond it only at-most-once entries make it grow, so
    /// that a flood of GETs does not spread the table over memory the cache cannot hold.
    fn soft_limit(&self) -> usize {
        self.limit()
    }
}

/// Fixed storage for `N` entries (the default of [`crate::Endpoint`]).
#[derive(Debug)]
pub struct FixedDedup<A, const N: usize> {
    entries: [DedupEntry<A, u16>; N],
    heads: [u16; N],
}

impl<A: Copy, const N: usize> DedupStore<A> for FixedDedup<A, N> {
    type Index = u16;
    const GROWS: bool = false;
    fn empty() -> Self {
        FixedDedup {
            entries: [DedupEntry::EMPTY; N],
            heads: [u16::NONE; N],
        }
    }
    fn entries(&self) -> &[DedupEntry<A, u16>] {
        &self.entries
    }
    fn heads(&self) -> &[u16] {
        &self.heads
    }
    fn parts_mut(&mut self) -> DedupParts<'_, A, u16> {
        (&mut self.entries, &mut self.heads)
    }
}

/// Recently received Message IDs per peer (§4.5). A ring in arrival order: when the next
/// position holds an unexpired entry the store grows if it can; otherwise that oldest
/// entry is dropped if it is [`Retention::Evictable`] (counted in
/// [`DedupTable::evictions`]: an old duplicate of an idempotent request may then look new),
/// and never if it is [`Retention::AtMostOnce`]: until that entry expires nothing new is
/// remembered, and the endpoint refuses non-idempotent requests (5.03) rather than risk
/// executing one twice. A hash index over (peer, Message ID), kept in the same positions,
/// makes lookups O(1) however large the table is.
pub(crate) struct DedupTable<A, S> {
    store: S,
    next: usize,
    pub evictions: u32,
    _peer: PhantomData<fn() -> A>,
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

/// Smallest size a growing store starts from.
const MIN_GROWN: usize = 64;

impl<A: Copy + Eq + Hash, S: DedupStore<A>> DedupTable<A, S> {
    #[cfg(test)]
    pub fn new() -> Self {
        Self::with_store(S::empty())
    }

    pub fn with_store(store: S) -> Self {
        DedupTable {
            store,
            next: 0,
            evictions: 0,
            _peer: PhantomData,
        }
    }

    fn len(&self) -> usize {
        self.store.entries().len().min(self.store.heads().len())
    }

    fn bucket(peer: &A, mid: u16, len: usize) -> usize {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        peer.hash(&mut h);
        h.write(&mid.to_be_bytes());
        (h.finish() % (len.max(1) as u64)) as usize
    }

    fn entry(&self, i: usize) -> Option<&Entry<A, S::Index>> {
        self.store.entries().get(i)?.0.as_ref()
    }

    /// The action remembered for `(peer, mid)` if it has not expired.
    pub fn lookup(&mut self, now: Instant, peer: A, mid: u16) -> Option<&mut DupAction> {
        let now_s = now.as_millis() / 1000;
        let len = self.len();
        let mut i = *self.store.heads().get(Self::bucket(&peer, mid, len))?;
        let mut found = None;
        // Chains are short; the bound guards against any inconsistency.
        for _ in 0..len {
            let e = self.entry(i.to_usize())?;
            if e.mid == mid && e.peer == peer {
                found = (u64::from(e.expires_s) > now_s).then_some(i);
                break;
            }
            if e.chain == S::Index::NONE {
                break;
            }
            i = e.chain;
        }
        let i = found?.to_usize();
        let (entries, _) = self.store.parts_mut();
        entries.get_mut(i)?.0.as_mut().map(|e| &mut e.action)
    }

    /// Unlinks entry `i` from its bucket's chain.
    fn unlink(&mut self, i: usize) {
        let len = self.len();
        let Some(old) = self.entry(i).copied() else {
            return;
        };
        let b = Self::bucket(&old.peer, old.mid, len);
        let (entries, heads) = self.store.parts_mut();
        let Some(head) = heads.get_mut(b) else {
            return;
        };
        if head.to_usize() == i {
            *head = old.chain;
            return;
        }
        let mut j = *head;
        for _ in 0..len {
            let Some(Some(e)) = entries.get_mut(j.to_usize()).map(|s| s.0.as_mut()) else {
                return;
            };
            if e.chain.to_usize() == i {
                e.chain = old.chain;
                return;
            }
            if e.chain == S::Index::NONE {
                return;
            }
            j = e.chain;
        }
    }

    /// Doubles the store (up to its limit) rather than drop the oldest entry: the ring is
    /// laid out again oldest first and the index rebuilt, O(entries) per doubling.
    fn grow(&mut self, cap: usize) -> bool {
        if !S::GROWS {
            return false;
        }
        let len = self.len();
        let limit = self.store.limit().min(cap);
        if len >= limit {
            return false;
        }
        let new_len = len.saturating_mul(2).max(MIN_GROWN).min(limit);
        let next = self.next.min(len);
        if let Some(ring) = self.store.parts_mut().0.get_mut(..len) {
            ring.rotate_left(next);
        }
        if !self.store.grow_to(new_len) {
            if let Some(ring) = self.store.parts_mut().0.get_mut(..len) {
                ring.rotate_right(next);
            }
            return false;
        }
        let new_len = self.len();
        let (entries, heads) = self.store.parts_mut();
        for h in heads.iter_mut() {
            *h = S::Index::NONE;
        }
        // Oldest first, each pushed on its bucket's head: the newest entry of a key is
        // found first, as before.
        for (i, slot) in entries.iter_mut().enumerate().take(len) {
            let Some(e) = slot.0.as_mut() else { continue };
            let Some(head) = heads.get_mut(Self::bucket(&e.peer, e.mid, new_len)) else {
                continue;
            };
            e.chain = *head;
            *head = S::Index::from_usize(i);
        }
        self.next = len;
        true
    }

    /// Whether position `i` holds an entry that has not expired.
    fn live_at(&self, i: usize, now: Instant) -> bool {
        self.entry(i)
            .is_some_and(|e| u64::from(e.expires_s) > now.as_millis() / 1000)
    }

    /// Makes room for the next entry by growing the store when the next position is
    /// still live. Then: the milliseconds until the unexpired [`Retention::AtMostOnce`]
    /// entry there expires, if the next insertion would have to drop one; `None` when an
    /// entry can be remembered now.
    pub fn make_room(&mut self, now: Instant) -> Option<u64> {
        if S::GROWS {
            let len = self.len();
            let next = self.next % len.max(1);
            // An at-most-once entry in the way may grow the store to its limit; one that
            // may be forgotten, only to the soft limit.
            let cap = match self.entry(next) {
                None if len == 0 => Some(self.store.soft_limit()),
                Some(e) if self.live_at(next, now) => Some(match e.retention {
                    Retention::AtMostOnce => self.store.limit(),
                    Retention::Evictable => self.store.soft_limit(),
                }),
                _ => None,
            };
            if let Some(cap) = cap {
                self.grow(cap);
            }
        }
        let len = self.len();
        let e = self.entry(self.next % len.max(1))?;
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
    /// [`DedupTable::make_room`]).
    pub fn remember(
        &mut self,
        now: Instant,
        peer: A,
        mid: u16,
        lifetime_ms: u64,
        action: DupAction,
        retention: Retention,
    ) -> bool {
        if self.make_room(now).is_some() {
            return false;
        }
        let len = self.len();
        if len == 0 {
            return false;
        }
        let i = self.next % len;
        self.next = (i + 1) % len;
        if self.live_at(i, now) {
            self.evictions = self.evictions.saturating_add(1);
        }
        self.unlink(i);
        let b = Self::bucket(&peer, mid, len);
        let (entries, heads) = self.store.parts_mut();
        let Some(head) = heads.get_mut(b) else {
            return false;
        };
        let chain = *head;
        *head = S::Index::from_usize(i);
        if let Some(slot) = entries.get_mut(i) {
            slot.0 = Some(Entry {
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
        self.store
            .entries()
            .iter()
            .filter_map(|s| s.0.as_ref())
            .filter(|e| u64::from(e.expires_s) > now_s)
            .count()
    }

    /// Entries the store holds now (its current size, live or not).
    pub fn capacity(&self) -> usize {
        self.len()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::rng::Rng;
    use crate::storage::Index;
    use std::vec::Vec;

    type Fixed<const N: usize> = DedupTable<u32, FixedDedup<u32, N>>;

    #[test]
    fn dedup_ring_bounded_and_expiring() {
        let mut t: Fixed<8> = DedupTable::new();
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
        let mut t: Fixed<64> = DedupTable::new();
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

    /// A growable store for the tests (the std crates have their own).
    struct Grow(Vec<DedupEntry<u32, u32>>, Vec<u32>, usize, usize);

    impl DedupStore<u32> for Grow {
        type Index = u32;
        fn empty() -> Self {
            Grow(Vec::new(), Vec::new(), 1000, 1000)
        }
        fn entries(&self) -> &[DedupEntry<u32, u32>] {
            &self.0
        }
        fn heads(&self) -> &[u32] {
            &self.1
        }
        fn parts_mut(&mut self) -> DedupParts<'_, u32, u32> {
            (&mut self.0, &mut self.1)
        }
        fn grow_to(&mut self, len: usize) -> bool {
            if len > self.2 {
                return false;
            }
            self.0.resize(len, DedupEntry::EMPTY);
            self.1.resize(len, u32::NONE);
            true
        }
        fn limit(&self) -> usize {
            self.2
        }
        fn soft_limit(&self) -> usize {
            self.3
        }
    }

    /// A growing store keeps every unexpired entry up to its limit (no eviction), finds
    /// all of them after each doubling, and evicts only at the limit.
    #[test]
    fn growable_store_keeps_the_window_until_its_limit() {
        let mut t: DedupTable<u32, Grow> = DedupTable::new();
        let mut rng = Rng::new(9);
        let keys: Vec<(u32, u16)> = (0..1000)
            .map(|_| ((rng.next_u64() % 50) as u32, rng.next_u64() as u16))
            .collect();
        let mut remembered = Vec::new();
        for (n, &(p, m)) in keys.iter().enumerate() {
            if t.lookup(Instant::ZERO, p, m).is_some() {
                continue; // a repeated random key
            }
            assert!(t.remember(
                Instant::ZERO,
                p,
                m,
                247_000,
                DupAction::Ignore,
                Retention::AtMostOnce
            ));
            remembered.push((p, m));
            if n % 97 == 0 {
                for &(p, m) in &remembered {
                    assert!(t.lookup(Instant::ZERO, p, m).is_some(), "lost ({p}, {m})");
                }
            }
        }
        assert_eq!(t.evictions, 0);
        assert_eq!(t.live(Instant::ZERO), remembered.len());
        assert!(t.capacity() <= 1000);
        // At the limit, at most once: nothing is forgotten, new entries are refused.
        while t.live(Instant::ZERO) < 1000 {
            let k = t.live(Instant::ZERO) as u16;
            t.remember(
                Instant::ZERO,
                999,
                k,
                247_000,
                DupAction::Ignore,
                Retention::AtMostOnce,
            );
        }
        assert!(t.make_room(Instant::ZERO).is_some());
        assert!(!t.remember(
            Instant::ZERO,
            1234,
            1,
            1000,
            DupAction::Ignore,
            Retention::AtMostOnce
        ));
        for &(p, m) in &remembered {
            assert!(t.lookup(Instant::ZERO, p, m).is_some());
        }
        // Once they expire, room is made again without growing.
        let later = Instant::from_millis(248_000);
        assert!(t.make_room(later).is_none());
        assert!(t.remember(
            later,
            1234,
            1,
            1000,
            DupAction::Ignore,
            Retention::AtMostOnce
        ));
        assert_eq!(t.capacity(), 1000);
    }

    /// Entries that may be forgotten grow the store only to its soft limit (a GET flood
    /// keeps a small table); at-most-once ones grow it on to the limit.
    #[test]
    fn only_at_most_once_entries_grow_past_the_soft_limit() {
        let mut t: DedupTable<u32, Grow> =
            DedupTable::with_store(Grow(Vec::new(), Vec::new(), 1000, 100));
        for k in 0..500u32 {
            t.insert(Instant::ZERO, k, 1, 247_000, DupAction::Ignore);
        }
        assert_eq!(
            t.capacity(),
            100,
            "evictable entries stop at the soft limit"
        );
        assert!(t.evictions > 0);
        for k in 0..300u32 {
            assert!(t.remember(
                Instant::ZERO,
                10_000 + k,
                2,
                247_000,
                DupAction::Ignore,
                Retention::AtMostOnce
            ));
        }
        assert!(
            t.capacity() > 300,
            "at-most-once entries grew it: {}",
            t.capacity()
        );
        for k in 0..300u32 {
            assert!(t.lookup(Instant::ZERO, 10_000 + k, 2).is_some());
        }
    }
}
