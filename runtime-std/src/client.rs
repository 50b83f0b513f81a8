//! The client side of the std adapters: requests as the application builds them, responses
//! as it receives them, errors, and the mapping of a URI to the peer to send to.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use coap_core::uri::percent_decode_into;
use coap_core::{Code, Host, Method, OptionNumber, Scheme, Token, Uri, UriError};

use crate::command::{Cmd, Command, CommandSender, OutgoingRequest, Progress};
use crate::dtls::{Psk, UNRESOLVED};
use crate::happy_eyeballs::{reachable, Candidates, Fallback, Origins};
use crate::oscore::{Peer, Security, SecurityMap};
use crate::response::{ClientError, Response};

/// The future a [`Resolver`] returns: the addresses of a host name.
pub type ResolveFuture = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;

/// How a runtime resolves a host name and port (`tokio::net::lookup_host`, `blocking`).
pub type Resolver = fn(String, u16) -> ResolveFuture;

/// A runtime's timer as a [`Handle`] uses it: a future that completes at the instant.
pub type Timer = fn(std::time::Instant) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// One address's attempt of a request (address fallback).
type Attempt<'a> = Pin<Box<dyn Future<Output = Result<Response, ClientError>> + Send + 'a>>;

/// The runtime-independent part of a client: sends commands to the endpoint loop. Cheap
/// to clone; the loop of a client-only endpoint stops when every clone is gone.
#[derive(Clone, Debug)]
pub struct Handle {
    pub(crate) commands: CommandSender,
    local: SocketAddr,
    resolver: Resolver,
    security: SecurityMap,
    /// The PSK for `coaps://` URIs the credentials say nothing about.
    psk: Option<std::sync::Arc<Psk>>,
    /// Host names with addresses given by the application, used instead of the resolver.
    hosts: std::sync::Arc<HashMap<(String, u16), Vec<SocketAddr>>>,
    /// The address that answered for each host name (RFC 8305 style fallback).
    origins: Origins,
    fallback: Fallback,
    /// For staggered attempts (RFC 8305 §5); without one, attempts follow each other.
    timer: Option<Timer>,
    /// EDHOC sessions established for `edhoc-oscore` credentials (RFC 9528).
    pub(crate) sessions: crate::edhoc::sessions::Sessions,
    /// The connections for `coap+tcp://` URIs (RFC 8323), if the runtime gave them.
    reliable: Option<std::sync::Arc<crate::reliable::client::Pool>>,
}

impl Handle {
    /// A handle on the loop reading `commands`, whose socket is bound to `local`.
    pub fn new(commands: CommandSender, local: SocketAddr, resolver: Resolver) -> Handle {
        Handle {
            commands,
            local,
            resolver,
            security: Default::default(),
            psk: None,
            hosts: Default::default(),
            origins: Origins::default(),
            fallback: Fallback::default(),
            timer: None,
            sessions: Default::default(),
            reliable: None,
        }
    }

    /// Sends `coap+tcp://` requests over the connections of `pool` (RFC 8323).
    pub(crate) fn with_reliable(mut self, pool: crate::reliable::client::Pool) -> Handle {
        self.reliable = Some(std::sync::Arc::new(pool));
        self
    }

    /// Verifies `coaps+tcp://` servers with `tls` (RFC 8323 §9).
    pub(crate) fn with_tls(mut self, tls: crate::reliable::TlsClientConfig) -> Handle {
        if let Some(pool) = &self.reliable {
            self.reliable = Some(std::sync::Arc::new(pool.with_tls(tls)));
        }
        self
    }

