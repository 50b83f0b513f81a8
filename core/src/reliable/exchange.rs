//! The server role's exchange layer over one reliable connection: a request from
//! [`Event::Request`](super::Event::Request) goes to the same [`Handler`] the UDP endpoint
//! serves, under the rules that hold over any transport, and its answer goes out through
//! the [`Connection`].
//!
//! What is the same as over UDP: unrecognised critical options get 4.02 before the
//! handler runs (RFC 7252 §5.4.1, and the other checks of [`crate::validate`]), a large
//! representation goes block-wise by offset (RFC 7959 §2.4, through
//! [`ResponseWriter::payload_by_offset`]), a successful GET with Observe=0 on an observable
//! resource registers the client (RFC 7641 §4.1, RFC 8323 §7), and a handler may defer its
//! answer. What is not: there are no ACKs, no Message IDs, no duplicate detection and no
//! CON notifications (RFC 8323 §3.3, §7.2: the connection's liveness stands for the
//! client's interest); a NON request refused with 4.02 gets the 4.02, never a RST (there is
//! no RST over a reliable transport, §3.4). Observers live with their connection: the
//! runtime keeps them beside it and drops them when the connection closes (§7).

use super::connection::{Connection, SendError};
use super::wire::{ReliableBuilder, ReliableMessage};
use crate::block::Block;
use crate::code::{Code, CodeClass};
use crate::message::{BuildError, Message};
use crate::multicast::Delivery;
use crate::option::OptionNumber;
use crate::server::{Handler, IncomingRequest, Outcome, ResponseHandle, ResponseWriter};
use crate::time::Instant;
use crate::token::Token;

/// Observe values wrap at 2^24 (RFC 7641 §4.4).
const OBSERVE_MODULUS: u32 = 1 << 24;

/// The handle of a deferred request over a reliable transport: the runtime numbers its
/// deferred requests (across connections) and gets them back from `Responder::respond`.
pub fn response_handle(id: u32) -> ResponseHandle {
    ResponseHandle {
        slot: (id & 0xffff) as u16,
        generation: (id >> 16) as u16,
    }
}

/// The number [`response_handle`] made a handle from.
pub fn response_handle_id(handle: ResponseHandle) -> u32 {
    u32::from(handle.generation) << 16 | u32::from(handle.slot)
}

/// A request whose handler returned [`Outcome::Defer`]: what its answer needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Deferred {
    token: Token,
    block2: Option<Block>,
    size2: bool,
    observe: bool,
}

impl Deferred {
    /// The request's token.
    pub fn token(&self) -> &[u8] {
        self.token.as_slice()
    }
}

/// What became of a request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Served {
    /// The response is in the buffer, `len` bytes. With `observing`, the client is now
    /// an observer of that key (token = the request's); otherwise any earlier
    /// registration under this token is over (RFC 7641 §3.6, §4.1).
    Response {
        /// Message length.
        len: usize,
        /// The key the client observes from now on.
        observing: Option<u32>,
    },
    /// The handler answers later ([`respond`]).
    Deferred(Deferred),
    /// The handler has nothing to say ([`Outcome::Ignore`]).
    Ignored,
}

/// The server side's view of one connection: the connection, the buffer a message goes
/// into (at most the peer's Max-Message-Size, RFC 8323 §5.3.1), and the Observe counter.
#[derive(Debug)]
pub struct ServerExchange<'a, const N: usize> {
    /// The connection the answers go out on.
    pub conn: &'a mut Connection<N>,
    /// Where the answer is written.
    pub out: &'a mut [u8],
    /// The next Observe value of this connection's notifications.
    pub observe_seq: &'a mut u32,
}

