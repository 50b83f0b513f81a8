//! The bytes around EDHOC messages: the CBOR sequences of the CoAP transport
//! (RFC 9528 Appendix A.2), EDHOC error messages (RFC 9528 §6) and the payload of the
//! EDHOC + OSCORE combined request (RFC 9668 §3).
//!
//! Everything here is a pure function over byte slices; nothing allocates.

use lakers::{CBORDecoder, ConnId};

use crate::content_format::ContentFormat;

/// application/edhoc+cbor-seq (RFC 9528 §10.9): EDHOC messages without a connection
/// identifier prefix (responses from the Responder).
pub const EDHOC_CBOR_SEQ: ContentFormat = ContentFormat(64);
/// application/cid-edhoc+cbor-seq (RFC 9528 §10.9): a connection identifier (or `true`)
/// followed by an EDHOC message (requests to the Responder, Appendix A.2).
pub const CID_EDHOC_CBOR_SEQ: ContentFormat = ContentFormat(65);

/// CBOR `true`: the prefix of message_1 in a request (RFC 9528 Appendix A.2).
const CBOR_TRUE: u8 = 0xf5;

/// The EDHOC error codes this crate sends and recognises (RFC 9528 §6, §10.4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ErrCode {
    /// 1: unspecified error; ERR_INFO is a diagnostic text string (§6.2).
    Unspecified,
    /// 2: wrong selected cipher suite; ERR_INFO is SUITES_R (§6.3).
    WrongSelectedCipherSuite,
    /// 3: unknown credential referenced; ERR_INFO is `true` (§6.4).
    UnknownCredential,
    /// Any other code (received only).
    Other(i32),
}

impl ErrCode {
    /// The integer ERR_CODE.
    pub fn value(self) -> i32 {
        match self {
            ErrCode::Unspecified => 1,
            ErrCode::WrongSelectedCipherSuite => 2,
            ErrCode::UnknownCredential => 3,
            ErrCode::Other(v) => v,
        }
    }
}

/// Why bytes around an EDHOC message cannot be read or written.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WireError {
    /// Not the CBOR this transport expects.
    #[error("malformed EDHOC CBOR sequence")]
    Malformed,
    /// The output buffer is too small.
    #[error("output buffer too small")]
    BufferTooSmall,
}

/// What a request to the EDHOC resource carries (RFC 9528 Appendix A.2.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Request<'a> {
    /// `true` followed by message_1: a new handshake.
    Message1(&'a [u8]),
    /// C_R followed by message_3 (or an error message) of the handshake C_R names.
    Continue {
        /// The Responder's connection identifier.
        c_r: ConnId,
        /// The EDHOC message after it.
        message: &'a [u8],
    },
}

/// Splits the payload of a request to the EDHOC resource (content format 65).
pub fn parse_request(payload: &[u8]) -> Result<Request<'_>, WireError> {
    match payload.first() {
        None => Err(WireError::Malformed),
        Some(&CBOR_TRUE) => {
            let rest = &payload[1..];
            if rest.is_empty() {
                return Err(WireError::Malformed);
            }
            Ok(Request::Message1(rest))
        }
        Some(_) => {
            let (c_r, used) = read_conn_id(payload)?;
            let message = &payload[used..];
            if message.is_empty() {
                return Err(WireError::Malformed);
            }
            Ok(Request::Continue { c_r, message })
        }
    }
}

/// Reads a connection identifier (a CBOR int in -24..=23 or a byte string, RFC 9528
/// §3.3.2) at the start of `bytes`; returns it and the bytes it took.
pub fn read_conn_id(bytes: &[u8]) -> Result<(ConnId, usize), WireError> {
    let mut decoder = CBORDecoder::new(bytes);
    let id = ConnId::from_decoder(&mut decoder).map_err(|_| WireError::Malformed)?;
    // The compact encoding is mandatory: a one-byte string that could be an int is not
    // a valid identifier (RFC 9528 §3.3.2).
    let cbor = id.as_cbor();
    if cbor.len() == 2 && cbor[0] == 0x41 && (cbor[1] <= 0x17 || (0x20..=0x37).contains(&cbor[1])) {
        return Err(WireError::Malformed);
    }
    Ok((id, cbor.len()))
}

