//! The event queue: what the application learns ([`Event`]), recorded without borrowing
//! (`EventRecord`) and lent out one at a time by `poll_event` from the slot that holds the
//! message.

use crate::exchange::RequestId;
use crate::message::Message;

/// Something the application should know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a, A> {
    /// The response to a request (RFC 7252 §5.3.2: matched by token and peer). A group
    /// request gets one per responder (matched by token, `peer` is the responder) until its
    /// window closes with `Timeout`.
    Response {
        /// The request.
        id: RequestId,
        /// Who answered.
        peer: A,
        /// The response; it stays valid until the next call to `poll_event`.
        message: Message<'a>,
    },
    /// A notification of an observation (RFC 7641): a response carrying Observe. More
    /// follow until a `Response` (the final one), `Timeout`, `Reset`, or cancellation.
    /// Reordered (stale) notifications are not reported (§3.4).
    Notification {
        /// The observe request.
        id: RequestId,
        /// Who notified.
        peer: A,
        /// The notification; valid until the next call to `poll_event`.
        message: Message<'a>,
    },
    /// One block of a Block2 response (RFC 7959 §2.4) that has more blocks: its payload
    /// belongs at the offset its Block2 option gives. The endpoint requests the next
    /// block itself; the last block arrives as `Response`.
    Block {
        /// The request.
        id: RequestId,
        /// Who answered.
        peer: A,
        /// The block; valid until the next call to `poll_event`.
        message: Message<'a>,
    },
    /// The exchange ended without a usable response (see [`FailReason`]).
    Failed {
        /// The request.
        id: RequestId,
        /// Why.
        reason: FailReason,
    },
    /// A Block1 upload's block was accepted with 2.31 Continue (RFC 7959 §2.5): hand the
    /// next `size` bytes of the body, from `offset`, to `Endpoint::upload_next`.
    Continue {
        /// The upload.
        id: RequestId,
        /// Where the next block starts in the body.
        offset: usize,
        /// The block size the server accepts (it may have asked for smaller blocks).
        size: usize,
    },
    /// The request asked for no response (RFC 7967) and none came: for a request that
    /// suppressed every class, as soon as it was sent (NON) or acknowledged (CON); for one
    /// that suppressed some classes, when the deadline passed in silence.
    NoResponse {
        /// The request.
        id: RequestId,
    },
    /// No response within the deadline, or CON retransmissions exhausted. For a group
    /// request (`Endpoint::request_group`) the end of the collection window: every
    /// response that came was reported before it.
    Timeout {
        /// The request.
        id: RequestId,
    },
    /// The peer rejected the request with RST.
    Reset {
        /// The request.
        id: RequestId,
    },
}

impl<A> Event<'_, A> {
    /// The request the event belongs to.
    pub fn id(&self) -> RequestId {
        match self {
            Event::Response { id, .. }
            | Event::Notification { id, .. }
            | Event::Block { id, .. }
            | Event::Failed { id, .. }
            | Event::Continue { id, .. }
            | Event::NoResponse { id }
            | Event::Timeout { id }
            | Event::Reset { id } => *id,
        }
    }
}

/// Why an exchange failed (besides timeouts and resets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FailReason {
    /// The ETag changed between blocks of a Block2 transfer: the representation changed
    /// while it was being transferred (RFC 7959 §2.4). Start again.
    RepresentationChanged,
    /// The network said the peer cannot be reached (an ICMP error the runtime read and
    /// fed in with `Endpoint::handle_unreachable`).
    Unreachable(Unreachable),
}

/// Why the network says a peer cannot be reached: the ICMP errors a UDP sender sees
/// (RFC 792 type 3, RFC 4443 §3.1), as a runtime reads them (on Linux from the socket's
/// error queue with `IP_RECVERR` / `IPV6_RECVERR`; smoltcp reports none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Unreachable {
    /// Nothing listens on the peer's port (ICMP port unreachable).
    Port,
    /// The host is unreachable (ICMP host unreachable, or no route / address unreachable).
    Host,
    /// The peer's network is unreachable.
    Network,
    /// Communication with the peer is administratively prohibited (a firewall said so).
    Prohibited,
}

impl core::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Unreachable::Port => "port unreachable",
            Unreachable::Host => "host unreachable",
            Unreachable::Network => "network unreachable",
            Unreachable::Prohibited => "communication administratively prohibited",
        })
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) enum EventRecord {
    Response {
        id: RequestId,
        slot: u16,
        generation: u16,
    },
    Notification {
        id: RequestId,
        slot: u16,
        generation: u16,
    },
    Block {
        id: RequestId,
        slot: u16,
        generation: u16,
    },
    Failed(RequestId, FailReason),
    NoResponse(RequestId),
    Continue(RequestId, crate::block::Block),
    Timeout(RequestId),
    Reset(RequestId),
}

impl EventRecord {
    /// The request an event belongs to, and the slot holding its message, if any.
    pub(super) fn parts(self) -> (RequestId, Option<(u16, u16)>) {
        match self {
            EventRecord::Response {
                id,
                slot,
                generation,
            }
            | EventRecord::Notification {
                id,
                slot,
                generation,
            }
            | EventRecord::Block {
                id,
                slot,
                generation,
            } => (id, Some((slot, generation))),
            EventRecord::Failed(id, _)
            | EventRecord::NoResponse(id)
            | EventRecord::Continue(id, _)
            | EventRecord::Timeout(id)
            | EventRecord::Reset(id) => (id, None),
        }
    }
}
