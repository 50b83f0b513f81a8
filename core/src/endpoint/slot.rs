//! The message slot pool: fixed storage for every message the endpoint holds (a client
//! request, a deferred or retransmitted response, a cached response for duplicate
//! detection, a received response waiting for `poll_event`) and the transmit queue of slot
//! indices. A slot is named outside the endpoint by index and generation
//! ([`ResponseHandle`]), so a stale handle never reaches a reused slot.

use heapless::Deque;

use crate::block::Block;
use crate::exchange::{ClientExchange, Token};
use crate::reliability::Retransmit;
use crate::server::ResponseHandle;
use crate::time::Instant;

/// A response we send: piggybacked or NON (sent once), or separate CON (retransmitted).
#[derive(Clone, Copy, Debug)]
pub(super) enum ResponsePhase {
    /// Free the slot once transmitted.
    SendOnce,
    /// A response to a multicast request, held back until a random point in the leisure
    /// period (RFC 7252 §8.2), then sent once.
    Leisure { until: Instant },
    /// Sent; kept to answer duplicates of the request until `expires` (§4.5).
    Cached { expires: Instant },
    /// A CON separate response awaiting its ACK (§5.2.2).
    AwaitAck(Retransmit),
}

#[derive(Clone, Copy, Debug)]
pub(super) struct OutgoingResponse<A> {
    pub(super) peer: A,
    pub(super) mid: u16,
    pub(super) phase: ResponsePhase,
    /// A notification to an observer (its failure or RST ends the observation).
    pub(super) notification: bool,
}

/// The empty ACK of a deferred CON request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AckState {
    /// NON request: nothing to acknowledge.
    NotNeeded,
    /// To be sent at this time unless the response is ready first (then piggybacked).
    Due(Instant),
    /// Sent: the response will be a separate CON.
    Sent,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct DeferredRequest<A> {
    pub(super) peer: A,
    pub(super) token: Token,
    pub(super) mid: u16,
    pub(super) ack: AckState,
    /// When the endpoint gives up waiting for the application (`Config::deferred_timeout`).
    pub(super) expires: Instant,
    /// The block the request asked for (RFC 7959 §2.4) and whether it asked for Size2
    /// (§4): the later answer is a block of the representation, as an immediate one would be.
    pub(super) block2: Option<Block>,
    pub(super) size2: bool,
    /// The request asked to observe (a GET/FETCH with Observe=0): a success that the
    /// answer declares observable registers the client then (RFC 7641 §4.1), as it would
    /// have immediately — a proxy answers registrations once upstream has answered.
    pub(super) observe: bool,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum SlotState<A> {
    Free,
    Request(ClientExchange<A>),
    Response(OutgoingResponse<A>),
    Deferred(DeferredRequest<A>),
    /// A received response held for `poll_event`.
    Received {
        peer: A,
    },
}

pub(super) struct Slot<A, const M: usize> {
    pub(super) buf: [u8; M],
    pub(super) len: u16,
    pub(super) generation: u16,
    /// The slot index is in the transmit queue.
    pub(super) queued: bool,
    /// The slot's message should be transmitted when its queue entry comes up.
    pub(super) want_tx: bool,
    pub(super) state: SlotState<A>,
}

impl<A: Copy, const M: usize> Slot<A, M> {
    pub(super) fn new() -> Self {
        Slot {
            buf: [0; M],
            len: 0,
            generation: 0,
            queued: false,
            want_tx: false,
            state: SlotState::Free,
        }
    }

    /// Whether the slot is long-held (see `endpoint::share`): a deferred request, or a CON
    /// response or notification awaiting its ACK. Such a slot is charged to its peer from
    /// the moment it enters one of these states until it leaves them.
    pub(super) fn is_held(&self) -> bool {
        matches!(
            self.state,
            SlotState::Deferred(_)
                | SlotState::Response(OutgoingResponse {
                    phase: ResponsePhase::AwaitAck(_),
                    ..
                })
        )
    }

    /// The peer the slot's message is to or from.
    pub(super) fn peer(&self) -> Option<A> {
        match self.state {
            SlotState::Free => None,
            SlotState::Request(x) => Some(x.peer),
            SlotState::Response(r) => Some(r.peer),
            SlotState::Deferred(d) => Some(d.peer),
            SlotState::Received { peer } => Some(peer),
        }
    }

    pub(super) fn bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }
}

