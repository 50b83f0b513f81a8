//! Bounded reassembly of Block1 uploads on std servers (RFC 7959 §2.5), several at once.
//!
//! An upload is keyed by the caller's key (the client, and what else the resource needs)
//! and the operation: the target resource and the Request-Tag (RFC 9175 §3.3,
//! [`operation_fingerprint`]), so blocks of different clients, resources or concurrent
//! requests never mix. What is held is bounded in count (in all, and per client address),
//! in bytes (each body, and all partial bodies together), and in time: an upload without a
//! block for the idle time is dropped, and its next block gets 4.08.
//!
//! Uploads that have only their first block (which a spoofer can send without seeing a
//! single answer) have a pool of their own, larger than the one for uploads under way, and
//! the oldest of them goes for a new one; an upload enters the second pool with its second
//! block and is never pushed out by anyone else's. So a flood of first blocks does not stop
//! a legitimate upload unless it brings more new first blocks than the first pool holds
//! within one round trip of that client; when the second pool is full, the block that
//! would enter it gets 5.03 with Max-Age. A client restarting its own upload keeps its
//! place in line, so repeating a first block does not make an upload young again.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use coap_core::block::{operation_fingerprint, Block};
use coap_core::{Code, Message, OptionNumber, ResponseWriter};

/// Default idle time: an upload without a block for this long is dropped.
pub const IDLE: Duration = Duration::from_secs(60);

/// What one request of an upload led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// A block was stored: answer 2.31 Continue with this Block1 ([`Step::respond`]).
    Continue(Block),
    /// The whole body (and the Block1 to echo in the final response, if block-wise).
    Complete(Vec<u8>, Option<Block>),
    /// Refused: 4.08 (out of order, missing or expired start) or 4.13 (over the limit,
    /// with Size1).
    Refused(Code),
    /// No room for this upload now: 5.03 with Max-Age = `retry_after` seconds (RFC 7252
    /// §5.9.3.4). Nothing of it is held.
    Busy {
        /// Seconds until room is expected (the stalest upload under way expires).
        retry_after: u32,
    },
}

/// The client address a key belongs to, for the per-client limit (a client's ports all
/// count as one client).
pub trait Source {
    /// The client's IP address.
    fn source(&self) -> IpAddr;
}

impl Source for SocketAddr {
    fn source(&self) -> IpAddr {
        self.ip()
    }
}

impl Source for coap_tokio::Peer {
    fn source(&self) -> IpAddr {
        self.addr.ip()
    }
}

impl<A: Source, B> Source for (A, B) {
    fn source(&self) -> IpAddr {
        self.0.source()
    }
}

/// How much [`Uploads`] holds at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadLimits {
    /// The largest body (4.13 with Size1 beyond, RFC 7959 §2.9.3).
    pub max_body: usize,
    /// Uploads under way (past their first block) at once, from all clients.
    pub max_uploads: usize,
    /// Uploads that have only their first block, at once (each holds one block at most;
    /// the oldest goes for a new one).
    pub max_first_blocks: usize,
    /// Uploads in progress at once from one client address; its oldest goes for its next.
    pub max_per_client: usize,
    /// Bytes of all partial bodies together (5.03 for a block beyond, when no first block
    /// of another upload can make room).
    pub max_held: usize,
    /// An upload without a block for this long is dropped.
    pub idle: Duration,
}

impl UploadLimits {
    /// `max_uploads` bodies of up to `max_body` bytes under way, 16 times as many first
    /// blocks, a quarter of `max_uploads` (at least 2) per client, all of them in memory at
    /// once, dropped after [`IDLE`].
    pub fn new(max_body: usize, max_uploads: usize) -> Self {
        let max_uploads = max_uploads.max(1);
        UploadLimits {
            max_body,
            max_uploads,
            max_first_blocks: max_uploads.saturating_mul(16),
            max_per_client: (max_uploads / 4).max(2).min(max_uploads),
            max_held: max_body.saturating_mul(max_uploads),
            idle: IDLE,
        }
    }
}

/// One upload in progress.
#[derive(Debug)]
struct Partial<M> {
    body: Vec<u8>,
    /// Blocks stored: 1 until the client continues after a 2.31 (or blindly).
    blocks: u32,
    /// Its place in line: the order of its first block (kept when the client repeats it).
    born: u64,
    /// When its last block came (for [`UploadLimits::idle`]).
    last: Instant,
    /// What the resource noted at the first block (e.g. the version its preconditions
    /// were checked against, the Content-Format).
    meta: M,
}

