//! The application's endpoint types, written once for every [`Runtime`]: [`Client`] (a
//! handle on an endpoint whose loop runs in the background) and [`Server`] (bind, then
//! serve a handler). `coap-tokio` and `coap-smol` name them for their runtime
//! (`coap_tokio::Client` is `Client<Tokio>`).

use std::future::{pending, Future};
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;

use coap_core::{Config, Handler, Method, NoServer};

use crate::client::{Handle, RequestBuilder};
use crate::command::{command_channel, CommandReceiver, CommandSender};
use crate::credentials::{Credential, Credentials};
use crate::driver::{Driver, Role};
use crate::dtls::{Dtls, DtlsConfig, Psk, PskStore};
use crate::event_loop::{run, Sockets};
use crate::multicast::{group_socket, unicast_socket, Group};
use crate::oscore::{Oscore, Peer, SecurityMap};
use crate::responder::{Notifier, Responder};
use crate::response::{ClientError, Response};
use crate::runtime::{bind, bind_client, register, AsyncUdpSocket, Runtime};

/// A CoAP client: a handle on an endpoint whose loop runs in the background (a task or a
/// thread, as the runtime `R` spawns it). Cheap to clone; the endpoint closes when the
/// last clone (and the last request) is gone.
#[derive(Clone, Debug)]
pub struct Client<R> {
    handle: Handle,
    runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime> Client<R> {
    /// A client endpoint on an ephemeral port that reaches IPv4 and IPv6 servers alike: a
    /// dual-stack `[::]:0` socket (IPv4 peers as IPv4-mapped addresses, RFC 4291
    /// §2.5.5.2), or `0.0.0.0:0` on a host without IPv6. The default [`Config`]. With
    /// tokio: must be called within a runtime with I/O and time enabled.
    ///
    /// ```no_run
    /// # async fn f<R: coap_std::Runtime>() -> Result<(), coap_std::ClientError> {
    /// let client = coap_std::Client::<R>::new().await?;
    /// let v4 = client.get("coap://127.0.0.1/hello").await?.error_for_status()?;
    /// let v6 = client.get("coap://[::1]/hello").await?.error_for_status()?;
    /// # let _ = (v4, v6); Ok(()) }
    /// ```
    pub async fn new() -> Result<Self, ClientError> {
        Self::new_with(Config::default()).await
    }

    /// [`Client::new`] with `config`.
    pub async fn new_with(config: Config) -> Result<Self, ClientError> {
        Ok(Self::start(dual_stack::<R>()?, config, None, None)?)
    }

    /// Binds a client endpoint to `addr` (e.g. `0.0.0.0:0` or `[::]:0`) with the default
    /// [`Config`]. `[::]` is bound dual-stack: the client reaches IPv6 and IPv4 peers.
    /// With tokio: must be called within a runtime with I/O and time enabled.
    pub async fn bind(addr: SocketAddr) -> Result<Self, ClientError> {
        Self::bind_with(addr, Config::default()).await
    }

    /// Binds a client endpoint with `config` (NSTART, timeouts, ...).
    pub async fn bind_with(addr: SocketAddr, config: Config) -> Result<Self, ClientError> {
        Ok(Self::start(bind_client::<R>(addr)?, config, None, None)?)
    }

    /// Binds a client endpoint that also speaks CoAP over DTLS (RFC 7252 §9): a
    /// `coaps://` request starts a PSK handshake (TLS_PSK_WITH_AES_128_CCM_8, §9.1.3.1)
    /// with `identity` and `key` — or reuses the session with that server — from a second
    /// socket bound to `addr`'s IP and an ephemeral port. A failed handshake fails the
    /// request with [`ClientError::Handshake`]; nothing is sent in clear.
    pub async fn bind_with_psk(
        addr: SocketAddr,
        config: Config,
        identity: &[u8],
        key: &[u8],
    ) -> Result<Self, ClientError> {
        let psk = Psk {
            identity: identity.to_vec(),
            key: key.to_vec(),
        };
        let dtls = Some((psk, DtlsConfig::default()));
        Ok(Self::start(bind_client::<R>(addr)?, config, None, dtls)?)
    }

    /// [`Client::bind_with_psk`] with DTLS limits and timers of choice (e.g. a shorter
    /// handshake deadline).
    pub async fn bind_with_psk_config(
        addr: SocketAddr,
        config: Config,
        psk: Psk,
        dtls: DtlsConfig,
    ) -> Result<Self, ClientError> {
        Ok(Self::start(
            bind_client::<R>(addr)?,
            config,
            None,
            Some((psk, dtls)),
        )?)
    }

    /// Binds a client endpoint that protects requests with OSCORE (RFC 8613) where
    /// `credentials` (aiocoap's format, see [`Credentials`]) map their URI to a security
    /// context; other requests go in plain CoAP.
    pub async fn bind_with_credentials(
        addr: SocketAddr,
        config: Config,
        credentials: &Credentials,
    ) -> Result<Self, ClientError> {
        Ok(Self::start(
            bind_client::<R>(addr)?,
            config,
            Some(credentials),
            None,
        )?)
    }

    /// Binds a client endpoint with any of: OSCORE contexts and DTLS PSKs from
    /// `credentials` (see [`Client::bind_with_credentials`]), and a PSK with DTLS settings
    /// for `coaps://` URIs the credentials say nothing about (see [`Client::bind_with_psk`]).
    pub async fn bind_with_security(
        addr: SocketAddr,
        config: Config,
        credentials: Option<&Credentials>,
        psk: Option<(Psk, DtlsConfig)>,
    ) -> Result<Self, ClientError> {
        Ok(Self::start(
            bind_client::<R>(addr)?,
            config,
            credentials,
            psk,
        )?)
    }

    fn start(
        main: R::Socket,
        config: Config,
        credentials: Option<&Credentials>,
        psk: Option<(Psk, DtlsConfig)>,
    ) -> io::Result<Self> {
        let local = main.local_addr()?;
        let (commands, inbox) = command_channel();
        let mut driver = Driver::new(config, NoServer, Role::Client)?;
        let mut security = SecurityMap::default();
        let mut wants_dtls = psk.is_some();
        if let Some(c) = credentials {
            let (oscore, map) = Oscore::load(c).map_err(io::Error::other)?;
            driver = driver.with_oscore(oscore);
            security = map;
            wants_dtls |= c
                .iter()
                .any(|(_, c)| matches!(c, Credential::DtlsPsk { .. }));
        }
        let mut handle = Handle::new(commands, local, R::resolve)
            .with_timer(crate::runtime::timer::<R>)
            .with_security(security)
            .with_reliable(crate::reliable::plain::pool::<R>(config.request_timeout));
        // The coaps socket exists only when there are DTLS credentials to use it with.
        let mut coaps = None;
        if wants_dtls {
            let (psk, dtls) = match psk {
                Some((psk, dtls)) => (Some(psk), dtls),
                None => (None, DtlsConfig::default()),
            };
            coaps = Some(bind_client::<R>(SocketAddr::new(local.ip(), 0))?);
            driver = driver.with_dtls(Dtls::client(dtls)?);
            if let Some(psk) = psk {
                handle = handle.with_psk(psk);
            }
        }
        let sockets = Sockets {
            main,
            groups: Vec::new(),
            coaps,
        };
        R::spawn(async move {
            // A client's loop ends when its last handle is gone; a socket error then fails
            // the waiting requests, which is all there is to report.
            let _ = run::<R, _>(sockets, driver, inbox, pending()).await;
        })?;
        Ok(Client {
            handle,
            runtime: PhantomData,
        })
    }

    /// The local address of the endpoint's socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// Trusts the CAs of `tls` for `coaps+tcp://` servers (CoAP over TLS, RFC 8323 §9);
    /// without it such requests fail.
    pub fn with_tls(mut self, tls: crate::reliable::TlsClientConfig) -> Self {
        self.handle = self.handle.with_tls(tls);
        self
    }

    /// Resolves `host` (with `port`) to `addrs` instead of asking the system resolver,
    /// like a hosts file entry (or curl's `--resolve`). Requests to the name try the
    /// addresses in turn as for any name ([`crate::happy_eyeballs`]).
    pub fn with_host(mut self, host: &str, port: u16, addrs: Vec<SocketAddr>) -> Self {
        self.handle = self.handle.with_host(host, port, addrs);
        self
    }

    /// How requests to a name with several addresses move on from one that does not
    /// answer (default: after an ICMP error, or 2 s without an answer).
    pub fn with_fallback(mut self, fallback: crate::Fallback) -> Self {
        self.handle = self.handle.with_fallback(fallback);
        self
    }

    /// A confirmable GET of `uri` (`coap://host[:port]/path?query`).
    pub async fn get(&self, uri: &str) -> Result<Response, ClientError> {
        self.handle.get(uri).await
    }

    /// Runs EDHOC (RFC 9528) with the server of `uri` (see [`Handle::edhoc`]); requests
    /// to it are then protected with the session's OSCORE context. (With `edhoc-oscore`
    /// credentials the first request runs it by itself.)
    pub async fn edhoc(
        &self,
        uri: &str,
        config: &crate::edhoc::config::EdhocOscore,
    ) -> Result<(), ClientError> {
        self.handle.edhoc(uri, config).await
    }

    /// A request to build further (payload, options, NON, timeout), then send.
    pub fn request(&self, method: Method, uri: &str) -> RequestBuilder {
        self.handle.request(method, uri)
    }

    /// A POST of `uri` to build further (`.payload(..)`, `.content_format(..)`), then
    /// `.send()`.
    pub fn post(&self, uri: &str) -> RequestBuilder {
        self.request(Method::Post, uri)
    }

    /// A PUT of `uri` to build further, then `.send()`.
    pub fn put(&self, uri: &str) -> RequestBuilder {
        self.request(Method::Put, uri)
    }

    /// A DELETE of `uri` to build further, then `.send()`.
    pub fn delete(&self, uri: &str) -> RequestBuilder {
        self.request(Method::Delete, uri)
    }

    /// A FETCH of `uri` (RFC 8132) to build further, then `.send()`.
    pub fn fetch(&self, uri: &str) -> RequestBuilder {
        self.request(Method::Fetch, uri)
    }

    /// A PATCH of `uri` (RFC 8132) to build further, then `.send()`.
    pub fn patch(&self, uri: &str) -> RequestBuilder {
        self.request(Method::Patch, uri)
    }

    /// Observes `uri` (a GET with Observe=0, RFC 7641 §3.1): the first response and then
    /// the notifications, through [`crate::Observation::next`]. Each call is an
    /// observation of its own (a token of its own, RFC 7641 §4.1), so tasks sharing one
    /// client may observe the same resource.
    ///
    /// ```no_run
    /// # async fn f<R: coap_std::Runtime>(client: coap_std::Client<R>) -> Result<(), coap_std::ClientError> {
    /// let mut temp = client.observe("coap://[::1]/temp").await?;
    /// while let Some(notification) = temp.next().await {
    ///     println!("{:?}", notification?.payload_str());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn observe(&self, uri: &str) -> Result<crate::Observation, ClientError> {
        self.request(Method::Get, uri).observe().await
    }
}