/// Writes the payload of the request that carries message_1: `true`, message_1.
pub fn write_message_1_request(message_1: &[u8], out: &mut [u8]) -> Result<usize, WireError> {
    concat(&[&[CBOR_TRUE], message_1], out)
}

/// Writes the payload of the request that carries message_3 (or an error message) of
/// the handshake C_R names: C_R, message.
pub fn write_continue_request(
    c_r: &ConnId,
    message: &[u8],
    out: &mut [u8],
) -> Result<usize, WireError> {
    concat(&[c_r.as_cbor(), message], out)
}

fn concat(parts: &[&[u8]], out: &mut [u8]) -> Result<usize, WireError> {
    let mut n = 0;
    for p in parts {
        let dst = out
            .get_mut(n..n + p.len())
            .ok_or(WireError::BufferTooSmall)?;
        dst.copy_from_slice(p);
        n += p.len();
    }
    Ok(n)
}

/// Writes a CBOR head of major type `major` with argument `value`.
fn write_head(major: u8, value: u64, out: &mut [u8]) -> Result<usize, WireError> {
    let m = major << 5;
    let (head, len): ([u8; 9], usize) = if value < 24 {
        ([m | value as u8, 0, 0, 0, 0, 0, 0, 0, 0], 1)
    } else if value <= 0xff {
        ([m | 24, value as u8, 0, 0, 0, 0, 0, 0, 0], 2)
    } else if value <= 0xffff {
        let b = (value as u16).to_be_bytes();
        ([m | 25, b[0], b[1], 0, 0, 0, 0, 0, 0], 3)
    } else if value <= 0xffff_ffff {
        let b = (value as u32).to_be_bytes();
        ([m | 26, b[0], b[1], b[2], b[3], 0, 0, 0, 0], 5)
    } else {
        let b = value.to_be_bytes();
        ([m | 27, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]], 9)
    };
    concat(&[&head[..len]], out)
}

/// Reads a CBOR head; returns (major type, argument, head length). Indefinite lengths
/// are not valid in EDHOC (deterministic encoding, RFC 9528 §3.1).
fn read_head(bytes: &[u8]) -> Result<(u8, u64, usize), WireError> {
    let first = *bytes.first().ok_or(WireError::Malformed)?;
    let major = first >> 5;
    let info = first & 0x1f;
    let extra = match info {
        0..=23 => return Ok((major, u64::from(info), 1)),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => return Err(WireError::Malformed),
    };
    let arg = bytes.get(1..1 + extra).ok_or(WireError::Malformed)?;
    let value = arg.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    Ok((major, value, 1 + extra))
}

fn rest(n: usize, out: &mut [u8]) -> Result<&mut [u8], WireError> {
    out.get_mut(n..).ok_or(WireError::BufferTooSmall)
}

fn write_int(value: i32, out: &mut [u8]) -> Result<usize, WireError> {
    if value >= 0 {
        write_head(0, value as u64, out)
    } else {
        write_head(1, (-(i64::from(value)) - 1) as u64, out)
    }
}

/// Writes an EDHOC error message (RFC 9528 §6): ERR_CODE 1 with `diagnostic` as
/// ERR_INFO, ERR_CODE 2 with `suites` as SUITES_R, or ERR_CODE 3 with `true`.
pub fn write_error(
    code: ErrCode,
    diagnostic: &str,
    suites: &[u8],
    out: &mut [u8],
) -> Result<usize, WireError> {
    let mut n = write_int(code.value(), out)?;
    match code {
        ErrCode::WrongSelectedCipherSuite => {
            // SUITES_R: a single int when there is one suite, an array otherwise (§5.2.2).
            if suites.len() == 1 {
                n += write_int(i32::from(suites[0]), rest(n, out)?)?;
            } else {
                n += write_head(4, suites.len() as u64, rest(n, out)?)?;
                for s in suites {
                    n += write_int(i32::from(*s), rest(n, out)?)?;
                }
            }
        }
        ErrCode::UnknownCredential => n += concat(&[&[CBOR_TRUE]], rest(n, out)?)?,
        ErrCode::Unspecified | ErrCode::Other(_) => {
            n += write_head(3, diagnostic.len() as u64, rest(n, out)?)?;
            n += concat(&[diagnostic.as_bytes()], rest(n, out)?)?;
        }
    }
    Ok(n)
}

