//! OSCORE-protected requests (RFC 8613) from the client, under a security context the
//! application keeps in storage of its own ([`OscoreContext`]): pre-shared, or derived by
//! EDHOC ([`Client::edhoc`](crate::Client::edhoc), feature `edhoc`).
//!
//! The request is protected before the core sees it: RFC 8613 §5.4 leaves the Message ID
//! and the token out of the AAD, so the core endpoint sends the protected message (outer
//! code POST, the OSCORE option, the ciphertext) as any request and retransmits it
//! unchanged (§7.5: a retransmission is the same message). Its response is matched by
//! token as usual, then verified and decrypted under the same context with the request's
//! binding (kid and Partial IV, §8.4) before the caller sees it. The runner is not
//! involved, and nothing of this is in a build without the `oscore` feature.
//!
//! Limits of this client: one response per request (no Observe, RFC 8613 §4.1.3.5) and
//! requests and responses that fit one message (no block-wise transfer, inner or outer,
//! §4.1.3.4).

use coap_core::message::MessageBuilder;
use coap_core::oscore::protect::{protect_request, unprotect_response, RequestBinding};
use coap_core::oscore::sequence::SequenceError;
use coap_core::oscore::{PartialIv, ProtectError, SecurityContext};
use coap_core::uri::Uri;
use coap_core::{Code, ContentFormat, Message, MessageType, OptionNumber, RequestParams};

use crate::client::{peer_of, Client, ExchangeRef, Request, Response};
use crate::error::Error;
use crate::exchange::{Delivery, OuterOscore};

#[cfg(feature = "edhoc")]
use coap_core::edhoc::transport::MAX_MESSAGE_LEN;

/// An OSCORE security context in the application's storage (a `static`, a `StaticCell`,
/// a task's local): the context itself, and while an EDHOC session made with the
/// combined request (RFC 9668) is not yet confirmed, its message_3, which the next
/// protected request carries.
pub struct OscoreContext {
    context: Option<SecurityContext>,
    #[cfg(feature = "edhoc")]
    pending: Option<Message3>,
}

/// message_3 of an EDHOC session, kept until the server answers under its context
/// (RFC 9668 §3.2.1: until then every request under the context is a combined request).
#[cfg(feature = "edhoc")]
#[derive(Clone, Copy)]
pub(crate) struct Message3 {
    bytes: [u8; MAX_MESSAGE_LEN],
    len: usize,
}

#[cfg(feature = "edhoc")]
impl Message3 {
    pub(crate) fn new(message_3: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; MAX_MESSAGE_LEN];
        bytes.get_mut(..message_3.len())?.copy_from_slice(message_3);
        Some(Message3 {
            bytes,
            len: message_3.len(),
        })
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl Default for OscoreContext {
    fn default() -> Self {
        OscoreContext::empty()
    }
}

impl core::fmt::Debug for OscoreContext {
    // The keys are never printed (SecurityContext's Debug leaves them out too).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("OscoreContext");
        d.field("context", &self.context);
        #[cfg(feature = "edhoc")]
        d.field("combined_pending", &self.pending.is_some());
        d.finish()
    }
}

impl OscoreContext {
    /// Storage without a context yet (for `static` storage that EDHOC fills later).
    pub const fn empty() -> Self {
        OscoreContext {
            context: None,
            #[cfg(feature = "edhoc")]
            pending: None,
        }
    }

    /// Storage holding a pre-shared context (RFC 8613 §3.2). Its sequence numbers are the
    /// application's to persist (Appendix B.1.1): a context whose reservation is used up
    /// fails requests with [`Error::Protect`] until
    /// [`SecurityContext::sequence`]`.persisted(..)` is called through
    /// [`OscoreContext::context_mut`].
    pub fn new(context: SecurityContext) -> Self {
        OscoreContext {
            context: Some(context),
            #[cfg(feature = "edhoc")]
            pending: None,
        }
    }

    /// The context, if one is held.
    pub fn context(&self) -> Option<&SecurityContext> {
        self.context.as_ref()
    }

    /// The context, for changes (sequence number persistence, replay window).
    pub fn context_mut(&mut self) -> Option<&mut SecurityContext> {
        self.context.as_mut()
    }

    /// Forgets the context (and a pending combined request): the keys are gone.
    pub fn clear(&mut self) {
        *self = OscoreContext::empty();
    }

