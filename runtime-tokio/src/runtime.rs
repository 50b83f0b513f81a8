//! The tokio half: sockets, timers and tasks.

use std::future::{pending, Future};
use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::pin::pin;

use coap_core::{Config, Handler, Method, NoServer};
use tokio::net::UdpSocket;

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
        let socket = UdpSocket::bind(addr).await?;
        let local = socket.local_addr()?;
        let (commands, inbox) = glue::command_channel();
        let driver = Driver::new(config, NoServer, Role::Client)?;
        tokio::spawn(run(socket, driver, inbox, pending()));
        Ok(Client {
            handle: Handle::new(commands, local, resolve),
        })
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
            local,
            config,
            commands,
            inbox,
        })
    }

    /// The local address of the socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A client on this endpoint (same socket, same port). Its requests go out while the
    /// server is being served.
    pub fn client(&self) -> Client {
        Client {
            handle: Handle::new(self.commands.clone(), self.local, resolve),
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
    pub async fn serve<H: Handler<SocketAddr>>(self, handler: H) -> io::Result<()> {
        self.serve_with_shutdown(handler, pending()).await
    }

    /// Serves requests until `shutdown` completes, then returns `Ok(())`. Requests of this
    /// endpoint's clients still waiting then fail with [`ClientError::Closed`].
    pub async fn serve_with_shutdown<H: Handler<SocketAddr>>(
        self,
        handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let driver = Driver::new(self.config, handler, Role::Server)?;
        run(self.socket, driver, self.inbox, shutdown).await
    }
}

/// The endpoint loop: pump datagrams between the socket and the driver in batches, then
/// wait for the socket, the core's next deadline, a command or the shutdown.
async fn run<H: Handler<SocketAddr>>(
    socket: UdpSocket,
    mut driver: Driver<H>,
    commands: CommandReceiver,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut io = BatchIo::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let wait = match glue::pump(&mut driver, &mut io, &socket, &commands) {
            ControlFlow::Break(result) => return result,
            ControlFlow::Continue(wait) => wait,
        };
        let deadline = driver.deadline();
        let input = tokio::select! {
            () = &mut shutdown => Input::Shutdown,
            r = ready(&socket, wait) => Input::Ready(r),
            () = sleep_until(deadline) => Input::Timeout,
            c = commands.recv(), if driver.accepts_commands() => Input::Command(c.ok()),
        };
        if let ControlFlow::Break(result) = driver.step(input, &[], &commands) {
            return result;
        }
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
