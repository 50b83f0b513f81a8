//! The session table: one DTLS association per peer address, bounded, with idle expiry.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use dimpl::{Dtls, Output};

use crate::cookie::{CookieKeys, ReplayGuard};
use crate::error::{CloseReason, HandshakeError, SendError, SetupError};
use crate::psk::{ClientResolver, IdentitySlot, PskStore};
use crate::record;

mod budget;
mod server;

use crate::config::{Config, WhenFull};
pub use crate::session_id::SessionId;

/// What happened to a session; drain with [`Sessions::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed; application data can flow.
    Connected {
        /// The session.
        session: SessionId,
        /// On a server, the PSK identity the client authenticated with.
        identity: Option<Vec<u8>>,
    },
    /// The handshake failed; the session is gone.
    HandshakeFailed {
        /// The session.
        session: SessionId,
        /// Why.
        error: HandshakeError,
    },
    /// An established session ended.
    Closed {
        /// The session.
        session: SessionId,
        /// Why.
        reason: CloseReason,
    },
}

/// Counters, for tests, logs and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// HelloVerifyRequests sent (one per ClientHello without a valid cookie).
    pub hello_verify_sent: u64,
    /// Cookie-bearing ClientHellos whose cookie did not verify.
    pub cookie_rejected: u64,
    /// Valid-cookie ClientHellos refused because that ClientHello.random was already used.
    pub replay_rejected: u64,
    /// Handshakes completed.
    pub handshakes_completed: u64,
    /// Handshakes failed.
    pub handshakes_failed: u64,
    /// Datagrams dropped without reaching a session (no session and not a ClientHello).
    pub datagrams_dropped: u64,
    /// Established sessions closed (with close_notify) to keep the table within
    /// [`Config::max_sessions`] ([`Config::when_full`]).
    pub evicted: u64,
    /// Half-open sessions dropped to stay within [`Config::max_handshakes`] or
    /// [`Config::max_handshakes_per_host`].
    pub half_open_dropped: u64,
    /// Server: cookie-verified handshakes refused with a fatal alert because the
    /// established table was full ([`WhenFull::Refuse`]).
    pub handshakes_refused: u64,
    /// Handshakes failed because [`Config::handshake_timeout`] passed.
    pub handshakes_expired: u64,
    /// Records dropped because the transmit queue was full.
    pub transmit_dropped: u64,
    /// Panics caught from the DTLS engine (each one ends its session).
    pub engine_panics: u64,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Server {}
    impl Sealed for super::Client {}
}

/// The role of a [`Sessions`] table: [`Server`] or [`Client`].
pub trait Role: sealed::Sealed + Sized {
    /// Whether this role accepts handshakes (per-host budgets apply to servers only).
    #[doc(hidden)]
    const SERVER: bool;
    #[doc(hidden)]
    fn server(&mut self) -> Option<&mut Server>;
    /// A ClientHello that no session takes: the server starts the cookie exchange, the
    /// client drops it.
    #[doc(hidden)]
    fn on_client_hello(
        sessions: &mut Sessions<Self>,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    );
}

/// Server role: accepts handshakes, looks keys up in a [`PskStore`].
///
/// Statelessness before the cookie: dimpl derives its HelloVerifyRequest cookie from a
/// secret inside each server instance. The server therefore builds a throw-away instance
/// whose RNG seed is a keyed hash of (rotating key, peer address, ClientHello.random),
/// lets it answer the ClientHello, and drops it. When the client echoes the cookie, an
/// identical instance is rebuilt, replays the cookie-less ClientHello, and checks the
/// cookie itself; only if it answers with a ServerHello does a session exist. The derived
/// seed makes the server's randomness a function of that tuple, so a replay guard refuses a
/// second handshake with the same ClientHello.random under the same key generation (see
/// the `cookie` module).
pub struct Server {
    store: Arc<dyn PskStore>,
    keys: CookieKeys,
    replay: ReplayGuard,
}

impl Role for Server {
    const SERVER: bool = true;
    fn server(&mut self) -> Option<&mut Server> {
        Some(self)
    }
    fn on_client_hello(
        sessions: &mut Sessions<Self>,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) {
        match record::client_hello(datagram) {
            Some(ch) => sessions.accept(now, from, datagram, ch),
            None => sessions.out.stats.datagrams_dropped += 1,
        }
    }
}

