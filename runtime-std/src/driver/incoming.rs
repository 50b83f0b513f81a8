//! Received datagrams on their way to the endpoint: through the OSCORE layer (RFC 8613)
//! and, on a server with an EDHOC Responder, the combined request (RFC 9668) before it.

use std::net::SocketAddr;

use coap_core::edhoc::combined;
use coap_core::edhoc::transport::EdhocResource;
use coap_core::oscore::Incoming;
use coap_core::{Handler, MessageType};

use super::{Driver, StdEndpoint, MAX_DATAGRAM};
use crate::edhoc::server::{StdResource, StdResponder, WithEdhoc};
use crate::oscore::{plain, protected, Peer};

impl<H: Handler<Peer>> Driver<H> {
    /// Feeds a received datagram.
    pub fn handle_datagram(&mut self, peer: SocketAddr, bytes: &[u8]) {
        let now = self.now();
        let Some(oscore) = self.oscore.as_mut() else {
            return self
                .endpoint
                .handle_datagram(now, plain(peer), bytes, &mut self.handler);
        };
        let (rewritten, out) = self.scratch.split_at_mut(MAX_DATAGRAM);
        // RFC 9668 §3.3.1: a combined request finishes its EDHOC session before the layer
        // verifies the request it carries.
        let incoming =
            match self.edhoc.as_deref_mut().map(|r| {
                combined::incoming(r, &mut *oscore.layer, now, peer, bytes, rewritten, out)
            }) {
                None | Some(combined::Outcome::NotCombined) => {
                    oscore.layer.incoming(now, peer, bytes, out)
                }
                Some(combined::Outcome::Oscore {
                    incoming,
                    established,
                }) => {
                    if let Some((id, _)) = established {
                        oscore.session_established(id);
                    }
                    incoming
                }
                Some(combined::Outcome::Reply { len, .. }) => {
                    let reply = out.get(..len).unwrap_or_default().to_vec();
                    return self.raw.push_back((peer, reply));
                }
                Some(combined::Outcome::Drop(_)) => return,
            };
        // RFC 8613: verify before the endpoint sees anything; it then sees the inner
        // message from the peer under that context.
        let mut over = None;
        let mut rejected = None;
        let (from, inner) = match incoming {
            Incoming::Plain => match self.combining.refused(peer, bytes) {
                // The server refused a request under an EDHOC session in plain CoAP (its
                // EDHOC error for our combined request, or 4.01 for a session it lost):
                // it ends the request sent under that context, and the context.
                Some(context) => {
                    over = Some(context);
                    (protected(peer, context), bytes)
                }
                // An unprotected rejection of a protected request (RFC 8613 §8.2) ends
                // that request with why, once the datagram has gone through.
                None => {
                    rejected = crate::oscore_rejection::rejection(&oscore.layer, peer, bytes)
                        .and_then(|(to, token, error)| {
                            let id = self.endpoint.request_with_token(to, token.as_slice())?;
                            Some((id, error))
                        });
                    (plain(peer), bytes)
                }
            },
            Incoming::Inner { len, context } => {
                self.combining.confirmed(context);
                let inner = out.get(..len).unwrap_or_default();
                (protected(peer, context), inner)
            }
            Incoming::Reply { len, .. } => {
                let reply = out.get(..len).unwrap_or_default().to_vec();
                return self.raw.push_back((peer, reply));
            }
            // An outer block-wise step (RFC 8613 §4.1.3.4.2): the layer answers the
            // fragment itself; a fragment that came in the ACK of our request still
            // acknowledges it for the endpoint.
            Incoming::Fragment { len, ack } => {
                let step = out.get(..len).unwrap_or_default().to_vec();
                self.raw.push_back((peer, step));
                if let Some((mid, context)) = ack {
                    let mut empty = [0u8; 4];
                    if coap_core::message::write_empty(&mut empty, MessageType::Ack, mid).is_ok() {
                        let from = protected(peer, context);
                        self.endpoint
                            .handle_datagram(now, from, &empty, &mut self.handler);
                    }
                }
                return;
            }
            // Not verifiable (no context, failed integrity, ...): dropped without an answer
            // (RFC 8613 §8.2 answers only what it can protect).
            Incoming::Drop(_) => return,
        };
        deliver(
            &mut self.endpoint,
            &mut self.handler,
            self.edhoc.as_deref_mut(),
            Some(&mut *oscore),
            now,
            from,
            inner,
        );
        if let Some(context) = over {
            oscore.layer.remove_context(context);
        }
        if let Some((id, error)) = rejected {
            self.fail(id, error);
        }
    }
}

/// Hands a datagram (verified or plain) to the endpoint, with the EDHOC resource in front
/// of the handler when the server has a Responder; sessions it establishes join `layer`.
fn deliver<H: Handler<Peer>>(
    endpoint: &mut StdEndpoint,
    handler: &mut H,
    responder: Option<&mut StdResponder>,
    oscore: Option<&mut crate::oscore::Oscore>,
    now: coap_core::Instant,
    from: Peer,
    bytes: &[u8],
) {
    let (Some(responder), Some(oscore)) = (responder, oscore) else {
        return endpoint.handle_datagram(now, from, bytes, handler);
    };
    // C_R becomes our Recipient ID (RFC 9528 Appendix A.1): none in use may be chosen.
    let in_use = oscore.recipient_ids();
    let taken = |id: &[u8]| in_use.iter().any(|i| i == id);
    let mut edhoc: StdResource<'_> = EdhocResource::new(responder, &taken);
    let mut wrapped = WithEdhoc {
        inner: handler,
        edhoc: &mut edhoc,
    };
    endpoint.handle_datagram(now, from, bytes, &mut wrapped);
    while let Some(established) = edhoc.poll_established() {
        // A full layer: the Initiator's first OSCORE request then fails to verify; the
        // session is lost, as when its handshake had failed.
        if let Ok(id) = oscore.layer.add_context(established.context) {
            oscore.session_established(id);
        }
    }
}
