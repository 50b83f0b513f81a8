//! What the std endpoint needs of an async runtime, and nothing more: a UDP socket it can
//! wait on, a timer, a way to run a client's loop in the background and a name resolver.
//! `coap-tokio` and `coap-smol` each implement [`Runtime`] on a marker type; the endpoint
//! loop ([`crate::Client`], [`crate::Server`]) is written once against it.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::batch::NonBlockingSocket;
use crate::client::ResolveFuture;

/// An async runtime as the endpoint loop uses it. Implemented on a (zero-sized) marker
/// type: the endpoint types are generic over it (`Client<Tokio>`) and call its associated
/// functions, so no runtime object is stored or passed around.
pub trait Runtime: fmt::Debug + Send + Sync + 'static {
    /// The runtime's UDP socket.
    type Socket: AsyncUdpSocket;
    /// A timer future (what [`Runtime::sleep_until`] returns); its output is ignored.
    type Sleep: Future + Send + 'static;

    /// Registers a bound, non-blocking std socket with the runtime's reactor.
    fn wrap(socket: std::net::UdpSocket) -> io::Result<Self::Socket>;

    /// A future that completes at `deadline`.
    fn sleep_until(deadline: Instant) -> Self::Sleep;

    /// Runs a client endpoint's loop in the background until it returns (when the last
    /// handle is gone).
    fn spawn(task: impl Future<Output = ()> + Send + 'static) -> io::Result<()>;

    /// Resolves a host name from a URI (`coap://example.net/`) to socket addresses,
    /// without blocking the loop.
    fn resolve(host: String, port: u16) -> ResolveFuture;

    /// The runtime's TCP stream (CoAP over TCP and TLS, RFC 8323).
    type TcpStream: AsyncTcpStream;
    /// The runtime's TCP listener.
    type TcpListener: AsyncTcpListener<Stream = Self::TcpStream>;

    /// Registers a bound, listening, non-blocking std listener with the runtime's reactor.
    fn listen_tcp(listener: std::net::TcpListener) -> io::Result<Self::TcpListener>;

    /// Opens a TCP connection to `addr` without blocking the loop.
    fn connect_tcp(addr: SocketAddr) -> ConnectFuture<Self::TcpStream>;
}

/// The future [`Runtime::connect_tcp`] returns.
pub type ConnectFuture<S> = std::pin::Pin<Box<dyn Future<Output = io::Result<S>> + Send>>;

/// A connected TCP stream of a [`Runtime`], non-blocking, with readiness the connection
/// task waits on (as [`AsyncUdpSocket`]): `coap-std` retries a `WouldBlock` after the
/// stream's next readiness. `Ok(0)` from a read is the end of the stream.
pub trait AsyncTcpStream: fmt::Debug + Send + Sync + 'static {
    /// Ready when bytes (or the end of the stream) may be waiting.
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Ready when the send buffer may have room.
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Reads what has arrived, or `WouldBlock`.
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes what fits, or `WouldBlock`.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
}

/// A listening TCP socket of a [`Runtime`].
pub trait AsyncTcpListener: fmt::Debug + Send + Sync + 'static {
    /// The accepted connections' type.
    type Stream: AsyncTcpStream;

    /// The next connection, with the peer's address.
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Stream, SocketAddr)>>;
}

/// A UDP socket of a [`Runtime`]: the non-blocking calls [`crate::pump`] makes, plus
/// readiness the loop can wait on.
pub trait AsyncUdpSocket: NonBlockingSocket + fmt::Debug + Send + Sync + 'static {
    /// Ready when a datagram may be waiting; a later `WouldBlock` from
    /// [`NonBlockingSocket::try_recv_from`] makes the next poll wait for a new one.
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Ready when the send buffer has room again.
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// The address the socket is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// The runtime's timer as a [`crate::Timer`] (for a client's staggered attempts).
pub(crate) fn timer<R: Runtime>(
    deadline: Instant,
) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        R::sleep_until(deadline).await;
    })
}

/// Binds a UDP socket to `addr` and hands it to the runtime.
pub(crate) fn bind<R: Runtime>(addr: SocketAddr) -> io::Result<R::Socket> {
    register::<R>(std::net::UdpSocket::bind(addr)?)
}

/// Binds a client's UDP socket to `addr`: the unspecified IPv6 address is bound
/// dual-stack (IPV6_V6ONLY off, whatever the system default, e.g. Linux's
/// `net.ipv6.bindv6only`), so that one socket reaches IPv6 peers and IPv4 ones as
/// IPv4-mapped addresses (RFC 4291 §2.5.5.2) — what address fallback between the families
/// of a name (`happy_eyeballs`) and a proxy's upstream leg rely on.
pub(crate) fn bind_client<R: Runtime>(addr: SocketAddr) -> io::Result<R::Socket> {
    match addr {
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            use socket2::{Domain, Protocol, Socket, Type};
            let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
            s.set_only_v6(false)?;
            s.bind(&addr.into())?;
            register::<R>(s.into())
        }
        _ => bind::<R>(addr),
    }
}

/// Makes a bound socket non-blocking (which tokio leaves to the caller) and hands it to
/// the runtime.
pub(crate) fn register<R: Runtime>(socket: std::net::UdpSocket) -> io::Result<R::Socket> {
    socket.set_nonblocking(true)?;
    // ICMP errors fail what waits on an unreachable peer at once (Linux; see `icmp`).
    crate::icmp::enable(&socket)?;
    R::wrap(socket)
}
