//! The tokio half: sockets, timers and tasks.

use std::future::{pending, Future};
use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::pin::pin;
use std::task::Poll;

use coap_core::{Config, Handler, Method, NoServer};
use tokio::net::UdpSocket;

use crate::glue::credentials::{Credential, Credentials};
use crate::glue::dtls::{Dtls, DtlsConfig, Psk, PskStore};
use crate::glue::multicast::{group_socket, unicast_socket, Group};
use crate::glue::oscore::{Oscore, Peer, SecurityMap};
use crate::glue::{
    self, BatchIo, ClientError, CommandReceiver, CommandSender, Driver, Handle, Input,
    NonBlockingSocket, Notifier, RequestBuilder, Responder, Response, Role, Wait,
};

/// A CoAP client: a handle on an endpoint whose loop runs as a tokio task. Cheap to clone;
/// the endpoint closes when the last clone (and the last request) is gone.
#[derive(Clone, Debug)]
pub struct Client {
    handle: Handle,
}

impl Client {
    /// Binds a client endpoint to `addr` (e.g. `0.0.0.0:0` or `[::]:0`) with the default
    /// [`Config`]. Must be called within a tokio runtime with I/O and time enabled.
    pub async fn bind(addr: SocketAddr) -> io::Result<Client> {
        Client::bind_with(addr, Config::default()).await
    }

    /// Binds a client endpoint with `config` (NSTART, timeouts, ...).
    pub async fn bind_with(addr: SocketAddr, config: Config) -> io::Result<Client> {
        Client::start(addr, config, None, None).await
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
    ) -> io::Result<Client> {
        let psk = Psk {
            identity: identity.to_vec(),
            key: key.to_vec(),
        };
        Client::start(addr, config, None, Some((psk, DtlsConfig::default()))).await
    }

    /// [`Client::bind_with_psk`] with DTLS limits and timers of choice (e.g. a shorter
    /// handshake deadline).
    pub async fn bind_with_psk_config(
        addr: SocketAddr,
        config: Config,
        psk: Psk,
        dtls: DtlsConfig,
    ) -> io::Result<Client> {
        Client::start(addr, config, None, Some((psk, dtls))).await
    }

    /// Binds a client endpoint that protects requests with OSCORE (RFC 8613) where
    /// `credentials` (aiocoap's format, see [`Credentials`]) map their URI to a security
    /// context; other requests go in plain CoAP.
    pub async fn bind_with_credentials(
        addr: SocketAddr,
        config: Config,
        credentials: &Credentials,
    ) -> io::Result<Client> {
        Client::start(addr, config, Some(credentials), None).await
    }

    /// Binds a client endpoint with any of: OSCORE contexts and DTLS PSKs from
    /// `credentials` (see [`Client::bind_with_credentials`]), and a PSK with DTLS settings
    /// for `coaps://` URIs the credentials say nothing about (see [`Client::bind_with_psk`]).
    pub async fn bind_with_security(
        addr: SocketAddr,
        config: Config,
        credentials: Option<&Credentials>,
        psk: Option<(Psk, DtlsConfig)>,
    ) -> io::Result<Client> {
        Client::start(addr, config, credentials, psk).await
    }

    async fn start(
        addr: SocketAddr,
        config: Config,
        credentials: Option<&Credentials>,
        psk: Option<(Psk, DtlsConfig)>,
    ) -> io::Result<Client> {
        let socket = UdpSocket::bind(addr).await?;
        let local = socket.local_addr()?;
        let (commands, inbox) = glue::command_channel();
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
        let mut handle = Handle::new(commands, local, resolve).with_security(security);
        // The coaps socket exists only when there are DTLS credentials to use it with.
        let mut coaps = None;
        if wants_dtls {
            let (psk, dtls) = match psk {
                Some((psk, dtls)) => (Some(psk), dtls),
                None => (None, DtlsConfig::default()),
            };
            coaps = Some(UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await?);
            driver = driver.with_dtls(Dtls::client(dtls)?);
            if let Some(psk) = psk {
                handle = handle.with_psk(psk);
            }
        }
        tokio::spawn(run(socket, Vec::new(), coaps, driver, inbox, pending()));
        Ok(Client { handle })
    }

    /// The local address of the endpoint's socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// A confirmable GET of `uri` (`coap://host[:port]/path?query`).
    pub async fn get(&self, uri: &str) -> Result<Response, ClientError> {
        self.handle.get(uri).await
    }

    /// A request to build further (payload, options, NON, timeout), then send.
    pub fn request(&self, method: Method, uri: &str) -> RequestBuilder {
        self.handle.request(method, uri)
    }
}

fn resolve(host: String, port: u16) -> glue::ResolveFuture {
    Box::pin(async move {
        Ok(tokio::net::lookup_host((host.as_str(), port))
            .await?
            .collect())
    })
}

/// A CoAP server endpoint: bind, then [`Server::serve`] a handler (e.g. a [`crate::Router`]).
#[derive(Debug)]
pub struct Server {
    socket: UdpSocket,
    /// One socket per joined group (RFC 7252 §8).
    groups: Vec<UdpSocket>,
    /// OSCORE contexts (RFC 8613), if any, and which URIs its clients protect.
    oscore: Option<Oscore>,
    security: SecurityMap,
    /// The coaps socket and its session tables (RFC 7252 §9), if DTLS is served.
    dtls: Option<(UdpSocket, Dtls)>,
    local: SocketAddr,
    config: Config,
    commands: CommandSender,
    inbox: CommandReceiver,
}

impl Server {
    /// Binds a server endpoint to `addr` with the default [`Config`].
    pub async fn bind(addr: SocketAddr) -> io::Result<Server> {
        Server::bind_with(addr, Config::default()).await
    }

