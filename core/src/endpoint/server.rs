//! Server exchanges: a request handed to the [`Handler`] (dispatch, piggybacked or NON
//! answers, 5.03 when no slot is free, No-Response suppression) and deferred answers given
//! later through [`Endpoint::respond`] (empty ACK, then a separate response, RFC 7252 §5.2.2).

use super::observe::{register_observer, wants_observe};
use super::share::Reclaim;
use super::slot::{AckState, DeferredRequest, OutgoingResponse, ResponsePhase, Slot, SlotState};
use super::{len16, Endpoint, Error};
use crate::block::Block;
use crate::code::Code;
use crate::dedup::DedupStore;
use crate::exchange::Token;
use crate::message::{BuildError, Message, MessageBuilder, MessageType};
use crate::multicast::{self, Delivery};
use crate::no_response::NoResponse;
use crate::option::OptionNumber;
use crate::reliability::{lifetime_ms, DupAction, Retention, Retransmit};
use crate::server::{
    Handler, Idempotence, IncomingRequest, Outcome, ResponseHandle, ResponseWriter,
};
use crate::time::Instant;

/// How a request is remembered for duplicate detection (RFC 7252 §4.5): its Message ID,
/// for how long (ms), and whether it may be forgotten early.
#[derive(Clone, Copy, Debug)]
pub(super) struct Remembered {
    mid: u16,
    lifetime: u64,
    retention: Retention,
}

impl<A, const N: usize, const M: usize, const D: usize, const O: usize, S>
    Endpoint<A, N, M, D, O, S>
where
    A: Copy + Eq + core::hash::Hash,
    S: DedupStore<A>,
{
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
        let d = match self.pool.slots.get(i) {
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
        // No larger than the path to the client carries (RFC 7959 §2.4: a server may
        // answer with a smaller block than asked for).
        let max_szx =
            self.block_szx_to(d.peer, self.config.max_block_szx.min(crate::block::MAX_SZX));
        let path_block = self.path_block_to(d.peer);
        if !matches!(phase, ResponsePhase::AwaitAck(_)) {
            // Piggybacked after all (kept only for duplicates) or NON: no longer long-held.
            self.unhold(i);
        }
        let Some(slot) = self.pool.slots.get_mut(i) else {
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
        w.max_szx = max_szx;
        w.path_block = path_block;
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
        self.pool.queue_tx(i);
        result.map_err(Error::Build)
    }

    pub(super) fn on_request(
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
        // The handler is asked only about methods that are not idempotent by themselves
        // (it may relax at-most-once, RFC 7252 §4.5, not impose it on a GET).
        let idempotence = match Idempotence::of(msg) {
            Idempotence::Idempotent => Idempotence::Idempotent,
            Idempotence::AtMostOnce => handler.idempotence(msg),
        };
        if let Some(action) = self.dedup.lookup(now, peer, mid).copied() {
            // §4.5: an idempotent request whose cached response is gone (its slot was
            // needed) is processed again rather than left unanswered until the client
            // gives up; a non-idempotent one never is.
            let reprocess = idempotence == Idempotence::Idempotent
                && self.cached_response_gone(peer, mid, action);
            if !reprocess {
                self.stats.duplicates += 1;
                return self.answer_duplicate(peer, mid, token, con, action);
            }
            self.stats.duplicates_reprocessed += 1;
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
        // §4.5: a duplicate of a non-idempotent request must never be executed again.
        // When duplicate detection has no room without forgetting such a request, new
        // non-idempotent requests wait (5.03 + Max-Age until room is made); idempotent ones
        // are served and simply not remembered (a duplicate may run them again).
        let retention = match idempotence {
            Idempotence::Idempotent => Retention::Evictable,
            Idempotence::AtMostOnce => Retention::AtMostOnce,
        };
        if let Some(wait_ms) = self.dedup.make_room(now) {
            if retention == Retention::AtMostOnce {
                self.stats.at_most_once_rejections += 1;
                if multicast && !multicast::error_wanted(msg, Code::SERVICE_UNAVAILABLE) {
                    return;
                }
                let max_age = Some(u32::try_from(wait_ms.div_ceil(1000)).unwrap_or(u32::MAX));
                return self.control_response(now, peer, msg, Code::SERVICE_UNAVAILABLE, max_age);
            }
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
        let handle = self.pool.handle_of(i);
        let max_szx = self.block_szx_to(peer, self.config.max_block_szx.min(crate::block::MAX_SZX));
        let path_block = self.path_block_to(peer);
        let Some(slot) = self.pool.slots.get_mut(i) else {
            return;
        };
        let Ok(b) = MessageBuilder::new(&mut slot.buf, ty, Code::CONTENT, rmid, token.as_slice())
        else {
            return;
        };
        let mut w = ResponseWriter::new(b);
        w.block2 = Block::of(msg, OptionNumber::BLOCK2);
        w.size2 = msg.uint_option(OptionNumber::SIZE2) == Some(0);
        w.max_szx = max_szx;
        w.path_block = path_block;
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
                    return self.answer_nothing(
                        now,
                        i,
                        peer,
                        con,
                        Remembered {
                            mid,
                            lifetime,
                            retention,
                        },
                    );
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
                self.dedup
                    .remember(now, peer, mid, lifetime, action, retention);
                if !matches!(phase, ResponsePhase::Leisure { .. }) {
                    self.pool.queue_tx(i);
                }
            }
            Outcome::Ignore => {
                // Nothing to say (e.g. a filtered /.well-known/core query that matched
                // nothing, RFC 6690 §4.1).
                self.answer_nothing(
                    now,
                    i,
                    peer,
                    con,
                    Remembered {
                        mid,
                        lifetime,
                        retention,
                    },
                );
            }
            Outcome::Defer => {
                // Issue 26: a deferred exchange holds its slot until the application
                // answers; beyond the peer's share, or that of all long-held exchanges,
                // this peer is told to come back later (RFC 7252 §5.9.3.4) rather than
                // everyone being refused once the pool is full. The application's later
                // answer then finds no exchange (`Error::UnknownHandle`).
                if !self.hold(now, peer, Reclaim::Allowed) {
                    self.stats.share_rejections += 1;
                    self.free_slot(i);
                    let code = Code::SERVICE_UNAVAILABLE;
                    self.dedup.remember(
                        now,
                        peer,
                        mid,
                        lifetime,
                        DupAction::Control(code),
                        retention,
                    );
                    let max_age = Some(self.config.busy_max_age);
                    return self.control_response(now, peer, msg, code, max_age);
                }
                let Some(slot) = self.pool.slots.get_mut(i) else {
                    return;
                };
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
                self.dedup
                    .remember(now, peer, mid, lifetime, action, retention);
            }
        }
    }

    /// A request that gets no response (suppressed by No-Response or multicast rules, or
    /// ignored by its handler): the slot `i` prepared for the response is freed, a CON
    /// request still gets its empty ACK (RFC 7967 §2), and duplicates are answered alike.
    pub(super) fn answer_nothing(
        &mut self,
        now: Instant,
        i: usize,
        peer: A,
        con: bool,
        request: Remembered,
    ) {
        self.free_slot(i);
        let action = if con {
            DupAction::EmptyAck
        } else {
            DupAction::Ignore
        };
        let Remembered {
            mid,
            lifetime,
            retention,
        } = request;
        self.dedup
            .remember(now, peer, mid, lifetime, action, retention);
        if con {
            self.send_empty(peer, MessageType::Ack, mid);
        }
    }
}