    /// For a URI of a reliable transport (`coap+tcp://`): the command channel of the
    /// connection to its origin (opened if needed) and the peer; `None` for other URIs.
    async fn reliable_route(
        &self,
        uri: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<(CommandSender, Peer)>, ClientError> {
        let parsed = Uri::parse(uri)?;
        let scheme = parsed.scheme();
        if matches!(scheme, Scheme::Coap | Scheme::Coaps) {
            return Ok(None);
        }
        let pool = self
            .reliable
            .as_ref()
            .ok_or(ClientError::UnsupportedScheme)?;
        let port = parsed.port();
        let addr = match parsed.host() {
            Host::Ip(ip) => SocketAddr::new(ip, port),
            Host::Name(_) => {
                let Target::Name(host, port) = Target::named(&parsed)? else {
                    return Err(ClientError::UnsupportedScheme);
                };
                let origin = (host.to_ascii_lowercase(), port);
                let addrs = match self.hosts.get(&origin) {
                    Some(given) => given.clone(),
                    None => (self.resolver)(host.clone(), port)
                        .await
                        .map_err(ClientError::Resolve)?,
                };
                *addrs.first().ok_or_else(|| {
                    ClientError::Resolve(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("no address for {host}"),
                    ))
                })?
            }
        };
        let host = match parsed.host() {
            Host::Ip(ip) => ip.to_string(),
            Host::Name(_) => match Target::named(&parsed)? {
                Target::Name(name, _) => name,
                Target::Addr(a) => a.ip().to_string(),
            },
        };
        let commands = pool.commands(scheme, addr, &host, timeout)?;
        let peer = coap_core::oscore::Secured {
            addr,
            security: Security::Plain,
        };
        Ok(Some((commands, peer)))
    }

    /// Gives the handle the runtime's timer, for staggered attempts to the addresses of a
    /// name ([`Handle::with_fallback`]); without one, attempts follow each other.
    pub fn with_timer(mut self, timer: Timer) -> Handle {
        self.timer = Some(timer);
        self
    }

    /// Resolves `host` (with `port`) to `addrs` instead of asking the resolver, as a
    /// hosts file entry or curl's `--resolve` would; requests to it fall back between the
    /// addresses as to any name's ([`Handle::with_fallback`]).
    pub fn with_host(mut self, host: &str, port: u16, addrs: Vec<SocketAddr>) -> Handle {
        let mut hosts = (*self.hosts).clone();
        hosts.insert((host.to_ascii_lowercase(), port), addrs);
        self.hosts = std::sync::Arc::new(hosts);
        self
    }

    /// How requests to a host name with several addresses move between them (RFC 8305
    /// style: every reachable address in turn, families interleaved, the next after an
    /// ICMP error or an unanswered first attempt).
    pub fn with_fallback(mut self, fallback: Fallback) -> Handle {
        self.fallback = fallback;
        self
    }

    /// Uses `psk` for `coaps://` requests (RFC 7252 §9.1.3.1) unless the credentials
    /// ([`Handle::with_security`]) name a `dtls` credential for the URI.
    pub fn with_psk(mut self, psk: Psk) -> Handle {
        self.psk = Some(std::sync::Arc::new(psk));
        self
    }

    /// Protects requests to the URIs `security` maps to OSCORE contexts (RFC 8613).
    pub fn with_security(mut self, security: SecurityMap) -> Handle {
        self.security = security;
        self
    }

    /// The local address of the endpoint's socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A confirmable GET of `uri`.
    pub async fn get(&self, uri: &str) -> Result<Response, ClientError> {
        self.request(Method::Get, uri).send().await
    }

    /// A request to build further, then [`RequestBuilder::send`].
    pub fn request(&self, method: Method, uri: &str) -> RequestBuilder {
        RequestBuilder {
            handle: self.clone(),
            request: OutgoingRequest::new(uri.to_owned(), method.code()),
            progress: None,
        }
    }

    /// The peer to send `request` to: a plain or OSCORE one, or for a `coaps://` URI the
    /// DTLS session with the address (resolved by the loop), with the PSK to start it
    /// with put into the request; and the addresses to try, in order.
    async fn peer_for(
        &self,
        request: &mut OutgoingRequest,
    ) -> Result<(Peer, Candidates), ClientError> {
        let uri = request.uri.as_str();
        let secure = Uri::parse(uri)?.scheme() == Scheme::Coaps;
        let mut candidates = self.addrs_for(uri).await?;
        let addr = candidates
            .addrs
            .first()
            .copied()
            .ok_or(ClientError::Closed)?;
        let security = if secure {
            let psk = match self.security.dtls_psk(uri) {
                Some(p) => std::sync::Arc::new(p),
                None => self.psk.clone().ok_or(ClientError::NoCredentials)?,
            };
            request.psk = Some(psk);
            Security::Dtls(UNRESOLVED)
        } else if let Some(edhoc) = self.security.edhoc(uri) {
            // RFC 9528 Appendix A.1: the session's OSCORE context protects the request.
            // The session is with one address: no fallback to the others.
            candidates.addrs.truncate(1);
            Security::Oscore(self.edhoc_session(uri, addr, &edhoc).await?)
        } else {
            match self.security.for_uri(uri) {
                // A session `Handle::edhoc` established with this server.
                Security::Plain => self
                    .sessions
                    .get(addr)
                    .map_or(Security::Plain, Security::Oscore),
                s => s,
            }
        };
        Ok((coap_core::oscore::Secured { addr, security }, candidates))
    }

