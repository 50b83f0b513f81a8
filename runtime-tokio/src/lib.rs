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
//! Everything but the runtime lives in [`coap_std`] (re-exported as [`glue`] too): this
//! crate implements [`coap_std::Runtime`] for tokio ([`Tokio`]) and names the endpoint
//! types for it. Without the default `tokio` feature only the re-exports are built.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use coap_std as glue;
pub use coap_std::app;
#[cfg(feature = "tokio")]
mod runtime;

pub use coap_std::coap_core;
pub use coap_std::{
    ClientError, Code, Config, ContentFormat, Credentials, CredentialsError, Delivery, DtlsConfig,
    Fallback, Group, GroupResponses, Handler, IncomingRequest, Interface, Method, Notifier,
    NotifyError, Observation, OptionNumber, OscoreRejection, Outcome, Peer, Progress, Psk,
    PskStore, Reply, RequestBuilder, Resource, RespondError, Responder, Response, ResponseHandle,
    ResponseWriter, Route, Router, Security, ShardedNotifier, StatusError, TcpConfig,
};
#[cfg(feature = "tokio")]
pub use runtime::{Socket, TcpListener, TcpStream, Tokio};

/// A CoAP client on tokio: a handle on an endpoint whose loop runs as a tokio task. Cheap
/// to clone; the endpoint closes when the last clone (and the last request) is gone.
#[cfg(feature = "tokio")]
pub type Client = coap_std::Client<Tokio>;

/// A CoAP server endpoint on tokio: bind, then [`coap_std::Server::serve`] a handler (e.g.
/// a [`Router`]).
#[cfg(feature = "tokio")]
pub type Server = coap_std::Server<Tokio>;

/// A CoAP over TCP server on tokio (`coap+tcp`, RFC 8323; see [`coap_std::TcpServer`]).
#[cfg(feature = "tokio")]
pub type TcpServer = coap_std::TcpServer<Tokio>;

/// A server on one port over several endpoints, one per core (`SO_REUSEPORT`; see
/// [`coap_std::Sharded`]).
#[cfg(feature = "tokio")]
pub type Sharded = coap_std::Sharded<Tokio>;
