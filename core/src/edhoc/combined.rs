//! The server side of the EDHOC + OSCORE combined request (RFC 9668 §3.3.1) in front of
//! the OSCORE [`Layer`]: a datagram with the EDHOC option finishes the handshake its
//! OSCORE kid (C_R) names, the new context joins the layer, and the request it carried
//! goes through the layer as any OSCORE request.

use lakers::Credential;

use super::responder::{Message4, Responder};
use super::transport::{unwrap_combined, write_combined_error};
use super::{CryptoTrait, Error};
use crate::oscore::layer::{Incoming, Layer};
use crate::oscore::ContextId;
use crate::time::Instant;

/// What became of a datagram.
// Returned once per datagram and not stored: the credential inline beats a reference into
// the Responder that would keep it borrowed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Outcome {
    /// No EDHOC option: give the datagram to the OSCORE layer as usual.
    NotCombined,
    /// The OSCORE layer's verdict on the request the combined request carried.
    Oscore {
        /// As from [`Layer::incoming`], over `out`.
        incoming: Incoming,
        /// The context this request established and the Initiator's credential (`None`
        /// for a retransmission of a combined request that established it already).
        established: Option<(ContextId, Credential)>,
    },
    /// The EDHOC part failed: send `out[..len]` (an EDHOC error message) back.
    Reply {
        /// Length of the reply in `out`.
        len: usize,
        /// Why.
        error: Error,
    },
    /// Not even an error reply can be formed (the datagram is not a CoAP message): drop.
    Drop(Error),
}

/// Runs a received datagram through the combined-request processing. `scratch` holds the
/// rewritten request (as large as the datagram); `out` receives the layer's output or
/// the error reply.
#[allow(clippy::too_many_arguments)]
pub fn incoming<A, C, T, const N: usize, const LC: usize, const LB: usize, const LR: usize>(
    responder: &mut Responder<'_, C, N, T>,
    layer: &mut Layer<A, LC, LB, LR>,
    now: Instant,
    from: A,
    datagram: &[u8],
    scratch: &mut [u8],
    out: &mut [u8],
) -> Outcome
where
    A: Copy + Eq,
    C: CryptoTrait,
    T: AsRef<[Credential]>,
{
    let reply = |error: Error, out: &mut [u8]| match write_combined_error(datagram, &error, out) {
        Ok(len) => Outcome::Reply { len, error },
        Err(_) => Outcome::Drop(error),
    };
    let combined = match unwrap_combined(datagram, scratch) {
        Ok(None) => return Outcome::NotCombined,
        Ok(Some(c)) => c,
        Err(e) => return reply(e, out),
    };
    let known = |layer: &Layer<A, LC, LB, LR>| {
        (0..LC as u8).map(ContextId).find(|&id| {
            layer
                .context(id)
                .is_some_and(|c| c.recipient_id() == combined.c_r.as_slice())
        })
    };
    let mut unused = [0u8; 0];
    // RFC 9668 §3.3.1: message_4 is not sent in this flow.
    let established = match responder.message_3(
        now,
        &combined.c_r,
        combined.message_3,
        Message4::Omit,
        &mut unused,
    ) {
        Ok(est) => {
            if est.ead_3.as_ref().is_some_and(|e| e.is_critical) {
                return reply(Error::Ead, out);
            }
            match layer.add_context(est.context) {
                Ok(id) => Some((id, est.peer)),
                Err(_) => return reply(Error::Busy, out),
            }
        }
        // A retransmitted combined request (its first copy established the context): the
        // layer's duplicate and replay handling decides.
        Err(Error::UnknownConnection) if known(layer).is_some() => None,
        Err(e) => return reply(e, out),
    };
    let incoming = layer.incoming(now, from, &scratch[..combined.len], out);
    Outcome::Oscore {
        incoming,
        established,
    }
}
