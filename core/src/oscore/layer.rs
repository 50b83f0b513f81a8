//! A sans-IO OSCORE layer between the socket and the [`crate::Endpoint`]: datagrams in,
//! datagrams out. The endpoint stays unchanged; it addresses peers as [`Secured`]
//! (address plus [`Security`]), so exchanges, duplicate detection and handlers tell
//! protected from plain traffic (a handler checks `req.peer().security`).
//!
//! ```text
//! socket ──datagram──► Layer::incoming ──inner message, Secured{addr, Oscore(ctx)}──► Endpoint
//! socket ◄─protected── Layer::outgoing ◄──plain message to Secured{addr, Oscore(ctx)}── Endpoint
//! ```
//!
//! What the layer keeps, all fixed-size:
//! - up to `C` security contexts;
//! - `B` request/response bindings (token → request kid and Partial IV, RFC 8613 §5.4),
//!   least recently used evicted, observations last;
//! - `B` records of sent messages (peer, Message ID, digest → Partial IV) so a
//!   retransmission (same bytes, same Message ID) is protected to the same bytes, and empty
//!   ACK/RST can be matched to the context of the message they answer;
//! - `B` records of received messages (peer, Message ID, Partial IV) so a retransmitted
//!   request still reaches the endpoint's duplicate detection while a replay with another
//!   Message ID is rejected (§7.4).

use sha2::{Digest, Sha256};

use crate::code::Code;
use crate::exchange::Token;
use crate::message::{Message, MessageBuilder, MessageType};
use crate::option::OptionNumber;
use crate::time::Instant;

use super::context::SecurityContext;
use super::option::PartialIv;
use super::outer::{OuterBlocks, Step};
use super::peer::ContextId;
use super::protect::{
    parse_outer, protect_request, protect_response, unprotect_request, unprotect_response,
    ProtectError, RequestBinding, UnprotectError,
};
use super::replay::ReplayError;

/// What to do with a received datagram.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Incoming {
    /// Not OSCORE: give the original datagram to the endpoint from
    /// `Secured { addr, security: Plain }`.
    Plain,
    /// Verified: give `out[..len]` (the inner message, with the outer Type, Message ID and
    /// token) to the endpoint from `Secured { addr, security: Oscore(context) }`. Also used
    /// for empty ACK/RST that answer a message sent under `context`.
    Inner {
        /// Length of the inner message in `out`.
        len: usize,
        /// The context it was protected with.
        context: ContextId,
    },
    /// Rejected request: send `out[..len]` back to the sender (the error response of
    /// RFC 8613 §8.2 / §7.4, or a protected 4.01 with Echo, Appendix B.1.2).
    Reply {
        /// Length of the reply in `out`.
        len: usize,
        /// Why the request was rejected.
        error: UnprotectError,
    },
    /// Rejected and not answered (responses, §8.4; or unanswerable requests).
    Drop(UnprotectError),
    /// A fragment of an outer block-wise transfer (RFC 8613 §4.1.3.4.2) was taken: send
    /// `out[..len]` back to the sender (2.31 Continue, or the request for the next response
    /// fragment). If `ack` is set, the fragment came in an ACK: give the endpoint an empty ACK
    /// with that Message ID from the sender under that context, so it stops retransmitting
    /// its request while the rest of the response is fetched.
    Fragment {
        /// Length of the datagram to send in `out`.
        len: usize,
        /// Message ID and context of the empty ACK for the endpoint.
        ack: Option<(u16, ContextId)>,
    },
}

/// Why a context cannot be added.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LayerError {
    /// All `C` context slots are in use.
    #[error("no free security context slot")]
    Full,
    /// A context with the same Recipient ID and ID Context exists: the kid would be
    /// ambiguous (RFC 8613 §3.3).
    #[error("a context with this recipient ID and ID context exists")]
    Duplicate,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    /// We sent the request.
    Client,
    /// We received the request.
    Server,
}

/// Where an observation bound to a request stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Observation {
    None,
    /// Registered; on the client, with the highest notification Partial IV so far (the
    /// Notification Number of §4.1.3.5.2).
    Active {
        last: Option<PartialIv>,
    },
}

/// How the single response that may reuse the request nonce was used (§5.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RequestNonce {
    Unused,
    /// Server: used by the response with this digest. Client: a response without
    /// Partial IV was accepted.
    Used(Digest16),
}

type Digest16 = [u8; 16];

