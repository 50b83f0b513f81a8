//! Options: numbers, the registry of their properties, value formats, and the wire
//! encoding of option headers (RFC 7252 §3.1, §5.4, §12.2).

use core::fmt;

/// An option number. Properties that the number itself encodes (critical, unsafe,
/// NoCacheKey; RFC 7252 §5.4.6) are methods; the rest comes from [`OptionNumber::info`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OptionNumber(pub u16);

/// How an option's value is encoded (RFC 7252 §3.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ValueFormat {
    /// Zero-length value.
    Empty,
    /// Arbitrary bytes.
    Opaque,
    /// Non-negative integer, network byte order, leading zero bytes omitted.
    Uint,
    /// UTF-8 (Net-Unicode) text.
    String,
}

/// Registry entry of an option this crate knows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OptionInfo {
    /// The option number.
    pub number: OptionNumber,
    /// Registered name, e.g. "Uri-Path".
    pub name: &'static str,
    /// Value format.
    pub format: ValueFormat,
    /// Minimum value length in bytes.
    pub min_len: u16,
    /// Maximum value length in bytes.
    pub max_len: u16,
    /// Whether the option may occur more than once.
    pub repeatable: bool,
}

/// Why an option value is not acceptable for its registered format.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OptionValueError {
    /// Shorter than the registered minimum.
    #[error("value of {len} bytes shorter than the minimum {min}")]
    TooShort {
        /// Actual length.
        len: usize,
        /// Registered minimum.
        min: u16,
    },
    /// Longer than the registered maximum.
    #[error("value of {len} bytes longer than the maximum {max}")]
    TooLong {
        /// Actual length.
        len: usize,
        /// Registered maximum.
        max: u16,
    },
    /// A string option that is not UTF-8.
    #[error("string value is not UTF-8")]
    NotUtf8,
}

