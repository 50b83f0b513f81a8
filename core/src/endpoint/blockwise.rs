//! The client side of block-wise transfers (RFC 7959): Block2 continuation of a response
//! (§2.4, ETag checks) and Block1 uploads fed by the application (§2.5).

use super::event::{EventRecord, FailReason};
use super::follow_up::rewrite_request;
use super::slot::SlotState;
use super::{len16, Endpoint, Error, RequestParams, BLOCK_ROOM};
use crate::block::Block;
use crate::dedup::DedupStore;
use crate::exchange::{ClientExchange, ClientPhase, RequestId, Token};
use crate::message::{BuildError, Message, MessageBuilder};
use crate::option::OptionNumber;
use crate::time::Instant;

impl<A, const N: usize, const M: usize, const D: usize, const O: usize, S>
    Endpoint<A, N, M, D, O, S>
where
    A: Copy + Eq + core::hash::Hash,
    S: DedupStore<A>,
{
    /// After 2.31 Continue to the upload block in slot `i`: the next block to send, in the
    /// size the server asked for (RFC 7959 §2.5: it may lower SZX, never raise it), or
    /// smaller if the path to the peer needs it (§2.5: the client may lower it too).
    pub(super) fn next_upload_block(&self, i: usize, response: &Message<'_>) -> Option<Block> {
        let s = self.pool.slots.get(i)?;
        let SlotState::Request(x) = s.state else {
            return None;
        };
        let sent = Block::of(&Message::parse(s.bytes()).ok()?, OptionNumber::BLOCK1)?;
        if !sent.more {
            return None;
        }
        let szx =
            Block::of(response, OptionNumber::BLOCK1).map_or(sent.szx, |b| b.szx.min(sent.szx));
        let szx = self.block_szx_to(x.peer, szx);
        let offset = sent.offset() + sent.size();
        Some(Block::new((offset >> (szx + 4)) as u32, false, szx))
    }

    /// Starts a Block1 upload (RFC 7959 §2.5) of a `total`-byte body: `build` adds the
    /// options, `first` is the first block — [`Endpoint::upload_block_size_to`] `peer`
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
        let size = self.upload_block_size_to(peer);
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

    /// The block size uploads to `peer` start with: [`Endpoint::upload_block_size`], or
    /// smaller once a path-MTU error ([`Endpoint::handle_path_mtu`]) said the path to it
    /// carries no more.
    pub fn upload_block_size_to(&self, peer: A) -> usize {
        let szx = Block::szx_for(self.upload_block_size());
        16 << self.block_szx_to(peer, szx)
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
            .pool
            .slots
            .iter()
            .position(|s| matches!(&s.state, SlotState::Request(x) if x.id == id && matches!(x.phase, ClientPhase::AwaitBody(_))))
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
        let ClientPhase::AwaitBody(next) = x.phase else {
            return Err(Error::UnknownHandle);
        };
        if chunk.len() > next.size() || (!last && chunk.len() != next.size()) {
            return Err(Error::Build(BuildError::BufferTooSmall));
        }
        let req = Message::parse(si.bytes()).map_err(|_| Error::UnknownHandle)?;
        let len = rewrite_request(
            &mut sj.buf,
            &req,
            x.message_type(),
            &x.token,
            |n| n == OptionNumber::BLOCK1,
            (
                OptionNumber::BLOCK1,
                Block::new(next.num, !last, next.szx).encode(),
            ),
            chunk,
        )?;
        sj.len = len16(len);
        x.phase = ClientPhase::Queued;
        x.deadline = now + self.config.request_timeout;
        sj.state = SlotState::Request(x);
        self.free_slot(i);
        self.start_queued(now);
        Ok(())
    }

    /// A Block2 response with more blocks to come (RFC 7959 §2.4, §3.1): hand the block to
    /// the application and request the next one. The request moves to a new slot and the
    /// block takes the old one, so a transfer needs one extra slot at a time.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_block2(
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
        // The next block, smaller if the path needs it (late negotiation, §2.4).
        let next = self.next_block2(peer, block);
        let Some(j) = self.alloc_slot(now) else {
            return;
        };
        let Ok([si, sj]) = self.pool.slots.get_disjoint_mut([i, j]) else {
            return;
        };
        let Ok(req) = Message::parse(si.bytes()) else {
            return;
        };
        // After a Block1 upload, the rest of the response is asked for without the body
        // (RFC 7959 §3.3, Figure 9); a FETCH keeps its payload (RFC 8132 §2).
        let upload = req.option(OptionNumber::BLOCK1).is_some();
        let built = rewrite_request(
            &mut sj.buf,
            &req,
            x.message_type(),
            &x.token,
            |n| {
                n == OptionNumber::BLOCK2
                    || (upload && matches!(n, OptionNumber::BLOCK1 | OptionNumber::SIZE1))
            },
            (OptionNumber::BLOCK2, next.encode()),
            if upload { &[] } else { req.payload() },
        );
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
}