    /// Whether the next protected request is an EDHOC + OSCORE combined request
    /// (RFC 9668): the session is not yet confirmed by a response under its context.
    #[cfg(feature = "edhoc")]
    pub fn combined_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// A session EDHOC established; `message_3` for the combined request, or `None` in
    /// the plain flow.
    #[cfg(feature = "edhoc")]
    pub(crate) fn establish(&mut self, context: SecurityContext, message_3: Option<Message3>) {
        self.context = Some(context);
        self.pending = message_3;
    }
}

/// The client side of an endpoint with every request protected under one OSCORE context
/// ([`Client::oscore`]). Requests take `coap://` URIs as the plain client does; the
/// responses the caller sees are the verified inner ones.
pub struct Protected<
    'c,
    'e,
    const N: usize,
    const M: usize,
    const D: usize,
    const O: usize,
    const K: usize,
    const B: usize,
> {
    client: Client<'e, N, M, D, O, K, B>,
    storage: &'c mut OscoreContext,
}

impl<
        'e,
        const N: usize,
        const M: usize,
        const D: usize,
        const O: usize,
        const K: usize,
        const B: usize,
    > Client<'e, N, M, D, O, K, B>
{
    /// This client with its requests protected under the context in `storage`
    /// (RFC 8613): `client.oscore(&mut ctx).get(uri, &mut buf)`.
    pub fn oscore<'c>(
        &self,
        storage: &'c mut OscoreContext,
    ) -> Protected<'c, 'e, N, M, D, O, K, B> {
        Protected {
            client: *self,
            storage,
        }
    }
}

