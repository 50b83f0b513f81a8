//! `coap-core`: a `no_std`, allocation-free, sans-IO implementation of the Constrained
//! Application Protocol (RFC 7252) and its family.
//!
//! This crate owns the protocol; runtimes (tokio, smol, embassy) own sockets and clocks.
//!
//! ```
//! use coap_core::{Code, Message, MessageBuilder, MessageType, OptionNumber};
//!
//! let mut buf = [0u8; 64];
//! let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 0x7d34, &[0x20])?;
//! b.option_str(OptionNumber::URI_PATH, "temperature")?;
//! let bytes = b.into_bytes();
//!
//! let m = Message::parse(bytes)?;
//! assert_eq!(m.code(), Code::GET);
//! assert_eq!(m.uri_path().next(), Some(&b"temperature"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Two endpoints talking in memory (the sans-IO contract: datagrams and time in,
//! datagrams, events and deadlines out):
//!
//! ```
//! use coap_core::{Code, Config, Endpoint, Event, Instant, NoServer, OptionNumber, Outcome, RequestParams};
//!
//! let mut client: Endpoint<u32> = Endpoint::new(Config::default(), 1);
//! let mut server: Endpoint<u32> = Endpoint::new(Config::default(), 2);
//! let mut hello = |_req: &coap_core::IncomingRequest<'_, u32>, resp: &mut coap_core::ResponseWriter<'_>| {
//!     resp.respond(Code::CONTENT, None, b"hello").unwrap();
//!     Outcome::Respond
//! };
//! let now = Instant::from_millis(0);
//! let id = client.request(now, 2, RequestParams::con(Code::GET), |b| {
//!     b.option_str(OptionNumber::URI_PATH, "hello")?;
//!     Ok(())
//! }).unwrap();
//! let mut buf = [0u8; 1152];
//! let t = client.poll_transmit(now, &mut buf).unwrap();          // CON GET /hello → peer 2
//! server.handle_datagram(now, 1, &buf[..t.len], &mut hello);     // handler writes in place
//! let t = server.poll_transmit(now, &mut buf).unwrap();          // ACK 2.05 "hello" → peer 1
//! client.handle_datagram(now, 2, &buf[..t.len], &mut NoServer);
//! match client.poll_event() {
//!     Some(Event::Response { id: got, message, .. }) => {
//!         assert_eq!(got, id);
//!         assert_eq!(message.payload(), b"hello");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! // Retransmissions and deadlines: call handle_timeout(now) when poll_timeout() says so.
//! assert!(client.poll_timeout().is_none());
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod block;
pub mod cache;
pub mod code;
pub mod config;
pub mod content_format;
pub mod dedup;
#[cfg(feature = "edhoc")]
pub mod edhoc;
pub mod endpoint;
pub mod exchange;
pub mod link_format;
pub mod message;
pub mod multicast;
pub mod no_response;
pub mod observe;
pub mod option;
#[cfg(feature = "oscore")]
pub mod oscore;
pub mod rd;
pub mod reliability;
#[cfg(feature = "reliable")]
pub mod reliable;
pub mod rng;
pub mod router;
pub mod server;
pub mod storage;
pub mod time;
pub mod token;
pub mod uri;
pub mod validate;

pub use block::Block;
pub use code::{Code, Method};
pub use config::Config;
pub use content_format::ContentFormat;
pub use endpoint::{
    Endpoint, Error, Event, FailReason, RequestParams, Stats, Transmit, Unreachable,
};
pub use exchange::{RequestId, Token};
pub use message::{BuildError, Message, MessageBuilder, MessageType, ParseError};
pub use multicast::Delivery;
pub use option::{CoapOption, OptionNumber};
pub use router::{Resource, Route, Router};
pub use server::{
    Handler, Idempotence, IncomingRequest, NoServer, Outcome, ResponseHandle, ResponseWriter,
};
pub use time::Instant;
pub use uri::{Host, Scheme, Uri, UriError};
