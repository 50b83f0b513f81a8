//! The reliable message layer of one connection (RFC 8323 §3.3, §5), sans-IO.
//!
//! Messages come in whole (from the [`Framer`](super::Framer) or one per WebSocket frame)
//! and go out into the caller's buffer. The layer owns what RFC 8323 puts between the
//! transport and the exchanges: the CSM exchange first (§5.3), Ping/Pong (§5.4), Release
//! (§5.5) and Abort (§5.6), and the tokens of the exchanges in progress on this connection.
//! There are no message types, Message IDs, retransmissions or duplicates (§3.3): the
//! transport delivers every message once and in order.

use super::signaling::{self, AlternativeAddresses, Signal, SignalError, DEFAULT_MAX_MESSAGE_SIZE};
use super::wire::{Framing, ReliableBuilder, ReliableMessage, WireError};
use super::FrameError;
use crate::code::{Code, CodeClass};
use crate::message::BuildError;
use crate::time::Instant;
use crate::token::Token;
use heapless::Vec;

/// What this side announces and how long it waits for the peer's CSM.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnectionConfig {
    /// Max-Message-Size announced in the CSM (§5.3.1): at most the receive buffer's size.
    /// A value under the default of 1152 suits a small device, but a peer may send up to
    /// 1152 bytes before it has read the CSM; such a message is refused (Abort).
    pub max_message_size: u32,
    /// Announce Block-Wise-Transfer (§5.3.2): BERT is used when both sides do (§6).
    pub block_wise_transfer: bool,
    /// How long to wait for the peer's CSM before aborting (§5.3: a missing CSM is a
    /// connection error), in milliseconds.
    pub csm_timeout_ms: u64,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            block_wise_transfer: false,
            csm_timeout_ms: 10_000,
        }
    }
}

/// The peer's capabilities and settings (§5.3), defaults until its CSM arrives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PeerSettings {
    /// The largest message the peer accepts.
    pub max_message_size: u32,
    /// The peer announced Block-Wise-Transfer.
    pub block_wise_transfer: bool,
}

impl Default for PeerSettings {
    fn default() -> Self {
        PeerSettings {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            block_wise_transfer: false,
        }
    }
}

/// A protocol error: the connection sends Abort with a diagnostic and closes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProtocolError {
    /// A malformed message (§3.2).
    #[error("malformed message: {0}")]
    Wire(WireError),
    /// The stream cannot be framed (oversized message, reserved token length).
    #[error("{0}")]
    Frame(FrameError),
    /// The peer's first message is not a CSM (§5.3).
    #[error("first message is not a CSM")]
    CsmNotFirst,
    /// No CSM from the peer within the configured time (§5.3).
    #[error("no CSM from the peer in time")]
    CsmTimeout,
    /// A signaling message with an unknown code or critical option (§5.2, §5.3).
    #[error("{0}")]
    Signal(SignalError),
    /// A code of a reserved class (1, 3, 6) (RFC 7252 §12.1.1).
    #[error("reserved code class {}", .0.class())]
    ReservedCode(Code),
    /// The peer sends Pings (or requests beyond the tracked number) faster than it reads
    /// the answers: the answer queue is full.
    #[error("too many answers queued")]
    Overloaded,
}

impl ProtocolError {
    /// The Abort's diagnostic payload (§5.6).
    fn diagnostic(&self) -> &'static str {
        match self {
            ProtocolError::Wire(_) => "malformed message",
            ProtocolError::Frame(FrameError::TooLarge { .. }) => "message exceeds Max-Message-Size",
            ProtocolError::Frame(FrameError::Wire(_)) => "malformed message header",
            ProtocolError::CsmNotFirst => "CSM expected as the first message",
            ProtocolError::CsmTimeout => "no CSM received",
            ProtocolError::Signal(SignalError::UnknownCode(_)) => "unknown signaling code",
            ProtocolError::Signal(SignalError::UnknownCriticalOption { .. }) => {
                "unknown critical signaling option"
            }
            ProtocolError::ReservedCode(_) => "reserved code class",
            ProtocolError::Overloaded => "too many answers queued",
        }
    }

    /// Bad-CSM-Option for an unknown critical CSM option (§5.6.1).
    fn bad_csm_option(&self) -> Option<u16> {
        match self {
            ProtocolError::Signal(SignalError::UnknownCriticalOption { code, option })
                if *code == Code::CSM =>
            {
                Some(*option)
            }
            _ => None,
        }
    }
}

