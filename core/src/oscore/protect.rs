//! Protecting and verifying messages (RFC 8613 §5, §8): the original message becomes an
//! outer message (header, token, Class U options, the OSCORE option, an outer code) whose
//! payload is the COSE_Encrypt0 ciphertext of the plaintext: the original code, the Class E
//! options and the payload (§5.3).
//!
//! These functions hold no state besides the security context: sequence numbers, the
//! replay window and request/response bindings are the caller's (see the `layer` module).

use crate::code::Code;
use crate::message::{BuildError, Message, MessageBuilder, ParseError};
use crate::option::{self, OptionNumber, Options};

use super::classes::{class_of, is_outer_block, OptionClass};
use super::context::{SecurityContext, MAX_ID_LEN, NONCE_LEN, TAG_LEN};
use super::cose::{aad, AAD_CAP};
use super::option::{OptionError, OscoreOption, PartialIv, MAX_OPTION_LEN};
use super::replay::ReplayError;
use super::sequence::SequenceError;

/// What a response is bound to: the request's kid and Partial IV (the `request_kid` and
/// `request_piv` of the AAD, and the request nonce; RFC 8613 §5.4, §7.3) and its outer
/// code (which decides the response's outer code, §4.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RequestBinding {
    kid: [u8; MAX_ID_LEN],
    kid_len: u8,
    /// The request's Partial IV.
    pub piv: PartialIv,
    /// The request's outer code: 0.05 FETCH for Observe, else 0.02 POST (§4.2).
    pub outer_code: Code,
}

impl RequestBinding {
    /// A binding from its parts (`kid` of at most 7 bytes; longer is cut).
    pub fn new(kid: &[u8], piv: PartialIv, outer_code: Code) -> Self {
        let mut k = [0u8; MAX_ID_LEN];
        let n = kid.len().min(MAX_ID_LEN);
        if let (Some(dst), Some(src)) = (k.get_mut(..n), kid.get(..n)) {
            dst.copy_from_slice(src);
        }
        RequestBinding {
            kid: k,
            kid_len: n as u8,
            piv,
            outer_code,
        }
    }

    /// The request's kid (the client's Sender ID).
    pub fn kid(&self) -> &[u8] {
        self.kid
            .get(..usize::from(self.kid_len))
            .unwrap_or_default()
    }

    /// The outer code of responses to this request: 2.05 to FETCH, 2.04 to POST (§4.2).
    pub fn response_outer_code(&self) -> Code {
        if self.outer_code == Code::FETCH {
            Code::CONTENT
        } else {
            Code::CHANGED
        }
    }
}

/// Why a message cannot be protected.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProtectError {
    /// The original message is not well-formed CoAP.
    #[error("malformed original message: {0}")]
    Malformed(#[from] ParseError),
    /// A request was expected (method code) or a response (2.xx–5.xx).
    #[error("wrong kind of message for this operation")]
    WrongKind,
    /// The original message carries an option OSCORE cannot protect: OSCORE itself
    /// (no nesting, RFC 8613 §4.1.3.7) or Proxy-Uri (decompose it first, §4.1.3.3).
    #[error("option {0} cannot be protected")]
    Forbidden(OptionNumber),
    /// The output buffer is too small.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// No sequence number is available.
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// A response with no known request under this context (no binding).
    #[error("response to an unknown request")]
    NoBinding,
    /// The context is not registered.
    #[error("unknown security context")]
    UnknownContext,
}

impl From<BuildError> for ProtectError {
    fn from(_: BuildError) -> Self {
        ProtectError::BufferTooSmall
    }
}

