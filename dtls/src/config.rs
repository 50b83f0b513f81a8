//! The limits and timers of a session table, and what a server does when it is full.

use std::sync::Arc;
use std::time::Duration;

use dimpl::crypto::Dtls12CipherSuite;

use crate::error::SetupError;
use crate::psk::{psk_provider, ClientResolver};

/// DTLS 1.2 record header (13) + AES-CCM explicit nonce (8) + CCM_8 tag (8): what a
/// record adds to a CoAP datagram (RFC 7252 §9.1.3.1 suite; RFC 6347 §4.1).
pub const RECORD_OVERHEAD: usize = 13 + 8 + 8;

/// What a server does with a new handshake while [`Config::max_sessions`] established
/// sessions exist.
///
/// Half-open handshakes never count here: they have their own budget
/// ([`Config::max_handshakes`], [`Config::max_handshakes_per_host`]), so a flood of
/// cookie-verified ClientHellos can neither fill the table nor push anyone out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Refuse the handshake once its cookie verified (the client proved its address) with a
    /// fatal `internal_error` alert (RFC 5246 §7.2.2), so the client fails at once instead of
    /// waiting for its handshake deadline. Established sessions are never displaced; room
    /// comes back as sessions close or go idle ([`Config::idle_timeout`]). The default: a
    /// public server's existing clients keep their sessions and observations.
    #[default]
    Refuse,
    /// Accept it, and when the handshake completes evict the least recently active
    /// established session, telling its client with close_notify (RFC 5246 §7.2.1) so it can
    /// reconnect. Only an authenticated client (one holding a key) can evict anyone; choose
    /// this when new clients matter more than idle old ones.
    EvictLeastRecent,
}

impl std::str::FromStr for WhenFull {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "refuse" => Ok(WhenFull::Refuse),
            "evict" => Ok(WhenFull::EvictLeastRecent),
            other => Err(format!("`{other}`: expected `refuse` or `evict`")),
        }
    }
}

/// Limits and timers of a [`crate::Sessions`] table.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most established sessions kept at once; what happens to a new handshake beyond it is
    /// [`Config::when_full`]. Default 256.
    pub max_sessions: usize,
    /// Server only: what to do with a new handshake when [`Config::max_sessions`] are
    /// established. Default [`WhenFull::Refuse`].
    pub when_full: WhenFull,
    /// Most half-open (handshaking) sessions kept at once, a budget of their own: a server
    /// creates one per cookie-verified ClientHello, which anyone able to receive at an
    /// address can produce cheaply, so they must never push out an established session.
    /// Beyond it the oldest half-open session is dropped: a flood then only shortens how
    /// long a half-open session lives, and a real client, which answers within a round
    /// trip, still completes. Default 64.
    pub max_handshakes: usize,
    /// Server only: most half-open sessions from one source host (an IPv4 address, or an
    /// IPv6 /64, the smallest block a site is usually given), so one machine using many
    /// ports cannot take the whole [`Config::max_handshakes`] budget; beyond it that host's
    /// own oldest half-open session is dropped. Default 8 (clients behind one NAT rarely
    /// start that many handshakes in the same round trip).
    pub max_handshakes_per_host: usize,
    /// An established session without application data in either direction for this long
    /// is closed with close_notify. Default 300 s (libcoap's session idle default).
    pub idle_timeout: Duration,
    /// Datagrams a client may queue per session while its handshake runs; more are refused
    /// with [`crate::SendError::QueueFull`]. Default 16.
    pub max_queued_plaintext: usize,
    /// Records waiting in [`crate::Sessions::poll_transmit`]; beyond this new records are
    /// dropped (as a full socket buffer would) and counted in
    /// [`crate::Stats::transmit_dropped`]. Default 1024.
    pub max_transmit_queue: usize,
    /// Whole-handshake deadline: a session still handshaking this long after it was
    /// created fails with [`crate::HandshakeError::Timeout`] and frees its place in the
    /// half-open budget. Default 20 s.
    pub handshake_timeout: Duration,
    /// First flight retransmission timeout, doubled per retry (RFC 6347 §4.2.4.1: 1 s).
    pub flight_start_rto: Duration,
    /// Retransmissions per flight. Default 4.
    pub flight_retries: usize,
    /// Largest datagram produced. Default 1232 = IPv6 minimum MTU 1280 − 40 − 8, which
    /// leaves 1203 bytes of plaintext: enough for RFC 7252 §4.6's 1152-byte messages.
    pub mtu: usize,
    /// Server only: how long one cookie key generation is used; a cookie stays valid for
    /// between one and two lifetimes. Default 60 s.
    pub cookie_key_lifetime: Duration,
    /// Server only: PSK identity hint sent in ServerKeyExchange (RFC 4279 §2). Default none.
    pub psk_identity_hint: Option<Vec<u8>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_sessions: 256,
            when_full: WhenFull::Refuse,
            max_handshakes: 64,
            max_handshakes_per_host: 8,
            idle_timeout: Duration::from_secs(300),
            max_queued_plaintext: 16,
            max_transmit_queue: 1024,
            handshake_timeout: Duration::from_secs(20),
            flight_start_rto: Duration::from_secs(1),
            flight_retries: 4,
            mtu: 1232,
            cookie_key_lifetime: Duration::from_secs(60),
            psk_identity_hint: None,
        }
    }
}

impl Config {
    /// Largest CoAP datagram [`crate::Sessions::send`] accepts.
    pub fn max_plaintext(&self) -> usize {
        self.mtu.saturating_sub(RECORD_OVERHEAD)
    }

    /// Surfaces what the engine would reject (e.g. an MTU below 64 bytes) at construction.
    pub(crate) fn validate(&self) -> Result<(), SetupError> {
        self.dimpl_builder()
            .with_psk_client(Vec::new(), Arc::new(ClientResolver(Vec::new())))
            .build()
            .map(|_| ())
            .map_err(|e| SetupError::Config(e.to_string()))
    }

    pub(crate) fn dimpl_builder(&self) -> dimpl::ConfigBuilder {
        dimpl::Config::builder()
            .with_crypto_provider(psk_provider())
            .dtls12_cipher_suites(&[Dtls12CipherSuite::PSK_AES128_CCM_8])
            .dtls13_cipher_suites(&[])
            .kx_groups(&[])
            .mtu(self.mtu)
            .handshake_timeout(self.handshake_timeout)
            .flight_start_rto(self.flight_start_rto)
            .flight_retries(self.flight_retries)
    }
}
