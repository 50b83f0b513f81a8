//! The OSCORE option value (RFC 8613 §6.1): flag byte, Partial IV, kid context, kid.
//!
//! ```text
//!  0 1 2 3 4 5 6 7 <------------- n bytes -------------->
//! |0 0 0|h|k|  n  |       Partial IV (if any) ...
//!  <- 1 byte -> <----- s bytes ------>
//! | s (if any) | kid context (if any) | kid (if any) ... |
//! ```
//!
//! Parsing is strict: reserved flag bits, `n` of 6 or 7, a flag byte of zero that is not
//! an empty value, a non-minimal Partial IV, or bytes left over are all errors.

use super::params::{MAX_ID_CONTEXT_LEN, MAX_ID_LEN};

/// Largest Partial IV length in bytes (RFC 8613 §6.1: n = 6 and 7 are reserved).
pub const MAX_PIV_LEN: usize = 5;

/// Largest Partial IV value: 2^40 - 1 (RFC 8613 §7.2.1, the Sender Sequence Number limit).
pub const MAX_PIV: u64 = (1 << 40) - 1;

/// Largest encoded option value this crate writes or accepts: flags, PIV, s, kid context,
/// kid.
pub const MAX_OPTION_LEN: usize = 1 + MAX_PIV_LEN + 1 + MAX_ID_CONTEXT_LEN + MAX_ID_LEN;

// RFC 8613 §6.1 flag bits.
const FLAG_N_MASK: u8 = 0x07;
const FLAG_K: u8 = 0x08;
const FLAG_H: u8 = 0x10;
const FLAG_RESERVED: u8 = 0xe0;

/// A Partial IV: a sequence number of at most 40 bits, encoded big-endian without
/// leading zero bytes (0 is encoded as one byte 0x00; RFC 8613 §5).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PartialIv(u64);

impl PartialIv {
    /// A Partial IV from a sequence number, if it is within 40 bits.
    pub const fn new(seq: u64) -> Option<PartialIv> {
        if seq > MAX_PIV {
            None
        } else {
            Some(PartialIv(seq))
        }
    }

    /// The sequence number.
    pub const fn value(self) -> u64 {
        self.0
    }

    /// Minimal big-endian encoding into the start of `buf`; returns its length (1..=5).
    pub fn encode(self, buf: &mut [u8; MAX_PIV_LEN]) -> usize {
        let bytes = self.0.to_be_bytes();
        // The 5 low bytes; strip leading zeros but keep at least one byte.
        let low = bytes.get(8 - MAX_PIV_LEN..).unwrap_or_default();
        let skip = low
            .iter()
            .take(MAX_PIV_LEN - 1)
            .take_while(|b| **b == 0)
            .count();
        let n = MAX_PIV_LEN - skip;
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), low.get(skip..)) {
            dst.copy_from_slice(src);
        }
        n
    }

    /// Decodes a received Partial IV, strictly: 1..=5 bytes, no leading zero byte unless
    /// the value is the single byte 0x00.
    pub fn decode(bytes: &[u8]) -> Result<PartialIv, OptionError> {
        if bytes.is_empty() || bytes.len() > MAX_PIV_LEN {
            return Err(OptionError::PivLength);
        }
        if bytes.len() > 1 && bytes.first() == Some(&0) {
            return Err(OptionError::PivNotMinimal);
        }
        let v = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        Ok(PartialIv(v))
    }
}