macro_rules! registry {
    ($( $(#[$doc:meta])* $name:ident = $num:literal, $text:literal, $fmt:ident, $min:literal..=$max:literal, $rep:literal; )*) => {
        impl OptionNumber {
            $( $(#[$doc])* pub const $name: OptionNumber = OptionNumber($num); )*
        }
        /// Every option this crate knows, in number order.
        pub const REGISTRY: &[OptionInfo] = &[
            $( OptionInfo { number: OptionNumber($num), name: $text, format: ValueFormat::$fmt,
                            min_len: $min, max_len: $max, repeatable: $rep }, )*
        ];
    };
}

// RFC 7252 §5.10 / §12.2, RFC 7641 §2, RFC 7959 §2.1 and §4, RFC 8768, RFC 8613 §2,
// RFC 9175 §2.2 and §3.2, RFC 7967 §2.
registry! {
    /// If-Match (1).
    IF_MATCH = 1, "If-Match", Opaque, 0..=8, true;
    /// Uri-Host (3).
    URI_HOST = 3, "Uri-Host", String, 1..=255, false;
    /// ETag (4); repeatable in requests.
    ETAG = 4, "ETag", Opaque, 1..=8, true;
    /// If-None-Match (5).
    IF_NONE_MATCH = 5, "If-None-Match", Empty, 0..=0, false;
    /// Observe (6), RFC 7641.
    OBSERVE = 6, "Observe", Uint, 0..=3, false;
    /// Uri-Port (7).
    URI_PORT = 7, "Uri-Port", Uint, 0..=2, false;
    /// Location-Path (8).
    LOCATION_PATH = 8, "Location-Path", String, 0..=255, true;
    /// OSCORE (9), RFC 8613.
    OSCORE = 9, "OSCORE", Opaque, 0..=255, false;
    /// Uri-Path (11).
    URI_PATH = 11, "Uri-Path", String, 0..=255, true;
    /// Content-Format (12).
    CONTENT_FORMAT = 12, "Content-Format", Uint, 0..=2, false;
    /// Max-Age (14).
    MAX_AGE = 14, "Max-Age", Uint, 0..=4, false;
    /// Uri-Query (15).
    URI_QUERY = 15, "Uri-Query", String, 0..=255, true;
    /// Hop-Limit (16), RFC 8768.
    HOP_LIMIT = 16, "Hop-Limit", Uint, 1..=1, false;
    /// Accept (17).
    ACCEPT = 17, "Accept", Uint, 0..=2, false;
    /// Location-Query (20).
    LOCATION_QUERY = 20, "Location-Query", String, 0..=255, true;
    /// Block2 (23), RFC 7959.
    BLOCK2 = 23, "Block2", Uint, 0..=3, false;
    /// Block1 (27), RFC 7959.
    BLOCK1 = 27, "Block1", Uint, 0..=3, false;
    /// Size2 (28), RFC 7959.
    SIZE2 = 28, "Size2", Uint, 0..=4, false;
    /// Proxy-Uri (35).
    PROXY_URI = 35, "Proxy-Uri", String, 1..=1034, false;
    /// Proxy-Scheme (39).
    PROXY_SCHEME = 39, "Proxy-Scheme", String, 1..=255, false;
    /// Size1 (60).
    SIZE1 = 60, "Size1", Uint, 0..=4, false;
    /// Echo (252), RFC 9175.
    ECHO = 252, "Echo", Opaque, 1..=40, false;
    /// No-Response (258), RFC 7967.
    NO_RESPONSE = 258, "No-Response", Uint, 0..=1, false;
    /// Request-Tag (292), RFC 9175.
    REQUEST_TAG = 292, "Request-Tag", Opaque, 0..=8, true;
}

impl OptionNumber {
    /// Critical options must be understood (odd numbers, RFC 7252 §5.4.1).
    pub const fn is_critical(self) -> bool {
        self.0 & 1 != 0
    }

    /// Elective options may be ignored when unknown.
    pub const fn is_elective(self) -> bool {
        !self.is_critical()
    }

    /// Unsafe-to-forward options (bit 1, RFC 7252 §5.4.2 and §5.4.6).
    pub const fn is_unsafe(self) -> bool {
        self.0 & 2 != 0
    }

    /// NoCacheKey options are not part of the cache key; only meaningful for safe-to-forward
    /// options (RFC 7252 §5.4.6: bits 2–4 all set).
    pub const fn is_no_cache_key(self) -> bool {
        self.0 & 0x1e == 0x1c
    }

    /// The registry entry, if this crate knows the option.
    pub fn info(self) -> Option<&'static OptionInfo> {
        REGISTRY
            .binary_search_by_key(&self, |i| i.number)
            .ok()
            .and_then(|i| REGISTRY.get(i))
    }

    /// Looks an option up by its registered name (case-insensitive).
    pub fn from_name(name: &str) -> Option<OptionNumber> {
        REGISTRY
            .iter()
            .find(|i| i.name.eq_ignore_ascii_case(name))
            .map(|i| i.number)
    }

    /// Checks a value against the registered format of this option. Unknown options
    /// accept anything. RFC 7252 §5.4.3: a recipient treats a violating option like an
    /// unrecognized one.
    pub fn check_value(self, value: &[u8]) -> Result<(), OptionValueError> {
        let Some(info) = self.info() else {
            return Ok(());
        };
        if value.len() < info.min_len as usize {
            return Err(OptionValueError::TooShort {
                len: value.len(),
                min: info.min_len,
            });
        }
        if value.len() > info.max_len as usize {
            return Err(OptionValueError::TooLong {
                len: value.len(),
                max: info.max_len,
            });
        }
        if info.format == ValueFormat::String && core::str::from_utf8(value).is_err() {
            return Err(OptionValueError::NotUtf8);
        }
        Ok(())
    }
}

impl From<u16> for OptionNumber {
    fn from(n: u16) -> Self {
        OptionNumber(n)
    }
}

impl fmt::Display for OptionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.info() {
            Some(i) => f.write_str(i.name),
            None => write!(f, "Option{}", self.0),
        }
    }
}

/// Decodes a uint option value (RFC 7252 §3.2). Non-minimal encodings with leading zero
/// bytes are accepted (node-coap sends Content-Format 0 as one 0x00 byte); a value that
/// does not fit in a `u32` yields `None`.
#[inline]
pub fn decode_uint(value: &[u8]) -> Option<u32> {
    let mut v: u32 = 0;
    for &b in value {
        if v > 0x00ff_ffff {
            return None;
        }
        v = (v << 8) | u32::from(b);
    }
    Some(v)
}

/// Encodes `v` minimally (zero is the empty string) into `out`, returning the bytes used.
#[inline]
pub fn encode_uint(v: u32, out: &mut [u8; 4]) -> &[u8] {
    let bytes = v.to_be_bytes();
    let skip = (v.leading_zeros() / 8) as usize;
    out.copy_from_slice(&bytes);
    &out[skip..]
}

/// One option as it appears in a message: its number (deltas already summed) and raw value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CoapOption<'a> {
    /// The option number.
    pub number: OptionNumber,
    /// The raw value bytes.
    pub value: &'a [u8],
}

impl<'a> CoapOption<'a> {
    /// The value as an unsigned integer (see [`decode_uint`]).
    pub fn as_uint(&self) -> Option<u32> {
        decode_uint(self.value)
    }

    /// The value as UTF-8 text.
    pub fn as_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.value).ok()
    }
}

