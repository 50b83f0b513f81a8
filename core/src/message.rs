//! The message format (RFC 7252 §3): a zero-copy view over a received datagram and a
//! writer that builds one into a caller's buffer.

use crate::code::Code;
use crate::option::{
    self, encode_uint, header_len, read_option, write_header, CoapOption, OptionNumber,
    OptionWireError, Options,
};

/// Maximum token length (RFC 7252 §3: TKL 9–15 are reserved).
pub const MAX_TOKEN_LEN: usize = 8;

/// The payload marker that separates options from payload.
const PAYLOAD_MARKER: u8 = 0xff;

/// The message type (RFC 7252 §3, §4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MessageType {
    /// Confirmable: retransmitted until acknowledged.
    Con = 0,
    /// Non-confirmable.
    Non = 1,
    /// Acknowledgement.
    Ack = 2,
    /// Reset.
    Rst = 3,
}

impl MessageType {
    const fn from_bits(b: u8) -> MessageType {
        match b & 3 {
            0 => MessageType::Con,
            1 => MessageType::Non,
            2 => MessageType::Ack,
            _ => MessageType::Rst,
        }
    }

    /// Short name as used in traces: "CON", "NON", "ACK", "RST".
    pub const fn name(self) -> &'static str {
        match self {
            MessageType::Con => "CON",
            MessageType::Non => "NON",
            MessageType::Ack => "ACK",
            MessageType::Rst => "RST",
        }
    }
}

/// Why a datagram is not a well-formed CoAP message. Each rule of RFC 7252 §3 has its own
/// variant: the message layer decides RST (CON) or silent drop (NON) from them (§4.2, §4.3).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ParseError {
    /// Fewer than the 4 header bytes.
    #[error("datagram shorter than the 4-byte header")]
    TooShort,
    /// Version field other than 1; such messages are silently ignored (§3).
    #[error("unknown version {0}")]
    UnknownVersion(u8),
    /// TKL 9–15 (§3: reserved, a message format error).
    #[error("token length {0} is reserved")]
    ReservedTokenLength(u8),
    /// The token runs past the end of the datagram.
    #[error("token runs past the end of the datagram")]
    TokenTruncated,
    /// Option delta nibble 15 on a byte other than the payload marker.
    #[error("option delta nibble 15 outside the payload marker")]
    ReservedOptionDelta,
    /// Option length nibble 15.
    #[error("option length nibble 15 is reserved")]
    ReservedOptionLength,
    /// The extended delta or length bytes run past the end.
    #[error("extended option delta or length runs past the end")]
    OptionHeaderTruncated,
    /// An option value runs past the end.
    #[error("option value runs past the end")]
    OptionValueTruncated,
    /// The accumulated option number exceeds 65535.
    #[error("option number exceeds 65535")]
    OptionNumberOverflow,
    /// A payload marker followed by a zero-length payload (§3).
    #[error("payload marker followed by no payload")]
    EmptyPayload,
    /// An Empty message (0.00) with a token, options or payload (§4.1).
    #[error("empty message (0.00) carries a token, options or payload")]
    EmptyMessageNotEmpty,
}

impl From<OptionWireError> for ParseError {
    fn from(e: OptionWireError) -> Self {
        match e {
            OptionWireError::ReservedDelta => ParseError::ReservedOptionDelta,
            OptionWireError::ReservedLength => ParseError::ReservedOptionLength,
            OptionWireError::HeaderTruncated => ParseError::OptionHeaderTruncated,
            OptionWireError::ValueTruncated => ParseError::OptionValueTruncated,
            OptionWireError::NumberOverflow => ParseError::OptionNumberOverflow,
        }
    }
}

/// The fixed 4-byte header, readable even when the rest of the datagram is malformed so
/// that the message layer can still reject a CON by its Message ID (RFC 7252 §4.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// Version field (1 for RFC 7252).
    pub version: u8,
    /// Message type.
    pub ty: MessageType,
    /// Token length field (may be a reserved value).
    pub token_len: u8,
    /// Code.
    pub code: Code,
    /// Message ID.
    pub message_id: u16,
}

