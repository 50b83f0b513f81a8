//! The `coap+tcp` server (RFC 8323 §3): a listener, a bounded number of connections,
//! each served in a task of its own by the handler a UDP server serves.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use coap_core::reliable::{
    response_handle, response_handle_id, Connection, ConnectionConfig, Deferred, Event, Framer,
    Framing, Served, ServerExchange,
};
use coap_core::{Handler, Token};

use super::io::{first_of, wait, write_all, Sleep, Transport, Wake};
use super::plain::Plain;
use super::tls::{Tls, TlsServerConfig};
use super::ws::Ws;
use super::{MAX_MESSAGE_SIZE, SERVER_SEND};
use crate::command::{command_channel, Cmd, CommandReceiver, CommandSender};
use crate::oscore::{Peer, Security};
use crate::reply::{Reply, RespondError};
use crate::responder::{Notifier, Responder};
use crate::runtime::{AsyncTcpListener, Runtime};

/// Limits of a [`TcpServer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpConfig {
    /// Connections served at once; a connection beyond them is closed at once.
    pub max_connections: usize,
    /// A connection without traffic, observations or deferred answers for this long is
    /// released (RFC 8323 §5.5) and closed.
    pub idle_timeout: Duration,
    /// The Max-Message-Size announced in the CSM (RFC 8323 §5.3.1), also the receive
    /// buffer of each connection.
    pub max_message_size: u32,
    /// How long a new connection may take to send its CSM (§5.3).
    pub csm_timeout: Duration,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_connections: 256,
            idle_timeout: Duration::from_secs(120),
            max_message_size: MAX_MESSAGE_SIZE,
            csm_timeout: Duration::from_secs(10),
        }
    }
}

/// A CoAP over TCP server (`coap+tcp`, RFC 8323): bind, then [`TcpServer::serve`] a
/// handler, the same kind a UDP [`crate::Server`] serves.
#[derive(Debug)]
pub struct TcpServer<R: Runtime> {
    listener: R::TcpListener,
    local: SocketAddr,
    config: TcpConfig,
    commands: CommandSender,
    inbox: CommandReceiver,
    /// What runs on the accepted streams.
    kind: Kind,
    runtime: PhantomData<fn() -> R>,
}

/// What the accept loop tells a connection's task.
enum ConnCmd {
    /// Notify this connection's observers of `key` (RFC 7641 §4.2).
    Notify { key: u32, reply: Arc<Reply> },
    /// Answer the deferred request with this handle number.
    Respond {
        id: u32,
        reply: Reply,
        done: async_channel::Sender<Result<(), RespondError>>,
    },
}

/// What the connections share: the handler, and which connection holds which deferred
/// request.
struct Shared {
    handler: Mutex<Box<dyn Handler<Peer> + Send>>,
    deferred: Mutex<HashMap<u32, u64>>,
    next_deferred: std::sync::atomic::AtomicU32,
    config: TcpConfig,
    timer: crate::client::Timer,
}

/// A connection as the accept loop knows it.
struct Conn {
    tx: async_channel::Sender<ConnCmd>,
    /// The keys its observers observe (one entry per observer).
    observed: Arc<Mutex<Vec<u32>>>,
}

