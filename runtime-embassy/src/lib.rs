//! `coap-embassy`: CoAP (RFC 7252) on [embassy-net](embassy_net), for microcontrollers.
//!
//! The same sans-IO [`coap_core::Endpoint`] the std runtimes drive, over an
//! [`embassy_net::udp::UdpSocket`] and [`embassy_time`]. `no_std`, no allocator: every
//! table and buffer is sized by const generics and lives where the caller puts it —
//! typically a `StaticCell`, as embassy-net's own `StackResources` do.
//!
//! - [`Endpoint`] holds the core endpoint and the client exchanges. One task runs it:
//!   [`Endpoint::run`] moves datagrams between the socket and the core, fires its timers
//!   and serves requests with a [`coap_core::Handler`] — usually a [`coap_core::Router`] of
//!   resources.
//! - Any task on the same executor uses [`Endpoint::client`] (GET/PUT/POST/DELETE, observe;
//!   block-wise transfers through the core, RFC 7959), [`Endpoint::notify`] (RFC 7641
//!   notifications) and [`Endpoint::respond`] (deferred responses, RFC 7252 §5.2.2).
//!
//! ```no_run
//! use coap_embassy::coap_core::router::{Resource, Route, Router};
//! use coap_embassy::coap_core::{Code, ContentFormat, IncomingRequest, Outcome, ResponseWriter};
//! use coap_embassy::Endpoint;
//! use embassy_net::udp::UdpSocket;
//! use embassy_net::IpEndpoint;
//!
//! struct Hello;
//! impl Resource<IpEndpoint> for Hello {
//!     fn get(&mut self, _: &IncomingRequest<'_, IpEndpoint>, w: &mut ResponseWriter<'_>) -> Outcome {
//!         let _ = w.respond(Code::CONTENT, Some(ContentFormat::TEXT_PLAIN), b"hello");
//!         Outcome::Respond
//!     }
//! }
//!
//! // The server task (`#[embassy_executor::task]` on a device): the endpoint lives in a
//! // `StaticCell`, the socket is bound to port 5683.
//! async fn serve(endpoint: &Endpoint, socket: &UdpSocket<'_>) -> ! {
//!     let mut hello = Hello;
//!     let hello: &mut dyn Resource<IpEndpoint> = &mut hello;
//!     let mut router = Router::new([Route::new("/hello", hello)]);
//!     endpoint.run(socket, &mut router).await
//! }
//!
//! // Any other task of the same executor.
//! async fn ask(endpoint: &Endpoint) -> Result<(), coap_embassy::Error> {
//!     let mut buf = [0u8; 64];
//!     let response = endpoint.client().get("coap://192.0.2.2/hello", &mut buf).await?;
//!     assert_eq!(response.payload, b"hello");
//!     Ok(())
//! }
//! ```
//!
//! Multicast (RFC 7252 §8): join a group on the stack (`stack.join_multicast_group(addr)`,
//! embassy-net's `multicast` feature, which this crate's `multicast` feature enables);
//! requests that arrive on it are answered by the core's group rules (random leisure, no
//! ACK or RST, errors suppressed unless asked for) from the unicast address.
//!
//! OSCORE (RFC 8613, feature `oscore`): [`Client::oscore`] sends requests protected under a
//! security context the application keeps ([`OscoreContext`]) and verifies their
//! responses. EDHOC (RFC 9528, feature `edhoc`): [`Client::edhoc`] runs the Initiator with
//! a server's `/.well-known/edhoc` (plain flow, message_4 verified when sent, or the
//! combined request of RFC 9668) and derives that context (Appendix A.1). The server side
//! of both is [`OscoreServer`] ([`oscore_server`]): a runner of its own over `Secured`
//! peers behind the core's OSCORE layer, with the EDHOC Responder at `/.well-known/edhoc`
//! and the combined request in front of the layer.
//!
//! Logging goes through `defmt` with the `defmt` feature, and nowhere otherwise.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod log;

mod client;
#[cfg(feature = "edhoc")]
mod edhoc;
mod endpoint;
mod error;
mod exchange;
#[cfg(feature = "oscore")]
mod oscore;
#[cfg(feature = "oscore")]
pub mod oscore_server;

pub use client::{Client, Observation, Request, Response};
#[cfg(feature = "edhoc")]
pub use edhoc::{EdhocConfig, Flow, Handshake};
pub use endpoint::{now, Endpoint};
pub use error::Error;
#[cfg(feature = "oscore")]
pub use oscore::{OscoreContext, Protected};
#[cfg(feature = "oscore")]
pub use oscore_server::OscoreServer;

/// The core crate, re-exported so that applications name the same version.
pub use coap_core;