/// Why the options part of a message cannot be read (RFC 7252 §3.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OptionWireError {
    /// Delta nibble 15 on a byte that is not the payload marker.
    #[error("option delta nibble 15 outside the payload marker")]
    ReservedDelta,
    /// Length nibble 15.
    #[error("option length nibble 15 is reserved")]
    ReservedLength,
    /// The extended delta or length bytes run past the end.
    #[error("extended option delta or length runs past the end")]
    HeaderTruncated,
    /// The value runs past the end.
    #[error("option value runs past the end")]
    ValueTruncated,
    /// The sum of deltas exceeds 65535.
    #[error("option number exceeds 65535")]
    NumberOverflow,
}

/// Reads one option starting at `buf[0]` (which must not be 0xFF), given the previous
/// option number. Returns the option and the number of bytes it took.
#[inline]
pub(crate) fn read_option(
    buf: &[u8],
    prev: u16,
) -> Result<(CoapOption<'_>, usize), OptionWireError> {
    let first = *buf.first().ok_or(OptionWireError::HeaderTruncated)?;
    let mut pos = 1;
    let mut ext = |nibble: u8, err_reserved: OptionWireError| -> Result<u32, OptionWireError> {
        match nibble {
            0..=12 => Ok(u32::from(nibble)),
            13 => {
                let b = *buf.get(pos).ok_or(OptionWireError::HeaderTruncated)?;
                pos += 1;
                Ok(u32::from(b) + 13)
            }
            14 => {
                let hi = *buf.get(pos).ok_or(OptionWireError::HeaderTruncated)?;
                let lo = *buf.get(pos + 1).ok_or(OptionWireError::HeaderTruncated)?;
                pos += 2;
                Ok(u32::from(u16::from_be_bytes([hi, lo])) + 269)
            }
            _ => Err(err_reserved),
        }
    };
    let delta = ext(first >> 4, OptionWireError::ReservedDelta)?;
    let len = ext(first & 0x0f, OptionWireError::ReservedLength)? as usize;
    let number = u32::from(prev) + delta;
    let number = u16::try_from(number).map_err(|_| OptionWireError::NumberOverflow)?;
    let value = buf
        .get(pos..pos + len)
        .ok_or(OptionWireError::ValueTruncated)?;
    Ok((
        CoapOption {
            number: OptionNumber(number),
            value,
        },
        pos + len,
    ))
}

/// Length of the header (first byte plus extended delta and length) for an option.
#[inline]
pub(crate) const fn header_len(delta: u16, len: usize) -> usize {
    1 + ext_len(delta as usize) + ext_len(len)
}

const fn ext_len(v: usize) -> usize {
    if v < 13 {
        0
    } else if v < 269 {
        1
    } else {
        2
    }
}

/// Largest value length the wire format can express.
pub const MAX_VALUE_LEN: usize = 65535 + 269;

/// Writes an option header into `out` (which must hold `header_len(delta, len)` bytes;
/// callers check). Returns the bytes written.
#[inline]
pub(crate) fn write_header(delta: u16, len: usize, out: &mut [u8]) -> usize {
    fn nibble(v: usize) -> u8 {
        match v {
            0..=12 => v as u8,
            13..=268 => 13,
            _ => 14,
        }
    }
    let mut pos = 1;
    let mut put_ext = |v: usize, out: &mut [u8]| match v {
        0..=12 => {}
        13..=268 => {
            out[pos] = (v - 13) as u8;
            pos += 1;
        }
        _ => {
            let e = ((v - 269) as u16).to_be_bytes();
            out[pos] = e[0];
            out[pos + 1] = e[1];
            pos += 2;
        }
    };
    out[0] = (nibble(delta as usize) << 4) | nibble(len);
    put_ext(delta as usize, out);
    put_ext(len, out);
    pos
}

/// Iterator over the options of a message, in wire order. Built from already-validated
/// bytes by `Message`; on malformed bytes it simply ends.
#[derive(Clone, Debug)]
pub struct Options<'a> {
    rest: &'a [u8],
    prev: u16,
}

impl<'a> Options<'a> {
    /// Iterates over raw option bytes (the part between token and payload marker).
    pub fn new(bytes: &'a [u8]) -> Self {
        Options {
            rest: bytes,
            prev: 0,
        }
    }

    /// Walks all options once and reports the first wire error, if any. Returns the
    /// offset of the payload marker (or `bytes.len()` when there is none).
    #[inline]
    pub(crate) fn validate(bytes: &[u8]) -> Result<usize, OptionWireError> {
        let mut pos = 0;
        let mut prev = 0;
        while let Some(&b) = bytes.get(pos) {
            if b == 0xff {
                return Ok(pos);
            }
            let rest = bytes.get(pos..).unwrap_or_default();
            let (opt, used) = read_option(rest, prev)?;
            prev = opt.number.0;
            pos += used;
        }
        Ok(pos)
    }