impl<
        'e,
        const N: usize,
        const M: usize,
        const D: usize,
        const O: usize,
        const K: usize,
        const B: usize,
    > Protected<'_, 'e, N, M, D, O, K, B>
{
    /// GET `uri` under OSCORE; the verified body goes into `buf`, which also holds the
    /// ciphertext while it is decrypted (give it twice the body and 32 bytes).
    pub async fn get<'b>(&mut self, uri: &str, buf: &'b mut [u8]) -> Result<Response<'b>, Error> {
        self.send(Request::get(uri), buf).await
    }

    /// POST `payload` to `uri` under OSCORE.
    pub async fn post<'b>(
        &mut self,
        uri: &str,
        format: ContentFormat,
        payload: &[u8],
        buf: &'b mut [u8],
    ) -> Result<Response<'b>, Error> {
        let r = Request::new(Code::POST, uri)
            .content_format(format)
            .payload(payload);
        self.send(r, buf).await
    }

    /// PUT `payload` to `uri` under OSCORE.
    pub async fn put<'b>(
        &mut self,
        uri: &str,
        format: ContentFormat,
        payload: &[u8],
        buf: &'b mut [u8],
    ) -> Result<Response<'b>, Error> {
        let r = Request::new(Code::PUT, uri)
            .content_format(format)
            .payload(payload);
        self.send(r, buf).await
    }

    /// DELETE `uri` under OSCORE.
    pub async fn delete<'b>(
        &mut self,
        uri: &str,
        buf: &'b mut [u8],
    ) -> Result<Response<'b>, Error> {
        self.send(Request::new(Code::DELETE, uri), buf).await
    }

    /// Sends `request` protected (RFC 8613 §8.1) and waits for its response, verified
    /// (§8.4) into `buf` (twice the body and 32 bytes: it holds the ciphertext while it
    /// is decrypted). While an EDHOC session is unconfirmed the request carries
    /// message_3 (the combined request, RFC 9668 §3.2.1); a verified response confirms
    /// the session, an EDHOC error in answer ends it ([`Error::Edhoc`], the storage is
    /// cleared).
    pub async fn send<'b>(
        &mut self,
        request: Request<'_>,
        buf: &'b mut [u8],
    ) -> Result<Response<'b>, Error> {
        let (mut x, binding) = self.start(&request)?;
        let delivery = x.next_delivery(None).await;
        self.verify(&x, delivery, &binding, buf)
    }

    /// Protects `request` and starts it in the core (the buffers live only here, not in
    /// the future that waits for the response).
    fn start(
        &mut self,
        request: &Request<'_>,
    ) -> Result<(ExchangeRef<'e, N, M, D, O, K, B>, RequestBinding), Error> {
        let uri = Uri::parse(request.uri)?;
        let peer = peer_of(&uri)?;
        let ctx = self.storage.context.as_mut().ok_or(Error::NoContext)?;
        // The inner message (RFC 8613 §4): the core gives the outer one its Message ID
        // and token, which OSCORE does not protect.
        let mut plain = [0u8; M];
        let mut b = MessageBuilder::new(&mut plain, request.ty, request.code, 0, &[])
            .map_err(Error::Build)?;
        request.write_options(&uri, &mut b).map_err(Error::Build)?;
        if !request.payload.is_empty() {
            b.payload(request.payload).map_err(Error::Build)?;
        }
        let n = b.finish();
        let sequence = |e| Error::Protect(ProtectError::Sequence(e));
        let seq = ctx.sequence.take().map_err(sequence)?;
        let piv = PartialIv::new(seq).ok_or(sequence(SequenceError::Exhausted))?;
        let mut protected = [0u8; M];
        let plain = plain.get(..n).unwrap_or_default();
        let (len, binding) =
            protect_request(ctx, plain, piv, &mut protected).map_err(Error::Protect)?;
        let protected = protected.get(..len).unwrap_or_default();
        #[cfg(feature = "edhoc")]
        let mut wrapped = [0u8; M];
        #[cfg(feature = "edhoc")]
        let protected = match &self.storage.pending {
            Some(m3) => {
                let n = coap_core::edhoc::transport::wrap_combined(
                    protected,
                    m3.as_slice(),
                    &mut wrapped,
                )
                .map_err(Error::Edhoc)?;
                wrapped.get(..n).unwrap_or_default()
            }
            None => protected,
        };
        let outer =
            Message::parse(protected).map_err(|_| Error::Protect(ProtectError::BufferTooSmall))?;
        let params = RequestParams {
            code: outer.code(),
            ty: request.ty,
            timeout: request.timeout,
            token: None,
        };
        let x = self.client.start_raw(peer, params, |b| {
            for o in outer.options() {
                b.option(o.number, o.value)?;
            }
            b.payload(outer.payload())?;
            Ok(())
        })?;
        Ok((x, binding))
    }

    /// Verifies the response a delivery holds and writes its inner message's parts into
    /// `buf`.
    fn verify<'b>(
        &mut self,
        x: &ExchangeRef<'e, N, M, D, O, K, B>,
        delivery: Option<Delivery>,
        binding: &RequestBinding,
        buf: &'b mut [u8],
    ) -> Result<Response<'b>, Error> {
        let head = match delivery {
            Some(Delivery::Message(head)) => head,
            Some(Delivery::Failed(e)) => return Err(e),
            None => return Err(Error::Timeout),
        };
        let inner = x.endpoint.inner.try_borrow().map_err(|_| Error::Busy)?;
        let body = inner
            .exchanges
            .get(x.index)
            .map(|x| x.body())
            .unwrap_or_default();
        let value = match head.oscore {
            OuterOscore::Absent => {
                #[cfg(feature = "edhoc")]
                if self.storage.pending.is_some() {
                    // RFC 9668 §3.3.1: the server refused the EDHOC part of the combined
                    // request with an EDHOC error; the session never came to be.
                    let refusal = Error::edhoc_refusal(head.code, body);
                    self.storage.clear();
                    return Err(refusal);
                }
                return Err(Error::Unprotected(head.code));
            }
            OuterOscore::TooLong => {
                return Err(Error::Unprotect(coap_core::oscore::UnprotectError::Fields))
            }
            OuterOscore::Value { .. } => head.oscore.value().unwrap_or_default(),
        };
        let ctx = self.storage.context.as_ref().ok_or(Error::NoContext)?;
        // The outer response as it came, but for its Class U options, which are not part
        // of the AAD (RFC 8613 §5.4) and which the inner message does not need.
        let mut outer = [0u8; M];
        let too_small = |_| Error::Unprotect(coap_core::oscore::UnprotectError::BufferTooSmall);
        let mut b = MessageBuilder::new(&mut outer, MessageType::Ack, head.code, 0, &[])
            .map_err(too_small)?;
        b.option(OptionNumber::OSCORE, value).map_err(too_small)?;
        b.payload(body).map_err(too_small)?;
        let n = b.finish();
        let outer = outer.get(..n).unwrap_or_default();
        let verified = unprotect_response(ctx, binding, outer, buf).map_err(Error::Unprotect)?;
        drop(inner);
        #[cfg(feature = "edhoc")]
        {
            // A response under the context: the server has the session (RFC 9668 §3.2.1).
            self.storage.pending = None;
        }
        let (code, content_format, start) = {
            let m = Message::parse(buf.get(..verified.len).unwrap_or_default()).map_err(|_| {
                Error::Unprotect(coap_core::oscore::UnprotectError::MalformedPlaintext)
            })?;
            (
                m.code(),
                m.content_format(),
                verified.len - m.payload().len(),
            )
        };
        buf.copy_within(start..verified.len, 0);
        let payload = buf.get(..verified.len - start).unwrap_or_default();
        Ok(Response {
            code,
            content_format,
            observe: None,
            payload,
        })
    }
}