/// Why the connection ended. Every exchange on it ends with it: requests in flight fail
/// and observations are over (RFC 8323 §7: a lost connection cancels observations).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CloseReason<'m> {
    /// The peer sent Abort (§5.6).
    PeerAborted {
        /// Its Bad-CSM-Option.
        bad_csm_option: Option<u16>,
        /// Its diagnostic payload.
        diagnostic: &'m [u8],
    },
    /// This side found a protocol error and sends Abort.
    ProtocolError(ProtocolError),
    /// The transport closed or failed ([`Connection::connection_lost`]).
    ConnectionLost,
    /// This side aborted ([`Connection::abort`]).
    LocalAbort,
}

/// What an incoming message means for the layers above.
#[derive(Clone, Debug)]
pub enum Event<'m> {
    /// The peer's CSM (first or a later update, §5.3); settings now in force.
    PeerSettings(PeerSettings),
    /// A request for the server role; answer with [`Connection::send_response`].
    Request(ReliableMessage<'m>),
    /// A response to a request sent on this connection, matched by token.
    Response {
        /// The response.
        message: ReliableMessage<'m>,
        /// The exchange is over (not a notification of an observation).
        last: bool,
    },
    /// A Pong answering [`Connection::ping`] (§5.4).
    Pong {
        /// The Ping's token.
        token: &'m [u8],
        /// The peer took custody (answered everything before the Ping, §5.4.1).
        custody: bool,
    },
    /// The peer asks to close this connection (§5.5): no new requests on it; outstanding
    /// responses still arrive. Close once [`Connection::is_idle`].
    Released {
        /// Where to send new requests instead.
        alternative_addresses: AlternativeAddresses<'m>,
        /// Seconds to wait before reconnecting to this peer.
        hold_off: Option<u32>,
    },
    /// The connection is over; close the transport once [`Connection::poll_transmit`]
    /// has nothing left (an Abort to send after a protocol error).
    Closed(CloseReason<'m>),
}

/// Why an outgoing message was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SendError {
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
    /// This side's CSM has not been sent yet ([`Connection::poll_transmit`] first, §5.3).
    #[error("CSM not sent yet")]
    CsmNotSent,
    /// Release was sent or received: no new requests on this connection (§5.5).
    #[error("connection released")]
    Released,
    /// The code is not a request (send_request) or not a response (send_response).
    #[error("wrong code class for this call")]
    WrongCode,
    /// As many exchanges as the connection tracks are in progress.
    #[error("too many exchanges in progress")]
    TooManyExchanges,
    /// The message exceeds the peer's Max-Message-Size (§5.3.1).
    #[error("message of {len} bytes exceeds the peer's Max-Message-Size {limit}")]
    TooLarge {
        /// Message length.
        len: usize,
        /// The peer's limit.
        limit: u32,
    },
    /// The message cannot be built.
    #[error("{0}")]
    Build(BuildError),
}

impl From<BuildError> for SendError {
    fn from(e: BuildError) -> Self {
        SendError::Build(e)
    }
}

/// A signaling message waiting for [`Connection::poll_transmit`].
#[derive(Clone, Copy, Debug)]
enum Queued {
    Ping {
        token: Token,
        custody: bool,
    },
    /// A Pong; with custody it waits until every request received before its Ping (those
    /// numbered below `upto`) has been answered (§5.4.1).
    Pong {
        token: Token,
        custody: bool,
        upto: u32,
    },
    Release {
        hold_off: Option<u32>,
    },
    /// A 5.03 for a request beyond the tracked number of exchanges.
    Unavailable {
        token: Token,
    },
}