impl<const N: usize> ServerExchange<'_, N> {
    /// Serves one request (from [`Event::Request`](super::Event::Request)) with `handler`;
    /// `handle` is the one the handler sees for a deferred answer.
    pub fn serve<A: Copy, H: Handler<A> + ?Sized>(
        &mut self,
        request: &ReliableMessage<'_>,
        handler: &mut H,
        peer: A,
        now: Instant,
        handle: ResponseHandle,
    ) -> Result<Served, SendError> {
        self.conn.check_send()?;
        let msg = request.as_udp_view();
        let token = Token::new(msg.token()).ok_or(BuildError::TokenTooLong)?;
        // RFC 7252 §5.4.1 (and §5.4.3, §5.4.5, §5.7.2, RFC 7959 §2.2, RFC 8768 §3).
        if let Err(rejection) =
            crate::validate::check_request_options(&msg, |n| handler.understands(n))
        {
            let len = self.error_response(&token, rejection.code())?;
            return Ok(Served::Response {
                len,
                observing: None,
            });
        }
        let block2 = Block::of(&msg, OptionNumber::BLOCK2);
        let size2 = msg.uint_option(OptionNumber::SIZE2) == Some(0);
        let wants = wants_observe(&msg);
        let framing = self.conn.framing();
        let rb = ReliableBuilder::new(self.out, framing, Code::CONTENT, token.as_slice())?;
        let (builder, framing, token_len) = rb.into_parts();
        let mut w = ResponseWriter::new(builder);
        w.block2 = block2;
        w.size2 = size2;
        let req = IncomingRequest {
            peer,
            message: msg,
            handle,
            now,
            delivery: Delivery::Unicast,
        };
        match handler.handle(&req, &mut w) {
            Outcome::Respond => {}
            Outcome::Ignore => {
                self.conn.unanswered(token.as_slice());
                return Ok(Served::Ignored);
            }
            Outcome::Defer => {
                return Ok(Served::Deferred(Deferred {
                    token,
                    block2,
                    size2,
                    observe: wants,
                }))
            }
        }
        let observing = register(&mut w, wants, self.observe_seq);
        let len = ReliableBuilder::from_parts(w.builder, framing, token_len).finish();
        self.finish(&token, len, observing)
    }

    /// Answers a deferred request with what `build` writes (5.00 if it fails).
    pub fn respond(
        &mut self,
        deferred: &Deferred,
        build: impl FnOnce(&mut ResponseWriter<'_>) -> Result<(), BuildError>,
    ) -> Result<Served, SendError> {
        self.conn.check_send()?;
        let token = deferred.token;
        let framing = self.conn.framing();
        let rb = ReliableBuilder::new(self.out, framing, Code::CONTENT, token.as_slice())?;
        let (builder, framing, token_len) = rb.into_parts();
        let mut w = ResponseWriter::new(builder);
        w.block2 = deferred.block2;
        w.size2 = deferred.size2;
        match build(&mut w) {
            Ok(()) => {
                let observing = register(&mut w, deferred.observe, self.observe_seq);
                let len = ReliableBuilder::from_parts(w.builder, framing, token_len).finish();
                self.finish(&token, len, observing)
            }
            Err(_) => {
                let len = self.error_response(&token, Code::INTERNAL_SERVER_ERROR)?;
                Ok(Served::Response {
                    len,
                    observing: None,
                })
            }
        }
    }

    /// A notification to the observer with `token` (RFC 7641 §4.2 over RFC 8323 §7):
    /// what `render` writes, with the next Observe value when it is a success. Returns
    /// the length and whether the observation goes on (an error code ends it, §4.2).
    pub fn notify(
        &mut self,
        token: &[u8],
        render: impl FnOnce(&mut ResponseWriter<'_>) -> Result<(), BuildError>,
    ) -> Result<(usize, bool), SendError> {
        self.conn.check_send()?;
        let framing = self.conn.framing();
        let rb = ReliableBuilder::new(self.out, framing, Code::CONTENT, token)?;
        let (builder, framing, token_len) = rb.into_parts();
        let mut w = ResponseWriter::new(builder);
        w.notification = true;
        render(&mut w)?;
        let goes_on = w.code().kind() == CodeClass::Success;
        if goes_on {
            w.builder
                .option_uint(OptionNumber::OBSERVE, *self.observe_seq)?;
            *self.observe_seq = (*self.observe_seq + 1) % OBSERVE_MODULUS;
        }
        let len = ReliableBuilder::from_parts(w.builder, framing, token_len).finish()?;
        self.conn.sent_response(token, len)?;
        Ok((len, goes_on))
    }

    fn finish(
        &mut self,
        token: &Token,
        len: Result<usize, BuildError>,
        observing: Option<u32>,
    ) -> Result<Served, SendError> {
        let len = match len {
            Ok(n) => n,
            // Whatever the handler wrote cannot be sent: 5.00 instead (as over UDP).
            Err(_) => {
                let len = self.error_response(token, Code::INTERNAL_SERVER_ERROR)?;
                return Ok(Served::Response {
                    len,
                    observing: None,
                });
            }
        };
        match self.conn.sent_response(token.as_slice(), len) {
            Ok(()) => Ok(Served::Response { len, observing }),
            // Larger than the peer takes (a handler that did not go block-wise).
            Err(SendError::TooLarge { .. }) => {
                let len = self.error_response(token, Code::INTERNAL_SERVER_ERROR)?;
                Ok(Served::Response {
                    len,
                    observing: None,
                })
            }
            Err(e) => Err(e),
        }
    }

    fn error_response(&mut self, token: &Token, code: Code) -> Result<usize, SendError> {
        self.conn
            .send_response(self.out, code, token.as_slice(), |_| Ok(()))
    }
}

/// A GET or FETCH with Observe=0 (RFC 7641 §2, RFC 8132 §2.4).
fn wants_observe(msg: &Message<'_>) -> bool {
    msg.observe() == Some(0) && matches!(msg.code(), Code::GET | Code::FETCH)
}

/// RFC 7641 §4.1: a successful answer on an observable resource to a request that wants
/// it registers the client and carries the next Observe value.
fn register(w: &mut ResponseWriter<'_>, wants: bool, seq: &mut u32) -> Option<u32> {
    let key = w
        .observe_key
        .filter(|_| wants && w.code().kind() == CodeClass::Success)?;
    w.builder.option_uint(OptionNumber::OBSERVE, *seq).ok()?;
    *seq = (*seq + 1) % OBSERVE_MODULUS;
    Some(key)
}
