//! Block-wise transfers (RFC 7959): the Block1/Block2 option value, serving a
//! representation by offset, and bounded reassembly of uploads.

use core::time::Duration;

use crate::code::Code;
use crate::message::Message;
use crate::option::{decode_uint, OptionNumber};
use crate::time::Instant;

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
    /// A block arrived out of order, or a transfer's first block is missing (never came,
    /// was another client's, or expired): 4.08 (RFC 7959 §2.9.2).
    #[error("block out of order or missing (4.08 Request Entity Incomplete)")]
    Incomplete,
    /// The body would exceed the storage: 4.13 with Size1 = the limit.
    #[error("request body too large (4.13 Request Entity Too Large)")]
    TooLarge {
        /// The largest body accepted.
        limit: usize,
    },
    /// The storage holds another client's (or another request's) transfer that is still
    /// active: 5.03 with Max-Age = `retry_after` seconds (RFC 7252 §5.9.3.4). The transfer
    /// in progress is left alone, so a flood of first blocks cannot abort it.
    #[error("another upload is in progress (5.03 Service Unavailable)")]
    Busy {
        /// Seconds until the transfer in progress expires if it gets no further block.
        retry_after: u32,
    },
}

impl BlockError {
    /// The response code for this error.
    pub const fn code(self) -> Code {
        match self {
            BlockError::Incomplete => Code::REQUEST_ENTITY_INCOMPLETE,
            BlockError::TooLarge { .. } => Code::REQUEST_ENTITY_TOO_LARGE,
            BlockError::Busy { .. } => Code::SERVICE_UNAVAILABLE,
        }
    }
}

/// How long a transfer may wait for its next block before it is dropped, unless
/// [`Reassembly::with_idle`] says otherwise.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(60);

/// The options that say which operation a block belongs to besides its sender: the target
/// resource (Uri-Host, Uri-Port, Uri-Path, Uri-Query) and the Request-Tag (RFC 9175 §3.3:
/// blocks of one operation carry the same Request-Tag, an absent one being distinct from
/// an empty one).
const OPERATION_OPTIONS: [OptionNumber; 5] = [
    OptionNumber::URI_HOST,
    OptionNumber::URI_PORT,
    OptionNumber::URI_PATH,
    OptionNumber::URI_QUERY,
    OptionNumber::REQUEST_TAG,
];

/// A 64-bit FNV-1a fingerprint of a request's [`OPERATION_OPTIONS`] (number, length and
/// value of each occurrence, so an absent option and an empty one differ). It stands in
/// for a copy of the options, which allocation-free storage cannot keep; only blocks from
/// the same peer are compared with it.
pub fn operation_fingerprint(request: &Message<'_>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    for number in OPERATION_OPTIONS {
        for value in request.options_of(number) {
            number.0.to_be_bytes().into_iter().for_each(&mut eat);
            (value.len() as u16)
                .to_be_bytes()
                .into_iter()
                .for_each(&mut eat);
            value.iter().copied().for_each(&mut eat);
        }
    }
    h
}

/// The transfer a [`Reassembly`] holds: whose, which operation, when its last block came.
#[derive(Debug, Clone)]
struct Transfer<P> {
    peer: P,
    operation: u64,
    last: Instant,
    /// Blocks stored: 1 until the peer continues after the 2.31.
    blocks: u32,
}

/// Bounded reassembly of a Block1 upload on the server (RFC 7959 §2.5). A transfer is
/// keyed by the peer, the Request-Tag and the target resource (RFC 9175 §3): blocks must
/// come in order from that peer for that operation; a later block from anyone else never
/// touches it (4.08), nor does a first block once the transfer got past its own first
/// block (5.03 with the time left; before that, a new first block takes the storage). A
/// transfer that gets no block for the idle time ([`DEFAULT_IDLE`]) expires: its next block
/// gets 4.08 and the storage is free for another client. The body becomes available only
/// when the last block arrived (atomic semantics). Storage is the caller's: `CAP` bytes.
#[derive(Debug)]
pub struct Reassembly<P, const CAP: usize> {
    buf: [u8; CAP],
    len: usize,
    transfer: Option<Transfer<P>>,
    idle: Duration,
}