    /// The first address of `uri`'s host (in the order fallback would try them).
    pub(crate) async fn addr_for(&self, uri: &str) -> Result<SocketAddr, ClientError> {
        let candidates = self.addrs_for(uri).await?;
        candidates.addrs.first().copied().ok_or(ClientError::Closed)
    }

    async fn addrs_for(&self, uri: &str) -> Result<Candidates, ClientError> {
        match Target::of(uri)? {
            Target::Addr(a) => {
                let addrs = reachable(&[a], self.local);
                if addrs.is_empty() {
                    let msg = format!("cannot send to {a} from a socket bound to {}", self.local);
                    return Err(ClientError::Io(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        msg,
                    )));
                }
                Ok(Candidates {
                    addrs,
                    origin: None,
                })
            }
            Target::Name(host, port) => {
                let origin = (host.to_ascii_lowercase(), port);
                let resolved = match self.hosts.get(&origin) {
                    Some(given) => given.clone(),
                    None => (self.resolver)(host.clone(), port)
                        .await
                        .map_err(ClientError::Resolve)?,
                };
                let addrs = self
                    .origins
                    .order(&origin, reachable(&resolved, self.local));
                if addrs.is_empty() {
                    let msg = format!("no address of {host} is reachable from {}", self.local);
                    return Err(ClientError::Resolve(io::Error::new(
                        io::ErrorKind::NotFound,
                        msg,
                    )));
                }
                Ok(Candidates {
                    addrs,
                    origin: Some(origin),
                })
            }
        }
    }

    /// Sends `request` to the candidate addresses until one answers (see
    /// [`crate::happy_eyeballs`]): an attempt that is not the last ends after an ICMP error
    /// or [`Fallback::attempt_timeout`] without an answer, and the next starts then. A safe
    /// request (GET, FETCH: RFC 7252 §5.1, RFC 8132 §2) does not wait that long: while
    /// it is unanswered the next address is tried too every [`Fallback::attempt_delay`]
    /// (RFC 8305 §5), and the first answer wins (the others are cancelled).
    async fn send_with_fallback(
        &self,
        peer: Peer,
        candidates: Candidates,
        request: OutgoingRequest,
        progress: Option<async_channel::Sender<Progress>>,
    ) -> Result<Response, ClientError> {
        let started = std::time::Instant::now();
        let addrs = &candidates.addrs;
        let safe = request.code == Code::GET || request.code == Code::FETCH;
        let stagger = self.timer.filter(|_| safe);
        let mut running: Vec<(SocketAddr, Attempt<'_>)> = Vec::new();
        let mut timer: Option<Pin<Box<dyn Future<Output = ()> + Send>>> = None;
        let mut next = 0;
        let mut outcome = Err(ClientError::Timeout);
        loop {
            let remaining = request.timeout.map(|b| b.saturating_sub(started.elapsed()));
            let start = next < addrs.len()
                && (running.is_empty() || timer.is_none() && stagger.is_some())
                && !remaining.is_some_and(|r| r.is_zero());
            if start {
                let mut attempt = request.clone();
                let first = self.fallback.attempt_timeout;
                attempt.timeout = if next + 1 < addrs.len() {
                    Some(remaining.map_or(first, |r| r.min(first)))
                } else {
                    remaining
                };
                let to = coap_core::oscore::Secured {
                    addr: addrs[next],
                    security: peer.security,
                };
                let sent = self.send_to(to, attempt, progress.clone());
                running.push((addrs[next], Box::pin(sent)));
                next += 1;
                timer = stagger
                    .filter(|_| next < addrs.len())
                    .map(|sleep| sleep(std::time::Instant::now() + self.fallback.attempt_delay));
            }
            if running.is_empty() {
                return outcome;
            }
            // The first attempt to end, or the stagger timer (`None`).
            let ended = std::future::poll_fn(|cx| {
                for (k, (_, attempt)) in running.iter_mut().enumerate() {
                    if let std::task::Poll::Ready(r) = attempt.as_mut().poll(cx) {
                        return std::task::Poll::Ready(Some((k, r)));
                    }
                }
                match timer.as_mut().map(|t| t.as_mut().poll(cx)) {
                    Some(std::task::Poll::Ready(())) => std::task::Poll::Ready(None),
                    _ => std::task::Poll::Pending,
                }
            })
            .await;
            let Some((k, result)) = ended else {
                // Time for the next address; this one stays in the race.
                timer = None;
                continue;
            };
            let (addr, _) = running.remove(k);
            let moves_on = matches!(
                result,
                Err(ClientError::Unreachable { .. } | ClientError::Timeout)
            );
            if !moves_on {
                if let Some(origin) = &candidates.origin {
                    self.origins.answered(origin, addr);
                }
                // Dropping the other attempts cancels them.
                return result;
            }
            if let Some(origin) = &candidates.origin {
                self.origins.forget(origin);
            }
            outcome = result;
            // A failed attempt lets the next start at once (RFC 8305 §5).
            timer = None;
        }
    }

    /// Sends `request` to `peer` and waits for its outcome.
    async fn send_to(
        &self,
        peer: Peer,
        request: OutgoingRequest,
        progress: Option<async_channel::Sender<Progress>>,
    ) -> Result<Response, ClientError> {
        self.send_on(&self.commands, peer, request, progress).await
    }

    /// [`Handle::send_to`] through the loop (or connection task) reading `commands`.
    async fn send_on(
        &self,
        commands: &CommandSender,
        peer: Peer,
        request: OutgoingRequest,
        progress: Option<async_channel::Sender<Progress>>,
    ) -> Result<Response, ClientError> {
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        let (reply, response) = async_channel::bounded(1);
        let command = Command(Cmd::Request {
            key,
            peer,
            request,
            reply,
            progress,
        });
        commands
            .try_send(command)
            .map_err(|_| ClientError::Closed)?;
        let guard = CancelOnDrop {
            commands,
            key: Some(key),
        };
        let result = response.recv().await.map_err(|_| ClientError::Closed);
        guard.disarm();
        result?
    }
}

