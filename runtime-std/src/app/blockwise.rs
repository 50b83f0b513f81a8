//! Block-wise transfers for async routes, so that handlers see whole bodies and return
//! whole replies (RFC 7959): Block1 uploads are reassembled per peer, resource and
//! Request-Tag up to a maximum body size, and replies larger than a block are kept for a
//! while so that the follow-up Block2 requests are served from the same representation
//! (with its ETag) instead of running the handler once per block.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use coap_core::block::Block;
use coap_core::option::encode_uint;
use coap_core::{Code, Message, OptionNumber};

use crate::oscore::Peer;
use crate::reply::Reply;

/// How long an unfinished upload or a kept reply lives without a follow-up
/// (RFC 7959 §2.4 leaves it to the server; EXCHANGE_LIFETIME is a generous bound).
const LIFETIME: Duration = Duration::from_secs(60);

/// Uploads in progress at once; a further one gets 5.03 until one ends or expires.
const UPLOADS: usize = 16;

/// Replies kept for Block2 follow-ups at once; the oldest goes first.
const KEPT: usize = 32;

/// Replies with more payload than this go block-wise (RFC 7959 §2.4; 1024 is the largest
/// block, `Config::max_block_szx` = 6), so they get an ETag and are kept for follow-ups.
const BLOCK: usize = 1024;

/// A reply about to be sent for `key` (a response or a notification): when it goes
/// block-wise it gets an ETag (if the handler gave none) and is kept, so that the
/// follow-up Block2 requests get the blocks of this very representation (§2.4, §3.4).
pub(crate) fn keep_if_large(
    mut reply: Reply,
    key: TransferKey,
    kept: &std::sync::Mutex<KeptReplies>,
) -> Reply {
    if reply.payload.len() > BLOCK {
        if !reply.options.iter().any(|(n, _)| *n == OptionNumber::ETAG) {
            let tag = etag(&reply.payload).to_vec();
            reply = reply.option(OptionNumber::ETAG, tag);
        }
        if let Ok(mut k) = kept.lock() {
            k.keep(key, reply.clone(), Instant::now());
        }
    }
    reply
}

/// What identifies one transfer: the peer, the request's method, path and query (the
/// cache key, RFC 7252 §5.4.2), and the Request-Tag (RFC 9175 §3) for Block1.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) struct TransferKey {
    peer: Peer,
    method: u8,
    resource: Vec<u8>,
    tag: Vec<u8>,
}

impl TransferKey {
    pub(crate) fn of(peer: Peer, msg: &Message<'_>, tag: bool) -> TransferKey {
        let mut resource = Vec::new();
        for (n, v) in msg.options().map(|o| (o.number, o.value)) {
            if n == OptionNumber::URI_PATH || n == OptionNumber::URI_QUERY {
                resource.extend_from_slice(&n.0.to_be_bytes());
                resource.extend_from_slice(&(v.len() as u16).to_be_bytes());
                resource.extend_from_slice(v);
            }
        }
        let tag = match tag {
            true => msg
                .option(OptionNumber::REQUEST_TAG)
                .map(|o| o.value.to_vec())
                .unwrap_or_default(),
            false => Vec::new(),
        };
        TransferKey {
            peer,
            method: msg.code().0,
            resource,
            tag,
        }
    }
}

struct Upload {
    body: Vec<u8>,
    expires: Instant,
}

/// What a Block1 request leads to.
#[derive(Debug)]
pub(crate) enum UploadStep {
    /// An intermediate block was taken: answer 2.31 Continue with this Block1 (§2.3).
    Continue(Reply),
    /// The last block: the whole body, and the Block1 option the final reply echoes.
    Done(Vec<u8>, Block),
    /// Refused with this reply (4.08, 4.13, 5.03, 4.02).
    Refused(Reply),
}

/// Block1 reassembly for every peer (RFC 7959 §2.3, §2.5).
#[derive(Default)]
pub(crate) struct Uploads {
    open: HashMap<TransferKey, Upload>,
}

fn block_option(b: Block) -> Vec<u8> {
    let mut buf = [0; 4];
    encode_uint(b.encode(), &mut buf).to_vec()
}

