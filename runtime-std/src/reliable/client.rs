//! The client half of CoAP over TCP (RFC 8323): one connection per origin, kept in a
//! [`Pool`] and reused by every request of a [`crate::Client`] to it; a connection that is
//! lost, released or idle leaves the pool and the next request opens a new one.
//!
//! A connection's task reads the same [`Command`]s as the UDP endpoint loop (requests,
//! observations, cancellations), so that [`crate::RequestBuilder`] and
//! [`crate::Observation`] work unchanged over it. It sends its CSM first (§5.3), matches
//! responses by token (§3.3: no Message IDs, no retransmission), fetches the rest of a
//! Block2 response block by block (RFC 7959 §2.4), and Pings a connection that has been
//! silent while it waits for something (§5.4): no Pong in time means the connection is
//! lost and what waited on it fails.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coap_core::reliable::{
    CloseReason, Connection, ConnectionConfig, Event, Framer, Framing, ReliableMessage, SendError,
};
use coap_core::{Block, BuildError, Code, OptionNumber, Scheme, Token};

use super::io::{first_of, wait, write_all, Sleep, Transport, Wake};
use super::tls::{server_name, Tls, TlsClientConfig};
use super::ws::Ws;
use super::{MAX_MESSAGE_SIZE, MAX_SEND};
use crate::command::OutgoingRequest;
use crate::command::{command_channel, Cmd, Command, CommandReceiver, CommandSender, Progress};
use crate::oscore::{Peer, Security};
use crate::response::{ClientError, Response};

/// The runtime's timer (as `crate::Timer`; named here so that this file needs nothing of
/// the UDP client's).
pub(crate) type Timer = fn(Instant) -> Pin<Box<dyn Future<Output = ()> + Send>>;
/// A connection being opened.
pub(crate) type Connecting = Pin<Box<dyn Future<Output = io::Result<Box<dyn Transport>>> + Send>>;
/// How a connection is opened (plain TCP, or TLS on top).
pub(crate) type Connect = fn(SocketAddr) -> Connecting;
/// How a connection's task is started.
pub(crate) type Spawn = fn(Pin<Box<dyn Future<Output = ()> + Send>>) -> io::Result<()>;

/// A connection without exchanges for this long is closed.
const IDLE: Duration = Duration::from_secs(60);
/// A connection silent this long while something waits on it gets a Ping (§5.4); as long
/// again without a Pong (or anything) and it is lost.
const KEEPALIVE: Duration = Duration::from_secs(30);

/// The connections of one client, by scheme and address.
pub(crate) struct Pool {
    connect: Connect,
    spawn: Spawn,
    timer: Timer,
    request_timeout: Duration,
    /// The CAs `coaps+tcp://` servers are verified against.
    tls: Option<TlsClientConfig>,
    conns: Arc<Mutex<HashMap<Origin, CommandSender>>>,
}