/// Hands out keys that identify a request between a `send` future and the loop.
static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

/// A request being built: options and payload, then [`RequestBuilder::send`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until sent"]
pub struct RequestBuilder {
    handle: Handle,
    request: OutgoingRequest,
    progress: Option<async_channel::Sender<Progress>>,
}

impl RequestBuilder {
    /// The payload.
    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.request.payload = payload.into();
        self
    }

    /// The Content-Format of the payload (e.g. 0 text/plain, 50 application/json).
    pub fn content_format(mut self, format: impl Into<coap_core::ContentFormat>) -> Self {
        self.request.content_format = Some(format.into().0);
        self
    }

    /// The Accept option: the Content-Format wanted in the response.
    pub fn accept(mut self, format: impl Into<coap_core::ContentFormat>) -> Self {
        self.request.accept = Some(format.into().0);
        self
    }

    /// Adds an option (raw value); call again to repeat it. URI options come from the URI.
    pub fn option(mut self, number: impl Into<OptionNumber>, value: impl Into<Vec<u8>>) -> Self {
        self.request.options.push((number.into(), value.into()));
        self
    }

    /// The request code, also one that [`Method`] does not name (an unassigned 0.xx code,
    /// to see how a server answers it). Must be a request code (0.01-0.31).
    pub fn code(mut self, code: Code) -> Self {
        self.request.code = code;
        self
    }

    /// Sends the request with this token instead of a fresh random one (RFC 7252 §5.3.1
    /// wants random tokens; a chosen one helps to match a peer's logs, as libcoap's
    /// `coap-client -T` does). A token in use by another request to the same peer fails
    /// the request.
    pub fn token(mut self, token: Token) -> Self {
        self.request.token = Some(token);
        self
    }

    /// Sends the request non-confirmable (NON).
    pub fn non(self) -> Self {
        self.confirmable(false)
    }

    /// Confirmable (CON, the default) or non-confirmable.
    pub fn confirmable(mut self, confirmable: bool) -> Self {
        self.request.confirmable = confirmable;
        self
    }

    /// Reports the progress of a block-wise transfer (RFC 7959) of this request — each
    /// block received or acknowledged — to `sink` (best effort: a full channel skips);
    /// `coap_std::async_channel::bounded::<coap_std::Progress>(16)` makes one.
    pub fn progress(mut self, sink: async_channel::Sender<Progress>) -> Self {
        self.progress = Some(sink);
        self
    }

    /// The total deadline of the request (default: `Config::request_timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.request.timeout = Some(timeout);
        self
    }

    /// Sends the request and waits for its response. Dropping the future cancels the
    /// exchange in the endpoint (a late response is then rejected). A host name with
    /// several addresses is tried address by address (RFC 8305 style, see [`Fallback`]).
    pub async fn send(self) -> Result<Response, ClientError> {
        let RequestBuilder {
            handle,
            mut request,
            progress,
        } = self;
        if let Some((commands, peer)) = handle.reliable_route(&request.uri, request.timeout).await?
        {
            return handle.send_on(&commands, peer, request, progress).await;
        }
        let (peer, candidates) = handle.peer_for(&mut request).await?;
        let result = if candidates.addrs.len() > 1 {
            handle
                .send_with_fallback(peer, candidates, request, progress)
                .await
        } else {
            handle.send_to(peer, request, progress).await
        };
        // The server refused our combined request's EDHOC part (RFC 9668 §3.3.1), or lost
        // the session: it is unusable, the next request runs EDHOC again.
        if let (
            Security::Oscore(context),
            Err(
                ClientError::EdhocPeer { .. }
                | ClientError::EdhocStatus(_)
                | ClientError::EdhocSessionLost(_),
            ),
        ) = (peer.security, &result)
        {
            handle.sessions.forget(peer.addr, context);
        }
        result
    }

    /// Sends the request to `peer` as it is (no credential lookup, no fallback).
    pub(crate) async fn send_to(self, peer: Peer) -> Result<Response, ClientError> {
        let RequestBuilder {
            handle,
            request,
            progress,
        } = self;
        handle.send_to(peer, request, progress).await
    }
}

