//! The message layer for UDP and DTLS (RFC 7252 §4): datagrams in (`handle_datagram`),
//! parsing and rejection of malformed ones (RST or silence, §4.2/§4.3), empty ACK and RST
//! matching, duplicate detection and replay of the cached answer (§4.5), acknowledgement of
//! CON responses, and datagrams out (`poll_transmit`: slots, control messages,
//! retransmissions). Above it the exchange layer (`client`, `server`, `observe`,
//! `blockwise`, `group`) works on parsed messages and tokens only. A reliable transport
//! (RFC 8323: no Message IDs, no ACKs) is a second message layer beside this one.

use super::control::{Control, ControlKind};
use super::event::EventRecord;
use super::slot::{AckState, OutgoingResponse, ResponsePhase, SlotState};
use super::{Endpoint, Transmit};
use crate::code::{Code, CodeClass};
use crate::dedup::DedupStore;
use crate::exchange::{ClientPhase, Token};
use crate::message::{write_empty, Header, Message, MessageBuilder, MessageType, ParseError};
use crate::multicast::Delivery;
use crate::option::OptionNumber;
use crate::reliability::DupAction;
use crate::server::Handler;
use crate::time::Instant;

impl<A, const N: usize, const M: usize, const D: usize, const O: usize, S>
    Endpoint<A, N, M, D, O, S>
where
    A: Copy + Eq + core::hash::Hash,
    S: DedupStore<A>,
{
    pub(super) fn send_empty(&mut self, peer: A, ty: MessageType, mid: u16) {
        self.push_control(peer, ControlKind::Empty { ty, mid });
    }

    pub(super) fn push_control(&mut self, peer: A, kind: ControlKind) {
        if self.control.push_back(Control { peer, kind }).is_err() {
            self.stats.control_drops += 1;
        }
    }

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

    pub(super) fn receive(
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
    pub(super) fn reject_malformed(&mut self, peer: A, bytes: &[u8], e: ParseError) {
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

    pub(super) fn on_empty_ack(&mut self, now: Instant, peer: A, mid: u16) {
        for i in 0..N {
            let Some(s) = self.pool.slots.get_mut(i) else {
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

    pub(super) fn on_rst(&mut self, now: Instant, peer: A, mid: u16) {
        for i in 0..N {
            let Some(s) = self.pool.slots.get(i) else {
                continue;
            };
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

    /// Answers `req` with a bodyless response generated at transmit time (no slot).
    pub(super) fn control_response(
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

    /// Whether the response a duplicate would be answered with is no longer held (its
    /// slot was taken for something else): the duplicate can then get nothing but
    /// silence, unless the request may simply be processed again (§4.5).
    pub(super) fn cached_response_gone(&self, peer: A, mid: u16, action: DupAction) -> bool {
        let DupAction::Resend { slot, generation } = action else {
            return false;
        };
        match self.pool.slots.get(usize::from(slot)) {
            Some(s) if s.generation == generation => match &s.state {
                SlotState::Response(r) => r.mid != mid || r.peer != peer,
                SlotState::Deferred(_) => false,
                _ => true,
            },
            _ => true,
        }
    }

    /// §4.5: a duplicate CON gets the same ACK (and piggybacked response) again; NON
    /// duplicates are ignored. The application never sees a duplicate.
    pub(super) fn answer_duplicate(
        &mut self,
        peer: A,
        mid: u16,
        token: Token,
        con: bool,
        action: DupAction,
    ) {
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
                let Some(s) = self.pool.slots.get_mut(i) else {
                    return;
                };
                if s.generation != generation {
                    return; // The cached response was evicted; nothing safe to send.
                }
                match &mut s.state {
                    SlotState::Response(r) if r.mid == mid && r.peer == peer => {
                        self.pool.queue_tx(i)
                    }
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

    /// ACKs a CON response and remembers its Message ID so a duplicate is acknowledged
    /// again but never delivered twice (§4.5).
    pub(super) fn acknowledge_response(
        &mut self,
        now: Instant,
        peer: A,
        msg: &Message<'_>,
        lifetime: u64,
    ) {
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
        while let Some(i) = self.pool.tx.pop_front() {
            let i = usize::from(i);
            let Some(s) = self.pool.slots.get_mut(i) else {
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
}