/// A received EDHOC error message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PeerError<'a> {
    /// ERR_CODE.
    pub code: ErrCode,
    /// The diagnostic text of ERR_CODE 1 (empty otherwise, or if it is not valid UTF-8).
    pub diagnostic: &'a str,
}

/// Whether `bytes` start like an EDHOC error message (an int, RFC 9528 §6) rather than a
/// message_2/message_4 (a byte string).
pub fn is_error(bytes: &[u8]) -> bool {
    matches!(bytes.first().map(|b| b >> 5), Some(0) | Some(1))
}

/// Reads an EDHOC error message.
pub fn parse_error(bytes: &[u8]) -> Result<PeerError<'_>, WireError> {
    let (major, arg, used) = read_head(bytes)?;
    let code = match major {
        0 => i64::try_from(arg).map_err(|_| WireError::Malformed)?,
        1 => -1 - i64::try_from(arg).map_err(|_| WireError::Malformed)?,
        _ => return Err(WireError::Malformed),
    };
    let code = i32::try_from(code).map_err(|_| WireError::Malformed)?;
    let code = match code {
        1 => ErrCode::Unspecified,
        2 => ErrCode::WrongSelectedCipherSuite,
        3 => ErrCode::UnknownCredential,
        0 => return Err(WireError::Malformed), // 0 is reserved for success (§6)
        v => ErrCode::Other(v),
    };
    let info = &bytes[used..];
    let mut diagnostic = "";
    if code == ErrCode::Unspecified {
        let (major, len, used) = read_head(info)?;
        let len = usize::try_from(len).map_err(|_| WireError::Malformed)?;
        let text = info.get(used..used.checked_add(len).ok_or(WireError::Malformed)?);
        match (major, text) {
            (3, Some(t)) => diagnostic = core::str::from_utf8(t).unwrap_or(""),
            _ => return Err(WireError::Malformed),
        }
    }
    Ok(PeerError { code, diagnostic })
}

/// The total length of the CBOR byte string at the start of `bytes` (its head plus
/// content): message_2, message_3 and message_4 are each one byte string (RFC 9528 §5).
pub fn bstr_len(bytes: &[u8]) -> Result<usize, WireError> {
    let (major, len, used) = read_head(bytes)?;
    if major != 2 {
        return Err(WireError::Malformed);
    }
    let total = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(used))
        .ok_or(WireError::Malformed)?;
    if total > bytes.len() {
        return Err(WireError::Malformed);
    }
    Ok(total)
}

/// Checks that `bytes` are exactly one CBOR byte string holding at least `min` bytes: the
/// shape of message_2, message_3 and message_4 (RFC 9528 §5.3.1, §5.4.1, §5.5.1); the
/// latter two hold an AEAD ciphertext with an 8-byte tag, and lakers' RustCrypto backend
/// subtracts the tag length unchecked, so a shorter one must never reach it.
///
/// The head must be the deterministic one (RFC 9528 §3.1, RFC 8949 §4.2.1) and at most
/// two bytes (content under 256 bytes): lakers reads no other form correctly.
pub fn check_ciphertext_message(bytes: &[u8], min: usize) -> Result<(), WireError> {
    let total = bstr_len(bytes)?;
    let (_, content, head) = read_head(bytes)?;
    let shortest = match content {
        0..=23 => 1,
        24..=255 => 2,
        _ => return Err(WireError::Malformed),
    };
    if head != shortest || total != bytes.len() || content < min as u64 {
        return Err(WireError::Malformed);
    }
    Ok(())
}

/// The content length of the CBOR byte string at the start of `bytes`.
pub fn bstr_content_len(bytes: &[u8]) -> Result<usize, WireError> {
    let total = bstr_len(bytes)?;
    let (_, _, head) = read_head(bytes)?;
    Ok(total - head)
}

/// Splits the payload of an EDHOC + OSCORE combined request (RFC 9668 §3.2): the
/// message_3 byte string first, then the OSCORE ciphertext.
pub fn split_combined_payload(payload: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    let n = bstr_len(payload)?;
    let (message_3, oscore) = payload.split_at(n);
    if oscore.is_empty() {
        // An OSCORE ciphertext holds at least the tag (RFC 8613 §5).
        return Err(WireError::Malformed);
    }
    Ok((message_3, oscore))
}
