//! EDHOC over CoAP (RFC 9528 Appendix A.2) and the EDHOC + OSCORE combined request
//! (RFC 9668), sans-IO:
//!
//! - [`EdhocResource`]: the Responder as a [`Resource`] of the router at
//!   `/.well-known/edhoc`; sessions it establishes wait in [`EdhocResource::poll_established`]
//!   for the runtime to add them to its OSCORE layer;
//! - [`unwrap_combined`] / [`wrap_combined`]: a datagram with the EDHOC option (21), taken
//!   apart before the OSCORE layer (server) or put together after it (client);
//! - [`write_request`] / [`parse_response`]: the Initiator's side of the plain flow.

use lakers::{ConnId, Credential};

use super::responder::{Established, Message4, Responder};
use super::wire::{self, Request, CID_EDHOC_CBOR_SEQ, EDHOC_CBOR_SEQ};
use super::{ignore_ead, CryptoTrait, Error};
use crate::code::Code;
use crate::message::{BuildError, Message, MessageBuilder};
use crate::option::OptionNumber;
use crate::oscore::option::OscoreOption;
use crate::router::Resource;
use crate::server::{IncomingRequest, Outcome, ResponseWriter};

/// The EDHOC option (RFC 9668 §3.1): critical, Unsafe, empty; class U for OSCORE.
pub const EDHOC_OPTION: OptionNumber = OptionNumber(21);

/// The path of the EDHOC resource (RFC 9528 Appendix A.2).
pub const WELL_KNOWN_EDHOC: [&str; 2] = [".well-known", "edhoc"];

/// Largest EDHOC message this build handles (lakers' message buffer).
pub const MAX_MESSAGE_LEN: usize = lakers::MAX_MESSAGE_SIZE_LEN;

/// The CoAP response code of an EDHOC error message (RFC 9528 Appendix A.2.3): 4.00 for
/// the peer's fault, 5.03 when we are out of room (the Initiator may retry later).
pub fn error_code(e: &Error) -> Code {
    match e {
        Error::Busy => Code::SERVICE_UNAVAILABLE,
        _ => Code::BAD_REQUEST,
    }
}

/// The Responder as a CoAP resource (POST only, RFC 9528 Appendix A.2.1). `K` sessions can
/// wait for the runtime to collect them.
pub struct EdhocResource<
    'r,
    'a,
    C: CryptoTrait,
    const N: usize,
    const K: usize = 2,
    T: AsRef<[Credential]> = &'a [Credential],
> {
    responder: &'r mut Responder<'a, C, N, T>,
    message_4: bool,
    established: heapless::Deque<Established, K>,
    taken: &'r dyn Fn(&[u8]) -> bool,
}