/// A connection's origin: scheme, address and (for TLS) the name verified.
type Origin = (Scheme, SocketAddr, String);

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// The pool of a client whose runtime opens TCP connections with `connect`, runs their
    /// tasks with `spawn` and sleeps with `timer` (`super::plain::pool` gives them);
    /// requests without a timeout of their own end after `request_timeout`.
    pub(crate) fn new(
        connect: Connect,
        spawn: Spawn,
        timer: Timer,
        request_timeout: Duration,
    ) -> Pool {
        Pool {
            connect,
            spawn,
            timer,
            request_timeout,
            tls: None,
            conns: Default::default(),
        }
    }

    /// This pool's settings with `tls` for `coaps+tcp://` (and no connections yet).
    pub(crate) fn with_tls(&self, tls: TlsClientConfig) -> Pool {
        Pool {
            connect: self.connect,
            spawn: self.spawn,
            timer: self.timer,
            request_timeout: self.request_timeout,
            tls: Some(tls),
            conns: Default::default(),
        }
    }

    /// The command channel of the connection to `addr` for `scheme`, opened if there is
    /// none (or the last one is gone) within `timeout` (the request's, else the pool's).
    pub(crate) fn commands(
        &self,
        scheme: Scheme,
        addr: SocketAddr,
        host: &str,
        timeout: Option<Duration>,
    ) -> Result<CommandSender, ClientError> {
        // Plain connections by address; TLS ones by the name verified too.
        let name = match scheme {
            Scheme::CoapTcp => String::new(),
            _ => host.to_ascii_lowercase(),
        };
        let key = (scheme, addr, name);
        let mut conns = self.conns.lock().map_err(|_| ClientError::Closed)?;
        if let Some(c) = conns.get(&key).filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let connecting = match scheme {
            Scheme::CoapTcp => (self.connect)(addr),
            Scheme::CoapsTcp | Scheme::CoapsWs => {
                let tls = self.tls.clone().ok_or_else(|| {
                    ClientError::Io(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "{}:// needs the CA certificates to trust the server by",
                            scheme.as_str()
                        ),
                    ))
                })?;
                let name = server_name(host)?;
                let plain = (self.connect)(addr);
                let ws = (scheme == Scheme::CoapsWs).then(|| http_host(host, addr));
                Box::pin(async move {
                    let t = plain.await?;
                    let t: Box<dyn Transport> = Box::new(Tls::client(t, &tls, name)?);
                    match ws {
                        Some(h) => Ok(Box::new(Ws::connect(t, &h).await?) as Box<dyn Transport>),
                        None => Ok(t),
                    }
                })
            }
            Scheme::CoapWs => {
                let plain = (self.connect)(addr);
                let h = http_host(host, addr);
                Box::pin(async move {
                    let t = plain.await?;
                    Ok(Box::new(Ws::connect(t, &h).await?) as Box<dyn Transport>)
                })
            }
            _ => return Err(ClientError::UnsupportedScheme),
        };
        let (tx, rx) = command_channel();
        let task = ClientConn {
            addr,
            key: key.clone(),
            pool: Arc::downgrade(&self.conns),
            tx: tx.clone(),
            timer: self.timer,
            request_timeout: self.request_timeout,
        }
        .run(connecting, timeout.unwrap_or(self.request_timeout), rx);
        (self.spawn)(Box::pin(task))?;
        conns.insert(key, tx.clone());
        Ok(tx)
    }
}

/// The Host header of a WebSocket handshake (RFC 6455 §4.1): the URI's host and port.
fn http_host(host: &str, addr: SocketAddr) -> String {
    if host.contains(':') {
        format!("[{host}]:{}", addr.port())
    } else {
        format!("{host}:{}", addr.port())
    }
}

/// One exchange in progress on a connection.
struct Exchange {
    key: u64,
    sink: async_channel::Sender<Result<Response, ClientError>>,
    progress: Option<async_channel::Sender<Progress>>,
    request: OutgoingRequest,
    observe: bool,
    /// The blocks of a Block2 response so far.
    body: Vec<u8>,
    /// Until when the (next) response may take; none once an observation runs.
    deadline: Option<Instant>,
    /// The answer is not wanted (a passive cancel of an observation, done actively).
    discard: bool,
    /// A Block1 upload in progress: the block sent last.
    upload: Option<Block>,
}

/// What a connection's task knows besides its connection.
struct ClientConn {
    addr: SocketAddr,
    key: Origin,
    pool: std::sync::Weak<Mutex<HashMap<Origin, CommandSender>>>,
    tx: CommandSender,
    timer: Timer,
    request_timeout: Duration,
}

/// Why the connection ended, for what still waited on it.
fn lost(reason: &str) -> ClientError {
    ClientError::Io(io::Error::new(
        io::ErrorKind::ConnectionAborted,
        reason.to_owned(),
    ))
}

impl ClientConn {
    /// Takes this connection out of the pool: the next request opens a new one.
    fn leave_pool(&self) {
        if let Some(pool) = self.pool.upgrade() {
            if let Ok(mut conns) = pool.lock() {
                if conns
                    .get(&self.key)
                    .is_some_and(|c| c.same_channel(&self.tx))
                {
                    conns.remove(&self.key);
                }
            }
        }
    }

