//! CoAP (RFC 7252) over UDP on the smol ecosystem ([async-io], [futures-lite],
//! [async-channel]): a thin adapter that drives the sans-IO [`coap_core::Endpoint`] from
//! one socket, with an async client and server on top. Usable from `smol::block_on` and
//! any other executor: sockets and timers come from async-io's reactor.
//!
//! The API is the one of `coap-tokio`, whose runtime-independent half ([`glue`]) this
//! crate shares; only the loop, the socket and the resolver are smol's.
//!
//! ```no_run
//! use coap_smol::{Client, Code, Method};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let client = Client::bind("0.0.0.0:0".parse()?).await?;
//!     let temp = client.get("coap://127.0.0.1/temp").await?;
//!     assert_eq!(temp.code, Code::CONTENT);
//!     let changed = client.request(Method::Put, "coap://127.0.0.1/led").payload("on").send().await?;
//!     println!("{}", changed.code);
//!     Ok(())
//! })
//! # }
//! ```
//!
//! [async-io]: https://docs.rs/async-io
//! [futures-lite]: https://docs.rs/futures-lite
//! [async-channel]: https://docs.rs/async-channel
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::{pending, Future};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::ops::ControlFlow;
use std::pin::pin;

use async_io::{Async, Timer};
use coap_core::NoServer;
use coap_tokio::glue::credentials::Credential;
use coap_tokio::glue::dtls::Dtls;
use coap_tokio::glue::multicast::{group_socket, unicast_socket};
use coap_tokio::glue::oscore::{Oscore, SecurityMap};
use coap_tokio::glue::{
    BatchIo, CommandReceiver, CommandSender, Driver, Handle, Input, NonBlockingSocket, Role, Wait,
};
use futures_lite::future::race;

pub use coap_tokio::coap_core;
pub use coap_tokio::glue;
pub use coap_tokio::{
    ClientError, Code, Config, ContentFormat, Credentials, CredentialsError, Delivery, DtlsConfig,
    Group, GroupResponses, Handler, IncomingRequest, Interface, Method, Notifier, Observation,
    OptionNumber, Outcome, Peer, Psk, PskStore, Reply, RequestBuilder, Resource, RespondError,
    Responder, Response, ResponseHandle, ResponseWriter, Route, Router, Security,
};

/// A CoAP client: a handle on an endpoint whose loop runs on a thread of its own (under
/// `async_io::block_on`). Cheap to clone; the endpoint and its thread end when the last
/// clone (and the last request) is gone.
#[derive(Clone, Debug)]
pub struct Client {
    handle: Handle,
}

impl Client {
    /// Binds a client endpoint to `addr` (e.g. `0.0.0.0:0` or `[::]:0`) with the default
    /// [`Config`].
    pub async fn bind(addr: SocketAddr) -> io::Result<Client> {
        Client::bind_with(addr, Config::default()).await
    }

    /// Binds a client endpoint with `config` (NSTART, timeouts, ...).
    pub async fn bind_with(addr: SocketAddr, config: Config) -> io::Result<Client> {
        Client::start(addr, config, None, None).await
    }

    /// Binds a client endpoint that also speaks CoAP over DTLS (RFC 7252 §9) with this
    /// PSK; see `coap_tokio::Client::bind_with_psk`.
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

    /// Binds a client endpoint that protects requests with OSCORE (RFC 8613) where
    /// `credentials` map their URI to a security context; see
    /// `coap_tokio::Client::bind_with_credentials`.
    pub async fn bind_with_credentials(
        addr: SocketAddr,
        config: Config,
        credentials: &Credentials,
    ) -> io::Result<Client> {
        Client::start(addr, config, Some(credentials), None).await
    }

    async fn start(
        addr: SocketAddr,
        config: Config,
        credentials: Option<&Credentials>,
        psk: Option<(Psk, DtlsConfig)>,
    ) -> io::Result<Client> {
        let socket = Async::<UdpSocket>::bind(addr)?;
        let local = socket.get_ref().local_addr()?;
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
            coaps = Some(Async::<UdpSocket>::bind(SocketAddr::new(local.ip(), 0))?);
            driver = driver.with_dtls(Dtls::client(dtls)?);
            if let Some(psk) = psk {
                handle = handle.with_psk(psk);
            }
        }
        std::thread::Builder::new()
            .name("coap-smol-client".into())
            .spawn(move || {
                async_io::block_on(run(socket, Vec::new(), coaps, driver, inbox, pending()))
            })?;
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
    Box::pin(blocking::unblock(move || {
        Ok((host.as_str(), port).to_socket_addrs()?.collect())
    }))
}