impl<'r, 'a, C: CryptoTrait, const N: usize, const K: usize, T: AsRef<[Credential]>>
    EdhocResource<'r, 'a, C, N, K, T>
{
    /// A resource over `responder`; `taken` says whether an OSCORE Recipient ID is in use
    /// (the runtime's layer), so C_R never collides with one.
    pub fn new(
        responder: &'r mut Responder<'a, C, N, T>,
        taken: &'r dyn Fn(&[u8]) -> bool,
    ) -> Self {
        EdhocResource {
            responder,
            message_4: true,
            established: heapless::Deque::new(),
            taken,
        }
    }

    /// Whether message_3 is answered with message_4 (RFC 9528 §5.5). On by default: it
    /// confirms the key to the Initiator at once, and aiocoap 0.4.17 as Initiator expects
    /// it in the 2.04 of the plain flow. (The combined request never gets one, RFC 9668.)
    pub fn with_message_4(mut self, send: bool) -> Self {
        self.message_4 = send;
        self
    }

    /// A session established by a message_3, for the OSCORE layer.
    pub fn poll_established(&mut self) -> Option<Established> {
        self.established.pop_front()
    }

    fn is_taken(&self, id: &[u8]) -> bool {
        (self.taken)(id)
            || self
                .established
                .iter()
                .any(|e| e.context.recipient_id() == id)
    }

    fn handle(
        &mut self,
        now: crate::time::Instant,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<(Code, usize), Error> {
        match wire::parse_request(payload)? {
            Request::Message1(m1) => {
                let taken = |id: &[u8]| self.is_taken(id);
                // Two-phase borrow: collect the predicate's answers before handing the
                // responder out mutably.
                let mut in_use = [false; 48];
                for (n, flag) in in_use.iter_mut().enumerate() {
                    let raw = if n < 24 {
                        n as u8
                    } else {
                        0x20 + (n as u8 - 24)
                    };
                    *flag = taken(&[raw]);
                }
                let m2 = self.responder.message_1(
                    now,
                    m1,
                    ignore_ead,
                    |id| one_byte_taken(&in_use, id),
                    out,
                )?;
                Ok((Code::CHANGED, m2.len))
            }
            Request::Continue { c_r, message } => {
                if wire::is_error(message) {
                    // The Initiator gave up (RFC 9528 §6): forget the handshake.
                    self.responder.abort(&c_r);
                    return Ok((Code::CHANGED, 0));
                }
                if self.established.is_full() {
                    return Err(Error::Busy);
                }
                let ead_4 = if self.message_4 {
                    Message4::Send(None)
                } else {
                    Message4::Omit
                };
                let est = self.responder.message_3(now, &c_r, message, ead_4, out)?;
                if let Some(e) = &est.ead_3 {
                    if e.is_critical {
                        return Err(Error::Ead);
                    }
                }
                let len = est.message_4_len.unwrap_or(0);
                // Cannot fail: fullness was checked above.
                let _ = self.established.push_back(est);
                Ok((Code::CHANGED, len))
            }
        }
    }
}

fn one_byte_taken(in_use: &[bool; 48], id: &[u8]) -> bool {
    match id {
        [b @ 0x00..=0x17] => in_use[usize::from(*b)],
        [b @ 0x20..=0x37] => in_use[24 + usize::from(*b - 0x20)],
        _ => false,
    }
}

impl<A, C: CryptoTrait, const N: usize, const K: usize, T: AsRef<[Credential]>> Resource<A>
    for EdhocResource<'_, '_, C, N, K, T>
{
    fn post(&mut self, req: &IncomingRequest<'_, A>, resp: &mut ResponseWriter<'_>) -> Outcome {
        // RFC 9528 Appendix A.2.1: requests carry application/cid-edhoc+cbor-seq. Some
        // Initiators (aiocoap 0.4.17) send no Content-Format at all: the payload's first
        // item tells message_1 from the rest anyway, so only another format is refused.
        if req
            .message()
            .content_format()
            .is_some_and(|f| f != CID_EDHOC_CBOR_SEQ.0)
        {
            let _ = resp.respond(Code::UNSUPPORTED_CONTENT_FORMAT, None, b"");
            return Outcome::Respond;
        }
        let mut out = [0u8; MAX_MESSAGE_LEN];
        let (code, len, format) = match self.handle(req.now(), req.payload(), &mut out) {
            Ok((code, len)) => (code, len, EDHOC_CBOR_SEQ),
            Err(e) => match e.write_message(&mut out) {
                Ok(len) => (error_code(&e), len, EDHOC_CBOR_SEQ),
                Err(_) => (Code::INTERNAL_SERVER_ERROR, 0, EDHOC_CBOR_SEQ),
            },
        };
        let format = if len == 0 { None } else { Some(format) };
        if resp.respond(code, format, &out[..len]).is_err() {
            resp.set_code(Code::INTERNAL_SERVER_ERROR);
        }
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        // RFC 9528 §10.10: resource type core.edhoc.
        "rt=\"core.edhoc\""
    }
}

/// Writes the request of the plain flow to the EDHOC resource: POST
/// `/.well-known/edhoc`, application/cid-edhoc+cbor-seq, `payload` (from
/// [`wire::write_message_1_request`] or [`wire::write_continue_request`]).
pub fn write_request(b: &mut MessageBuilder<'_>, payload: &[u8]) -> Result<(), BuildError> {
    for segment in WELL_KNOWN_EDHOC {
        b.option_str(OptionNumber::URI_PATH, segment)?;
    }
    b.option_uint(
        OptionNumber::CONTENT_FORMAT,
        u32::from(CID_EDHOC_CBOR_SEQ.0),
    )?;
    b.payload(payload)?;
    Ok(())
}

/// The EDHOC message in a response from the EDHOC resource: message_2 or message_4 on a
/// 2.04, or the peer's error message (RFC 9528 Appendix A.2.3) as [`Error::Peer`].
pub fn parse_response<'m>(response: &Message<'m>) -> Result<&'m [u8], Error> {
    let payload = response.payload();
    if response.code().class() == 2 && !wire::is_error(payload) {
        return Ok(payload);
    }
    match wire::parse_error(payload) {
        Ok(e) => Err(Error::Peer(e.code)),
        Err(_) => Err(Error::Malformed),
    }
}

