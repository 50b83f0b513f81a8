//! Time: what the endpoint does when a deadline passes (retransmissions, exchange and
//! deferred-answer timeouts, leisure ends, re-registration) and when the next one is.

use super::event::EventRecord;
use super::slot::{AckState, OutgoingResponse, ResponsePhase, SlotState};
use super::Endpoint;
use crate::code::Code;
use crate::dedup::DedupStore;
use crate::exchange::{ClientPhase, ExchangeKind};
use crate::message::MessageType;
use crate::option::OptionNumber;
use crate::reliability::RetransmitStep;
use crate::time::Instant;

impl<A, const N: usize, const M: usize, const D: usize, const O: usize, S>
    Endpoint<A, N, M, D, O, S>
where
    A: Copy + Eq + core::hash::Hash,
    S: DedupStore<A>,
{
    /// Processes timers whose time has come: retransmissions, request deadlines, delayed
    /// ACKs of deferred requests, queued requests waiting for PROBING_RATE.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..N {
            let Some(s) = self.pool.slots.get_mut(i) else {
                continue;
            };
            match &mut s.state {
                SlotState::Request(x) => {
                    if now >= x.deadline && x.kind == ExchangeKind::Group {
                        // The collection window is over; it closes once the Block2
                        // continuations with responders have ended too.
                        let id = x.id;
                        let follow_up = self.pool.slots.iter().filter_map(|s| match s.state {
                            SlotState::Request(y)
                                if y.id == id && y.kind == ExchangeKind::GroupFollowUp =>
                            {
                                Some(y.deadline)
                            }
                            _ => None,
                        });
                        if let Some(later) = follow_up.min() {
                            if let Some(SlotState::Request(x)) =
                                self.pool.slots.get_mut(i).map(|s| &mut s.state)
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
                            match r.fire(now) {
                                RetransmitStep::Resend => self.pool.queue_tx(i),
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
                        match rt.fire(now) {
                            RetransmitStep::Resend => self.pool.queue_tx(i),
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
                        self.pool.queue_tx(i);
                    }
                    _ => {}
                },
                SlotState::Deferred(d) => {
                    if now >= d.expires {
                        let age = self.config.busy_max_age;
                        let handle = self.pool.handle_of(i);
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

    /// The next time `handle_timeout` must be called, if any timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut arm = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        for s in &self.pool.slots {
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
}