    async fn run(self, connect: Connecting, connect_timeout: Duration, inbox: CommandReceiver) {
        // Connecting (and a WebSocket handshake) within the time a request may take.
        let deadline = (self.timer)(Instant::now() + connect_timeout);
        let connected = first_of(connect, deadline).await.unwrap_or_else(|| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no connection within the request timeout",
            ))
        });
        let mut t = match connected {
            Ok(t) => t,
            Err(e) => {
                self.leave_pool();
                inbox.close();
                let reason = e.to_string();
                while let Ok(Command(cmd)) = inbox.try_recv() {
                    let err = || match e.kind() {
                        io::ErrorKind::TimedOut => ClientError::Timeout,
                        kind => ClientError::Io(io::Error::new(kind, reason.clone())),
                    };
                    match cmd {
                        Cmd::Request { reply, .. } => drop(reply.try_send(Err(err()))),
                        Cmd::Observe { sink, .. } => drop(sink.try_send(Err(err()))),
                        _ => {}
                    }
                }
                return;
            }
        };
        let mut state = State {
            conn: Connection::new(
                coap_core::Instant::ZERO,
                Framing::Stream,
                ConnectionConfig {
                    max_message_size: MAX_MESSAGE_SIZE,
                    ..ConnectionConfig::default()
                },
            ),
            start: Instant::now(),
            out: vec![0; MAX_MESSAGE_SIZE as usize],
            exchanges: HashMap::new(),
            peer: Peer {
                addr: self.addr,
                security: Security::Plain,
            },
            request_timeout: self.request_timeout,
            token_seq: 0,
        };
        let mut rx = vec![0u8; MAX_MESSAGE_SIZE as usize];
        let mut framer = Framer::new(&mut rx, MAX_MESSAGE_SIZE as usize);
        let reason = self.drive(&mut *t, &mut state, &mut framer, &inbox).await;
        self.leave_pool();
        inbox.close();
        for (_, ex) in state.exchanges.drain() {
            let _ = ex.sink.try_send(Err(lost(&reason)));
        }
        // Requests that arrived after the end: they fail the same way.
        while let Ok(Command(cmd)) = inbox.try_recv() {
            match cmd {
                Cmd::Request { reply, .. } => drop(reply.try_send(Err(lost(&reason)))),
                Cmd::Observe { sink, .. } => drop(sink.try_send(Err(lost(&reason)))),
                _ => {}
            }
        }
    }

    /// Runs the connection; returns why it ended.
    async fn drive(
        &self,
        t: &mut dyn Transport,
        s: &mut State,
        framer: &mut Framer<'_>,
        inbox: &CommandReceiver,
    ) -> String {
        if let Err(e) = s.flush(t).await {
            return e.to_string();
        }
        let mut heard = Instant::now();
        let mut pinged = false;
        let mut idle_since = Instant::now();
        let mut released = false;
        let mut sleep: Option<(Instant, Sleep)> = None;
        loop {
            let now = Instant::now();
            if !s.exchanges.is_empty() {
                idle_since = now;
            }
            let mut deadline = s
                .exchanges
                .values()
                .filter_map(|e| e.deadline)
                .min()
                .unwrap_or(idle_since + IDLE)
                .min(idle_since + IDLE);
            if !s.exchanges.is_empty() {
                deadline = deadline.min(heard + KEEPALIVE * (1 + u32::from(pinged)));
            }
            if let Some(d) = s.conn.poll_timeout() {
                deadline = deadline.min(s.start + Duration::from_millis(d.as_millis()));
            }
            if sleep.as_ref().map(|(d, _)| *d) != Some(deadline) {
                sleep = Some((deadline, (self.timer)(deadline)));
            }
            let wake = wait(t, framer.space(), inbox, sleep.as_mut().map(|(_, s)| s)).await;
            let now = Instant::now();
            match wake {
                Wake::Read(Ok(0)) => return "the server closed the connection".into(),
                Wake::Read(Err(e)) => return e.to_string(),
                Wake::Read(Ok(n)) => {
                    framer.commit(n);
                    heard = now;
                    pinged = false;
                    loop {
                        let frame = match framer.next_frame() {
                            Ok(Some(f)) => f,
                            Ok(None) => break,
                            Err(e) => {
                                s.conn.frame_error(e);
                                let _ = s.flush(t).await;
                                return format!("protocol error: {e}");
                            }
                        };
                        match s.conn.handle_message(frame) {
                            Some(Event::Response { message, last }) => {
                                if let Err(e) = s.response(t, &message, last).await {
                                    return e.to_string();
                                }
                            }
                            Some(Event::Closed(reason)) => {
                                let _ = s.flush(t).await;
                                return closed(&reason);
                            }
                            // Release: no new requests here (§5.5); what runs finishes,
                            // then the connection closes.
                            Some(Event::Released { .. }) => {
                                self.leave_pool();
                                released = true;
                            }
                            // Either side may send requests (RFC 8323 §3.3); a client
                            // that serves nothing answers 5.01 Not Implemented.
                            Some(Event::Request(req)) => {
                                let token = req.token();
                                if let Ok(n) = s.conn.send_response(
                                    &mut s.out,
                                    Code::NOT_IMPLEMENTED,
                                    token,
                                    |_| Ok(()),
                                ) {
                                    if let Err(e) = write_all(t, &s.out[..n]).await {
                                        return e.to_string();
                                    }
                                }
                            }
                            Some(Event::PeerSettings(_) | Event::Pong { .. }) | None => {}
                        }
                    }
                }
                Wake::Command(None) => {
                    // Every client handle is gone (the pool's sender too).
                    return "the client is closed".into();
                }
                Wake::Command(Some(Command(cmd))) => {
                    if let Err(e) = s.command(t, cmd).await {
                        return e.to_string();
                    }
                }
                Wake::Deadline => {
                    s.expire(now);
                    if let Some(Event::Closed(reason)) = s.conn.handle_timeout(s.core_now()) {
                        let _ = s.flush(t).await;
                        return closed(&reason);
                    }
                    if !s.exchanges.is_empty() && now >= heard + KEEPALIVE {
                        if pinged {
                            return "no answer to a Ping: connection lost".into();
                        }
                        let _ = s.conn.ping(&[], false);
                        pinged = true;
                    }
                    if s.exchanges.is_empty() && now >= idle_since + IDLE {
                        return "idle".into();
                    }
                }
            }
            if let Err(e) = s.flush(t).await {
                return e.to_string();
            }
            if s.conn.is_closed() {
                return "connection closed".into();
            }
            if released && s.exchanges.is_empty() {
                return "the server released the connection".into();
            }
        }
    }
}

