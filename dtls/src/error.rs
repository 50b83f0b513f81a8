//! Errors and the reasons a session ends, worded so an operator can act on them.

use std::fmt;

/// Why a DTLS handshake did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// The peer aborted with a fatal alert (RFC 5246 §7.2.2).
    Alert(AlertDescription),
    /// The peer's encrypted Finished did not decrypt: the two sides derived different keys,
    /// which with PSK means a wrong key (or an identity the server does not know).
    DecryptFailed,
    /// No Finished from the peer verified before the handshake deadline. With PSK this is
    /// what a wrong key looks like from the server side: the peer's Finished does not
    /// decrypt, is discarded like any forged record, and the peer eventually gives up.
    Timeout,
    /// Server: the half-open budget ([`crate::Config::max_handshakes`], or
    /// [`crate::Config::max_handshakes_per_host`] for its host) was full and this was the
    /// oldest handshake in progress, so it was dropped to make room.
    Dropped,
    /// The handshake engine refused the peer's messages.
    Protocol(String),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Alert(a) => write!(f, "handshake failed: peer sent fatal alert {a}"),
            HandshakeError::DecryptFailed => f.write_str(
                "handshake failed: peer's Finished did not decrypt (bad record MAC: wrong PSK or unknown identity)",
            ),
            HandshakeError::Timeout => f.write_str(
                "handshake failed: timed out without a verified Finished \
                 (wrong PSK or unknown identity, or the peer is unreachable)",
            ),
            HandshakeError::Dropped => f.write_str(
                "handshake dropped: too many handshakes in progress (in all, or from this host)",
            ),
            HandshakeError::Protocol(e) => write!(f, "handshake failed: {e}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

impl HandshakeError {
    pub(crate) fn from_dimpl(e: &dimpl::Error) -> Self {
        match e {
            dimpl::Error::SecurityError(dimpl::SecurityError::FatalAlert { description }) => {
                HandshakeError::Alert(AlertDescription(*description))
            }
            dimpl::Error::Timeout(_) => HandshakeError::Timeout,
            dimpl::Error::CryptoError(dimpl::CryptoError::OperationFailed(
                dimpl::CryptoOperation::Decrypt,
            )) => HandshakeError::DecryptFailed,
            other => HandshakeError::Protocol(other.to_string()),
        }
    }
}

/// A TLS alert description code (RFC 5246 §7.2, RFC 4279 §2), displayed by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlertDescription(pub u8);

impl fmt::Display for AlertDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, hint) = match self.0 {
            0 => ("close_notify", ""),
            10 => ("unexpected_message", ""),
            20 => ("bad_record_mac", " (wrong PSK?)"),
            40 => (
                "handshake_failure",
                " (no common cipher suite, or wrong PSK?)",
            ),
            47 => ("illegal_parameter", ""),
            50 => ("decode_error", ""),
            51 => ("decrypt_error", " (wrong PSK?)"),
            70 => ("protocol_version", ""),
            80 => (
                "internal_error",
                " (the server may have no room for another session)",
            ),
            115 => ("unknown_psk_identity", " (identity not known to the peer)"),
            _ => ("unknown alert", ""),
        };
        write!(f, "{name} ({}){hint}", self.0)
    }
}

/// Why an established session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer sent close_notify (RFC 5246 §7.2.1).
    PeerClosed,
    /// No application data in either direction for the configured idle timeout.
    IdleTimeout,
    /// The session table was full: this was the least recently active session and a new
    /// one took its place ([`crate::WhenFull::EvictLeastRecent`]), or it completed its
    /// handshake after the table had filled up ([`crate::WhenFull::Refuse`]).
    Evicted,
    /// The same address completed a cookie exchange for a new handshake (RFC 6347 §4.2.8:
    /// the old association is dropped once the client proved reachability).
    Replaced,
    /// Closed by [`Sessions::close`](crate::Sessions::close).
    Local,
    /// The DTLS engine failed (every engine error is fatal for its connection).
    Failed(String),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("peer sent close_notify"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::Evicted => f.write_str("evicted: session table full"),
            CloseReason::Replaced => {
                f.write_str("replaced by a new handshake from the same address")
            }
            CloseReason::Local => f.write_str("closed locally"),
            CloseReason::Failed(e) => write!(f, "DTLS failure: {e}"),
        }
    }
}

/// Why [`Sessions::send`](crate::Sessions::send) refused a datagram. Nothing is ever sent
/// in clear: without an established (or, for a client, handshaking) session there is no
/// way to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No session with that id (never existed, expired, failed or replaced).
    #[error("no DTLS session with this peer (not sending in clear)")]
    NoSession,
    /// The handshake is still running and the bounded plaintext queue is full.
    #[error("handshake in progress and the plaintext queue is full")]
    QueueFull,
    /// The datagram does not fit one record within the configured MTU.
    #[error("datagram of {len} bytes exceeds the {max}-byte record payload limit")]
    TooLarge {
        /// Size of the refused datagram.
        len: usize,
        /// Largest plaintext that fits a record.
        max: usize,
    },
    /// The engine failed while encrypting; the session is gone.
    #[error("DTLS failure while sending: {0}")]
    Failed(String),
}

/// Why a [`Sessions`](crate::Sessions) could not be created or a client could not connect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// The DTLS engine rejected the configuration (e.g. an MTU below 64 bytes).
    #[error("invalid DTLS configuration: {0}")]
    Config(String),
    /// The operating system's random source failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// [`Sessions::connect`](crate::Sessions::connect) to an address that already has a session.
    #[error("a DTLS session with this peer already exists")]
    SessionExists(crate::SessionId),
}
