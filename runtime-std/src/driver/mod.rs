//! The adapter side: the core endpoint with its table of waiting requests, fed by an
//! adapter's loop through [`Driver::step`].

mod incoming;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::Duration;

use async_channel::Sender;
use coap_core::{
    Config, Endpoint, Event, FailReason, Handler, Instant, OptionNumber, RequestId, Unreachable,
};

mod admission;
mod dtls;
mod path_mtu;
mod queue;

use crate::command::{Cmd, Command, CommandReceiver, Progress};
use crate::dtls::{client_serial, Dtls};
use crate::edhoc::server::StdResponder;
use crate::edhoc::session::{refusal, ClientSessions, Refusal};
use crate::oscore::{plain, Oscore, Peer, Security};
use crate::reply::RespondError;
use crate::response::{ClientError, Response};
use crate::storage::GrowableDedup;
use coap_core::oscore::Secured;
use queue::{Admission, Queued};

/// Message slots of a std endpoint: concurrent requests, deferred and cached responses.
pub const SLOTS: usize = 256;
/// Largest message a std endpoint sends or holds (RFC 7252 §4.6).
pub const MESSAGE_SIZE: usize = coap_core::endpoint::DEFAULT_MESSAGE_SIZE;
/// Observers (RFC 7641) a std endpoint can hold.
pub const OBSERVERS: usize = 256;
/// Size of the receive buffer: any UDP datagram, so that none is truncated.
pub const MAX_DATAGRAM: usize = 65_535;
/// Largest datagram a std endpoint sends: a message plus what OSCORE adds to it (the OSCORE
/// option, the outer code and the 8-byte tag, RFC 8613 §4, §6).
/// An EDHOC + OSCORE combined request (RFC 9668) carries message_3 besides.
pub const TRANSMIT_SIZE: usize = MESSAGE_SIZE + 64 + coap_core::edhoc::transport::MAX_MESSAGE_LEN;

/// The core endpoint as the std adapters size it. Its duplicate detection is a growable
/// store, so the endpoint's fixed-size parameter for it is 0.
pub type StdEndpoint = Endpoint<Peer, SLOTS, MESSAGE_SIZE, 0, OBSERVERS, GrowableDedup<Peer>>;

/// Whether the loop serves requests, which decides what a closed command channel means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Only client handles use the endpoint: stop when the last one is dropped.
    Client,
    /// A server: keep serving when no handle is left.
    Server,
}

/// What an adapter's loop awaited.
#[derive(Debug)]
pub enum Input {
    /// `recv_from` completed: the datagram is at the start of the loop's buffer.
    Datagram(io::Result<(usize, SocketAddr)>),
    /// A datagram arrived on a group (multicast) socket (RFC 7252 §8): at the start of the
    /// loop's buffer.
    GroupDatagram(io::Result<(usize, SocketAddr)>),
    /// The deadline from [`Driver::deadline`] passed.
    Timeout,
    /// A command, or `None` when the channel closed.
    Command(Option<Command>),
    /// The shutdown future completed.
    Shutdown,
    /// The socket became readable or writable (what [`crate::pump`] asked to wait for):
    /// pump again.
    Ready(io::Result<()>),
}

type Waiter = (u64, Sender<Result<Response, ClientError>>);

/// A group request's sink and the bodies of members still sending blocks.
struct GroupCollection {
    sink: Sender<Result<Response, ClientError>>,
    partial: HashMap<SocketAddr, Vec<u8>>,
}