/// Client role: [`Sessions::connect`] starts handshakes; datagrams from addresses without
/// a session are dropped.
pub struct Client {
    _private: (),
}

impl Role for Client {
    const SERVER: bool = false;
    fn server(&mut self) -> Option<&mut Server> {
        None
    }
    fn on_client_hello(sessions: &mut Sessions<Self>, _: Instant, _: SocketAddr, _: &[u8]) {
        sessions.out.stats.datagrams_dropped += 1;
    }
}

enum State {
    /// Handshake running; the client's plaintext waits here (bounded).
    Handshaking {
        queued: VecDeque<Vec<u8>>,
    },
    Established,
}

struct Session {
    id: SessionId,
    dtls: Dtls,
    state: State,
    /// When the session was created: the half-open budget drops the oldest first and the
    /// handshake deadline counts from here.
    started: Instant,
    last_activity: Instant,
    /// The engine's next timer (retransmission or handshake deadline).
    engine_deadline: Option<Instant>,
    identity_slot: Option<IdentitySlot>,
    identity: Option<Vec<u8>>,
}

impl Session {
    /// The next timer: the engine's, the idle timeout once established, the handshake
    /// deadline before.
    fn deadline(&self, config: &Config) -> Option<Instant> {
        let own = match self.state {
            State::Established => self.last_activity.checked_add(config.idle_timeout),
            State::Handshaking { .. } => self.handshake_deadline(config),
        };
        match (self.engine_deadline, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Outputs shared by all sessions, borrowed separately from the session table.
struct Outbox {
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<Event>,
    stats: Stats,
    max_transmit_queue: usize,
    scratch: Vec<u8>,
}

impl Outbox {
    fn transmit(&mut self, to: SocketAddr, record: &[u8]) {
        if self.transmits.len() >= self.max_transmit_queue {
            self.stats.transmit_dropped += 1;
        } else {
            self.transmits.push_back((to, record.to_vec()));
        }
    }
}

/// How a drain ended, besides producing output.
enum Drained {
    Running,
    /// The peer sent close_notify.
    PeerClosed,
    /// Flushing the plaintext queued during the handshake failed (the engine is dead).
    Failed(String),
}

/// Pulls everything out of one engine: records to the outbox, plaintext to `deliver`,
/// state changes into the session. Bounded by the engine's own queues; the step cap only
/// guards against an engine that never reports its timeout.
fn drain(
    s: &mut Session,
    now: Instant,
    out: &mut Outbox,
    deliver: &mut dyn FnMut(SessionId, &[u8]),
) -> Drained {
    let mut connected = false;
    let mut peer_closed = false;
    for _ in 0..10_000 {
        match s.dtls.poll_output(&mut out.scratch) {
            Output::Packet(p) => {
                if out.transmits.len() >= out.max_transmit_queue {
                    out.stats.transmit_dropped += 1;
                } else {
                    out.transmits.push_back((s.id.addr, p.to_vec()));
                }
            }
            Output::BufferTooSmall { needed } => {
                // dimpl sizes records by the MTU; cap the growth anyway.
                let needed = needed.min(1 << 16);
                if needed <= out.scratch.len() {
                    break;
                }
                out.scratch.resize(needed, 0);
            }
            Output::Timeout(t) => {
                s.engine_deadline = Some(t);
                break;
            }
            Output::Connected => connected = true,
            Output::ApplicationData(data) => {
                s.last_activity = now;
                deliver(s.id, data);
            }
            Output::CloseNotify => peer_closed = true,
            // PeerCert: not used with PSK; KeyingMaterial: DTLS-SRTP export, not CoAP's.
            _ => {}
        }
    }
    if connected {
        if let State::Handshaking { queued } = std::mem::replace(&mut s.state, State::Established) {
            s.identity = s
                .identity_slot
                .as_ref()
                .and_then(|slot| slot.lock().ok().and_then(|g| g.clone()));
            out.stats.handshakes_completed += 1;
            out.events.push_back(Event::Connected {
                session: s.id,
                identity: s.identity.clone(),
            });
            s.last_activity = now;
            // Drain after every datagram: dimpl refuses (fatally) more than
            // `max_queue_tx` unsent records.
            let mut result = drain(s, now, out, deliver);
            for datagram in queued {
                if !matches!(result, Drained::Running) {
                    break;
                }
                let stats = &mut out.stats;
                result = match guarded(stats, || {
                    s.dtls.send_application_data(&datagram).map(|_| ())
                }) {
                    Ok(()) => drain(s, now, out, deliver),
                    Err(e) => Drained::Failed(e),
                };
            }
            if !matches!(result, Drained::Running) {
                return result;
            }
        }
    }
    if peer_closed {
        Drained::PeerClosed
    } else {
        Drained::Running
    }
}

/// Runs one engine call, turning a panic inside the engine into an error for this session
/// only: bytes from the network must never take the process down.
fn guarded(stats: &mut Stats, f: impl FnOnce() -> Result<(), dimpl::Error>) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => {
            stats.engine_panics += 1;
            Err("DTLS engine panicked".into())
        }
    }
}

fn guarded_dimpl(
    stats: &mut Stats,
    f: impl FnOnce() -> Result<(), dimpl::Error>,
) -> Result<(), HandshakeErrorOr> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(HandshakeErrorOr(
            HandshakeError::from_dimpl(&e),
            e.to_string(),
        )),
        Err(_) => {
            stats.engine_panics += 1;
            let msg = "DTLS engine panicked".to_string();
            Err(HandshakeErrorOr(HandshakeError::Protocol(msg.clone()), msg))
        }
    }
}