/// What one block of an upload led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress<'a> {
    /// Stored; answer 2.31 Continue with this Block1 value.
    Continue(Block),
    /// The last block arrived: the whole body, and the Block1 value to echo.
    Complete(&'a [u8], Option<Block>),
}

impl<P: PartialEq + Clone, const CAP: usize> Default for Reassembly<P, CAP> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: PartialEq + Clone, const CAP: usize> Reassembly<P, CAP> {
    /// Empty storage; transfers expire after [`DEFAULT_IDLE`].
    pub const fn new() -> Self {
        Reassembly {
            buf: [0; CAP],
            len: 0,
            transfer: None,
            idle: DEFAULT_IDLE,
        }
    }

    /// Transfers expire after `idle` without a block.
    pub const fn with_idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// Whether a transfer is in progress at `now` (not finished, failed or expired).
    pub fn in_progress(&self, now: Instant) -> bool {
        self.transfer
            .as_ref()
            .is_some_and(|t| now.saturating_since(t.last) < self.idle)
    }

    /// Drops the transfer in progress if it has been idle for the idle time; `true` if one
    /// was dropped. [`Reassembly::accept`] does this too, so calling it is optional.
    pub fn expire(&mut self, now: Instant) -> bool {
        if self.transfer.is_some() && !self.in_progress(now) {
            self.abort();
            return true;
        }
        false
    }

    fn abort(&mut self) {
        self.transfer = None;
        self.len = 0;
    }

