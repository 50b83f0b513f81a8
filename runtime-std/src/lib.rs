//! The std half of the CoAP adapters, written once for every async runtime: what is std
//! (sockets, threads, files, heap) but neither tokio's nor smol's.
//!
//! - The application's API: [`Client`] and [`Server`], generic over a [`Runtime`]
//!   (`coap_tokio::Client` is `Client<coap_tokio::Tokio>`), with [`RequestBuilder`],
//!   [`Response`], [`ClientError`], [`Observation`], [`GroupResponses`], and for deferred
//!   server responses and notifications [`Responder`], [`Notifier`], [`Reply`].
//! - Security: [`Credentials`] (aiocoap's credentials format), the OSCORE layer
//!   ([`oscore`], RFC 8613) and DTLS PSK sessions ([`dtls`], RFC 7252 §9).
//! - The endpoint loop: [`Driver`] owns the core [`coap_core::Endpoint`] and the table of
//!   waiting requests; handles talk to it over the [`Command`] channel; [`pump`] moves
//!   datagrams between a socket and the driver in batches ([`BatchIo`]: `recvmmsg` and
//!   `sendmmsg` on Linux); [`multicast`] binds group sockets (RFC 7252 §8).
//!
//! `docs/tour.md` in the repository is a guided tour from the first GET to observe,
//! block-wise, deferred replies, JSON/CBOR, OSCORE and DTLS, each step a program in
//! `examples/`.
//!
//! One client type and one server type serve every runtime, so that application code
//! is written once, generic over `R: Runtime`, and runs on tokio (`coap_tokio::Tokio`) and
//! smol (`coap_smol::Smol`) alike — the examples below are such code.
//!
//! # Errors and `?`
//!
//! Each role has one error type, and every call of the role converts into it with `?`:
//!
//! - the client's is [`ClientError`]: binding ([`Client::new`], [`Client::bind`]),
//!   requests, observations, and error codes through [`Response::error_for_status`]
//!   (as reqwest's `error_for_status`: [`ClientError::Status`] keeps the response);
//! - the server's is [`std::io::Error`]: binding, serving, and what deferred answers
//!   ([`RespondError`]) and notifications ([`NotifyError`], also of an async route's
//!   [`app::Observed`]) fail with converts into it.
//!
//! An application error that takes both roles needs two `From` impls; `Box<dyn Error>`
//! takes everything as it is:
//!
//! ```no_run
//! use std::net::SocketAddr;
//!
//! use coap_std::app::{get, Router};
//! use coap_std::{Client, ClientError, Code, Reply, ResponseHandle, Runtime, Server};
//!
//! /// The client role: one error type for everything.
//! async fn client_calls<R: Runtime>() -> Result<Vec<u8>, ClientError> {
//!     let client = Client::<R>::new().await?;
//!     let other = Client::<R>::bind("127.0.0.1:0".parse().expect("an address")).await?;
//!     let temp = client.get("coap://[::1]/temp").await?.error_for_status()?;
//!     let mut observation = other.observe("coap://127.0.0.1/temp").await?;
//!     if let Some(first) = observation.next().await {
//!         first?.error_for_status()?;
//!     }
//!     client.post("coap://[::1]/log").payload("x").send().await?.error_for_status()?;
//!     client.put("coap://[::1]/led").payload("on").send().await?;
//!     client.delete("coap://[::1]/log").send().await?;
//!     client.fetch("coap://[::1]/q").send().await?;
//!     client.patch("coap://[::1]/q").send().await?;
//!     Ok(temp.payload)
//! }
//!
//! /// The server role: `io::Error` for everything.
//! async fn server_calls<R: Runtime>(deferred: ResponseHandle) -> std::io::Result<()> {
//!     let server = Server::<R>::bind("[::]:5683".parse().expect("an address")).await?;
//!     server.responder().respond(deferred, Reply::new(Code::CONTENT)).await?;
//!     server.notifier().notify(1, Reply::new(Code::CONTENT)).await?;
//!     let mut router = Router::new();
//!     let observed = router.observe("/temp", get(|| async { "21.5" }));
//!     // (before serving this fails with NotifyError::NotServed)
//!     observed.notify().await?;
//!     // The server's own client: its errors convert into io::Error too.
//!     server.client().get("coap://[::1]/other").await?;
//!     server.serve_router(router).await?;
//!     Ok(())
//! }
//!
//! /// An application's error over both roles.
//! #[derive(Debug)]
//! enum AppError {
//!     Coap(ClientError),
//!     Io(std::io::Error),
//!     Config(std::net::AddrParseError),
//! }
//! impl From<ClientError> for AppError {
//!     fn from(e: ClientError) -> Self { AppError::Coap(e) }
//! }
//! impl From<std::io::Error> for AppError {
//!     fn from(e: std::io::Error) -> Self { AppError::Io(e) }
//! }
//! impl From<std::net::AddrParseError> for AppError {
//!     fn from(e: std::net::AddrParseError) -> Self { AppError::Config(e) }
//! }
//!
//! async fn app<R: Runtime>(deferred: ResponseHandle) -> Result<Vec<u8>, AppError> {
//!     let addr: SocketAddr = "127.0.0.1:0".parse()?;
//!     let client = Client::<R>::bind(addr).await?;
//!     client.get("coap://127.0.0.1/temp").await?.error_for_status()?;
//!     server_calls::<R>(deferred).await?;
//!     Ok(client_calls::<R>().await?)
//! }
//!
//! async fn boxed<R: Runtime>() -> Result<(), Box<dyn std::error::Error>> {
//!     let client = Client::<R>::new().await?;
//!     client.get("coap://[::1]/temp").await?.error_for_status()?;
//!     let server = Server::<R>::bind("[::]:0".parse()?).await?;
//!     server.notifier().notify(1, Reply::new(Code::CONTENT)).await?;
//!     Ok(())
//! }
//! ```
//!
//! A runtime adapter implements [`Runtime`] (a socket with readiness, a timer, spawn, a
//! resolver) on a marker type and names the endpoint types for it; it holds no protocol
//! logic:
//!
//! ```
//! use std::future::Future;
//! use std::io;
//! use std::task::{Context, Poll};
//!
//! use coap_std::{
//!     AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, ConnectFuture, NonBlockingSocket,
//!     ResolveFuture, Runtime,
//! };
//!
//! /// A runtime that has only blocking sockets and one thread per client.
//! #[derive(Debug)]
//! struct Threads;
//!
//! #[derive(Debug)]
//! struct Socket(std::net::UdpSocket);
//!
//! impl NonBlockingSocket for Socket {
//!     fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, std::net::SocketAddr)> {
//!         self.0.recv_from(buf)
//!     }
//!     fn try_send_to(&self, buf: &[u8], peer: std::net::SocketAddr) -> io::Result<usize> {
//!         self.0.send_to(buf, peer)
//!     }
//!     #[cfg(target_os = "linux")]
//!     fn try_io<R>(
//!         &self,
//!         _writable: bool,
//!         op: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> io::Result<R>,
//!     ) -> io::Result<R> {
//!         op(std::os::fd::AsFd::as_fd(&self.0))
//!     }
//! }
//!
//! impl AsyncUdpSocket for Socket {
//!     // A real runtime registers the socket with its reactor and returns `Pending`.
//!     fn poll_readable(&self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
//!         Poll::Ready(Ok(()))
//!     }
//!     fn poll_writable(&self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
//!         Poll::Ready(Ok(()))
//!     }
//!     fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
//!         self.0.local_addr()
//!     }
//! }
//!
//! impl Runtime for Threads {
//!     type Socket = Socket;
//!     type Sleep = std::future::Ready<()>;
//!     fn wrap(socket: std::net::UdpSocket) -> io::Result<Socket> {
//!         Ok(Socket(socket))
//!     }
//!     fn sleep_until(deadline: std::time::Instant) -> Self::Sleep {
//!         std::thread::sleep(deadline.saturating_duration_since(std::time::Instant::now()));
//!         std::future::ready(())
//!     }
//!     fn spawn(task: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
//!         let _ = task; // a real runtime polls it to completion
//!         Ok(())
//!     }
//!     fn resolve(host: String, port: u16) -> ResolveFuture {
//!         use std::net::ToSocketAddrs;
//!         let found = (host.as_str(), port).to_socket_addrs().map(Iterator::collect);
//!         Box::pin(std::future::ready(found))
//!     }
//!     type TcpStream = Tcp;
//!     type TcpListener = Listener;
//!     fn listen_tcp(listener: std::net::TcpListener) -> io::Result<Listener> {
//!         Ok(Listener(listener))
//!     }
//!     fn connect_tcp(addr: std::net::SocketAddr) -> ConnectFuture<Tcp> {
//!         Box::pin(std::future::ready(std::net::TcpStream::connect(addr).map(Tcp)))
//!     }
//! }
//!
//! /// Blocking TCP (CoAP over TCP, RFC 8323): a real runtime waits on its reactor.
//! #[derive(Debug)]
//! struct Tcp(std::net::TcpStream);
//!
//! impl AsyncTcpStream for Tcp {
//!     fn poll_readable(&self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
//!         Poll::Ready(Ok(()))
//!     }
//!     fn poll_writable(&self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
//!         Poll::Ready(Ok(()))
//!     }
//!     fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
//!         io::Read::read(&mut &self.0, buf)
//!     }
//!     fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
//!         io::Write::write(&mut &self.0, buf)
//!     }
//! }
//!
//! #[derive(Debug)]
//! struct Listener(std::net::TcpListener);
//!
//! impl AsyncTcpListener for Listener {
//!     type Stream = Tcp;
//!     fn poll_accept(&self, _: &mut Context<'_>) -> Poll<io::Result<(Tcp, std::net::SocketAddr)>> {
//!         Poll::Ready(self.0.accept().map(|(s, a)| (Tcp(s), a)))
//!     }
//! }
//!
//! /// What the adapter crate then exports.
//! pub type Client = coap_std::Client<Threads>;
//! pub type Server = coap_std::Server<Threads>;
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
mod batch;
#[cfg(feature = "serde")]
mod body;
mod client;
mod command;
pub mod credentials;
mod driver;
pub mod dtls;
pub mod edhoc;
mod edn;
mod endpoint;
mod event_loop;
pub mod happy_eyeballs;
mod icmp;
pub mod multicast;
pub mod oscore;
mod oscore_rejection;
pub mod reliable;
mod reply;
mod responder;
mod response;
mod runtime;
mod shard;
mod status;
pub mod storage;
mod wait;