/// An engine error seen both as a handshake error and as plain text for established
/// sessions.
struct HandshakeErrorOr(HandshakeError, String);

/// A bounded table of DTLS sessions in one [`Role`]; see the [crate docs](crate).
pub struct Sessions<R: Role> {
    config: Config,
    role: R,
    sessions: HashMap<SocketAddr, Session>,
    next_serial: u64,
    out: Outbox,
}

impl<R: Role> fmt::Debug for Sessions<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("sessions", &self.sessions.len())
            .field("stats", &self.out.stats)
            .finish()
    }
}

impl Sessions<Client> {
    /// A client table.
    pub fn client(config: Config) -> Result<Self, SetupError> {
        config.validate()?;
        Ok(Self::with_role(config, Client { _private: () }))
    }

    /// Starts a PSK handshake with `addr`; [`Sessions::send`] may be used at once (the
    /// plaintext waits, bounded, for the handshake). Fails if a session with `addr` exists.
    pub fn connect(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        identity: &[u8],
        psk: &[u8],
    ) -> Result<SessionId, SetupError> {
        if let Some(s) = self.sessions.get(&addr) {
            return Err(SetupError::SessionExists(s.id));
        }
        let cfg = self
            .config
            .dimpl_builder()
            .with_psk_client(identity.to_vec(), Arc::new(ClientResolver(psk.to_vec())))
            .build()
            .map_err(|e| SetupError::Config(e.to_string()))?;
        let mut dtls = Dtls::new_12_psk(Arc::new(cfg), now);
        dtls.set_active(true);
        let id = self.insert(
            now,
            addr,
            dtls,
            State::Handshaking {
                queued: VecDeque::new(),
            },
            None,
        );
        self.engine_timeout(now, addr);
        Ok(id)
    }
}

impl<R: Role> Sessions<R> {
    fn with_role(config: Config, role: R) -> Self {
        let out = Outbox {
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            max_transmit_queue: config.max_transmit_queue,
            scratch: vec![0; config.mtu.max(2048)],
        };
        Sessions {
            config,
            role,
            sessions: HashMap::new(),
            next_serial: 1,
            out,
        }
    }

    fn insert(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        dtls: Dtls,
        state: State,
        identity_slot: Option<IdentitySlot>,
    ) -> SessionId {
        // Half-open sessions only displace half-open ones; the established budget is
        // enforced when a handshake completes (`enforce_established_limit`).
        self.make_room_for_handshake(now, addr);
        let id = SessionId {
            addr,
            serial: self.next_serial,
        };
        self.next_serial += 1;
        let session = Session {
            id,
            dtls,
            state,
            started: now,
            last_activity: now,
            engine_deadline: None,
            identity_slot,
            identity: None,
        };
        self.sessions.insert(addr, session);
        id
    }