/// Where the connection stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// The peer's CSM has not arrived.
    AwaitingCsm {
        deadline: Instant,
    },
    Open,
    /// An Abort waits to be sent.
    Aborting {
        bad_csm_option: Option<u16>,
        diagnostic: &'static str,
    },
    Closed,
}

/// One RFC 8323 connection's message layer, tracking up to `N` exchanges in each role.
#[derive(Debug)]
pub struct Connection<const N: usize = 16> {
    framing: Framing,
    config: ConnectionConfig,
    state: State,
    csm_sent: bool,
    peer: PeerSettings,
    /// Release sent (with its alternative address kept by the caller) or received.
    released: bool,
    release_address: Option<&'static str>,
    queue: Vec<Queued, 8>,
    /// Tokens of this side's requests awaiting responses (and of observations).
    client: Vec<Token, N>,
    /// Tokens of the peer's requests not yet answered, with their arrival number (for
    /// Custody, §5.4.1).
    server: Vec<(Token, u32), N>,
    /// Requests received so far (wrapping; compared only among open ones).
    received: u32,
}

impl<const N: usize> Connection<N> {
    /// A new connection at `now` (the CSM wait starts). Both roles send their CSM at once:
    /// the initiator must not wait for the acceptor's (§5.3), and the acceptor may not
    /// need to.
    pub fn new(now: Instant, framing: Framing, config: ConnectionConfig) -> Self {
        Connection {
            framing,
            config,
            state: State::AwaitingCsm {
                deadline: now.add_millis(config.csm_timeout_ms),
            },
            csm_sent: false,
            peer: PeerSettings::default(),
            released: false,
            release_address: None,
            queue: Vec::new(),
            client: Vec::new(),
            server: Vec::new(),
            received: 0,
        }
    }

    /// The framing this connection uses.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The Max-Message-Size this side announces (the framer's limit).
    pub fn local_max_message_size(&self) -> u32 {
        self.config.max_message_size
    }

    /// The peer's settings in force (defaults before its CSM).
    pub fn peer_settings(&self) -> PeerSettings {
        self.peer
    }

    /// The peer's CSM has arrived and the connection is not closed.
    pub fn is_established(&self) -> bool {
        self.state == State::Open
    }