/// Why an OSCORE option value is malformed (RFC 8613 §6.1). The server answers 4.02
/// (Bad Option) "Failed to decode COSE" (RFC 8613 §8.2 step 3).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OptionError {
    /// One of the three reserved high flag bits is set.
    #[error("reserved flag bits set")]
    ReservedFlags,
    /// The Partial IV length `n` is 6 or 7 (reserved), or the value is shorter than `n`.
    #[error("invalid Partial IV length")]
    PivLength,
    /// The Partial IV has a leading zero byte.
    #[error("Partial IV not minimally encoded")]
    PivNotMinimal,
    /// A flag byte of 0x00 must be sent as an empty option value.
    #[error("flag byte zero in a non-empty value")]
    ZeroFlags,
    /// The kid context length byte or value is missing or too long.
    #[error("invalid kid context")]
    KidContext,
    /// The kid is longer than any Recipient ID this crate accepts.
    #[error("kid too long")]
    KidTooLong,
    /// Bytes after the Partial IV / kid context without the kid flag.
    #[error("trailing bytes without kid flag")]
    Trailing,
    /// The value is longer than this crate can encode.
    #[error("option value too long")]
    TooLong,
}

/// A parsed (or to-be-written) OSCORE option value. Borrowed, zero-copy.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct OscoreOption<'a> {
    /// Partial IV, if present.
    pub partial_iv: Option<PartialIv>,
    /// kid context, if present (the `h` flag).
    pub kid_context: Option<&'a [u8]>,
    /// kid, if present (the `k` flag); may be empty.
    pub kid: Option<&'a [u8]>,
}