impl<R: Runtime> TcpServer<R> {
    /// Listens on `addr` with the default [`TcpConfig`].
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Self::bind_with(addr, TcpConfig::default()).await
    }

    /// Listens on `addr` with `config`.
    pub async fn bind_with(addr: SocketAddr, config: TcpConfig) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let listener = R::listen_tcp(listener)?;
        let (commands, inbox) = command_channel();
        Ok(TcpServer {
            listener,
            local,
            config,
            commands,
            inbox,
            kind: Kind::Tcp,
            runtime: PhantomData,
        })
    }

    /// Listens on `addr` for CoAP over TLS (`coaps+tcp`, RFC 8323 §8.2: TLS 1.3 or 1.2,
    /// ALPN "coap") with the certificate of `tls`.
    pub async fn bind_tls(
        addr: SocketAddr,
        config: TcpConfig,
        tls: TlsServerConfig,
    ) -> io::Result<Self> {
        let mut server = Self::bind_with(addr, config).await?;
        server.kind = Kind::Tls(tls);
        Ok(server)
    }

    /// Listens on `addr` for CoAP over WebSockets (`coap+ws`, RFC 8323 §4: subprotocol
    /// "coap" at `/.well-known/coap`).
    pub async fn bind_ws(addr: SocketAddr, config: TcpConfig) -> io::Result<Self> {
        let mut server = Self::bind_with(addr, config).await?;
        server.kind = Kind::Ws;
        Ok(server)
    }

    /// Listens on `addr` for CoAP over secure WebSockets (`coaps+ws`, RFC 8323 §4, §9).
    pub async fn bind_wss(
        addr: SocketAddr,
        config: TcpConfig,
        tls: TlsServerConfig,
    ) -> io::Result<Self> {
        let mut server = Self::bind_with(addr, config).await?;
        server.kind = Kind::Wss(tls);
        Ok(server)
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Notifies the observers of a resource on every connection (RFC 7641 §4.2; the
    /// count returned is of the observers notified).
    pub fn notifier(&self) -> Notifier {
        Notifier::new(self.commands.clone())
    }

    /// Answers deferred requests (the handler returned `Outcome::Defer`).
    pub fn responder(&self) -> Responder {
        Responder::new(self.commands.clone())
    }

    /// Serves `handler` until the listener fails.
    pub async fn serve<H: Handler<Peer> + Send + 'static>(self, handler: H) -> io::Result<()> {
        self.serve_with_shutdown(handler, std::future::pending())
            .await
    }

    /// Serves `handler` until `shutdown` completes; the connections then close.
    pub async fn serve_with_shutdown<H: Handler<Peer> + Send + 'static>(
        self,
        handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let shared = Arc::new(Shared {
            handler: Mutex::new(Box::new(handler)),
            deferred: Mutex::new(HashMap::new()),
            next_deferred: Default::default(),
            config: self.config,
            timer: crate::runtime::timer::<R>,
        });
        let mut conns: HashMap<u64, Conn> = HashMap::new();
        let (ended_tx, ended) = async_channel::unbounded::<u64>();
        let mut next_id = 0u64;
        let mut shutdown = pin!(shutdown);
        loop {
            let wake = {
                let mut cmd = pin!(self.inbox.recv());
                let mut end = pin!(ended.recv());
                std::future::poll_fn(|cx| {
                    if shutdown.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Accept::Shutdown);
                    }
                    if let Poll::Ready(Ok(id)) = end.as_mut().poll(cx) {
                        return Poll::Ready(Accept::Ended(id));
                    }
                    if let Poll::Ready(Ok(c)) = cmd.as_mut().poll(cx) {
                        return Poll::Ready(Accept::Command(c.0));
                    }
                    match self.listener.poll_accept(cx) {
                        Poll::Ready(r) => Poll::Ready(Accept::Stream(r)),
                        Poll::Pending => Poll::Pending,
                    }
                })
                .await
            };
            match wake {
                Accept::Shutdown => return Ok(()),
                Accept::Ended(id) => {
                    conns.remove(&id);
                }
                Accept::Command(cmd) => dispatch(cmd, &conns, &shared),
                Accept::Stream(Err(e)) if transient(&e) => continue,
                Accept::Stream(Err(e)) => return Err(e),
                Accept::Stream(Ok((stream, peer))) => {
                    if conns.len() >= self.config.max_connections {
                        // Over the bound: closed before anything is read or sent.
                        drop(stream);
                        continue;
                    }
                    let plain: Box<dyn Transport> = Box::new(Plain(stream));
                    let transport: Box<dyn Transport> = match &self.kind {
                        Kind::Tcp | Kind::Ws => plain,
                        Kind::Tls(tls) | Kind::Wss(tls) => match Tls::server(plain, tls) {
                            Ok(t) => Box::new(t),
                            Err(_) => continue,
                        },
                    };
                    let websocket = matches!(self.kind, Kind::Ws | Kind::Wss(_));
                    let (tx, rx) = async_channel::bounded(64);
                    let observed = Arc::new(Mutex::new(Vec::new()));
                    let id = next_id;
                    next_id += 1;
                    conns.insert(
                        id,
                        Conn {
                            tx,
                            observed: observed.clone(),
                        },
                    );
                    let task = serve_connection(
                        transport,
                        websocket,
                        peer,
                        id,
                        shared.clone(),
                        rx,
                        observed,
                        ended_tx.clone(),
                    );
                    if R::spawn(task).is_err() {
                        conns.remove(&id);
                    }
                }
            }
        }
    }
}

