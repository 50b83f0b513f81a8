//! The endpoint: the one state machine runtimes drive (see the crate docs for the
//! contract). It ties the message layer ([`crate::reliability`]), client exchanges
//! ([`crate::exchange`]) and the server side ([`crate::server`]) together over a fixed
//! pool of message slots.

// Without the `client` feature the client role is unreachable (responses are rejected);
// its code stays compiled but unused.
#![cfg_attr(not(feature = "client"), allow(dead_code))]

use core::time::Duration;

use heapless::Deque;

use crate::block::Block;
use crate::code::{Code, CodeClass};
use crate::config::Config;
use crate::exchange::{ClientExchange, ClientPhase, ExchangeKind, RequestId, Token};
use crate::message::{
    write_empty, BuildError, Header, Message, MessageBuilder, MessageType, ParseError,
};
use crate::multicast::{self, Delivery};
use crate::no_response::NoResponse;
use crate::observe::{Observation, ObserverTable, OBSERVE_MODULUS};
use crate::option::OptionNumber;
use crate::reliability::{
    lifetime_ms, probing_delay_ms, DedupTable, DupAction, PeerTable, Retransmit, RetransmitStep,
};
use crate::rng::Rng;
use crate::server::{Handler, IncomingRequest, Outcome, ResponseHandle, ResponseWriter};
use crate::time::Instant;

/// Room kept in a message slot for a block-wise request's header, token and options (Uri-*,
/// Content-Format, Block1, Size1, Request-Tag, ...) around the block itself.
pub const BLOCK_ROOM: usize = 128;

/// Slack after a notification's Max-Age before re-registering (RFC 7641 §3.3.1).
const REREGISTER_SLACK_MS: u64 = 2_000;

/// Default message size: RFC 7252 §4.6 (1152 bytes fits an IPv6 minimum MTU datagram).
pub const DEFAULT_MESSAGE_SIZE: usize = 1152;

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
}

impl RequestParams {
    /// A confirmable request with the default timeout.
    pub fn con(code: impl Into<Code>) -> Self {
        RequestParams {
            code: code.into(),
            ty: MessageType::Con,
            timeout: None,
        }
    }

    /// A non-confirmable request with the default timeout.
    pub fn non(code: impl Into<Code>) -> Self {
        RequestParams {
            code: code.into(),
            ty: MessageType::Non,
            timeout: None,
        }
    }

    /// With a total deadline.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
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

/// Something the application should know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a, A> {
    /// The response to a request (RFC 7252 §5.3.2: matched by token and peer). A group
    /// request gets one per responder (matched by token, `peer` is the responder) until its
    /// window closes with `Timeout`.
    Response {
        /// The request.
        id: RequestId,
        /// Who answered.
        peer: A,
        /// The response; it stays valid until the next call to `poll_event`.
        message: Message<'a>,
    },
    /// A notification of an observation (RFC 7641): a response carrying Observe. More
    /// follow until a `Response` (the final one), `Timeout`, `Reset`, or cancellation.
    /// Reordered (stale) notifications are not reported (§3.4).
    Notification {
        /// The observe request.
        id: RequestId,
        /// Who notified.
        peer: A,
        /// The notification; valid until the next call to `poll_event`.
        message: Message<'a>,
    },
    /// One block of a Block2 response (RFC 7959 §2.4) that has more blocks: its payload
    /// belongs at the offset its Block2 option gives. The endpoint requests the next
    /// block itself; the last block arrives as `Response`.
    Block {
        /// The request.
        id: RequestId,
        /// Who answered.
        peer: A,
        /// The block; valid until the next call to `poll_event`.
        message: Message<'a>,
    },
    /// The exchange ended without a usable response (see [`FailReason`]).
    Failed {
        /// The request.
        id: RequestId,
        /// Why.
        reason: FailReason,
    },
    /// A Block1 upload's block was accepted with 2.31 Continue (RFC 7959 §2.5): hand the
    /// next `size` bytes of the body, from `offset`, to `Endpoint::upload_next`.
    Continue {
        /// The upload.
        id: RequestId,
        /// Where the next block starts in the body.
        offset: usize,
        /// The block size the server accepts (it may have asked for smaller blocks).
        size: usize,
    },
    /// The request asked for no response (RFC 7967) and none came: for a request that
    /// suppressed every class, as soon as it was sent (NON) or acknowledged (CON); for one
    /// that suppressed some classes, when the deadline passed in silence.
    NoResponse {
        /// The request.
        id: RequestId,
    },
    /// No response within the deadline, or CON retransmissions exhausted. For a group
    /// request ([`Endpoint::request_group`]) the end of the collection window: every
    /// response that came was reported before it.
    Timeout {
        /// The request.
        id: RequestId,
    },
    /// The peer rejected the request with RST.
    Reset {
        /// The request.
        id: RequestId,
    },
}

impl<A> Event<'_, A> {
    /// The request the event belongs to.
    pub fn id(&self) -> RequestId {
        match self {
            Event::Response { id, .. }
            | Event::Notification { id, .. }
            | Event::Block { id, .. }
            | Event::Failed { id, .. }
            | Event::Continue { id, .. }
            | Event::NoResponse { id }
            | Event::Timeout { id }
            | Event::Reset { id } => *id,
        }
    }
}

/// Why an exchange failed (besides timeouts and resets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FailReason {
    /// The ETag changed between blocks of a Block2 transfer: the representation changed
    /// while it was being transferred (RFC 7959 §2.4). Start again.
    RepresentationChanged,
}

/// Counters for monitoring and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Duplicates detected and not handed to the application again.
    pub duplicates: u32,
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
    /// Notifications not delivered because they were older than the last one (RFC 7641 §3.4).
    pub stale_notifications: u32,
    /// Notifications not sent, or not taken, for want of a free slot or event space.
    pub notification_drops: u32,
    /// Responses to group requests not delivered for want of a free slot or event space.
    pub group_response_drops: u32,
    /// Responses to multicast requests not sent because they were errors nobody asked
    /// for (RFC 7252 §8.2).
    pub multicast_suppressed: u32,
}

/// A response the endpoint generates itself, without a slot.
#[derive(Clone, Copy, Debug)]
enum ControlKind {
    /// Empty ACK or RST.
    Empty { ty: MessageType, mid: u16 },
    /// A bodyless response (4.02, 5.03, ...).
    Response {
        ty: MessageType,
        mid: u16,
        code: Code,
        token: Token,
        max_age: Option<u32>,
    },
}

#[derive(Clone, Copy, Debug)]
struct Control<A> {
    peer: A,
    kind: ControlKind,
}

/// A response we send: piggybacked or NON (sent once), or separate CON (retransmitted).
#[derive(Clone, Copy, Debug)]
enum ResponsePhase {
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
struct OutgoingResponse<A> {
    peer: A,
    mid: u16,
    phase: ResponsePhase,
    /// A notification to an observer (its failure or RST ends the observation).
    notification: bool,
}

/// The empty ACK of a deferred CON request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AckState {
    /// NON request: nothing to acknowledge.
    NotNeeded,
    /// To be sent at this time unless the response is ready first (then piggybacked).
    Due(Instant),
    /// Sent: the response will be a separate CON.
    Sent,
}

#[derive(Clone, Copy, Debug)]
struct DeferredRequest<A> {
    peer: A,
    token: Token,
    mid: u16,
    ack: AckState,
    /// When the endpoint gives up waiting for the application (`Config::deferred_timeout`).
    expires: Instant,
    /// The block the request asked for (RFC 7959 §2.4) and whether it asked for Size2
    /// (§4): the later answer is a block of the representation, as an immediate one would be.
    block2: Option<Block>,
    size2: bool,
    /// The request asked to observe (a GET/FETCH with Observe=0): a success that the
    /// answer declares observable registers the client then (RFC 7641 §4.1), as it would
    /// have immediately — a proxy answers registrations once upstream has answered.
    observe: bool,
}

#[derive(Clone, Copy, Debug)]
enum SlotState<A> {
    Free,
    Request(ClientExchange<A>),
    Response(OutgoingResponse<A>),
    Deferred(DeferredRequest<A>),
    /// A received response held for `poll_event`.
    Received {
        peer: A,
    },
}

struct Slot<A, const M: usize> {
    buf: [u8; M],
    len: u16,
    generation: u16,
    /// The slot index is in the transmit queue.
    queued: bool,
    /// The slot's message should be transmitted when its queue entry comes up.
    want_tx: bool,
    state: SlotState<A>,
}

impl<A: Copy, const M: usize> Slot<A, M> {
    fn new() -> Self {
        Slot {
            buf: [0; M],
            len: 0,
            generation: 0,
            queued: false,
            want_tx: false,
            state: SlotState::Free,
        }
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug)]
enum EventRecord {
    Response {
        id: RequestId,
        slot: u16,
        generation: u16,
    },
    Notification {
        id: RequestId,
        slot: u16,
        generation: u16,
    },
    Block {
        id: RequestId,
        slot: u16,
        generation: u16,
    },
    Failed(RequestId, FailReason),
    NoResponse(RequestId),
    Continue(RequestId, crate::block::Block),
    Timeout(RequestId),
    Reset(RequestId),
}

impl EventRecord {
    /// The request an event belongs to, and the slot holding its message, if any.
    fn parts(self) -> (RequestId, Option<(u16, u16)>) {
        match self {
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
            } => (id, Some((slot, generation))),
            EventRecord::Failed(id, _)
            | EventRecord::NoResponse(id)
            | EventRecord::Continue(id, _)
            | EventRecord::Timeout(id)
            | EventRecord::Reset(id) => (id, None),
        }
    }
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
> {
    config: Config,
    rng: Rng,
    slots: [Slot<A, M>; N],
    dedup: DedupTable<A, D>,
    peers: PeerTable<A, N>,
    observers: ObserverTable<A, O>,
    /// The next Observe value of notifications (RFC 7641 §4.4), 24-bit.
    observe_seq: u32,
    tx: Deque<u16, N>,
    control: Deque<Control<A>, N>,
    events: Deque<EventRecord, N>,
    /// Slot of the response event handed out last; freed on the next `poll_event`.
    lent: Option<(u16, u16)>,
    next_id: u32,
    /// Where the next slot search starts (round robin, see `alloc_slot`).
    cursor: u16,
    stats: Stats,
}