impl RequestBuilder {
    /// Observes the resource (RFC 7641): sends the request with Observe=0 and returns the
    /// stream of notifications — the first is the registration's response. The stream
    /// ends after the final response (one without Observe, or an error) or an error
    /// (`Timeout` when re-registration fails). The endpoint keeps the notifications in
    /// order (§3.4) and re-registers when Max-Age lapses. Dropping the [`Observation`]
    /// forgets it (later notifications get RST); [`Observation::cancel`] deregisters.
    /// For a host name with several addresses the registration falls back between them
    /// as a request does (then `observe` returns once the registration is answered).
    pub async fn observe(self) -> Result<Observation, ClientError> {
        let RequestBuilder {
            handle,
            mut request,
            ..
        } = self;
        if !request
            .options
            .iter()
            .any(|(n, _)| *n == OptionNumber::OBSERVE)
        {
            request.options.push((OptionNumber::OBSERVE, Vec::new()));
        }
        if let Some((commands, peer)) = handle.reliable_route(&request.uri, request.timeout).await?
        {
            return handle.start_observation_on(commands, peer, request);
        }
        let (peer, candidates) = handle.peer_for(&mut request).await?;
        let last = candidates.addrs.len().saturating_sub(1);
        for (i, addr) in candidates.addrs.iter().enumerate() {
            let mut attempt = request.clone();
            let to = coap_core::oscore::Secured {
                addr: *addr,
                security: peer.security,
            };
            if i == last {
                return handle.start_observation(to, attempt);
            }
            // Not the last address (see `send_with_fallback`): the registration's answer
            // decides, within the first attempt's time.
            let first = handle.fallback.attempt_timeout;
            attempt.timeout = Some(request.timeout.map_or(first, |t| t.min(first)));
            let mut observation = handle.start_observation(to, attempt)?;
            match observation.notifications.recv().await {
                Ok(Err(ClientError::Unreachable { .. } | ClientError::Timeout)) => {
                    if let Some(origin) = &candidates.origin {
                        handle.origins.forget(origin);
                    }
                }
                Ok(answer) => {
                    if let Some(origin) = candidates.origin.as_ref().filter(|_| answer.is_ok()) {
                        handle.origins.answered(origin, *addr);
                    }
                    observation.first = Some(answer);
                    return Ok(observation);
                }
                Err(_) => return Err(ClientError::Closed),
            }
        }
        Err(ClientError::Timeout)
    }
}

