//! Starting the requests of the admission queue ([`super::queue`]): a request the
//! endpoint has no slot for waits there, in order, and starts as slots free.

use coap_core::{Handler, Instant};

use super::queue::Queued;
use super::Driver;
use crate::oscore::Peer;
use crate::response::ClientError;

impl<H: Handler<Peer>> Driver<H> {
    /// Puts `q` into the admission queue, or fails it with `Busy` when that is full.
    pub(super) fn enqueue(&mut self, q: Queued) {
        if let Err(q) = self.admission.push(q) {
            let _ = q.reply.try_send(Err(ClientError::Busy));
        }
    }

    /// Starts a request in the endpoint; gives it back when no slot is free.
    pub(super) fn start_request(&mut self, now: Instant, q: Queued) -> Result<(), Box<Queued>> {
        let (peer, handshake) = match self.resolve_peer(q.peer, q.request.psk.as_deref()) {
            Ok(p) => p,
            Err(e) => {
                let _ = q.reply.try_send(Err(e));
                return Ok(());
            }
        };
        let remaining = q.remaining(now);
        if remaining.is_zero() {
            let _ = q.reply.try_send(Err(ClientError::Timeout));
            return Ok(());
        }
        let mut params = q.request.params();
        params.timeout = Some(remaining);
        let request = &q.request;
        // A body larger than a block goes as a Block1 upload (RFC 7959 §2.5).
        let block = self.endpoint.upload_block_size_to(peer);
        let upload = request.payload.len() > block;
        let result = if upload {
            let first = request.payload.get(..block).unwrap_or_default();
            self.endpoint.upload(
                now,
                peer,
                params,
                request.payload.len(),
                |b| request.write_options(b),
                first,
            )
        } else {
            self.endpoint
                .request(now, peer, params, |b| request.write(b))
        };
        match result {
            Ok(id) => {
                let Queued {
                    key,
                    request,
                    reply,
                    progress,
                    ..
                } = q;
                if let Some(p) = progress {
                    self.progress.insert(id, p);
                }
                if upload {
                    self.uploads.insert(id, request.payload);
                }
                self.waiting.insert(id, (key, reply));
                self.ids.insert(key, id);
                self.await_handshake(handshake, id);
                Ok(())
            }
            Err(coap_core::Error::Busy) => Err(Box::new(q)),
            Err(e) => {
                let _ = q.reply.try_send(Err(e.into()));
                Ok(())
            }
        }
    }

    /// Starts waiting requests, oldest first, while slots are free; fails those whose
    /// deadline passed while they waited.
    pub(super) fn admit(&mut self) {
        if self.admission.is_empty() {
            return;
        }
        let now = self.now();
        self.admission.expire(now);
        for _ in 0..self.admission.len() {
            let Some(q) = self.admission.pop() else { break };
            if let Err(q) = self.start_request(now, q) {
                self.admission.unpop(*q);
                break;
            }
        }
    }
}