/// Why a received message is not accepted (RFC 8613 §8.2, §8.4).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UnprotectError {
    /// Not well-formed CoAP at all.
    #[error("malformed message: {0}")]
    Malformed(#[from] ParseError),
    /// No OSCORE option.
    #[error("not an OSCORE message")]
    NotProtected,
    /// A request was expected and a response came, or the reverse.
    #[error("wrong kind of message")]
    WrongKind,
    /// The OSCORE option value is malformed (§6.1).
    #[error("bad OSCORE option: {0}")]
    Option(#[from] OptionError),
    /// A request without Partial IV or kid, a response with kid context (§5, §6.1), or a
    /// notification without Partial IV (§8.4).
    #[error("OSCORE option fields missing or not allowed here")]
    Fields,
    /// The payload is shorter than a tag plus the code byte.
    #[error("ciphertext too short")]
    ShortCiphertext,
    /// No Recipient Context for the kid (and kid context) (§8.2 step 3).
    #[error("security context not found")]
    ContextNotFound,
    /// Replay protection rejected the Partial IV (§7.4).
    #[error("replay: {0}")]
    Replay(#[from] ReplayError),
    /// Decryption or tag verification failed (§8.2 step 7).
    #[error("decryption failed")]
    DecryptionFailed,
    /// The decrypted plaintext is not a valid inner message (bad options, wrong code
    /// class, nested OSCORE option, payload marker without payload).
    #[error("malformed plaintext")]
    MalformedPlaintext,
    /// The message carries outer Block options: it is one fragment of an outer
    /// block-wise transfer (§4.1.3.4.2), which this implementation does not reassemble.
    #[error("outer block-wise transfer not supported")]
    OuterBlockwise,
    /// The output buffer is too small.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// A response that matches no request sent under OSCORE.
    #[error("response to an unknown request")]
    NoBinding,
    /// A response with Inner Observe to a request without Observe (§4.1.3.5.2).
    #[error("unexpected Observe in a response")]
    UnexpectedObserve,
    /// The request needs Echo to prove freshness (Appendix B.1.2) and had none or a
    /// wrong one.
    #[error("freshness not proven: Echo required")]
    EchoRequired,
}

impl UnprotectError {
    /// The unprotected error response a server sends for a request that failed this way
    /// (RFC 8613 §8.2, §7.4), with the diagnostic payload §8.2 recommends; `None` for
    /// failures that are not answered with an OSCORE error (silently dropped or handled
    /// otherwise). The payload never contains anything from the plaintext.
    pub fn response(&self) -> Option<(Code, &'static [u8])> {
        match self {
            UnprotectError::Option(_)
            | UnprotectError::Fields
            | UnprotectError::ShortCiphertext => Some((Code::BAD_OPTION, b"Failed to decode COSE")),
            UnprotectError::OuterBlockwise => Some((Code::BAD_OPTION, b"")),
            UnprotectError::ContextNotFound => {
                Some((Code::UNAUTHORIZED, b"Security context not found"))
            }
            UnprotectError::Replay(_) => Some((Code::UNAUTHORIZED, b"Replay detected")),
            UnprotectError::DecryptionFailed => Some((Code::BAD_REQUEST, b"Decryption failed")),
            UnprotectError::MalformedPlaintext => Some((Code::BAD_REQUEST, b"")),
            UnprotectError::BufferTooSmall => Some((Code::REQUEST_ENTITY_TOO_LARGE, b"")),
            UnprotectError::Malformed(_)
            | UnprotectError::NotProtected
            | UnprotectError::WrongKind
            | UnprotectError::NoBinding
            | UnprotectError::UnexpectedObserve
            | UnprotectError::EchoRequired => None,
        }
    }
}

/// How the Observe option is treated when protecting.
#[derive(Clone, Copy, PartialEq, Eq)]
enum InnerObserve {
    /// Requests: the Inner Observe has the original value (§4.1.3.5.1).
    Original,
    /// Notifications: the Inner Observe is empty; the Outer one keeps the value for
    /// intermediaries (§4.1.3.5.2).
    Empty,
}

/// How the Observe option of the reconstructed message is obtained.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ObserveOut {
    /// Requests: the Inner Observe.
    Inner,
    /// Responses: a notification (Inner Observe present, §4.1.3.5.2) gets a value
    /// derived from its Partial IV; the Outer Observe is ignored.
    FromPiv(Option<PartialIv>),
}

/// The Observe value the reconstructed notification carries: monotonic in the Partial IV
/// (§4.1.3.5.2 orders notifications by Partial IV, RFC 7641 §3.4 by Observe), so the
/// endpoint's ordering agrees with OSCORE's: Partial IV `p` gives `(p + 1) mod 2^24`, which
/// RFC 7641 §3.4's serial arithmetic orders like `p` as long as notifications are less than
/// 2^23 sequence numbers apart. Observe 0 is left to a first response without Partial IV
/// (bound to the registration's nonce), which is older than any numbered notification, even
/// one with Partial IV 0.
pub fn observe_from_piv(piv: PartialIv) -> u32 {
    (piv.value().wrapping_add(1) & 0x00ff_ffff) as u32
}

/// Protects a request with Partial IV `piv` (a fresh Sender Sequence Number). Returns the
/// protected length in `out` and the binding its responses are verified against.
pub fn protect_request(
    ctx: &SecurityContext,
    plain: &[u8],
    piv: PartialIv,
    out: &mut [u8],
) -> Result<(usize, RequestBinding), ProtectError> {
    let m = Message::parse(plain)?;
    if !m.code().is_request() {
        return Err(ProtectError::WrongKind);
    }
    // §4.2: FETCH for Observe requests so OSCORE-unaware proxies can forward them.
    let outer_code = if m.observe().is_some() {
        Code::FETCH
    } else {
        Code::POST
    };
    let kid_context = match ctx.kid_context {
        super::context::KidContext::Send => ctx.id_context(),
        super::context::KidContext::Omit => None,
    };
    let option = OscoreOption {
        partial_iv: Some(piv),
        kid_context,
        kid: Some(ctx.sender_id()),
    };
    let nonce = ctx.nonce(ctx.sender_id(), piv);
    let binding = RequestBinding::new(ctx.sender_id(), piv, outer_code);
    let len = seal(
        ctx,
        &m,
        outer_code,
        &option,
        InnerObserve::Original,
        &nonce,
        &binding,
        out,
    )?;
    Ok((len, binding))
}

/// Protects a response to the request `binding` describes. With `own_piv` the response
/// carries that Partial IV (a fresh Sender Sequence Number: required for notifications,
/// §4.1.3.5.2, and after a reboot, Appendix B.1.2); without, it reuses the request nonce
/// (§5.2; only for a single response per request).
pub fn protect_response(
    ctx: &SecurityContext,
    binding: &RequestBinding,
    plain: &[u8],
    own_piv: Option<PartialIv>,
    out: &mut [u8],
) -> Result<usize, ProtectError> {
    let m = Message::parse(plain)?;
    if !m.code().is_response() {
        return Err(ProtectError::WrongKind);
    }
    let option = OscoreOption {
        partial_iv: own_piv,
        kid_context: None,
        kid: None,
    };
    let nonce = match own_piv {
        Some(p) => ctx.nonce(ctx.sender_id(), p),
        None => ctx.nonce(binding.kid(), binding.piv),
    };
    seal(
        ctx,
        &m,
        binding.response_outer_code(),
        &option,
        InnerObserve::Empty,
        &nonce,
        binding,
        out,
    )
}

#[allow(clippy::too_many_arguments)]
fn seal(
    ctx: &SecurityContext,
    m: &Message<'_>,
    outer_code: Code,
    option: &OscoreOption<'_>,
    inner_observe: InnerObserve,
    nonce: &[u8; NONCE_LEN],
    binding: &RequestBinding,
    out: &mut [u8],
) -> Result<usize, ProtectError> {
    let mut opt_buf = [0u8; MAX_OPTION_LEN];
    let opt_len = option
        .encode(&mut opt_buf)
        .map_err(|_| ProtectError::BufferTooSmall)?;
    let mut b = MessageBuilder::new(out, m.ty(), outer_code, m.message_id(), m.token())?;
    for o in m.options() {
        match class_of(o.number) {
            OptionClass::Forbidden => return Err(ProtectError::Forbidden(o.number)),
            // §4.1.2: Class U options go to the outer message as they are; Observe keeps
            // its value outside too, for intermediaries (§4.1.3.5).
            OptionClass::Outer | OptionClass::Both => {
                b.option(o.number, o.value)?;
            }
            OptionClass::Inner => {}
        }
    }
    b.option(
        OptionNumber::OSCORE,
        opt_buf.get(..opt_len).unwrap_or_default(),
    )?;
    // §5.3: plaintext = code, Class E options (deltas among themselves), payload.
    let buf = b.payload_buf()?;
    let mut pos = 0;
    put(buf, &mut pos, &[m.code().0])?;
    let mut prev = 0u16;
    for o in m.options() {
        if !matches!(class_of(o.number), OptionClass::Inner | OptionClass::Both) {
            continue;
        }
        let value = if o.number == OptionNumber::OBSERVE && inner_observe == InnerObserve::Empty {
            &[][..]
        } else {
            o.value
        };
        put_option(buf, &mut pos, &mut prev, o.number, value)?;
    }
    if !m.payload().is_empty() {
        put(buf, &mut pos, &[0xff])?;
        put(buf, &mut pos, m.payload())?;
    }
    let mut aad_buf = [0u8; AAD_CAP];
    let aad_len = aad(binding.kid(), binding.piv, &mut aad_buf);
    let (pt, rest) = buf.split_at_mut(pos);
    let tag_dst = rest
        .get_mut(..TAG_LEN)
        .ok_or(ProtectError::BufferTooSmall)?;
    let tag = ctx
        .seal(nonce, aad_buf.get(..aad_len).unwrap_or_default(), pt)
        .ok_or(ProtectError::BufferTooSmall)?;
    tag_dst.copy_from_slice(&tag);
    b.set_payload_len(pos + TAG_LEN)?;
    Ok(b.finish())
}

fn put(buf: &mut [u8], pos: &mut usize, bytes: &[u8]) -> Result<(), ProtectError> {
    let end = *pos + bytes.len();
    buf.get_mut(*pos..end)
        .ok_or(ProtectError::BufferTooSmall)?
        .copy_from_slice(bytes);
    *pos = end;
    Ok(())
}

fn put_option(
    buf: &mut [u8],
    pos: &mut usize,
    prev: &mut u16,
    number: OptionNumber,
    value: &[u8],
) -> Result<(), ProtectError> {
    // Options come in order from a parsed message; a decrease would be a bug, not input.
    let delta = number
        .0
        .checked_sub(*prev)
        .ok_or(ProtectError::BufferTooSmall)?;
    let h = option::header_len(delta, value.len());
    let dst = buf
        .get_mut(*pos..*pos + h)
        .ok_or(ProtectError::BufferTooSmall)?;
    option::write_header(delta, value.len(), dst);
    *pos += h;
    put(buf, pos, value)?;
    *prev = number.0;
    Ok(())
}

/// A verified request: the reconstructed inner message's length in `out`, and the
/// binding for its responses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VerifiedRequest {
    /// Length of the inner message at the start of the output buffer.
    pub len: usize,
    /// What responses to it are bound to.
    pub binding: RequestBinding,
}