impl<
        A: Copy + Eq + core::hash::Hash,
        const N: usize,
        const M: usize,
        const D: usize,
        const O: usize,
    > Endpoint<A, N, M, D, O>
{
    /// A new endpoint. `seed` feeds the generator of Message IDs, tokens and back-off
    /// jitter: give it real entropy (RFC 7252 §5.3.1, §11.4).
    pub fn new(config: Config, seed: u64) -> Self {
        Endpoint {
            config,
            rng: Rng::new(seed),
            slots: core::array::from_fn(|_| Slot::new()),
            dedup: DedupTable::new(),
            peers: PeerTable::new(),
            observers: ObserverTable::new(),
            observe_seq: 0,
            tx: Deque::new(),
            control: Deque::new(),
            events: Deque::new(),
            lent: None,
            next_id: 0,
            cursor: 0,
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
        self.slots
            .iter()
            .filter(|s| !matches!(s.state, SlotState::Free))
            .count()
    }

    /// Unexpired duplicate-detection entries (for monitoring and tests).
    pub fn dedup_entries(&self, now: Instant) -> usize {
        self.dedup.live(now)
    }

    // ----- slots -------------------------------------------------------------------

    fn free_slot(&mut self, i: usize) {
        if let Some(s) = self.slots.get_mut(i) {
            s.state = SlotState::Free;
            s.want_tx = false;
            s.len = 0;
            s.generation = s.generation.wrapping_add(1);
        }
    }

    /// A free slot, evicting the cached response that expires first if none is free.
    fn alloc_slot(&mut self, now: Instant) -> Option<usize> {
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
        if expires.is_some_and(|e| e > now) {
            self.stats.cache_evictions += 1;
        }
        if expires.is_some() {
            self.free_slot(i);
        }
        self.cursor = ((i + 1) % N.max(1)) as u16;
        Some(i)
    }

    fn queue_tx(&mut self, i: usize) {
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

    fn send_empty(&mut self, peer: A, ty: MessageType, mid: u16) {
        self.push_control(peer, ControlKind::Empty { ty, mid });
    }

    fn push_control(&mut self, peer: A, kind: ControlKind) {
        if self.control.push_back(Control { peer, kind }).is_err() {
            self.stats.control_drops += 1;
        }
    }

    fn handle_of(&self, i: usize) -> ResponseHandle {
        let generation = self.slots.get(i).map(|s| s.generation).unwrap_or(0);
        ResponseHandle {
            slot: i as u16,
            generation,
        }
    }

    fn client_exchanges(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.state, SlotState::Request(..)))
            .count()
    }

    // ----- client ------------------------------------------------------------------

    /// Starts a request to `peer`. `build` adds options and payload (the endpoint writes
    /// the header and a fresh random token). The outcome arrives as exactly one event:
    /// `Response`, `Timeout` or `Reset`, unless the request is cancelled.
    pub fn request(
        &mut self,
        now: Instant,
        peer: A,
        params: RequestParams,
        build: impl FnOnce(&mut MessageBuilder<'_>) -> Result<(), BuildError>,
    ) -> Result<RequestId, Error> {
        self.start_request(now, peer, params, ExchangeKind::Unicast, build)
    }

    /// Starts a request to a group (multicast) address (RFC 7252 §8.1): sent once as NON
    /// whatever `params.ty` says, and every response from any member (matched by token) is
    /// reported as `Event::Response` with the responder's address, until the deadline
    /// (`params.timeout`, the collection window; `Config::request_timeout` if `None`) ends
    /// it with `Event::Timeout`. A responder's Block2 response continues by unicast with
    /// that responder (RFC 7959 §2.8): its blocks arrive as `Event::Block` and its last one
    /// as its `Response`; the window closes only after those continuations end. Later
    /// requests to a responder are ordinary unicast requests to its address.
    pub fn request_group(
        &mut self,
        now: Instant,
        group: A,
        params: RequestParams,
        build: impl FnOnce(&mut MessageBuilder<'_>) -> Result<(), BuildError>,
    ) -> Result<RequestId, Error> {
        let params = RequestParams {
            ty: MessageType::Non,
            ..params
        };
        self.start_request(now, group, params, ExchangeKind::Group, build)
    }

    fn start_request(
        &mut self,
        now: Instant,
        peer: A,
        params: RequestParams,
        kind: ExchangeKind,
        build: impl FnOnce(&mut MessageBuilder<'_>) -> Result<(), BuildError>,
    ) -> Result<RequestId, Error> {
        if !matches!(params.ty, MessageType::Con | MessageType::Non) {
            return Err(Error::InvalidType);
        }
        if params.code.kind() != CodeClass::Request {
            return Err(Error::NotARequest);
        }
        // Room for this request's single terminal event, whatever else is pending.
        if self.events.len() + self.client_exchanges() >= N {
            return Err(Error::Busy);
        }
        let i = self.alloc_slot(now).ok_or(Error::Busy)?;
        let token = self.fresh_token(peer);
        let slot = self.slots.get_mut(i).ok_or(Error::Busy)?;
        let mut b =
            MessageBuilder::new(&mut slot.buf, params.ty, params.code, 0, token.as_slice())?;
        build(&mut b)?;
        slot.len = len16(b.finish());
        // A GET/FETCH with Observe=0 registers an observation (RFC 7641 §3.1).
        let observe = (Message::parse(slot.bytes()).ok().and_then(|m| m.observe()) == Some(0))
            .then_some(Observation::NEW);
        let no_response = Message::parse(slot.bytes())
            .map(|m| NoResponse::of(&m))
            .unwrap_or_default();
        let id = RequestId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        let timeout = params.timeout.unwrap_or(self.config.request_timeout);
        slot.state = SlotState::Request(ClientExchange {
            id,
            peer,
            token,
            mid: 0,
            confirmable: params.ty == MessageType::Con,
            phase: ClientPhase::Queued,
            deadline: now + timeout,
            heard: false,
            observe,
            etag: None,
            no_response,
            notification_rest: false,
            kind,
        });
        self.start_queued(now);
        Ok(id)
    }

    fn fresh_token(&mut self, peer: A) -> Token {
        let len = usize::from(self.config.token_len.min(8));
        let mut bytes = [0u8; 8];
        // Random tokens (§5.3.1); retry a few times on the (unlikely) clash with a live
        // exchange to the same peer.
        for _ in 0..4 {
            self.rng.fill(&mut bytes[..len]);
            let t = Token::new(&bytes[..len]).unwrap_or_default();
            let clash = self.slots.iter().any(
                |s| matches!(&s.state, SlotState::Request(x) if x.peer == peer && x.token == t),
            );
            if !clash {
                return t;
            }
        }
        Token::new(&bytes[..len]).unwrap_or_default()
    }

    /// Cancels a request: no event will be reported for it. Late responses are answered
    /// as unknown (RST for a CON response, §5.3.2).
    pub fn cancel(&mut self, id: RequestId) -> bool {
        let mut removed = false;
        let found = self
            .slots
            .iter()
            .position(|s| matches!(&s.state, SlotState::Request(x) if x.id == id));
        if let Some(i) = found {
            self.free_slot(i);
            removed = true;
            // A notification's remaining blocks may be in flight under the same id.
            while let Some(k) = self
                .slots
                .iter()
                .position(|s| matches!(&s.state, SlotState::Request(x) if x.id == id))
            {
                self.free_slot(k);
            }
        }
        // Outcomes (and notifications) may already wait in the event queue: drop them.
        let mut kept: Deque<EventRecord, N> = Deque::new();
        while let Some(e) = self.events.pop_front() {
            let (x, slot) = e.parts();
            if x != id {
                let _ = kept.push_back(e);
                continue;
            }
            removed = true;
            if let Some((slot, generation)) = slot {
                let i = usize::from(slot);
                if self
                    .slots
                    .get(i)
                    .is_some_and(|s| s.generation == generation)
                {
                    self.free_slot(i);
                }
            }
        }
        self.events = kept;
        removed
    }

    /// Transmits queued requests whose peer has room under NSTART and PROBING_RATE (§4.7),
    /// first come first served.
    fn start_queued(&mut self, now: Instant) {
        loop {
            // The oldest queued request that may start now.
            let mut pick: Option<(usize, u32)> = None;
            for (i, s) in self.slots.iter().enumerate() {
                // Request ids increase with time: the smallest (modulo wrap) is the oldest.
                if let SlotState::Request(x) = &s.state {
                    let seq = x.id.0;
                    if x.phase == ClientPhase::Queued
                        && pick.is_none_or(|(_, best)| seq.wrapping_sub(best) > u32::MAX / 2)
                        && self.may_start(now, x.peer)
                    {
                        pick = Some((i, seq));
                    }
                }
            }
            let Some((i, _)) = pick else { return };
            self.transmit_request(now, i);
        }
    }

    fn outstanding(&self, peer: A) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(&s.state, SlotState::Request(x) if x.peer == peer && x.is_outstanding()))
            .count()
    }

    fn may_start(&self, now: Instant, peer: A) -> bool {
        if self.outstanding(peer) >= usize::from(self.config.nstart.max(1)) {
            return false;
        }
        // PROBING_RATE applies only to peers that stopped answering.
        let probe_wait = self
            .peers_get(peer)
            .is_some_and(|p| p.unresponsive && p.probe_not_before > now);
        !probe_wait
    }

    fn peers_get(&self, peer: A) -> Option<crate::reliability::Peer<A>> {
        self.peers.find(peer)
    }

    fn transmit_request(&mut self, now: Instant, i: usize) {
        let Some(SlotState::Request(x)) = self.slots.get(i).map(|s| s.state) else {
            return;
        };
        let mid = self.peers.next_mid(now, x.peer, &mut self.rng);
        let retx = Retransmit::start(now, &self.config, &mut self.rng);
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        if let Some(h) = slot.buf.get_mut(2..4) {
            h.copy_from_slice(&mid.to_be_bytes());
        }
        let len = slot.len;
        if let SlotState::Request(x) = &mut slot.state {
            x.mid = mid;
            x.phase = if x.confirmable {
                ClientPhase::AwaitAck(retx)
            } else {
                ClientPhase::AwaitResponse
            };
        }
        if let Some(p) = self.peers.get(x.peer) {
            if p.unresponsive {
                p.probe_not_before =
                    now.add_millis(probing_delay_ms(&self.config, usize::from(len)));
            }
        }
        self.queue_tx(i);
    }

    fn finish_request(&mut self, now: Instant, i: usize, record: EventRecord) {
        let follow_up = matches!(
            self.slots.get(i).map(|s| s.state),
            Some(SlotState::Request(ClientExchange {
                kind: ExchangeKind::GroupFollowUp,
                ..
            }))
        );
        if follow_up && !matches!(record, EventRecord::Response { .. }) {
            // One responder of a group request failed to finish its Block2 transfer: its
            // answer is dropped; the group request goes on (it ends with its window).
            self.free_slot(i);
            return self.start_queued(now);
        }
        let _ = self.events.push_back(record);
        if !matches!(record, EventRecord::Response { .. }) {
            self.free_slot(i);
        }
        self.start_queued(now);
    }

    // ----- server ------------------------------------------------------------------

    /// Answers a deferred request (the handler returned [`Outcome::Defer`]). Piggybacked on
    /// the ACK if that has not gone out yet, else a separate CON response retransmitted
    /// until acknowledged (RFC 7252 §5.2.2); NON for a NON request.
    pub fn respond(
        &mut self,
        now: Instant,
        handle: ResponseHandle,
        build: impl FnOnce(&mut ResponseWriter<'_>) -> Result<(), BuildError>,
    ) -> Result<(), Error> {
        let i = usize::from(handle.slot);
        let d = match self.slots.get(i) {
            Some(Slot {
                state: SlotState::Deferred(d),
                generation,
                ..
            }) if *generation == handle.generation => *d,
            _ => return Err(Error::UnknownHandle),
        };
        let (ty, mid, phase) = match d.ack {
            AckState::Due(_) => (
                MessageType::Ack,
                d.mid,
                ResponsePhase::Cached {
                    expires: now.add_millis(lifetime_ms(self.config.exchange_lifetime())),
                },
            ),
            AckState::Sent => (
                MessageType::Con,
                self.peers.next_mid(now, d.peer, &mut self.rng),
                ResponsePhase::AwaitAck(Retransmit::start(now, &self.config, &mut self.rng)),
            ),
            AckState::NotNeeded => (
                MessageType::Non,
                self.peers.next_mid(now, d.peer, &mut self.rng),
                ResponsePhase::SendOnce,
            ),
        };
        let Some(slot) = self.slots.get_mut(i) else {
            return Err(Error::UnknownHandle);
        };
        let mut w = ResponseWriter::new(MessageBuilder::new(
            &mut slot.buf,
            ty,
            Code::CONTENT,
            mid,
            d.token.as_slice(),
        )?);
        w.block2 = d.block2;
        w.size2 = d.size2;
        w.max_szx = self.config.max_block_szx.min(crate::block::MAX_SZX);
        let result = build(&mut w);
        slot.len = match result {
            Ok(()) => {
                register_observer(
                    &mut self.observers,
                    &mut self.observe_seq,
                    now,
                    d.peer,
                    d.token,
                    d.observe,
                    &mut w,
                );
                len16(w.builder.finish())
            }
            Err(_) => {
                // Whatever the builder holds may be partial: answer 5.00 instead.
                len16(
                    MessageBuilder::new(
                        &mut slot.buf,
                        ty,
                        Code::INTERNAL_SERVER_ERROR,
                        mid,
                        d.token.as_slice(),
                    )?
                    .finish(),
                )
            }
        };
        slot.state = SlotState::Response(OutgoingResponse {
            peer: d.peer,
            mid,
            phase,
            notification: false,
        });
        self.queue_tx(i);
        result.map_err(Error::Build)
    }

    /// Number of observers currently registered for `key`.
    pub fn observers(&self, key: u32) -> usize {
        self.observers.count(key)
    }

    /// Sends a notification to every observer of `key` (RFC 7641 §4.2): `render` writes
    /// each one (code, Content-Format, ETag, Max-Age, payload) like a response; the
    /// endpoint adds the token, a fresh Message ID and the Observe value. Notifications are
    /// NON unless `render` asks for CON, the observer's last CON is older than
    /// `Config::observe_con_interval`, or a CON notification to it is still unacknowledged
    /// (then the new one replaces it, keeping its retransmission state, §4.5.2). An error
    /// code ends the observation (§4.2). Returns how many notifications were queued.
    pub fn notify(
        &mut self,
        now: Instant,
        key: u32,
        mut render: impl FnMut(A, &mut ResponseWriter<'_>) -> Result<(), BuildError>,
    ) -> usize {
        let mut sent = 0;
        let con_interval = crate::time::duration_ms(self.config.observe_con_interval);
        for o in 0..ObserverTable::<A, O>::CAPACITY {
            let Some(obs) = self.observers.get_mut(o).map(|x| *x) else {
                continue;
            };
            if obs.key != key {
                continue;
            }
            // A CON notification still in flight is replaced, keeping its retransmission
            // state.
            let in_flight = obs.in_flight.and_then(|(slot, generation)| {
                let s = self.slots.get(usize::from(slot))?;
                match s.state {
                    SlotState::Response(OutgoingResponse {
                        phase: ResponsePhase::AwaitAck(r),
                        notification: true,
                        ..
                    }) if s.generation == generation => Some((usize::from(slot), r)),
                    _ => None,
                }
            });
            let i = match in_flight {
                Some((i, _)) => i,
                None => match self.alloc_slot(now) {
                    Some(i) => i,
                    None => {
                        self.stats.notification_drops += 1;
                        continue;
                    }
                },
            };
            let force_con = in_flight.is_some()
                || now.as_millis() >= obs.last_con.as_millis().saturating_add(con_interval);
            let mid = self.peers.next_mid(now, obs.peer, &mut self.rng);
            let seq = self.observe_seq;
            let Some(slot) = self.slots.get_mut(i) else {
                continue;
            };
            let ty = if force_con {
                MessageType::Con
            } else {
                MessageType::Non
            };
            let Ok(b) =
                MessageBuilder::new(&mut slot.buf, ty, Code::CONTENT, mid, obs.token.as_slice())
            else {
                continue;
            };
            let mut w = ResponseWriter::new(b);
            w.notification = true;
            let ok = render(obs.peer, &mut w).is_ok();
            if force_con {
                w.builder.set_type(MessageType::Con);
            }
            let success = w.code().kind() == CodeClass::Success;
            let ok = ok && (!success || w.builder.option_uint(OptionNumber::OBSERVE, seq).is_ok());
            if !ok {
                // Could not render: leave the slot as it was (a replaced notification
                // keeps going) or free it.
                if in_flight.is_none() {
                    self.free_slot(i);
                }
                self.stats.notification_drops += 1;
                continue;
            }
            let con = w.builder.message_type() == MessageType::Con;
            slot.len = len16(w.builder.finish());
            let phase = if con {
                ResponsePhase::AwaitAck(match in_flight {
                    Some((_, r)) => r,
                    None => Retransmit::start(now, &self.config, &mut self.rng),
                })
            } else {
                ResponsePhase::SendOnce
            };
            slot.state = SlotState::Response(OutgoingResponse {
                peer: obs.peer,
                mid,
                phase,
                notification: true,
            });
            let generation = slot.generation;
            self.observe_seq = (seq + 1) % OBSERVE_MODULUS;
            if let Some(x) = self.observers.get_mut(o) {
                x.last_mid = mid;
                if con {
                    x.last_con = now;
                    x.in_flight = Some((i as u16, generation));
                }
            }
            if !success {
                self.observers.remove_index(o);
            }
            self.queue_tx(i);
            sent += 1;
        }
        sent
    }

    // ----- input -------------------------------------------------------------------

    /// Processes one received datagram from `peer`. Requests go to `handler`; responses
    /// become events.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        peer: A,
        bytes: &[u8],
        handler: &mut impl Handler<A>,
    ) {
        self.receive(now, peer, bytes, handler, Delivery::Unicast)
    }

    /// Feeds a datagram that arrived on a group (multicast) address this endpoint listens
    /// on (RFC 7252 §8). Only requests are taken; they are answered by unicast NON after a
    /// random delay within `Config::default_leisure` (§8.2), never acknowledged or reset
    /// (§8.1), and error responses are suppressed unless the request asked for them
    /// ([`crate::multicast`]). Handlers see [`Delivery::Multicast`] and may stay silent
    /// with [`Outcome::Ignore`] when they have nothing useful to say.
    pub fn handle_group_datagram(
        &mut self,
        now: Instant,
        peer: A,
        bytes: &[u8],
        handler: &mut impl Handler<A>,
    ) {
        self.receive(now, peer, bytes, handler, Delivery::Multicast)
    }

    fn receive(
        &mut self,
        now: Instant,
        peer: A,
        bytes: &[u8],
        handler: &mut impl Handler<A>,
        delivery: Delivery,
    ) {
        let msg = match Message::parse(bytes) {
            Ok(m) => m,
            // §8.1: never a RST to a multicast message.
            Err(_) if delivery == Delivery::Multicast => {
                self.stats.malformed += 1;
                return;
            }
            Err(e) => return self.reject_malformed(peer, bytes, e),
        };
        if delivery == Delivery::Multicast {
            // Only requests are meaningful on a group address: no ping answers, no
            // ACK/RST matching, no responses (§8.1).
            if msg.code().kind() == CodeClass::Request
                && matches!(msg.ty(), MessageType::Con | MessageType::Non)
            {
                self.on_request(now, peer, &msg, handler, delivery);
            }
            return;
        }
        if let Some(p) = self.peers.get(peer) {
            p.unresponsive = false;
        }
        match (msg.code().kind(), msg.ty()) {
            (CodeClass::Empty, MessageType::Con) => {
                // CoAP ping (§4.3): answer with RST.
                self.send_empty(peer, MessageType::Rst, msg.message_id());
            }
            (CodeClass::Empty, MessageType::Ack) => self.on_empty_ack(now, peer, msg.message_id()),
            (CodeClass::Empty, MessageType::Rst) => self.on_rst(now, peer, msg.message_id()),
            (CodeClass::Empty, MessageType::Non) => {} // Not meaningful (§4.1); ignore.
            (CodeClass::Request, MessageType::Con | MessageType::Non) => {
                self.on_request(now, peer, &msg, handler, Delivery::Unicast)
            }
            #[cfg(feature = "client")]
            (CodeClass::Success | CodeClass::ClientError | CodeClass::ServerError, _) => {
                self.on_response(now, peer, &msg, bytes)
            }
            // A server-only build (no `client` feature) expects no responses: a CON one is
            // rejected like any response nobody waits for (§5.3.2). Everything the client
            // role needs is then left out of the binary.
            #[cfg(not(feature = "client"))]
            (CodeClass::Success | CodeClass::ClientError | CodeClass::ServerError, ty) => {
                let _ = bytes;
                if ty == MessageType::Con {
                    self.send_empty(peer, MessageType::Rst, msg.message_id());
                }
            }
            // Requests in ACK/RST, reserved classes, signaling codes over UDP: reject (§4.2).
            (_, MessageType::Con) => self.send_empty(peer, MessageType::Rst, msg.message_id()),
            _ => {}
        }
    }

    /// A message format error: RST for CON, silent drop otherwise (§4.2, §4.3); unknown
    /// versions are silently ignored (§3).
    fn reject_malformed(&mut self, peer: A, bytes: &[u8], e: ParseError) {
        self.stats.malformed += 1;
        if matches!(e, ParseError::UnknownVersion(_) | ParseError::TooShort) {
            return;
        }
        if let Some(h) = Header::peek(bytes) {
            if h.ty == MessageType::Con {
                self.send_empty(peer, MessageType::Rst, h.message_id);
            }
        }
    }

    fn on_empty_ack(&mut self, now: Instant, peer: A, mid: u16) {
        for i in 0..N {
            let Some(s) = self.slots.get_mut(i) else {
                continue;
            };
            match &mut s.state {
                SlotState::Request(x)
                    if x.peer == peer
                        && x.mid == mid
                        && matches!(x.phase, ClientPhase::AwaitAck(_)) =>
                {
                    if x.no_response.suppresses_all() {
                        // RFC 7967: the empty ACK is all that will come.
                        let id = x.id;
                        return self.finish_request(now, i, EventRecord::NoResponse(id));
                    }
                    // Separate response follows (§5.2.2).
                    x.phase = ClientPhase::AwaitResponse;
                    x.heard = true;
                    // The request need not be retransmitted any more.
                    s.want_tx = false;
                    return;
                }
                SlotState::Response(r)
                    if r.peer == peer
                        && r.mid == mid
                        && matches!(r.phase, ResponsePhase::AwaitAck(_)) =>
                {
                    self.free_slot(i);
                    return;
                }
                _ => {}
            }
        }
        let _ = now;
    }

    fn on_rst(&mut self, now: Instant, peer: A, mid: u16) {
        for i in 0..N {
            let Some(s) = self.slots.get(i) else { continue };
            match &s.state {
                SlotState::Request(x) if x.peer == peer && x.mid == mid && x.is_outstanding() => {
                    let id = x.id;
                    return self.finish_request(now, i, EventRecord::Reset(id));
                }
                SlotState::Response(r)
                    if r.peer == peer
                        && r.mid == mid
                        && matches!(r.phase, ResponsePhase::AwaitAck(_)) =>
                {
                    // RFC 7641 §3.6: a RST to a notification ends the observation.
                    if r.notification {
                        self.drop_observer_of_slot(i);
                    }
                    return self.free_slot(i);
                }
                _ => {}
            }
        }
        // A RST to a NON notification (its slot is gone).
        self.observers.remove_by_mid(peer, mid);
    }

    /// Removes the observer a notification slot was sent to (matched by peer and token).
    fn drop_observer_of_slot(&mut self, i: usize) {
        let Some(s) = self.slots.get(i) else { return };
        let SlotState::Response(r) = s.state else {
            return;
        };
        let Ok(m) = Message::parse(s.bytes()) else {
            return;
        };
        let token = Token::new(m.token()).unwrap_or_default();
        self.observers.remove(r.peer, &token);
    }

    fn on_request(
        &mut self,
        now: Instant,
        peer: A,
        msg: &Message<'_>,
        handler: &mut impl Handler<A>,
        delivery: Delivery,
    ) {
        // §8.1: multicast requests are NON; a CON one is treated as NON (no ACK goes to a
        // group request).
        let multicast = delivery == Delivery::Multicast;
        let con = msg.ty() == MessageType::Con && !multicast;
        let mid = msg.message_id();
        let token = Token::new(msg.token()).unwrap_or_default();
        if let Some(action) = self.dedup.lookup(now, peer, mid).copied() {
            self.stats.duplicates += 1;
            return self.answer_duplicate(peer, mid, token, con, action);
        }
        let lifetime = if con {
            self.config.exchange_lifetime()
        } else {
            self.config.non_lifetime()
        };
        let lifetime = lifetime_ms(lifetime);
        // §5.4.1: an unrecognized critical option in a request → 4.02 Bad Option for a
        // CON, rejection (RST) for a NON; §5.7.2: a proxy request to a non-proxy → 5.05.
        // §5.4.3, §5.4.5, RFC 7959 §2.2, RFC 8768 §3: see crate::validate.
        if let Err(rejection) =
            crate::validate::check_request_options(msg, |n| handler.understands(n))
        {
            let code = rejection.code();
            if multicast {
                // An error nobody asked for, and never a RST (§8.1, §8.2).
                self.dedup
                    .insert(now, peer, mid, lifetime, DupAction::Ignore);
                if !multicast::error_wanted(msg, code) {
                    self.stats.multicast_suppressed += 1;
                    return;
                }
                return self.control_response(now, peer, msg, code, None);
            }
            if !con && code == Code::BAD_OPTION {
                self.dedup
                    .insert(now, peer, mid, lifetime, DupAction::Ignore);
                return self.send_empty(peer, MessageType::Rst, mid);
            }
            self.dedup
                .insert(now, peer, mid, lifetime, DupAction::Control(code));
            return self.control_response(now, peer, msg, code, None);
        }
        // RFC 7641 §3.6: a GET with Observe=1 removes the registration, then is served as a
        // normal GET.
        if msg.observe() == Some(1) {
            self.observers.remove(peer, &token);
        }
        let Some(i) = self.alloc_slot(now) else {
            // §5.9.3.4: tables full; tell the client when to retry.
            self.stats.busy_rejections += 1;
            if multicast && !multicast::error_wanted(msg, Code::SERVICE_UNAVAILABLE) {
                return;
            }
            let max_age = Some(self.config.busy_max_age);
            return self.control_response(now, peer, msg, Code::SERVICE_UNAVAILABLE, max_age);
        };
        let (ty, rmid) = if con {
            (MessageType::Ack, mid)
        } else {
            (
                MessageType::Non,
                self.peers.next_mid(now, peer, &mut self.rng),
            )
        };
        let handle = self.handle_of(i);
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        let Ok(b) = MessageBuilder::new(&mut slot.buf, ty, Code::CONTENT, rmid, token.as_slice())
        else {
            return;
        };
        let mut w = ResponseWriter::new(b);
        w.block2 = Block::of(msg, OptionNumber::BLOCK2);
        w.size2 = msg.uint_option(OptionNumber::SIZE2) == Some(0);
        w.max_szx = self.config.max_block_szx.min(crate::block::MAX_SZX);
        let req = IncomingRequest {
            peer,
            message: *msg,
            handle,
            now,
            delivery,
        };
        match handler.handle(&req, &mut w) {
            Outcome::Respond => {
                // RFC 7641 §4.1: register an observer of a successful GET/FETCH with
                // Observe=0 on an observable resource; when the table is full, answer
                // without Observe (not registered).
                register_observer(
                    &mut self.observers,
                    &mut self.observe_seq,
                    now,
                    peer,
                    token,
                    wants_observe(msg),
                    &mut w,
                );
                let code = w.code();
                slot.len = len16(w.builder.finish());
                // RFC 7967 §2: the client does not want this class of response. A CON
                // request still gets its (empty) ACK. RFC 7252 §8.2: errors to a multicast
                // request are not sent unless asked for.
                let unwanted = multicast && !multicast::error_wanted(msg, code);
                if unwanted {
                    self.stats.multicast_suppressed += 1;
                }
                if NoResponse::of(msg).suppresses(code) || unwanted {
                    return self.answer_nothing(now, i, peer, mid, con, lifetime);
                }
                let phase = if con {
                    ResponsePhase::Cached {
                        expires: now.add_millis(lifetime),
                    }
                } else if multicast {
                    // §8.2: a random point within the leisure period, so that the group's
                    // responses do not all arrive at once.
                    let leisure = crate::time::duration_ms(self.config.default_leisure);
                    ResponsePhase::Leisure {
                        until: now.add_millis(self.rng.below_or_eq(leisure)),
                    }
                } else {
                    ResponsePhase::SendOnce
                };
                slot.state = SlotState::Response(OutgoingResponse {
                    peer,
                    mid: rmid,
                    phase,
                    notification: false,
                });
                let action = if con {
                    DupAction::Resend {
                        slot: handle.slot,
                        generation: handle.generation,
                    }
                } else {
                    DupAction::Ignore
                };
                self.dedup.insert(now, peer, mid, lifetime, action);
                if !matches!(phase, ResponsePhase::Leisure { .. }) {
                    self.queue_tx(i);
                }
            }
            Outcome::Ignore => {
                // Nothing to say (e.g. a filtered /.well-known/core query that matched
                // nothing, RFC 6690 §4.1).
                self.answer_nothing(now, i, peer, mid, con, lifetime);
            }
            Outcome::Defer => {
                let ack = if !con {
                    AckState::NotNeeded
                } else if self.config.separate_ack_delay.is_zero() {
                    AckState::Sent
                } else {
                    AckState::Due(now + self.config.separate_ack_delay)
                };
                slot.len = 0;
                let expires = now + self.config.deferred_timeout;
                slot.state = SlotState::Deferred(DeferredRequest {
                    peer,
                    token,
                    mid,
                    ack,
                    expires,
                    block2: Block::of(msg, OptionNumber::BLOCK2),
                    size2: msg.uint_option(OptionNumber::SIZE2) == Some(0),
                    observe: wants_observe(msg),
                });
                if ack == AckState::Sent {
                    self.send_empty(peer, MessageType::Ack, mid);
                }
                let action = if con {
                    DupAction::Resend {
                        slot: handle.slot,
                        generation: handle.generation,
                    }
                } else {
                    DupAction::Ignore
                };
                self.dedup.insert(now, peer, mid, lifetime, action);
            }
        }
    }

    /// A request that gets no response (suppressed by No-Response or multicast rules, or
    /// ignored by its handler): the slot `i` prepared for the response is freed, a CON
    /// request still gets its empty ACK (RFC 7967 §2), and duplicates are answered alike.
    fn answer_nothing(
        &mut self,
        now: Instant,
        i: usize,
        peer: A,
        mid: u16,
        con: bool,
        lifetime: u64,
    ) {
        self.free_slot(i);
        let action = if con {
            DupAction::EmptyAck
        } else {
            DupAction::Ignore
        };
        self.dedup.insert(now, peer, mid, lifetime, action);
        if con {
            self.send_empty(peer, MessageType::Ack, mid);
        }
    }

    /// Answers `req` with a bodyless response generated at transmit time (no slot).
    fn control_response(
        &mut self,
        now: Instant,
        peer: A,
        req: &Message<'_>,
        code: Code,
        max_age: Option<u32>,
    ) {
        let token = Token::new(req.token()).unwrap_or_default();
        let (ty, mid) = if req.ty() == MessageType::Con {
            (MessageType::Ack, req.message_id())
        } else {
            (
                MessageType::Non,
                self.peers.next_mid(now, peer, &mut self.rng),
            )
        };
        self.push_control(
            peer,
            ControlKind::Response {
                ty,
                mid,
                code,
                token,
                max_age,
            },
        );
    }

    /// §4.5: a duplicate CON gets the same ACK (and piggybacked response) again; NON
    /// duplicates are ignored. The application never sees a duplicate.
    fn answer_duplicate(&mut self, peer: A, mid: u16, token: Token, con: bool, action: DupAction) {
        match action {
            DupAction::Ignore => {}
            DupAction::EmptyAck => {
                if con {
                    self.send_empty(peer, MessageType::Ack, mid)
                }
            }
            DupAction::Control(code) => {
                if con {
                    let max_age = None;
                    self.push_control(
                        peer,
                        ControlKind::Response {
                            ty: MessageType::Ack,
                            mid,
                            code,
                            token,
                            max_age,
                        },
                    );
                }
            }
            DupAction::Resend { slot, generation } => {
                let i = usize::from(slot);
                let Some(s) = self.slots.get_mut(i) else {
                    return;
                };
                if s.generation != generation {
                    return; // The cached response was evicted; nothing safe to send.
                }
                match &mut s.state {
                    SlotState::Response(r) if r.mid == mid && r.peer == peer => self.queue_tx(i),
                    SlotState::Response(_) => {
                        // Answered by a separate response: the request's ACK was empty.
                        self.send_empty(peer, MessageType::Ack, mid)
                    }
                    SlotState::Deferred(d) => {
                        d.ack = AckState::Sent;
                        self.send_empty(peer, MessageType::Ack, mid)
                    }
                    _ => {}
                }
            }
        }
    }

    fn on_response(&mut self, now: Instant, peer: A, msg: &Message<'_>, bytes: &[u8]) {
        let mid = msg.message_id();
        let ty = msg.ty();
        let con = ty == MessageType::Con;
        if matches!(ty, MessageType::Con | MessageType::Non) {
            if let Some(action) = self.dedup.lookup(now, peer, mid).copied() {
                // Already delivered: acknowledge again, never deliver twice (§4.5).
                self.stats.duplicates += 1;
                if con && action == DupAction::EmptyAck {
                    self.send_empty(peer, MessageType::Ack, mid);
                }
                return;
            }
        }
        let found = self.slots.iter().position(|s| match &s.state {
            SlotState::Request(x) => {
                x.peer == peer
                    && x.token.as_slice() == msg.token()
                    && match (ty, x.phase) {
                        // A piggybacked response must also match the Message ID (§5.3.2).
                        (MessageType::Ack, ClientPhase::AwaitAck(_)) => x.mid == mid,
                        (MessageType::Con | MessageType::Non, p) => p != ClientPhase::Queued,
                        _ => false,
                    }
            }
            _ => false,
        });
        // A group request's responses come from its members, not from the group address
        // it went to: matched by token alone (RFC 7252 §8.2), after the exact matches.
        let found = found.or_else(|| {
            self.slots.iter().position(|s| match &s.state {
                SlotState::Request(x) => {
                    x.kind == ExchangeKind::Group
                        && x.token.as_slice() == msg.token()
                        && matches!(ty, MessageType::Con | MessageType::Non)
                        && x.phase != ClientPhase::Queued
                }
                _ => false,
            })
        });
        let Some(i) = found else {
            // §5.3.2: a CON response nobody waits for is rejected; so is a NON
            // notification of an observation we forgot (RFC 7641 §3.6, passive cancel).
            if con || (ty == MessageType::Non && msg.observe().is_some()) {
                self.send_empty(peer, MessageType::Rst, mid);
            }
            return;
        };
        // §5.4.1: unrecognized critical options in a CON response or a piggybacked one
        // reject the response (so do bad lengths and repeats, §5.4.3, §5.4.5).
        if crate::validate::check_response_options(msg, |n| n.info().is_some()).is_err() {
            if con {
                self.send_empty(peer, MessageType::Rst, mid);
            }
            return;
        }
        if bytes.len() > M {
            // Cannot hold it for the application; let the exchange time out rather
            // than acknowledge what we cannot deliver.
            return;
        }
        let lifetime = lifetime_ms(if con {
            self.config.exchange_lifetime()
        } else {
            self.config.non_lifetime()
        });
        let Some(SlotState::Request(x)) = self.slots.get(i).map(|s| s.state) else {
            return;
        };
        if x.kind == ExchangeKind::Group {
            return self.on_group_response(now, peer, i, x, msg, bytes, lifetime);
        }
        if x.observe.is_some() && msg.observe().is_some() && msg.code().kind() == CodeClass::Success
        {
            return self.on_notification(now, peer, i, x, msg, bytes, lifetime);
        }
        let more = Block::of(msg, OptionNumber::BLOCK2)
            .filter(|b| b.more && msg.code().kind() == CodeClass::Success && x.observe.is_none());
        if let Some(block) = more {
            return self.on_block2(now, peer, i, x, msg, bytes, lifetime, block);
        }
        if msg.code() == Code::CONTINUE {
            if let Some(next) = self.next_upload_block(i, msg) {
                self.acknowledge_response(now, peer, msg, lifetime);
                if let Some(SlotState::Request(e)) = self.slots.get_mut(i).map(|s| &mut s.state) {
                    e.phase = ClientPhase::AwaitBody(next);
                    e.heard = true;
                    e.deadline = now + self.config.request_timeout;
                }
                if let Some(s) = self.slots.get_mut(i) {
                    s.want_tx = false;
                }
                let _ = self.events.push_back(EventRecord::Continue(x.id, next));
                return self.start_queued(now);
            }
        }
        if msg.code() == Code::UNAUTHORIZED && self.repeat_with_echo(now, peer, i, x, msg, lifetime)
        {
            return;
        }
        self.acknowledge_response(now, peer, msg, lifetime);
        if x.notification_rest {
            // The last block of a notification: report it as a block; the observation
            // itself goes on in its own slot.
            let Some(s) = self.slots.get_mut(i) else {
                return;
            };
            if let Some(dst) = s.buf.get_mut(..bytes.len()) {
                dst.copy_from_slice(bytes);
            }
            s.len = len16(bytes.len());
            s.want_tx = false;
            s.state = SlotState::Received { peer };
            let generation = s.generation;
            let _ = self.events.push_back(EventRecord::Block {
                id: x.id,
                slot: i as u16,
                generation,
            });
            return self.start_queued(now);
        }
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        let SlotState::Request(x) = s.state else {
            return;
        };
        if let Some(dst) = s.buf.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        s.len = len16(bytes.len());
        s.want_tx = false;
        s.state = SlotState::Received { peer };
        let generation = s.generation;
        self.finish_request(
            now,
            i,
            EventRecord::Response {
                id: x.id,
                slot: i as u16,
                generation,
            },
        );
    }

    /// One member's response to the group request in slot `i` (RFC 7252 §8.2): delivered
    /// in a slot of its own, the request stays open. A first block with more to come is
    /// continued by unicast with that member (RFC 7959 §2.8) in a follow-up exchange.
    #[allow(clippy::too_many_arguments)]
    fn on_group_response(
        &mut self,
        now: Instant,
        peer: A,
        i: usize,
        x: ClientExchange<A>,
        msg: &Message<'_>,
        bytes: &[u8],
        lifetime: u64,
    ) {
        let more = Block::of(msg, OptionNumber::BLOCK2)
            .filter(|b| b.more && msg.code().kind() == CodeClass::Success);
        // Room for this event while keeping room for every exchange's terminal event (and
        // the follow-up's, which is one more exchange).
        let needed = 1 + usize::from(more.is_some());
        let room = self.events.len() + self.client_exchanges() + needed <= N;
        let Some(j) = room.then(|| self.alloc_slot(now)).flatten() else {
            self.stats.group_response_drops += 1;
            return;
        };
        let Some(sj) = self.slots.get_mut(j) else {
            return;
        };
        let Some(dst) = sj.buf.get_mut(..bytes.len()) else {
            return;
        };
        dst.copy_from_slice(bytes);
        sj.len = len16(bytes.len());
        sj.state = SlotState::Received { peer };
        if let Some(block) = more {
            let Some(k) = self.alloc_slot(now) else {
                self.free_slot(j);
                self.stats.group_response_drops += 1;
                return;
            };
            let token = self.fresh_token(peer);
            let Ok([si, sk]) = self.slots.get_disjoint_mut([i, k]) else {
                return;
            };
            let built = Message::parse(si.bytes())
                .map_err(|_| BuildError::BufferTooSmall)
                .and_then(|req| {
                    // The rest of the representation, by unicast from this member and
                    // confirmable (RFC 7959 §2.8): the request's options with the next
                    // Block2 value.
                    let mut b = MessageBuilder::new(
                        &mut sk.buf,
                        MessageType::Con,
                        req.code(),
                        0,
                        token.as_slice(),
                    )?;
                    for o in req.options().filter(|o| o.number != OptionNumber::BLOCK2) {
                        b.option(o.number, o.value)?;
                    }
                    let next = Block::new(block.num + 1, false, block.szx);
                    b.option_uint(OptionNumber::BLOCK2, next.encode())?;
                    b.payload(req.payload())?;
                    Ok(b.finish())
                });
            let Ok(len) = built else {
                self.free_slot(k);
                self.free_slot(j);
                return;
            };
            let etag = Token::new(
                msg.option(OptionNumber::ETAG)
                    .map(|o| o.value)
                    .unwrap_or_default(),
            )
            .unwrap_or_default();
            sk.len = len16(len);
            sk.state = SlotState::Request(ClientExchange {
                peer,
                token,
                mid: 0,
                confirmable: true,
                phase: ClientPhase::Queued,
                deadline: now + self.config.request_timeout,
                heard: true,
                etag: Some(etag),
                observe: None,
                kind: ExchangeKind::GroupFollowUp,
                ..x
            });
        }
        let generation = self.slots.get(j).map_or(0, |s| s.generation);
        let record = if more.is_some() {
            EventRecord::Block {
                id: x.id,
                slot: j as u16,
                generation,
            }
        } else {
            EventRecord::Response {
                id: x.id,
                slot: j as u16,
                generation,
            }
        };
        self.acknowledge_response(now, peer, msg, lifetime);
        let _ = self.events.push_back(record);
        self.start_queued(now);
    }

    /// RFC 9175 §2.4: a 4.01 Unauthorized with an Echo option asks the client to repeat
    /// the request carrying that Echo value (freshness, or OSCORE replay-window recovery,
    /// RFC 8613 Appendix B.1.2). The request is repeated once, with a new Message ID and the
    /// same token; a request that already carried Echo gets the 4.01 delivered instead, so a
    /// server that keeps asking cannot make us loop. Returns whether the request was repeated.
    fn repeat_with_echo(
        &mut self,
        now: Instant,
        peer: A,
        i: usize,
        x: ClientExchange<A>,
        msg: &Message<'_>,
        lifetime: u64,
    ) -> bool {
        let Some(echo) = msg.option(OptionNumber::ECHO) else {
            return false;
        };
        let Some(req) = self
            .slots
            .get(i)
            .and_then(|s| Message::parse(s.bytes()).ok())
        else {
            return false;
        };
        if req.option(OptionNumber::ECHO).is_some() {
            return false;
        }
        let Some(j) = self.alloc_slot(now) else {
            return false;
        };
        let Ok([si, sj]) = self.slots.get_disjoint_mut([i, j]) else {
            return false;
        };
        let Ok(req) = Message::parse(si.bytes()) else {
            return false;
        };
        let built = (|| {
            let mut b = MessageBuilder::new(&mut sj.buf, req.ty(), req.code(), 0, req.token())?;
            for o in req.options() {
                b.option(o.number, o.value)?;
            }
            b.option(OptionNumber::ECHO, echo.value)?;
            b.payload(req.payload())?;
            Ok::<usize, BuildError>(b.finish())
        })();
        let Ok(len) = built else {
            return false;
        };
        sj.len = len16(len);
        sj.state = SlotState::Request(ClientExchange {
            mid: 0,
            phase: ClientPhase::Queued,
            heard: true,
            ..x
        });
        self.acknowledge_response(now, peer, msg, lifetime);
        self.free_slot(i);
        self.start_queued(now);
        true
    }

    /// After 2.31 Continue to the upload block in slot `i`: the next block to send, in the
    /// size the server asked for (RFC 7959 §2.5: it may lower SZX, never raise it).
    fn next_upload_block(&self, i: usize, response: &Message<'_>) -> Option<Block> {
        let s = self.slots.get(i)?;
        let sent = Block::of(&Message::parse(s.bytes()).ok()?, OptionNumber::BLOCK1)?;
        if !sent.more {
            return None;
        }
        let szx =
            Block::of(response, OptionNumber::BLOCK1).map_or(sent.szx, |b| b.szx.min(sent.szx));
        let offset = sent.offset() + sent.size();
        Some(Block::new((offset >> (szx + 4)) as u32, false, szx))
    }

    /// Starts a Block1 upload (RFC 7959 §2.5) of a `total`-byte body: `build` adds the
    /// options, `first` is the first block — at most [`Endpoint::upload_block_size`]
    /// bytes; the whole body if it is that small. The endpoint adds Block1, Size1 and a
    /// random Request-Tag (RFC 9175 §3). Each block accepted with 2.31 Continue yields
    /// `Event::Continue`; answer with [`Endpoint::upload_next`]. The final response
    /// arrives as `Response`.
    pub fn upload(
        &mut self,
        now: Instant,
        peer: A,
        params: RequestParams,
        total: usize,
        build: impl FnOnce(&mut MessageBuilder<'_>) -> Result<(), BuildError>,
        first: &[u8],
    ) -> Result<RequestId, Error> {
        let size = self.upload_block_size();
        if first.len() > size || (first.len() < size && first.len() < total) {
            return Err(Error::Build(BuildError::BufferTooSmall));
        }
        let szx = Block::szx_for(size);
        let more = total > first.len();
        let mut tag = [0u8; 4];
        self.rng.fill(&mut tag);
        self.request(now, peer, params, |b| {
            build(b)?;
            if more {
                b.option_uint(OptionNumber::BLOCK1, Block::new(0, true, szx).encode())?;
                b.option_uint(
                    OptionNumber::SIZE1,
                    u32::try_from(total).unwrap_or(u32::MAX),
                )?;
                b.option(OptionNumber::REQUEST_TAG, &tag)?;
            }
            b.payload(first)?;
            Ok(())
        })
    }

    /// The block size uploads start with: `Config::max_block_szx`, lowered until a block and
    /// the request around it (header, token and options: [`BLOCK_ROOM`] bytes kept) fit in a
    /// message slot of `M` bytes (RFC 7959 §2.2: any power of two from 16 to 1024 will do).
    pub fn upload_block_size(&self) -> usize {
        let mut szx = self.config.max_block_szx.min(crate::block::MAX_SZX);
        while szx > 0 && (16usize << szx) + BLOCK_ROOM > M {
            szx -= 1;
        }
        16 << szx
    }

    /// Sends the next block of an upload after `Event::Continue`: `chunk` holds the bytes
    /// at the announced offset, `size` of them unless it is the last block (`last`).
    pub fn upload_next(
        &mut self,
        now: Instant,
        id: RequestId,
        chunk: &[u8],
        last: bool,
    ) -> Result<(), Error> {
        let i = self
            .slots
            .iter()
            .position(|s| matches!(&s.state, SlotState::Request(x) if x.id == id && matches!(x.phase, ClientPhase::AwaitBody(_))))
            .ok_or(Error::UnknownHandle)?;
        let j = self.alloc_slot(now).ok_or(Error::Busy)?;
        let [si, sj] = self
            .slots
            .get_disjoint_mut([i, j])
            .map_err(|_| Error::Busy)?;
        let SlotState::Request(mut x) = si.state else {
            return Err(Error::UnknownHandle);
        };
        let ClientPhase::AwaitBody(next) = x.phase else {
            return Err(Error::UnknownHandle);
        };
        if chunk.len() > next.size() || (!last && chunk.len() != next.size()) {
            return Err(Error::Build(BuildError::BufferTooSmall));
        }
        let req = Message::parse(si.bytes()).map_err(|_| Error::UnknownHandle)?;
        let ty = if x.confirmable {
            MessageType::Con
        } else {
            MessageType::Non
        };
        let mut b = MessageBuilder::new(&mut sj.buf, ty, req.code(), 0, x.token.as_slice())?;
        for o in req.options().filter(|o| o.number != OptionNumber::BLOCK1) {
            b.option(o.number, o.value)?;
        }
        b.option_uint(
            OptionNumber::BLOCK1,
            Block::new(next.num, !last, next.szx).encode(),
        )?;
        b.payload(chunk)?;
        sj.len = len16(b.finish());
        x.phase = ClientPhase::Queued;
        x.deadline = now + self.config.request_timeout;
        sj.state = SlotState::Request(x);
        self.free_slot(i);
        self.start_queued(now);
        Ok(())
    }

    /// ACKs a CON response and remembers its Message ID so a duplicate is acknowledged
    /// again but never delivered twice (§4.5).
    fn acknowledge_response(&mut self, now: Instant, peer: A, msg: &Message<'_>, lifetime: u64) {
        let mid = msg.message_id();
        match msg.ty() {
            MessageType::Con => {
                self.send_empty(peer, MessageType::Ack, mid);
                self.dedup
                    .insert(now, peer, mid, lifetime, DupAction::EmptyAck);
            }
            MessageType::Non => self
                .dedup
                .insert(now, peer, mid, lifetime, DupAction::Ignore),
            _ => {}
        }
    }

    /// A Block2 response with more blocks to come (RFC 7959 §2.4, §3.1): hand the block to
    /// the application and request the next one. The request moves to a new slot and the
    /// block takes the old one, so a transfer needs one extra slot at a time.
    #[allow(clippy::too_many_arguments)]
    fn on_block2(
        &mut self,
        now: Instant,
        peer: A,
        i: usize,
        x: ClientExchange<A>,
        msg: &Message<'_>,
        bytes: &[u8],
        lifetime: u64,
        block: Block,
    ) {
        let etag = Token::new(
            msg.option(OptionNumber::ETAG)
                .map(|o| o.value)
                .unwrap_or_default(),
        )
        .unwrap_or_default();
        if x.etag.is_some_and(|e| e != etag) {
            self.acknowledge_response(now, peer, msg, lifetime);
            let record = EventRecord::Failed(x.id, FailReason::RepresentationChanged);
            return self.finish_request(now, i, record);
        }
        // Room for the block event and the next request; otherwise leave the response
        // unacknowledged (a CON comes again; a piggybacked one is asked for again).
        if self.events.is_full() {
            return;
        }
        let Some(j) = self.alloc_slot(now) else {
            return;
        };
        let Ok([si, sj]) = self.slots.get_disjoint_mut([i, j]) else {
            return;
        };
        let Ok(req) = Message::parse(si.bytes()) else {
            return;
        };
        let ty = if x.confirmable {
            MessageType::Con
        } else {
            MessageType::Non
        };
        let next = Block::new(block.num + 1, false, block.szx);
        let built = (|| {
            // After a Block1 upload, the rest of the response is asked for without the
            // body (RFC 7959 §3.3, Figure 9); a FETCH keeps its payload (RFC 8132 §2).
            let upload = req.option(OptionNumber::BLOCK1).is_some();
            let skip = |n: OptionNumber| {
                n == OptionNumber::BLOCK2
                    || (upload && matches!(n, OptionNumber::BLOCK1 | OptionNumber::SIZE1))
            };
            let mut b = MessageBuilder::new(&mut sj.buf, ty, req.code(), 0, x.token.as_slice())?;
            for o in req.options().filter(|o| !skip(o.number)) {
                b.option(o.number, o.value)?;
            }
            b.option_uint(OptionNumber::BLOCK2, next.encode())?;
            if !upload {
                b.payload(req.payload())?;
            }
            Ok::<usize, BuildError>(b.finish())
        })();
        let Ok(len) = built else { return };
        sj.len = len16(len);
        sj.state = SlotState::Request(ClientExchange {
            mid: 0,
            phase: ClientPhase::Queued,
            deadline: now + self.config.request_timeout,
            heard: true,
            etag: Some(etag),
            ..x
        });
        // The block takes the request's old slot.
        if let Some(dst) = si.buf.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        si.len = len16(bytes.len());
        si.want_tx = false;
        si.state = SlotState::Received { peer };
        let generation = si.generation;
        self.acknowledge_response(now, peer, msg, lifetime);
        let _ = self.events.push_back(EventRecord::Block {
            id: x.id,
            slot: i as u16,
            generation,
        });
        self.start_queued(now);
    }

    /// A notification for the observation in slot `i` (RFC 7641 §3.2–§3.4).
    #[allow(clippy::too_many_arguments)]
    fn on_notification(
        &mut self,
        now: Instant,
        peer: A,
        i: usize,
        x: ClientExchange<A>,
        msg: &Message<'_>,
        bytes: &[u8],
        lifetime: u64,
    ) {
        let mid = msg.message_id();
        let ty = msg.ty();
        let v = msg.observe().unwrap_or(0);
        let obs = x.observe.unwrap_or(Observation::NEW);
        let fresh = obs.is_fresh(v, now);
        // Where the notification will wait for the application: a slot of its own, so
        // the request stays available for re-registration.
        let target = if fresh {
            if self.events.is_full() {
                None
            } else {
                self.alloc_slot(now)
            }
        } else {
            Some(i)
        };
        let Some(j) = target else {
            // No room: do not acknowledge, a CON notification will come again.
            self.stats.notification_drops += 1;
            return;
        };
        match ty {
            MessageType::Con => {
                self.send_empty(peer, MessageType::Ack, mid);
                self.dedup
                    .insert(now, peer, mid, lifetime, DupAction::EmptyAck);
            }
            MessageType::Non => self
                .dedup
                .insert(now, peer, mid, lifetime, DupAction::Ignore),
            _ => {}
        }
        // The registration is answered: stop retransmitting it, and re-register when the
        // notification's Max-Age lapses without a newer one (§3.3.1).
        let refresh = now.add_millis(u64::from(msg.max_age()) * 1000 + REREGISTER_SLACK_MS);
        if let Some(SlotState::Request(e)) = self.slots.get_mut(i).map(|s| &mut s.state) {
            e.phase = ClientPhase::Observing;
            e.heard = true;
            e.deadline = refresh;
            e.observe = Some(if fresh {
                Observation {
                    last_value: v,
                    last_at: now,
                    delivered: true,
                    established: true,
                }
            } else {
                Observation {
                    established: true,
                    ..obs
                }
            });
        }
        if let Some(s) = self.slots.get_mut(i) {
            s.want_tx = false;
        }
        if !fresh {
            self.stats.stale_notifications += 1;
            return;
        }
        let Some(s) = self.slots.get_mut(j) else {
            return;
        };
        if let Some(dst) = s.buf.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        s.len = len16(bytes.len());
        s.state = SlotState::Received { peer };
        let generation = s.generation;
        let _ = self.events.push_back(EventRecord::Notification {
            id: x.id,
            slot: j as u16,
            generation,
        });
        // A notification larger than one block carries its first block; the rest is
        // fetched with GET and Block2 (without Observe), under the same RequestId.
        if let Some(b) = Block::of(msg, OptionNumber::BLOCK2).filter(|b| b.more && b.num == 0) {
            let etag = Token::new(
                msg.option(OptionNumber::ETAG)
                    .map(|o| o.value)
                    .unwrap_or_default(),
            )
            .unwrap_or_default();
            self.fetch_notification_rest(now, i, x, b, etag);
        }
        // Observations end only by the final response, timeout, reset or cancellation.
        self.start_queued(now);
    }

    /// Starts the GET for blocks 1.. of a notification (RFC 7959 §3.4).
    fn fetch_notification_rest(
        &mut self,
        now: Instant,
        i: usize,
        x: ClientExchange<A>,
        first: Block,
        etag: Token,
    ) {
        let Some(k) = self.alloc_slot(now) else {
            self.stats.notification_drops += 1;
            return;
        };
        let token = self.fresh_token(x.peer);
        let Ok([si, sk]) = self.slots.get_disjoint_mut([i, k]) else {
            return;
        };
        let Ok(req) = Message::parse(si.bytes()) else {
            return;
        };
        let ty = if x.confirmable {
            MessageType::Con
        } else {
            MessageType::Non
        };
        let next = Block::new(1, false, first.szx);
        let built = (|| {
            let mut b = MessageBuilder::new(&mut sk.buf, ty, req.code(), 0, token.as_slice())?;
            for o in req
                .options()
                .filter(|o| !matches!(o.number, OptionNumber::OBSERVE | OptionNumber::BLOCK2))
            {
                b.option(o.number, o.value)?;
            }
            b.option_uint(OptionNumber::BLOCK2, next.encode())?;
            b.payload(req.payload())?;
            Ok::<usize, BuildError>(b.finish())
        })();
        let Ok(len) = built else {
            self.free_slot(k);
            return;
        };
        sk.len = len16(len);
        sk.state = SlotState::Request(ClientExchange {
            token,
            mid: 0,
            phase: ClientPhase::Queued,
            deadline: now + self.config.request_timeout,
            heard: false,
            observe: None,
            etag: Some(etag),
            notification_rest: true,
            ..x
        });
    }

    /// Ends an observation actively (RFC 7641 §3.6): sends the registration again with
    /// Observe=1 (same token). The server's answer arrives as the final `Response`.
    pub fn cancel_observe(&mut self, now: Instant, id: RequestId) -> Result<(), Error> {
        let i = self
            .slots
            .iter()
            .position(
                |s| matches!(&s.state, SlotState::Request(x) if x.id == id && x.observe.is_some()),
            )
            .ok_or(Error::UnknownHandle)?;
        let j = self.alloc_slot(now).ok_or(Error::Busy)?;
        let [si, sj] = self
            .slots
            .get_disjoint_mut([i, j])
            .map_err(|_| Error::Busy)?;
        let SlotState::Request(mut x) = si.state else {
            return Err(Error::UnknownHandle);
        };
        let req = Message::parse(si.bytes()).map_err(|_| Error::UnknownHandle)?;
        let ty = if x.confirmable {
            MessageType::Con
        } else {
            MessageType::Non
        };
        let mut b = MessageBuilder::new(&mut sj.buf, ty, req.code(), 0, x.token.as_slice())?;
        for o in req.options().filter(|o| o.number != OptionNumber::OBSERVE) {
            b.option(o.number, o.value)?;
        }
        b.option_uint(OptionNumber::OBSERVE, 1)?;
        b.payload(req.payload())?;
        sj.len = len16(b.finish());
        x.observe = None;
        x.phase = ClientPhase::Queued;
        x.deadline = now + self.config.request_timeout;
        sj.state = SlotState::Request(x);
        self.free_slot(i);
        self.start_queued(now);
        Ok(())
    }

    /// Processes timers whose time has come: retransmissions, request deadlines, delayed
    /// ACKs of deferred requests, queued requests waiting for PROBING_RATE.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..N {
            let Some(s) = self.slots.get_mut(i) else {
                continue;
            };
            match &mut s.state {
                SlotState::Request(x) => {
                    if now >= x.deadline && x.kind == ExchangeKind::Group {
                        // The collection window is over; it closes once the Block2
                        // continuations with responders have ended too.
                        let id = x.id;
                        let follow_up = self.slots.iter().filter_map(|s| match s.state {
                            SlotState::Request(y)
                                if y.id == id && y.kind == ExchangeKind::GroupFollowUp =>
                            {
                                Some(y.deadline)
                            }
                            _ => None,
                        });
                        if let Some(later) = follow_up.min() {
                            if let Some(SlotState::Request(x)) =
                                self.slots.get_mut(i).map(|s| &mut s.state)
                            {
                                x.deadline = later.max(now.add_millis(1));
                            }
                            continue;
                        }
                        self.finish_request(now, i, EventRecord::Timeout(id));
                        continue;
                    }
                    if now >= x.deadline {
                        if let Some(o) = x.observe.as_mut().filter(|o| o.established) {
                            // RFC 7641 §3.3.1: Max-Age lapsed without a notification:
                            // register again (same token, new Message ID).
                            o.established = false;
                            x.deadline = now + self.config.request_timeout;
                            x.phase = ClientPhase::Queued;
                            self.transmit_request(now, i);
                            continue;
                        }
                        let (id, peer, heard) = (x.id, x.peer, x.heard);
                        self.timed_out(now, i, id, peer, heard);
                        continue;
                    }
                    if let ClientPhase::AwaitAck(r) = &mut x.phase {
                        if now >= r.next {
                            match r.fire(now, &self.config) {
                                RetransmitStep::Resend => self.queue_tx(i),
                                RetransmitStep::GiveUp => {
                                    let (id, peer, heard) = (x.id, x.peer, x.heard);
                                    self.timed_out(now, i, id, peer, heard);
                                }
                            }
                        }
                    }
                }
                SlotState::Response(r) => match &mut r.phase {
                    ResponsePhase::AwaitAck(rt) if now >= rt.next => {
                        match rt.fire(now, &self.config) {
                            RetransmitStep::Resend => self.queue_tx(i),
                            RetransmitStep::GiveUp => {
                                // RFC 7641 §4.5: an unacknowledged CON notification ends
                                // the observation.
                                if r.notification {
                                    self.drop_observer_of_slot(i);
                                }
                                self.free_slot(i)
                            }
                        }
                    }
                    ResponsePhase::Cached { expires } if now >= *expires && !s.want_tx => {
                        self.free_slot(i)
                    }
                    ResponsePhase::Leisure { until } if now >= *until => {
                        r.phase = ResponsePhase::SendOnce;
                        self.queue_tx(i);
                    }
                    _ => {}
                },
                SlotState::Deferred(d) => {
                    if now >= d.expires {
                        let age = self.config.busy_max_age;
                        let handle = self.handle_of(i);
                        let _ = self.respond(now, handle, |w| {
                            w.set_code(Code::SERVICE_UNAVAILABLE);
                            w.option_uint(OptionNumber::MAX_AGE, age)?;
                            Ok(())
                        });
                        continue;
                    }
                    if let AckState::Due(t) = d.ack {
                        if now >= t {
                            d.ack = AckState::Sent;
                            let (peer, mid) = (d.peer, d.mid);
                            self.send_empty(peer, MessageType::Ack, mid);
                        }
                    }
                }
                _ => {}
            }
        }
        self.start_queued(now);
    }

    fn timed_out(&mut self, now: Instant, i: usize, id: RequestId, peer: A, heard: bool) {
        if !heard {
            // The peer did not answer at all: PROBING_RATE applies from now on (§4.7).
            if let Some(p) = self.peers.get(peer) {
                p.unresponsive = true;
            }
        }
        // RFC 7967: silence is an answer when the request suppressed some classes and the
        // request itself got through (a NON, or an acknowledged CON).
        let silent_ok = match self.slots.get(i).map(|s| s.state) {
            Some(SlotState::Request(x)) => {
                x.no_response.suppresses_any() && (!x.confirmable || heard)
            }
            _ => false,
        };
        let record = if silent_ok {
            EventRecord::NoResponse(id)
        } else {
            EventRecord::Timeout(id)
        };
        self.finish_request(now, i, record);
    }

    /// The next time `handle_timeout` must be called, if any timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut arm = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        for s in &self.slots {
            match &s.state {
                SlotState::Request(x) => {
                    arm(x.deadline);
                    match x.phase {
                        ClientPhase::AwaitAck(r) => arm(r.next),
                        ClientPhase::Queued => {
                            // Only PROBING_RATE needs a timer; a request waiting for NSTART
                            // starts when another exchange with the peer ends.
                            if let Some(p) = self.peers_get(x.peer) {
                                if p.unresponsive
                                    && self.outstanding(x.peer)
                                        < usize::from(self.config.nstart.max(1))
                                {
                                    arm(p.probe_not_before);
                                }
                            }
                        }
                        ClientPhase::AwaitResponse
                        | ClientPhase::Observing
                        | ClientPhase::AwaitBody(_) => {}
                    }
                }
                SlotState::Response(OutgoingResponse {
                    phase: ResponsePhase::AwaitAck(r),
                    ..
                }) => arm(r.next),
                SlotState::Response(OutgoingResponse {
                    phase: ResponsePhase::Leisure { until },
                    ..
                }) => arm(*until),
                SlotState::Deferred(d) => {
                    arm(d.expires);
                    if let AckState::Due(t) = d.ack {
                        arm(t);
                    }
                }
                _ => {}
            }
        }
        next
    }

    // ----- output ------------------------------------------------------------------

    /// Writes the next datagram to send into `buf` (which should hold `M` bytes) and says
    /// where it goes. Call until it returns `None` after every input.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit<A>> {
        let _ = now;
        while let Some(c) = self.control.pop_front() {
            let len = match c.kind {
                ControlKind::Empty { ty, mid } => write_empty(buf, ty, mid).ok(),
                ControlKind::Response {
                    ty,
                    mid,
                    code,
                    token,
                    max_age,
                } => MessageBuilder::new(buf, ty, code, mid, token.as_slice())
                    .ok()
                    .and_then(|mut b| {
                        if let Some(age) = max_age {
                            b.option_uint(OptionNumber::MAX_AGE, age).ok()?;
                        }
                        Some(b.finish())
                    }),
            };
            if let Some(len) = len {
                return Some(Transmit { peer: c.peer, len });
            }
        }
        while let Some(i) = self.tx.pop_front() {
            let i = usize::from(i);
            let Some(s) = self.slots.get_mut(i) else {
                continue;
            };
            s.queued = false;
            if !s.want_tx {
                continue;
            }
            s.want_tx = false;
            let peer = match &s.state {
                SlotState::Request(x) => x.peer,
                SlotState::Response(r) => r.peer,
                _ => continue,
            };
            let len = usize::from(s.len);
            let Some(dst) = buf.get_mut(..len) else {
                continue;
            };
            dst.copy_from_slice(s.bytes());
            match s.state {
                SlotState::Response(OutgoingResponse {
                    phase: ResponsePhase::SendOnce,
                    ..
                }) => {
                    self.free_slot(i);
                }
                // RFC 7967: a NON that wants no response at all is done once sent.
                SlotState::Request(x) if !x.confirmable && x.no_response.suppresses_all() => {
                    self.finish_request(now, i, EventRecord::NoResponse(x.id));
                }
                _ => {}
            }
            return Some(Transmit { peer, len });
        }
        None
    }

    /// The next event. A `Response` borrows the endpoint's slot until the next call.
    pub fn poll_event(&mut self) -> Option<Event<'_, A>> {
        if let Some((slot, generation)) = self.lent.take() {
            let i = usize::from(slot);
            if self
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
                        self.slots.get(i),
                        Some(Slot { state: SlotState::Received { .. }, generation: g, .. }) if *g == generation
                    );
                    if !ok {
                        continue;
                    }
                    self.lent = Some((slot, generation));
                    let s = self.slots.get(i)?;
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

