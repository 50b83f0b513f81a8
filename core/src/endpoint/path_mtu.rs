//! A path-MTU error (sans-IO input): the network said a datagram to a peer was larger than
//! the path carries (ICMP "fragmentation needed", RFC 1191; ICMPv6 "packet too big",
//! RFC 8201; or the sender's own kernel refusing it). Block-wise transfers with that peer
//! go on with blocks that fit (RFC 7959 §2.2): the client asks for smaller Block2 blocks
//! (late negotiation, §2.4) and sends smaller Block1 blocks (§2.5), and our Block2
//! responses to it are no larger either (§2.4: the server may choose a smaller size).

use super::follow_up::rewrite_request;
use super::slot::SlotState;
use super::{len16, Endpoint, BLOCK_ROOM};
use crate::block::Block;
use crate::dedup::DedupStore;
use crate::exchange::ClientPhase;
use crate::message::Message;
use crate::option::OptionNumber;
use crate::reliability::Szx;
use crate::time::Instant;

/// The largest block number a Block option carries (20 bits, RFC 7959 §2.2).
const MAX_NUM: u32 = 0xF_FFFF;

impl<A, const N: usize, const M: usize, const D: usize, const O: usize, S>
    Endpoint<A, N, M, D, O, S>
where
    A: Copy + Eq + core::hash::Hash,
    S: DedupStore<A>,
{
    /// The network reported a path MTU of `mtu` bytes (the whole IP packet) towards the
    /// peers for which `on_path` is true (a path-MTU error names a destination address;
    /// every peer at that address shares the path, whatever its port or security). For
    /// each known peer the endpoint keeps the largest block size whose message fits, with
    /// room for the IP and UDP headers and [`BLOCK_ROOM`] bytes of CoAP header, token and
    /// options (a peer that only has messages held in the endpoint gets an entry now); it
    /// never raises a size learnt before (RFC 8201 §4 lets a path MTU grow
    /// again only by probing, which this endpoint does not do).
    ///
    /// Then: later Block2 requests to the peer ask for that size (RFC 7959 §2.4), Block1
    /// uploads continue with it (§2.5), and Block2 responses to it use no larger blocks. A
    /// CON request carrying a larger Block1 block that is still waiting for its ACK (the
    /// message the error was about, which the network dropped) is written again at once as
    /// the first smaller block at the same offset, under a new Message ID; the rest of the
    /// old block follows as the next ones. Other oversized messages (a request without
    /// Block1, a response held for retransmission) are retransmitted unchanged and end as
    /// they would have.
    ///
    /// Like ICMP errors in general, these are not authenticated (RFC 8201 §6): a forged one
    /// can only make blocks smaller. Returns how many peers' block sizes were lowered.
    pub fn handle_path_mtu(
        &mut self,
        now: Instant,
        on_path: impl Fn(A) -> bool,
        mtu: usize,
    ) -> usize {
        let fits = Szx::for_path_mtu(mtu, BLOCK_ROOM);
        // A peer we only answered (piggybacked responses take no Message ID of ours) may
        // have no entry yet: the messages held for it name it.
        for s in self.pool.slots.iter() {
            let peer = match s.state {
                SlotState::Request(x) => x.peer,
                SlotState::Response(r) => r.peer,
                SlotState::Deferred(d) => d.peer,
                SlotState::Received { peer } => peer,
                SlotState::Free => continue,
            };
            if on_path(peer) {
                let _ = self.peers.entry(now, peer, &mut self.rng);
            }
        }
        let mut lowered = 0;
        for p in self.peers.iter_mut().filter(|p| on_path(p.addr)) {
            if p.path_szx.is_none_or(|s| s > fits) {
                p.path_szx = Some(fits);
                lowered += 1;
            }
        }
        self.path_limited |= lowered > 0;
        for i in 0..N {
            let peer = match self.pool.slots.get(i).map(|s| s.state) {
                Some(SlotState::Request(x))
                    if on_path(x.peer) && matches!(x.phase, ClientPhase::AwaitAck(_)) =>
                {
                    x.peer
                }
                _ => continue,
            };
            self.resend_smaller_block1(now, i, self.block_szx_to(peer, crate::block::MAX_SZX));
        }
        self.start_queued(now);
        lowered
    }

    /// The block size exponent to use with `peer`: `szx`, lowered to what the path to it
    /// carries if a path-MTU error said less.
    pub(super) fn block_szx_to(&self, peer: A, szx: u8) -> u8 {
        if !cfg!(feature = "path-mtu") || !self.path_limited {
            return szx;
        }
        match self.peers.find(peer).and_then(|p| p.path_szx) {
            Some(s) => szx.min(s.get()),
            None => szx,
        }
    }

    /// The largest payload one message to `peer` may carry, if a path-MTU error said so.
    pub(super) fn path_block_to(&self, peer: A) -> Option<usize> {
        if !cfg!(feature = "path-mtu") || !self.path_limited {
            return None;
        }
        let szx = self.peers.find(peer).and_then(|p| p.path_szx)?;
        Some(16 << szx.get())
    }

    /// The Block2 block to ask `peer` for after `got` (RFC 7959 §2.4): the next one, in
    /// a smaller size if the path needs it (late negotiation: the same offset, counted in
    /// smaller blocks). Keeps the size when the smaller block's number would not fit in
    /// the option.
    pub(super) fn next_block2(&self, peer: A, got: Block) -> Block {
        let szx = self.block_szx_to(peer, got.szx);
        let num = (got.num + 1)
            .checked_shl(u32::from(got.szx - szx))
            .filter(|&n| n <= MAX_NUM);
        match num {
            Some(num) => Block::new(num, false, szx),
            None => Block::new(got.num + 1, false, got.szx),
        }
    }

    /// Writes the CON request in slot `i` again if it carries a Block1 block larger than
    /// `2^(szx+4)` bytes: the first `szx`-sized block at the same offset (more blocks
    /// follow whenever the old one is cut), queued to go out again with a new Message ID
    /// and retransmission timer. Needs a free slot; without one the request is left as it
    /// is (retransmitted unchanged; its next block, after 2.31, is the smaller size).
    fn resend_smaller_block1(&mut self, now: Instant, i: usize, szx: u8) {
        let Some(old) = self
            .pool
            .slots
            .get(i)
            .and_then(|s| Message::parse(s.bytes()).ok())
            .and_then(|m| Block::of(&m, OptionNumber::BLOCK1))
        else {
            return;
        };
        if old.szx <= szx {
            return;
        }
        let Some(num) = (old.offset() >> (szx + 4))
            .try_into()
            .ok()
            .filter(|&n: &u32| n <= MAX_NUM)
        else {
            return;
        };
        let Some(j) = self.alloc_slot(now) else {
            return;
        };
        let Ok([si, sj]) = self.pool.slots.get_disjoint_mut([i, j]) else {
            return;
        };
        let SlotState::Request(mut x) = si.state else {
            return self.free_slot(j);
        };
        let Ok(req) = Message::parse(si.bytes()) else {
            return self.free_slot(j);
        };
        let size = 16usize << szx;
        let payload = req.payload();
        let cut = payload.len() > size;
        let block = Block::new(num, old.more || cut, szx);
        let built = rewrite_request(
            &mut sj.buf,
            &req,
            x.message_type(),
            &x.token,
            |n| n == OptionNumber::BLOCK1,
            (OptionNumber::BLOCK1, block.encode()),
            payload.get(..size).unwrap_or(payload),
        );
        let Ok(len) = built else {
            return self.free_slot(j);
        };
        sj.len = len16(len);
        x.phase = ClientPhase::Queued;
        sj.state = SlotState::Request(x);
        self.free_slot(i);
    }
}