    /// The next option with exactly this number.
    pub fn find_number(&mut self, number: OptionNumber) -> Option<CoapOption<'a>> {
        self.by_ref()
            .take_while(|o| o.number <= number)
            .find(|o| o.number == number)
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = CoapOption<'a>;

    #[inline]
    fn next(&mut self) -> Option<CoapOption<'a>> {
        match self.rest.first() {
            None | Some(0xff) => return None,
            Some(_) => {}
        }
        match read_option(self.rest, self.prev) {
            Ok((opt, used)) => {
                self.rest = self.rest.get(used..).unwrap_or_default();
                self.prev = opt.number.0;
                Some(opt)
            }
            Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_from_number() {
        // RFC 7252 §12.2 table: C, U, N columns.
        assert!(OptionNumber::IF_MATCH.is_critical());
        assert!(OptionNumber::URI_HOST.is_critical() && OptionNumber::URI_HOST.is_unsafe());
        assert!(OptionNumber::ETAG.is_elective() && !OptionNumber::ETAG.is_unsafe());
        assert!(OptionNumber::MAX_AGE.is_unsafe() && !OptionNumber::MAX_AGE.is_critical());
        assert!(OptionNumber::SIZE1.is_no_cache_key());
        assert!(OptionNumber::SIZE2.is_no_cache_key());
        assert!(!OptionNumber::URI_PATH.is_no_cache_key());
        assert!(OptionNumber::PROXY_URI.is_unsafe() && OptionNumber::PROXY_URI.is_critical());
        assert!(OptionNumber::NO_RESPONSE.is_unsafe() && OptionNumber::NO_RESPONSE.is_elective());
        assert!(OptionNumber::ECHO.is_elective() && !OptionNumber::ECHO.is_unsafe());
        assert!(OptionNumber::ECHO.is_no_cache_key());
        assert!(OptionNumber::REQUEST_TAG.is_elective());
        assert!(OptionNumber::OSCORE.is_critical() && !OptionNumber::OSCORE.is_unsafe());
    }

    #[test]
    fn registry_sorted_and_lookups() {
        assert!(REGISTRY.windows(2).all(|w| w[0].number < w[1].number));
        assert_eq!(
            OptionNumber::from_name("uri-path"),
            Some(OptionNumber::URI_PATH)
        );
        assert_eq!(OptionNumber(2048).info(), None);
        assert_eq!(OptionNumber::BLOCK2.info().map(|i| i.max_len), Some(3));
    }

    #[test]
    fn value_checks() {
        assert!(OptionNumber::URI_HOST.check_value(b"").is_err());
        assert!(OptionNumber::ETAG.check_value(&[0; 9]).is_err());
        assert!(OptionNumber::IF_NONE_MATCH.check_value(b"").is_ok());
        assert!(OptionNumber::IF_NONE_MATCH.check_value(b"x").is_err());
        assert_eq!(
            OptionNumber::URI_PATH.check_value(&[0xff]),
            Err(OptionValueError::NotUtf8)
        );
        assert!(OptionNumber(65000).check_value(&[0; 300]).is_ok());
    }

    #[test]
    fn uints() {
        let mut b = [0; 4];
        assert_eq!(encode_uint(0, &mut b), &[] as &[u8]);
        assert_eq!(encode_uint(60, &mut b), &[60]);
        assert_eq!(encode_uint(0x1234, &mut b), &[0x12, 0x34]);
        assert_eq!(encode_uint(u32::MAX, &mut b), &[0xff; 4]);
        assert_eq!(decode_uint(&[]), Some(0));
        assert_eq!(decode_uint(&[0]), Some(0));
        assert_eq!(decode_uint(&[0, 0, 0, 0, 1]), Some(1));
        assert_eq!(decode_uint(&[1, 0, 0, 0, 0]), None);
    }

    #[test]
    fn header_encoding_boundaries() {
        for (delta, len) in [
            (0u16, 0usize),
            (12, 12),
            (13, 13),
            (268, 268),
            (269, 269),
            (65535, 1034),
        ] {
            let mut buf = [0u8; 8];
            let n = write_header(delta, len, &mut buf);
            assert_eq!(n, header_len(delta, len));
            let mut full = [0u8; 2048];
            full[..n].copy_from_slice(&buf[..n]);
            let (opt, used) = read_option(&full[..n + len], 0).unwrap();
            assert_eq!(opt.number.0, delta);
            assert_eq!(opt.value.len(), len);
            assert_eq!(used, n + len);
        }
    }
}