/// Slot lengths fit in `u16`: datagrams are at most 65535 bytes, and `M` is clamped by the
/// callers' buffers.
/// A GET or FETCH with Observe=0 asks to be registered as an observer (RFC 7641 §3.1,
/// RFC 8132 §2.4).
fn wants_observe(msg: &Message<'_>) -> bool {
    msg.observe() == Some(0) && matches!(msg.code(), Code::GET | Code::FETCH)
}

/// RFC 7641 §4.1: registers the client of a request that `wants` to observe when its
/// answer `w` is a success on a resource declared observable; the answer then carries the
/// next Observe value. A full table leaves the client unregistered: the answer goes out
/// without Observe, which tells the client so.
fn register_observer<A: Copy + Eq, const O: usize>(
    observers: &mut ObserverTable<A, O>,
    observe_seq: &mut u32,
    now: Instant,
    peer: A,
    token: Token,
    wants: bool,
    w: &mut ResponseWriter<'_>,
) {
    let Some(key) = w
        .observe_key
        .filter(|_| wants && w.code().kind() == CodeClass::Success)
    else {
        return;
    };
    if observers.register(now, peer, token, key) {
        if w.builder
            .option_uint(OptionNumber::OBSERVE, *observe_seq)
            .is_ok()
        {
            *observe_seq = (*observe_seq + 1) % OBSERVE_MODULUS;
        } else {
            observers.remove(peer, &token);
        }
    }
}

fn len16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}