/// A combined request taken apart (RFC 9668 §3.3.1).
#[derive(Clone, Copy, Debug)]
pub struct Combined<'d> {
    /// C_R: the kid of the OSCORE option.
    pub c_r: ConnId,
    /// message_3, from the start of the payload.
    pub message_3: &'d [u8],
    /// Length of the plain OSCORE request written to `out` (no EDHOC option, the payload
    /// only the OSCORE ciphertext), for the OSCORE layer once the context exists.
    pub len: usize,
}

/// Takes a combined request apart: `Ok(None)` if `datagram` has no EDHOC option.
pub fn unwrap_combined<'d>(
    datagram: &'d [u8],
    out: &mut [u8],
) -> Result<Option<Combined<'d>>, Error> {
    let msg = Message::parse(datagram).map_err(|_| Error::Malformed)?;
    if msg.option(EDHOC_OPTION).is_none() {
        return Ok(None);
    }
    // RFC 9668 §3.3.1: the kid of the OSCORE option is C_R, as a byte string.
    let oscore = msg.option(OptionNumber::OSCORE).ok_or(Error::Malformed)?;
    let kid = OscoreOption::parse(oscore.value)
        .map_err(|_| Error::Malformed)?
        .kid
        .ok_or(Error::Malformed)?;
    let c_r = ConnId::from_slice(kid).ok_or(Error::Malformed)?;
    let (message_3, ciphertext) = wire::split_combined_payload(msg.payload())?;
    let mut b = MessageBuilder::new(out, msg.ty(), msg.code(), msg.message_id(), msg.token())
        .map_err(|_| Error::BufferTooSmall)?;
    for o in msg.options().filter(|o| o.number != EDHOC_OPTION) {
        b.option(o.number, o.value)
            .map_err(|_| Error::BufferTooSmall)?;
    }
    b.payload(ciphertext).map_err(|_| Error::BufferTooSmall)?;
    Ok(Some(Combined {
        c_r,
        message_3,
        len: b.finish(),
    }))
}

/// Puts a combined request together (RFC 9668 §3.2.1): the OSCORE-protected request
/// `protected` gets the EDHOC option and message_3 before its ciphertext.
pub fn wrap_combined(protected: &[u8], message_3: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    let msg = Message::parse(protected).map_err(|_| Error::Malformed)?;
    let mut b = MessageBuilder::new(out, msg.ty(), msg.code(), msg.message_id(), msg.token())
        .map_err(|_| Error::BufferTooSmall)?;
    for o in msg.options() {
        b.option(o.number, o.value)
            .map_err(|_| Error::BufferTooSmall)?;
    }
    b.option(EDHOC_OPTION, &[])
        .map_err(|_| Error::BufferTooSmall)?;
    let payload = msg.payload();
    let buf = b.payload_buf().map_err(|_| Error::BufferTooSmall)?;
    let total = message_3.len() + payload.len();
    let dst = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
    dst[..message_3.len()].copy_from_slice(message_3);
    dst[message_3.len()..].copy_from_slice(payload);
    b.set_payload_len(total)
        .map_err(|_| Error::BufferTooSmall)?;
    Ok(b.finish())
}

/// Writes the response to a combined request whose EDHOC part failed (RFC 9668 §3.3.1:
/// an EDHOC error message, unprotected, 4.00 or 5.03, application/edhoc+cbor-seq).
pub fn write_combined_error(request: &[u8], e: &Error, out: &mut [u8]) -> Result<usize, Error> {
    let msg = Message::parse(request).map_err(|_| Error::Malformed)?;
    let ty = match msg.ty() {
        crate::message::MessageType::Con => crate::message::MessageType::Ack,
        _ => crate::message::MessageType::Non,
    };
    let mut body = [0u8; 96];
    let n = e.write_message(&mut body)?;
    let mut b = MessageBuilder::new(out, ty, error_code(e), msg.message_id(), msg.token())
        .map_err(|_| Error::BufferTooSmall)?;
    b.option_uint(OptionNumber::CONTENT_FORMAT, u32::from(EDHOC_CBOR_SEQ.0))
        .map_err(|_| Error::BufferTooSmall)?;
    b.payload(&body[..n]).map_err(|_| Error::BufferTooSmall)?;
    Ok(b.finish())
}
