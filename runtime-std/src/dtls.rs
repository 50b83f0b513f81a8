//! CoAP over DTLS (RFC 7252 §9) for the std runtimes: the [`coap_dtls`] session layer
//! between the endpoint's second ("coaps") socket and the core endpoint.
//!
//! The endpoint sees a session as the peer `Peer { addr, security: Dtls(serial) }`, so a
//! response or notification can only leave through the session its request came in on
//! (RFC 7252 §9.1.2: "the response MUST be sent over the same session"); a message to a
//! session that is gone is dropped, never sent in clear.
//!
//! One endpoint holds a client table (sessions it starts for `coaps://` requests) and, on
//! a server, a server table (sessions clients start). The serial of a client session has
//! [`CLIENT_SERIAL`] set, so a serial alone says which table it belongs to.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;

use coap_core::RequestId;
use coap_dtls::{Client as ClientRole, Config, Event, Server as ServerRole, SessionId, Sessions};

pub use coap_dtls::{Config as DtlsConfig, PskStore, WhenFull as DtlsWhenFull};

/// Set in the serial of sessions this endpoint started as a DTLS client.
pub const CLIENT_SERIAL: u64 = 1 << 63;

/// The serial a [`crate::Handle`] puts in a `coaps://` request's peer: "the session with
/// this address, started with the request's PSK if there is none yet". Real serials start
/// at 1.
pub(super) const UNRESOLVED: u64 = 0;

/// A PSK identity and key (RFC 4279) a client presents.
#[derive(Clone, PartialEq, Eq)]
pub struct Psk {
    /// The identity sent in ClientKeyExchange.
    pub identity: Vec<u8>,
    /// The key.
    pub key: Vec<u8>,
}

impl std::fmt::Debug for Psk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Psk")
            .field("identity", &String::from_utf8_lossy(&self.identity))
            .finish_non_exhaustive()
    }
}

/// The DTLS state of a std endpoint.
pub struct Dtls {
    pub(super) client: Sessions<ClientRole>,
    pub(super) server: Option<Sessions<ServerRole>>,
    /// Requests sent to a client session whose handshake has not completed: they fail with
    /// the handshake's error if it fails.
    pub(super) pending: HashMap<SessionId, Vec<RequestId>>,
    /// Messages and records dropped on the way out (no session, full queue or socket).
    pub(super) send_errors: u64,
    /// A record the socket was not ready for (`WouldBlock`), sent before any other once
    /// it is writable. Without it the first ClientHello of a client whose socket the
    /// runtime had not yet seen writable (tokio, just registered) was dropped, and the
    /// handshake waited for dimpl's 1 s flight timer (RFC 6347 §4.2.4.1).
    pub(super) held: Option<(SocketAddr, Vec<u8>)>,
}

impl std::fmt::Debug for Dtls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dtls")
            .field("client", &self.client)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Dtls {
    /// Client sessions only, with `config`.
    pub fn client(config: Config) -> io::Result<Dtls> {
        Ok(Dtls {
            client: Sessions::client(config).map_err(io::Error::other)?,
            server: None,
            pending: HashMap::new(),
            send_errors: 0,
            held: None,
        })
    }

    /// Accepts handshakes too, looking keys up in `store` by the identity a client
    /// presents (RFC 4279 §2).
    pub fn server(config: Config, store: impl PskStore) -> io::Result<Dtls> {
        let mut d = Dtls::client(config.clone())?;
        d.server = Some(Sessions::server(config, store).map_err(io::Error::other)?);
        Ok(d)
    }

    /// The session statistics: (client table, server table).
    pub fn stats(&self) -> (coap_dtls::Stats, Option<coap_dtls::Stats>) {
        (
            self.client.stats(),
            self.server.as_ref().map(Sessions::stats),
        )
    }

    /// The next deadline of either table.
    pub(super) fn deadline(&self) -> Option<std::time::Instant> {
        let s = self.server.as_ref().and_then(Sessions::poll_timeout);
        match (self.client.poll_timeout(), s) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the tables' timers if due.
    pub(super) fn handle_timeout(&mut self, now: std::time::Instant) {
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        if let Some(s) = self.server.as_mut() {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
    }

    /// Encrypts a plaintext CoAP datagram for the session `serial` with `addr`. A datagram
    /// that cannot go over that session is dropped (RFC 7252 §9.1: never in clear).
    pub(super) fn send(
        &mut self,
        now: std::time::Instant,
        addr: SocketAddr,
        serial: u64,
        plain: &[u8],
    ) {
        let result = if serial & CLIENT_SERIAL != 0 {
            let id = SessionId {
                addr,
                serial: serial & !CLIENT_SERIAL,
            };
            self.client.send(now, id, plain)
        } else if let Some(s) = self.server.as_mut() {
            s.send(now, SessionId { addr, serial }, plain)
        } else {
            Err(coap_dtls::SendError::NoSession)
        };
        // Refused (no such session any more, queue full, too large): dropped like a lost
        // datagram; the message layer retransmits or times out.
        if result.is_err() {
            self.send_errors += 1;
        }
    }

    /// The session with `addr` this endpoint started, or a new one with `psk`; its serial
    /// in the endpoint's namespace and whether it is established.
    pub(super) fn client_session(
        &mut self,
        now: std::time::Instant,
        addr: SocketAddr,
        psk: &Psk,
    ) -> Result<(SessionId, bool), String> {
        let id = match self.client.session(addr) {
            Some(id) => id,
            None => self
                .client
                .connect(now, addr, &psk.identity, &psk.key)
                .map_err(|e| e.to_string())?,
        };
        Ok((id, self.client.is_established(id)))
    }

    /// Ends every session of both tables with close_notify, as the endpoint stops.
    pub(super) fn close_all(&mut self) {
        let now = std::time::Instant::now();
        self.client.close_all(now);
        if let Some(s) = self.server.as_mut() {
            s.close_all(now);
        }
    }

    /// The next record to send on the coaps socket: one held back first.
    pub(super) fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        if let Some(t) = self.held.take() {
            return Some(t);
        }
        if let Some(t) = self.client.poll_transmit() {
            return Some(t);
        }
        self.server.as_mut()?.poll_transmit()
    }

    /// The next session event of either table, with whether it is a client session.
    pub(super) fn poll_event(&mut self) -> Option<(bool, Event)> {
        if let Some(e) = self.client.poll_event() {
            return Some((true, e));
        }
        Some((false, self.server.as_mut()?.poll_event()?))
    }
}

/// The endpoint serial of a client session.
pub(super) fn client_serial(id: SessionId) -> u64 {
    id.serial | CLIENT_SERIAL
}
