//! The channel from the application's handles ([`crate::Handle`], [`crate::Responder`],
//! [`crate::Notifier`]) to the endpoint loop, and what travels on it.

use std::time::Duration;

use async_channel::Sender;
use coap_core::{
    BuildError, Code, MessageBuilder, MessageType, OptionNumber, RequestParams, ResponseHandle,
    Token, Uri, UriError,
};

use crate::dtls::Psk;
use crate::oscore::Peer;
use crate::reply::{Reply, RespondError};
use crate::response::{ClientError, Response};

/// The sending side of the channel from client handles and responders to the loop.
pub type CommandSender = async_channel::Sender<Command>;
/// The loop's side of the command channel.
pub type CommandReceiver = async_channel::Receiver<Command>;

/// A new (unbounded) command channel.
pub fn command_channel() -> (CommandSender, CommandReceiver) {
    async_channel::unbounded()
}

/// Something the application asks of the endpoint loop (opaque: built by [`crate::Handle`]
/// and [`crate::Responder`], consumed by `Driver::step`).
#[derive(Debug)]
pub struct Command(pub(crate) Cmd);

#[derive(Debug)]
pub(crate) enum Cmd {
    Request {
        key: u64,
        peer: Peer,
        request: OutgoingRequest,
        reply: Sender<Result<Response, ClientError>>,
        progress: Option<Sender<Progress>>,
    },
    Cancel {
        key: u64,
    },
    /// Registers an observation (RFC 7641); every notification goes to `sink`.
    Observe {
        key: u64,
        peer: Peer,
        request: OutgoingRequest,
        sink: Sender<Result<Response, ClientError>>,
    },
    /// A request to a group address (RFC 7252 §8): every member's response goes to
    /// `sink` until the collection window (the request's timeout) closes.
    Group {
        key: u64,
        peer: Peer,
        request: OutgoingRequest,
        sink: Sender<Result<Response, ClientError>>,
    },
    /// Ends an observation actively (GET with Observe=1, RFC 7641 §3.6).
    CancelObserve {
        key: u64,
    },
    /// Notifies every observer of a resource (RFC 7641 §4.2).
    Notify {
        resource: u32,
        reply: Reply,
        done: Sender<usize>,
    },
    /// The OSCORE Recipient IDs in use (an EDHOC Initiator picks its C_I among the rest).
    RecipientIds {
        reply: Sender<Vec<Vec<u8>>>,
    },
    /// Adds the OSCORE context an EDHOC session with `peer` derived (RFC 9528 Appendix
    /// A.1); with `message_3`, the first request under it becomes the EDHOC + OSCORE
    /// combined request (RFC 9668).
    EdhocContext {
        context: Box<coap_core::oscore::SecurityContext>,
        peer: std::net::SocketAddr,
        message_3: Option<Vec<u8>>,
        reply: Sender<Result<coap_core::oscore::ContextId, ClientError>>,
    },
    Respond {
        handle: ResponseHandle,
        reply: Reply,
        done: Sender<Result<(), RespondError>>,
    },
}

/// A request as the application built it, owned until the loop writes it into a slot.
#[derive(Clone, Debug)]
pub(crate) struct OutgoingRequest {
    /// Validated by `send` before it reaches the loop.
    pub uri: String,
    pub code: Code,
    pub confirmable: bool,
    pub timeout: Option<Duration>,
    /// A chosen token instead of a random one.
    pub token: Option<Token>,
    pub content_format: Option<u16>,
    pub accept: Option<u16>,
    pub options: Vec<(OptionNumber, Vec<u8>)>,
    pub payload: Vec<u8>,
    /// For a `coaps://` URI: the PSK to start a session with if there is none yet.
    pub psk: Option<std::sync::Arc<Psk>>,
}

impl OutgoingRequest {
    /// A CON request with `code` to `uri`: no options, payload or chosen token yet.
    pub(crate) fn new(uri: String, code: Code) -> Self {
        OutgoingRequest {
            uri,
            code,
            confirmable: true,
            timeout: None,
            token: None,
            content_format: None,
            accept: None,
            options: Vec::new(),
            payload: Vec::new(),
            psk: None,
        }
    }

    pub(crate) fn write(&self, b: &mut MessageBuilder<'_>) -> Result<(), BuildError> {
        self.write_options(b)?;
        b.payload(&self.payload)?;
        Ok(())
    }

    /// Code, message type and deadline for the core.
    pub(crate) fn params(&self) -> RequestParams {
        let ty = if self.confirmable {
            MessageType::Con
        } else {
            MessageType::Non
        };
        RequestParams {
            code: self.code,
            ty,
            timeout: self.timeout,
            token: self.token,
        }
    }

    /// The options only (the payload of an upload goes in blocks).
    pub(crate) fn write_options(&self, b: &mut MessageBuilder<'_>) -> Result<(), BuildError> {
        // The URI parsed in `send`; only the lack of space can fail here.
        let uri = Uri::parse(&self.uri).map_err(|_| BuildError::BufferTooSmall)?;
        uri.write_options(b).map_err(|e| match e {
            UriError::Build(e) => e,
            _ => BuildError::BufferTooSmall,
        })?;
        if let Some(f) = self.content_format {
            b.option_uint(OptionNumber::CONTENT_FORMAT, u32::from(f))?;
        }
        if let Some(f) = self.accept {
            b.option_uint(OptionNumber::ACCEPT, u32::from(f))?;
        }
        for (n, v) in &self.options {
            b.option(*n, v)?;
        }
        Ok(())
    }
}

/// How far a block-wise transfer got (RFC 7959): bytes moved so far and, when the peer
/// said (Size1/Size2), the total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes received (Block2) or sent and acknowledged (Block1) so far.
    pub done: usize,
    /// The size of the whole representation, if known.
    pub total: Option<usize>,
}
