//! The server side of an exchange (RFC 7252 §5.2): what a handler sees of a request, how
//! it writes the response in place, and how it defers a response to answer later.

use crate::block::Block;
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
    pub(crate) delivery: crate::multicast::Delivery,
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

    /// Whether the request came to this endpoint's address or to a group it listens on
    /// (RFC 7252 §8): a handler may stay silent on a multicast request with nothing useful
    /// to say ([`Outcome::Ignore`]).
    pub fn delivery(&self) -> crate::multicast::Delivery {
        self.delivery
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
    /// Send no response (RFC 7252 §8.2: e.g. a multicast request the server has nothing
    /// useful to say to); a CON request still gets its empty ACK.
    Ignore,
}

/// Writes a response straight into the endpoint's message buffer (no copy). The header
/// (type, Message ID, token) is the endpoint's; the handler sets the code (2.05 Content
/// unless changed), options in any order, and the payload last.
#[derive(Debug)]
pub struct ResponseWriter<'b> {
    pub(crate) builder: MessageBuilder<'b>,
    pub(crate) observe_key: Option<u32>,
    pub(crate) notification: bool,
    /// The request's Block2 option (RFC 7959 §2.4), for serving by offset.
    pub(crate) block2: Option<Block>,
    /// The request asked for Size2 (Size2=0, §4).
    pub(crate) size2: bool,
    /// Largest block size this endpoint serves (`Config::max_block_szx`, or less for a
    /// client whose path carries less).
    pub(crate) max_szx: u8,
    /// The largest payload the path to the client carries in one message, once a
    /// path-MTU error said so (`Endpoint::handle_path_mtu`): a larger representation goes
    /// block-wise even when it would fit in the message slot (RFC 7252 §4.6, RFC 7959 §2.2).
    pub(crate) path_block: Option<usize>,
}

impl<'b> ResponseWriter<'b> {
    pub(crate) fn new(builder: MessageBuilder<'b>) -> Self {
        ResponseWriter {
            builder,
            observe_key: None,
            notification: false,
            block2: None,
            size2: false,
            max_szx: crate::block::MAX_SZX,
            path_block: None,
        }
    }

    /// Serves a representation of `total` bytes by offset (RFC 7959 §2.4): `fill(offset,
    /// dst)` writes the bytes at `offset` into `dst`. If it fits and no block was asked
    /// for, the whole representation goes in this message; otherwise the block the
    /// request asked for (Block2, early negotiation of a smaller size honoured, any block
    /// number on its own) with Block2 and Size2. The core never holds the whole
    /// representation. Add an ETag before calling it so clients detect changes between
    /// blocks. A block number past the end gets 4.02 Bad Option.
    pub fn payload_by_offset(
        &mut self,
        total: usize,
        fill: impl FnOnce(usize, &mut [u8]),
    ) -> Result<(), BuildError> {
        // Room for the payload marker, Block2 (≤ 4 bytes) and Size2 (≤ 5 bytes).
        let whole = self.builder.remaining().saturating_sub(1);
        let path_fits = self.path_block.is_none_or(|b| total <= b);
        if self.block2.is_none() && total <= whole && path_fits {
            let dst = self
                .builder
                .payload_buf()?
                .get_mut(..total)
                .ok_or(BuildError::BufferTooSmall)?;
            fill(0, dst);
            return self.builder.set_payload_len(total);
        }
        let room = self.builder.remaining().saturating_sub(1 + 4 + 5);
        let mut szx = self.max_szx.min(Block::szx_for(room));
        if room < 16 {
            return Err(BuildError::BufferTooSmall);
        }
        let offset = match self.block2 {
            // Early negotiation: the client asked for smaller blocks than ours.
            Some(b) if b.szx < szx => {
                szx = b.szx;
                b.offset()
            }
            // Larger blocks asked for: serve the same offset in our size (§2.4).
            Some(b) => b.offset(),
            None => 0,
        };
        let block = Block::new((offset >> (szx + 4)) as u32, false, szx);
        if offset >= total && !(offset == 0 && total == 0) {
            self.set_code(Code::BAD_OPTION);
            return Ok(());
        }
        let n = block.size().min(total - offset);
        let block = Block::new(block.num, offset + n < total, szx);
        self.builder
            .option_uint(OptionNumber::BLOCK2, block.encode())?;
        if self.size2 || block.num == 0 {
            self.builder.option_uint(
                OptionNumber::SIZE2,
                u32::try_from(total).unwrap_or(u32::MAX),
            )?;
        }
        let dst = self
            .builder
            .payload_buf()?
            .get_mut(..n)
            .ok_or(BuildError::BufferTooSmall)?;
        fill(offset, dst);
        self.builder.set_payload_len(n)
    }

