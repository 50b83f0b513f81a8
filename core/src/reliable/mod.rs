//! CoAP over reliable transports (RFC 8323): TCP, TLS and WebSockets.
//!
//! Four layers, each its own module:
//!
//! * [`wire`]: the message format (§3.2, and §4.2 for WebSockets) as a zero-copy view,
//!   [`ReliableMessage`], and a writer, [`ReliableBuilder`], whose options and payload are
//!   written by the UDP [`MessageBuilder`](crate::MessageBuilder).
//! * [`framer`]: a byte stream, in any split, into messages, in a caller's buffer and
//!   bounded by the Max-Message-Size this side announced.
//! * [`signaling`]: the 7.xx messages (CSM, Ping, Pong, Release, Abort) and their options.
//! * [`connection`]: the message layer of one connection, [`Connection`]: CSM first in
//!   both directions, Ping/Pong with Custody, Release, Abort on every protocol error, the
//!   tokens of the exchanges in progress; no retransmission and no deduplication (§3.3).
//!
//! # Driving a connection (what a runtime does)
//!
//! ```
//! use coap_core::reliable::{Connection, ConnectionConfig, Event, Framer, Framing};
//! use coap_core::{Code, Instant, OptionNumber};
//!
//! let now = Instant::ZERO;
//! let mut client: Connection = Connection::new(now, Framing::Stream, ConnectionConfig::default());
//! let mut server: Connection = Connection::new(now, Framing::Stream, ConnectionConfig::default());
//! let mut rx = [0u8; 1152];
//! let mut framer = Framer::new(&mut rx, server.local_max_message_size() as usize);
//!
//! // Client → server: its CSM, then a request, as one stream write.
//! let mut tx = [0u8; 1152];
//! let mut len = client.poll_transmit(&mut tx)?.unwrap();
//! len += client
//!     .send_request(&mut tx[len..], Code::GET, &[0x01], |b| {
//!         b.option_str(OptionNumber::URI_PATH, "hello")?;
//!         Ok(())
//!     })
//!     .unwrap();
//!
//! // The server reads it (the split into reads does not matter) ...
//! framer.push(&tx[..len]);
//! let mut requests = 0;
//! while let Some(frame) = framer.next_frame().unwrap() {
//!     match server.handle_message(frame) {
//!         Some(Event::PeerSettings(s)) => assert_eq!(s.max_message_size, 1152),
//!         Some(Event::Request(req)) => {
//!             assert_eq!(req.uri_path().next(), Some(&b"hello"[..]));
//!             requests += 1;
//!         }
//!         other => panic!("{other:?}"),
//!     }
//! }
//! assert_eq!(requests, 1);
//! // ... and sends its own CSM first, then answers.
//! let mut out = [0u8; 64];
//! assert_eq!(server.poll_transmit(&mut out)?, Some(2)); // 00 e1
//! let n = server.send_response(&mut out, Code::CONTENT, &[0x01], |b| {
//!     b.payload(b"world")?;
//!     Ok(())
//! });
//! assert!(n.is_ok());
//! # Ok::<(), coap_core::BuildError>(())
//! ```
//!
//! A stream runtime loops: send everything [`Connection::poll_transmit`] yields; read
//! into [`Framer::space`] and [`Framer::commit`]; hand each [`Framer::next_frame`] to
//! [`Connection::handle_message`]; on a [`FrameError`] call [`Connection::frame_error`]
//! (it queues the Abort); when the transport reports end of stream or an error call
//! [`Connection::connection_lost`]; call [`Connection::handle_timeout`] at
//! [`Connection::poll_timeout`]; close the transport once [`Connection::is_closed`] and
//! `poll_transmit` has nothing left. A WebSocket runtime skips the framer: each binary
//! frame is one message for `handle_message`, each `poll_transmit`/`send_*` output one
//! frame (`Framing::WebSocket`).
//!
//! # Design note: the exchange layer over a connection
//!
//! The endpoint's exchange layer (requests, responses, observe, block-wise) stays what it
//! is over UDP; only its message layer is replaced, per connection, by [`Connection`]
//! instead of the retransmission/deduplication layer. The calls it makes:
//!
//! * Outgoing request: `conn.send_request(tx, code, token, |b| fill(b.builder()))`. The
//!   existing closures over `&mut MessageBuilder` run unchanged through
//!   [`ReliableBuilder::builder`]; the message type and Message ID of `RequestParams`
//!   have no meaning here and no retransmission timer is armed (the exchange keeps only
//!   its own overall timeout). Tokens are unique per connection, so the exchange key is
//!   (connection, token). [`SendError::TooLarge`] tells the block-wise layer to use
//!   smaller blocks; the limit is `conn.peer_settings().max_message_size` instead of the
//!   UDP path's 1152-byte estimate.
//! * [`Event::Response`] `{ message, last }`: delivered to the exchange with that token;
//!   `last == false` is a notification of an observation that continues (RFC 7641 over
//!   §7: no reordering check, notifications arrive in the order sent). Cancelling an
//!   observation is a GET with Observe 1 and the same token (a second `send_request`
//!   with a token in use keeps one exchange), or [`Connection::forget`].
//! * [`Event::Request`]: handed to the server handlers; the answer goes out with
//!   `conn.send_response(tx, code, token, ...)`, notifications likewise (Observe option,
//!   no CON needed to check the client's interest: the connection's liveness does it,
//!   §7.2). [`ReliableMessage::as_udp_view`] gives the UDP `Message` that
//!   `IncomingRequest`, the router and the block/observe helpers take (type NON, Message
//!   ID 0: nothing there may answer with an ACK or RST on a reliable connection).
//! * [`Event::Closed`] ends every exchange on the connection in both roles: requests in
//!   flight fail with "connection lost", observations this side made are over, and the
//!   observers the peer registered are removed (§7: connection loss ends observations).
//! * [`Event::Released`]: no new requests on this connection (`send_request` returns
//!   [`SendError::Released`]); the client opens a new connection, to an
//!   Alternative-Address if given, after Hold-Off seconds, and closes this one once
//!   [`Connection::is_idle`].
//! * Block-wise: [`Connection::bert`] and [`Connection::bert_payload`] say whether and how
//!   much to send with SZX 7 (§6); otherwise Block1/Block2 as over UDP.

pub mod connection;
pub mod exchange;
pub mod framer;
pub mod signaling;
pub mod wire;

pub use connection::{
    CloseReason, Connection, ConnectionConfig, Event, PeerSettings, ProtocolError, SendError,
};
pub use exchange::{response_handle, response_handle_id, Deferred, Served, ServerExchange};
pub use framer::{FrameError, Framer};
pub use signaling::{Signal, SignalError, DEFAULT_MAX_MESSAGE_SIZE};
pub use wire::{FrameHead, Framing, ReliableBuilder, ReliableMessage, WireError};
