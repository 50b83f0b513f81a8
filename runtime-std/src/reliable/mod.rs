//! CoAP over reliable transports (RFC 8323) on a [`Runtime`](crate::Runtime): the core's
//! per-connection message layer ([`coap_core::reliable::Connection`]) and stream framer
//! driven over the runtime's TCP streams.
//!
//! - [`TcpServer`]: accepts `coap+tcp` connections (a bounded number, each closed when
//!   idle) and serves each with the [`Handler`](coap_core::Handler) a UDP [`crate::Server`]
//!   serves, through the core's transport-independent server exchange
//!   ([`coap_core::reliable::ServerExchange`]): 4.02 for unknown critical options, Block2
//!   by offset, observe with the observers kept per connection (RFC 8323 §7: they end
//!   with it), deferred answers through a [`crate::Responder`].
//! - The client half ([`client`]): `coap+tcp://` URIs in [`crate::Client`], one connection
//!   per origin, reused and reopened when lost; CSM first, Ping for liveness.
//! - TLS (`coaps+tcp`, [`TlsServerConfig`], [`TlsClientConfig`]): rustls's sans-IO
//!   connection between the TCP stream and the framer, on any runtime.
//! - WebSockets (`coap+ws`, `coaps+ws`, §4): tungstenite's protocol over in-memory
//!   buffers between the stream (or TLS) and the framer, on any runtime.
//!
//! Each connection runs in a task of its own (spawned with [`Runtime::spawn`]) that owns
//! the stream, the framer and the core connection: no locks on the message path, the
//! handler excepted (shared by the connections of a server, behind a mutex).

pub(crate) mod client;
mod io;
pub(crate) mod plain;
mod server;
mod tls;
mod ws;

pub use server::{TcpConfig, TcpServer};
pub use tls::{TlsClientConfig, TlsServerConfig, ALPN};
pub use ws::{PATH as WS_PATH, SUBPROTOCOL as WS_SUBPROTOCOL};

/// The largest message this side accepts and announces in its CSM (RFC 8323 §5.3.1): a
/// whole 1024-byte block with its options, as over UDP (RFC 7252 §4.6).
pub const MAX_MESSAGE_SIZE: u32 = 1152;

/// The most this side sends in one message whatever the peer announces: a peer's
/// Max-Message-Size of 4 GiB must not make us allocate that.
pub(crate) const MAX_SEND: usize = 64 * 1024;

/// The most a server connection sends in one message: larger representations go
/// block-wise (RFC 7959) whatever the peer accepts, so that an idle connection holds a
/// small buffer (libcoap announces 8 MiB).
pub(crate) const SERVER_SEND: usize = 8 * 1024;
