//! Requests waiting for a message slot. The core refuses a request when every slot is in use
//! (`Error::Busy`); a std client with more requests than that keeps them here, in the order
//! they were sent, and starts each as a slot frees, so that a burst of requests is answered
//! rather than failed. The queue is bounded (`Config::max_queued_requests`): a request that
//! finds it full fails at once with `Busy`, and one whose total deadline passes while it
//! waits fails with `Timeout`, as it would have in the endpoint. Nothing here touches the
//! exchanges or observations already running.

use std::collections::VecDeque;
use std::time::Duration;

use async_channel::Sender;
use coap_core::Instant;

use crate::command::{OutgoingRequest, Progress};
use crate::oscore::Peer;
use crate::response::{ClientError, Response};

/// A request not yet in the endpoint.
#[derive(Debug)]
pub(crate) struct Queued {
    pub key: u64,
    pub peer: Peer,
    pub request: OutgoingRequest,
    pub reply: Sender<Result<Response, ClientError>>,
    pub progress: Option<Sender<Progress>>,
    /// When its total deadline (the request's timeout, or `Config::request_timeout`)
    /// ends, counted from when the application sent it.
    pub deadline: Instant,
}

impl Queued {
    /// The timeout left at `now`, for the endpoint's own deadline once it starts.
    pub fn remaining(&self, now: Instant) -> Duration {
        Duration::from_millis(self.deadline.as_millis().saturating_sub(now.as_millis()))
    }
}

/// The waiting requests, oldest first.
#[derive(Debug)]
pub(crate) struct Admission {
    queue: VecDeque<Queued>,
    limit: usize,
    /// No queued deadline is earlier than this (it may be earlier than the earliest one
    /// left: it is recomputed when it passes).
    earliest: Option<Instant>,
}

impl Admission {
    pub fn new(limit: u16) -> Self {
        Admission {
            queue: VecDeque::new(),
            limit: usize::from(limit),
            earliest: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Queues `q` behind the others; gives it back when the queue is full.
    pub fn push(&mut self, q: Queued) -> Result<(), Box<Queued>> {
        if self.queue.len() >= self.limit {
            return Err(Box::new(q));
        }
        self.earliest = Some(match self.earliest {
            Some(e) if e <= q.deadline => e,
            _ => q.deadline,
        });
        self.queue.push_back(q);
        Ok(())
    }

    /// The oldest request.
    pub fn pop(&mut self) -> Option<Queued> {
        self.queue.pop_front()
    }

    /// Puts back the oldest request (the endpoint had no slot for it after all).
    pub fn unpop(&mut self, q: Queued) {
        self.queue.push_front(q);
    }

    /// Drops the request the application cancelled; whether it was here.
    pub fn cancel(&mut self, key: u64) -> bool {
        let before = self.queue.len();
        self.queue.retain(|q| q.key != key);
        self.queue.len() != before
    }

    /// When the next waiting request may time out.
    pub fn deadline(&self) -> Option<Instant> {
        self.earliest
    }

    /// Fails every request whose deadline has passed with `Timeout`.
    pub fn expire(&mut self, now: Instant) {
        if self.earliest.is_none_or(|e| e > now) {
            return;
        }
        self.queue.retain(|q| {
            let alive = q.deadline > now;
            if !alive {
                let _ = q.reply.try_send(Err(ClientError::Timeout));
            }
            alive
        });
        self.earliest = self.queue.iter().map(|q| q.deadline).min();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coap_core::Code;
    use std::net::SocketAddr;

    type Outcome = async_channel::Receiver<Result<Response, ClientError>>;

    fn queued(key: u64, deadline_ms: u64) -> (Queued, Outcome) {
        let (reply, rx) = async_channel::bounded(1);
        let request = OutgoingRequest::new("coap://127.0.0.1/x".into(), Code::GET);
        let q = Queued {
            key,
            peer: crate::oscore::plain(SocketAddr::from(([127, 0, 0, 1], 5683))),
            request,
            reply,
            progress: None,
            deadline: Instant::from_millis(deadline_ms),
        };
        (q, rx)
    }

    #[test]
    fn bounded_in_order_and_expiring() {
        let mut a = Admission::new(2);
        let (q1, r1) = queued(1, 100);
        let (q2, r2) = queued(2, 50);
        let (q3, _r3) = queued(3, 10);
        a.push(q1).unwrap();
        a.push(q2).unwrap();
        let back = a.push(q3).unwrap_err();
        assert_eq!(back.key, 3, "full: the third is given back");
        assert_eq!(a.deadline(), Some(Instant::from_millis(50)));
        a.expire(Instant::from_millis(60));
        assert!(matches!(r2.try_recv(), Ok(Err(ClientError::Timeout))));
        assert!(r1.try_recv().is_err(), "the first still waits");
        assert_eq!(a.deadline(), Some(Instant::from_millis(100)));
        assert_eq!(a.pop().map(|q| q.key), Some(1));
        assert!(a.is_empty());
    }

    #[test]
    fn cancel_removes_only_that_request() {
        let mut a = Admission::new(8);
        for k in 0..4 {
            a.push(queued(k, 1000).0).unwrap();
        }
        assert!(a.cancel(2));
        assert!(!a.cancel(2));
        let order: Vec<u64> = std::iter::from_fn(|| a.pop().map(|q| q.key)).collect();
        assert_eq!(order, [0, 1, 3]);
    }
}