/// What a listener's connections carry (RFC 8323 §8: the four URI schemes).
#[derive(Clone, Debug)]
enum Kind {
    /// `coap+tcp`.
    Tcp,
    /// `coaps+tcp`.
    Tls(TlsServerConfig),
    /// `coap+ws`.
    Ws,
    /// `coaps+ws`.
    Wss(TlsServerConfig),
}

/// What woke the accept loop.
enum Accept<S> {
    Shutdown,
    Ended(u64),
    Command(Cmd),
    Stream(io::Result<(S, SocketAddr)>),
}

/// Errors of one accept that do not end the listener (the peer gave up, no file
/// descriptors for a moment).
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    ) || e.raw_os_error() == Some(24)
}

/// A command from a [`Notifier`] or [`Responder`] to the connections it concerns.
fn dispatch(cmd: Cmd, conns: &HashMap<u64, Conn>, shared: &Shared) {
    match cmd {
        Cmd::Notify {
            resource,
            reply,
            done,
        } => {
            let reply = Arc::new(reply);
            let mut count = 0;
            for c in conns.values() {
                let n = c
                    .observed
                    .lock()
                    .map_or(0, |o| o.iter().filter(|k| **k == resource).count());
                if n > 0
                    && c.tx
                        .try_send(ConnCmd::Notify {
                            key: resource,
                            reply: reply.clone(),
                        })
                        .is_ok()
                {
                    count += n;
                }
            }
            let _ = done.try_send(count);
        }
        Cmd::Respond {
            handle,
            reply,
            done,
        } => {
            let id = response_handle_id(handle);
            let conn = shared
                .deferred
                .lock()
                .ok()
                .and_then(|d| d.get(&id).copied())
                .and_then(|c| conns.get(&c));
            let sent = conn.is_some_and(|c| {
                c.tx.try_send(ConnCmd::Respond {
                    id,
                    reply,
                    done: done.clone(),
                })
                .is_ok()
            });
            if !sent {
                let _ = done.try_send(Err(RespondError::UnknownHandle));
            }
        }
        // This endpoint has no client role: dropping the request's reply channel fails it
        // with `ClientError::Closed`.
        _ => {}
    }
}

/// The milliseconds since `start`, as the core counts time.
fn core_now(start: std::time::Instant) -> coap_core::Instant {
    coap_core::Instant::from_millis(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX))
}

/// One connection's state in its task.
struct ServerConn {
    /// The accept loop's number for this connection.
    id: u64,
    conn: Connection,
    out: Vec<u8>,
    observe_seq: u32,
    /// Observers on this connection: token and key.
    observers: Vec<(Token, u32)>,
    observed: Arc<Mutex<Vec<u32>>>,
    /// Deferred requests of this connection, by handle number.
    deferred: HashMap<u32, Deferred>,
    /// The peer sent Release (§5.5): close once nothing is in progress.
    released: bool,
}

impl ServerConn {
    /// The answer buffer, no larger than the peer accepts (RFC 8323 §5.3.1).
    fn exchange(&mut self) -> ServerExchange<'_, 16> {
        let limit = (self.conn.peer_settings().max_message_size as usize).min(SERVER_SEND);
        if self.out.len() < limit {
            // Grown once the peer's CSM allows more than the default.
            self.out.resize(limit, 0);
        }
        ServerExchange {
            conn: &mut self.conn,
            out: &mut self.out[..limit],
            observe_seq: &mut self.observe_seq,
        }
    }

    fn set_observer(&mut self, token: Token, key: Option<u32>) {
        self.observers.retain(|(t, _)| *t != token);
        if let Some(k) = key {
            self.observers.push((token, k));
        }
        self.publish();
    }

    fn publish(&self) {
        if let Ok(mut o) = self.observed.lock() {
            *o = self.observers.iter().map(|(_, k)| *k).collect();
        }
    }
}