/// The core endpoint plus what a std adapter needs around it: the clock origin, the
/// handler, the transmit buffer, and the requests waiting for their outcome.
pub struct Driver<H> {
    endpoint: Box<StdEndpoint>,
    handler: H,
    role: Role,
    start: std::time::Instant,
    out: Vec<u8>,
    /// Outcome channels of the requests in the core, by the core's id.
    waiting: HashMap<RequestId, Waiter>,
    /// The core's id of each request, by the key its `send` future knows.
    ids: HashMap<u64, RequestId>,
    /// Blocks received so far of Block2 transfers (RFC 7959), by request.
    partial: HashMap<RequestId, Vec<u8>>,
    /// Observations (RFC 7641) and where their notifications go.
    observations: HashMap<RequestId, Sender<Result<Response, ClientError>>>,
    /// A notification larger than a message, waiting for its remaining blocks.
    pending_notification: HashMap<RequestId, Response>,
    /// Bodies of Block1 uploads in progress (RFC 7959 §2.5), by request.
    uploads: HashMap<RequestId, Vec<u8>>,
    /// Where to report the progress of block-wise transfers, by request.
    progress: HashMap<RequestId, Sender<Progress>>,
    /// Group requests (RFC 7252 §8): where each member's response goes, and the Block2
    /// bodies being collected per member (RFC 7959 §2.8).
    groups: HashMap<RequestId, GroupCollection>,
    commands_open: bool,
    /// OSCORE (RFC 8613), when the endpoint has security contexts.
    oscore: Option<Oscore>,
    /// Datagrams to send as they are (OSCORE error replies, RFC 8613 §8.2).
    raw: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Where OSCORE protects and unprotects.
    scratch: Vec<u8>,
    /// CoAP over DTLS (RFC 7252 §9), when the endpoint has a coaps socket.
    dtls: Option<Box<Dtls>>,
    /// The EDHOC Responder (RFC 9528) of a server with `edhoc-oscore` credentials.
    edhoc: Option<Box<StdResponder>>,
    /// The client's EDHOC sessions: combined requests (RFC 9668) and refusals.
    combining: ClientSessions,
    /// The address an ICMP error is being handled for (what `FailReason::Unreachable`
    /// events name).
    unreachable: Option<SocketAddr>,
    /// Why the DTLS session whose requests are being failed ended (what
    /// `FailReason::Unreachable` events mean while `dtls_session_closed` runs).
    closed_session: Option<String>,
    /// Requests sent while every slot was in use, in order.
    admission: Admission,
}

