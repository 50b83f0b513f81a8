//! CoAP over reliable transports (RFC 8323): TCP, TLS and WebSockets.

pub mod connection;
pub mod framer;
pub mod signaling;
pub mod wire;

pub use connection::{
    CloseReason, Connection, ConnectionConfig, Event, PeerSettings, ProtocolError, SendError,
};
pub use framer::{FrameError, Framer};
pub use signaling::{Signal, SignalError, DEFAULT_MAX_MESSAGE_SIZE};
pub use wire::{FrameHead, Framing, ReliableBuilder, ReliableMessage, WireError};