/// RFC 7252 §4.8.2 MAX_TRANSMIT_SPAN with the default parameters: 45 s.
const MAX_TRANSMIT_SPAN: core::time::Duration = core::time::Duration::from_secs(45);

#[derive(Clone, Copy, Debug)]
struct Binding<A> {
    role: Role,
    addr: A,
    context: ContextId,
    token: Token,
    request: RequestBinding,
    observation: Observation,
    nonce: RequestNonce,
    used: u64,
}

#[derive(Clone, Copy, Debug)]
struct Sent<A> {
    addr: A,
    context: ContextId,
    mid: u16,
    digest: Digest16,
    piv: Option<PartialIv>,
}

#[derive(Clone, Copy, Debug)]
struct Received<A> {
    at: Instant,
    addr: A,
    context: ContextId,
    mid: u16,
    piv: Option<PartialIv>,
}

#[derive(Clone, Debug)]
struct Slot {
    ctx: SecurityContext,
    /// The Echo value of the last 4.01 sent while the replay window is unknown
    /// (Appendix B.1.2).
    echo: Option<[u8; 8]>,
}

/// The OSCORE layer: `C` security contexts, `B` bindings and message records, and `R`
/// bytes for reassembling outer block-wise transfers (RFC 8613 §4.1.3.4.2: the
/// MAX_UNFRAGMENTED_SIZE; 0 refuses fragmented messages with 4.13).
pub struct Layer<A, const C: usize = 4, const B: usize = 16, const R: usize = 0> {
    contexts: [Option<Slot>; C],
    bindings: [Option<Binding<A>>; B],
    sent: [Option<Sent<A>>; B],
    sent_next: usize,
    received: [Option<Received<A>>; B],
    received_next: usize,
    tick: u64,
    next_mid: u16,
    outer: OuterBlocks<A, R>,
}

impl<A: Copy + Eq, const C: usize, const B: usize, const R: usize> Layer<A, C, B, R> {
    /// A layer with no contexts. `seed` seeds the Message IDs of NON error replies.
    pub fn new(seed: u16) -> Self {
        Layer {
            contexts: core::array::from_fn(|_| None),
            bindings: [None; B],
            sent: [None; B],
            sent_next: 0,
            received: [None; B],
            received_next: 0,
            tick: 0,
            next_mid: seed,
            outer: OuterBlocks::new(),
        }
    }

