//! CoAP (RFC 7252) over UDP on [tokio](https://tokio.rs): a thin adapter that drives the
//! sans-IO [`coap_core::Endpoint`] from one socket, with an async client and server on top.
//!
//! One endpoint owns one UDP socket (IPv4 or IPv6) and can be client and server at once
//! ([`Server::client`]). Its loop awaits a datagram, the core's next deadline or a command
//! from a handle, feeds the core, sends what the core wants sent and hands responses to
//! the waiting requests. Everything CoAP (retransmission, deduplication, matching) is in
//! the core.
//!
//! ```no_run
//! use coap_tokio::{Client, Code, Method};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::bind("[::]:0".parse()?).await?;
//! let temp = client.get("coap://[::1]/temp").await?;
//! assert_eq!(temp.code, Code::CONTENT);
//! let created = client
//!     .request(Method::Post, "coap://[::1]/log")
//!     .payload("hello")
//!     .content_format(0)
//!     .send()
//!     .await?;
//! println!("{} {:?}", created.code, created.payload_str());
//! # Ok(()) }
//! ```
//!
//! Serving a [`Router`] of resources:
//!
//! ```no_run
//! use coap_tokio::{Code, IncomingRequest, Outcome, Peer, Resource, ResponseWriter, Route, Router, Server};
//!
//! struct Hello;
//! impl Resource<Peer> for Hello {
//!     fn get(&mut self, _: &IncomingRequest<'_, Peer>, w: &mut ResponseWriter<'_>) -> Outcome {
//!         let _ = w.respond(Code::CONTENT, None, b"Hello, world!");
//!         Outcome::Respond
//!     }
//! }
//!
//! # async fn demo() -> std::io::Result<()> {
//! let routes: Vec<Route<'static, Box<dyn Resource<Peer> + Send>>> = vec![Route::new("/hello", Box::new(Hello))];
//! let server = Server::bind("[::]:5683".parse().unwrap()).await?;
//! server.serve_with_shutdown(Router::new(routes), async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! CoAP over DTLS (RFC 7252 §9, PSK mode): [`Server::with_dtls`] serves `coaps://` on a
//! second socket, [`Client::bind_with_psk`] (or a `dtls` entry of the [`Credentials`])
//! makes `coaps://` requests. The endpoint sees each DTLS session as its own peer
//! (`Peer { security: Security::Dtls(serial) }`), so responses only ever leave over the
//! session their request came in on.
//!
//! Without the default `tokio` feature only [`glue`], the runtime-independent half that
//! `coap-smol` shares, is built.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod glue;
#[cfg(feature = "tokio")]
mod runtime;

pub use coap_core;
pub use coap_core::{
    Code, Config, ContentFormat, Delivery, Handler, IncomingRequest, Method, OptionNumber, Outcome,
    Resource, ResponseHandle, ResponseWriter, Route, Router,
};
pub use glue::credentials::{Credentials, CredentialsError};
pub use glue::dtls::{DtlsConfig, Psk, PskStore};
pub use glue::multicast::{Group, Interface};
pub use glue::oscore::{Peer, Security};
pub use glue::{
    ClientError, GroupResponses, Notifier, Observation, Reply, RequestBuilder, RespondError,
    Responder, Response,
};
#[cfg(feature = "tokio")]
pub use runtime::{Client, Server};