impl Handle {
    /// Registers an observation of `request` with `peer` (the loop sends it).
    fn start_observation(
        &self,
        peer: Peer,
        request: OutgoingRequest,
    ) -> Result<Observation, ClientError> {
        self.start_observation_on(self.commands.clone(), peer, request)
    }

    /// [`Handle::start_observation`] through the loop (or connection task) reading
    /// `commands`.
    fn start_observation_on(
        &self,
        commands: CommandSender,
        peer: Peer,
        request: OutgoingRequest,
    ) -> Result<Observation, ClientError> {
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        // Bounded: a consumer that does not keep up misses notifications (the newest
        // state matters, RFC 7641 §1.3) instead of growing memory.
        let (sink, notifications) = async_channel::bounded(64);
        commands
            .try_send(Command(Cmd::Observe {
                key,
                peer,
                request,
                sink,
            }))
            .map_err(|_| ClientError::Closed)?;
        Ok(Observation {
            commands,
            key,
            first: None,
            notifications: Box::pin(notifications),
            forget_on_drop: true,
        })
    }
}

impl RequestBuilder {
    /// Sends the request to a group (multicast) address (RFC 7252 §8.1) — e.g.
    /// `coap://224.0.1.187/.well-known/core` or `coap://[ff02::fd%eth0]/...` — as NON, and
    /// collects for `window`: the returned stream yields every member's response, with the
    /// member's address in [`Response::peer`] (a member's Block2 body is fetched from it by
    /// unicast and delivered whole, RFC 7959 §2.8), and ends when the window closes. Send
    /// later requests to a member to its own address. Dropping the stream stops collecting.
    pub async fn multicast(self, window: Duration) -> Result<GroupResponses, ClientError> {
        let RequestBuilder {
            handle,
            mut request,
            ..
        } = self;
        request.timeout = Some(window);
        request.confirmable = false;
        let (peer, _) = handle.peer_for(&mut request).await?;
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        let (sink, responses) = async_channel::bounded(256);
        handle
            .commands
            .try_send(Command(Cmd::Group {
                key,
                peer,
                request,
                sink,
            }))
            .map_err(|_| ClientError::Closed)?;
        Ok(GroupResponses {
            commands: handle.commands.clone(),
            key,
            responses: Box::pin(responses),
        })
    }
}

/// The responses to a group request ([`RequestBuilder::multicast`]), one per member, as
/// they arrive; a [`futures_core::Stream`] that ends when the collection window closes.
#[derive(Debug)]
pub struct GroupResponses {
    commands: CommandSender,
    key: u64,
    responses: Pin<Box<async_channel::Receiver<Result<Response, ClientError>>>>,
}

impl GroupResponses {
    /// The next member's response; `None` once the window has closed.
    pub async fn next(&mut self) -> Option<Result<Response, ClientError>> {
        self.responses.recv().await.ok()
    }
}

impl futures_core::Stream for GroupResponses {
    type Item = Result<Response, ClientError>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.responses.as_mut().poll_next(cx)
    }
}

impl Drop for GroupResponses {
    fn drop(&mut self) {
        let _ = self
            .commands
            .try_send(Command(Cmd::Cancel { key: self.key }));
    }
}

/// The notifications of an observed resource (RFC 7641), in order: call
/// [`Observation::next`] (no import needed), or use it as a [`futures_core::Stream`] with
/// the combinators of `futures_lite::StreamExt` or `futures::StreamExt`.
#[derive(Debug)]
pub struct Observation {
    commands: CommandSender,
    key: u64,
    /// The registration's answer when it was awaited already (address fallback).
    first: Option<Result<Response, ClientError>>,
    notifications: Pin<Box<async_channel::Receiver<Result<Response, ClientError>>>>,
    forget_on_drop: bool,
}

impl Observation {
    /// The next notification; `None` when the observation has ended.
    pub async fn next(&mut self) -> Option<Result<Response, ClientError>> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        self.notifications.recv().await.ok()
    }

    /// Deregisters actively (GET with Observe=1, RFC 7641 §3.6) and waits for the
    /// server's final answer, returned here (bounded by the request timeout).
    pub async fn cancel(mut self) -> Option<Result<Response, ClientError>> {
        self.commands
            .try_send(Command(Cmd::CancelObserve { key: self.key }))
            .ok()?;
        let mut last = self.first.take();
        // Notifications already on the way come first; the final answer ends the stream.
        while let Ok(r) = self.notifications.recv().await {
            last = Some(r);
        }
        self.forget_on_drop = false;
        last
    }
}

