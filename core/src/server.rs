//! The server side of an exchange (RFC 7252 §5.2): what a handler sees of a request, how
//! it writes the response in place, and how it defers a response to answer later.

use crate::code::{Code, Method};
use crate::message::{BuildError, Message, MessageBuilder};
use crate::option::OptionNumber;
use crate::time::Instant;

/// Identifies a deferred exchange, to answer it later with `Endpoint::respond`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResponseHandle {
    pub(crate) slot: u16,
    pub(crate) generation: u16,
}

/// A request as a handler sees it.
#[derive(Clone, Copy, Debug)]
pub struct IncomingRequest<'a, A> {
    pub(crate) peer: A,
    pub(crate) message: Message<'a>,
    pub(crate) handle: ResponseHandle,
    pub(crate) now: Instant,
}

impl<'a, A: Copy> IncomingRequest<'a, A> {
    /// The peer that sent the request.
    pub fn peer(&self) -> A {
        self.peer
    }
}

impl<'a, A> IncomingRequest<'a, A> {
    /// The request message.
    pub fn message(&self) -> &Message<'a> {
        &self.message
    }

    /// The Observe option of the request (0 register, 1 deregister; RFC 7641 §2).
    pub fn observe(&self) -> Option<u32> {
        self.message.observe()
    }

    /// The method, if the code is a known one.
    pub fn method(&self) -> Option<Method> {
        self.message.code().method()
    }

    /// The request payload.
    pub fn payload(&self) -> &'a [u8] {
        self.message.payload()
    }

    /// The time the request was received.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The handle to answer later if the handler returns [`Outcome::Defer`].
    pub fn handle(&self) -> ResponseHandle {
        self.handle
    }
}

/// What a handler did with a request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outcome {
    /// The response in the writer is complete: send it (piggybacked on the ACK for a CON
    /// request, as NON for a NON request).
    Respond,
    /// Answer later through `Endpoint::respond` with [`IncomingRequest::handle`]; a CON
    /// request is acknowledged with an empty ACK meanwhile (§5.2.2).
    Defer,
}

/// Writes a response straight into the endpoint's message buffer (no copy). The header
/// (type, Message ID, token) is the endpoint's; the handler sets the code (2.05 Content
/// unless changed), options in any order, and the payload last.
#[derive(Debug)]
pub struct ResponseWriter<'b> {
    pub(crate) builder: MessageBuilder<'b>,
    pub(crate) observe_key: Option<u32>,
    pub(crate) notification: bool,
}

impl<'b> ResponseWriter<'b> {
    pub(crate) fn new(builder: MessageBuilder<'b>) -> Self {
        ResponseWriter {
            builder,
            observe_key: None,
            notification: false,
        }
    }

    /// Declares the resource observable under `key` (RFC 7641). If the request asked to
    /// observe (Observe=0) and the response is a success, the endpoint registers the
    /// client (capacity permitting) and adds the Observe option; later
    /// `Endpoint::notify(key, ..)` sends notifications to every observer of `key`.
    pub fn observable(&mut self, key: u32) -> &mut Self {
        self.observe_key = Some(key);
        self
    }

    /// For notifications only: send this one as CON (acknowledged, retransmitted) instead
    /// of NON. RFC 7641 §4.5: the endpoint also makes one CON at least every
    /// `Config::observe_con_interval` by itself.
    pub fn confirmable(&mut self, con: bool) -> &mut Self {
        if self.notification {
            let ty = if con {
                crate::MessageType::Con
            } else {
                crate::MessageType::Non
            };
            self.builder.set_type(ty);
        }
        self
    }

    /// True when writing a notification rather than a response to a request.
    pub fn is_notification(&self) -> bool {
        self.notification
    }

    /// Sets the response code.
    pub fn set_code(&mut self, code: Code) -> &mut Self {
        self.builder.set_code(code);
        self
    }

    /// The response code so far.
    pub fn code(&self) -> Code {
        self.builder.code()
    }

    /// Adds an option (see [`MessageBuilder::option`]).
    pub fn option(&mut self, number: OptionNumber, value: &[u8]) -> Result<&mut Self, BuildError> {
        self.builder.option(number, value)?;
        Ok(self)
    }

    /// Adds a uint option.
    pub fn option_uint(
        &mut self,
        number: OptionNumber,
        value: u32,
    ) -> Result<&mut Self, BuildError> {
        self.builder.option_uint(number, value)?;
        Ok(self)
    }

    /// Adds a string option.
    pub fn option_str(
        &mut self,
        number: OptionNumber,
        value: &str,
    ) -> Result<&mut Self, BuildError> {
        self.builder.option_str(number, value)?;
        Ok(self)
    }

    /// Sets the Content-Format option.
    pub fn content_format(
        &mut self,
        format: crate::ContentFormat,
    ) -> Result<&mut Self, BuildError> {
        self.option_uint(OptionNumber::CONTENT_FORMAT, u32::from(format.0))
    }

    /// Appends the payload.
    pub fn payload(&mut self, payload: &[u8]) -> Result<&mut Self, BuildError> {
        self.builder.payload(payload)?;
        Ok(self)
    }

    /// Space for writing the payload in place; commit with [`ResponseWriter::set_payload_len`].
    pub fn payload_buf(&mut self) -> Result<&mut [u8], BuildError> {
        self.builder.payload_buf()
    }

    /// Commits `n` bytes written into [`ResponseWriter::payload_buf`].
    pub fn set_payload_len(&mut self, n: usize) -> Result<(), BuildError> {
        self.builder.set_payload_len(n)
    }

    /// The underlying message builder.
    pub fn builder(&mut self) -> &mut MessageBuilder<'b> {
        &mut self.builder
    }

    /// Convenience: a complete response with a code, a Content-Format and a payload.
    pub fn respond(
        &mut self,
        code: Code,
        format: Option<crate::ContentFormat>,
        payload: &[u8],
    ) -> Result<(), BuildError> {
        self.set_code(code);
        if let Some(f) = format {
            self.content_format(f)?;
        }
        self.payload(payload)?;
        Ok(())
    }
}

/// Application logic behind an endpoint's server role.
pub trait Handler<A> {
    /// Handles one request (never a duplicate: the endpoint filters those). Either write
    /// the response into `response` and return [`Outcome::Respond`], or return
    /// [`Outcome::Defer`] and answer later.
    fn handle(
        &mut self,
        request: &IncomingRequest<'_, A>,
        response: &mut ResponseWriter<'_>,
    ) -> Outcome;

    /// Whether this handler understands a critical option (RFC 7252 §5.4.1). By default,
    /// every option in the crate's registry; a request with any other critical option gets
    /// 4.02 Bad Option without reaching the handler.
    fn understands(&self, option: OptionNumber) -> bool {
        option.info().is_some()
    }
}

/// A handler for endpoints that only act as clients: every request gets 4.04 Not Found.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoServer;

impl<A> Handler<A> for NoServer {
    fn handle(&mut self, _: &IncomingRequest<'_, A>, response: &mut ResponseWriter<'_>) -> Outcome {
        response.set_code(Code::NOT_FOUND);
        Outcome::Respond
    }
}

impl<A, F> Handler<A> for F
where
    F: FnMut(&IncomingRequest<'_, A>, &mut ResponseWriter<'_>) -> Outcome,
{
    fn handle(
        &mut self,
        request: &IncomingRequest<'_, A>,
        response: &mut ResponseWriter<'_>,
    ) -> Outcome {
        self(request, response)
    }
}
