//! CoAP over DTLS (RFC 7252 §9): a sans-IO session layer between a UDP socket and the
//! CoAP endpoint.
//!
//! [`Sessions`] keeps one DTLS 1.2 session per peer address and turns records into
//! plaintext CoAP datagrams and back. Like `coap-core` it does no I/O and reads no clock:
//! datagrams and the current time go in, records to send, events and the next deadline
//! come out. Unlike the core it allocates (DTLS needs buffers and per-session state), which
//! is why it lives in its own std crate that the tokio and smol runtimes share.
//!
//! - Handshakes use PSK with `TLS_PSK_WITH_AES_128_CCM_8`, the suite RFC 7252 §9.1.3.1
//!   makes mandatory for PreSharedKey mode, through [dimpl](https://docs.rs/dimpl) with its
//!   pure-Rust crypto backend.
//! - The server answers every ClientHello from an unknown address with a stateless
//!   HelloVerifyRequest (RFC 6347 §4.2.1) and creates per-peer state only once the client
//!   echoed a valid cookie, i.e. proved it receives at its address. [`Server`] explains
//!   how this is done on top of dimpl, and the replay guard it requires.
//! - The session table has two budgets. Half-open handshakes: at most
//!   [`Config::max_handshakes`] in all and [`Config::max_handshakes_per_host`] per source
//!   host (the oldest dropped beyond either), each failing [`Config::handshake_timeout`]
//!   after it began; they never displace an established session. Established sessions: at
//!   most [`Config::max_sessions`]; a new handshake on a full table is refused with a fatal
//!   alert, or evicts the least recently active session with close_notify (RFC 5246
//!   §7.2.1) so its client can reconnect, as [`Config::when_full`] says ([`WhenFull`]).
//!   Idle sessions expire with close_notify ([`Config::idle_timeout`]), plaintext queued
//!   during a client handshake is bounded ([`Config::max_queued_plaintext`]), and so is the
//!   outgoing record queue.
//! - The CoAP endpoint should use [`SessionId`] as its peer type: a session id names one
//!   association, so a response can only leave through the session its request came in on
//!   (RFC 7252 §9.1: "the response MUST be sent over the same session"); after a session is
//!   replaced the old id is simply gone and [`Sessions::send`] refuses it.
//!
//! Time is [`std::time::Instant`] (what dimpl uses); the runtime passes its notion of "now"
//! into every call.
//!
//! # The engine
//!
//! dimpl 0.9 is sans-IO, `forbid(unsafe_code)`, and has PSK client and server with key
//! lookup by identity and an optional identity hint, the PSK_AES128_CCM_8 suite,
//! HelloVerifyRequest cookies, flight retransmission with a handshake deadline, and
//! Extended Master Secret. Its `rust-crypto` feature is used instead of the default
//! `aws-lc-rs` (no C toolchain in CI). What it lacks for CoAP: the certificate-mode suite
//! RFC 7252 §9.1.3.2/§9.1.3.3 mandate (TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8; dimpl has the
//! GCM and ChaCha20 variants only) and raw public keys (RFC 7250), so only PSK is offered
//! here; it sends no alerts itself, so a peer with a wrong key sees a timeout (the one alert
//! this crate sends on its own is the refusal of a handshake on a full table); and its
//! cookie secret lives inside each server instance, which [`Server`] works around to stay
//! stateless until the cookie exchange is done.
//!
//! # Driving it
//!
//! After every input (`handle_datagram`, `handle_timeout`, `send`, `connect`, `close`),
//! drain [`Sessions::poll_transmit`] onto the socket and [`Sessions::poll_event`], then wait
//! for the next datagram or [`Sessions::poll_timeout`]. Decrypted datagrams are handed to
//! the closure given to [`Sessions::handle_datagram`], typically straight into
//! `coap_core::Endpoint::handle_datagram` with the [`SessionId`] as the peer; the
//! endpoint's own transmits go back through [`Sessions::send`].
//!
//! # Example: a server and a client in memory
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Instant;
//! use coap_dtls::{Config, Event, Sessions};
//!
//! let server_addr: SocketAddr = "127.0.0.1:5684".parse().unwrap();
//! let client_addr: SocketAddr = "127.0.0.1:40000".parse().unwrap();
//! // The server looks keys up by the identity the client presents.
//! let mut server = Sessions::server(Config::default(), |identity: &[u8]| {
//!     (identity == b"sensor-1").then(|| b"secretPSK".to_vec())
//! })?;
//! let mut client = Sessions::client(Config::default())?;
//!
//! let now = Instant::now();
//! let session = client.connect(now, server_addr, b"sensor-1", b"secretPSK")?;
//! // Queued until the handshake completes; never sent in clear.
//! client.send(now, session, b"\x40\x01\x00\x01\xb5hello")?;
//!
//! let mut at_server = Vec::new();
//! let mut at_client = Vec::new();
//! for _ in 0..10 {
//!     while let Some((to, record)) = client.poll_transmit() {
//!         assert_eq!(to, server_addr);
//!         server.handle_datagram(now, client_addr, &record, |from, plaintext| {
//!             at_server.push((from, plaintext.to_vec()))
//!         });
//!     }
//!     // The server answers over the session the request came in on.
//!     for (from, _) in at_server.drain(..) {
//!         server.send(now, from, b"\x60\x45\x00\x01\xffhi")?;
//!     }
//!     while let Some((to, record)) = server.poll_transmit() {
//!         assert_eq!(to, client_addr);
//!         client.handle_datagram(now, server_addr, &record, |_, plaintext| {
//!             at_client.push(plaintext.to_vec())
//!         });
//!     }
//! }
//! assert_eq!(at_client, vec![b"\x60\x45\x00\x01\xffhi".to_vec()]);
//! assert!(matches!(client.poll_event(), Some(Event::Connected { .. })));
//! match server.poll_event() {
//!     Some(Event::Connected { identity, .. }) => assert_eq!(identity.as_deref(), Some(&b"sensor-1"[..])),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod cookie;
mod error;
mod psk;
mod record;
mod session_id;
mod sessions;

pub use config::{Config, WhenFull};
pub use error::{AlertDescription, CloseReason, HandshakeError, SendError, SetupError};
pub use psk::PskStore;
pub use sessions::{Client, Event, Role, Server, SessionId, Sessions, Stats};

/// The DTLS engine, re-exported for callers that want its error types.
pub use dimpl;