pub use batch::{dtls_recv, dtls_send, pump, BatchIo, NonBlockingSocket, BATCH};
#[cfg(feature = "serde")]
pub use body::{BodyError, Cbor, Json};
pub use client::{
    GroupResponses, Handle, Observation, RequestBuilder, ResolveFuture, Resolver, Timer,
};
pub use command::{command_channel, Command, CommandReceiver, CommandSender, Progress};
pub use driver::{
    Driver, Input, Role, StdEndpoint, MAX_DATAGRAM, MESSAGE_SIZE, OBSERVERS, SLOTS, TRANSMIT_SIZE,
};
pub use endpoint::{Client, Server};
pub use happy_eyeballs::Fallback;
pub use reliable::{TcpConfig, TcpServer, TlsClientConfig, TlsServerConfig};
pub use reply::{Reply, RespondError};
pub use responder::{Notifier, NotifyError, Responder};
pub use response::{ClientError, OscoreRejection, Response, StatusError};
pub use runtime::{AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, ConnectFuture, Runtime};
pub use shard::{Sharded, ShardedNotifier};
pub use storage::DEDUP_LIMIT;
pub use wait::Wait;

/// The channel crate of [`RequestBuilder::progress`]'s sink, so that its type is at hand.
pub use async_channel;
pub use coap_core;
pub use coap_core::{
    Code, Config, ContentFormat, Delivery, Handler, IncomingRequest, Method, OptionNumber, Outcome,
    Resource, ResponseHandle, ResponseWriter, Route, Router,
};
pub use credentials::{Credentials, CredentialsError};
pub use dtls::{DtlsConfig, DtlsWhenFull, Psk, PskStore};
/// The `Stream` trait that [`Observation`] and [`GroupResponses`] implement.
pub use futures_core::Stream;
pub use multicast::{Group, Interface};
pub use oscore::{Peer, Security};
