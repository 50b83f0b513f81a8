//! Observe on both sides (RFC 7641): the server's registrations and notifications
//! ([`Endpoint::notify`]), the client's notifications (freshness, §3.4; re-registration,
//! §3.3.1) and cancellation (§3.6).

use super::event::EventRecord;
use super::follow_up::rewrite_request;
use super::share::Reclaim;
use super::slot::{OutgoingResponse, ResponsePhase, SlotState};
use super::{len16, Endpoint, Error, REREGISTER_SLACK_MS};
use crate::block::Block;
use crate::code::{Code, CodeClass};
use crate::dedup::DedupStore;
use crate::exchange::{ClientExchange, ClientPhase, RequestId, Token};
use crate::message::{BuildError, Message, MessageBuilder, MessageType};
use crate::observe::{Observation, ObserverTable, OBSERVE_MODULUS};
use crate::option::OptionNumber;
use crate::reliability::{DupAction, Retransmit};
use crate::server::ResponseWriter;
use crate::time::Instant;

/// A GET or FETCH with Observe=0 asks to be registered as an observer (RFC 7641 §3.1,
/// RFC 8132 §2.4).
pub(super) fn wants_observe(msg: &Message<'_>) -> bool {
    msg.observe() == Some(0) && matches!(msg.code(), Code::GET | Code::FETCH)
}

/// RFC 7641 §4.1: registers the client of a request that `wants` to observe when its
/// answer `w` is a success on a resource declared observable; the answer then carries the
/// next Observe value. A full table leaves the client unregistered: the answer goes out
/// without Observe, which tells the client so.
pub(super) fn register_observer<A: Copy + Eq, const O: usize>(
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

impl<A, const N: usize, const M: usize, const D: usize, const O: usize, S>
    Endpoint<A, N, M, D, O, S>
where
    A: Copy + Eq + core::hash::Hash,
    S: DedupStore<A>,
{
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
                let s = self.pool.slots.get(usize::from(slot))?;
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
            // RFC 7641 §4.5: CON now and then (by time and by count), so that an observer
            // that vanished is found out and dropped.
            let force_con = in_flight.is_some()
                || now.as_millis() >= obs.last_con.as_millis().saturating_add(con_interval)
                || obs.since_con.saturating_add(1) >= self.config.observe_con_every;
            let mid = self.peers.next_mid(now, obs.peer, &mut self.rng);
            let seq = self.observe_seq;
            // Issue 26: a new CON notification holds its slot until acknowledged; beyond
            // the observer's share of the pool, or that of all long-held exchanges, it
            // goes NON (RFC 7641 §4.5 leaves the type to the server) and the next one
            // tries CON again (`since_con` keeps counting).
            let may_hold = in_flight.is_some() || self.may_hold(obs.peer);
            let Some(slot) = self.pool.slots.get_mut(i) else {
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
            let mut con = w.builder.message_type() == MessageType::Con;
            if con && !may_hold {
                self.stats.share_demotions += 1;
                w.builder.set_type(MessageType::Non);
                con = false;
            }
            slot.len = len16(w.builder.finish());
            if con && in_flight.is_none() {
                // Cannot fail after `may_hold`, which checked the same.
                let _ = self.hold(now, obs.peer, Reclaim::Never);
            }
            let Some(slot) = self.pool.slots.get_mut(i) else {
                continue;
            };
            let phase = if con {
                ResponsePhase::AwaitAck(match in_flight {
                    Some((_, r)) => r,
                    None => Retransmit::start(now, &self.config, &mut self.rng)
                        .with_max(self.config.observe_max_retransmit),
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
                    x.since_con = 0;
                    x.in_flight = Some((i as u16, generation));
                } else {
                    x.since_con = x.since_con.saturating_add(1);
                }
            }
            if !success {
                self.observers.remove_index(o);
            }
            self.pool.queue_tx(i);
            sent += 1;
        }
        sent
    }

    /// Removes the observer a notification slot was sent to (matched by peer and token).
    pub(super) fn drop_observer_of_slot(&mut self, i: usize) {
        let Some(s) = self.pool.slots.get(i) else {
            return;
        };
        let SlotState::Response(r) = s.state else {
            return;
        };
        let Ok(m) = Message::parse(s.bytes()) else {
            return;
        };
        let token = Token::new(m.token()).unwrap_or_default();
        self.observers.remove(r.peer, &token);
    }

    /// A notification for the observation in slot `i` (RFC 7641 §3.2–§3.4).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_notification(
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
        if let Some(SlotState::Request(e)) = self.pool.slots.get_mut(i).map(|s| &mut s.state) {
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
        if let Some(s) = self.pool.slots.get_mut(i) {
            s.want_tx = false;
        }
        if !fresh {
            self.stats.stale_notifications += 1;
            return;
        }
        let Some(s) = self.pool.slots.get_mut(j) else {
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
    pub(super) fn fetch_notification_rest(
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
        // Smaller blocks if the path needs them (RFC 7959 §2.4).
        let next = self.next_block2(x.peer, first);
        let Ok([si, sk]) = self.pool.slots.get_disjoint_mut([i, k]) else {
            return;
        };
        let Ok(req) = Message::parse(si.bytes()) else {
            return;
        };
        let built = rewrite_request(
            &mut sk.buf,
            &req,
            x.message_type(),
            &token,
            |n| matches!(n, OptionNumber::OBSERVE | OptionNumber::BLOCK2),
            (OptionNumber::BLOCK2, next.encode()),
            req.payload(),
        );
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
            .pool
            .slots
            .iter()
            .position(
                |s| matches!(&s.state, SlotState::Request(x) if x.id == id && x.observe.is_some()),
            )
            .ok_or(Error::UnknownHandle)?;
        let j = self.alloc_slot(now).ok_or(Error::Busy)?;
        let [si, sj] = self
            .pool
            .slots
            .get_disjoint_mut([i, j])
            .map_err(|_| Error::Busy)?;
        let SlotState::Request(mut x) = si.state else {
            return Err(Error::UnknownHandle);
        };
        let req = Message::parse(si.bytes()).map_err(|_| Error::UnknownHandle)?;
        // Active cancellation (RFC 7641 §3.6): the registration again with Observe=1.
        let len = rewrite_request(
            &mut sj.buf,
            &req,
            x.message_type(),
            &x.token,
            |n| n == OptionNumber::OBSERVE,
            (OptionNumber::OBSERVE, 1),
            req.payload(),
        )?;
        sj.len = len16(len);
        x.observe = None;
        x.phase = ClientPhase::Queued;
        x.deadline = now + self.config.request_timeout;
        sj.state = SlotState::Request(x);
        self.free_slot(i);
        self.start_queued(now);
        Ok(())
    }
}