impl Header {
    /// Reads the header of a datagram, if it has four bytes.
    #[inline]
    pub fn peek(bytes: &[u8]) -> Option<Header> {
        let h: &[u8; 4] = bytes.get(..4)?.try_into().ok()?;
        Some(Header {
            version: h[0] >> 6,
            ty: MessageType::from_bits(h[0] >> 4),
            token_len: h[0] & 0x0f,
            code: Code(h[1]),
            message_id: u16::from_be_bytes([h[2], h[3]]),
        })
    }
}

/// A zero-copy view of a well-formed CoAP message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Message<'a> {
    ty: MessageType,
    code: Code,
    message_id: u16,
    token: &'a [u8],
    options: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// Parses and validates a datagram strictly (RFC 7252 §3). Option values are not checked
    /// against their registered formats here; see [`OptionNumber::check_value`].
    #[inline]
    pub fn parse(bytes: &'a [u8]) -> Result<Message<'a>, ParseError> {
        let h = Header::peek(bytes).ok_or(ParseError::TooShort)?;
        if h.version != 1 {
            return Err(ParseError::UnknownVersion(h.version));
        }
        let tkl = usize::from(h.token_len);
        if tkl > MAX_TOKEN_LEN {
            return Err(ParseError::ReservedTokenLength(h.token_len));
        }
        let token = bytes.get(4..4 + tkl).ok_or(ParseError::TokenTruncated)?;
        let rest = bytes.get(4 + tkl..).unwrap_or_default();
        let marker = Options::validate(rest)?;
        let (options, payload) = rest.split_at(marker);
        let payload = match payload.split_first() {
            None => payload,
            Some((_, [])) => return Err(ParseError::EmptyPayload),
            Some((_, p)) => p,
        };
        if h.code == Code::EMPTY && (tkl != 0 || bytes.len() != 4) {
            return Err(ParseError::EmptyMessageNotEmpty);
        }
        Ok(Message {
            ty: h.ty,
            code: h.code,
            message_id: h.message_id,
            token,
            options,
            payload,
        })
    }

    /// A view of already-validated parts (the reliable-transport view's, which has no
    /// type or Message ID).
    #[cfg(feature = "reliable")]
    pub(crate) fn from_parts(
        ty: MessageType,
        code: Code,
        token: &'a [u8],
        options: &'a [u8],
        payload: &'a [u8],
    ) -> Message<'a> {
        Message {
            ty,
            code,
            message_id: 0,
            token,
            options,
            payload,
        }
    }

    /// Message type.
    pub fn ty(&self) -> MessageType {
        self.ty
    }

    /// Code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// Message ID.
    pub fn message_id(&self) -> u16 {
        self.message_id
    }

    /// Token (0–8 bytes).
    #[inline]
    pub fn token(&self) -> &'a [u8] {
        self.token
    }

    /// All options in wire (ascending number) order.
    #[inline]
    pub fn options(&self) -> Options<'a> {
        Options::new(self.options)
    }

    /// The raw encoded options (between token and payload marker).
    pub fn options_bytes(&self) -> &'a [u8] {
        self.options
    }

    /// Payload (empty when there is none).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The first option with this number, unless its value is outside the registered
    /// format: such an option is treated like an unrecognized one (RFC 7252 §5.4.3), and
    /// a second occurrence of a non-repeatable option is ignored (§5.4.5). Critical
    /// options breaking these rules never reach a handler ([`crate::validate`]).
    #[inline]
    pub fn option(&self, number: OptionNumber) -> Option<CoapOption<'a>> {
        self.options()
            .find_number(number)
            .filter(|o| number.check_value(o.value).is_ok())
    }

    /// All options with this number, in order (values outside the registered format
    /// left out, RFC 7252 §5.4.3).
    pub fn options_of(&self, number: OptionNumber) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.options()
            .skip_while(move |o| o.number < number)
            .take_while(move |o| o.number == number)
            .map(|o| o.value)
            .filter(move |v| number.check_value(v).is_ok())
    }

    /// The first option with this number as an unsigned integer.
    pub fn uint_option(&self, number: OptionNumber) -> Option<u32> {
        self.option(number).and_then(|o| o.as_uint())
    }

    /// Content-Format, if present.
    pub fn content_format(&self) -> Option<u16> {
        self.uint_option(OptionNumber::CONTENT_FORMAT)
            .and_then(|v| u16::try_from(v).ok())
    }

    /// Accept, if present.
    pub fn accept(&self) -> Option<u16> {
        self.uint_option(OptionNumber::ACCEPT)
            .and_then(|v| u16::try_from(v).ok())
    }

    /// Observe, if present.
    pub fn observe(&self) -> Option<u32> {
        self.uint_option(OptionNumber::OBSERVE)
    }

    /// Max-Age, defaulting to 60 s when absent (RFC 7252 §5.10.5).
    pub fn max_age(&self) -> u32 {
        self.uint_option(OptionNumber::MAX_AGE).unwrap_or(60)
    }

    /// Uri-Path segments, undecoded bytes.
    pub fn uri_path(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.options_of(OptionNumber::URI_PATH)
    }

    /// Uri-Query arguments.
    pub fn uri_query(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.options_of(OptionNumber::URI_QUERY)
    }

    /// The first critical option that `known` does not accept, or that violates its
    /// registered format (RFC 7252 §5.4.1, §5.4.3).
    pub fn unknown_critical_option(
        &self,
        mut known: impl FnMut(OptionNumber) -> bool,
    ) -> Option<OptionNumber> {
        self.options()
            .find(|o| {
                o.number.is_critical()
                    && (!known(o.number) || o.number.check_value(o.value).is_err())
            })
            .map(|o| o.number)
    }
}