/// Serves one connection until it closes.
#[allow(clippy::too_many_arguments)]
async fn serve_connection(
    mut t: Box<dyn Transport>,
    websocket: bool,
    peer: SocketAddr,
    id: u64,
    shared: Arc<Shared>,
    commands: async_channel::Receiver<ConnCmd>,
    observed: Arc<Mutex<Vec<u32>>>,
    ended: async_channel::Sender<u64>,
) {
    let config = shared.config;
    let start = std::time::Instant::now();
    if websocket {
        // The WebSocket handshake (§4.1), within the time a CSM may take.
        let deadline = (shared.timer)(start + config.csm_timeout);
        match first_of(Ws::accept(t), deadline).await {
            Some(Ok(ws)) => t = Box::new(ws),
            _ => {
                let _ = ended.try_send(id);
                return;
            }
        }
    }
    let mms = config.max_message_size;
    let conn = Connection::new(
        core_now(start),
        Framing::Stream,
        ConnectionConfig {
            max_message_size: mms,
            block_wise_transfer: false,
            csm_timeout_ms: u64::try_from(config.csm_timeout.as_millis()).unwrap_or(u64::MAX),
        },
    );
    let mut s = ServerConn {
        id,
        conn,
        out: vec![0; MAX_MESSAGE_SIZE as usize],
        observe_seq: 0,
        observers: Vec::new(),
        observed,
        deferred: HashMap::new(),
        released: false,
    };
    let mut rx = vec![0u8; mms as usize];
    let mut framer = Framer::new(&mut rx, mms as usize);
    let from = Peer {
        addr: peer,
        security: Security::Plain,
    };
    let mut last_activity = std::time::Instant::now();
    let _ = run(
        &mut *t,
        &mut s,
        &mut framer,
        &shared,
        &commands,
        from,
        start,
        &mut last_activity,
    )
    .await;
    // §7: the connection's observers go with it; its deferred requests cannot be answered.
    if let Ok(mut d) = shared.deferred.lock() {
        d.retain(|_, c| *c != id);
    }
    s.observers.clear();
    s.publish();
    let _ = ended.try_send(id);
}