/// Parses the outer parts of a received OSCORE message: the message and its OSCORE
/// option. Outer Block options are refused (§4.1.3.4.2, not reassembled here).
pub fn parse_outer(datagram: &[u8]) -> Result<(Message<'_>, OscoreOption<'_>), UnprotectError> {
    let m = Message::parse(datagram)?;
    let value = m
        .option(OptionNumber::OSCORE)
        .ok_or(UnprotectError::NotProtected)?
        .value;
    let option = OscoreOption::parse(value)?;
    if m.options().any(|o| is_outer_block(o.number)) {
        return Err(UnprotectError::OuterBlockwise);
    }
    Ok((m, option))
}

/// Verifies and decrypts a request (RFC 8613 §8.2 steps 2–9) and writes the
/// reconstructed inner message to `out`. The replay window is NOT consulted: the caller
/// checks `ctx.replay` before and records the Partial IV after success (§7.4).
///
/// `out` holds the ciphertext during decryption (at its end) and the inner message (at
/// its start): twice the datagram length always suffices.
pub fn unprotect_request(
    ctx: &SecurityContext,
    datagram: &[u8],
    out: &mut [u8],
) -> Result<VerifiedRequest, UnprotectError> {
    let (m, option) = parse_outer(datagram)?;
    if !m.code().is_request() {
        return Err(UnprotectError::WrongKind);
    }
    let (Some(kid), Some(piv)) = (option.kid, option.partial_iv) else {
        return Err(UnprotectError::Fields);
    };
    if kid != ctx.recipient_id() {
        return Err(UnprotectError::ContextNotFound);
    }
    if option.kid_context.is_some() && option.kid_context != ctx.id_context() {
        return Err(UnprotectError::ContextNotFound);
    }
    let binding = RequestBinding::new(kid, piv, m.code());
    let nonce = ctx.nonce(kid, piv);
    let (len, _) = open(ctx, &m, &nonce, &binding, ObserveOut::Inner, out)?;
    Ok(VerifiedRequest { len, binding })
}

