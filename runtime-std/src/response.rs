//! What a request ends with: the owned [`Response`], or the [`ClientError`] that says why
//! there is none.

use std::io;
use std::net::SocketAddr;

use coap_core::option::decode_uint;
use coap_core::{BuildError, Code, Message, OptionNumber, UriError};

use crate::oscore::{Peer, Security};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URI does not parse (RFC 7252 §6.4).
    #[error("invalid URI: {0}")]
    InvalidUri(UriError),
    /// A scheme other than `coap` and `coaps` (`coap+tcp` needs a TCP transport), or
    /// `coaps` where it cannot work (a group request).
    #[error("unsupported URI scheme (only coap:// and coaps:// are supported)")]
    UnsupportedScheme,
    /// A `coaps://` request without DTLS credentials: no PSK was configured for the
    /// endpoint or matches the URI in its credentials (RFC 7252 §9.1.3.1).
    #[error("coaps:// needs a pre-shared key (identity and key) for this URI")]
    NoCredentials,
    /// The DTLS handshake with the server failed (wrong key, unknown identity, no answer
    /// within the handshake deadline); nothing was sent in clear.
    #[error("DTLS {0}")]
    Handshake(String),
    /// The host name could not be resolved to an address the socket can reach.
    #[error("cannot resolve the host: {0}")]
    Resolve(io::Error),
    /// No response within the request's deadline, or CON retransmissions exhausted.
    #[error("request timed out")]
    Timeout,
    /// The network said the peer cannot be reached (an ICMP destination-unreachable
    /// error, read on Linux; elsewhere such a request ends with [`ClientError::Timeout`]).
    #[error("{peer}: {reason}")]
    Unreachable {
        /// The address the request was sent to.
        peer: SocketAddr,
        /// What the ICMP error said (port, host or network unreachable, prohibited).
        reason: coap_core::Unreachable,
    },
    /// The peer answered with RST.
    #[error("the peer reset the request")]
    Reset,
    /// The endpoint has no free slot for another request; retry later.
    #[error("endpoint busy: no free slot for another request")]
    Busy,
    /// The request does not fit into a message.
    #[error("cannot build the request: {0}")]
    Build(BuildError),
    /// A socket error, or a destination the socket cannot send to.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The endpoint's loop has stopped (server shut down, or runtime gone).
    #[error("the endpoint is closed")]
    Closed,
    /// The representation changed during a block-wise transfer (its ETag changed,
    /// RFC 7959 §2.4); ask again.
    #[error("the resource changed during the block-wise transfer")]
    RepresentationChanged,
    /// The EDHOC handshake (RFC 9528) that was to establish the OSCORE context for the
    /// request failed on our side: the server did not prove the credential we expect
    /// (`Unauthenticated`), sent a malformed message, or our own key is unusable.
    #[error("EDHOC: {0}")]
    Edhoc(coap_core::edhoc::Error),
    /// The server refused the EDHOC handshake with an error message (RFC 9528 §6): ERR_CODE
    /// 3 when it does not know our credential, 1 with a diagnostic text otherwise.
    #[error("EDHOC: the server refused the handshake (ERR_CODE {code}{})", if text.is_empty() { String::new() } else { format!(": {text}") })]
    EdhocPeer {
        /// ERR_CODE (RFC 9528 §6.1).
        code: i32,
        /// The diagnostic text of ERR_CODE 1.
        text: String,
    },
    /// The server refused the EDHOC handshake with a bare error response and no EDHOC
    /// error message.
    #[error("EDHOC: the server refused the handshake with {0}")]
    EdhocStatus(coap_core::Code),
    /// The server answered a request under an EDHOC session in plain CoAP with this code
    /// (4.01: it no longer has the session, e.g. after a restart); the session is over
    /// and the next request runs EDHOC again.
    #[error(
        "EDHOC: the server no longer has our session ({0}); the next request runs EDHOC again"
    )]
    EdhocSessionLost(coap_core::Code),
    /// The request asked for no response (No-Response, RFC 7967) and none came.
    #[error("no response (as asked with No-Response)")]
    NoResponse,
}

impl From<UriError> for ClientError {
    fn from(e: UriError) -> Self {
        match e {
            UriError::UnsupportedScheme => ClientError::UnsupportedScheme,
            e => ClientError::InvalidUri(e),
        }
    }
}

impl From<coap_core::Error> for ClientError {
    fn from(e: coap_core::Error) -> Self {
        match e {
            coap_core::Error::Busy => ClientError::Busy,
            coap_core::Error::Build(e) => ClientError::Build(e),
            e => ClientError::Io(io::Error::new(io::ErrorKind::InvalidInput, e)),
        }
    }
}

/// A response, owned: it outlives the endpoint's message slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The response code (2.05 Content, 4.04 Not Found, ...).
    pub code: Code,
    /// Options in wire order (ascending number; repeated options in their order).
    pub options: Vec<(OptionNumber, Vec<u8>)>,
    /// The payload (empty when there is none).
    pub payload: Vec<u8>,
    /// The address the response came from (an IPv4-mapped IPv6 address as IPv4).
    pub peer: SocketAddr,
    /// How it was protected: `Oscore` when it was verified under an OSCORE context
    /// (RFC 8613), `Plain` otherwise.
    pub security: Security,
}

impl Response {
    /// Copies a received message.
    pub fn from_message(from: Peer, message: &Message<'_>) -> Response {
        let peer = match from.addr {
            SocketAddr::V6(a) if a.ip().to_ipv4_mapped().is_some() => {
                SocketAddr::new(a.ip().to_canonical(), a.port())
            }
            a => a,
        };
        Response {
            code: message.code(),
            options: message
                .options()
                .map(|o| (o.number, o.value.to_vec()))
                .collect(),
            payload: message.payload().to_vec(),
            peer,
            security: from.security,
        }
    }

    /// The Content-Format option, if present.
    pub fn content_format(&self) -> Option<u16> {
        self.option(OptionNumber::CONTENT_FORMAT)
            .and_then(decode_uint)
            .and_then(|v| u16::try_from(v).ok())
    }

    /// The value of the first option with number `n`.
    pub fn option(&self, n: impl Into<OptionNumber>) -> Option<&[u8]> {
        let n = n.into();
        self.options
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.as_slice())
    }

    /// The values of all options with number `n`, in order.
    pub fn options_of(&self, n: impl Into<OptionNumber>) -> impl Iterator<Item = &[u8]> {
        let n = n.into();
        self.options
            .iter()
            .filter(move |(k, _)| *k == n)
            .map(|(_, v)| v.as_slice())
    }

    /// The payload as UTF-8 text, if it is.
    pub fn payload_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }
}
