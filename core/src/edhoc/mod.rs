//! EDHOC (RFC 9528): authenticated key establishment for OSCORE, allocation-free and
//! sans-IO, on the `lakers` crate with its RustCrypto backend.
//!
//! What lakers 0.8 implements, and so this module: method 3 (STAT-STAT, static DH keys on
//! both sides), cipher suite 2 (AES-CCM-16-64-128, SHA-256, P-256), CCS credentials by
//! value or by key identifier, one-byte and byte-string connection identifiers, one EAD
//! item per message. Methods 0–2 (signatures) are not in lakers; a message_1 asking for
//! them is answered with an error message.
//!
//! - [`wire`]: the CBOR sequences of the CoAP transport (Appendix A.2), error messages
//!   (§6) and the combined request payload (RFC 9668);
//! - [`credentials`]: our identity and the peers we trust;
//! - [`initiator`] and [`responder`]: the two roles; the Responder keeps a fixed table of
//!   handshakes in progress, each expiring;
//! - [`point`]: P-256 key validation before lakers' backend sees a key;
//! - [`exporter`]: EDHOC_Exporter → OSCORE security context (Appendix A.1);
//! - [`transport`]: the `/.well-known/edhoc` resource and the combined request on a
//!   datagram (RFC 9668);
//! - [`combined`]: the server side of the combined request in front of the OSCORE layer.

pub mod combined;
pub mod credentials;
pub mod exporter;
pub mod initiator;
pub mod point;
pub mod responder;
pub mod transport;
pub mod wire;

pub use credentials::{Identity, Transfer};
pub use initiator::Initiator;
pub use lakers::{ConnId, Credential, CryptoTrait, EADItem, IdCred};
pub use responder::Responder;
pub use wire::ErrCode;

/// The crypto backend of this crate: lakers' RustCrypto backend over a caller-provided
/// cryptographically secure RNG (the core has no entropy source).
pub type RustCrypto<R> = lakers_crypto_rustcrypto::Crypto<R>;

use crate::oscore::context::ContextError;

/// Why a handshake step failed. Each maps to the EDHOC error message the peer gets
/// ([`Error::err_code`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The message is not valid EDHOC (or exceeds this build's buffers).
    #[error("malformed EDHOC message")]
    Malformed,
    /// A MAC or the AEAD tag did not verify: the peer is not who it claims, or the message
    /// was altered.
    #[error("EDHOC message failed authentication")]
    Unauthenticated,
    /// ID_CRED_x names no credential we trust.
    #[error("unknown or untrusted peer credential")]
    UnknownCredential,
    /// The selected cipher suite is not suite 2.
    #[error("unsupported cipher suite")]
    UnsupportedSuite,
    /// The method is not 3 (STAT-STAT).
    #[error("unsupported EDHOC method")]
    UnsupportedMethod,
    /// An EAD item we cannot process (RFC 9528 §3.8: a critical item not understood).
    #[error("unprocessable EAD item")]
    Ead,
    /// Our own private key or credential is not a valid P-256 key (a configuration error).
    #[error("own EDHOC key or credential is not a valid P-256 key")]
    InvalidIdentity,
    /// The handshake table is full, or no connection identifier is free.
    #[error("too many EDHOC handshakes in progress")]
    Busy,
    /// No handshake in progress has this C_R (expired, answered already, or the Responder
    /// restarted).
    #[error("no EDHOC handshake with this connection identifier")]
    UnknownConnection,
    /// The output buffer is too small.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// The derived OSCORE context is unusable (RFC 8613 §3.3).
    #[error("OSCORE context: {0}")]
    Context(ContextError),
    /// The peer sent an EDHOC error message with this ERR_CODE.
    #[error("peer sent EDHOC error {}", .0.value())]
    Peer(ErrCode),
}

impl Error {
    /// The ERR_CODE of the error message that answers this failure (RFC 9528 §6).
    pub fn err_code(&self) -> ErrCode {
        match self {
            Error::UnsupportedSuite => ErrCode::WrongSelectedCipherSuite,
            Error::UnknownCredential => ErrCode::UnknownCredential,
            _ => ErrCode::Unspecified,
        }
    }

    /// Writes the EDHOC error message for this failure into `out` (RFC 9528 §6): ERR_CODE 2
    /// lists SUITES_R (suite 2), ERR_CODE 1 carries this error's text.
    pub fn write_message(&self, out: &mut [u8]) -> Result<usize, wire::WireError> {
        let mut text = TextBuf {
            buf: [0; 64],
            len: 0,
        };
        // Writing into a fixed buffer: a diagnostic longer than it is cut, never an error.
        let _ = core::fmt::write(&mut text, format_args!("{self}"));
        wire::write_error(self.err_code(), text.as_str(), &[2], out)
    }
}

impl From<lakers::EDHOCError> for Error {
    fn from(e: lakers::EDHOCError) -> Error {
        use lakers::EDHOCError as E;
        match e {
            E::MacVerificationFailed => Error::Unauthenticated,
            E::UnexpectedCredential => Error::UnknownCredential,
            E::UnsupportedMethod => Error::UnsupportedMethod,
            E::UnsupportedCipherSuite => Error::UnsupportedSuite,
            E::EADUnprocessable => Error::Ead,
            _ => Error::Malformed,
        }
    }
}

impl From<ContextError> for Error {
    fn from(e: ContextError) -> Error {
        Error::Context(e)
    }
}

impl From<wire::WireError> for Error {
    fn from(e: wire::WireError) -> Error {
        match e {
            wire::WireError::Malformed => Error::Malformed,
            wire::WireError::BufferTooSmall => Error::BufferTooSmall,
        }
    }
}

/// The default EAD policy (RFC 9528 §3.8): non-critical items are ignored, a critical
/// one aborts the handshake; nothing is sent back.
pub fn ignore_ead(item: Option<&EADItem>) -> Result<Option<EADItem>, Error> {
    refuse_critical_ead(item).map(|()| None)
}

/// The default policy for an EAD item that nothing answers (EAD_4, RFC 9528 §3.8 and
/// §5.5.3): a non-critical item is ignored, a critical one (which this policy does not
/// understand) is an error.
pub fn refuse_critical_ead(item: Option<&EADItem>) -> Result<(), Error> {
    match item {
        Some(i) if i.is_critical => Err(Error::Ead),
        _ => Ok(()),
    }
}

struct TextBuf {
    buf: [u8; 64],
    len: usize,
}

impl TextBuf {
    fn as_str(&self) -> &str {
        // Only whole `str` pieces are copied in, so the prefix is valid UTF-8.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl core::fmt::Write for TextBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len() - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}