/// A verified response.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VerifiedResponse {
    /// Length of the inner message at the start of the output buffer.
    pub len: usize,
    /// The response's own Partial IV, if it had one.
    pub piv: Option<PartialIv>,
    /// Whether it is a notification: it has an Inner Observe option (§4.1.3.5.2; the
    /// Outer Observe is only for intermediaries and may be absent).
    pub notification: bool,
}

/// Verifies and decrypts a response to the request `binding` describes (RFC 8613 §8.4)
/// and writes the reconstructed inner message to `out`. A notification (Inner Observe
/// present) must carry a Partial IV (§8.4) and gets Observe = [`observe_from_piv`] in the
/// inner message. Notification ordering and replay are the caller's (§7.4.1).
pub fn unprotect_response(
    ctx: &SecurityContext,
    binding: &RequestBinding,
    datagram: &[u8],
    out: &mut [u8],
) -> Result<VerifiedResponse, UnprotectError> {
    let (m, option) = parse_outer(datagram)?;
    if !m.code().is_response() {
        return Err(UnprotectError::WrongKind);
    }
    if option.kid_context.is_some() {
        // §5: kid context SHALL NOT be present in responses.
        return Err(UnprotectError::Fields);
    }
    if option.kid.is_some_and(|k| k != ctx.recipient_id()) {
        return Err(UnprotectError::ContextNotFound);
    }
    let nonce = match option.partial_iv {
        Some(p) => ctx.nonce(ctx.recipient_id(), p),
        None => ctx.nonce(binding.kid(), binding.piv),
    };
    let (len, notification) = open(
        ctx,
        &m,
        &nonce,
        binding,
        ObserveOut::FromPiv(option.partial_iv),
        out,
    )?;
    Ok(VerifiedResponse {
        len,
        piv: option.partial_iv,
        notification,
    })
}

