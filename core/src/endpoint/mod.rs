//! The endpoint: the one state machine runtimes drive (see the crate docs for the
//! contract), split by concern as quinn-proto splits its connection:
//!
//! | module | owns |
//! | --- | --- |
//! | `message_layer` | RFC 7252 §4 over UDP/DTLS: parsing, ACK/RST, duplicates, transmission |
//! | `client` | client exchanges: requests, matching by token, Echo retry, completion |
//! | `blockwise` | client Block2 continuation and Block1 uploads (RFC 7959) |
//! | `server` | dispatch to the handler, deferred (separate) responses |
//! | `observe` | RFC 7641 on both sides |
//! | `group` | multicast requests and responses (RFC 7252 §8) |
//! | `unreachable` | ICMP destination-unreachable errors: what waits on the peer ends |
//! | `path_mtu` | path-MTU errors: smaller blocks for the peer (RFC 7959 §2.2) |
//! | `timers` | deadlines: `handle_timeout`, `poll_timeout` |
//! | `slots` | the message slot pool, transmit and control queues |
//! | `share` | fairness: each peer's share of the slots, and that of long-held exchanges |
//! | `events` | the application's event queue |
//!
//! The state they share is the [`Endpoint`] struct below; the rules each applies live in
//! the protocol modules of the crate ([`crate::reliability`], [`crate::exchange`],
//! [`crate::observe`], [`crate::block`], [`crate::multicast`]).

// Without the `client` feature the client role is unreachable (responses are rejected);
// its code stays compiled but unused.
#![cfg_attr(not(feature = "client"), allow(dead_code))]

use core::time::Duration;

use heapless::Deque;

use crate::code::Code;
use crate::config::Config;
use crate::dedup::{DedupStore, DedupTable, FixedDedup};
use crate::message::{BuildError, Message, MessageType};
use crate::observe::ObserverTable;
use crate::reliability::PeerTable;
use crate::rng::Rng;
use crate::time::Instant;
use crate::token::Token;

/// Room kept in a message slot for a block-wise request's header, token and options (Uri-*,
/// Content-Format, Block1, Size1, Request-Tag, ...) around the block itself.
pub const BLOCK_ROOM: usize = 128;

/// Slack after a notification's Max-Age before re-registering (RFC 7641 §3.3.1).
const REREGISTER_SLACK_MS: u64 = 2_000;

/// Default message size: RFC 7252 §4.6 (1152 bytes fits an IPv6 minimum MTU datagram).
pub const DEFAULT_MESSAGE_SIZE: usize = 1152;

mod blockwise;
mod client;
mod control;
mod event;
mod follow_up;
mod group;
mod message_layer;
mod observe;
mod path_mtu;
mod server;
mod share;
mod slot;
mod timers;
mod unreachable;

use control::Control;
use event::EventRecord;
pub use event::{Event, FailReason, Unreachable};
use slot::{Slot, SlotPool, SlotState};

/// Why the endpoint refused an application call.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// Every message slot is in use, or the event queue has no room for the outcome of
    /// another request: poll events, or wait for exchanges to finish.
    #[error("no free message slot")]
    Busy,
    /// The message could not be built (too large for a slot, ...).
    #[error("cannot build the message: {0}")]
    Build(#[from] BuildError),
    /// Requests are CON or NON.
    #[error("a request must be CON or NON")]
    InvalidType,
    /// The code is not a request method code.
    #[error("not a request code")]
    NotARequest,
    /// The handle does not refer to a deferred exchange (answered, or expired).
    #[error("unknown or expired response handle")]
    UnknownHandle,
    /// The chosen token is in use by another request to the same peer (RFC 7252 §5.3.1:
    /// tokens tell concurrent requests apart).
    #[error("the token is in use by another request to this peer")]
    TokenInUse,
}

/// What the application wants sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestParams {
    /// Method code (0.01–0.31).
    pub code: Code,
    /// CON or NON.
    pub ty: MessageType,
    /// Total deadline; `None` uses `Config::request_timeout`.
    pub timeout: Option<Duration>,
    /// The token to send instead of a fresh random one (RFC 7252 §5.3.1 asks for random
    /// tokens; a chosen one is for tests and for matching a peer's logs, as libcoap's
    /// `coap-client -T` does). Refused with [`Error::TokenInUse`] while a request to the
    /// same peer uses it.
    pub token: Option<Token>,
}