/// Uploads in progress, by key and operation; `M` is what the resource keeps with each
/// from its first block to its last ([`Uploads::accept_with`]).
#[derive(Debug)]
pub struct Uploads<K, M = ()> {
    limits: UploadLimits,
    open: HashMap<(K, u64), Partial<M>>,
    held: usize,
    /// The next [`Partial::born`].
    next_born: u64,
}

impl<K: Hash + Eq + Clone + Source, M> Uploads<K, M> {
    /// Bodies up to `max_body` bytes, at most `max_uploads` under way
    /// ([`UploadLimits::new`]).
    pub fn new(max_body: usize, max_uploads: usize) -> Self {
        Self::with_limits(UploadLimits::new(max_body, max_uploads))
    }

    /// Uploads within `limits`.
    pub fn with_limits(limits: UploadLimits) -> Self {
        let limits = UploadLimits {
            max_uploads: limits.max_uploads.max(1),
            max_first_blocks: limits.max_first_blocks.max(1),
            max_per_client: limits.max_per_client.max(1),
            ..limits
        };
        Uploads {
            limits,
            open: HashMap::new(),
            held: 0,
            next_born: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &UploadLimits {
        &self.limits
    }

    /// The largest body accepted.
    pub fn max_body(&self) -> usize {
        self.limits.max_body
    }

    /// Uploads in progress.
    pub fn in_progress(&self) -> usize {
        self.open.len()
    }

    /// Bytes of the partial bodies held.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Drops the uploads idle for the idle time at `now`; how many were dropped. Call it
    /// from a timer so that abandoned uploads free their memory even when no request
    /// comes ([`Uploads::accept`] does it too).
    pub fn expire(&mut self, now: Instant) -> usize {
        let idle = self.limits.idle;
        let before = self.open.len();
        let mut freed = 0;
        self.open.retain(|_, p| {
            let keep = now.saturating_duration_since(p.last) < idle;
            if !keep {
                freed += p.body.len();
            }
            keep
        });
        self.held -= freed;
        before - self.open.len()
    }

    fn remove(&mut self, key: &(K, u64)) -> Option<Partial<M>> {
        let p = self.open.remove(key)?;
        self.held -= p.body.len();
        Some(p)
    }

    /// Takes the payload of `request` (with or without Block1) for `key`.
    pub fn accept(&mut self, key: K, request: &Message<'_>, now: Instant) -> Step
    where
        M: Default,
    {
        self.accept_with(key, request, now, M::default).0
    }

    /// [`Uploads::accept`], keeping `first()` (called for a request that starts an upload
    /// or is a whole body) with the upload; it comes back with [`Step::Complete`].
    pub fn accept_with(
        &mut self,
        key: K,
        request: &Message<'_>,
        now: Instant,
        first: impl FnOnce() -> M,
    ) -> (Step, Option<M>) {
        let payload = request.payload();
        let op = (key, operation_fingerprint(request));
        let max_body = self.limits.max_body;
        if request
            .uint_option(OptionNumber::SIZE1)
            .is_some_and(|s| s as usize > max_body)
        {
            self.remove(&op);
            return (Step::Refused(Code::REQUEST_ENTITY_TOO_LARGE), None);
        }
        let block = Block::of(request, OptionNumber::BLOCK1);
        let whole = block.is_none_or(|b| b.num == 0 && !b.more);
        if whole {
            self.remove(&op);
            if payload.len() > max_body {
                return (Step::Refused(Code::REQUEST_ENTITY_TOO_LARGE), None);
            }
            return (Step::Complete(payload.to_vec(), block), Some(first()));
        }
        let Some(block) = block else {
            return (Step::Refused(Code::REQUEST_ENTITY_INCOMPLETE), None);
        };
        self.expire(now);
        if block.num == 0 {
            let born = match self.remove(&op) {
                Some(p) => p.born,
                None => {
                    self.next_born += 1;
                    self.next_born
                }
            };
            self.make_room(&op.0);
            let partial = Partial {
                body: Vec::new(),
                blocks: 0,
                born,
                last: now,
                meta: first(),
            };
            self.open.insert(op.clone(), partial);
        }
        let Some(p) = self.open.get(&op) else {
            // Never started, another client's, or expired (RFC 7959 §2.9.2).
            return (Step::Refused(Code::REQUEST_ENTITY_INCOMPLETE), None);
        };
        // In order and without gaps; every block but the last is full (RFC 7959 §2.5).
        if block.offset() != p.body.len() || (block.more && payload.len() != block.size()) {
            self.remove(&op);
            return (Step::Refused(Code::REQUEST_ENTITY_INCOMPLETE), None);
        }
        if p.body.len() + payload.len() > max_body {
            self.remove(&op);
            return (Step::Refused(Code::REQUEST_ENTITY_TOO_LARGE), None);
        }
        if p.blocks == 1 && block.more && self.under_way() >= self.limits.max_uploads {
            // Its second block would take a place under way, and there is none.
            self.remove(&op);
            let retry_after = self.retry_after(now);
            return (Step::Busy { retry_after }, None);
        }
        if self.held + payload.len() > self.limits.max_held {
            self.evict_first_blocks(&op, payload.len());
            if self.held + payload.len() > self.limits.max_held {
                self.remove(&op);
                let retry_after = self.retry_after(now);
                return (Step::Busy { retry_after }, None);
            }
        }
        let Some(p) = self.open.get_mut(&op) else {
            return (Step::Refused(Code::REQUEST_ENTITY_INCOMPLETE), None);
        };
        p.body.extend_from_slice(payload);
        p.blocks = p.blocks.saturating_add(1);
        p.last = now;
        self.held += payload.len();
        if block.more {
            return (Step::Continue(Block::new(block.num, true, block.szx)), None);
        }
        match self.remove(&op) {
            Some(p) => (Step::Complete(p.body, Some(block)), Some(p.meta)),
            None => (Step::Refused(Code::REQUEST_ENTITY_INCOMPLETE), None),
        }
    }

    /// Uploads past their first block.
    fn under_way(&self) -> usize {
        self.open.values().filter(|p| p.blocks > 1).count()
    }

    /// Room for one more first block of `key`'s client: its own oldest upload goes if it
    /// has its share, and the oldest upload that has only its first block goes if their
    /// pool is full.
    fn make_room(&mut self, key: &K) {
        let source = key.source();
        let mine = self.open.iter().filter(|((k, _), _)| k.source() == source);
        if mine.clone().count() >= self.limits.max_per_client {
            if let Some(k) = mine.min_by_key(|(_, p)| p.born).map(|(k, _)| k.clone()) {
                self.remove(&k);
            }
        }
        let first_blocks = self.open.values().filter(|p| p.blocks <= 1).count();
        if first_blocks >= self.limits.max_first_blocks {
            self.evict_oldest_first_block(None);
        }
    }

    /// Drops the oldest upload that has only its first block (other than `keep`); `false`
    /// if there is none.
    fn evict_oldest_first_block(&mut self, keep: Option<&(K, u64)>) -> bool {
        let victim = self
            .open
            .iter()
            .filter(|(k, p)| p.blocks <= 1 && Some(*k) != keep)
            .min_by_key(|(_, p)| p.born)
            .map(|(k, _)| k.clone());
        match victim {
            Some(k) => self.remove(&k).is_some(),
            None => false,
        }
    }

    /// Drops uploads that have only their first block (oldest first), other than `keep`,
    /// until `more` bytes fit in the budget or none is left.
    fn evict_first_blocks(&mut self, keep: &(K, u64), more: usize) {
        while self.held + more > self.limits.max_held {
            if !self.evict_oldest_first_block(Some(keep)) {
                return;
            }
        }
    }

    /// Seconds until room is expected (at least 1): the stalest upload under way expires.
    fn retry_after(&self, now: Instant) -> u32 {
        let idle = self.limits.idle;
        let soonest = self
            .open
            .values()
            .filter(|p| p.blocks > 1)
            .map(|p| idle.saturating_sub(now.saturating_duration_since(p.last)))
            .min()
            .unwrap_or(Duration::ZERO);
        u32::try_from(soonest.as_secs().max(1)).unwrap_or(u32::MAX)
    }
}

impl Step {
    /// For every step but [`Step::Complete`]: writes the response (2.31 with Block1; 4.13
    /// with Size1 = `max_body`, §2.9.3; 4.08; 5.03 with Max-Age).
    pub fn respond(&self, resp: &mut ResponseWriter<'_>, max_body: usize) {
        match self {
            Step::Continue(b) => {
                resp.set_code(Code::CONTINUE);
                let _ = resp.option_uint(OptionNumber::BLOCK1, b.encode());
            }
            Step::Refused(code) => {
                resp.set_code(*code);
                if *code == Code::REQUEST_ENTITY_TOO_LARGE {
                    let size1 = u32::try_from(max_body).unwrap_or(u32::MAX);
                    let _ = resp.option_uint(OptionNumber::SIZE1, size1);
                }
            }
            Step::Busy { retry_after } => {
                resp.set_code(Code::SERVICE_UNAVAILABLE);
                let _ = resp.option_uint(OptionNumber::MAX_AGE, *retry_after);
            }
            Step::Complete(..) => {}
        }
    }
}

#[cfg(test)]
mod tests;