/// A CoAP server endpoint: bind, then [`Server::serve`] a handler (e.g. a [`Router`]).
#[derive(Debug)]
pub struct Server {
    socket: Async<UdpSocket>,
    /// One socket per joined group (RFC 7252 §8).
    groups: Vec<Async<UdpSocket>>,
    /// OSCORE contexts (RFC 8613), if any, and which URIs its clients protect.
    oscore: Option<Oscore>,
    security: SecurityMap,
    /// The coaps socket and its session tables (RFC 7252 §9), if DTLS is served.
    dtls: Option<(Async<UdpSocket>, Dtls)>,
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
        let socket = Async::<UdpSocket>::bind(addr)?;
        let local = socket.get_ref().local_addr()?;
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
    /// same port; see `coap_tokio::Server::bind_multicast`.
    pub async fn bind_multicast(
        addr: SocketAddr,
        config: Config,
        groups: &[Group],
    ) -> io::Result<Server> {
        let socket = Async::new(unicast_socket(addr)?)?;
        let local = socket.get_ref().local_addr()?;
        let groups = groups
            .iter()
            .map(|g| Async::new(group_socket(g, local.port())?))
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

    /// Accepts OSCORE (RFC 8613) with the contexts `credentials` name; see
    /// `coap_tokio::Server::with_credentials`.
    pub fn with_credentials(mut self, credentials: &Credentials) -> io::Result<Server> {
        let (oscore, map) = Oscore::load(credentials).map_err(io::Error::other)?;
        self.oscore = Some(oscore);
        self.security = map;
        Ok(self)
    }

    /// Also serves CoAP over DTLS (RFC 7252 §9) on a socket bound to `coaps_addr`, with
    /// keys from `store`; see `coap_tokio::Server::with_dtls`.
    pub async fn with_dtls(
        mut self,
        coaps_addr: SocketAddr,
        store: impl PskStore,
        config: DtlsConfig,
    ) -> io::Result<Server> {
        let socket = Async::<UdpSocket>::bind(coaps_addr)?;
        self.dtls = Some((socket, Dtls::server(config, store)?));
        Ok(self)
    }

    /// The local address of the coaps socket, if DTLS is served.
    pub fn dtls_local_addr(&self) -> Option<SocketAddr> {
        self.dtls
            .as_ref()
            .and_then(|(s, _)| s.get_ref().local_addr().ok())
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
    socket: Async<UdpSocket>,
    groups: Vec<Async<UdpSocket>>,
    coaps: Option<Async<UdpSocket>>,
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
        let mut wait = match glue::pump(&mut driver, &mut io, &Socket(&socket), &commands) {
            ControlFlow::Break(result) => return result,
            ControlFlow::Continue(wait) => wait,
        };
        if let Some(coaps) = &coaps {
            // Records in, the endpoint's answers into the sessions, then the records out.
            glue::dtls_recv(&mut driver, &Socket(coaps), &mut dtls_buf);
            wait = match glue::pump(&mut driver, &mut io, &Socket(&socket), &commands) {
                ControlFlow::Break(result) => return result,
                ControlFlow::Continue(wait) => wait,
            };
            glue::dtls_send(&mut driver, &Socket(coaps));
        }
        let (deadline, listen) = (driver.deadline(), driver.accepts_commands());
        let ready = async {
            Input::Ready(match wait {
                Wait::Input => socket.readable().await,
                Wait::Writable => socket.writable().await,
            })
        };
        let timer = async {
            deadline.map_or_else(Timer::never, Timer::at).await;
            Input::Timeout
        };
        let command = async {
            match listen {
                true => Input::Command(commands.recv().await.ok()),
                false => pending().await,
            }
        };
        let stop = async {
            shutdown.as_mut().await;
            Input::Shutdown
        };
        let group = async {
            match groups.is_empty() {
                true => pending().await,
                false => Input::GroupDatagram(recv_group(&groups, &mut group_buf).await),
            }
        };
        let secure = async {
            match &coaps {
                Some(s) => Input::Ready(s.readable().await),
                None => pending().await,
            }
        };
        let input = race(
            race(ready, timer),
            race(race(command, stop), race(group, secure)),
        )
        .await;
        if let ControlFlow::Break(result) = driver.step(input, &group_buf, &commands) {
            return result;
        }
    }
}

/// The next datagram from any of the group sockets.
async fn recv_group(
    groups: &[Async<UdpSocket>],
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr)> {
    std::future::poll_fn(|cx| {
        for g in groups {
            while g.poll_readable(cx).is_ready() {
                match g.get_ref().recv_from(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    r => return std::task::Poll::Ready(r),
                }
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// The socket as [`glue::pump`] uses it (async-io made it non-blocking).
struct Socket<'a>(&'a Async<UdpSocket>);

impl NonBlockingSocket for Socket<'_> {
    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.get_ref().recv_from(buf)
    }

    fn try_send_to(&self, buf: &[u8], peer: SocketAddr) -> io::Result<usize> {
        self.0.get_ref().send_to(buf, peer)
    }

    #[cfg(target_os = "linux")]
    fn try_io<R>(
        &self,
        _writable: bool,
        op: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        use std::os::fd::AsFd;
        // async-io keeps no readiness state to reset: `readable()`/`writable()` wait for
        // the next event.
        op(self.0.get_ref().as_fd())
    }
}