impl RequestParams {
    /// A confirmable request with the default timeout.
    pub fn con(code: impl Into<Code>) -> Self {
        RequestParams {
            code: code.into(),
            ty: MessageType::Con,
            timeout: None,
            token: None,
        }
    }

    /// A non-confirmable request with the default timeout.
    pub fn non(code: impl Into<Code>) -> Self {
        RequestParams {
            code: code.into(),
            ty: MessageType::Non,
            timeout: None,
            token: None,
        }
    }

    /// With a total deadline.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// With this token instead of a random one (see [`RequestParams::token`]).
    pub fn with_token(mut self, token: Token) -> Self {
        self.token = Some(token);
        self
    }
}

/// Metadata of a datagram written by [`Endpoint::poll_transmit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit<A> {
    /// Destination.
    pub peer: A,
    /// Length of the datagram at the start of the caller's buffer.
    pub len: usize,
}

/// Counters for monitoring and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Duplicates detected and not handed to the application again.
    pub duplicates: u32,
    /// Duplicates of idempotent requests processed again because their cached response
    /// had been evicted (RFC 7252 §4.5 allows it).
    pub duplicates_reprocessed: u32,
    /// Requests answered 5.03 because no slot was free.
    pub busy_rejections: u32,
    /// Duplicate-detection entries dropped before their lifetime because the table was full.
    pub dedup_evictions: u32,
    /// Cached responses dropped to make room.
    pub cache_evictions: u32,
    /// Datagrams rejected as malformed (RST or silently dropped).
    pub malformed: u32,
    /// Control messages (ACK, RST, generated responses) dropped because their queue was full.
    pub control_drops: u32,
    /// Notifications not delivered because they were older than the last one (RFC 7641
    /// §3.4), or crossed the deregistering GET of an active cancel (§3.6).
    pub stale_notifications: u32,
    /// Notifications not sent, or not taken, for want of a free slot or event space.
    pub notification_drops: u32,
    /// Responses to group requests not delivered for want of a free slot or event space.
    pub group_response_drops: u32,
    /// Responses to multicast requests not sent because they were errors nobody asked
    /// for (RFC 7252 §8.2).
    pub multicast_suppressed: u32,
    /// Non-idempotent requests answered 5.03 because duplicate detection had no room
    /// without forgetting an earlier non-idempotent request (RFC 7252 §4.5, at most once).
    pub at_most_once_rejections: u32,
    /// Deferred requests answered 5.03 because their peer, or all long-held exchanges
    /// together, had used up their share of the slots (`Config::peer_slot_share_percent`,
    /// `Config::held_slot_share_percent`).
    pub share_rejections: u32,
    /// CON notifications sent NON instead for the same reason (RFC 7641 §4.5).
    pub share_demotions: u32,
    /// Unacknowledged separate CON responses given up to make room for another exchange.
    pub unacknowledged_reclaimed: u32,
}

/// A CoAP endpoint: client and server roles over one transport address.
///
/// `A` is the peer address type (e.g. `std::net::SocketAddr`, `embassy_net::IpEndpoint`):
/// `Copy + Eq + Hash` (the hash indexes duplicate detection).
/// `N` is the number of message slots: each holds one message of `M` bytes and serves
/// one client request, one deferred or retransmitted response, one cached response for
/// duplicate detection, or one response waiting in the event queue. Per-peer state (Message
/// IDs, PROBING_RATE) covers `N` peers, least recently used evicted. Duplicate detection
/// remembers the last `D` Message IDs received (§4.5); size it for the request rate times
/// EXCHANGE_LIFETIME you want covered.
pub struct Endpoint<
    A,
    const N: usize = 8,
    const M: usize = DEFAULT_MESSAGE_SIZE,
    const D: usize = 12,
    const O: usize = 4,
    S = FixedDedup<A, D>,
> {
    config: Config,
    rng: Rng,
    pool: SlotPool<A, N, M>,
    dedup: DedupTable<A, S>,
    peers: PeerTable<A, N>,
    observers: ObserverTable<A, O>,
    /// The next Observe value of notifications (RFC 7641 §4.4), 24-bit.
    observe_seq: u32,
    control: Deque<Control<A>, N>,
    events: Deque<EventRecord, N>,
    /// Slot of the response event handed out last; freed on the next `poll_event`.
    lent: Option<(u16, u16)>,
    next_id: u32,
    stats: Stats,
    /// Whether any peer has a block size lowered by a path-MTU error: until one has, the
    /// per-request lookup of it is skipped.
    path_limited: bool,
}