/// A closed connection's reason as the requests on it report it.
fn closed(reason: &CloseReason<'_>) -> String {
    match reason {
        CloseReason::PeerAborted { diagnostic, .. } => format!(
            "the server aborted the connection: {}",
            String::from_utf8_lossy(diagnostic)
        ),
        CloseReason::ProtocolError(e) => format!("protocol error: {e}"),
        CloseReason::ConnectionLost => "connection lost".into(),
        CloseReason::LocalAbort => "connection aborted".into(),
    }
}

/// A connection's exchanges and buffers.
struct State {
    conn: Connection,
    start: Instant,
    out: Vec<u8>,
    exchanges: HashMap<Token, Exchange>,
    peer: Peer,
    request_timeout: Duration,
    token_seq: u32,
}

impl State {
    fn core_now(&self) -> coap_core::Instant {
        coap_core::Instant::from_millis(
            u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX),
        )
    }

    async fn flush(&mut self, t: &mut dyn Transport) -> io::Result<()> {
        while let Ok(Some(n)) = self.conn.poll_transmit(&mut self.out) {
            write_all(t, &self.out[..n]).await?;
        }
        Ok(())
    }

    /// A token no exchange on this connection uses (random, RFC 7252 §5.3.1).
    fn fresh_token(&mut self) -> Token {
        loop {
            // Without an OS RNG a counter still gives distinct tokens.
            self.token_seq = self.token_seq.wrapping_add(1);
            let v = getrandom::u32().unwrap_or(self.token_seq);
            if let Some(t) = Token::new(&v.to_be_bytes()) {
                if !self.exchanges.contains_key(&t) {
                    return t;
                }
            }
        }
    }

    /// Writes `request` (with `block2`, the next block asked for) under `token`.
    async fn send(
        &mut self,
        t: &mut dyn Transport,
        token: Token,
        request: &OutgoingRequest,
        block2: Option<Block>,
        block1: Option<Block>,
    ) -> Result<Result<(), ClientError>, io::Error> {
        let limit = (self.conn.peer_settings().max_message_size as usize).min(MAX_SEND);
        if self.out.len() < limit {
            // Grown once the peer's CSM allows more than the default.
            self.out.resize(limit, 0);
        }
        let sent = self.conn.send_request(
            &mut self.out[..limit],
            request.code,
            token.as_slice(),
            |b| {
                request.write_options(b.builder())?;
                if let Some(blk) = block2 {
                    b.builder()
                        .option_uint(OptionNumber::BLOCK2, blk.encode())?;
                }
                let body = &request.payload;
                match block1 {
                    // RFC 7959 §2.5: this block of the upload, Size1 with the first.
                    Some(blk) => {
                        b.builder()
                            .option_uint(OptionNumber::BLOCK1, blk.encode())?;
                        if blk.num == 0 {
                            let total = u32::try_from(body.len()).unwrap_or(u32::MAX);
                            b.builder().option_uint(OptionNumber::SIZE1, total)?;
                        }
                        let end = (blk.offset() + blk.size()).min(body.len());
                        b.builder()
                            .payload(body.get(blk.offset()..end).unwrap_or(&[]))?;
                    }
                    None => {
                        b.builder().payload(body)?;
                    }
                }
                Ok(())
            },
        );
        match sent {
            Ok(n) => {
                write_all(t, &self.out[..n]).await?;
                Ok(Ok(()))
            }
            Err(SendError::TooManyExchanges) => Ok(Err(ClientError::Busy)),
            Err(SendError::Build(e)) => Ok(Err(ClientError::Build(e))),
            Err(SendError::TooLarge { .. }) => {
                Ok(Err(ClientError::Build(BuildError::BufferTooSmall)))
            }
            Err(e) => Ok(Err(lost(&e.to_string()))),
        }
    }

    async fn command(&mut self, t: &mut dyn Transport, cmd: Cmd) -> io::Result<()> {
        let (key, request, sink, progress, observe) = match cmd {
            Cmd::Request {
                key,
                request,
                reply,
                progress,
                ..
            } => (key, request, reply, progress, false),
            Cmd::Observe {
                key, request, sink, ..
            } => (key, request, sink, None, true),
            Cmd::Cancel { key } => return self.cancel(t, key, true).await,
            Cmd::CancelObserve { key } => return self.cancel(t, key, false).await,
            // Group requests, notifications ...: nothing a client connection does (their
            // reply channels drop: `ClientError::Closed`).
            _ => return Ok(()),
        };
        let token = request.token.unwrap_or_else(|| self.fresh_token());
        let mut upload = None;
        let mut sent = self.send(t, token, &request, None, None).await?;
        if matches!(sent, Err(ClientError::Build(BuildError::BufferTooSmall)))
            && request.payload.len() > 1024
        {
            // Larger than a message the peer takes: a Block1 upload (RFC 7959 §2.5), in
            // 1024-byte blocks unless the server asks for smaller ones.
            let first = Block::new(0, true, 6);
            upload = Some(first);
            sent = self.send(t, token, &request, None, upload).await?;
        }
        if let Err(e) = sent {
            let _ = sink.try_send(Err(e));
            return Ok(());
        }
        let timeout = request.timeout.unwrap_or(self.request_timeout);
        self.exchanges.insert(
            token,
            Exchange {
                key,
                sink,
                progress,
                request,
                observe,
                body: Vec::new(),
                deadline: Some(Instant::now() + timeout),
                discard: false,
                upload,
            },
        );
        Ok(())
    }

    /// Ends the exchange of `key`. An observation is deregistered actively (a GET with
    /// Observe=1, RFC 7641 §3.6) even when dropped: over a connection, notifications the
    /// client ignores would keep coming (there is no RST to stop them, RFC 8323 §3.4).
    async fn cancel(&mut self, t: &mut dyn Transport, key: u64, discard: bool) -> io::Result<()> {
        let Some((&token, ex)) = self.exchanges.iter_mut().find(|(_, e)| e.key == key) else {
            return Ok(());
        };
        if !ex.observe {
            self.exchanges.remove(&token);
            self.conn.forget(token.as_slice());
            return Ok(());
        }
        ex.discard = discard;
        ex.deadline = Some(Instant::now() + self.request_timeout);
        let mut request = ex.request.clone();
        request.options.retain(|(n, _)| *n != OptionNumber::OBSERVE);
        request.options.push((OptionNumber::OBSERVE, vec![1]));
        if self.send(t, token, &request, None, None).await?.is_err() {
            self.exchanges.remove(&token);
            self.conn.forget(token.as_slice());
        }
        Ok(())
    }

    /// Requests past their deadline fail with [`ClientError::Timeout`].
    fn expire(&mut self, now: Instant) {
        let late: Vec<Token> = self
            .exchanges
            .iter()
            .filter(|(_, e)| e.deadline.is_some_and(|d| now >= d))
            .map(|(t, _)| *t)
            .collect();
        for token in late {
            if let Some(ex) = self.exchanges.remove(&token) {
                let _ = ex.sink.try_send(Err(ClientError::Timeout));
            }
            self.conn.forget(token.as_slice());
        }
    }

    async fn response(
        &mut self,
        t: &mut dyn Transport,
        message: &ReliableMessage<'_>,
        last: bool,
    ) -> io::Result<()> {
        let Some(token) = Token::new(message.token()) else {
            return Ok(());
        };
        let Some(mut ex) = self.exchanges.remove(&token) else {
            return Ok(());
        };
        let view = message.as_udp_view();
        if let Some(sent) = ex.upload.take() {
            if message.code() == Code::CONTINUE && sent.more {
                // RFC 7959 §2.3: the next block, in the size the server asked for.
                let asked = Block::of(&view, OptionNumber::BLOCK1).unwrap_or(sent);
                let szx = asked.szx.min(sent.szx);
                let num = (sent.offset() + sent.size()) >> (szx + 4);
                let probe = Block::new(num as u32, false, szx);
                let len = ex.request.payload.len();
                let next = Block::new(probe.num, probe.offset() + probe.size() < len, szx);
                let token = self.fresh_token();
                match self.send(t, token, &ex.request, None, Some(next)).await? {
                    Ok(()) => {
                        ex.upload = Some(next);
                        ex.deadline = Some(Instant::now() + self.request_timeout);
                        self.exchanges.insert(token, ex);
                    }
                    Err(e) => drop(ex.sink.try_send(Err(e))),
                }
                return Ok(());
            }
            // Any other answer is the upload's outcome.
            ex.request.payload.clear();
        }
        let block2 = Block::of(&view, OptionNumber::BLOCK2);
        let success = message.code().kind() == coap_core::code::CodeClass::Success;
        if !ex.observe && success {
            if let Some(b) = block2.filter(|b| b.more) {
                // RFC 7959 §2.4: ask for the next block, under a new token.
                ex.body.extend_from_slice(message.payload());
                if let Some(p) = &ex.progress {
                    let total = view.uint_option(OptionNumber::SIZE2).map(|s| s as usize);
                    let _ = p.try_send(Progress {
                        done: ex.body.len(),
                        total,
                    });
                }
                let next = Block::new(b.num + 1, false, b.szx);
                let mut request = ex.request.clone();
                request.payload.clear();
                let token = self.fresh_token();
                match self.send(t, token, &request, Some(next), None).await? {
                    Ok(()) => {
                        ex.deadline = Some(Instant::now() + self.request_timeout);
                        self.exchanges.insert(token, ex);
                    }
                    Err(e) => drop(ex.sink.try_send(Err(e))),
                }
                return Ok(());
            }
        }
        let mut response = Response::from_message(self.peer, &view);
        if !ex.body.is_empty() {
            ex.body.extend_from_slice(message.payload());
            response.payload = std::mem::take(&mut ex.body);
        }
        if !ex.discard {
            let _ = ex.sink.try_send(Ok(response));
        }
        if !last && ex.observe {
            // A notification: the observation goes on, without a deadline.
            ex.deadline = None;
            self.exchanges.insert(token, ex);
        } else if !last {
            // An Observe in the answer to a plain request: the request is answered.
            self.conn.forget(token.as_slice());
        }
        Ok(())
    }
}