    /// The connection is over (an Abort may still be waiting in `poll_transmit`).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed | State::Aborting { .. })
    }

    /// No exchange in progress in either role.
    pub fn is_idle(&self) -> bool {
        self.client.is_empty() && self.server.is_empty()
    }

    /// Block-wise transfer with BERT (SZX 7, §6) may be used: both sides announced
    /// Block-Wise-Transfer.
    pub fn bert(&self) -> bool {
        self.config.block_wise_transfer && self.peer.block_wise_transfer
    }

    /// The largest BERT payload (a multiple of 1024, §6) that fits the peer's
    /// Max-Message-Size after `overhead` bytes of header and options; `None` without BERT
    /// or when not even one 1024-byte block fits.
    pub fn bert_payload(&self, overhead: usize) -> Option<usize> {
        if !self.bert() {
            return None;
        }
        let room = (self.peer.max_message_size as usize).saturating_sub(overhead + 1);
        let n = room / 1024 * 1024;
        (n > 0).then_some(n)
    }

    /// When [`Connection::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::AwaitingCsm { deadline } => Some(deadline),
            _ => None,
        }
    }

    /// Aborts when the peer's CSM is overdue.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Event<'static>> {
        match self.state {
            State::AwaitingCsm { deadline } if now >= deadline => {
                Some(self.protocol_error(ProtocolError::CsmTimeout))
            }
            _ => None,
        }
    }

    /// The transport closed or failed: every exchange on the connection ends (§7).
    pub fn connection_lost(&mut self) -> Option<Event<'static>> {
        if self.state == State::Closed {
            return None;
        }
        self.close();
        Some(Event::Closed(CloseReason::ConnectionLost))
    }

    /// Aborts the connection from this side (§5.6), with a diagnostic. The exchanges on
    /// it end (the caller, who decided, fails them).
    pub fn abort(&mut self, diagnostic: &'static str) {
        if !self.is_closed() {
            self.client.clear();
            self.server.clear();
            self.queue.clear();
            self.state = State::Aborting {
                bad_csm_option: None,
                diagnostic,
            };
        }
    }

    /// The framer failed (an oversized frame, §5.3.1): Abort. Returns the `Closed` event.
    pub fn frame_error(&mut self, e: FrameError) -> Option<Event<'static>> {
        (!self.is_closed()).then(|| self.protocol_error(ProtocolError::Frame(e)))
    }

    /// Asks the peer to close this connection (§5.5), optionally pointing at another
    /// address and asking it to hold off for some seconds; no new requests are sent.
    pub fn release(&mut self, alternative_address: Option<&'static str>, hold_off: Option<u32>) {
        if self.is_closed() || self.released {
            return;
        }
        if self.queue.push(Queued::Release { hold_off }).is_ok() {
            self.released = true;
            self.release_address = alternative_address;
        }
    }

    /// Sends a Ping (§5.4); the Pong comes back as [`Event::Pong`] with the same token.
    /// With `custody`, the peer answers once it has answered every earlier request.
    pub fn ping(&mut self, token: &[u8], custody: bool) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::Closed);
        }
        let token = Token::new(token).ok_or(BuildError::TokenTooLong)?;
        self.queue
            .push(Queued::Ping { token, custody })
            .map_err(|_| SendError::TooManyExchanges)
    }

    /// The next message this layer itself must send (its CSM first, then Pongs, Release,
    /// Abort ...), written into `out`. `Ok(None)` when there is nothing to send.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Result<Option<usize>, BuildError> {
        if self.state == State::Closed {
            return Ok(None);
        }
        if !self.csm_sent {
            let n = signaling::write_csm(
                out,
                self.framing,
                self.config.max_message_size,
                self.config.block_wise_transfer,
            )?;
            self.csm_sent = true;
            return Ok(Some(n));
        }
        if let State::Aborting {
            bad_csm_option,
            diagnostic,
        } = self.state
        {
            let n = signaling::write_abort(out, self.framing, bad_csm_option, diagnostic)?;
            self.close();
            return Ok(Some(n));
        }
        let received = self.received;
        let ready = self.queue.iter().position(|q| match *q {
            // Custody: only once every request received before the Ping is answered.
            Queued::Pong {
                custody: true,
                upto,
                ..
            } => !self
                .server
                .iter()
                .any(|&(_, seq)| received.wrapping_sub(seq) > received.wrapping_sub(upto)),
            _ => true,
        });
        let Some(i) = ready else { return Ok(None) };
        let q = self.queue[i];
        let n = match q {
            Queued::Ping { token, custody } => signaling::write_ping_pong(
                out,
                self.framing,
                Code::PING,
                token.as_slice(),
                custody,
            )?,
            Queued::Pong { token, custody, .. } => signaling::write_ping_pong(
                out,
                self.framing,
                Code::PONG,
                token.as_slice(),
                custody,
            )?,
            Queued::Release { hold_off } => {
                signaling::write_release(out, self.framing, self.release_address, hold_off, "")?
            }
            Queued::Unavailable { token } => {
                let mut b = ReliableBuilder::new(
                    out,
                    self.framing,
                    Code::SERVICE_UNAVAILABLE,
                    token.as_slice(),
                )?;
                b.payload(b"too many requests in progress")?;
                b.finish()?
            }
        };
        // Removed only once written: a buffer too small leaves it queued.
        self.queue.remove(i);
        Ok(Some(n))
    }

    /// Writes a request into `out` (for the transport to send as is). The token is this
    /// side's to choose, unique among its exchanges on this connection; sending again with
    /// the token of an exchange in progress (re-registering or cancelling an observation)
    /// keeps one exchange. Before the peer's CSM the default limits apply (§5.3).
    pub fn send_request(
        &mut self,
        out: &mut [u8],
        code: Code,
        token: &[u8],
        fill: impl FnOnce(&mut ReliableBuilder<'_>) -> Result<(), BuildError>,
    ) -> Result<usize, SendError> {
        self.check_send()?;
        if self.released {
            return Err(SendError::Released);
        }
        if !code.is_request() {
            return Err(SendError::WrongCode);
        }
        let t = Token::new(token).ok_or(BuildError::TokenTooLong)?;
        let known = self.client.contains(&t);
        if !known && self.client.is_full() {
            return Err(SendError::TooManyExchanges);
        }
        let n = self.build(out, code, token, fill)?;
        if !known {
            let _ = self.client.push(t);
        }
        Ok(n)
    }

    /// Writes a response (or a notification of an observation, RFC 7641 over §7) to the
    /// request with this token.
    pub fn send_response(
        &mut self,
        out: &mut [u8],
        code: Code,
        token: &[u8],
        fill: impl FnOnce(&mut ReliableBuilder<'_>) -> Result<(), BuildError>,
    ) -> Result<usize, SendError> {
        self.check_send()?;
        if !code.is_response() {
            return Err(SendError::WrongCode);
        }
        let n = self.build(out, code, token, fill)?;
        if let Some(t) = Token::new(token) {
            self.server.retain(|(s, _)| *s != t);
        }
        Ok(n)
    }

    /// Ends this side's exchange with this token without a response (a cancelled request
    /// or an observation the client forgets, RFC 7641 §3.6).
    pub fn forget(&mut self, token: &[u8]) {
        if let Some(t) = Token::new(token) {
            self.client.retain(|c| *c != t);
        }
    }

    /// A response written outside [`Connection::send_response`] (the server's exchange
    /// layer, [`super::exchange`]): checked against the peer's Max-Message-Size, and the
    /// request with this token is answered.
    pub(crate) fn sent_response(&mut self, token: &[u8], len: usize) -> Result<(), SendError> {
        let limit = self.peer.max_message_size;
        if len as u64 > u64::from(limit) {
            return Err(SendError::TooLarge { len, limit });
        }
        self.unanswered(token);
        Ok(())
    }

    /// The request with this token gets no response (its handler had nothing to say):
    /// it no longer counts as in progress (nor holds back a Pong with Custody, §5.4.1).
    pub(crate) fn unanswered(&mut self, token: &[u8]) {
        if let Some(t) = Token::new(token) {
            self.server.retain(|(s, _)| *s != t);
        }
    }

    pub(crate) fn check_send(&self) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::Closed);
        }
        if !self.csm_sent {
            return Err(SendError::CsmNotSent);
        }
        Ok(())
    }

    fn build(
        &self,
        out: &mut [u8],
        code: Code,
        token: &[u8],
        fill: impl FnOnce(&mut ReliableBuilder<'_>) -> Result<(), BuildError>,
    ) -> Result<usize, SendError> {
        let mut b = ReliableBuilder::new(out, self.framing, code, token)?;
        fill(&mut b)?;
        let n = b.finish()?;
        let limit = self.peer.max_message_size;
        if n as u64 > u64::from(limit) {
            return Err(SendError::TooLarge { len: n, limit });
        }
        Ok(n)
    }

    /// Handles one complete message from the peer. Signaling is handled here (answers go
    /// to [`Connection::poll_transmit`]); requests and responses go up as events.
    pub fn handle_message<'m>(&mut self, bytes: &'m [u8]) -> Option<Event<'m>> {
        if self.is_closed() {
            // After Abort nothing more is processed (§5.6).
            return None;
        }
        let msg = match ReliableMessage::parse(bytes, self.framing) {
            Ok(m) => m,
            Err(e) => return Some(self.protocol_error(ProtocolError::Wire(e))),
        };
        let code = msg.code();
        let awaiting = matches!(self.state, State::AwaitingCsm { .. });
        if awaiting && code != Code::CSM {
            return Some(self.protocol_error(ProtocolError::CsmNotFirst));
        }
        match code.kind() {
            // §3.4: Empty messages may always be sent and are ignored.
            CodeClass::Empty => None,
            CodeClass::Signaling => self.handle_signal(&msg),
            CodeClass::Request => self.handle_request(msg),
            CodeClass::Success | CodeClass::ClientError | CodeClass::ServerError => {
                let t = Token::new(msg.token())?;
                let i = self.client.iter().position(|c| *c == t)?;
                // A notification keeps the observation; any other response ends it (RFC
                // 7641 §3.2; no reordering check over a reliable transport, §7.1).
                let last = msg.observe().is_none() || code.is_error();
                if last {
                    self.client.swap_remove(i);
                }
                Some(Event::Response { message: msg, last })
            }
            CodeClass::Reserved => Some(self.protocol_error(ProtocolError::ReservedCode(code))),
        }
    }

    fn handle_request<'m>(&mut self, msg: ReliableMessage<'m>) -> Option<Event<'m>> {
        let t = Token::new(msg.token())?;
        let seq = self.received;
        self.received = seq.wrapping_add(1);
        if !self.server.iter().any(|(s, _)| *s == t) && self.server.push((t, seq)).is_err() {
            // Beyond the tracked exchanges: answer 5.03 here (RFC 7252 §5.9.3.4).
            return self.enqueue(Queued::Unavailable { token: t });
        }
        Some(Event::Request(msg))
    }

    fn handle_signal<'m>(&mut self, msg: &ReliableMessage<'m>) -> Option<Event<'m>> {
        let signal = match signaling::parse(msg) {
            Ok(s) => s,
            Err(e) => return Some(self.protocol_error(ProtocolError::Signal(e))),
        };
        match signal {
            Signal::Csm {
                max_message_size,
                block_wise_transfer,
            } => {
                // Options a later CSM leaves out keep their values (§5.3).
                if let Some(m) = max_message_size {
                    self.peer.max_message_size = m;
                }
                self.peer.block_wise_transfer |= block_wise_transfer;
                self.state = State::Open;
                Some(Event::PeerSettings(self.peer))
            }
            Signal::Ping { custody } => {
                let token = Token::new(msg.token())?;
                let upto = self.received;
                self.enqueue(Queued::Pong {
                    token,
                    custody,
                    upto,
                })
            }
            Signal::Pong { custody } => Some(Event::Pong {
                token: msg.token(),
                custody,
            }),
            Signal::Release {
                alternative_addresses,
                hold_off,
                ..
            } => {
                self.released = true;
                Some(Event::Released {
                    alternative_addresses,
                    hold_off,
                })
            }
            Signal::Abort {
                bad_csm_option,
                diagnostic,
            } => {
                self.close();
                Some(Event::Closed(CloseReason::PeerAborted {
                    bad_csm_option,
                    diagnostic,
                }))
            }
        }
    }

    /// Queues Abort for `e` and ends every exchange.
    fn protocol_error(&mut self, e: ProtocolError) -> Event<'static> {
        self.client.clear();
        self.server.clear();
        self.queue.clear();
        self.state = State::Aborting {
            bad_csm_option: e.bad_csm_option(),
            diagnostic: e.diagnostic(),
        };
        Event::Closed(CloseReason::ProtocolError(e))
    }

    /// Queues an answer; a full queue (a peer that does not read) is a protocol error.
    fn enqueue(&mut self, q: Queued) -> Option<Event<'static>> {
        match self.queue.push(q) {
            Ok(()) => None,
            Err(_) => Some(self.protocol_error(ProtocolError::Overloaded)),
        }
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.client.clear();
        self.server.clear();
        self.queue.clear();
    }
}
