//! Block-wise transfers (RFC 7959): the Block1/Block2 option value, serving a
//! representation by offset, and bounded reassembly of uploads.

use crate::code::Code;
use crate::message::Message;
use crate::option::{decode_uint, OptionNumber};

/// Largest SZX over UDP (1024-byte blocks); 7 is BERT, reliable transports only (§2.2).
pub const MAX_SZX: u8 = 6;

/// A Block1 or Block2 option value (RFC 7959 §2.2): block number, more flag, size exponent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Block {
    /// Block number (20 bits).
    pub num: u32,
    /// More blocks follow.
    pub more: bool,
    /// Size exponent: the block size is `16 << szx`.
    pub szx: u8,
}

impl Block {
    /// A block value.
    pub const fn new(num: u32, more: bool, szx: u8) -> Block {
        Block { num, more, szx }
    }

    /// Decodes an option value; `None` for values over 3 bytes or SZX 7 (§2.2).
    pub fn decode(value: &[u8]) -> Option<Block> {
        if value.len() > 3 {
            return None;
        }
        let v = decode_uint(value)?;
        let szx = (v & 7) as u8;
        if szx > MAX_SZX {
            return None;
        }
        Some(Block {
            num: v >> 4,
            more: v & 8 != 0,
            szx,
        })
    }

    /// The uint to put in the option.
    pub const fn encode(self) -> u32 {
        (self.num << 4) | ((self.more as u32) << 3) | (self.szx as u32 & 7)
    }

    /// Block size in bytes.
    pub const fn size(self) -> usize {
        16 << self.szx
    }

    /// Offset of this block in the representation.
    pub const fn offset(self) -> usize {
        (self.num as usize) << (self.szx as usize + 4)
    }

    /// The largest SZX whose block fits in `bytes` (at least 0: 16-byte blocks).
    pub const fn szx_for(bytes: usize) -> u8 {
        let mut szx = MAX_SZX;
        while szx > 0 && (16usize << szx) > bytes {
            szx -= 1;
        }
        szx
    }

    /// The Block1 or Block2 option of a message, if present and valid.
    pub fn of(message: &Message<'_>, number: OptionNumber) -> Option<Block> {
        message.option(number).and_then(|o| Block::decode(o.value))
    }
}

/// Why a block of an upload was refused (RFC 7959 §2.3, §2.9).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BlockError {
    /// A block arrived out of order, or a transfer's first block is missing: 4.08.
    #[error("block out of order or missing (4.08 Request Entity Incomplete)")]
    Incomplete,
    /// The body would exceed the storage: 4.13 with Size1 = the limit.
    #[error("request body too large (4.13 Request Entity Too Large)")]
    TooLarge {
        /// The largest body accepted.
        limit: usize,
    },
}

impl BlockError {
    /// The response code for this error.
    pub const fn code(self) -> Code {
        match self {
            BlockError::Incomplete => Code::REQUEST_ENTITY_INCOMPLETE,
            BlockError::TooLarge { .. } => Code::REQUEST_ENTITY_TOO_LARGE,
        }
    }
}

/// Bounded reassembly of a Block1 upload on the server (RFC 7959 §2.5): blocks must come
/// in order from one client with one Request-Tag; the body becomes available only when
/// the last block arrived (atomic semantics). Storage is the caller's: `CAP` bytes.
#[derive(Debug)]
pub struct Reassembly<const CAP: usize> {
    buf: [u8; CAP],
    len: usize,
    /// Request-Tag (RFC 9175 §3) and token-independent identity of the transfer in progress.
    tag: Option<([u8; 8], u8)>,
    active: bool,
}

/// What one block of an upload led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress<'a> {
    /// Stored; answer 2.31 Continue with this Block1 value.
    Continue(Block),
    /// The last block arrived: the whole body, and the Block1 value to echo.
    Complete(&'a [u8], Option<Block>),
}

impl<const CAP: usize> Default for Reassembly<CAP> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const CAP: usize> Reassembly<CAP> {
    /// Empty storage.
    pub const fn new() -> Self {
        Reassembly {
            buf: [0; CAP],
            len: 0,
            tag: None,
            active: false,
        }
    }

    /// Takes the request's payload, with or without Block1. A request without Block1 is a
    /// complete body at once (if it fits).
    pub fn accept(&mut self, request: &Message<'_>) -> Result<Progress<'_>, BlockError> {
        let payload = request.payload();
        let Some(block) = Block::of(request, OptionNumber::BLOCK1) else {
            self.active = false;
            let dst = self
                .buf
                .get_mut(..payload.len())
                .ok_or(BlockError::TooLarge { limit: CAP })?;
            dst.copy_from_slice(payload);
            self.len = payload.len();
            return Ok(Progress::Complete(
                self.buf.get(..self.len).unwrap_or_default(),
                None,
            ));
        };
        let tag = request.option(OptionNumber::REQUEST_TAG).map(|o| {
            let mut t = [0u8; 8];
            let n = o.value.len().min(8);
            t[..n].copy_from_slice(&o.value[..n]);
            (t, n as u8)
        });
        if let Some(size1) = request.uint_option(OptionNumber::SIZE1) {
            if size1 as usize > CAP {
                return Err(BlockError::TooLarge { limit: CAP });
            }
        }
        if block.num == 0 {
            // A new transfer (possibly replacing an abandoned one).
            self.active = true;
            self.len = 0;
            self.tag = tag;
        } else if !self.active || self.tag != tag {
            return Err(BlockError::Incomplete);
        }
        // Blocks follow each other without gap or overlap, whatever their size (the
        // server may have asked for smaller ones, §2.5); every block but the last is full.
        if block.more && payload.len() != block.size() {
            self.active = false;
            return Err(BlockError::Incomplete);
        }
        let offset = block.offset();
        if offset != self.len {
            self.active = false;
            return Err(BlockError::Incomplete);
        }
        let end = offset + payload.len();
        let Some(dst) = self.buf.get_mut(offset..end) else {
            self.active = false;
            return Err(BlockError::TooLarge { limit: CAP });
        };
        dst.copy_from_slice(payload);
        self.len = end;
        if block.more {
            Ok(Progress::Continue(Block::new(block.num, true, block.szx)))
        } else {
            self.active = false;
            Ok(Progress::Complete(
                self.buf.get(..self.len).unwrap_or_default(),
                Some(block),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_value_round_trip_and_limits() {
        for (num, more, szx) in [
            (0, false, 0),
            (1, true, 6),
            (15, false, 2),
            (0xfffff, true, 4),
        ] {
            let b = Block::new(num, more, szx);
            let mut buf = [0; 4];
            let v = crate::option::encode_uint(b.encode(), &mut buf);
            assert!(v.len() <= 3);
            assert_eq!(Block::decode(v), Some(b));
        }
        assert_eq!(Block::decode(&[0x07]), None, "SZX 7 is BERT");
        assert_eq!(Block::decode(&[1, 2, 3, 4]), None);
        assert_eq!(Block::decode(&[]), Some(Block::new(0, false, 0)));
        assert_eq!(Block::new(3, false, 2).offset(), 192);
        assert_eq!(Block::szx_for(1024), 6);
        assert_eq!(Block::szx_for(1000), 5);
        assert_eq!(Block::szx_for(3), 0);
    }
}
