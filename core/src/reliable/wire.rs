//! The message format of CoAP over reliable transports (RFC 8323 §3.2, §4.2): a zero-copy
//! view of one complete message and a writer into a caller's buffer.
//!
//! Over TCP and TLS a message is `Len|TKL`, an extended length of 0, 1, 2 or 4 bytes, the
//! code, the token, then options and payload exactly as over UDP (RFC 7252 §3.1); there
//! is no version, type or Message ID. `Len` counts only the options, the payload marker and
//! the payload (§3.2). Over WebSockets the frame carries the length, so `Len` is zero and
//! there is no extended length (§4.2). Options are read and written by the same code as
//! the UDP format ([`Options`], [`MessageBuilder`]).

use crate::code::Code;
use crate::message::{BuildError, Message, MessageBuilder, MessageType, ParseError, MAX_TOKEN_LEN};
use crate::option::{CoapOption, OptionNumber, Options};

/// How messages are delimited on the transport.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Framing {
    /// A byte stream (TCP, TLS): the `Len` nibble and extended length delimit messages
    /// (RFC 8323 §3.2).
    Stream,
    /// One message per WebSocket binary frame: `Len` is zero and there is no extended
    /// length (RFC 8323 §4.2).
    WebSocket,
}

/// `Len` nibble values 13, 14 and 15 announce 1, 2 and 4 extended length bytes holding the
/// length minus these offsets (RFC 8323 §3.2).
const EXT1_OFFSET: u64 = 13;
const EXT2_OFFSET: u64 = 269;
const EXT4_OFFSET: u64 = 65805;
/// The largest `Len` the format can express.
pub const MAX_BODY_LEN: u64 = 0xffff_ffff + EXT4_OFFSET;

/// Why bytes are not a well-formed RFC 8323 message.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WireError {
    /// The bytes end inside the length, code or token (a complete message was expected).
    #[error("message shorter than its header")]
    Truncated,
    /// TKL 9–15 (reserved, RFC 8323 §3.2 with RFC 7252 §3).
    #[error("token length {0} is reserved")]
    ReservedTokenLength(u8),
    /// The bytes are not exactly one message of the length the header declares.
    #[error("message length {actual} differs from the {declared} bytes its header declares")]
    LengthMismatch {
        /// Length from the header.
        declared: u64,
        /// Bytes given.
        actual: usize,
    },
    /// A WebSocket message whose `Len` nibble is not zero (RFC 8323 §4.2).
    #[error("Len nibble {0} in a WebSocket message (must be 0)")]
    WebSocketLength(u8),
    /// The options, payload marker or Empty-message rules of RFC 7252 §3 are violated.
    #[error("malformed message: {0}")]
    Format(ParseError),
}

impl From<crate::option::OptionWireError> for WireError {
    fn from(e: crate::option::OptionWireError) -> Self {
        WireError::Format(e.into())
    }
}

/// The header of a message as far as it delimits the message: what a stream framer needs
/// before the body has arrived.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FrameHead {
    /// Bytes of `Len|TKL`, extended length, code and token.
    pub header_len: usize,
    /// The whole message: header plus `Len` (u64: a 4-byte extended length can exceed a
    /// 32-bit `usize`).
    pub total_len: u64,
    /// Token length.
    pub token_len: u8,
}

impl FrameHead {
    /// Reads the header at the start of `bytes` (stream framing). `Ok(None)` when more
    /// bytes are needed to know the message length.
    pub fn peek(bytes: &[u8]) -> Result<Option<FrameHead>, WireError> {
        let Some(&first) = bytes.first() else {
            return Ok(None);
        };
        let (len_nibble, tkl) = (first >> 4, first & 0x0f);
        if usize::from(tkl) > MAX_TOKEN_LEN {
            // RFC 8974's extended token lengths are not supported (nor by the UDP format).
            return Err(WireError::ReservedTokenLength(tkl));
        }
        let ext = ext_len_bytes(len_nibble);
        let Some(ext_bytes) = bytes.get(1..1 + ext) else {
            return Ok(None);
        };
        let body = body_len(len_nibble, ext_bytes);
        let header_len = 1 + ext + 1 + usize::from(tkl);
        Ok(Some(FrameHead {
            header_len,
            total_len: header_len as u64 + body,
            token_len: tkl,
        }))
    }
}

/// Extended length bytes after a `Len` nibble.
const fn ext_len_bytes(nibble: u8) -> usize {
    match nibble {
        13 => 1,
        14 => 2,
        15 => 4,
        _ => 0,
    }
}

/// The body length from the nibble and its (complete) extended bytes.
fn body_len(nibble: u8, ext: &[u8]) -> u64 {
    let be = ext.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    match nibble {
        13 => be + EXT1_OFFSET,
        14 => be + EXT2_OFFSET,
        15 => be + EXT4_OFFSET,
        n => u64::from(n),
    }
}

