//! CoAP (RFC 7252) over UDP on the smol ecosystem ([async-io], [futures-lite],
//! [async-channel]): a thin adapter that drives the sans-IO [`coap_core::Endpoint`] from
//! one socket, with an async client and server on top. Usable from `smol::block_on` and
//! any other executor: sockets and timers come from async-io's reactor.
//!
//! The API is the one of `coap-tokio`: both name the endpoint types of [`coap_std`] (also
//! re-exported as [`glue`]) for their runtime; this crate only implements
//! [`coap_std::Runtime`] for smol ([`Smol`]).
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

use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
#[cfg(target_os = "linux")]
use std::os::fd::{AsFd, BorrowedFd};
use std::task::{Context, Poll};
use std::time::Instant;

use async_io::{Async, Timer};
use coap_std::{
    AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, ConnectFuture, NonBlockingSocket,
    ResolveFuture, Runtime,
};

pub use coap_std as glue;
pub use coap_std::app;
pub use coap_std::coap_core;
pub use coap_std::{
    ClientError, Code, Config, ContentFormat, Credentials, CredentialsError, Delivery, DtlsConfig,
    Fallback, Group, GroupResponses, Handler, IncomingRequest, Interface, Method, Notifier,
    NotifyError, Observation, OptionNumber, OscoreRejection, Outcome, Peer, Progress, Psk,
    PskStore, Reply, RequestBuilder, Resource, RespondError, Responder, Response, ResponseHandle,
    ResponseWriter, Route, Router, Security, ShardedNotifier, StatusError, TcpConfig,
};

/// A CoAP client on smol: a handle on an endpoint whose loop runs on a thread of its own
/// (under `async_io::block_on`). Cheap to clone; the endpoint and its thread end when the
/// last clone (and the last request) is gone.
pub type Client = coap_std::Client<Smol>;

/// A CoAP server endpoint on smol: bind, then [`coap_std::Server::serve`] a handler (e.g. a
/// [`Router`]) on any executor.
pub type Server = coap_std::Server<Smol>;

/// A CoAP over TCP server on smol (`coap+tcp`, RFC 8323; see [`coap_std::TcpServer`]).
pub type TcpServer = coap_std::TcpServer<Smol>;

/// A server on one port over several endpoints, one per core (`SO_REUSEPORT`; see
/// [`coap_std::Sharded`]).
pub type Sharded = coap_std::Sharded<Smol>;

/// The smol runtime, as [`coap_std::Client`] and [`coap_std::Server`] use it: sockets and
/// timers from async-io's reactor, a thread per client loop, host names resolved on
/// `blocking`'s thread pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Smol;

impl Runtime for Smol {
    type Socket = Socket;
    type Sleep = Timer;

    fn wrap(socket: UdpSocket) -> io::Result<Socket> {
        Async::new(socket).map(Socket)
    }

    fn sleep_until(deadline: Instant) -> Timer {
        Timer::at(deadline)
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        // Any executor may call `Client::bind`, so the loop brings its own thread.
        std::thread::Builder::new()
            .name("coap-smol-client".into())
            .spawn(move || async_io::block_on(task))?;
        Ok(())
    }

    fn resolve(host: String, port: u16) -> ResolveFuture {
        Box::pin(blocking::unblock(move || {
            Ok((host.as_str(), port).to_socket_addrs()?.collect())
        }))
    }

    type TcpStream = TcpStream;
    type TcpListener = TcpListener;

    fn listen_tcp(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        Async::new(listener).map(TcpListener)
    }

    fn connect_tcp(addr: SocketAddr) -> ConnectFuture<TcpStream> {
        Box::pin(async move {
            let s = Async::<std::net::TcpStream>::connect(addr).await?;
            // Small messages (RFC 8323): no waiting for more bytes to fill a segment.
            s.get_ref().set_nodelay(true)?;
            Ok(TcpStream(s))
        })
    }
}

/// An async-io TCP stream as CoAP over TCP uses it (RFC 8323).
#[derive(Debug)]
pub struct TcpStream(Async<std::net::TcpStream>);

impl AsyncTcpStream for TcpStream {
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_readable(cx)
    }
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_writable(cx)
    }
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        std::io::Read::read(&mut self.0.get_ref(), buf)
    }
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        std::io::Write::write(&mut self.0.get_ref(), buf)
    }
}

/// An async-io TCP listener.
#[derive(Debug)]
pub struct TcpListener(Async<std::net::TcpListener>);

impl AsyncTcpListener for TcpListener {
    type Stream = TcpStream;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        loop {
            match self.0.get_ref().accept() {
                Ok((s, peer)) => {
                    s.set_nodelay(true)?;
                    return Poll::Ready(Async::new(s).map(|s| (TcpStream(s), peer)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::task::ready!(self.0.poll_readable(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// An async-io UDP socket as the endpoint loop uses it (async-io made it non-blocking).
#[derive(Debug)]
pub struct Socket(Async<UdpSocket>);

impl NonBlockingSocket for Socket {
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
        op: impl FnOnce(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        // async-io keeps no readiness state to reset: `poll_readable`/`poll_writable` wait
        // for the next event.
        op(self.0.get_ref().as_fd())
    }
}

impl AsyncUdpSocket for Socket {
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_readable(cx)
    }

    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_writable(cx)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }
}