    /// Binds a server endpoint with `config`.
    pub async fn bind_with(addr: SocketAddr, config: Config) -> io::Result<Server> {
        let socket = UdpSocket::bind(addr).await?;
        let local = socket.local_addr()?;
        let (commands, inbox) = glue::command_channel();
        Ok(Server {
            socket,
            groups: Vec::new(),
            oscore: None,
            security: SecurityMap::default(),
            dtls: None,
            local,
            config,
            commands,
            inbox,
        })
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
    ) -> io::Result<Server> {
        let socket = UdpSocket::from_std(unicast_socket(addr)?)?;
        let local = socket.local_addr()?;
        let groups = groups
            .iter()
            .map(|g| UdpSocket::from_std(group_socket(g, local.port())?))
            .collect::<io::Result<Vec<_>>>()?;
        let (commands, inbox) = glue::command_channel();
        Ok(Server {
            socket,
            groups,
            oscore: None,
            security: SecurityMap::default(),
            dtls: None,
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
    pub fn with_credentials(mut self, credentials: &Credentials) -> io::Result<Server> {
        let (oscore, map) = Oscore::load(credentials).map_err(io::Error::other)?;
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
    ) -> io::Result<Server> {
        let socket = UdpSocket::bind(coaps_addr).await?;
        self.dtls = Some((socket, Dtls::server(config, store)?));
        Ok(self)
    }

    /// The local address of the coaps socket, if DTLS is served.
    pub fn dtls_local_addr(&self) -> Option<SocketAddr> {
        self.dtls.as_ref().and_then(|(s, _)| s.local_addr().ok())
    }

    /// The local address of the socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A client on this endpoint (same socket, same port). Its requests go out while the
    /// server is being served.
    pub fn client(&self) -> Client {
        Client {
            handle: Handle::new(self.commands.clone(), self.local, resolve)
                .with_security(self.security.clone()),
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
        let coaps = match self.dtls {
            Some((socket, dtls)) => {
                driver = driver.with_dtls(dtls);
                Some(socket)
            }
            None => None,
        };
        run(
            self.socket,
            self.groups,
            coaps,
            driver,
            self.inbox,
            shutdown,
        )
        .await
    }
}

/// The endpoint loop: pump datagrams between the socket and the driver in batches, then
/// wait for the socket, the core's next deadline, a command or the shutdown.
async fn run<H: Handler<Peer>>(
    socket: UdpSocket,
    groups: Vec<UdpSocket>,
    coaps: Option<UdpSocket>,
    mut driver: Driver<H>,
    commands: CommandReceiver,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut io = BatchIo::new();
    let mut shutdown = pin!(shutdown);
    let mut group_buf = vec![0u8; glue::MAX_DATAGRAM];
    let mut dtls_buf = match coaps {
        Some(_) => vec![0u8; glue::MAX_DATAGRAM],
        None => Vec::new(),
    };
    loop {
        let mut wait = match glue::pump(&mut driver, &mut io, &socket, &commands) {
            ControlFlow::Break(result) => return result,
            ControlFlow::Continue(wait) => wait,
        };
        if let Some(coaps) = &coaps {
            // Records in (their plaintext into the endpoint), the endpoint's answers into
            // the sessions (the second pump), then the records out.
            glue::dtls_recv(&mut driver, coaps, &mut dtls_buf);
            wait = match glue::pump(&mut driver, &mut io, &socket, &commands) {
                ControlFlow::Break(result) => return result,
                ControlFlow::Continue(wait) => wait,
            };
            glue::dtls_send(&mut driver, coaps);
        }
        let deadline = driver.deadline();
        let input = tokio::select! {
            () = &mut shutdown => Input::Shutdown,
            r = ready(&socket, wait) => Input::Ready(r),
            () = sleep_until(deadline) => Input::Timeout,
            c = commands.recv(), if driver.accepts_commands() => Input::Command(c.ok()),
            g = recv_group(&groups, &mut group_buf), if !groups.is_empty() => {
                Input::GroupDatagram(g)
            }
            r = readable(coaps.as_ref()), if coaps.is_some() => Input::Ready(r),
        };
        if let ControlFlow::Break(result) = driver.step(input, &group_buf, &commands) {
            return result;
        }
    }
}

/// The next datagram from any of the group sockets.
async fn recv_group(groups: &[UdpSocket], buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    std::future::poll_fn(|cx| {
        for g in groups {
            let mut rb = tokio::io::ReadBuf::new(buf);
            if let Poll::Ready(r) = g.poll_recv_from(cx, &mut rb) {
                return Poll::Ready(r.map(|peer| (rb.filled().len(), peer)));
            }
        }
        Poll::Pending
    })
    .await
}

async fn readable(socket: Option<&UdpSocket>) -> io::Result<()> {
    match socket {
        Some(s) => s.readable().await,
        None => pending().await,
    }
}

async fn ready(socket: &UdpSocket, wait: Wait) -> io::Result<()> {
    match wait {
        Wait::Input => socket.readable().await,
        Wait::Writable => socket.writable().await,
    }
}

impl NonBlockingSocket for UdpSocket {
    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        UdpSocket::try_recv_from(self, buf)
    }

    fn try_send_to(&self, buf: &[u8], peer: SocketAddr) -> io::Result<usize> {
        UdpSocket::try_send_to(self, buf, peer)
    }

    #[cfg(target_os = "linux")]
    fn try_io<R>(
        &self,
        writable: bool,
        op: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        use std::os::fd::AsFd;
        let interest = if writable {
            tokio::io::Interest::WRITABLE
        } else {
            tokio::io::Interest::READABLE
        };
        UdpSocket::try_io(self, interest, || op(self.as_fd()))
    }
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => pending().await,
    }
}