impl<H: Handler<Peer>> Driver<H> {
    /// An endpoint with `config`, seeded from the OS, serving requests with `handler`.
    pub fn new(config: Config, handler: H, role: Role) -> io::Result<Self> {
        let seed = getrandom::u64().map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Driver {
            endpoint: new_endpoint(config, seed)?,
            handler,
            role,
            start: std::time::Instant::now(),
            out: vec![0; TRANSMIT_SIZE],
            waiting: HashMap::new(),
            ids: HashMap::new(),
            partial: HashMap::new(),
            observations: HashMap::new(),
            pending_notification: HashMap::new(),
            uploads: HashMap::new(),
            progress: HashMap::new(),
            groups: HashMap::new(),
            commands_open: true,
            oscore: None,
            raw: VecDeque::new(),
            scratch: vec![0; 2 * MAX_DATAGRAM],
            dtls: None,
            edhoc: None,
            combining: ClientSessions::default(),
            unreachable: None,
            closed_session: None,
            admission: Admission::new(config.max_queued_requests),
        })
    }

    /// Speaks CoAP over DTLS (RFC 7252 §9) on the loop's coaps socket: `coaps://`
    /// requests start (or reuse) client sessions and, if `dtls` has a server table,
    /// requests arriving over sessions are served. Records go through
    /// [`crate::dtls_recv`] and [`crate::dtls_send`].
    pub fn with_dtls(mut self, dtls: Dtls) -> Self {
        self.dtls = Some(Box::new(dtls));
        self
    }

    /// The DTLS state, if any (statistics).
    pub fn dtls(&self) -> Option<&Dtls> {
        self.dtls.as_deref()
    }

    /// Ends request `id` with `error`, wherever its outcome is awaited.
    fn fail(&mut self, id: RequestId, error: ClientError) {
        self.endpoint.cancel(id);
        self.partial.remove(&id);
        self.uploads.remove(&id);
        self.progress.remove(&id);
        self.pending_notification.remove(&id);
        self.ids.retain(|_, v| *v != id);
        if let Some(sink) = self.observations.remove(&id) {
            let _ = sink.try_send(Err(error));
        } else if let Some((_, reply)) = self.waiting.remove(&id) {
            let _ = reply.try_send(Err(error));
        } else if let Some(g) = self.groups.remove(&id) {
            let _ = g.sink.try_send(Err(error));
        }
    }

    /// Protects and verifies traffic with OSCORE (RFC 8613) using these contexts.
    pub fn with_oscore(mut self, oscore: Oscore) -> Self {
        self.oscore = Some(oscore);
        self
    }

    /// Answers EDHOC (RFC 9528) at `/.well-known/edhoc` with `responder` and accepts the
    /// combined request (RFC 9668); needs OSCORE ([`Driver::with_oscore`]) for the
    /// sessions' contexts.
    pub fn with_edhoc(mut self, responder: Box<StdResponder>) -> Self {
        self.edhoc = Some(responder);
        self
    }

    /// The core endpoint (statistics, slots in use).
    pub fn endpoint(&self) -> &StdEndpoint {
        &self.endpoint
    }

    /// Now on the core's clock: milliseconds since the driver was created.
    pub fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// When to feed [`Input::Timeout`], if a timer is armed.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        let core = self
            .endpoint
            .poll_timeout()
            .and_then(|t| self.start.checked_add(Duration::from_millis(t.as_millis())));
        let dtls = self.dtls.as_ref().and_then(|d| d.deadline());
        let queued = self
            .admission
            .deadline()
            .and_then(|t| self.start.checked_add(Duration::from_millis(t.as_millis())));
        [core, dtls, queued].into_iter().flatten().min()
    }

    /// Whether the loop should await commands (false once a server's channel closed).
    pub fn accepts_commands(&self) -> bool {
        self.commands_open
    }

    /// The next datagram to send. Call until `None` before awaiting the next input.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, &[u8])> {
        let mut out = std::mem::take(&mut self.out);
        let sent = self.poll_transmit_into(&mut out);
        self.out = out;
        let (peer, len) = sent?;
        Some((peer, self.out.get(..len)?))
    }

    /// [`Driver::poll_transmit`] into `buf` (which should hold [`TRANSMIT_SIZE`] bytes),
    /// for loops that send several datagrams at once: where it goes and its length.
    /// Messages to an OSCORE peer are protected here; one that cannot be protected is
    /// dropped, never sent in clear.
    pub fn poll_transmit_into(&mut self, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        if let Some((addr, bytes)) = self.raw.pop_front() {
            let len = bytes.len().min(buf.len());
            buf.get_mut(..len)?.copy_from_slice(bytes.get(..len)?);
            return Some((addr, len));
        }
        loop {
            let now = self.now();
            let t = self.endpoint.poll_transmit(now, buf)?;
            let len = t.len.min(buf.len());
            let context = match t.peer.security {
                Security::Plain => return Some((t.peer.addr, len)),
                Security::Oscore(context) => context,
                // RFC 7252 §9.1: over the peer's session, or not at all.
                Security::Dtls(serial) => {
                    if let (Some(dtls), Some(plain)) = (self.dtls.as_mut(), buf.get(..len)) {
                        dtls.send(std::time::Instant::now(), t.peer.addr, serial, plain);
                    }
                    continue;
                }
            };
            let Some(oscore) = self.oscore.as_mut() else {
                continue;
            };
            // Sequence numbers are stored before they are used (Appendix B.1.1).
            let _ = oscore.persist();
            let plain = buf.get(..len)?;
            match oscore
                .layer
                .outgoing(now, t.peer.addr, context, plain, &mut self.scratch)
            {
                Ok(n) if n <= buf.len() => {
                    let protected = self.scratch.get(..n)?;
                    if let Some(w) = self.combining.wrap(context, protected, buf) {
                        return Some((t.peer.addr, w));
                    }
                    buf.get_mut(..n)?.copy_from_slice(protected);
                    return Some((t.peer.addr, n));
                }
                _ => continue,
            }
        }
    }

    /// Feeds one input (`buf` is the loop's receive buffer) and dispatches the resulting
    /// events. `Break` ends the loop with its result.
    pub fn step(
        &mut self,
        input: Input,
        buf: &[u8],
        commands: &CommandReceiver,
    ) -> ControlFlow<io::Result<()>> {
        match input {
            Input::Shutdown => return ControlFlow::Break(Ok(())),
            Input::Datagram(Ok((n, peer))) => {
                self.handle_datagram(peer, buf.get(..n).unwrap_or(buf))
            }
            Input::Datagram(Err(e)) if transient(&e) => {}
            Input::Datagram(Err(e)) => return ControlFlow::Break(Err(e)),
            Input::GroupDatagram(Ok((n, peer))) => {
                let now = self.now();
                self.endpoint.handle_group_datagram(
                    now,
                    plain(peer),
                    buf.get(..n).unwrap_or(buf),
                    &mut self.handler,
                );
            }
            Input::GroupDatagram(Err(e)) if transient(&e) => {}
            Input::GroupDatagram(Err(e)) => return ControlFlow::Break(Err(e)),
            Input::Ready(Ok(())) => return ControlFlow::Continue(()),
            Input::Ready(Err(e)) if transient(&e) => return ControlFlow::Continue(()),
            Input::Ready(Err(e)) => return ControlFlow::Break(Err(e)),
            Input::Timeout => self.handle_timeout(),
            Input::Command(Some(c)) => {
                self.handle_command(c);
                // Take what else is queued in one go (bounded, so the socket gets its turn).
                for _ in 0..SLOTS {
                    let Ok(c) = commands.try_recv() else { break };
                    self.handle_command(c);
                }
            }
            Input::Command(None) => match self.role {
                Role::Client => return ControlFlow::Break(Ok(())),
                Role::Server => self.commands_open = false,
            },
        }
        self.dispatch_events();
        self.admit();
        ControlFlow::Continue(())
    }

    /// The network said `addr` cannot be reached (an ICMP error read from the socket's
    /// error queue; `dtls`: from the coaps socket). Requests to it fail now with
    /// [`ClientError::Unreachable`], its observers are dropped and its CON messages no
    /// longer retransmitted, under every security the endpoint speaks to it with
    /// (plain, each OSCORE context, its DTLS sessions); a DTLS handshake towards it ends.
    pub fn handle_unreachable(&mut self, addr: SocketAddr, why: Unreachable, dtls: bool) {
        let now = self.now();
        // On a dual-stack socket an IPv4 peer is an IPv4-mapped IPv6 address: the error
        // names the form that was sent, the endpoint may know either.
        let canonical = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        let mapped = match addr {
            SocketAddr::V4(a) => SocketAddr::new(a.ip().to_ipv6_mapped().into(), a.port()),
            a => a,
        };
        let mut addrs = vec![canonical];
        if mapped != canonical {
            addrs.push(mapped);
        }
        let mut securities = Vec::new();
        let mut handshaking = Vec::new();
        if dtls {
            if let Some(d) = self.dtls.as_mut() {
                for &a in &addrs {
                    if let Some(session) = d.client.session(a) {
                        securities.push(Security::Dtls(client_serial(session)));
                        let waiting = d.pending.remove(&session).unwrap_or_default();
                        d.client.close(std::time::Instant::now(), session);
                        handshaking.extend(waiting);
                    }
                    if let Some(session) = d.server.as_ref().and_then(|s| s.session(a)) {
                        securities.push(Security::Dtls(session.serial));
                    }
                }
            }
        } else {
            securities.push(Security::Plain);
            if let Some(o) = &self.oscore {
                securities.extend(o.contexts().map(Security::Oscore));
            }
        }
        self.unreachable = Some(canonical);
        for &addr in &addrs {
            for &security in &securities {
                let peer = Secured { addr, security };
                self.endpoint.handle_unreachable(now, peer, why);
            }
        }
        for id in handshaking {
            self.fail(
                id,
                ClientError::Unreachable {
                    peer: canonical,
                    reason: why,
                },
            );
        }
        self.dispatch_events();
        self.unreachable = None;
    }

    /// Feeds the passing of the deadline.
    pub fn handle_timeout(&mut self) {
        let now = self.now();
        self.endpoint.handle_timeout(now);
        if let Some(dtls) = self.dtls.as_mut() {
            dtls.handle_timeout(std::time::Instant::now());
            self.dtls_events();
        }
    }

    /// Carries out a command.
    pub fn handle_command(&mut self, command: Command) {
        let now = self.now();
        match command.0 {
            Cmd::Request {
                key,
                peer,
                request,
                reply,
                progress,
            } => {
                let timeout = request
                    .timeout
                    .unwrap_or(self.endpoint.config().request_timeout);
                let queued = Queued {
                    key,
                    peer,
                    request,
                    reply,
                    progress,
                    deadline: now + timeout,
                };
                // In order: while earlier requests wait, a new one waits behind them.
                if !self.admission.is_empty() {
                    return self.enqueue(queued);
                }
                if let Err(q) = self.start_request(now, queued) {
                    self.enqueue(*q);
                }
            }
            Cmd::Cancel { key } => {
                if self.admission.cancel(key) {
                    return;
                }
                if let Some(id) = self.ids.remove(&key) {
                    self.waiting.remove(&id);
                    self.observations.remove(&id);
                    self.pending_notification.remove(&id);
                    self.partial.remove(&id);
                    self.uploads.remove(&id);
                    self.groups.remove(&id);
                    self.endpoint.cancel(id);
                }
            }
            Cmd::Observe {
                key,
                peer,
                request,
                sink,
            } => {
                let (peer, handshake) = match self.resolve_peer(peer, request.psk.as_deref()) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = sink.try_send(Err(e));
                        return;
                    }
                };
                let params = request.params();
                match self
                    .endpoint
                    .request(now, peer, params, |b| request.write(b))
                {
                    Ok(id) => {
                        self.observations.insert(id, sink);
                        self.ids.insert(key, id);
                        self.await_handshake(handshake, id);
                    }
                    Err(e) => {
                        let _ = sink.try_send(Err(e.into()));
                    }
                }
            }
            Cmd::Group {
                key,
                peer,
                request,
                sink,
            } => {
                // Group communication has no DTLS (RFC 7252 §8, §9: sessions are unicast).
                if matches!(peer.security, Security::Dtls(_)) {
                    let _ = sink.try_send(Err(ClientError::UnsupportedScheme));
                    return;
                }
                let params = request.params();
                match self
                    .endpoint
                    .request_group(now, peer, params, |b| request.write(b))
                {
                    Ok(id) => {
                        let partial = HashMap::new();
                        self.groups.insert(id, GroupCollection { sink, partial });
                        self.ids.insert(key, id);
                    }
                    Err(e) => {
                        let _ = sink.try_send(Err(e.into()));
                    }
                }
            }
            Cmd::CancelObserve { key } => {
                if let Some(id) = self.ids.get(&key) {
                    let _ = self.endpoint.cancel_observe(now, *id);
                }
            }
            Cmd::Notify {
                resource,
                reply,
                done,
            } => {
                let n = self.endpoint.notify(now, resource, |_, w| reply.write(w));
                let _ = done.try_send(n);
            }
            Cmd::RecipientIds { reply } => {
                let ids = self.oscore.as_ref().map(|o| o.recipient_ids());
                let _ = reply.try_send(ids.unwrap_or_default());
            }
            Cmd::EdhocContext {
                context,
                peer,
                message_3,
                reply,
            } => {
                // A client bound without credentials gets its OSCORE layer now.
                if self.oscore.is_none() {
                    self.oscore = Oscore::load(&Default::default()).ok().map(|(o, _)| o);
                }
                let added = match self.oscore.as_mut() {
                    Some(o) => o.add_session(*context).map_err(ClientError::Edhoc),
                    None => Err(ClientError::NoCredentials),
                };
                if let Ok(id) = &added {
                    self.combining.add(*id, peer, message_3);
                }
                let _ = reply.try_send(added);
            }
            Cmd::Respond {
                handle,
                reply,
                done,
            } => {
                let r = self.endpoint.respond(now, handle, |w| reply.write(w));
                let _ = done.try_send(r.map_err(RespondError::from));
            }
        }
    }

    /// Hands every pending event to the request (or observation) waiting for it.
    fn dispatch_events(&mut self) {
        let mut observations = Vec::new();
        while let Some(event) = self.endpoint.poll_event() {
            // A group request: one response per member, blocks collected per member, and
            // the end of the window (Timeout) ends the stream.
            if let Some(g) = self.groups.get_mut(&event.id()) {
                match event {
                    Event::Block { peer, message, .. } => {
                        g.partial
                            .entry(peer.addr)
                            .or_default()
                            .extend_from_slice(message.payload());
                    }
                    Event::Response { peer, message, .. } => {
                        let mut response = Response::from_message(peer, &message);
                        if let Some(mut body) = g.partial.remove(&peer.addr) {
                            body.extend_from_slice(&response.payload);
                            response.payload = body;
                        }
                        // A consumer that does not keep up misses responses, bounded.
                        let _ = g.sink.try_send(Ok(response));
                    }
                    other => {
                        let id = other.id();
                        self.groups.remove(&id);
                        self.ids.retain(|_, v| *v != id);
                    }
                }
                continue;
            }
            let (id, outcome) = match event {
                // A notification larger than a message: its first block, the rest follows
                // as blocks (RFC 7959 §3.4); deliver it once complete.
                Event::Notification { id, peer, message }
                    if self.observations.contains_key(&id) =>
                {
                    let response = Response::from_message(peer, &message);
                    let more = coap_core::Block::of(&message, OptionNumber::BLOCK2)
                        .is_some_and(|b| b.more);
                    if more {
                        self.pending_notification.insert(id, response);
                    } else if let Some(sink) = self.observations.get(&id) {
                        // A slow consumer misses notifications rather than growing memory.
                        let _ = sink.try_send(Ok(response));
                    }
                    continue;
                }
                Event::Block { id, message, .. } if self.pending_notification.contains_key(&id) => {
                    let more = coap_core::Block::of(&message, OptionNumber::BLOCK2)
                        .is_some_and(|b| b.more);
                    if let Some(p) = self.pending_notification.get_mut(&id) {
                        p.payload.extend_from_slice(message.payload());
                    }
                    if !more {
                        if let (Some(p), Some(sink)) = (
                            self.pending_notification.remove(&id),
                            self.observations.get(&id),
                        ) {
                            let _ = sink.try_send(Ok(p));
                        }
                    }
                    continue;
                }
                // RFC 7959: blocks of a Block2 transfer are collected in order; the
                // response carries the whole representation.
                Event::Block { id, message, .. } => {
                    let body = self.partial.entry(id).or_default();
                    body.extend_from_slice(message.payload());
                    if let Some(p) = self.progress.get(&id) {
                        let total = message.uint_option(OptionNumber::SIZE2).map(|v| v as usize);
                        let _ = p.try_send(Progress {
                            done: body.len(),
                            total,
                        });
                    }
                    continue;
                }
                Event::Response { id, peer, message } => {
                    let mut response = Response::from_message(peer, &message);
                    if let Some(mut body) = self.partial.remove(&id) {
                        body.extend_from_slice(&response.payload);
                        response.payload = body;
                    }
                    match self.combining.take_refusal(peer.addr, message.token()) {
                        Some(Refusal::Handshake) => (id, Err(refusal(&response))),
                        Some(Refusal::SessionLost) => {
                            (id, Err(ClientError::EdhocSessionLost(response.code)))
                        }
                        None => (id, Ok(response)),
                    }
                }
                Event::Failed { id, reason } => match (&self.closed_session, reason) {
                    (Some(why), FailReason::Unreachable(_)) => {
                        (id, Err(ClientError::SessionClosed(why.clone())))
                    }
                    _ => (id, Err(failure(reason, self.unreachable))),
                },
                // The request asked for no response (RFC 7967) and none came.
                Event::NoResponse { id } => (id, Err(ClientError::NoResponse)),
                // The server took a block of an upload: send the next one.
                Event::Continue { id, offset, size } => {
                    let body = self.uploads.get(&id).map(Vec::as_slice).unwrap_or_default();
                    if let Some(p) = self.progress.get(&id) {
                        let _ = p.try_send(Progress {
                            done: offset,
                            total: Some(body.len()),
                        });
                    }
                    let end = offset.saturating_add(size).min(body.len());
                    let chunk = body.get(offset..end).unwrap_or_default();
                    let now = self.now();
                    match self.endpoint.upload_next(now, id, chunk, end == body.len()) {
                        Ok(()) => continue,
                        Err(e) => {
                            self.endpoint.cancel(id);
                            (id, Err(e.into()))
                        }
                    }
                }
                // A plain request that registered an observation (Observe=0 among its
                // options) takes the first notification as its response.
                Event::Notification { id, peer, message } => {
                    observations.push(id);
                    (id, Ok(Response::from_message(peer, &message)))
                }
                Event::Timeout { id } => (id, Err(ClientError::Timeout)),
                Event::Reset { id } => (id, Err(ClientError::Reset)),
            };
            self.partial.remove(&id);
            self.uploads.remove(&id);
            self.progress.remove(&id);
            // The end of an observation: its final response or error, then the stream ends.
            if let Some(sink) = self.observations.remove(&id) {
                self.pending_notification.remove(&id);
                self.ids.retain(|_, v| *v != id);
                let _ = sink.try_send(outcome);
                continue;
            }
            if let Some((key, reply)) = self.waiting.remove(&id) {
                self.ids.remove(&key);
                // The `send` future may be gone; its Cancel is still on the way.
                let _ = reply.try_send(outcome);
            }
        }
        // Nobody follows the observation: cancel it passively (RFC 7641 §3.6, later
        // notifications get RST).
        for id in observations {
            self.endpoint.cancel(id);
        }
    }
}