impl futures_core::Stream for Observation {
    type Item = Result<Response, ClientError>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if let Some(first) = self.first.take() {
            return std::task::Poll::Ready(Some(first));
        }
        self.notifications.as_mut().poll_next(cx)
    }
}

impl Drop for Observation {
    fn drop(&mut self) {
        if self.forget_on_drop {
            // Passive cancel (RFC 7641 §3.6): the next notification gets RST.
            let _ = self
                .commands
                .try_send(Command(Cmd::Cancel { key: self.key }));
        }
    }
}

/// Cancels the exchange when a `send` future is dropped before its outcome arrived.
struct CancelOnDrop<'a> {
    commands: &'a CommandSender,
    key: Option<u64>,
}

impl CancelOnDrop<'_> {
    fn disarm(mut self) {
        self.key = None;
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            // A closed loop has nothing left to cancel.
            let _ = self.commands.try_send(Command(Cmd::Cancel { key }));
        }
    }
}

/// Where a URI says to send: an address, or a name to resolve.
enum Target {
    Addr(SocketAddr),
    Name(String, u16),
}

impl Target {
    fn of(text: &str) -> Result<Target, ClientError> {
        let uri = Uri::parse(text)?;
        if !matches!(uri.scheme(), Scheme::Coap | Scheme::Coaps) {
            return Err(ClientError::UnsupportedScheme);
        }
        Target::named(&uri)
    }

    /// The address or name of a parsed URI of any scheme.
    fn named(uri: &Uri<'_>) -> Result<Target, ClientError> {
        let port = uri.port();
        Ok(match uri.host() {
            Host::Ip(IpAddr::V6(ip)) => {
                let scope = uri.zone().map(scope_id).unwrap_or(0);
                Target::Addr(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope)))
            }
            Host::Ip(ip) => Target::Addr(SocketAddr::new(ip, port)),
            Host::Name(name) => {
                let mut buf = vec![0; name.len()];
                let len = percent_decode_into(name, &mut buf)?;
                buf.truncate(len);
                let name = String::from_utf8(buf)
                    .map_err(|_| ClientError::InvalidUri(UriError::InvalidUtf8))?;
                Target::Name(name, port)
            }
        })
    }
}

/// The scope id of an IPv6 zone (RFC 6874): a number, or an interface name (Linux).
fn scope_id(zone: &str) -> u32 {
    let mut buf = vec![0; zone.len()];
    let zone = match percent_decode_into(zone, &mut buf) {
        Ok(n) => std::str::from_utf8(&buf[..n]).unwrap_or(""),
        Err(_) => "",
    };
    if let Ok(n) = zone.parse() {
        return n;
    }
    if zone.is_empty() || zone.contains(['/', '.']) {
        return 0;
    }
    std::fs::read_to_string(format!("/sys/class/net/{zone}/ifindex"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn targets() {
        assert!(
            matches!(Target::of("coap://127.0.0.1/x"), Ok(Target::Addr(a)) if a == addr("127.0.0.1:5683"))
        );
        assert!(
            matches!(Target::of("coap://[::1]:7/x"), Ok(Target::Addr(a)) if a == addr("[::1]:7"))
        );
        assert!(
            matches!(Target::of("coap://[fe80::1%2542]/"), Ok(Target::Addr(SocketAddr::V6(a))) if a.scope_id() == 42)
        );
        assert!(
            matches!(Target::of("coap://ex%61mple.com:9/"), Ok(Target::Name(n, 9)) if n == "example.com")
        );
        // RFC 7252 §6.2: coaps defaults to port 5684.
        assert!(
            matches!(Target::of("coaps://127.0.0.1/x"), Ok(Target::Addr(a)) if a == addr("127.0.0.1:5684"))
        );
        assert!(matches!(
            Target::of("coap+tcp://h/"),
            Err(ClientError::UnsupportedScheme)
        ));
        assert!(matches!(
            Target::of("http://h/"),
            Err(ClientError::UnsupportedScheme)
        ));
        assert!(matches!(
            Target::of("/relative"),
            Err(ClientError::InvalidUri(UriError::MissingScheme))
        ));
    }
}
