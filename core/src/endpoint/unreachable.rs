//! A peer the network says is unreachable (sans-IO input for ICMP errors): what was
//! waiting on it ends now instead of when its timers run out. aiocoap and libcoap react to
//! the same errors; a runtime that cannot read them (or smoltcp, which reports none) simply
//! never calls this, and timers end the exchanges as before.

use super::event::{EventRecord, FailReason, Unreachable};
use super::slot::{OutgoingResponse, ResponsePhase, SlotState};
use super::Endpoint;
use crate::dedup::DedupStore;
use crate::exchange::ExchangeKind;
use crate::time::Instant;

impl<A, const N: usize, const M: usize, const D: usize, const O: usize, S>
    Endpoint<A, N, M, D, O, S>
where
    A: Copy + Eq + core::hash::Hash,
    S: DedupStore<A>,
{
    /// The network reported that `peer` cannot be reached (`why`). Every unicast request to
    /// it fails at once with `Event::Failed { reason: FailReason::Unreachable(why) }`
    /// (observations included: the server is gone), its observers of our resources are
    /// removed (RFC 7641 §4.5: the client is no longer interested, or cannot hear), and CON
    /// responses and notifications waiting for its ACK stop being retransmitted. Group
    /// requests are left alone: one member's error says nothing about the others.
    ///
    /// ICMP errors are not authenticated; an attacker on the path could forge them, as it
    /// could drop the datagrams. Returns how many requests failed.
    pub fn handle_unreachable(&mut self, now: Instant, peer: A, why: Unreachable) -> usize {
        let mut failed = 0;
        for i in 0..N {
            let Some(s) = self.pool.slots.get(i) else {
                continue;
            };
            match s.state {
                SlotState::Request(x)
                    if x.peer == peer && !matches!(x.kind, ExchangeKind::Group) =>
                {
                    // A group member's Block2 continuation is dropped quietly by
                    // `finish_request`; a unicast request reports the failure.
                    let record = EventRecord::Failed(x.id, FailReason::Unreachable(why));
                    self.finish_request(now, i, record);
                    failed += 1;
                }
                SlotState::Response(OutgoingResponse {
                    peer: p,
                    phase: ResponsePhase::AwaitAck(_),
                    notification,
                    ..
                }) if p == peer => {
                    if notification {
                        self.drop_observer_of_slot(i);
                    }
                    self.free_slot(i);
                }
                _ => {}
            }
        }
        self.observers.remove_peer(peer);
        failed
    }
}
