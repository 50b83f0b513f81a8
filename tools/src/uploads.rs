//! Bounded reassembly of Block1 uploads on std servers (RFC 7959 §2.5), several at once:
//! one per key (client and target), in order, up to a size limit, the oldest dropped when
//! too many are in progress, idle ones forgotten.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use coap_core::block::Block;
use coap_core::{Code, Message, OptionNumber, ResponseWriter};

/// An upload without a block for this long is forgotten.
pub const IDLE: Duration = Duration::from_secs(30);

/// What one request of an upload led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// A block was stored: answer 2.31 Continue with this Block1 ([`Step::respond`]).
    Continue(Block),
    /// The whole body (and the Block1 to echo in the final response, if block-wise).
    Complete(Vec<u8>, Option<Block>),
    /// Refused: 4.08 (out of order, missing start) or 4.13 (over the limit, with Size1).
    Refused(Code),
}

/// Uploads in progress, by key.
#[derive(Debug)]
pub struct Uploads<K> {
    max_body: usize,
    max_uploads: usize,
    open: HashMap<K, (Vec<u8>, Instant)>,
}

impl<K: Hash + Eq + Clone> Uploads<K> {
    /// Bodies up to `max_body` bytes, at most `max_uploads` in progress.
    pub fn new(max_body: usize, max_uploads: usize) -> Self {
        Uploads {
            max_body,
            max_uploads: max_uploads.max(1),
            open: HashMap::new(),
        }
    }

    /// The largest body accepted.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// Whether an upload for `key` is in progress.
    pub fn contains(&self, key: &K) -> bool {
        self.open.contains_key(key)
    }

    /// Uploads in progress.
    pub fn in_progress(&self) -> usize {
        self.open.len()
    }

    /// Takes the payload of `request` (with or without Block1) for `key`.
    pub fn accept(&mut self, key: K, request: &Message<'_>, now: Instant) -> Step {
        let payload = request.payload();
        if request
            .uint_option(OptionNumber::SIZE1)
            .is_some_and(|s| s as usize > self.max_body)
        {
            self.open.remove(&key);
            return Step::Refused(Code::REQUEST_ENTITY_TOO_LARGE);
        }
        let Some(block) = Block::of(request, OptionNumber::BLOCK1) else {
            self.open.remove(&key);
            if payload.len() > self.max_body {
                return Step::Refused(Code::REQUEST_ENTITY_TOO_LARGE);
            }
            return Step::Complete(payload.to_vec(), None);
        };
        self.open
            .retain(|_, (_, last)| now.duration_since(*last) < IDLE);
        if block.num == 0 {
            if self.open.len() >= self.max_uploads && !self.open.contains_key(&key) {
                let oldest = self
                    .open
                    .iter()
                    .min_by_key(|(_, (_, last))| *last)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.open.remove(&k);
                }
            }
            self.open.insert(key.clone(), (Vec::new(), now));
        }
        let Some((body, last)) = self.open.get_mut(&key) else {
            return Step::Refused(Code::REQUEST_ENTITY_INCOMPLETE);
        };
        // In order and without gaps; every block but the last is full (RFC 7959 §2.5).
        if block.offset() != body.len() || (block.more && payload.len() != block.size()) {
            self.open.remove(&key);
            return Step::Refused(Code::REQUEST_ENTITY_INCOMPLETE);
        }
        if body.len() + payload.len() > self.max_body {
            self.open.remove(&key);
            return Step::Refused(Code::REQUEST_ENTITY_TOO_LARGE);
        }
        body.extend_from_slice(payload);
        *last = now;
        if block.more {
            return Step::Continue(Block::new(block.num, true, block.szx));
        }
        let body = self.open.remove(&key).map(|(b, _)| b).unwrap_or_default();
        Step::Complete(body, Some(block))
    }
}

impl Step {
    /// For [`Step::Continue`] and [`Step::Refused`]: writes the response (2.31 with
    /// Block1; 4.13 with Size1 = `max_body`, §2.9.3; 4.08).
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
            Step::Complete(..) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coap_core::{MessageBuilder, MessageType};

    fn req(block: Option<Block>, payload: &[u8], buf: &mut [u8]) -> usize {
        let mut b = MessageBuilder::new(buf, MessageType::Con, Code::PUT, 1, &[1]).unwrap();
        if let Some(bl) = block {
            b.option_uint(OptionNumber::BLOCK1, bl.encode()).unwrap();
        }
        b.payload(payload).unwrap();
        b.finish()
    }

    #[test]
    fn reassembles_in_order_and_refuses_gaps_and_excess() {
        let mut u: Uploads<u8> = Uploads::new(40, 2);
        let now = Instant::now();
        let mut buf = [0u8; 128];
        let n = req(Some(Block::new(0, true, 0)), &[1; 16], &mut buf);
        let m = Message::parse(&buf[..n]).unwrap();
        assert_eq!(u.accept(7, &m, now), Step::Continue(Block::new(0, true, 0)));
        let n = req(Some(Block::new(1, false, 0)), &[2; 5], &mut buf);
        let m = Message::parse(&buf[..n]).unwrap();
        match u.accept(7, &m, now) {
            Step::Complete(body, Some(b)) => {
                assert_eq!(body.len(), 21);
                assert_eq!(b.num, 1);
            }
            other => panic!("{other:?}"),
        }
        // A block without its start.
        let n = req(Some(Block::new(2, true, 0)), &[1; 16], &mut buf);
        let m = Message::parse(&buf[..n]).unwrap();
        assert_eq!(
            u.accept(7, &m, now),
            Step::Refused(Code::REQUEST_ENTITY_INCOMPLETE)
        );
        // Over the limit in the third block.
        for num in 0..2 {
            let n = req(Some(Block::new(num, true, 0)), &[1; 16], &mut buf);
            let m = Message::parse(&buf[..n]).unwrap();
            assert!(matches!(u.accept(8, &m, now), Step::Continue(_)));
        }
        let n = req(Some(Block::new(2, true, 0)), &[1; 16], &mut buf);
        let m = Message::parse(&buf[..n]).unwrap();
        assert_eq!(
            u.accept(8, &m, now),
            Step::Refused(Code::REQUEST_ENTITY_TOO_LARGE)
        );
        assert_eq!(u.in_progress(), 0);
    }
}
