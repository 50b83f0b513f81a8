//! Client exchanges as the runner and the client tasks share them: what a request or an
//! observation waits for, and the storage its response body is reassembled in.

use coap_core::code::CodeClass;
use coap_core::{Block, Code, Message, OptionNumber, RequestId};
use embassy_sync::waitqueue::WakerRegistration;

use crate::error::Error;

/// What an exchange of the table is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Use {
    Free,
    /// One request, one outcome.
    Request(RequestId),
    /// An observation (RFC 7641): notifications until the final response.
    Observation(RequestId),
}

/// The header fields of a stored response that [`crate::Response`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub code: Code,
    pub content_format: Option<u16>,
    pub observe: Option<u32>,
    /// The outer OSCORE option of the response (RFC 8613 §6.1), for verifying it under
    /// the request's context ([`crate::oscore`]).
    #[cfg(feature = "oscore")]
    pub oscore: OuterOscore,
}

/// The value of a response's OSCORE option, as the exchange keeps it (RFC 8613 §6.1: in
/// a response at most flags, a Partial IV of up to 5 bytes and a kid of up to 7; a kid
/// context is not allowed there, §5).
#[cfg(feature = "oscore")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OuterOscore {
    /// No OSCORE option: the response is not protected.
    Absent,
    /// The option's value.
    Value {
        bytes: [u8; OuterOscore::MAX],
        len: u8,
    },
    /// Longer than any valid response option.
    TooLong,
}

#[cfg(feature = "oscore")]
impl OuterOscore {
    const MAX: usize = 16;

    fn of(message: &Message<'_>) -> Self {
        let Some(o) = message.option(OptionNumber::OSCORE) else {
            return OuterOscore::Absent;
        };
        let mut bytes = [0u8; OuterOscore::MAX];
        match bytes.get_mut(..o.value.len()) {
            Some(dst) => {
                dst.copy_from_slice(o.value);
                OuterOscore::Value {
                    bytes,
                    len: o.value.len() as u8,
                }
            }
            None => OuterOscore::TooLong,
        }
    }

    /// The option value; `None` if there was none or it was too long.
    pub fn value(&self) -> Option<&[u8]> {
        match self {
            OuterOscore::Value { bytes, len } => bytes.get(..usize::from(*len)),
            _ => None,
        }
    }
}

/// What a client task is handed next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// A complete response (or notification): its head; the body is the exchange's.
    Message(Head),
    /// The exchange failed.
    Failed(Error),
}

/// One client exchange: `B` bytes for the (reassembled) body.
pub(crate) struct Exchange<const B: usize> {
    pub use_: Use,
    body: [u8; B],
    /// Bytes of `body` received so far.
    pub len: usize,
    /// The head of the response being reassembled (from its first block).
    head: Option<Head>,
    pub delivery: Option<Delivery>,
    /// No delivery follows the pending one (or none is pending and none will come).
    pub ended: bool,
    /// A Block1 upload's next block is wanted (RFC 7959 §2.5): offset and size.
    pub continue_at: Option<(usize, usize)>,
    /// Notifications replaced by a newer one before the client took them (RFC 7641 §1.3:
    /// the newest state is what matters).
    pub overwritten: u32,
    pub waker: WakerRegistration,
}

impl<const B: usize> Exchange<B> {
    pub const fn new() -> Self {
        Exchange {
            use_: Use::Free,
            body: [0; B],
            len: 0,
            head: None,
            delivery: None,
            ended: false,
            continue_at: None,
            overwritten: 0,
            waker: WakerRegistration::new(),
        }
    }

    /// Back to free (the waker registration stays; it is replaced on the next use).
    pub fn reset(&mut self) {
        self.use_ = Use::Free;
        self.len = 0;
        self.head = None;
        self.delivery = None;
        self.ended = false;
        self.continue_at = None;
        self.overwritten = 0;
    }

    /// The core request this exchange follows, if any.
    pub fn id(&self) -> Option<RequestId> {
        match self.use_ {
            Use::Request(id) | Use::Observation(id) => Some(id),
            Use::Free => None,
        }
    }

    pub fn body(&self) -> &[u8] {
        self.body.get(..self.len).unwrap_or_default()
    }

    /// Stores a response, a notification or one block of either at the offset its Block2
    /// option gives (RFC 7959 §2.4: the core fetches the blocks in order). Returns whether
    /// the representation is complete.
    pub fn store(&mut self, message: &Message<'_>) -> Result<bool, Error> {
        let block = Block::of(message, OptionNumber::BLOCK2);
        let offset = block.map_or(0, |b| b.offset());
        if offset == 0 {
            // A new representation replaces one the client has not taken yet; its body
            // is about to be overwritten.
            if matches!(self.delivery, Some(Delivery::Message(_))) {
                self.delivery = None;
                self.overwritten = self.overwritten.saturating_add(1);
            }
            self.len = 0;
            self.head = Some(Head {
                code: message.code(),
                content_format: message.content_format(),
                observe: message.observe(),
                #[cfg(feature = "oscore")]
                oscore: OuterOscore::of(message),
            });
        } else if offset > self.len || self.head.is_none() {
            // A gap: a block of a transfer whose start we did not see.
            return Err(Error::Incomplete);
        }
        let payload = message.payload();
        let end = offset.saturating_add(payload.len());
        let dst = self.body.get_mut(offset..end).ok_or(Error::TooLarge)?;
        dst.copy_from_slice(payload);
        self.len = end;
        let more = block.is_some_and(|b| b.more) && message.code().kind() == CodeClass::Success;
        Ok(!more)
    }

    /// Makes the stored representation the next delivery.
    pub fn deliver(&mut self) {
        if let Some(head) = self.head {
            self.delivery = Some(Delivery::Message(head));
        }
        self.waker.wake();
    }

    /// Ends the exchange with an error delivery.
    pub fn fail(&mut self, error: Error) {
        self.delivery = Some(Delivery::Failed(error));
        self.ended = true;
        self.waker.wake();
    }
}
