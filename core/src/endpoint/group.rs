//! Group communication (RFC 7252 §8): requests received on a multicast address (leisure,
//! no ACK/RST, error suppression) and the many responses to one group request.

use super::event::EventRecord;
use super::follow_up::rewrite_request;
use super::slot::SlotState;
use super::{len16, Endpoint};
use crate::block::Block;
use crate::code::CodeClass;
use crate::dedup::DedupStore;
use crate::exchange::{ClientExchange, ClientPhase, ExchangeKind, Token};
use crate::message::{BuildError, Message, MessageType};
use crate::multicast::Delivery;
use crate::option::OptionNumber;
use crate::server::Handler;
use crate::time::Instant;

impl<A, const N: usize, const M: usize, const D: usize, const O: usize, S>
    Endpoint<A, N, M, D, O, S>
where
    A: Copy + Eq + core::hash::Hash,
    S: DedupStore<A>,
{
    /// Feeds a datagram that arrived on a group (multicast) address this endpoint listens
    /// on (RFC 7252 §8). Only requests are taken; they are answered by unicast NON after a
    /// random delay within `Config::default_leisure` (§8.2), never acknowledged or reset
    /// (§8.1), and error responses are suppressed unless the request asked for them
    /// ([`crate::multicast`]). Handlers see [`Delivery::Multicast`] and may stay silent
    /// with [`Outcome::Ignore`](crate::server::Outcome::Ignore) when they have nothing useful to say.
    pub fn handle_group_datagram(
        &mut self,
        now: Instant,
        peer: A,
        bytes: &[u8],
        handler: &mut impl Handler<A>,
    ) {
        self.receive(now, peer, bytes, handler, Delivery::Multicast)
    }

    /// One member's response to the group request in slot `i` (RFC 7252 §8.2): delivered
    /// in a slot of its own, the request stays open. A first block with more to come is
    /// continued by unicast with that member (RFC 7959 §2.8) in a follow-up exchange.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_group_response(
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
        let room = self.events.len() + self.pool.client_exchanges() + needed <= N;
        let Some(j) = room.then(|| self.alloc_slot(now)).flatten() else {
            self.stats.group_response_drops += 1;
            return;
        };
        let Some(sj) = self.pool.slots.get_mut(j) else {
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
            let Ok([si, sk]) = self.pool.slots.get_disjoint_mut([i, k]) else {
                return;
            };
            let built = Message::parse(si.bytes())
                .map_err(|_| BuildError::BufferTooSmall)
                .and_then(|req| {
                    // The rest of the representation, by unicast from this member and
                    // confirmable (RFC 7959 §2.8): the request's options with the next
                    // Block2 value.
                    let next = Block::new(block.num + 1, false, block.szx);
                    rewrite_request(
                        &mut sk.buf,
                        &req,
                        MessageType::Con,
                        &token,
                        |n| n == OptionNumber::BLOCK2,
                        (OptionNumber::BLOCK2, next.encode()),
                        req.payload(),
                    )
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
        let generation = self.pool.slots.get(j).map_or(0, |s| s.generation);
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
}
