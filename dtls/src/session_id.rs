//! The name of one DTLS association (the peer type of a CoAP endpoint over DTLS).

use std::fmt;
use std::net::SocketAddr;

/// One association: the peer address plus a number that is never reused within a
/// [`crate::Sessions`]. Use it as the CoAP endpoint's peer type so that responses and
/// notifications go out over the session their request arrived on (RFC 7252 §9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId {
    /// The peer's transport address.
    pub addr: SocketAddr,
    /// Distinguishes successive sessions with the same address.
    pub serial: u64,
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.addr, self.serial)
    }
}
