//! What a request ends with: the owned [`Response`], or the [`ClientError`] that says why
//! there is none.

use std::io;
use std::net::SocketAddr;

use coap_core::option::decode_uint;
use coap_core::{BuildError, Code, ContentFormat, Message, OptionNumber, UriError};

use crate::oscore::{Peer, Security};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URI does not parse (RFC 7252 §6.4).
    #[error("invalid URI: {0}")]
    InvalidUri(UriError),
    /// A scheme this request cannot use: not one of CoAP's six, `coaps` where it cannot
    /// work (a group request), or a reliable transport (`coap+tcp`, `coaps+tcp`,
    /// `coap+ws`, `coaps+ws`, RFC 8323) where only UDP is (a group request).
    #[error("unsupported URI scheme for this request")]
    UnsupportedScheme,
    /// A `coaps://` request without DTLS credentials: no PSK was configured for the
    /// endpoint or matches the URI in its credentials (RFC 7252 §9.1.3.1).
    #[error("coaps:// needs a pre-shared key (identity and key) for this URI")]
    NoCredentials,
    /// The DTLS handshake with the server failed (wrong key, unknown identity, no answer
    /// within the handshake deadline); nothing was sent in clear.
    #[error("DTLS {0}")]
    Handshake(String),
    /// The DTLS session the request or observation ran over ended before its answer: the
    /// server closed it with close_notify (RFC 5246 §7.2.1: evicted from a full session
    /// table, idle timeout, restart) or it expired here. Nothing more arrives over it; the
    /// next `coaps://` request starts a new handshake, and an observation has to be
    /// registered again.
    #[error("DTLS session closed ({0}); the next request starts a new one")]
    SessionClosed(String),
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
    /// The server rejected an OSCORE-protected request with an unprotected error
    /// (RFC 8613 §8.2, §7.4) that Echo recovery (Appendix B.1.2) cannot mend: the request
    /// ends at once, with the reason and the server's diagnostic payload. Being
    /// unprotected, the answer is not authenticated; it only ends the request.
    #[error("OSCORE: the server rejected the protected request ({code}, {cause}){}", diagnostic_suffix(.diagnostic))]
    OscoreRejected {
        /// The response code (4.00, 4.01 or 4.02).
        code: Code,
        /// What the code and the diagnostic say went wrong.
        cause: OscoreRejection,
        /// The diagnostic payload (RFC 7252 §5.5.2) as text, possibly empty.
        diagnostic: String,
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
    /// The server answered with an error code (4.xx, 5.xx), as
    /// [`Response::error_for_status`] reports it; kept whole.
    #[error(transparent)]
    Status(#[from] StatusError),
}

/// A client call's error where the server role's `io::Error` is wanted (a server's own
/// [`crate::Server::client`] requests in a function returning `io::Result`).
impl From<ClientError> for io::Error {
    fn from(e: ClientError) -> io::Error {
        match e {
            ClientError::Io(e) => e,
            ClientError::Timeout => io::Error::new(io::ErrorKind::TimedOut, e),
            e => io::Error::other(e),
        }
    }
}

/// Why a server rejected an OSCORE request, as its unprotected error response says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OscoreRejection {
    /// The request's sequence number was seen before or is outside the server's replay
    /// window (RFC 8613 §7.4, "Replay detected"): the contexts are out of step, e.g. the
    /// client's was re-created without its sequence number.
    #[error("replay window")]
    Replay,
    /// No security context for the request's kid (and kid context) (§8.2 step 3,
    /// "Security context not found").
    #[error("unknown kid")]
    UnknownKid,
    /// The request did not decrypt (§8.2 step 6, "Decryption failed"): the keys differ.
    #[error("decryption failure")]
    Decryption,
    /// The OSCORE option or COSE object was not understood (§8.2 step 2, 4.02 Bad
    /// Option); also what a server that does not speak OSCORE answers (the option is
    /// critical, RFC 7252 §5.4.1).
    #[error("OSCORE option not accepted")]
    BadOption,
    /// An unprotected 4.01 with Echo (RFC 9175): a freshness challenge the client cannot
    /// answer, since only a protected Echo can be trusted and repeated inside OSCORE.
    #[error("unprotected Echo challenge")]
    Echo,
    /// An unprotected 4.01 that says nothing more.
    #[error("unauthorized")]
    Unauthorized,
}