/// The pool: `N` slots of `M` bytes and the queue of slots waiting to be transmitted.
pub(super) struct SlotPool<A, const N: usize, const M: usize> {
    pub(super) slots: [Slot<A, M>; N],
    /// Slot indices to transmit, each at most once (`Slot::queued`).
    pub(super) tx: Deque<u16, N>,
    /// Where the next slot search starts (round robin, see `alloc`).
    cursor: u16,
    /// Slots long-held now (`Slot::is_held`), kept as a count so that the share check is
    /// O(1).
    pub(super) held: u16,
}

impl<A: Copy, const N: usize, const M: usize> SlotPool<A, N, M> {
    pub(super) fn new() -> Self {
        SlotPool {
            slots: core::array::from_fn(|_| Slot::new()),
            tx: Deque::new(),
            cursor: 0,
            held: 0,
        }
    }

    /// Frees slot `i`. A long-held slot is freed through `Endpoint::free_slot`, which
    /// keeps the counts of `share`.
    pub(super) fn free(&mut self, i: usize) {
        if let Some(s) = self.slots.get_mut(i) {
            s.state = SlotState::Free;
            s.want_tx = false;
            s.len = 0;
            s.generation = s.generation.wrapping_add(1);
        }
    }

    /// A free slot, evicting the cached response that expires first if none is free. The
    /// flag says a cached response was evicted before its lifetime ended.
    pub(super) fn alloc(&mut self, now: Instant) -> Option<(usize, bool)> {
        // Round robin from a cursor: the slot after the last one handed out is the
        // oldest allocation, so on a busy server it is usually free or holds the oldest
        // cached response (all cached responses live equally long) — O(1) in practice
        // instead of scanning every slot twice.
        let start = usize::from(self.cursor);
        let mut evictable = None;
        for k in 0..N {
            let i = (start + k) % N;
            let Some(s) = self.slots.get(i) else { continue };
            match s.state {
                SlotState::Free => {
                    evictable = Some((i, None));
                    break;
                }
                SlotState::Response(OutgoingResponse {
                    phase: ResponsePhase::Cached { expires },
                    ..
                }) if !s.want_tx && evictable.is_none() => {
                    evictable = Some((i, Some(expires)));
                    // Keep looking a little for a free slot, but not through the table.
                    if k >= 8 {
                        break;
                    }
                }
                _ => {}
            }
        }
        let (i, expires) = evictable?;
        if expires.is_some() {
            self.free(i);
        }
        self.cursor = ((i + 1) % N.max(1)) as u16;
        Some((i, expires.is_some_and(|e| e > now)))
    }

    /// Counts one more long-held slot.
    pub(super) fn charge(&mut self) {
        self.held = self.held.saturating_add(1);
    }

    /// Counts one less.
    pub(super) fn discharge(&mut self) {
        self.held = self.held.saturating_sub(1);
    }

    /// The separate CON response to give up when room is needed (of `only` this peer, if
    /// given): one sent at least once and still unacknowledged, the most retransmitted
    /// first. Notifications are not taken: their failure is what reaps a vanished observer
    /// (RFC 7641 §4.5). A scan of the pool, made only when it is full or a share is used up.
    pub(super) fn reclaimable(&self, only: Option<A>) -> Option<usize>
    where
        A: Eq,
    {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s.state {
                SlotState::Response(OutgoingResponse {
                    peer,
                    phase: ResponsePhase::AwaitAck(r),
                    notification: false,
                    ..
                }) if !s.want_tx && only.is_none_or(|p| p == peer) => Some((i, r.count)),
                _ => None,
            })
            .max_by_key(|&(_, count)| count)
            .map(|(i, _)| i)
    }

    pub(super) fn queue_tx(&mut self, i: usize) {
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        s.want_tx = true;
        if !s.queued {
            // At most one entry per slot, so the queue (capacity N) cannot overflow.
            if self.tx.push_back(i as u16).is_ok() {
                s.queued = true;
            }
        }
    }

    pub(super) fn handle_of(&self, i: usize) -> ResponseHandle {
        let generation = self.slots.get(i).map(|s| s.generation).unwrap_or(0);
        ResponseHandle {
            slot: i as u16,
            generation,
        }
    }

    /// Slots in use.
    pub(super) fn in_use(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| !matches!(s.state, SlotState::Free))
            .count()
    }

    /// Slots holding a client exchange.
    pub(super) fn client_exchanges(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.state, SlotState::Request(..)))
            .count()
    }
}