    /// Takes a request's payload, with or without Block1, from `peer` at `now`. A request
    /// without Block1 (or a block 0 that is also the last) is a complete body at once, if it
    /// fits, and leaves a transfer in progress alone.
    pub fn accept<'a>(
        &'a mut self,
        now: Instant,
        peer: &P,
        request: &Message<'a>,
    ) -> Result<Progress<'a>, BlockError> {
        let payload = request.payload();
        let block = Block::of(request, OptionNumber::BLOCK1);
        if let Some(size1) = request.uint_option(OptionNumber::SIZE1) {
            if size1 as usize > CAP {
                self.drop_if_owned(peer, request);
                return Err(BlockError::TooLarge { limit: CAP });
            }
        }
        let whole = match block {
            None => true,
            Some(b) => b.num == 0 && !b.more,
        };
        if whole {
            // Nothing to keep: the payload is the body (RFC 7959 §2.3 for Block1 0 with M=0).
            if payload.len() > CAP {
                return Err(BlockError::TooLarge { limit: CAP });
            }
            self.drop_if_owned(peer, request);
            return Ok(Progress::Complete(payload, block));
        }
        let Some(block) = block else {
            return Err(BlockError::Incomplete);
        };
        self.expire(now);
        let operation = operation_fingerprint(request);
        let owned = self
            .transfer
            .as_ref()
            .is_some_and(|t| t.peer == *peer && t.operation == operation);
        if block.num == 0 {
            // Another's transfer that got past its first block (its peer saw the 2.31 and
            // went on) is protected; one with its first block alone is not, or a single
            // first block (which a spoofer can send blind) would hold the storage for the
            // whole idle time.
            let protected = self.transfer.as_ref().filter(|t| !owned && t.blocks > 1);
            if let Some(t) = protected {
                let left = self.idle.saturating_sub(now.saturating_since(t.last));
                let retry_after = u32::try_from(left.as_secs().max(1)).unwrap_or(u32::MAX);
                return Err(BlockError::Busy { retry_after });
            }
            // A new transfer, or this peer restarting its own.
            self.len = 0;
            self.transfer = Some(Transfer {
                peer: peer.clone(),
                operation,
                last: now,
                blocks: 0,
            });
        } else if !owned {
            // Nobody's start, or somebody else's transfer: that one is not touched.
            return Err(BlockError::Incomplete);
        }
        // Blocks follow each other without gap or overlap, whatever their size (the
        // server may have asked for smaller ones, §2.5); every block but the last is full.
        if block.more && payload.len() != block.size() {
            self.abort();
            return Err(BlockError::Incomplete);
        }
        let offset = block.offset();
        if offset != self.len {
            self.abort();
            return Err(BlockError::Incomplete);
        }
        let end = offset + payload.len();
        let Some(dst) = self.buf.get_mut(offset..end) else {
            self.abort();
            return Err(BlockError::TooLarge { limit: CAP });
        };
        dst.copy_from_slice(payload);
        self.len = end;
        if block.more {
            if let Some(t) = self.transfer.as_mut() {
                t.last = now;
                t.blocks = t.blocks.saturating_add(1);
            }
            Ok(Progress::Continue(Block::new(block.num, true, block.szx)))
        } else {
            self.transfer = None;
            Ok(Progress::Complete(
                self.buf.get(..self.len).unwrap_or_default(),
                Some(block),
            ))
        }
    }

    /// A complete or refused request of the peer that owns the transfer, for the same
    /// operation, replaces it (the client has given up on it).
    fn drop_if_owned(&mut self, peer: &P, request: &Message<'_>) {
        let owned = self
            .transfer
            .as_ref()
            .is_some_and(|t| t.peer == *peer && t.operation == operation_fingerprint(request));
        if owned {
            self.abort();
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

    /// A PUT to `path` from whoever the caller says, with Block1 and a Request-Tag.
    fn put<'b>(
        buf: &'b mut [u8],
        path: &str,
        tag: Option<&[u8]>,
        block: Option<Block>,
        payload: &[u8],
    ) -> Message<'b> {
        use crate::message::{MessageBuilder, MessageType};
        let mut b = MessageBuilder::new(buf, MessageType::Con, Code::PUT, 1, &[1]).unwrap();
        b.option_str(OptionNumber::URI_PATH, path).unwrap();
        if let Some(bl) = block {
            b.option_uint(OptionNumber::BLOCK1, bl.encode()).unwrap();
        }
        if let Some(t) = tag {
            b.option(OptionNumber::REQUEST_TAG, t).unwrap();
        }
        b.payload(payload).unwrap();
        let n = b.finish();
        Message::parse(&buf[..n]).unwrap()
    }

    const A: u8 = 1;
    const B: u8 = 2;
    const T0: Instant = Instant::ZERO;

    #[test]
    fn another_peers_blocks_never_touch_a_transfer() {
        let mut r: Reassembly<u8, 64> = Reassembly::new();
        let mut b = [[0u8; 128]; 3];
        let [b0, b1, b2] = &mut b;
        for num in 0..2 {
            let m = put(b0, "up", None, Some(Block::new(num, true, 0)), &[b'a'; 16]);
            assert_eq!(
                r.accept(T0, &A, &m),
                Ok(Progress::Continue(Block::new(num, true, 0)))
            );
        }
        // B's block 2 (the continuation A would send) is not A's: 4.08, A's data stays.
        let spoof = put(b1, "up", None, Some(Block::new(2, false, 0)), b"bbb");
        assert_eq!(r.accept(T0, &B, &spoof), Err(BlockError::Incomplete));
        // B's block 0 while A's transfer is under way: 5.03 with the time left.
        let start = put(b1, "up", None, Some(Block::new(0, true, 0)), &[b'b'; 16]);
        assert_eq!(
            r.accept(Instant::from_millis(10_000), &B, &start),
            Err(BlockError::Busy { retry_after: 50 })
        );
        assert_eq!(
            BlockError::Busy { retry_after: 1 }.code(),
            Code::SERVICE_UNAVAILABLE
        );
        // B's body in one message is complete at once and leaves A's transfer alone.
        let whole = put(b1, "up", None, None, b"B whole");
        assert_eq!(
            r.accept(T0, &B, &whole),
            Ok(Progress::Complete(&b"B whole"[..], None))
        );
        let last = put(b2, "up", None, Some(Block::new(2, false, 0)), b"end");
        let mut want = [b'a'; 35];
        want[32..].copy_from_slice(b"end");
        assert_eq!(
            r.accept(T0, &A, &last),
            Ok(Progress::Complete(&want[..], Some(Block::new(2, false, 0))))
        );
        assert!(!r.in_progress(T0));
    }

    #[test]
    fn a_first_block_alone_does_not_hold_the_storage() {
        let mut r: Reassembly<u8, 64> = Reassembly::new();
        let mut b = [[0u8; 128]; 2];
        let [b0, b1] = &mut b;
        // A spoofer's first block, then B's: B's takes the storage (the spoofer never
        // sees the 2.31, so its transfer would never go on).
        let first = put(b0, "up", None, Some(Block::new(0, true, 0)), &[b'a'; 16]);
        assert!(r.accept(T0, &A, &first).is_ok());
        let first = put(b0, "up", None, Some(Block::new(0, true, 0)), &[b'b'; 16]);
        assert!(r.accept(T0, &B, &first).is_ok());
        let next = put(b1, "up", None, Some(Block::new(1, false, 0)), b"!");
        assert_eq!(r.accept(T0, &A, &next), Err(BlockError::Incomplete));
        let mut want = [b'b'; 17];
        want[16] = b'!';
        assert_eq!(
            r.accept(T0, &B, &next),
            Ok(Progress::Complete(&want[..], Some(Block::new(1, false, 0))))
        );
    }

    #[test]
    fn request_tag_and_resource_are_part_of_the_key() {
        let mut r: Reassembly<u8, 64> = Reassembly::new();
        let mut b = [[0u8; 128]; 2];
        let [b0, b1] = &mut b;
        for num in 0..2 {
            let m = put(
                b0,
                "up",
                Some(b"t1"),
                Some(Block::new(num, true, 0)),
                &[1; 16],
            );
            assert!(r.accept(T0, &A, &m).is_ok());
        }
        // Same peer, another Request-Tag, an absent one, or another resource: not this
        // transfer (RFC 9175 §3.3).
        for (path, tag) in [
            ("up", Some(&b"t2"[..])),
            ("up", None),
            ("other", Some(b"t1")),
        ] {
            let next = put(b1, path, tag, Some(Block::new(2, true, 0)), &[2; 16]);
            assert_eq!(
                r.accept(T0, &A, &next),
                Err(BlockError::Incomplete),
                "{path} {tag:?}"
            );
            let start = put(b1, path, tag, Some(Block::new(0, true, 0)), &[2; 16]);
            assert!(matches!(
                r.accept(T0, &A, &start),
                Err(BlockError::Busy { .. })
            ));
        }
        // An empty Request-Tag is not an absent one.
        let empty = put(b1, "up", Some(b""), None, b"");
        let empty = operation_fingerprint(&empty);
        let absent = put(b0, "up", None, None, b"");
        assert_ne!(empty, operation_fingerprint(&absent));
        // The owner, with its tag, goes on.
        let next = put(
            b1,
            "up",
            Some(b"t1"),
            Some(Block::new(2, false, 0)),
            &[2; 3],
        );
        assert!(matches!(
            r.accept(T0, &A, &next),
            Ok(Progress::Complete(body, _)) if body.len() == 35
        ));
    }

    #[test]
    fn an_idle_transfer_expires_and_frees_the_storage() {
        let idle = Duration::from_secs(5);
        let mut r: Reassembly<u8, 64> = Reassembly::new().with_idle(idle);
        let (mut b0, mut b1) = ([0u8; 128], [0u8; 128]);
        let first = put(&mut b0, "up", None, Some(Block::new(0, true, 0)), &[1; 16]);
        assert!(r.accept(T0, &A, &first).is_ok());
        let later = Instant::from_millis(4_999);
        assert!(r.in_progress(later));
        assert!(!r.expire(later));
        // The next block after the idle time: 4.08 (RFC 7959 §2.9.2), and B may start.
        let expired = T0 + idle;
        let next = put(&mut b1, "up", None, Some(Block::new(1, true, 0)), &[2; 16]);
        assert_eq!(r.accept(expired, &A, &next), Err(BlockError::Incomplete));
        assert!(!r.in_progress(expired));
        assert!(r.accept(expired, &B, &first).is_ok());
        assert!(r.expire(expired + idle));
        assert!(!r.in_progress(expired + idle));
    }
}
