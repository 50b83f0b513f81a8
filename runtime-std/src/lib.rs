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
//! A runtime adapter implements [`Runtime`] (a socket with readiness, a timer, spawn, a
//! resolver) on a marker type and names the endpoint types for it; it holds no protocol
//! logic:
//!
//! ```
//! use std::future::Future;
//! use std::io;
//! use std::task::{Context, Poll};
//!
//! use coap_std::{AsyncUdpSocket, NonBlockingSocket, ResolveFuture, Runtime};
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
mod icmp;
pub mod multicast;
pub mod oscore;
mod reply;
mod responder;
mod response;
mod runtime;
mod status;

pub use batch::{dtls_recv, dtls_send, pump, BatchIo, NonBlockingSocket, Wait, BATCH};
#[cfg(feature = "serde")]
pub use body::{BodyError, Cbor, Json};
pub use client::{GroupResponses, Handle, Observation, RequestBuilder, ResolveFuture, Resolver};
pub use command::{command_channel, Command, CommandReceiver, CommandSender, Progress};
pub use driver::{
    Driver, Input, Role, StdEndpoint, DEDUP_ENTRIES, MAX_DATAGRAM, MESSAGE_SIZE, OBSERVERS, SLOTS,
    TRANSMIT_SIZE,
};
pub use endpoint::{Client, Server};
pub use reply::{Reply, RespondError};
pub use responder::{Notifier, Responder};
pub use response::{ClientError, Response};
pub use runtime::{AsyncUdpSocket, Runtime};
pub use status::StatusError;

pub use coap_core;
pub use coap_core::{
    Code, Config, ContentFormat, Delivery, Handler, IncomingRequest, Method, OptionNumber, Outcome,
    Resource, ResponseHandle, ResponseWriter, Route, Router,
};
pub use credentials::{Credentials, CredentialsError};
pub use dtls::{DtlsConfig, Psk, PskStore};
pub use multicast::{Group, Interface};
pub use oscore::{Peer, Security};
