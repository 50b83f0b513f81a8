//! An OSCORE server's rejection of a protected request (RFC 8613 §8.2, §7.4): it comes
//! unprotected — 4.00 "Decryption failed", 4.01 "Security context not found" or "Replay
//! detected", 4.02 for an option or COSE object it could not decode — so the layer cannot
//! verify it and the endpoint would not match it to the protected exchange. §8.4 leaves
//! the client to decide; the std client ends the request at once with the reason, rather
//! than waiting out its timers (an unauthenticated answer only ends the request; it is
//! never delivered as a response).

use std::net::SocketAddr;

use coap_core::oscore::Secured;
use coap_core::{Message, OptionNumber, Token};

use crate::oscore::{Peer, Security, StdLayer};
use crate::response::{ClientError, OscoreRejection};

/// `datagram`, received from `from` without OSCORE, if it rejects a protected request of
/// ours still waiting (same peer, same token, a rejection code): the peer the request went
/// to under its context, its token, and the error to end it with. `None` for anything
/// else, which the endpoint then gets as plain.
pub(crate) fn rejection(
    layer: &StdLayer,
    from: SocketAddr,
    datagram: &[u8],
) -> Option<(Peer, Token, ClientError)> {
    let m = Message::parse(datagram).ok()?;
    if !m.code().is_response() {
        return None;
    }
    let context = layer.request_context(from, m.token())?;
    let diagnostic = String::from_utf8_lossy(m.payload()).into_owned();
    let echo = m.option(OptionNumber::ECHO).is_some();
    let cause = OscoreRejection::of(m.code(), &diagnostic, echo)?;
    let to = Secured {
        addr: from,
        security: Security::Oscore(context),
    };
    let error = ClientError::OscoreRejected {
        code: m.code(),
        cause,
        diagnostic,
    };
    Some((to, Token::new(m.token())?, error))
}
