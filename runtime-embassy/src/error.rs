//! Why a call on the endpoint failed: one error type for the client, deferred responses
//! and the exchanges that carry them.

use coap_core::uri::UriError;
use coap_core::BuildError;

/// Why a client call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// Every client exchange or message slot is in use: try again later.
    Busy,
    /// The request does not fit into a message.
    Build(BuildError),
    /// Not a usable `coap://` URI.
    InvalidUri(UriError),
    /// The URI's host is a name (no resolver here) or of an address family the stack was
    /// built without.
    UnsupportedHost,
    /// No response in time, or CON retransmissions exhausted (RFC 7252 §4.2).
    Timeout,
    /// The peer rejected the request with RST.
    Reset,
    /// The representation changed during a block-wise transfer (RFC 7959 §2.4).
    RepresentationChanged,
    /// The request asked for no response (RFC 7967) and none came.
    NoResponse,
    /// The network said the peer cannot be reached (fed to the core with
    /// `Endpoint::handle_unreachable`; smoltcp reports no ICMP errors itself).
    Unreachable(coap_core::Unreachable),
    /// The response body is larger than the exchange's storage (`B`).
    TooLarge,
    /// The caller's buffer cannot hold the response body.
    BufferTooSmall,
    /// A block-wise response arrived with a gap.
    Incomplete,
    /// The response handle is unknown or was answered already.
    UnknownHandle,
    /// The code of a [`crate::Request`] is not a method code (RFC 7252 §12.1.1).
    NotARequest,
    /// The OSCORE storage holds no security context (none established yet, or the EDHOC
    /// session it came from was refused).
    #[cfg(feature = "oscore")]
    NoContext,
    /// The request cannot be protected (RFC 8613 §8.1): no sequence number left to use,
    /// an option OSCORE cannot carry, or the protected request does not fit a message.
    #[cfg(feature = "oscore")]
    Protect(coap_core::oscore::ProtectError),
    /// The response to a protected request failed verification (RFC 8613 §8.4) and was
    /// discarded.
    #[cfg(feature = "oscore")]
    Unprotect(coap_core::oscore::UnprotectError),
    /// The server answered a protected request without protection: its OSCORE layer
    /// rejected it (RFC 8613 §8.2: 4.01 when it has no such context, 4.00, 4.02; §7.4:
    /// 4.01 for a replay). Nothing in such a response is trusted beyond its code.
    #[cfg(feature = "oscore")]
    Unprotected(coap_core::Code),
    /// The EDHOC handshake failed (RFC 9528): our side refused a message, or the peer
    /// sent an EDHOC error message ([`coap_core::edhoc::Error::Peer`] with its ERR_CODE,
    /// §6).
    #[cfg(feature = "edhoc")]
    Edhoc(coap_core::edhoc::Error),
    /// The server answered an EDHOC request with this code and no EDHOC error message
    /// (e.g. 4.04: it has no `/.well-known/edhoc` resource, RFC 9528 Appendix A.2).
    #[cfg(feature = "edhoc")]
    EdhocRefused(coap_core::Code),
}

impl From<coap_core::Error> for Error {
    fn from(e: coap_core::Error) -> Self {
        match e {
            coap_core::Error::Busy => Error::Busy,
            coap_core::Error::Build(b) => Error::Build(b),
            coap_core::Error::UnknownHandle => Error::UnknownHandle,
            // The client API only builds CON or NON requests.
            coap_core::Error::InvalidType | coap_core::Error::NotARequest => Error::NotARequest,
            // The embassy client never chooses tokens.
            coap_core::Error::TokenInUse => Error::Busy,
        }
    }
}

#[cfg(feature = "edhoc")]
impl Error {
    /// The error a refusal from an EDHOC Responder is: its EDHOC error message
    /// (RFC 9528 §6, Appendix A.2.3) as [`Error::Edhoc`], or, when the body is none, the
    /// bare code as [`Error::EdhocRefused`].
    pub(crate) fn edhoc_refusal(code: coap_core::Code, body: &[u8]) -> Error {
        match coap_core::edhoc::wire::parse_error(body) {
            Ok(e) => Error::Edhoc(coap_core::edhoc::Error::Peer(e.code)),
            Err(_) => Error::EdhocRefused(code),
        }
    }
}

impl From<UriError> for Error {
    fn from(e: UriError) -> Self {
        match e {
            UriError::Build(b) => Error::Build(b),
            e => Error::InvalidUri(e),
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

impl core::error::Error for Error {}