/// Why a message cannot be built.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BuildError {
    /// The buffer cannot hold the message.
    #[error("buffer too small for the message")]
    BufferTooSmall,
    /// Tokens are 0–8 bytes.
    #[error("token longer than 8 bytes")]
    TokenTooLong,
    /// The payload was already written.
    #[error("payload already written")]
    PayloadAlreadySet,
    /// The value is longer than the option encoding can express.
    #[error("option value too long for the wire format")]
    ValueTooLong,
}

/// Builds a message into a caller's buffer, without allocation.
///
/// Options may be added in any order: each is inserted at its place by number (equal
/// numbers keep the order in which they were added, which is what repeatable options such
/// as Uri-Path need), moving later options (and the payload) in place. Adding options in
/// ascending order before the payload is the fast path (a plain append).
#[derive(Debug)]
pub struct MessageBuilder<'b> {
    buf: &'b mut [u8],
    options_start: usize,
    /// End of the options (the payload marker's position once there is a payload).
    options_end: usize,
    len: usize,
    last_number: u16,
    has_payload: bool,
}

impl<'b> MessageBuilder<'b> {
    /// Starts a message with header and token.
    #[inline]
    pub fn new(
        buf: &'b mut [u8],
        ty: MessageType,
        code: Code,
        message_id: u16,
        token: &[u8],
    ) -> Result<Self, BuildError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(BuildError::TokenTooLong);
        }
        let len = 4 + token.len();
        let head = buf.get_mut(..len).ok_or(BuildError::BufferTooSmall)?;
        let mid = message_id.to_be_bytes();
        head[0] = 0x40 | ((ty as u8) << 4) | token.len() as u8;
        head[1] = code.0;
        head[2] = mid[0];
        head[3] = mid[1];
        head[4..].copy_from_slice(token);
        Ok(MessageBuilder {
            buf,
            options_start: len,
            options_end: len,
            len,
            last_number: 0,
            has_payload: false,
        })
    }

    /// A builder whose options start at `header_len`: the caller owns the bytes before it
    /// (the reliable-transport writer, `reliable::wire`, keeps its own header there; byte 1
    /// still holds the code so that [`MessageBuilder::code`] and `set_code` work).
    #[cfg(feature = "reliable")]
    pub(crate) fn after_header(buf: &'b mut [u8], header_len: usize) -> Result<Self, BuildError> {
        if header_len < 2 || buf.len() < header_len {
            return Err(BuildError::BufferTooSmall);
        }
        Ok(MessageBuilder {
            buf,
            options_start: header_len,
            options_end: header_len,
            len: header_len,
            last_number: 0,
            has_payload: false,
        })
    }

    /// The whole buffer and the length written, for a writer that rewrites the header.
    #[cfg(feature = "reliable")]
    pub(crate) fn into_parts(self) -> (&'b mut [u8], usize) {
        (self.buf, self.len)
    }

    /// Changes the message type in the header.
    pub fn set_type(&mut self, ty: MessageType) {
        if let Some(b) = self.buf.first_mut() {
            *b = (*b & 0xcf) | ((ty as u8) << 4);
        }
    }

    /// The message type in the header.
    pub fn message_type(&self) -> MessageType {
        MessageType::from_bits(self.buf.first().copied().unwrap_or(0) >> 4)
    }

    /// Changes the code in the header.
    pub fn set_code(&mut self, code: Code) {
        if let Some(b) = self.buf.get_mut(1) {
            *b = code.0;
        }
    }

    /// The code currently in the header.
    pub fn code(&self) -> Code {
        Code(self.buf.get(1).copied().unwrap_or(0))
    }

    /// Adds an option with a raw value.
    #[inline]
    pub fn option(&mut self, number: OptionNumber, value: &[u8]) -> Result<&mut Self, BuildError> {
        self.option_with(number, value.len(), |dst| dst.copy_from_slice(value))
    }

    /// Adds a uint option, minimally encoded.
    #[inline]
    pub fn option_uint(
        &mut self,
        number: OptionNumber,
        value: u32,
    ) -> Result<&mut Self, BuildError> {
        let mut b = [0; 4];
        let v = encode_uint(value, &mut b);
        self.option(number, v)
    }

    /// Adds a string option.
    #[inline]
    pub fn option_str(
        &mut self,
        number: OptionNumber,
        value: &str,
    ) -> Result<&mut Self, BuildError> {
        self.option(number, value.as_bytes())
    }

    /// Adds an option of `len` bytes whose value `fill` writes in place (used, e.g., to
    /// percent-decode URI components straight into the message).
    #[inline]
    pub fn option_with(
        &mut self,
        number: OptionNumber,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<&mut Self, BuildError> {
        if len > option::MAX_VALUE_LEN {
            return Err(BuildError::ValueTooLong);
        }
        let n = number.0;
        if n >= self.last_number && !self.has_payload {
            // Fast path: append.
            let delta = n - self.last_number;
            let h = header_len(delta, len);
            let end = self.len + h + len;
            let dst = self
                .buf
                .get_mut(self.len..end)
                .ok_or(BuildError::BufferTooSmall)?;
            let (hdr, val) = dst.split_at_mut(h);
            write_header(delta, len, hdr);
            fill(val);
            self.len = end;
            self.options_end = end;
            self.last_number = n;
            return Ok(self);
        }
        self.insert(n, len, fill)?;
        Ok(self)
    }

    /// Inserts an option before the first option with a larger number (or before the
    /// payload marker). Only the delta of the following option changes, so only its header
    /// is re-encoded; everything after it moves in place.
    fn insert(
        &mut self,
        n: u16,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), BuildError> {
        // Find the first option with number > n (if any), and the number before it.
        let mut pos = self.options_start;
        let mut prev = 0u16;
        let next = loop {
            if pos >= self.options_end {
                break None;
            }
            let bytes = self.buf.get(pos..self.options_end).unwrap_or_default();
            let (opt, used) = read_option(bytes, prev).map_err(|_| BuildError::BufferTooSmall)?;
            if opt.number.0 > n {
                let vlen = opt.value.len();
                break Some((opt.number.0, vlen, used - vlen));
            }
            prev = opt.number.0;
            pos += used;
        };
        let new_hdr = header_len(n - prev, len);
        let (next_hdr, old_hdr) = match next {
            Some((number, vlen, old)) => (header_len(number - n, vlen), old),
            None => (0, 0),
        };
        let insert = new_hdr + len + next_hdr;
        // `insert` replaces `old_hdr` bytes (the following option's old header); the new
        // delta is smaller, so next_hdr <= old_hdr and this cannot underflow.
        let grow = insert - old_hdr;
        if self.len + grow > self.buf.len() {
            return Err(BuildError::BufferTooSmall);
        }
        let tail_from = pos + old_hdr;
        self.buf.copy_within(tail_from..self.len, tail_from + grow);
        let region = &mut self.buf[pos..pos + insert];
        let (hdr, rest) = region.split_at_mut(new_hdr);
        write_header(n - prev, len, hdr);
        let (val, nh) = rest.split_at_mut(len);
        fill(val);
        if let Some((number, vlen, _)) = next {
            write_header(number - n, vlen, nh);
        } else {
            self.last_number = n;
        }
        self.len += grow;
        self.options_end += grow;
        Ok(())
    }

    /// Appends the payload marker and payload (nothing for an empty payload, RFC 7252 §3).
    #[inline]
    pub fn payload(&mut self, payload: &[u8]) -> Result<&mut Self, BuildError> {
        if self.has_payload {
            return Err(BuildError::PayloadAlreadySet);
        }
        if payload.is_empty() {
            return Ok(self);
        }
        let start = self.len + 1;
        let end = start + payload.len();
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(BuildError::BufferTooSmall)?;
        let (marker, body) = dst.split_at_mut(1);
        marker[0] = PAYLOAD_MARKER;
        body.copy_from_slice(payload);
        self.len = end;
        self.has_payload = true;
        Ok(self)
    }

    /// The space available for a payload, for writing it in place; follow with
    /// [`MessageBuilder::set_payload_len`].
    #[inline]
    pub fn payload_buf(&mut self) -> Result<&mut [u8], BuildError> {
        if self.has_payload {
            return Err(BuildError::PayloadAlreadySet);
        }
        // A full buffer has room for an empty payload only.
        Ok(self.buf.get_mut(self.len + 1..).unwrap_or_default())
    }

    /// Commits `n` payload bytes previously written into [`MessageBuilder::payload_buf`].
    #[inline]
    pub fn set_payload_len(&mut self, n: usize) -> Result<(), BuildError> {
        if self.has_payload {
            return Err(BuildError::PayloadAlreadySet);
        }
        if n == 0 {
            return Ok(());
        }
        if self.len + 1 + n > self.buf.len() {
            return Err(BuildError::BufferTooSmall);
        }
        self.buf[self.len] = PAYLOAD_MARKER;
        self.len += 1 + n;
        self.has_payload = true;
        Ok(())
    }

    /// Bytes still free in the buffer.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.len)
    }

    /// Bytes written so far.
    pub fn written(&self) -> usize {
        self.len
    }

    /// Finishes the message, returning its length in the buffer.
    #[inline]
    pub fn finish(self) -> usize {
        self.len
    }

    /// Finishes and returns the written bytes.
    #[inline]
    pub fn into_bytes(self) -> &'b [u8] {
        let len = self.len;
        let buf: &'b [u8] = self.buf;
        &buf[..len]
    }
}

/// Writes an Empty message (ACK, RST or CON ping) with the given Message ID (RFC 7252 §4.1).
pub fn write_empty(buf: &mut [u8], ty: MessageType, message_id: u16) -> Result<usize, BuildError> {
    Ok(MessageBuilder::new(buf, ty, Code::EMPTY, message_id, &[])?.finish())
}

#[cfg(test)]
mod tests;
