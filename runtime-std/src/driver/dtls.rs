//! The driver's side of CoAP over DTLS (RFC 7252 §9): records from the coaps socket
//! into the session tables and their plaintext into the endpoint, the tables' records
//! onto the socket, `coaps://` requests onto client sessions, and what a session's end
//! means for the requests and observers that ran over it.

use std::io;
use std::net::SocketAddr;

use coap_core::{Handler, RequestId, Unreachable};

use super::Driver;
use crate::dtls::{client_serial, Psk, UNRESOLVED};
use crate::oscore::{Peer, Security};
use crate::response::ClientError;
use coap_core::oscore::Secured;

impl<H: Handler<Peer>> Driver<H> {
    /// Feeds a datagram received on the coaps socket: records for a session (or a new
    /// handshake), whose plaintext reaches the endpoint from `Peer { addr, Dtls(serial) }`.
    pub fn handle_dtls_datagram(&mut self, from: SocketAddr, bytes: &[u8]) {
        let now = self.now();
        let Some(dtls) = self.dtls.as_mut() else {
            return;
        };
        let wall = std::time::Instant::now();
        let (endpoint, handler) = (&mut self.endpoint, &mut self.handler);
        let mut deliver = |serial: u64, plain: &[u8]| {
            let peer = Secured {
                addr: from,
                security: Security::Dtls(serial),
            };
            endpoint.handle_datagram(now, peer, plain, handler);
        };
        // A datagram from a server this endpoint has a client session with belongs to it;
        // anything else is for the server table (a handshake or a client's session).
        if dtls.client.session(from).is_some() || dtls.server.is_none() {
            dtls.client
                .handle_datagram(wall, from, bytes, |id, p| deliver(client_serial(id), p));
        } else if let Some(server) = dtls.server.as_mut() {
            server.handle_datagram(wall, from, bytes, |id, p| deliver(id.serial, p));
        }
        self.dtls_events();
        self.dispatch_events();
    }

    /// The endpoint stops: every DTLS session ends with close_notify (RFC 5246 §7.2.1), so
    /// that servers free the place at once (a full table refuses newcomers) rather than
    /// after their idle timeout, as libcoap's client does on exit. Flush afterwards.
    pub fn close_dtls_sessions(&mut self) {
        if let Some(dtls) = self.dtls.as_mut() {
            dtls.close_all();
        }
    }

    /// Hands every record the sessions have to `send` (the coaps socket). A record it
    /// refuses is dropped (counted), except on `WouldBlock`: that one is held and the
    /// flush stops, returning [`crate::wait::Wait::Writable`] (flush again once the socket
    /// is).
    pub fn flush_dtls(
        &mut self,
        mut send: impl FnMut(SocketAddr, &[u8]) -> io::Result<()>,
    ) -> crate::wait::Wait {
        let Some(dtls) = self.dtls.as_mut() else {
            return crate::wait::Wait::Input;
        };
        while let Some((to, record)) = dtls.poll_transmit() {
            match send(to, &record) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    dtls.held = Some((to, record));
                    return crate::wait::Wait::Writable;
                }
                Err(_) => dtls.send_errors += 1,
            }
        }
        crate::wait::Wait::Input
    }

    /// Session events: a client handshake that failed fails the requests waiting for it
    /// with [`ClientError::Handshake`] (rather than letting them time out); a session that
    /// ended (close_notify from the server, eviction, idle timeout) ends what runs over it.
    pub(super) fn dtls_events(&mut self) {
        let Some(dtls) = self.dtls.as_mut() else {
            return;
        };
        let mut failed = Vec::new();
        let mut closed = Vec::new();
        while let Some((client, event)) = dtls.poll_event() {
            match event {
                coap_dtls::Event::HandshakeFailed { session, error } if client => {
                    if let Some(ids) = dtls.pending.remove(&session) {
                        failed.push((ids, error.to_string()));
                    }
                }
                coap_dtls::Event::Connected { session, .. } if client => {
                    dtls.pending.remove(&session);
                }
                coap_dtls::Event::Closed { session, reason } => {
                    dtls.pending.remove(&session);
                    let serial = if client {
                        client_serial(session)
                    } else {
                        session.serial
                    };
                    closed.push((session.addr, serial, reason));
                }
                _ => {}
            }
        }
        for (ids, error) in failed {
            for id in ids {
                self.fail(id, ClientError::Handshake(error.clone()));
            }
        }
        for (addr, serial, reason) in closed {
            self.dtls_session_closed(addr, serial, &reason);
        }
    }

    /// A DTLS session ended: what the endpoint still had with that peer ends too, as for an
    /// unreachable peer. Our requests and observations over it fail with
    /// [`ClientError::SessionClosed`] (the next request handshakes again), and the
    /// observers it registered with us are removed (RFC 7641 §4.5: they cannot hear any
    /// more) instead of holding their entries until they time out.
    fn dtls_session_closed(
        &mut self,
        addr: SocketAddr,
        serial: u64,
        reason: &coap_dtls::CloseReason,
    ) {
        let now = self.now();
        let peer = Secured {
            addr,
            security: Security::Dtls(serial),
        };
        self.closed_session = Some(reason.to_string());
        // The reason given here is not reported: `closed_session` says what happened.
        self.endpoint
            .handle_unreachable(now, peer, Unreachable::Port);
        self.dispatch_events();
        self.closed_session = None;
    }

    /// For a `coaps://` request (serial [`UNRESOLVED`]): the client session with the
    /// address, started with the request's PSK if there is none. Also whether the
    /// handshake is still running.
    pub(super) fn resolve_peer(
        &mut self,
        peer: Peer,
        psk: Option<&Psk>,
    ) -> Result<(Peer, Option<coap_dtls::SessionId>), ClientError> {
        if peer.security != Security::Dtls(UNRESOLVED) {
            return Ok((peer, None));
        }
        let Some(dtls) = self.dtls.as_mut() else {
            return Err(ClientError::NoCredentials);
        };
        let psk = psk.ok_or(ClientError::NoCredentials)?;
        let (id, established) = dtls
            .client_session(std::time::Instant::now(), peer.addr, psk)
            .map_err(ClientError::Handshake)?;
        let resolved = Secured {
            addr: peer.addr,
            security: Security::Dtls(client_serial(id)),
        };
        Ok((resolved, (!established).then_some(id)))
    }

    /// Remembers that request `id` waits for the handshake of `session`.
    pub(super) fn await_handshake(&mut self, session: Option<coap_dtls::SessionId>, id: RequestId) {
        if let (Some(s), Some(dtls)) = (session, self.dtls.as_mut()) {
            dtls.pending.entry(s).or_default().push(id);
        }
    }
}