/// The `Len` nibble and extended length bytes for a body length (RFC 8323 §3.2).
fn encode_len(body: u64, out: &mut [u8; 4]) -> (u8, usize) {
    if body < EXT1_OFFSET {
        (body as u8, 0)
    } else if body < EXT2_OFFSET {
        out[0] = (body - EXT1_OFFSET) as u8;
        (13, 1)
    } else if body < EXT4_OFFSET {
        out[..2].copy_from_slice(&((body - EXT2_OFFSET) as u16).to_be_bytes());
        (14, 2)
    } else {
        let v = u32::try_from(body - EXT4_OFFSET).unwrap_or(u32::MAX);
        *out = v.to_be_bytes();
        (15, 4)
    }
}

/// A zero-copy view of one well-formed RFC 8323 message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReliableMessage<'a> {
    code: Code,
    token: &'a [u8],
    options: &'a [u8],
    payload: &'a [u8],
}

impl<'a> ReliableMessage<'a> {
    /// Parses exactly one message (a frame from the stream framer, or one WebSocket
    /// frame's payload) with the strictness of the UDP view: reserved token lengths,
    /// option encoding errors, a payload marker without payload and a non-empty 0.00
    /// message are errors.
    pub fn parse(bytes: &'a [u8], framing: Framing) -> Result<ReliableMessage<'a>, WireError> {
        let (header_len, tkl) = match framing {
            Framing::Stream => {
                let head = FrameHead::peek(bytes)?.ok_or(WireError::Truncated)?;
                if head.total_len != bytes.len() as u64 {
                    return Err(WireError::LengthMismatch {
                        declared: head.total_len,
                        actual: bytes.len(),
                    });
                }
                (head.header_len, usize::from(head.token_len))
            }
            Framing::WebSocket => {
                let first = *bytes.first().ok_or(WireError::Truncated)?;
                if first >> 4 != 0 {
                    return Err(WireError::WebSocketLength(first >> 4));
                }
                let tkl = first & 0x0f;
                if usize::from(tkl) > MAX_TOKEN_LEN {
                    return Err(WireError::ReservedTokenLength(tkl));
                }
                (2 + usize::from(tkl), usize::from(tkl))
            }
        };
        let head = bytes.get(..header_len).ok_or(WireError::Truncated)?;
        let code = Code(head[header_len - 1 - tkl]);
        let token = &head[header_len - tkl..];
        let rest = bytes.get(header_len..).unwrap_or_default();
        let marker = Options::validate(rest)?;
        let (options, payload) = rest.split_at(marker);
        let payload = match payload.split_first() {
            None => payload,
            Some((_, [])) => return Err(WireError::Format(ParseError::EmptyPayload)),
            Some((_, p)) => p,
        };
        // RFC 7252 §4.1 via RFC 8323 §3.4: an Empty message has nothing but its code.
        if code == Code::EMPTY && !(token.is_empty() && rest.is_empty()) {
            return Err(WireError::Format(ParseError::EmptyMessageNotEmpty));
        }
        Ok(ReliableMessage {
            code,
            token,
            options,
            payload,
        })
    }

    /// Code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// Token (0–8 bytes).
    pub fn token(&self) -> &'a [u8] {
        self.token
    }

    /// All options in wire (ascending number) order.
    pub fn options(&self) -> Options<'a> {
        Options::new(self.options)
    }

    /// The raw encoded options.
    pub fn options_bytes(&self) -> &'a [u8] {
        self.options
    }

    /// Payload (empty when there is none).
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The first option with this number.
    pub fn option(&self, number: OptionNumber) -> Option<CoapOption<'a>> {
        self.options().find_number(number)
    }

    /// All values of the options with this number, in order.
    pub fn options_of(&self, number: OptionNumber) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.options()
            .skip_while(move |o| o.number < number)
            .take_while(move |o| o.number == number)
            .map(|o| o.value)
    }

    /// The first option with this number as an unsigned integer.
    pub fn uint_option(&self, number: OptionNumber) -> Option<u32> {
        self.option(number).and_then(|o| o.as_uint())
    }

    /// Observe, if present.
    pub fn observe(&self) -> Option<u32> {
        self.uint_option(OptionNumber::OBSERVE)
    }

    /// Uri-Path segments, undecoded bytes.
    pub fn uri_path(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.options_of(OptionNumber::URI_PATH)
    }

    /// The same message as a UDP [`Message`] view, for code written against it (server
    /// handlers, the router, block-wise and observe helpers). Reliable transports have no
    /// type or Message ID: the view says NON (no ACK is owed, RFC 8323 §3.3) and 0.
    pub fn as_udp_view(&self) -> Message<'a> {
        Message::from_parts(
            MessageType::Non,
            self.code,
            self.token,
            self.options,
            self.payload,
        )
    }
}