fn open(
    ctx: &SecurityContext,
    m: &Message<'_>,
    nonce: &[u8; NONCE_LEN],
    binding: &RequestBinding,
    observe: ObserveOut,
    out: &mut [u8],
) -> Result<(usize, bool), UnprotectError> {
    let ct = m.payload();
    if ct.len() < TAG_LEN + 1 {
        return Err(UnprotectError::ShortCiphertext);
    }
    let split = out
        .len()
        .checked_sub(ct.len())
        .ok_or(UnprotectError::BufferTooSmall)?;
    let (head, tail) = out.split_at_mut(split);
    tail.copy_from_slice(ct);
    let result = open_in(ctx, m, nonce, binding, observe, head, tail);
    // The plaintext copy at the end of `out` is not part of the result: wipe it.
    tail.fill(0);
    result
}

fn open_in(
    ctx: &SecurityContext,
    m: &Message<'_>,
    nonce: &[u8; NONCE_LEN],
    binding: &RequestBinding,
    observe: ObserveOut,
    head: &mut [u8],
    tail: &mut [u8],
) -> Result<(usize, bool), UnprotectError> {
    let pt_len = tail
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(UnprotectError::ShortCiphertext)?;
    let (pt, tag) = tail.split_at_mut(pt_len);
    let tag: [u8; TAG_LEN] = (&*tag)
        .try_into()
        .map_err(|_| UnprotectError::ShortCiphertext)?;
    let mut aad_buf = [0u8; AAD_CAP];
    let aad_len = aad(binding.kid(), binding.piv, &mut aad_buf);
    if !ctx.open(nonce, aad_buf.get(..aad_len).unwrap_or_default(), pt, &tag) {
        return Err(UnprotectError::DecryptionFailed);
    }
    let pt: &[u8] = pt;
    let (&code, rest) = pt.split_first().ok_or(UnprotectError::MalformedPlaintext)?;
    let code = Code(code);
    let kind_ok = match observe {
        ObserveOut::Inner => code.is_request(),
        ObserveOut::FromPiv(_) => code.is_response(),
    };
    if !kind_ok {
        return Err(UnprotectError::MalformedPlaintext);
    }
    let marker = Options::validate(rest).map_err(|_| UnprotectError::MalformedPlaintext)?;
    let inner = rest.get(..marker).unwrap_or_default();
    let payload = rest.get(marker + 1..).unwrap_or_default();
    if marker < rest.len() && payload.is_empty() {
        // RFC 7252 §3: a payload marker followed by no payload is a format error.
        return Err(UnprotectError::MalformedPlaintext);
    }
    if Options::new(inner).any(|o| o.number == OptionNumber::OSCORE) {
        return Err(UnprotectError::MalformedPlaintext);
    }
    let inner_observe = Options::new(inner).any(|o| o.number == OptionNumber::OBSERVE);
    // §8.4 (Supporting Observe, step B): notifications carry a Partial IV, and the Observe
    // value the endpoint sees follows it. The first response to a registration may come
    // without one, bound to the request's nonce (aiocoap 0.4 answers so; the layer accepts
    // that once per request): it is the oldest state, Observe 0.
    let notification_observe = match observe {
        ObserveOut::FromPiv(piv) if inner_observe => Some(piv.map_or(0, observe_from_piv)),
        _ => None,
    };
    let mut b = MessageBuilder::new(head, m.ty(), code, m.message_id(), m.token())
        .map_err(|_| UnprotectError::BufferTooSmall)?;
    let build = |e: BuildError| match e {
        BuildError::BufferTooSmall => UnprotectError::BufferTooSmall,
        _ => UnprotectError::MalformedPlaintext,
    };
    for o in Options::new(inner) {
        if o.number == OptionNumber::OBSERVE && observe != ObserveOut::Inner {
            continue;
        }
        b.option(o.number, o.value).map_err(build)?;
    }
    // §8.2 steps 2 and 8: outer copies of Class E options are discarded, as are outer
    // options that also came inside; Class U options stay.
    for o in m.options() {
        if o.number == OptionNumber::OSCORE
            || o.number == OptionNumber::OBSERVE
            || class_of(o.number) == OptionClass::Inner
            || Options::new(inner).any(|i| i.number == o.number)
        {
            continue;
        }
        b.option(o.number, o.value).map_err(build)?;
    }
    if let Some(value) = notification_observe {
        b.option_uint(OptionNumber::OBSERVE, value).map_err(build)?;
    }
    b.payload(payload).map_err(build)?;
    Ok((b.finish(), inner_observe))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageType;
    use crate::oscore::context::ContextParams;

    fn pair() -> (SecurityContext, SecurityContext) {
        let p = |s: &'static [u8], r: &'static [u8]| ContextParams {
            master_secret: b"secret",
            master_salt: b"",
            id_context: None,
            sender_id: s,
            recipient_id: r,
        };
        (
            SecurityContext::derive(&p(b"c", b"s")).unwrap(),
            SecurityContext::derive(&p(b"s", b"c")).unwrap(),
        )
    }

    fn notification(observe: u32, out: &mut [u8]) -> usize {
        let mut b = MessageBuilder::new(out, MessageType::Non, Code::CONTENT, 7, &[1]).unwrap();
        b.option_uint(OptionNumber::OBSERVE, observe).unwrap();
        b.payload(b"22.5").unwrap();
        b.finish()
    }

    /// §4.1.3.5.2: a notification is recognised by its Inner Observe; the Outer Observe is
    /// for intermediaries and may be missing. The inner message gets the Partial IV's low
    /// 24 bits as Observe value.
    #[test]
    fn notification_is_inner_observe_and_ordered_by_partial_iv() {
        let (client, server) = pair();
        let binding = RequestBinding::new(b"c", PartialIv::new(3).unwrap(), Code::FETCH);
        let mut plain = [0u8; 64];
        let n = notification(900, &mut plain);
        let mut wire = [0u8; 128];
        let piv = PartialIv::new(0x0102_0304).unwrap();
        let len = protect_response(&server, &binding, &plain[..n], Some(piv), &mut wire).unwrap();
        let m = Message::parse(&wire[..len]).unwrap();
        assert_eq!(m.code(), Code::CONTENT, "2.05 answers FETCH (§4.2)");
        assert_eq!(m.observe(), Some(900), "Outer Observe keeps the value");
        // Strip the Outer Observe, as an intermediary without Observe support might.
        let mut stripped = [0u8; 128];
        let mut b = MessageBuilder::new(&mut stripped, m.ty(), m.code(), 7, m.token()).unwrap();
        for o in m.options().filter(|o| o.number != OptionNumber::OBSERVE) {
            b.option(o.number, o.value).unwrap();
        }
        b.payload(m.payload()).unwrap();
        let sl = b.finish();
        let mut out = [0u8; 256];
        for datagram in [&wire[..len], &stripped[..sl]] {
            let v = unprotect_response(&client, &binding, datagram, &mut out).unwrap();
            assert!(v.notification);
            let inner = Message::parse(&out[..v.len]).unwrap();
            assert_eq!(inner.observe(), Some(0x02_0305));
            assert_eq!(inner.payload(), b"22.5");
        }
        // Without its own Partial IV (the first response to the registration, bound to the
        // request nonce, as aiocoap sends it) it is the oldest notification: Observe 0. The
        // layer accepts that once per request.
        let len = protect_response(&server, &binding, &plain[..n], None, &mut wire).unwrap();
        let v = unprotect_response(&client, &binding, &wire[..len], &mut out).unwrap();
        assert!(v.notification && v.piv.is_none());
        assert_eq!(Message::parse(&out[..v.len]).unwrap().observe(), Some(0));
    }

    #[test]
    fn forbidden_options_and_small_buffers_are_errors() {
        let (client, server) = pair();
        let mut plain = [0u8; 64];
        let mut b = MessageBuilder::new(&mut plain, MessageType::Con, Code::GET, 1, &[]).unwrap();
        b.option_str(OptionNumber::PROXY_URI, "coap://x/y").unwrap();
        let n = b.finish();
        let piv = PartialIv::new(1).unwrap();
        let mut wire = [0u8; 128];
        assert_eq!(
            protect_request(&client, &plain[..n], piv, &mut wire),
            Err(ProtectError::Forbidden(OptionNumber::PROXY_URI))
        );
        let mut b = MessageBuilder::new(&mut plain, MessageType::Con, Code::GET, 1, &[]).unwrap();
        b.payload(&[7; 40]).unwrap();
        let n = b.finish();
        assert_eq!(
            protect_request(&client, &plain[..n], piv, &mut wire[..30]),
            Err(ProtectError::BufferTooSmall)
        );
        let (len, _) = protect_request(&client, &plain[..n], piv, &mut wire).unwrap();
        let mut out = [0u8; 60];
        assert_eq!(
            unprotect_request(&server, &wire[..len], &mut out).map(|_| ()),
            Err(UnprotectError::BufferTooSmall)
        );
        let mut out = [0u8; 200];
        let v = unprotect_request(&server, &wire[..len], &mut out).unwrap();
        assert_eq!(&out[..v.len], &plain[..n]);
        // The decryption area (the end of `out`) is wiped: no plaintext left behind.
        assert!(out[v.len..].iter().all(|b| *b == 0));
    }
}