impl<'a> OscoreOption<'a> {
    /// Parses an option value strictly (RFC 8613 §6.1).
    pub fn parse(value: &'a [u8]) -> Result<OscoreOption<'a>, OptionError> {
        let Some((&flags, rest)) = value.split_first() else {
            return Ok(OscoreOption::default());
        };
        if flags & FLAG_RESERVED != 0 {
            return Err(OptionError::ReservedFlags);
        }
        if flags == 0 {
            // RFC 8613 §6.1: all flags zero => the value SHALL be empty.
            return Err(OptionError::ZeroFlags);
        }
        let n = usize::from(flags & FLAG_N_MASK);
        if n > MAX_PIV_LEN {
            return Err(OptionError::PivLength);
        }
        let (piv, mut rest) = if n == 0 {
            (None, rest)
        } else {
            let piv = rest.get(..n).ok_or(OptionError::PivLength)?;
            let tail = rest.get(n..).unwrap_or_default();
            (Some(PartialIv::decode(piv)?), tail)
        };
        let kid_context = if flags & FLAG_H != 0 {
            let (&s, tail) = rest.split_first().ok_or(OptionError::KidContext)?;
            let s = usize::from(s);
            if s > MAX_ID_CONTEXT_LEN {
                return Err(OptionError::KidContext);
            }
            let ctx = tail.get(..s).ok_or(OptionError::KidContext)?;
            rest = tail.get(s..).unwrap_or_default();
            Some(ctx)
        } else {
            None
        };
        let kid = if flags & FLAG_K != 0 {
            if rest.len() > MAX_ID_LEN {
                return Err(OptionError::KidTooLong);
            }
            Some(rest)
        } else {
            if !rest.is_empty() {
                return Err(OptionError::Trailing);
            }
            None
        };
        Ok(OscoreOption {
            partial_iv: piv,
            kid_context,
            kid,
        })
    }

    /// Encodes the value into `out`; returns its length (0 for an option with no fields).
    pub fn encode(&self, out: &mut [u8; MAX_OPTION_LEN]) -> Result<usize, OptionError> {
        let mut piv = [0u8; MAX_PIV_LEN];
        let n = self.partial_iv.map_or(0, |p| p.encode(&mut piv));
        let mut flags = n as u8;
        let mut pos = 1;
        if let Some(p) = piv.get(..n) {
            put(out, &mut pos, p)?;
        }
        if let Some(ctx) = self.kid_context {
            if ctx.len() > MAX_ID_CONTEXT_LEN {
                return Err(OptionError::KidContext);
            }
            flags |= FLAG_H;
            put(out, &mut pos, &[ctx.len() as u8])?;
            put(out, &mut pos, ctx)?;
        }
        if let Some(kid) = self.kid {
            if kid.len() > MAX_ID_LEN {
                return Err(OptionError::KidTooLong);
            }
            flags |= FLAG_K;
            put(out, &mut pos, kid)?;
        }
        if flags == 0 {
            return Ok(0);
        }
        out[0] = flags;
        Ok(pos)
    }
}

fn put(out: &mut [u8], pos: &mut usize, bytes: &[u8]) -> Result<(), OptionError> {
    let end = *pos + bytes.len();
    out.get_mut(*pos..end)
        .ok_or(OptionError::TooLong)?
        .copy_from_slice(bytes);
    *pos = end;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_8613_c4_option_value() {
        // RFC 8613 Appendix C.4: PIV 0x14, kid present and empty.
        let o = OscoreOption::parse(&[0x09, 0x14]).unwrap();
        assert_eq!(o.partial_iv, PartialIv::new(20));
        assert_eq!(o.kid, Some(&[][..]));
        assert_eq!(o.kid_context, None);
        let mut b = [0; MAX_OPTION_LEN];
        assert_eq!(o.encode(&mut b).unwrap(), 2);
        assert_eq!(&b[..2], &[0x09, 0x14]);
    }

    #[test]
    fn rfc_8613_c6_option_with_kid_context() {
        let v = [
            0x19, 0x14, 0x08, 0x37, 0xcb, 0xf3, 0x21, 0x00, 0x17, 0xa2, 0xd3,
        ];
        let o = OscoreOption::parse(&v).unwrap();
        assert_eq!(o.partial_iv, PartialIv::new(20));
        assert_eq!(
            o.kid_context,
            Some(&[0x37, 0xcb, 0xf3, 0x21, 0x00, 0x17, 0xa2, 0xd3][..])
        );
        assert_eq!(o.kid, Some(&[][..]));
        let mut b = [0; MAX_OPTION_LEN];
        let n = o.encode(&mut b).unwrap();
        assert_eq!(&b[..n], &v);
    }

    #[test]
    fn empty_value_means_no_fields() {
        assert_eq!(OscoreOption::parse(&[]).unwrap(), OscoreOption::default());
        let mut b = [0; MAX_OPTION_LEN];
        assert_eq!(OscoreOption::default().encode(&mut b).unwrap(), 0);
    }

    #[test]
    fn strict_rejections() {
        assert_eq!(OscoreOption::parse(&[0x00]), Err(OptionError::ZeroFlags));
        assert_eq!(
            OscoreOption::parse(&[0x20]),
            Err(OptionError::ReservedFlags)
        );
        assert_eq!(
            OscoreOption::parse(&[0x06, 1, 2, 3, 4, 5, 6]),
            Err(OptionError::PivLength)
        );
        assert_eq!(OscoreOption::parse(&[0x02, 1]), Err(OptionError::PivLength));
        assert_eq!(
            OscoreOption::parse(&[0x02, 0, 1]),
            Err(OptionError::PivNotMinimal)
        );
        assert_eq!(
            OscoreOption::parse(&[0x01, 1, 9]),
            Err(OptionError::Trailing)
        );
        assert_eq!(
            OscoreOption::parse(&[0x11, 1]),
            Err(OptionError::KidContext)
        );
        assert_eq!(
            OscoreOption::parse(&[0x11, 1, 3, 0xaa]),
            Err(OptionError::KidContext)
        );
        assert_eq!(
            OscoreOption::parse(&[0x09, 1, 1, 2, 3, 4, 5, 6, 7, 8]),
            Err(OptionError::KidTooLong)
        );
    }

    #[test]
    fn piv_encoding_is_minimal() {
        let mut b = [0; MAX_PIV_LEN];
        assert_eq!(PartialIv(0).encode(&mut b), 1);
        assert_eq!(b[0], 0);
        assert_eq!(PartialIv(0x0100).encode(&mut b), 2);
        assert_eq!(&b[..2], &[1, 0]);
        assert_eq!(PartialIv(MAX_PIV).encode(&mut b), 5);
        assert_eq!(b, [0xff; 5]);
        assert_eq!(PartialIv::new(MAX_PIV + 1), None);
        assert_eq!(PartialIv::decode(&[0]).unwrap(), PartialIv(0));
    }
}