fn too_large(max: usize) -> Reply {
    // RFC 7959 §2.9.3: 4.13 with Size1 telling the largest body the server takes.
    let mut buf = [0; 4];
    let size1 = encode_uint(u32::try_from(max).unwrap_or(u32::MAX), &mut buf).to_vec();
    Reply::new(Code::REQUEST_ENTITY_TOO_LARGE).option(OptionNumber::SIZE1, size1)
}

impl Uploads {
    /// Takes one block of an upload of at most `max` bytes.
    pub(crate) fn accept(
        &mut self,
        key: TransferKey,
        msg: &Message<'_>,
        block: Block,
        max: usize,
        now: Instant,
    ) -> UploadStep {
        self.open.retain(|_, u| u.expires > now);
        // Size1 announces the whole body (§4): refuse at once rather than after 64 blocks.
        if msg
            .uint_option(OptionNumber::SIZE1)
            .is_some_and(|s| s as usize > max)
        {
            self.open.remove(&key);
            return UploadStep::Refused(too_large(max));
        }
        let payload = msg.payload();
        // §2.2: every block but the last carries exactly the block size.
        if block.more && payload.len() != block.size() {
            self.open.remove(&key);
            return UploadStep::Refused(Reply::new(Code::BAD_REQUEST).payload("short block"));
        }
        if block.num == 0 {
            if !self.open.contains_key(&key) && self.open.len() >= UPLOADS {
                return UploadStep::Refused(Reply::new(Code::SERVICE_UNAVAILABLE));
            }
            self.open.insert(
                key.clone(),
                Upload {
                    body: Vec::new(),
                    expires: now + LIFETIME,
                },
            );
        }
        let Some(upload) = self.open.get_mut(&key) else {
            // §2.3: a block out of sequence (its start is unknown) is incomplete.
            return UploadStep::Refused(Reply::new(Code::REQUEST_ENTITY_INCOMPLETE));
        };
        if upload.body.len() != block.offset() {
            self.open.remove(&key);
            return UploadStep::Refused(Reply::new(Code::REQUEST_ENTITY_INCOMPLETE));
        }
        if upload.body.len() + payload.len() > max {
            self.open.remove(&key);
            return UploadStep::Refused(too_large(max));
        }
        upload.body.extend_from_slice(payload);
        upload.expires = now + LIFETIME;
        if block.more {
            return UploadStep::Continue(
                Reply::new(Code::CONTINUE).option(OptionNumber::BLOCK1, block_option(block)),
            );
        }
        let body = self.open.remove(&key).map(|u| u.body).unwrap_or_default();
        UploadStep::Done(body, block)
    }
}

/// Adds the Block1 option a final response to a block-wise upload echoes (§2.3).
pub(crate) fn ack_upload(reply: Reply, block: Block) -> Reply {
    reply.option(OptionNumber::BLOCK1, block_option(block))
}

/// An ETag for a representation (RFC 7252 §5.10.6): 8 bytes of FNV-1a, so that a client
/// fetching it block-wise sees when it changed between blocks (RFC 7959 §2.4).
pub(crate) fn etag(payload: &[u8]) -> [u8; 8] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in payload {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.to_be_bytes()
}

/// Replies larger than a block, kept for their Block2 follow-ups.
#[derive(Default)]
pub(crate) struct KeptReplies {
    kept: HashMap<TransferKey, (Reply, Instant)>,
}

impl KeptReplies {
    /// The reply to serve a follow-up block of, if it is still kept.
    pub(crate) fn get(&mut self, key: &TransferKey, now: Instant) -> Option<Reply> {
        self.kept.retain(|_, (_, t)| *t > now);
        self.kept.get(key).map(|(r, _)| r.clone())
    }

    /// Keeps `reply` for the follow-ups of `key` (of any method: a POST's later blocks
    /// must not run the handler again either).
    pub(crate) fn keep(&mut self, key: TransferKey, reply: Reply, now: Instant) {
        if self.kept.len() >= KEPT {
            if let Some(oldest) = self
                .kept
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            {
                self.kept.remove(&oldest);
            }
        }
        self.kept.insert(key, (reply, now + LIFETIME));
    }
}
