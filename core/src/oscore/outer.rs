//! Outer block-wise transfers of OSCORE messages (RFC 8613 §4.1.3.4.2): a proxy may
//! fragment a protected message with Block options of its own (Outer Block options). The
//! endpoint reassembles the fragments per RFC 7959 before it verifies the message, up to
//! MAX_UNFRAGMENTED_SIZE (here `R`, the reassembly buffer); larger messages are discarded.
//!
//! - A request arriving as Outer Block1 fragments is acknowledged fragment by fragment with
//!   2.31 Continue (RFC 7959 §2.3) and verified once complete.
//! - A response arriving as Outer Block2 fragments is completed by asking the proxy for the
//!   remaining fragments (the protected request again, with Outer Block2, RFC 7959 §2.4);
//!   the protected request is kept for that when it is sent.
//!
//! One transfer at a time (bounded memory): a new one replaces one that has stalled for
//! longer than EXCHANGE_LIFETIME or that came from the same peer and token.

use crate::block::Block;
use crate::code::Code;
use crate::exchange::Token;
use crate::message::{BuildError, Message, MessageBuilder, MessageType};
use crate::option::OptionNumber;
use crate::time::Instant;

/// RFC 7252 §4.8.2 EXCHANGE_LIFETIME with the default parameters: 247 s.
const STALE_MS: u64 = 247_000;

/// Which way the fragments go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Direction {
    /// Outer Block1 fragments of a request we receive.
    Request,
    /// Outer Block2 fragments of a response to our request.
    Response,
}

#[derive(Clone, Copy, Debug)]
struct Transfer<A> {
    direction: Direction,
    peer: A,
    token: Token,
    /// Payload bytes assembled so far.
    len: usize,
    /// The fragment expected next.
    next: u32,
    /// Its size exponent.
    szx: u8,
    last: Instant,
}

/// What a fragment leads to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Not an outer block-wise fragment: process the datagram as it is.
    NotFragmented,
    /// Taken; the layer sends `out[..len]` to the peer (2.31 Continue, or the request for
    /// the next response fragment) and gives the endpoint nothing — or, for a fragment that
    /// came in an ACK, `ack` is the empty ACK the endpoint needs to stop retransmitting.
    Continue { len: usize, ack: Option<u16> },
    /// The last fragment: the whole message is in the payload buffer (see
    /// [`OuterBlocks::take_buffer`]), `len` bytes; verify it.
    Complete { len: usize },
    /// Refused: answer `code` (requests; 4.13 over MAX_UNFRAGMENTED_SIZE, 4.08 out of
    /// order) or drop (responses).
    Reject(Code),
}

/// The reassembly state: one transfer, a payload buffer of `R` bytes and the last protected
/// request sent (for Outer Block2 follow-ups).
pub(crate) struct OuterBlocks<A, const R: usize> {
    transfer: Option<Transfer<A>>,
    payload: [u8; R],
    /// The last protected request we sent, and to whom.
    request: [u8; R],
    request_len: usize,
    request_to: Option<A>,
}

impl<A: Copy + Eq, const R: usize> OuterBlocks<A, R> {
    pub(crate) const fn new() -> Self {
        OuterBlocks {
            transfer: None,
            payload: [0; R],
            request: [0; R],
            request_len: 0,
            request_to: None,
        }
    }

