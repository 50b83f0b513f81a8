//! Fairness between peers (issue 26): each peer's share of the message slot pool, and the
//! share all long-held server exchanges may take together.
//!
//! A slot is long-held when it waits on someone else: a deferred request waits for the
//! application's separate response (RFC 7252 §5.2.2), a CON response or notification waits
//! for its ACK (§4.2, RFC 7641 §4.5). Such a slot is charged to its peer from the moment
//! it becomes long-held until it is freed; the count lives beside the peer's entry in the
//! peer table (`PeerTable::held`, one byte a peer) and the pool's total in
//! `SlotPool::held`, so a check costs the one peer lookup the endpoint already makes for
//! Message IDs and never a scan of the slots (only giving a response up, when a share or
//! the pool is used up, looks through them).
//! A peer beyond its share gets 5.03 with Max-Age (§5.9.3.4) for its next deferred request
//! and NON for its next CON notification, and nobody else is refused for it. Many
//! (spoofed) peers within their shares are bounded by the share of all long-held
//! exchanges, which keeps the rest of the pool for requests answered at once; and a
//! separate CON response that its peer does not acknowledge is given up when room is
//! needed instead of holding a slot through all its retransmissions.

use super::Endpoint;
use crate::dedup::DedupStore;
use crate::time::Instant;

/// `percent` of `n` slots, at least one.
fn share_of(n: usize, percent: u8) -> u16 {
    let slots = n.saturating_mul(usize::from(percent.min(100))) / 100;
    u16::try_from(slots.max(1)).unwrap_or(u16::MAX)
}

/// Whether a new long-held slot may give up an unacknowledged separate response to get in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reclaim {
    /// Yes (a deferred request: the application is waiting to answer it).
    Allowed,
    /// No (a CON notification: it can go NON instead, RFC 7641 §4.5).
    Never,
}

impl<A, const N: usize, const M: usize, const D: usize, const O: usize, S>
    Endpoint<A, N, M, D, O, S>
where
    A: Copy + Eq + core::hash::Hash,
    S: DedupStore<A>,
{
    /// Slots one peer's long-held exchanges may take (`Config::peer_slot_share_percent`;
    /// at most 255, the most a peer's one-byte count holds).
    pub(super) fn peer_slot_limit(&self) -> u16 {
        share_of(N, self.config.peer_slot_share_percent).min(u16::from(u8::MAX))
    }

    /// Slots all long-held exchanges may take (`Config::held_slot_share_percent`).
    pub(super) fn held_slot_limit(&self) -> u16 {
        share_of(N, self.config.held_slot_share_percent)
    }

    /// Slots `peer`'s long-held exchanges occupy now.
    pub fn slots_held_by(&self, peer: A) -> usize {
        usize::from(self.peers.held(peer).unwrap_or(0))
    }

    /// Slots all long-held exchanges occupy now.
    pub fn slots_held(&self) -> usize {
        usize::from(self.pool.held)
    }

    /// Whether `peer` may take one more long-held slot now, without giving anything up
    /// (and has a peer entry to count it in, so that [`Endpoint::hold`] then succeeds).
    pub(super) fn may_hold(&self, peer: A) -> bool {
        self.peers
            .held(peer)
            .is_some_and(|own| u16::from(own) < self.peer_slot_limit())
            && self.pool.held < self.held_slot_limit()
    }

    /// Charges one long-held slot to `peer`, if its share and the pool's allow (giving up
    /// an unacknowledged separate response to make room when `reclaim` allows). False when
    /// they do not: the caller then refuses, or sends NON. The caller then puts the slot in
    /// a long-held state (`Slot::is_held`), and frees it with [`Endpoint::free_slot`] or
    /// takes it out of that state with [`Endpoint::unhold`].
    pub(super) fn hold(&mut self, now: Instant, peer: A, reclaim: Reclaim) -> bool {
        let own = u16::from(self.peers.held(peer).unwrap_or(0));
        if own >= self.peer_slot_limit()
            && !(reclaim == Reclaim::Allowed && self.reclaim(Some(peer)))
        {
            return false;
        }
        if self.pool.held >= self.held_slot_limit()
            && !(reclaim == Reclaim::Allowed && self.reclaim(None))
        {
            return false;
        }
        if !self.peers.hold(now, peer, &mut self.rng) {
            // Every peer entry holds slots: the pool is full of long-held exchanges.
            return false;
        }
        self.pool.charge();
        true
    }

    /// Slot `i` leaves the long-held states (a late answer piggybacked, kept only for
    /// duplicates; a NON separate response about to go): its charge is released. Call
    /// while it is still in one.
    pub(super) fn unhold(&mut self, i: usize) {
        let Some(peer) = self
            .pool
            .slots
            .get(i)
            .filter(|s| s.is_held())
            .and_then(|s| s.peer())
        else {
            return;
        };
        self.pool.discharge();
        self.peers.release(peer);
    }

    /// Frees slot `i`, releasing its charge if it was long-held.
    pub(super) fn free_slot(&mut self, i: usize) {
        self.unhold(i);
        self.pool.free(i);
    }

    /// Gives up the unacknowledged separate response that has waited longest for its ACK
    /// (of `only` this peer, if given), so that a peer which never acknowledges cannot hold
    /// slots through MAX_TRANSMIT_WAIT. True if one was freed.
    pub(super) fn reclaim(&mut self, only: Option<A>) -> bool {
        match self.pool.reclaimable(only) {
            Some(i) => {
                self.free_slot(i);
                self.stats.unacknowledged_reclaimed += 1;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::share_of;

    #[test]
    fn shares_are_a_fraction_of_the_pool_and_at_least_one_slot() {
        assert_eq!(share_of(256, 25), 64);
        assert_eq!(share_of(256, 75), 192);
        assert_eq!(share_of(8, 25), 2);
        assert_eq!(share_of(2, 25), 1);
        assert_eq!(share_of(256, 0), 1);
        assert_eq!(share_of(256, 200), 256);
    }
}