    /// Removes a session, telling the peer with close_notify where that makes sense.
    fn finish(&mut self, now: Instant, addr: SocketAddr, how: Finish, notify_peer: bool) {
        let Some(mut s) = self.sessions.remove(&addr) else {
            return;
        };
        let established = matches!(s.state, State::Established);
        if notify_peer && established {
            let stats = &mut self.out.stats;
            if guarded(stats, || s.dtls.close()).is_ok() {
                drain(&mut s, now, &mut self.out, &mut |_, _| {});
            }
        }
        let event = match how {
            Finish::Closed(reason) if established => Event::Closed {
                session: s.id,
                reason,
            },
            Finish::Closed(reason) => Event::HandshakeFailed {
                session: s.id,
                error: HandshakeError::Protocol(reason.to_string()),
            },
            Finish::Error(e) if established => Event::Closed {
                session: s.id,
                reason: CloseReason::Failed(e.1),
            },
            Finish::Error(e) => Event::HandshakeFailed {
                session: s.id,
                error: e.0,
            },
        };
        if matches!(event, Event::HandshakeFailed { .. }) {
            self.out.stats.handshakes_failed += 1;
        }
        self.out.events.push_back(event);
    }

    /// Ends the session if draining it showed the peer closed or the engine failed.
    fn after_drain(&mut self, now: Instant, addr: SocketAddr, drained: Drained) {
        match drained {
            Drained::Running => self.enforce_established_limit(now, addr),
            Drained::PeerClosed => {
                self.finish(now, addr, Finish::Closed(CloseReason::PeerClosed), false)
            }
            Drained::Failed(e) => {
                let error = HandshakeErrorOr(HandshakeError::Protocol(e.clone()), e);
                self.finish(now, addr, Finish::Error(error), false)
            }
        }
    }

    /// Runs the engine's timer for `addr` and collects its output.
    fn engine_timeout(&mut self, now: Instant, addr: SocketAddr) {
        let Some(s) = self.sessions.get_mut(&addr) else {
            return;
        };
        let stats = &mut self.out.stats;
        match guarded_dimpl(stats, || s.dtls.handle_timeout(now)) {
            Ok(()) => {
                let drained = drain(s, now, &mut self.out, &mut |_, _| {});
                self.after_drain(now, addr, drained);
            }
            Err(e) => self.finish(now, addr, Finish::Error(e), false),
        }
    }

