//! Client exchanges (RFC 7252 §5.3): request identifiers and the phases a request
//! goes through until its response, reset or timeout.

use crate::message::MessageType;
use crate::reliability::Retransmit;
use crate::time::Instant;
pub use crate::token::Token;

/// Identifies a request started with `Endpoint::request`; events carry it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RequestId(pub u32);

/// What a client exchange is for (RFC 7252 §8.1: a group request collects many responses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExchangeKind {
    /// One request, one peer, one final response.
    Unicast,
    /// A request to a group address: every response from any member is delivered until
    /// the deadline, which closes the collection window.
    Group,
    /// The unicast continuation of a group response's Block2 transfer with one responder
    /// (RFC 7959 §2.8): its blocks and last response belong to the group request; its
    /// failure only drops that responder's answer.
    GroupFollowUp,
}

/// Where a client request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientPhase {
    /// Waiting for NSTART or PROBING_RATE (§4.7) before its first transmission.
    Queued,
    /// A CON sent, not yet acknowledged.
    AwaitAck(Retransmit),
    /// A NON sent, or a CON acknowledged by an empty ACK: the response comes separately.
    AwaitResponse,
    /// An established observation (RFC 7641): notifications arrive; not an outstanding
    /// interaction for NSTART.
    Observing,
    /// A Block1 upload got 2.31 Continue: waiting for the application's next block, which
    /// goes out as this Block1 value (RFC 7959 §2.5).
    AwaitBody(crate::block::Block),
}

/// A request of ours in flight.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientExchange<A> {
    pub id: RequestId,
    pub peer: A,
    pub token: Token,
    pub mid: u16,
    pub confirmable: bool,
    pub phase: ClientPhase,
    /// Total deadline (`Config::request_timeout` or the per-request value).
    pub deadline: Instant,
    /// Anything heard from the peer for this exchange (ACK, RST or response).
    pub heard: bool,
    /// Set for a GET/FETCH with Observe=0 (RFC 7641 §3.1).
    pub observe: Option<crate::observe::Observation>,
    /// ETag of the first block of a Block2 transfer: later blocks must carry the same
    /// (RFC 7959 §2.4), or the representation changed under us.
    pub etag: Option<Token>,
    /// No-Response classes the request asked the server to suppress (RFC 7967 §2).
    pub no_response: crate::no_response::NoResponse,
    /// Fetches the rest of a notification larger than one block (RFC 7959 §3.4 with
    /// RFC 7641): its last block is reported as a `Block`, not as the final `Response`.
    pub notification_rest: bool,
    /// Unicast, a group request, or a group response's continuation.
    pub kind: ExchangeKind,
}

impl<A> ClientExchange<A> {
    /// The message type of the exchange's requests (follow-ups keep the first one's).
    pub fn message_type(&self) -> MessageType {
        if self.confirmable {
            MessageType::Con
        } else {
            MessageType::Non
        }
    }

    /// Counts towards NSTART once transmitted, until an observation is established.
    pub fn is_outstanding(&self) -> bool {
        !matches!(
            self.phase,
            ClientPhase::Queued | ClientPhase::Observing | ClientPhase::AwaitBody(_)
        )
    }
}