/// A dual-stack socket on an ephemeral port (`IPV6_V6ONLY` off, whatever the host's
/// default), or an IPv4 one where IPv6 is missing.
fn dual_stack<R: Runtime>() -> io::Result<R::Socket> {
    bind_client::<R>(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)))
        .or_else(|_| bind::<R>(SocketAddr::from(([0, 0, 0, 0], 0))))
}

/// A CoAP server endpoint: bind, then [`Server::serve`] a handler (e.g. a
/// [`crate::Router`]) on the caller's executor.
#[derive(Debug)]
pub struct Server<R: Runtime> {
    sockets: Sockets<R::Socket>,
    /// OSCORE contexts (RFC 8613), if any, and which URIs its clients protect.
    oscore: Option<Oscore>,
    security: SecurityMap,
    /// The session tables of the coaps socket (RFC 7252 §9), if DTLS is served.
    dtls: Option<Dtls>,
    /// The EDHOC Responder (RFC 9528), if the credentials have `edhoc-oscore` entries.
    edhoc: Option<Box<crate::edhoc::server::StdResponder>>,
    local: SocketAddr,
    config: Config,
    commands: CommandSender,
    inbox: CommandReceiver,
}

impl<R: Runtime> Server<R> {
    /// Binds a server endpoint to `addr` with the default [`Config`].
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Self::bind_with(addr, Config::default()).await
    }

    /// Binds a server endpoint with `config`. A public server tunes there what keeps
    /// vanished or hostile clients from locking others out (issue 26): the CON cadence of
    /// notifications and the retransmissions before a silent observer is dropped
    /// (`observe_con_every`, `observe_con_interval`, `observe_max_retransmit`; RFC 7641
    /// §4.5), the observers one address may hold (`max_observers_per_peer`, §4.1), and the
    /// shares of the slot pool that waiting exchanges of one address and of all may take
    /// (`peer_slot_share_percent`, `held_slot_share_percent`).
    pub async fn bind_with(addr: SocketAddr, config: Config) -> io::Result<Self> {
        Self::new(bind::<R>(addr)?, Vec::new(), config)
    }

    /// Binds a server endpoint that also listens on multicast `groups` (RFC 7252 §8) on the
    /// same port: requests to a group are answered after a random leisure
    /// (`Config::default_leisure`), from the unicast address, and errors to them are
    /// suppressed unless asked for (the rules live in `coap_core`). Bind `addr` to a
    /// specific address or the wildcard; the port is shared with the group sockets.
    pub async fn bind_multicast(
        addr: SocketAddr,
        config: Config,
        groups: &[Group],
    ) -> io::Result<Self> {
        let main = register::<R>(unicast_socket(addr)?)?;
        let port = main.local_addr()?.port();
        let groups = groups
            .iter()
            .map(|g| register::<R>(group_socket(g, port)?))
            .collect::<io::Result<Vec<_>>>()?;
        Self::new(main, groups, config)
    }

    /// A server endpoint on a socket already bound and registered (the shards of
    /// [`crate::Sharded`]).
    pub(crate) fn from_socket(main: R::Socket, config: Config) -> io::Result<Self> {
        Self::new(main, Vec::new(), config)
    }

    fn new(main: R::Socket, groups: Vec<R::Socket>, config: Config) -> io::Result<Self> {
        let local = main.local_addr()?;
        let (commands, inbox) = command_channel();
        Ok(Server {
            sockets: Sockets {
                main,
                groups,
                coaps: None,
            },
            oscore: None,
            security: SecurityMap::default(),
            dtls: None,
            edhoc: None,
            local,
            config,
            commands,
            inbox,
        })
    }

    /// Accepts OSCORE (RFC 8613) with the security contexts `credentials` name (aiocoap's
    /// format: a server lists one `":label": {"oscore": {"basedir": ..}}` entry per
    /// client). Verified requests reach the handler from `Peer { security: Oscore(..) }`
    /// and are answered protected; plain requests stay plain. The server's
    /// [`Server::client`] protects requests to URIs the credentials map to a context.
    ///
    /// With `edhoc-oscore` entries (RFC 9528), the server also answers EDHOC at
    /// `/.well-known/edhoc` as the entries' `own_cred`, accepting the clients their
    /// `peer_cred` names, with and without the combined request (RFC 9668); each session's
    /// OSCORE context then serves that client's requests.
    pub fn with_credentials(mut self, credentials: &Credentials) -> io::Result<Self> {
        let (oscore, map) = Oscore::load(credentials).map_err(io::Error::other)?;
        self.edhoc = crate::edhoc::server::responder(credentials).map_err(io::Error::other)?;
        self.oscore = Some(oscore);
        self.security = map;
        Ok(self)
    }

    /// Also serves CoAP over DTLS (RFC 7252 §9) on a second socket bound to `coaps_addr`
    /// (port 5684 by convention, §6.2): clients handshake with a PSK that `store` finds by
    /// the identity they present (RFC 4279 §2), with a stateless cookie exchange first
    /// (RFC 6347 §4.2.1). Requests arriving over a session reach the handler from
    /// `Peer { security: Dtls(serial) }` and are answered over that session only. The
    /// server's [`Server::client`] can then make `coaps://` requests too, with the PSKs of
    /// the server's credentials.
    pub async fn with_dtls(
        mut self,
        coaps_addr: SocketAddr,
        store: impl PskStore,
        config: DtlsConfig,
    ) -> io::Result<Self> {
        self.sockets.coaps = Some(bind::<R>(coaps_addr)?);
        self.dtls = Some(Dtls::server(config, store)?);
        Ok(self)
    }

    /// The local address of the coaps socket, if DTLS is served.
    pub fn dtls_local_addr(&self) -> Option<SocketAddr> {
        self.sockets
            .coaps
            .as_ref()
            .and_then(|s| s.local_addr().ok())
    }

    /// The local address of the socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A client on this endpoint (same socket, same port). Its requests go out while the
    /// server is being served.
    pub fn client(&self) -> Client<R> {
        Client {
            handle: Handle::new(self.commands.clone(), self.local, R::resolve)
                .with_timer(crate::runtime::timer::<R>)
                .with_security(self.security.clone())
                .with_reliable(crate::reliable::plain::pool::<R>(
                    self.config.request_timeout,
                )),
            runtime: PhantomData,
        }
    }

    /// A handle to answer deferred requests (the handler returned `Outcome::Defer`) from
    /// another task.
    pub fn responder(&self) -> Responder {
        Responder::new(self.commands.clone())
    }

    /// A handle to notify the observers of a resource (RFC 7641) from another task.
    pub fn notifier(&self) -> Notifier {
        Notifier::new(self.commands.clone())
    }

    /// Serves an async [`crate::app::Router`] until a socket error: each request runs
    /// in a task of its own, answered piggybacked if done within
    /// `Config::separate_ack_delay`, else after an empty ACK (RFC 7252 §5.2.2).
    pub async fn serve_router(self, router: crate::app::Router<()>) -> io::Result<()> {
        self.serve_router_with_shutdown(router, pending()).await
    }

    /// [`Server::serve_router`] until `shutdown` completes.
    pub async fn serve_router_with_shutdown(
        self,
        router: crate::app::Router<()>,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let handler = crate::app::AppHandler::<R>::new(router, self.responder());
        self.serve_with_shutdown(handler, shutdown).await
    }

    /// Serves requests with `handler` until a socket error.
    pub async fn serve<H: Handler<Peer>>(self, handler: H) -> io::Result<()> {
        self.serve_with_shutdown(handler, pending()).await
    }

    /// Serves requests until `shutdown` completes, then returns `Ok(())`. Requests of this
    /// endpoint's clients still waiting then fail with [`ClientError::Closed`].
    pub async fn serve_with_shutdown<H: Handler<Peer>>(
        self,
        handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let mut driver = Driver::new(self.config, handler, Role::Server)?;
        if let Some(oscore) = self.oscore {
            driver = driver.with_oscore(oscore);
        }
        if let Some(dtls) = self.dtls {
            driver = driver.with_dtls(dtls);
        }
        if let Some(edhoc) = self.edhoc {
            driver = driver.with_edhoc(edhoc);
        }
        run::<R, H>(self.sockets, driver, self.inbox, shutdown).await
    }
}