    /// Adds a security context.
    pub fn add_context(&mut self, ctx: SecurityContext) -> Result<ContextId, LayerError> {
        if self.contexts.iter().flatten().any(|s| {
            s.ctx.recipient_id() == ctx.recipient_id() && s.ctx.id_context() == ctx.id_context()
        }) {
            return Err(LayerError::Duplicate);
        }
        let (i, slot) = self
            .contexts
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.is_none())
            .ok_or(LayerError::Full)?;
        let id = ContextId(u8::try_from(i).map_err(|_| LayerError::Full)?);
        *slot = Some(Slot { ctx, echo: None });
        Ok(id)
    }

    /// Removes a context and everything bound to it (request/response bindings, message
    /// records), so that its [`ContextId`] can name a new context without a response or a
    /// retransmission of the old one being protected or verified under the new one. For
    /// contexts that are replaced as a whole, e.g. those of EDHOC sessions (RFC 9528
    /// Appendix A.1).
    pub fn remove_context(&mut self, id: ContextId) -> Option<SecurityContext> {
        let slot = self.contexts.get_mut(usize::from(id.0))?.take()?;
        for b in &mut self.bindings {
            if b.as_ref().is_some_and(|b| b.context == id) {
                *b = None;
            }
        }
        for s in &mut self.sent {
            if s.as_ref().is_some_and(|s| s.context == id) {
                *s = None;
            }
        }
        for r in &mut self.received {
            if r.as_ref().is_some_and(|r| r.context == id) {
                *r = None;
            }
        }
        Some(slot.ctx)
    }

    /// A context, for inspection.
    pub fn context(&self, id: ContextId) -> Option<&SecurityContext> {
        self.slot(id).map(|s| &s.ctx)
    }

    /// A context, for changes (e.g. replay window size).
    pub fn context_mut(&mut self, id: ContextId) -> Option<&mut SecurityContext> {
        self.slot_mut(id).map(|s| &mut s.ctx)
    }

    fn slot(&self, id: ContextId) -> Option<&Slot> {
        self.contexts.get(usize::from(id.0))?.as_ref()
    }

    fn slot_mut(&mut self, id: ContextId) -> Option<&mut Slot> {
        self.contexts.get_mut(usize::from(id.0))?.as_mut()
    }

    /// A sequence number bound that must be persisted before it is used (Appendix
    /// B.1.1): store `bound` for the context, then call [`Layer::persisted`].
    pub fn poll_persist(&mut self) -> Option<(ContextId, u64)> {
        self.contexts
            .iter_mut()
            .enumerate()
            .find_map(|(i, s)| Some((ContextId(i as u8), s.as_mut()?.ctx.sequence.wanted()?)))
    }

    /// Storage holds `up_to` for `context`: sequence numbers below it may be used.
    pub fn persisted(&mut self, context: ContextId, up_to: u64) {
        if let Some(s) = self.slot_mut(context) {
            s.ctx.sequence.persisted(up_to);
        }
    }

    fn touch(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    // ----- outgoing ---------------------------------------------------------------------

    /// Protects a message the endpoint sends to `to` under `context` into `out`; returns
    /// the length to send. Empty messages (ACK, RST, ping) pass through unprotected
    /// (RFC 8613 protects the request/response layer only). A retransmission (same peer,
    /// Message ID and bytes) is protected to the same bytes.
    pub fn outgoing(
        &mut self,
        _now: Instant,
        to: A,
        context: ContextId,
        plain: &[u8],
        out: &mut [u8],
    ) -> Result<usize, ProtectError> {
        let m = Message::parse(plain)?;
        if m.code() == Code::EMPTY {
            out.get_mut(..plain.len())
                .ok_or(ProtectError::BufferTooSmall)?
                .copy_from_slice(plain);
            self.record_sent(to, context, m.message_id(), [0; 16], None);
            return Ok(plain.len());
        }
        if self.slot(context).is_none() {
            return Err(ProtectError::UnknownContext);
        }
        let digest = digest(plain);
        let previous = self
            .sent
            .iter()
            .flatten()
            .find(|s| {
                s.addr == to
                    && s.context == context
                    && s.mid == m.message_id()
                    && s.digest == digest
            })
            .map(|s| s.piv);
        let token = Token::new(m.token()).unwrap_or_default();
        if m.code().is_request() {
            let slot = self.slot_mut(context).ok_or(ProtectError::UnknownContext)?;
            let piv = match previous.flatten() {
                Some(p) => p,
                None => PartialIv::new(slot.ctx.sequence.take()?).ok_or(ProtectError::Sequence(
                    super::sequence::SequenceError::Exhausted,
                ))?,
            };
            let (n, request) = protect_request(&slot.ctx, plain, piv, out)?;
            let observation = if m.observe() == Some(0) {
                Observation::Active { last: None }
            } else {
                Observation::None
            };
            self.bind(Binding {
                role: Role::Client,
                addr: to,
                context,
                token,
                request,
                observation,
                nonce: RequestNonce::Unused,
                used: 0,
            });
            self.record_sent(to, context, m.message_id(), digest, Some(piv));
            if R > 0 {
                // Kept to ask for the rest of a fragmented response (§4.1.3.4.2).
                self.outer
                    .remember_request(to, out.get(..n).unwrap_or_default());
            }
            return Ok(n);
        }
        let i = self
            .find_binding(Role::Server, to, Some(context), &token)
            .ok_or(ProtectError::NoBinding)?;
        let tick = self.touch();
        let b = self
            .bindings
            .get_mut(i)
            .and_then(Option::as_mut)
            .ok_or(ProtectError::NoBinding)?;
        b.used = tick;
        let notification = m.observe().is_some();
        // §5.2: one response may reuse the request nonce; notifications and any further
        // response carry their own Partial IV (§4.1.3.5.2).
        let reuse_nonce = !notification
            && match b.nonce {
                RequestNonce::Unused => true,
                RequestNonce::Used(d) => d == digest,
            };
        if reuse_nonce {
            b.nonce = RequestNonce::Used(digest);
        }
        if !notification {
            // A response without Observe ends an observation (RFC 7641 §3.2).
            b.observation = Observation::None;
        }
        let request = b.request;
        let slot = self.slot_mut(context).ok_or(ProtectError::UnknownContext)?;
        let own = if reuse_nonce {
            None
        } else {
            match previous.flatten() {
                Some(p) => Some(p),
                None => Some(PartialIv::new(slot.ctx.sequence.take()?).ok_or(
                    ProtectError::Sequence(super::sequence::SequenceError::Exhausted),
                )?),
            }
        };
        let n = protect_response(&slot.ctx, &request, plain, own, out)?;
        self.record_sent(to, context, m.message_id(), digest, own);
        Ok(n)
    }

    fn record_sent(
        &mut self,
        addr: A,
        context: ContextId,
        mid: u16,
        digest: Digest16,
        piv: Option<PartialIv>,
    ) {
        let rec = Sent {
            addr,
            context,
            mid,
            digest,
            piv,
        };
        // Replace the record of the same message (retransmission), else the oldest.
        let i = self
            .sent
            .iter()
            .position(|s| {
                s.is_some_and(|s| {
                    s.addr == addr && s.context == context && s.mid == mid && s.digest == digest
                })
            })
            .unwrap_or_else(|| {
                let i = self.sent_next % B.max(1);
                self.sent_next = (i + 1) % B.max(1);
                i
            });
        if let Some(s) = self.sent.get_mut(i) {
            *s = Some(rec);
        }
    }

    fn find_binding(
        &self,
        role: Role,
        addr: A,
        context: Option<ContextId>,
        token: &Token,
    ) -> Option<usize> {
        self.bindings.iter().position(|b| {
            b.is_some_and(|b| {
                b.role == role
                    && b.addr == addr
                    && context.is_none_or(|c| c == b.context)
                    && b.token == *token
            })
        })
    }

    /// The context of the protected request we sent to `to` with `token`, if it still
    /// waits for its response. A server's rejection of it (RFC 8613 §8.2: 4.00, 4.01 or
    /// 4.02 with a diagnostic payload) comes unprotected; with this a runtime can tell it
    /// from a stray plain message, and end the request with the reason.
    pub fn request_context(&self, to: A, token: &[u8]) -> Option<ContextId> {
        let token = Token::new(token)?;
        let i = self.find_binding(Role::Client, to, None, &token)?;
        Some(self.bindings.get(i).copied().flatten()?.context)
    }

    /// Inserts or replaces the binding of (role, peer, context, token); evicts the least
    /// recently used binding, observations last.
    fn bind(&mut self, mut binding: Binding<A>) {
        binding.used = self.touch();
        let i = self
            .find_binding(
                binding.role,
                binding.addr,
                Some(binding.context),
                &binding.token,
            )
            .or_else(|| self.bindings.iter().position(Option::is_none))
            .or_else(|| {
                self.bindings
                    .iter()
                    .enumerate()
                    .filter_map(|(i, b)| b.map(|b| (i, b)))
                    .min_by_key(|(_, b)| {
                        (matches!(b.observation, Observation::Active { .. }), b.used)
                    })
                    .map(|(i, _)| i)
            });
        if let Some(slot) = i.and_then(|i| self.bindings.get_mut(i)) {
            *slot = Some(binding);
        }
    }

    // ----- incoming ---------------------------------------------------------------------

    /// Processes a received datagram from `from`; see [`Incoming`] for what to do with it.
    /// `out` receives the inner message or the reply: give it at least twice the largest
    /// datagram (it also holds the ciphertext while decrypting).
    pub fn incoming(&mut self, now: Instant, from: A, datagram: &[u8], out: &mut [u8]) -> Incoming {
        let Ok(m) = Message::parse(datagram) else {
            // Not CoAP: the endpoint answers or drops it as it would any malformed datagram.
            return Incoming::Plain;
        };
        if m.code() == Code::EMPTY {
            return self.incoming_empty(from, &m, datagram, out);
        }
        if m.option(OptionNumber::OSCORE).is_none() {
            return Incoming::Plain;
        }
        // §4.1.3.4.2: fragments of an outer block-wise transfer are reassembled first.
        let mut mid = self.next_mid;
        let mut next_mid = || {
            mid = mid.wrapping_add(1);
            mid
        };
        let step = self.outer.take(now, from, &m, out, &mut next_mid);
        self.next_mid = mid;
        match step {
            Step::NotFragmented => {}
            Step::Continue { len, ack } => {
                let token = Token::new(m.token()).unwrap_or_default();
                let ack = ack.and_then(|mid| {
                    let i = self.find_binding(Role::Client, from, None, &token)?;
                    let context = self.bindings.get(i).copied().flatten()?.context;
                    Some((mid, context))
                });
                return Incoming::Fragment { len, ack };
            }
            Step::Complete { len } => {
                let buf = self.outer.take_buffer();
                let whole = buf.get(..len).unwrap_or_default();
                let result = match Message::parse(whole) {
                    Ok(w) if w.code().is_request() => {
                        self.incoming_request(now, from, &w, whole, out)
                    }
                    Ok(w) => self.incoming_response(now, from, &w, whole, out),
                    Err(_) => Incoming::Drop(UnprotectError::OuterBlockwise),
                };
                self.outer.restore_buffer(buf);
                return result;
            }
            Step::Reject(code) if m.code().is_request() => return self.reply_code(&m, code, out),
            Step::Reject(_) => return Incoming::Drop(UnprotectError::OuterBlockwise),
        }
        if m.code().is_request() {
            self.incoming_request(now, from, &m, datagram, out)
        } else if m.code().is_response() {
            self.incoming_response(now, from, &m, datagram, out)
        } else {
            Incoming::Drop(UnprotectError::WrongKind)
        }
    }

    fn incoming_empty(
        &mut self,
        from: A,
        m: &Message<'_>,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Incoming {
        // An empty ACK or RST answers a message we sent: it belongs to that message's
        // context, or the endpoint could not match it to the exchange.
        if !matches!(m.ty(), MessageType::Ack | MessageType::Rst) {
            return Incoming::Plain;
        }
        let Some(context) = self
            .sent
            .iter()
            .flatten()
            .find(|s| s.addr == from && s.mid == m.message_id())
            .map(|s| s.context)
        else {
            return Incoming::Plain;
        };
        match out.get_mut(..datagram.len()) {
            Some(dst) => {
                dst.copy_from_slice(datagram);
                Incoming::Inner {
                    len: datagram.len(),
                    context,
                }
            }
            None => Incoming::Drop(UnprotectError::BufferTooSmall),
        }
    }

    fn incoming_request(
        &mut self,
        now: Instant,
        from: A,
        m: &Message<'_>,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Incoming {
        let option = match parse_outer(datagram) {
            Ok((_, o)) => o,
            Err(e) => return self.reply_error(m, e, out),
        };
        let (Some(kid), Some(piv)) = (option.kid, option.partial_iv) else {
            return self.reply_error(m, UnprotectError::Fields, out);
        };
        // §8.2 step 3: the Recipient Context for kid (and kid context).
        let Some(index) = self.contexts.iter().position(|s| {
            s.as_ref().is_some_and(|s| {
                s.ctx.recipient_id() == kid
                    && option
                        .kid_context
                        .is_none_or(|c| s.ctx.id_context() == Some(c))
            })
        }) else {
            return self.reply_error(m, UnprotectError::ContextNotFound, out);
        };
        let context = ContextId(index as u8);
        // A retransmission (same peer, Message ID and Partial IV) is passed on for the
        // endpoint's duplicate detection (RFC 7252 §4.5); anything else must be fresh.
        let duplicate = self.was_received(now, from, context, m.message_id(), Some(piv));
        let Some(slot) = self.slot(context) else {
            return self.reply_error(m, UnprotectError::ContextNotFound, out);
        };
        let window = if duplicate {
            Ok(())
        } else {
            slot.ctx.replay.check(piv.value())
        };
        match window {
            Ok(()) | Err(ReplayError::Unknown) => {}
            // §7.4: 4.01 "Replay detected".
            Err(e) => return self.reply_error(m, UnprotectError::Replay(e), out),
        }
        let verified = match unprotect_request(&slot.ctx, datagram, out) {
            Ok(v) => v,
            Err(e) => return self.reply_error(m, e, out),
        };
        let inner = match Message::parse(out.get(..verified.len).unwrap_or_default()) {
            Ok(i) => i,
            Err(_) => return self.reply_error(m, UnprotectError::MalformedPlaintext, out),
        };
        let observe = inner.observe();
        if window == Err(ReplayError::Unknown) {
            // Appendix B.1.2: after a reboot the window is unknown; a request proves
            // freshness by echoing the Echo value of our last 4.01.
            let echoed = inner.option(OptionNumber::ECHO).map(|o| o.value);
            let expected = slot.echo;
            if !(echoed.is_some() && expected.as_ref().map(|e| &e[..]) == echoed) {
                return self.reply_echo(m, context, verified.binding, out);
            }
        }
        let Some(slot) = self.slot_mut(context) else {
            return Incoming::Drop(UnprotectError::ContextNotFound);
        };
        slot.ctx.replay.accept(piv.value());
        slot.echo = None;
        if !duplicate {
            self.record_received(now, from, context, m.message_id(), Some(piv));
        }
        let token = Token::new(m.token()).unwrap_or_default();
        self.bind(Binding {
            role: Role::Server,
            addr: from,
            context,
            token,
            request: verified.binding,
            observation: if observe == Some(0) {
                Observation::Active { last: None }
            } else {
                Observation::None
            },
            nonce: RequestNonce::Unused,
            used: 0,
        });
        Incoming::Inner {
            len: verified.len,
            context,
        }
    }

    fn incoming_response(
        &mut self,
        now: Instant,
        from: A,
        m: &Message<'_>,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Incoming {
        let token = Token::new(m.token()).unwrap_or_default();
        let Some(i) = self.find_binding(Role::Client, from, None, &token) else {
            return Incoming::Drop(UnprotectError::NoBinding);
        };
        let Some(b) = self.bindings.get(i).copied().flatten() else {
            return Incoming::Drop(UnprotectError::NoBinding);
        };
        let option = match parse_outer(datagram) {
            Ok((_, o)) => o,
            Err(e) => return Incoming::Drop(e),
        };
        let duplicate = self.was_received(now, from, b.context, m.message_id(), option.partial_iv);
        if !duplicate {
            // §7.4.1: a response in an observation must be newer than the Notification
            // Number; a response without Partial IV is accepted once per request.
            match (b.observation, option.partial_iv) {
                (Observation::Active { last: Some(last) }, Some(p)) if p <= last => {
                    return Incoming::Drop(UnprotectError::Replay(ReplayError::Replayed))
                }
                // §8.4 step B: once notifications numbered the observation, every
                // response to it carries a Partial IV.
                (Observation::Active { last: Some(_) }, None) => {
                    return Incoming::Drop(UnprotectError::Fields)
                }
                (_, None) if matches!(b.nonce, RequestNonce::Used(_)) => {
                    return Incoming::Drop(UnprotectError::Replay(ReplayError::Replayed))
                }
                _ => {}
            }
        }
        let Some(slot) = self.slot(b.context) else {
            return Incoming::Drop(UnprotectError::ContextNotFound);
        };
        let v = match unprotect_response(&slot.ctx, &b.request, datagram, out) {
            Ok(v) => v,
            Err(e) => return Incoming::Drop(e),
        };
        // §4.1.3.5.2: an Inner Observe in a response to a request that did not register
        // stops processing.
        let notification = v.notification;
        if notification && b.observation == Observation::None {
            out.get_mut(..v.len).unwrap_or_default().fill(0);
            return Incoming::Drop(UnprotectError::UnexpectedObserve);
        }
        let tick = self.touch();
        if let Some(Some(b)) = self.bindings.get_mut(i) {
            b.used = tick;
            if notification {
                if let (Observation::Active { last }, Some(p)) = (&mut b.observation, v.piv) {
                    *last = Some(last.map_or(p, |l| l.max(p)));
                }
            } else {
                b.observation = Observation::None;
            }
            if v.piv.is_none() {
                b.nonce = RequestNonce::Used([0; 16]);
            }
        }
        if !duplicate {
            self.record_received(now, from, b.context, m.message_id(), v.piv);
        }
        Incoming::Inner {
            len: v.len,
            context: b.context,
        }
    }

    /// Whether this is a retransmission of a message accepted less than
    /// MAX_TRANSMIT_SPAN ago (RFC 7252 §4.8.2: a sender retransmits only within it), so
    /// an old copy cannot outlive the endpoint's own duplicate detection.
    fn was_received(
        &self,
        now: Instant,
        addr: A,
        context: ContextId,
        mid: u16,
        piv: Option<PartialIv>,
    ) -> bool {
        self.received.iter().flatten().any(|r| {
            now.saturating_since(r.at) <= MAX_TRANSMIT_SPAN
                && r.addr == addr
                && r.context == context
                && r.mid == mid
                && r.piv == piv
        })
    }

    fn record_received(
        &mut self,
        at: Instant,
        addr: A,
        context: ContextId,
        mid: u16,
        piv: Option<PartialIv>,
    ) {
        let i = self.received_next % B.max(1);
        self.received_next = (i + 1) % B.max(1);
        if let Some(r) = self.received.get_mut(i) {
            *r = Some(Received {
                at,
                addr,
                context,
                mid,
                piv,
            });
        }
    }

    /// The header of a reply to `m`: ACK with its Message ID for CON, else NON with a
    /// Message ID of our own (RFC 7252 §4.2, §4.3).
    fn reply_header(&mut self, m: &Message<'_>) -> (MessageType, u16) {
        if m.ty() == MessageType::Con {
            (MessageType::Ack, m.message_id())
        } else {
            self.next_mid = self.next_mid.wrapping_add(1);
            (MessageType::Non, self.next_mid)
        }
    }

    /// An unprotected answer with just a code (an outer block-wise step refused: 4.08,
    /// 4.13, 5.03; RFC 7959 §2.9).
    fn reply_code(&mut self, m: &Message<'_>, code: Code, out: &mut [u8]) -> Incoming {
        let (ty, mid) = self.reply_header(m);
        let built = (|| {
            let mut b = MessageBuilder::new(out, ty, code, mid, m.token())?;
            if code == Code::REQUEST_ENTITY_TOO_LARGE && R > 0 {
                b.option_uint(OptionNumber::SIZE1, R as u32)?;
            }
            b.option_uint(OptionNumber::MAX_AGE, 0)?;
            Ok::<usize, crate::message::BuildError>(b.finish())
        })();
        match built {
            Ok(len) => Incoming::Reply {
                len,
                error: UnprotectError::OuterBlockwise,
            },
            Err(_) => Incoming::Drop(UnprotectError::OuterBlockwise),
        }
    }

    /// The unprotected error response of RFC 8613 §8.2 / §7.4, with Outer Max-Age 0 so
    /// intermediaries do not cache it (§4.1.3.1). No plaintext is ever included.
    fn reply_error(&mut self, m: &Message<'_>, error: UnprotectError, out: &mut [u8]) -> Incoming {
        let Some((code, diagnostic)) = error.response() else {
            return Incoming::Drop(error);
        };
        let (ty, mid) = self.reply_header(m);
        let built = (|| {
            let mut b = MessageBuilder::new(out, ty, code, mid, m.token())?;
            b.option_uint(OptionNumber::MAX_AGE, 0)?;
            b.payload(diagnostic)?;
            Ok::<usize, crate::message::BuildError>(b.finish())
        })();
        match built {
            Ok(len) => Incoming::Reply { len, error },
            Err(_) => Incoming::Drop(error),
        }
    }

    /// A 4.01 (Unauthorized) with Echo, protected with our own Partial IV (a reboot may
    /// have lost which request nonces were used; Appendix B.1.2). The Echo value is that
    /// Partial IV: sequence numbers are never reused across reboots (Appendix B.1.1), so
    /// no Echo value from before the reboot can match.
    fn reply_echo(
        &mut self,
        m: &Message<'_>,
        context: ContextId,
        request: RequestBinding,
        out: &mut [u8],
    ) -> Incoming {
        let (ty, mid) = self.reply_header(m);
        let Some(slot) = self.slot_mut(context) else {
            return Incoming::Drop(UnprotectError::ContextNotFound);
        };
        let piv = match slot.ctx.sequence.take().ok().and_then(PartialIv::new) {
            Some(p) => p,
            None => return Incoming::Drop(UnprotectError::EchoRequired),
        };
        let echo = piv.value().to_be_bytes();
        slot.echo = Some(echo);
        let mut plain = [0u8; 32];
        let built = (|| {
            let mut b = MessageBuilder::new(&mut plain, ty, Code::UNAUTHORIZED, mid, m.token())?;
            b.option(OptionNumber::ECHO, &echo)?;
            Ok::<usize, crate::message::BuildError>(b.finish())
        })();
        let Ok(n) = built else {
            return Incoming::Drop(UnprotectError::EchoRequired);
        };
        match protect_response(
            &slot.ctx,
            &request,
            plain.get(..n).unwrap_or_default(),
            Some(piv),
            out,
        ) {
            Ok(len) => Incoming::Reply {
                len,
                error: UnprotectError::EchoRequired,
            },
            Err(_) => Incoming::Drop(UnprotectError::EchoRequired),
        }
    }
}

fn digest(bytes: &[u8]) -> Digest16 {
    let full = Sha256::digest(bytes);
    let mut d = [0u8; 16];
    if let Some(src) = full.get(..16) {
        d.copy_from_slice(src);
    }
    d
}