    /// Keeps a protected request we send, to ask for the rest of a fragmented response.
    pub(crate) fn remember_request(&mut self, to: A, bytes: &[u8]) {
        if let Some(dst) = self.request.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
            self.request_len = bytes.len();
            self.request_to = Some(to);
        }
    }

    /// Takes a received protected message `m` (whose bytes are `datagram`) from `from`.
    /// `next_mid` gives Message IDs for the requests this sends.
    pub(crate) fn take(
        &mut self,
        now: Instant,
        from: A,
        m: &Message<'_>,
        out: &mut [u8],
        next_mid: &mut impl FnMut() -> u16,
    ) -> Step {
        let (number, direction) = if m.code().is_request() {
            (OptionNumber::BLOCK1, Direction::Request)
        } else {
            (OptionNumber::BLOCK2, Direction::Response)
        };
        let Some(block) = Block::of(m, number) else {
            if m.options()
                .any(|o| matches!(o.number, OptionNumber::BLOCK1 | OptionNumber::BLOCK2))
            {
                // The other Block option outside: not a fragment we can place (§4.1.3.4.2
                // only knows Block1 on requests and Block2 on responses as fragments).
                return Step::Reject(Code::BAD_OPTION);
            }
            return Step::NotFragmented;
        };
        if R == 0 {
            // No reassembly buffer: MAX_UNFRAGMENTED_SIZE is what fits unfragmented.
            return Step::Reject(Code::REQUEST_ENTITY_TOO_LARGE);
        }
        let token = Token::new(m.token()).unwrap_or_default();
        let stale = |t: &Transfer<A>| now.saturating_since(t.last).as_millis() as u64 > STALE_MS;
        if block.num == 0 {
            // A new transfer replaces a stalled one or the same exchange's.
            let same = |t: &Transfer<A>| t.peer == from && t.token == token;
            let busy = self
                .transfer
                .as_ref()
                .is_some_and(|t| !(stale(t) || same(t)));
            if busy {
                return Step::Reject(Code::SERVICE_UNAVAILABLE);
            }
            if direction == Direction::Response && self.request_to != Some(from) {
                // We did not send the request it answers: cannot ask for more.
                return Step::Reject(Code::BAD_GATEWAY);
            }
            self.transfer = Some(Transfer {
                direction,
                peer: from,
                token,
                len: 0,
                next: 0,
                szx: block.szx,
                last: now,
            });
        }
        let Some(t) = self
            .transfer
            .as_mut()
            .filter(|t| t.direction == direction && t.peer == from && t.token == token)
        else {
            return Step::Reject(Code::REQUEST_ENTITY_INCOMPLETE);
        };
        // RFC 7959 §2.3: fragments in order, at the size of the first (a smaller later
        // size would have to be negotiated; fragmenting proxies keep theirs).
        if block.num != t.next
            || block.szx != t.szx
            || (block.more && m.payload().len() != block.size())
        {
            self.transfer = None;
            return Step::Reject(Code::REQUEST_ENTITY_INCOMPLETE);
        }
        let start = t.len;
        let end = start + m.payload().len();
        let Some(dst) = self.payload.get_mut(start..end) else {
            // Over MAX_UNFRAGMENTED_SIZE: discarded (§4.1.3.4.2).
            self.transfer = None;
            return Step::Reject(Code::REQUEST_ENTITY_TOO_LARGE);
        };
        dst.copy_from_slice(m.payload());
        t.len = end;
        t.next += 1;
        t.last = now;
        let t = *t;
        if block.more {
            let built = match direction {
                Direction::Request => continue_reply(m, block, out, next_mid),
                Direction::Response => self.next_fragment_request(t, out, next_mid),
            };
            let ack = (m.ty() == MessageType::Ack).then_some(m.message_id());
            return match built {
                Ok(len) => Step::Continue { len, ack },
                Err(_) => {
                    self.transfer = None;
                    Step::Reject(Code::REQUEST_ENTITY_TOO_LARGE)
                }
            };
        }
        // The whole message, assembled in place in the payload buffer: the last fragment's
        // header and options without the Outer Block option (and its Size), then the
        // payload moved right behind them.
        self.transfer = None;
        let mut head = [0u8; 512];
        let built = (|| {
            let mut b =
                MessageBuilder::new(&mut head, m.ty(), m.code(), m.message_id(), m.token())?;
            for o in m.options().filter(|o| {
                !matches!(
                    o.number,
                    OptionNumber::BLOCK1
                        | OptionNumber::BLOCK2
                        | OptionNumber::SIZE1
                        | OptionNumber::SIZE2
                )
            }) {
                b.option(o.number, o.value)?;
            }
            Ok::<usize, BuildError>(b.finish())
        })();
        let Ok(head_len) = built else {
            return Step::Reject(Code::REQUEST_ENTITY_TOO_LARGE);
        };
        let total = head_len + 1 + t.len;
        if total > R || t.len == 0 {
            return Step::Reject(Code::REQUEST_ENTITY_TOO_LARGE);
        }
        self.payload.copy_within(..t.len, head_len + 1);
        if let (Some(h), Some(marker)) = (self.payload.get_mut(..head_len), head.get(..head_len)) {
            h.copy_from_slice(marker);
        }
        if let Some(b) = self.payload.get_mut(head_len) {
            *b = 0xff;
        }
        let _ = out;
        Step::Complete { len: total }
    }

    /// The assembled message of the last [`Step::Complete`], and the buffer to hand back.
    pub(crate) fn take_buffer(&mut self) -> [u8; R] {
        core::mem::replace(&mut self.payload, [0; R])
    }

    /// Gives the buffer back after [`OuterBlocks::take_buffer`].
    pub(crate) fn restore_buffer(&mut self, buf: [u8; R]) {
        self.payload = buf;
    }

    /// The protected request again, as NON with a new Message ID, asking for fragment
    /// `t.next` (RFC 7959 §2.4: the same request with Block2).
    fn next_fragment_request(
        &self,
        t: Transfer<A>,
        out: &mut [u8],
        next_mid: &mut impl FnMut() -> u16,
    ) -> Result<usize, BuildError> {
        let stored = self.request.get(..self.request_len).unwrap_or_default();
        let req = Message::parse(stored).map_err(|_| BuildError::BufferTooSmall)?;
        let mut b =
            MessageBuilder::new(out, MessageType::Non, req.code(), next_mid(), req.token())?;
        for o in req.options().filter(|o| o.number != OptionNumber::BLOCK2) {
            b.option(o.number, o.value)?;
        }
        b.option_uint(
            OptionNumber::BLOCK2,
            Block::new(t.next, false, t.szx).encode(),
        )?;
        b.payload(req.payload())?;
        Ok(b.finish())
    }
}

/// 2.31 Continue for a request fragment (RFC 7959 §2.3), piggybacked for CON.
fn continue_reply(
    m: &Message<'_>,
    block: Block,
    out: &mut [u8],
    next_mid: &mut impl FnMut() -> u16,
) -> Result<usize, BuildError> {
    let (ty, mid) = if m.ty() == MessageType::Con {
        (MessageType::Ack, m.message_id())
    } else {
        (MessageType::Non, next_mid())
    };
    let mut b = MessageBuilder::new(out, ty, Code::CONTINUE, mid, m.token())?;
    b.option_uint(OptionNumber::BLOCK1, block.encode())?;
    Ok(b.finish())
}