    /// [`ResponseWriter::payload_by_offset`] for a representation held in memory.
    pub fn payload_blockwise(&mut self, representation: &[u8]) -> Result<(), BuildError> {
        self.payload_by_offset(representation.len(), |offset, dst| {
            let end = offset + dst.len();
            if let Some(src) = representation.get(offset..end) {
                dst.copy_from_slice(src);
            }
        })
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

    /// Whether this handler understands a critical option (RFC 7252 §5.4.1). A CON request
    /// with a critical option it does not understand gets 4.02 Bad Option (a NON one is
    /// rejected with RST) without reaching the handler; Proxy-Uri and Proxy-Scheme get
    /// 5.05 Proxying Not Supported (§5.7.2).
    ///
    /// By default: every option in the registry except those that need support the
    /// handler must declare: Block1 (a resource that ignored it would truncate uploads,
    /// RFC 7959 §2.3), Proxy-Uri and Proxy-Scheme (proxies only), and OSCORE (RFC 8613).
    fn understands(&self, option: OptionNumber) -> bool {
        default_understands(option)
    }

    /// Whether running `request` twice does no more than running it once, which decides
    /// how its duplicate detection entry is kept (RFC 7252 §4.5): an
    /// [`Idempotence::AtMostOnce`] request is never executed again within
    /// EXCHANGE_LIFETIME (when the table cannot hold it, new ones get 5.03 + Max-Age); an
    /// [`Idempotence::Idempotent`] one's entry may be dropped early under load, after which
    /// a late duplicate may run again. By default by method ([`Idempotence::of`]); a
    /// handler whose POST is idempotent in effect (a resource directory's re-registration
    /// replaces the registration, RFC 9176 §5.3) may say so and be served at any load.
    /// Asked only for requests whose method is not idempotent by itself (POST, PATCH,
    /// unknown methods): a handler may relax at-most-once, not impose it on a GET.
    fn idempotence(&self, request: &crate::message::Message<'_>) -> Idempotence {
        Idempotence::of(request)
    }
}

/// Whether a request may be executed more than once (RFC 7252 §5.1, §4.5); see
/// [`Handler::idempotence`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Idempotence {
    /// Repeating it has the effect of doing it once: a duplicate may be executed again.
    Idempotent,
    /// Executed at most once: a duplicate is answered from the remembered response.
    AtMostOnce,
}

impl Idempotence {
    /// By method: GET, PUT, DELETE, FETCH and iPATCH are idempotent (RFC 7252 §5.1,
    /// RFC 8132 §2); POST, PATCH and unknown methods are not.
    pub fn of(request: &crate::message::Message<'_>) -> Idempotence {
        match crate::code::Method::from_code(request.code()) {
            Some(m) if m.is_idempotent() => Idempotence::Idempotent,
            _ => Idempotence::AtMostOnce,
        }
    }
}

/// The default of [`Handler::understands`]: registered options, minus those that need
/// explicit support (Block1, Proxy-Uri, Proxy-Scheme, OSCORE).
pub fn default_understands(option: OptionNumber) -> bool {
    option.info().is_some()
        && !matches!(
            option,
            OptionNumber::BLOCK1
                | OptionNumber::PROXY_URI
                | OptionNumber::PROXY_SCHEME
                | OptionNumber::OSCORE
        )
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

/// A handler that also understands some options beyond the default (e.g. Block1 for a
/// handler that reassembles uploads): `Understanding::new(handler, &[OptionNumber::BLOCK1])`.
#[derive(Clone, Copy, Debug)]
pub struct Understanding<H> {
    handler: H,
    options: &'static [OptionNumber],
}

impl<H> Understanding<H> {
    /// Wraps `handler`, declaring `options` understood.
    pub const fn new(handler: H, options: &'static [OptionNumber]) -> Self {
        Understanding { handler, options }
    }
}

impl<A, H: Handler<A>> Handler<A> for Understanding<H> {
    fn handle(
        &mut self,
        request: &IncomingRequest<'_, A>,
        response: &mut ResponseWriter<'_>,
    ) -> Outcome {
        self.handler.handle(request, response)
    }

    fn understands(&self, option: OptionNumber) -> bool {
        self.options.contains(&option) || self.handler.understands(option)
    }

    fn idempotence(&self, request: &crate::message::Message<'_>) -> Idempotence {
        self.handler.idempotence(request)
    }
}