impl OscoreRejection {
    /// The cause of an unprotected `code` answering a protected request, from its
    /// diagnostic payload and Echo option; `None` for a code RFC 8613 §8.2 does not use
    /// for rejections (such a plain answer is not taken).
    pub fn of(code: Code, diagnostic: &str, has_echo: bool) -> Option<OscoreRejection> {
        if ![Code::BAD_REQUEST, Code::UNAUTHORIZED, Code::BAD_OPTION].contains(&code) {
            return None;
        }
        let text = diagnostic.to_ascii_lowercase();
        Some(if code == Code::UNAUTHORIZED && has_echo {
            OscoreRejection::Echo
        } else if text.contains("replay") {
            OscoreRejection::Replay
        } else if text.contains("context not found") || text.contains("unknown kid") {
            OscoreRejection::UnknownKid
        } else if text.contains("decrypt") || code == Code::BAD_REQUEST {
            OscoreRejection::Decryption
        } else if code == Code::BAD_OPTION {
            OscoreRejection::BadOption
        } else {
            OscoreRejection::Unauthorized
        })
    }
}

fn diagnostic_suffix(diagnostic: &str) -> String {
    if diagnostic.is_empty() {
        String::new()
    } else {
        format!(": \"{diagnostic}\"")
    }
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

/// A response with an error code (4.xx client error or 5.xx server error, RFC 7252
/// §5.9.2, §5.9.3), as an error: what `Response::error_for_status` returns (see the
/// `status` module for `?` across roles).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the server answered {}", .response.code)]
pub struct StatusError {
    /// The response, kept whole (its diagnostic payload may say why, §5.5.2).
    pub response: Response,
}

impl StatusError {
    /// The error code.
    pub fn code(&self) -> Code {
        self.response.code
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

    /// The Content-Format option, if present: a [`ContentFormat`], as the request
    /// builder's `content_format` takes one (`u16::from` gives the registry number).
    pub fn content_format(&self) -> Option<ContentFormat> {
        self.option(OptionNumber::CONTENT_FORMAT)
            .and_then(decode_uint)
            .and_then(|v| u16::try_from(v).ok())
            .map(ContentFormat)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oscore_rejection_names_code_cause_and_diagnostic() {
        let e = ClientError::OscoreRejected {
            code: Code::BAD_REQUEST,
            cause: OscoreRejection::Decryption,
            diagnostic: "Decryption failed".into(),
        };
        assert_eq!(
            e.to_string(),
            "OSCORE: the server rejected the protected request (4.00 Bad Request, decryption failure): \"Decryption failed\""
        );
        let e = ClientError::OscoreRejected {
            code: Code::BAD_OPTION,
            cause: OscoreRejection::BadOption,
            diagnostic: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "OSCORE: the server rejected the protected request (4.02 Bad Option, OSCORE option not accepted)"
        );
    }

    #[test]
    fn rejections_are_named_by_diagnostic_code_and_echo() {
        use OscoreRejection as R;
        let of = OscoreRejection::of;
        assert_eq!(
            of(Code::UNAUTHORIZED, "Replay detected", false),
            Some(R::Replay)
        );
        assert_eq!(
            of(Code::UNAUTHORIZED, "Security context not found", false),
            Some(R::UnknownKid)
        );
        assert_eq!(
            of(Code::BAD_REQUEST, "Decryption failed", false),
            Some(R::Decryption)
        );
        assert_eq!(of(Code::BAD_REQUEST, "", false), Some(R::Decryption));
        assert_eq!(of(Code::BAD_OPTION, "", false), Some(R::BadOption));
        assert_eq!(of(Code::UNAUTHORIZED, "", true), Some(R::Echo));
        assert_eq!(of(Code::UNAUTHORIZED, "", false), Some(R::Unauthorized));
        assert_eq!(of(Code::CONTENT, "Replay detected", false), None);
        assert_eq!(of(Code::NOT_FOUND, "", false), None);
    }
}