/// Slot lengths fit in `u16`: datagrams are at most 65535 bytes, and `M` is clamped by the
/// callers' buffers.
fn len16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

impl<A, const N: usize, const M: usize, const D: usize, const O: usize, S>
    Endpoint<A, N, M, D, O, S>
where
    A: Copy + Eq + core::hash::Hash,
    S: DedupStore<A>,
{
    /// A new endpoint. `seed` feeds the generator of Message IDs, tokens and back-off
    /// jitter: give it real entropy (RFC 7252 §5.3.1, §11.4).
    pub fn new(config: Config, seed: u64) -> Self {
        Self::with_dedup_store(config, seed, S::empty())
    }

    /// A new endpoint whose duplicate detection (RFC 7252 §4.5) lives in `store`: e.g. a
    /// growable store with a run-time limit from the std crates (see [`crate::storage`]).
    pub fn with_dedup_store(config: Config, seed: u64, store: S) -> Self {
        Endpoint {
            config,
            rng: Rng::new(seed),
            pool: SlotPool::new(),
            dedup: DedupTable::with_store(store),
            peers: PeerTable::new(),
            observers: ObserverTable::new(config.max_observers_per_peer),
            observe_seq: 0,
            control: Deque::new(),
            events: Deque::new(),
            lent: None,
            path_limited: false,
            next_id: 0,
            stats: Stats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            dedup_evictions: self.dedup.evictions,
            ..self.stats
        }
    }

    /// Slots currently in use (for monitoring and tests).
    pub fn slots_in_use(&self) -> usize {
        self.pool.in_use()
    }

    /// Unexpired duplicate-detection entries (for monitoring and tests).
    pub fn dedup_entries(&self, now: Instant) -> usize {
        self.dedup.live(now)
    }

    /// Positions the duplicate-detection store holds now (a growable store's current
    /// size; a fixed one's capacity).
    pub fn dedup_capacity(&self) -> usize {
        self.dedup.capacity()
    }

    /// A free slot (see [`SlotPool::alloc`]), counting early evictions of cached responses.
    fn alloc_slot(&mut self, now: Instant) -> Option<usize> {
        // A full pool first gives up an unacknowledged separate response (see `share`).
        let (i, evicted_early) = match self.pool.alloc(now) {
            Some(x) => x,
            None if self.reclaim(None) => self.pool.alloc(now)?,
            None => return None,
        };
        if evicted_early {
            self.stats.cache_evictions += 1;
        }
        Some(i)
    }

    /// The next event. A `Response` borrows the endpoint's slot until the next call.
    pub fn poll_event(&mut self) -> Option<Event<'_, A>> {
        if let Some((slot, generation)) = self.lent.take() {
            let i = usize::from(slot);
            if self
                .pool
                .slots
                .get(i)
                .is_some_and(|s| s.generation == generation)
            {
                self.free_slot(i);
            }
        }
        loop {
            let rec = self.events.pop_front()?;
            match rec {
                EventRecord::Timeout(id) => return Some(Event::Timeout { id }),
                EventRecord::Reset(id) => return Some(Event::Reset { id }),
                EventRecord::Failed(id, reason) => return Some(Event::Failed { id, reason }),
                EventRecord::NoResponse(id) => return Some(Event::NoResponse { id }),
                EventRecord::Continue(id, b) => {
                    return Some(Event::Continue {
                        id,
                        offset: b.offset(),
                        size: b.size(),
                    })
                }
                EventRecord::Response {
                    id,
                    slot,
                    generation,
                }
                | EventRecord::Notification {
                    id,
                    slot,
                    generation,
                }
                | EventRecord::Block {
                    id,
                    slot,
                    generation,
                } => {
                    let i = usize::from(slot);
                    let ok = matches!(
                        self.pool.slots.get(i),
                        Some(Slot { state: SlotState::Received { .. }, generation: g, .. }) if *g == generation
                    );
                    if !ok {
                        continue;
                    }
                    self.lent = Some((slot, generation));
                    let s = self.pool.slots.get(i)?;
                    let SlotState::Received { peer } = s.state else {
                        continue;
                    };
                    let Ok(message) = Message::parse(s.bytes()) else {
                        continue;
                    };
                    return Some(match rec {
                        EventRecord::Notification { .. } => {
                            Event::Notification { id, peer, message }
                        }
                        EventRecord::Block { .. } => Event::Block { id, peer, message },
                        _ => Event::Response { id, peer, message },
                    });
                }
            }
        }
    }
}
