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
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod code;
pub mod config;
pub mod content_format;
pub mod endpoint;
pub mod exchange;
pub mod link_format;
pub mod message;
pub mod option;
pub mod reliability;
pub mod rng;
pub mod router;
pub mod server;
pub mod time;
pub mod uri;

pub use code::{Code, Method};
pub use config::Config;
pub use content_format::ContentFormat;
pub use endpoint::{Endpoint, Error, Event, RequestParams, Stats, Transmit};
pub use exchange::{RequestId, Token};
pub use message::{BuildError, Message, MessageBuilder, MessageType, ParseError};
pub use option::{CoapOption, OptionNumber};
pub use router::{Resource, Route, Router};
pub use server::{Handler, IncomingRequest, NoServer, Outcome, ResponseHandle, ResponseWriter};
pub use time::Instant;
pub use uri::{Host, Scheme, Uri, UriError};