#[allow(clippy::too_many_arguments)]
async fn run(
    t: &mut dyn Transport,
    s: &mut ServerConn,
    framer: &mut Framer<'_>,
    shared: &Shared,
    commands: &async_channel::Receiver<ConnCmd>,
    from: Peer,
    start: std::time::Instant,
    last_activity: &mut std::time::Instant,
) -> io::Result<()> {
    let config = shared.config;
    flush(t, s).await?;
    let mut sleep: Option<(std::time::Instant, Sleep)> = None;
    loop {
        // The CSM deadline (core), and the idle timeout when nothing is in progress.
        let csm = s
            .conn
            .poll_timeout()
            .map(|d| start + Duration::from_millis(d.as_millis()));
        let idle = (s.observers.is_empty() && s.deferred.is_empty())
            .then(|| *last_activity + config.idle_timeout);
        let deadline = match (csm, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if sleep.as_ref().map(|(d, _)| Some(*d)) != Some(deadline) {
            sleep = deadline.map(|d| (d, (shared.timer)(d)));
        }
        let wake = wait(t, framer.space(), commands, sleep.as_mut().map(|(_, s)| s)).await;
        match wake {
            Wake::Read(Ok(0)) | Wake::Read(Err(_)) => {
                s.conn.connection_lost();
                return Ok(());
            }
            Wake::Read(Ok(n)) => {
                framer.commit(n);
                *last_activity = std::time::Instant::now();
                loop {
                    let frame = match framer.next_frame() {
                        Ok(Some(f)) => f,
                        Ok(None) => break,
                        Err(e) => {
                            s.conn.frame_error(e);
                            break;
                        }
                    };
                    handle_frame(t, s, frame, shared, from, start).await?;
                    if s.conn.is_closed() {
                        break;
                    }
                }
            }
            Wake::Command(None) => {
                // The server stopped: ask the peer to close (§5.5), then close.
                s.conn.release(None, None);
                flush(t, s).await?;
                return Ok(());
            }
            Wake::Command(Some(ConnCmd::Notify { key, reply })) => {
                *last_activity = std::time::Instant::now();
                let tokens: Vec<Token> = s
                    .observers
                    .iter()
                    .filter(|(_, k)| *k == key)
                    .map(|(t, _)| *t)
                    .collect();
                for token in tokens {
                    match s.exchange().notify(token.as_slice(), |w| reply.write(w)) {
                        Ok((n, goes_on)) => {
                            write_all(t, &s.out[..n]).await?;
                            if !goes_on {
                                s.set_observer(token, None);
                            }
                        }
                        // Not sendable (too large for the peer): the observation ends.
                        Err(_) => s.set_observer(token, None),
                    }
                }
            }
            Wake::Command(Some(ConnCmd::Respond { id, reply, done })) => {
                let Some(d) = s.deferred.remove(&id) else {
                    let _ = done.try_send(Err(RespondError::UnknownHandle));
                    continue;
                };
                if let Ok(mut m) = shared.deferred.lock() {
                    m.remove(&id);
                }
                match s.exchange().respond(&d, |w| reply.write(w)) {
                    Ok(served) => {
                        let token = Token::new(d.token()).unwrap_or_default();
                        answered(t, s, token, served).await?;
                        let _ = done.try_send(Ok(()));
                    }
                    Err(_) => {
                        let _ = done.try_send(Err(RespondError::Closed));
                    }
                }
            }
            Wake::Deadline => {
                let now = std::time::Instant::now();
                s.conn.handle_timeout(core_now(start));
                if idle.is_some_and(|i| now >= i) {
                    s.conn.release(None, None);
                    flush(t, s).await?;
                    return Ok(());
                }
            }
        }
        flush(t, s).await?;
        if s.conn.is_closed() || s.released && s.conn.is_idle() && s.deferred.is_empty() {
            return Ok(());
        }
    }
}

/// One message from the peer.
async fn handle_frame(
    t: &mut dyn Transport,
    s: &mut ServerConn,
    frame: &[u8],
    shared: &Shared,
    from: Peer,
    start: std::time::Instant,
) -> io::Result<()> {
    let Some(event) = s.conn.handle_message(frame) else {
        return Ok(());
    };
    let msg = match event {
        Event::Request(msg) => msg,
        // §5.5: the peer wants the connection closed; the answers it waits for still go.
        Event::Released { .. } => {
            s.released = true;
            return Ok(());
        }
        // CSM, Pong, Abort (the connection is closed), responses (no client role).
        _ => return Ok(()),
    };
    let Some(token) = Token::new(msg.token()) else {
        return Ok(());
    };
    let n = shared
        .next_deferred
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let handle = response_handle(n);
    let served = {
        let Ok(mut handler) = shared.handler.lock() else {
            return Err(io::Error::other("handler poisoned"));
        };
        s.exchange()
            .serve(&msg, &mut **handler, from, core_now(start), handle)
    };
    match served {
        Ok(Served::Deferred(d)) => {
            s.deferred.insert(n, d);
            if let Ok(mut m) = shared.deferred.lock() {
                m.insert(n, s.id);
            }
            Ok(())
        }
        Ok(served) => answered(t, s, token, served).await,
        Err(_) => Ok(()),
    }
}

/// Sends an answer and keeps the observer table in step with it.
async fn answered(
    t: &mut dyn Transport,
    s: &mut ServerConn,
    token: Token,
    served: Served,
) -> io::Result<()> {
    match served {
        Served::Response { len, observing } => {
            s.set_observer(token, observing);
            write_all(t, &s.out[..len]).await
        }
        Served::Ignored | Served::Deferred(_) => Ok(()),
    }
}

/// Everything the connection layer has to send (CSM, Pongs, Release, Abort).
async fn flush(t: &mut dyn Transport, s: &mut ServerConn) -> io::Result<()> {
    while let Ok(Some(n)) = s.conn.poll_transmit(&mut s.out) {
        write_all(t, &s.out[..n]).await?;
    }
    Ok(())
}