    /// Input: one UDP datagram from `from`. Plaintext CoAP datagrams it carries are passed
    /// to `deliver` with their session. Anything that is not a valid record for an
    /// existing session, or a ClientHello (server), is dropped without effect.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        mut deliver: impl FnMut(SessionId, &[u8]),
    ) {
        let hello = record::client_hello(datagram);
        let is_server = self.role.server().is_some();
        let route_to_session = match self.sessions.get(&from) {
            None => false,
            // RFC 6347 §4.2.8: a new ClientHello on an established association starts a new
            // handshake, but the old one stays until the client passed the cookie exchange.
            Some(s) => !(is_server && hello.is_some() && matches!(s.state, State::Established)),
        };
        if route_to_session {
            let Some(s) = self.sessions.get_mut(&from) else {
                return;
            };
            let stats = &mut self.out.stats;
            match guarded_dimpl(stats, || s.dtls.handle_packet(datagram)) {
                Ok(()) => {
                    let drained = drain(s, now, &mut self.out, &mut deliver);
                    self.after_drain(now, from, drained);
                }
                Err(e) => self.finish(now, from, Finish::Error(e), false),
            }
            return;
        }
        if hello.is_some() {
            R::on_client_hello(self, now, from, datagram);
        } else {
            self.out.stats.datagrams_dropped += 1;
        }
    }

    /// Input: the deadline from [`Sessions::poll_timeout`] passed. Retransmits handshake
    /// flights, fails handshakes past their deadline and closes idle sessions.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(server) = self.role.server() {
            server.keys.maybe_rotate(now, &mut server.replay);
        }
        self.expire_handshakes(now);
        let idle = self.config.idle_timeout;
        let config = &self.config;
        let due: Vec<SocketAddr> = self
            .sessions
            .values()
            .filter(|s| s.deadline(config).is_some_and(|d| d <= now))
            .map(|s| s.id.addr)
            .collect();
        for addr in due {
            let Some(s) = self.sessions.get(&addr) else {
                continue;
            };
            let idle_expired = matches!(s.state, State::Established)
                && s.last_activity.checked_add(idle).is_some_and(|d| d <= now);
            if idle_expired {
                self.finish(now, addr, Finish::Closed(CloseReason::IdleTimeout), true);
            } else {
                self.engine_timeout(now, addr);
            }
        }
    }

    /// Input: a plaintext CoAP datagram for `to`. Encrypted at once on an established
    /// session; on a client's handshaking session it waits (bounded) for the handshake.
    /// Never sent in clear: without a session this is [`SendError::NoSession`].
    pub fn send(&mut self, now: Instant, to: SessionId, plaintext: &[u8]) -> Result<(), SendError> {
        let max = self.config.max_plaintext();
        if plaintext.len() > max {
            return Err(SendError::TooLarge {
                len: plaintext.len(),
                max,
            });
        }
        let limit = self.config.max_queued_plaintext;
        let s = match self.sessions.get_mut(&to.addr) {
            Some(s) if s.id == to => s,
            _ => return Err(SendError::NoSession),
        };
        match &mut s.state {
            State::Handshaking { queued } => {
                if queued.len() >= limit {
                    return Err(SendError::QueueFull);
                }
                queued.push_back(plaintext.to_vec());
                Ok(())
            }
            State::Established => {
                s.last_activity = now;
                let stats = &mut self.out.stats;
                match guarded_dimpl(stats, || {
                    s.dtls.send_application_data(plaintext).map(|_| ())
                }) {
                    Ok(()) => {
                        let drained = drain(s, now, &mut self.out, &mut |_, _| {});
                        self.after_drain(now, to.addr, drained);
                        Ok(())
                    }
                    Err(e) => {
                        let msg = e.1.clone();
                        self.finish(now, to.addr, Finish::Error(e), false);
                        Err(SendError::Failed(msg))
                    }
                }
            }
        }
    }

    /// Ends a session, sending close_notify if it was established. No event is produced.
    pub fn close(&mut self, now: Instant, session: SessionId) {
        if self
            .sessions
            .get(&session.addr)
            .is_some_and(|s| s.id == session)
        {
            self.finish(now, session.addr, Finish::Closed(CloseReason::Local), true);
            // The caller asked for it: no event.
            self.out.events.pop_back();
        }
    }

    /// Ends every session, sending close_notify on the established ones (RFC 5246 §7.2.1):
    /// for an endpoint that stops, so that its peers free their places at once rather than
    /// after their idle timeout. Like [`Sessions::close`], no events.
    pub fn close_all(&mut self, now: Instant) {
        let events = self.out.events.len();
        let addrs: Vec<SocketAddr> = self.sessions.keys().copied().collect();
        for addr in addrs {
            self.finish(now, addr, Finish::Closed(CloseReason::Local), true);
        }
        self.out.events.truncate(events);
    }

    /// Output: the next record to send, with its destination.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.transmits.pop_front()
    }

    /// Output: the next session event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// When to call [`Sessions::handle_timeout`] next; `None` when no session needs a timer.
    /// A linear scan: the table is bounded by [`Config::max_sessions`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(|s| s.deadline(&self.config))
            .min()
    }

    /// The session with `addr`, if any (handshaking or established).
    pub fn session(&self, addr: SocketAddr) -> Option<SessionId> {
        self.sessions.get(&addr).map(|s| s.id)
    }

    /// Whether `session` exists and finished its handshake.
    pub fn is_established(&self, session: SessionId) -> bool {
        self.sessions
            .get(&session.addr)
            .is_some_and(|s| s.id == session && matches!(s.state, State::Established))
    }

    /// On a server, the PSK identity `session` authenticated with.
    pub fn peer_identity(&self, session: SessionId) -> Option<&[u8]> {
        self.sessions
            .get(&session.addr)
            .filter(|s| s.id == session)
            .and_then(|s| s.identity.as_deref())
    }

    /// Number of sessions, handshaking or established.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Number of sessions still handshaking (half-open, on a server).
    pub fn handshakes(&self) -> usize {
        self.handshaking()
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.out.stats
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

enum Finish {
    Closed(CloseReason),
    Error(HandshakeErrorOr),
}