impl<H> std::fmt::Debug for Driver<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("role", &self.role)
            .field("waiting", &self.waiting.len())
            .field("slots_in_use", &self.endpoint.slots_in_use())
            .finish_non_exhaustive()
    }
}

/// The error of a request the core failed.
fn failure(reason: FailReason, peer: Option<SocketAddr>) -> ClientError {
    match (reason, peer) {
        (FailReason::Unreachable(reason), Some(peer)) => ClientError::Unreachable { peer, reason },
        // Unreachable is only reported while `handle_unreachable` runs, which sets the peer.
        (FailReason::Unreachable(_), None) => ClientError::Timeout,
        (FailReason::RepresentationChanged, _) => ClientError::RepresentationChanged,
    }
}

/// Receive errors that say something about one datagram or peer, not the socket (e.g.
/// ICMP port unreachable reported as ECONNREFUSED / WSAECONNRESET, or a path-MTU error as
/// EMSGSIZE on Linux): keep going.
fn transient(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    #[cfg(target_os = "linux")]
    if e.raw_os_error() == Some(nix::libc::EMSGSIZE) {
        return true;
    }
    matches!(
        e.kind(),
        ConnectionReset
            | ConnectionRefused
            | ConnectionAborted
            | Interrupted
            | WouldBlock
            | TimedOut
            | HostUnreachable
            | NetworkUnreachable
    )
}

/// The boxed endpoint. `Endpoint::new` returns it by value (4.7 MB at these sizes) and
/// unoptimized builds copy it several times on the stack: over 2 MiB, more than a tokio
/// worker or test thread has. So it is built on a short-lived thread with room for that.
fn new_endpoint(config: Config, seed: u64) -> io::Result<Box<StdEndpoint>> {
    std::thread::Builder::new()
        .name("coap-endpoint-init".into())
        .stack_size(16 << 20)
        .spawn(move || Box::new(StdEndpoint::new(config, seed)))?
        .join()
        .map_err(|_| io::Error::other("building the endpoint failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Building a driver needs no more stack than a small thread has, in any profile.
    #[test]
    fn driver_builds_on_a_small_stack() {
        let slots = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let d = Driver::new(Config::default(), coap_core::NoServer, Role::Client).unwrap();
                d.endpoint().slots_in_use()
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(slots, 0);
    }
}
