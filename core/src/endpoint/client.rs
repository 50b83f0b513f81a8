//! Client exchanges (RFC 7252 §5.3): starting requests (fresh tokens, NSTART, PROBING_RATE,
//! a bounded queue), cancelling them, matching responses by token and peer, the Echo retry
//! (RFC 9175 §2.4) and the end of an exchange (response, timeout, reset).

use super::event::EventRecord;
use super::slot::SlotState;
use super::{len16, Endpoint, Error, RequestParams};
use crate::block::Block;
use crate::code::{Code, CodeClass};
use crate::dedup::DedupStore;
use crate::exchange::{ClientExchange, ClientPhase, ExchangeKind, RequestId, Token};
use crate::message::{BuildError, Message, MessageBuilder, MessageType};
use crate::no_response::NoResponse;
use crate::observe::Observation;
use crate::option::OptionNumber;
use crate::reliability::{lifetime_ms, probing_delay_ms, DupAction, Retransmit};
use crate::time::Instant;
use heapless::Deque;

impl<A, const N: usize, const M: usize, const D: usize, const O: usize, S>
    Endpoint<A, N, M, D, O, S>
where
    A: Copy + Eq + core::hash::Hash,
    S: DedupStore<A>,
{
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

    pub(super) fn start_request(
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
        if self.events.len() + self.pool.client_exchanges() >= N {
            return Err(Error::Busy);
        }
        let token = match params.token {
            Some(t) if self.token_in_use(peer, &t) => return Err(Error::TokenInUse),
            Some(t) => t,
            None => self.fresh_token(peer),
        };
        let i = self.alloc_slot(now).ok_or(Error::Busy)?;
        let slot = self.pool.slots.get_mut(i).ok_or(Error::Busy)?;
        let mut b =
            MessageBuilder::new(&mut slot.buf, params.ty, params.code, 0, token.as_slice())?;
        build(&mut b)?;
        slot.len = len16(b.finish());
        // A GET/FETCH with Observe=0 registers an observation (RFC 7641 §3.1).
        let observe = (Message::parse(slot.bytes()).ok().and_then(|m| m.observe()) == Some(0))
            .then_some(Observation::NEW);
        // An observation keeps its slot for re-registration, and each notification needs
        // another while it waits for `poll_event`: it may not take the last free slot, or
        // its own first answer would find none (and go unheard until it times out).
        if observe.is_some() && self.pool.in_use() + 1 >= N {
            self.free_slot(i);
            return Err(Error::Busy);
        }
        let Some(slot) = self.pool.slots.get_mut(i) else {
            return Err(Error::Busy);
        };
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

    pub(super) fn fresh_token(&mut self, peer: A) -> Token {
        let len = usize::from(self.config.token_len.min(8));
        let mut bytes = [0u8; 8];
        // Random tokens (§5.3.1); retry a few times on the (unlikely) clash with a live
        // exchange to the same peer.
        for _ in 0..4 {
            self.rng.fill(&mut bytes[..len]);
            let t = Token::new(&bytes[..len]).unwrap_or_default();
            if !self.token_in_use(peer, &t) {
                return t;
            }
        }
        Token::new(&bytes[..len]).unwrap_or_default()
    }

    /// A live exchange with `peer` uses `token`.
    fn token_in_use(&self, peer: A, token: &Token) -> bool {
        self.pool.slots.iter().any(
            |s| matches!(&s.state, SlotState::Request(x) if x.peer == peer && x.token == *token),
        )
    }

    /// The live request to `peer` whose token is `token`, if any. For a runtime that learns
    /// of an answer this endpoint cannot see as one: an OSCORE layer's unprotected error
    /// answering a protected request (RFC 8613 §8.2, §8.4) arrives from the plain peer.
    pub fn request_with_token(&self, peer: A, token: &[u8]) -> Option<RequestId> {
        self.pool.slots.iter().find_map(|s| match &s.state {
            SlotState::Request(x) if x.peer == peer && x.token.as_slice() == token => Some(x.id),
            _ => None,
        })
    }

    /// Cancels a request: no event will be reported for it. Late responses are answered
    /// as unknown (RST for a CON response, §5.3.2).
    pub fn cancel(&mut self, id: RequestId) -> bool {
        let mut removed = false;
        let found = self
            .pool
            .slots
            .iter()
            .position(|s| matches!(&s.state, SlotState::Request(x) if x.id == id));
        if let Some(i) = found {
            self.free_slot(i);
            removed = true;
            // A notification's remaining blocks may be in flight under the same id.
            while let Some(k) = self
                .pool
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
                    .pool
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
    pub(super) fn start_queued(&mut self, now: Instant) {
        loop {
            // The oldest queued request that may start now.
            let mut pick: Option<(usize, u32)> = None;
            for (i, s) in self.pool.slots.iter().enumerate() {
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

    pub(super) fn outstanding(&self, peer: A) -> usize {
        self.pool.slots
            .iter()
            .filter(|s| matches!(&s.state, SlotState::Request(x) if x.peer == peer && x.is_outstanding()))
            .count()
    }

    pub(super) fn may_start(&self, now: Instant, peer: A) -> bool {
        if self.outstanding(peer) >= usize::from(self.config.nstart.max(1)) {
            return false;
        }
        // PROBING_RATE applies only to peers that stopped answering.
        let probe_wait = self
            .peers_get(peer)
            .is_some_and(|p| p.unresponsive && p.probe_not_before > now);
        !probe_wait
    }

    pub(super) fn peers_get(&self, peer: A) -> Option<crate::reliability::Peer<A>> {
        self.peers.find(peer)
    }

    pub(super) fn transmit_request(&mut self, now: Instant, i: usize) {
        let Some(SlotState::Request(x)) = self.pool.slots.get(i).map(|s| s.state) else {
            return;
        };
        let mid = self.peers.next_mid(now, x.peer, &mut self.rng);
        let retx = Retransmit::start(now, &self.config, &mut self.rng);
        let Some(slot) = self.pool.slots.get_mut(i) else {
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
        self.pool.queue_tx(i);
    }

    pub(super) fn finish_request(&mut self, now: Instant, i: usize, record: EventRecord) {
        let follow_up = matches!(
            self.pool.slots.get(i).map(|s| s.state),
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

    /// Slot `i` holds an active cancel's request: a GET with Observe=1 (RFC 7641 §3.6).
    fn deregistering(&self, i: usize) -> bool {
        self.pool
            .slots
            .get(i)
            .and_then(|s| Message::parse(s.bytes()).ok())
            .is_some_and(|req| req.observe() == Some(1))
    }

    pub(super) fn on_response(&mut self, now: Instant, peer: A, msg: &Message<'_>, bytes: &[u8]) {
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
        let found = self.pool.slots.iter().position(|s| match &s.state {
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
            self.pool.slots.iter().position(|s| match &s.state {
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
        let Some(SlotState::Request(x)) = self.pool.slots.get(i).map(|s| s.state) else {
            return;
        };
        if x.kind == ExchangeKind::Group {
            return self.on_group_response(now, peer, i, x, msg, bytes, lifetime);
        }
        if x.observe.is_some() && msg.observe().is_some() && msg.code().kind() == CodeClass::Success
        {
            return self.on_notification(now, peer, i, x, msg, bytes, lifetime);
        }
        if ty != MessageType::Ack
            && msg.observe().is_some()
            && msg.code().kind() == CodeClass::Success
            && self.deregistering(i)
        {
            // RFC 7641 §3.6: the answer to the Observe=1 GET of an active cancel carries no
            // Observe (the server serves it as a plain GET). A success with Observe is a
            // notification the server sent before it saw that GET: acknowledged, dropped.
            self.acknowledge_response(now, peer, msg, lifetime);
            self.stats.stale_notifications += 1;
            return;
        }
        let more = Block::of(msg, OptionNumber::BLOCK2)
            .filter(|b| b.more && msg.code().kind() == CodeClass::Success && x.observe.is_none());
        if let Some(block) = more {
            return self.on_block2(now, peer, i, x, msg, bytes, lifetime, block);
        }
        if msg.code() == Code::CONTINUE {
            if let Some(next) = self.next_upload_block(i, msg) {
                self.acknowledge_response(now, peer, msg, lifetime);
                if let Some(SlotState::Request(e)) =
                    self.pool.slots.get_mut(i).map(|s| &mut s.state)
                {
                    e.phase = ClientPhase::AwaitBody(next);
                    e.heard = true;
                    e.deadline = now + self.config.request_timeout;
                }
                if let Some(s) = self.pool.slots.get_mut(i) {
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
            let Some(s) = self.pool.slots.get_mut(i) else {
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
        let Some(s) = self.pool.slots.get_mut(i) else {
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

    /// RFC 9175 §2.4: a 4.01 Unauthorized with an Echo option asks the client to repeat
    /// the request carrying that Echo value (freshness, or OSCORE replay-window recovery,
    /// RFC 8613 Appendix B.1.2). The request is repeated once, with a new Message ID and the
    /// same token; a request that already carried Echo gets the 4.01 delivered instead, so a
    /// server that keeps asking cannot make us loop. Returns whether the request was repeated.
    pub(super) fn repeat_with_echo(
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
            .pool
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
        let Ok([si, sj]) = self.pool.slots.get_disjoint_mut([i, j]) else {
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

    pub(super) fn timed_out(
        &mut self,
        now: Instant,
        i: usize,
        id: RequestId,
        peer: A,
        heard: bool,
    ) {
        if !heard {
            // The peer did not answer at all: PROBING_RATE applies from now on (§4.7).
            if let Some(p) = self.peers.get(peer) {
                p.unresponsive = true;
            }
        }
        // RFC 7967: silence is an answer when the request suppressed some classes and the
        // request itself got through (a NON, or an acknowledged CON).
        let silent_ok = match self.pool.slots.get(i).map(|s| s.state) {
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
}