/// Builds an RFC 8323 message into a caller's buffer, without allocation.
///
/// Options and payload go through the UDP [`MessageBuilder`] (same ordering rules, same
/// encoding), available as [`ReliableBuilder::builder`] for code written against it; the
/// header is written by [`ReliableBuilder::finish`] once the length is known. The message
/// type and Message ID of the UDP builder do not exist here and are ignored.
#[derive(Debug)]
pub struct ReliableBuilder<'b> {
    inner: MessageBuilder<'b>,
    framing: Framing,
    token_len: usize,
}

/// Bytes kept in front of the token while building: `Len|TKL`, 4 extended length bytes
/// at most, and the code (stream framing); `Len|TKL` and code (WebSocket).
const fn reserved(framing: Framing) -> usize {
    match framing {
        Framing::Stream => 6,
        Framing::WebSocket => 2,
    }
}

impl<'b> ReliableBuilder<'b> {
    /// Starts a message with code and token.
    pub fn new(
        buf: &'b mut [u8],
        framing: Framing,
        code: Code,
        token: &[u8],
    ) -> Result<Self, BuildError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(BuildError::TokenTooLong);
        }
        let start = reserved(framing);
        let head_len = start + token.len();
        let head = buf.get_mut(..head_len).ok_or(BuildError::BufferTooSmall)?;
        head[1] = code.0;
        head[start..].copy_from_slice(token);
        Ok(ReliableBuilder {
            inner: MessageBuilder::after_header(buf, head_len)?,
            framing,
            token_len: token.len(),
        })
    }

    /// The option and payload writer (the UDP builder's; its type and Message ID calls
    /// have no effect on the result).
    pub fn builder(&mut self) -> &mut MessageBuilder<'b> {
        &mut self.inner
    }

    /// Adds an option with a raw value.
    pub fn option(&mut self, number: OptionNumber, value: &[u8]) -> Result<&mut Self, BuildError> {
        self.inner.option(number, value)?;
        Ok(self)
    }

    /// Adds a uint option, minimally encoded.
    pub fn option_uint(
        &mut self,
        number: OptionNumber,
        value: u32,
    ) -> Result<&mut Self, BuildError> {
        self.inner.option_uint(number, value)?;
        Ok(self)
    }

    /// Adds a string option.
    pub fn option_str(
        &mut self,
        number: OptionNumber,
        value: &str,
    ) -> Result<&mut Self, BuildError> {
        self.inner.option_str(number, value)?;
        Ok(self)
    }

    /// Appends the payload marker and payload (nothing for an empty payload).
    pub fn payload(&mut self, payload: &[u8]) -> Result<&mut Self, BuildError> {
        self.inner.payload(payload)?;
        Ok(self)
    }

    /// The code.
    pub fn code(&self) -> Code {
        self.inner.code()
    }

    /// Bytes of the message so far, counting the largest possible header.
    pub fn written(&self) -> usize {
        self.inner.written()
    }

    /// The option and payload writer by value, for code that owns one (the server's
    /// [`ResponseWriter`](crate::ResponseWriter)); [`ReliableBuilder::from_parts`] puts it
    /// back.
    pub(crate) fn into_parts(self) -> (MessageBuilder<'b>, Framing, usize) {
        (self.inner, self.framing, self.token_len)
    }

    /// The builder [`ReliableBuilder::into_parts`] took apart.
    pub(crate) fn from_parts(
        inner: MessageBuilder<'b>,
        framing: Framing,
        token_len: usize,
    ) -> Self {
        ReliableBuilder {
            inner,
            framing,
            token_len,
        }
    }

    /// Writes the header and returns the message's length at the start of the buffer.
    pub fn finish(self) -> Result<usize, BuildError> {
        let (buf, len) = self.inner.into_parts();
        let start = reserved(self.framing);
        let body_from = start + self.token_len;
        let body = (len - body_from) as u64;
        let tkl = self.token_len as u8;
        match self.framing {
            // The builder's layout already is the WebSocket header (§4.2).
            Framing::WebSocket => {
                buf[0] = tkl;
                Ok(len)
            }
            Framing::Stream => {
                if body > MAX_BODY_LEN {
                    return Err(BuildError::ValueTooLong);
                }
                let code = buf[1];
                let mut ext = [0u8; 4];
                let (nibble, n) = encode_len(body, &mut ext);
                // Slide token, options and payload left onto the final header's end.
                let shift = 4 - n;
                buf.copy_within(start..len, start - shift);
                buf[0] = (nibble << 4) | tkl;
                buf[1..1 + n].copy_from_slice(&ext[..n]);
                buf[1 + n] = code;
                Ok(len - shift)
            }
        }
    }
}
