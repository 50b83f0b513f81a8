//! The stream framer (RFC 8323 §3.2): bytes from a TCP or TLS stream as they arrive, in any
//! split and several messages per read, into complete messages.
//!
//! The framer owns no memory: the caller lends it a buffer, which bounds the largest
//! message. A message longer than the negotiated Max-Message-Size (§5.3.1) or than the
//! buffer is reported as soon as its length is known, before its body is read, so a peer
//! cannot make the framer wait for (or store) more than it agreed to. The stream cannot be
//! resynchronised after an error; the connection answers it with Abort (§5.6).

use super::wire::{FrameHead, WireError};

/// Why the stream cannot be framed any further.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameError {
    /// A message longer than the limit (Max-Message-Size, or the buffer if smaller).
    #[error("message of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The message length its header declares.
        len: u64,
        /// The limit in force.
        limit: usize,
    },
    /// The header cannot be delimited (a reserved token length).
    #[error("{0}")]
    Wire(WireError),
}

/// Splits a byte stream into messages, in a caller-provided buffer.
///
/// ```
/// use coap_core::reliable::Framer;
///
/// let mut buf = [0u8; 64];
/// let mut framer = Framer::new(&mut buf, 1152);
/// // A 0.00 message and the first byte of a CSM (`0x00 0xe1`), as one read:
/// framer.push(&[0x00, 0x00, 0x00]);
/// assert_eq!(framer.next_frame().unwrap(), Some(&[0x00, 0x00][..]));
/// assert_eq!(framer.next_frame().unwrap(), None); // the CSM is not complete yet
/// framer.push(&[0xe1]);
/// assert_eq!(framer.next_frame().unwrap(), Some(&[0x00, 0xe1][..]));
/// ```
#[derive(Debug)]
pub struct Framer<'b> {
    buf: &'b mut [u8],
    /// First byte not yet handed out.
    start: usize,
    /// End of the bytes received.
    end: usize,
    /// Max-Message-Size this side announced (§5.3.1).
    max_message_size: usize,
    /// The first error; the stream is dead after it.
    failed: Option<FrameError>,
}

impl<'b> Framer<'b> {
    /// A framer over `buf` accepting messages of up to `max_message_size` bytes (the
    /// value this side announces in its CSM; the buffer bounds it too).
    pub fn new(buf: &'b mut [u8], max_message_size: usize) -> Self {
        Framer {
            buf,
            start: 0,
            end: 0,
            max_message_size,
            failed: None,
        }
    }

    /// Changes the Max-Message-Size limit (e.g. after announcing a new CSM).
    pub fn set_max_message_size(&mut self, max_message_size: usize) {
        self.max_message_size = max_message_size;
    }

    /// The limit in force: the smaller of Max-Message-Size and the buffer.
    pub fn limit(&self) -> usize {
        self.max_message_size.min(self.buf.len())
    }

    /// Bytes received and not yet handed out as a message.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The free space to read into (after moving the unread bytes to the front); follow
    /// with [`Framer::commit`]. Empty after an error.
    pub fn space(&mut self) -> &mut [u8] {
        if self.failed.is_some() {
            return &mut [];
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        self.buf.get_mut(self.end..).unwrap_or_default()
    }

    /// Commits `n` bytes written into [`Framer::space`] (clamped to the buffer).
    pub fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Copies as many of `bytes` as fit; returns how many were taken. Call
    /// [`Framer::next_frame`] until it yields nothing, then push the rest.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let space = self.space();
        let n = bytes.len().min(space.len());
        space[..n].copy_from_slice(&bytes[..n]);
        self.commit(n);
        n
    }

    /// The next complete message, `Ok(None)` when more bytes are needed. Once an error
    /// has been returned, every later call returns it again.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let pending = self.buf.get(self.start..self.end).unwrap_or_default();
        let head = match FrameHead::peek(pending) {
            Ok(h) => h,
            Err(e) => return Err(self.fail(FrameError::Wire(e))),
        };
        let Some(head) = head else {
            // A header needs at most 5 bytes to give the length; a buffer full of an
            // undelimitable prefix can only mean a buffer too small for any message.
            if pending.len() == self.buf.len() {
                let limit = self.limit();
                return Err(self.fail(FrameError::TooLarge {
                    len: pending.len() as u64 + 1,
                    limit,
                }));
            }
            return Ok(None);
        };
        let limit = self.limit();
        if head.total_len > limit as u64 {
            return Err(self.fail(FrameError::TooLarge {
                len: head.total_len,
                limit,
            }));
        }
        // total_len <= limit <= buf.len(), so it fits a usize.
        let total = head.total_len as usize;
        if pending.len() < total {
            return Ok(None);
        }
        let from = self.start;
        self.start += total;
        if self.start == self.end {
            // Nothing left over: the next read starts at the front without a move.
            self.start = 0;
            self.end = 0;
        }
        Ok(self.buf.get(from..from + total))
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.failed = Some(e);
        e
    }
}
