//! The control queue's entries: bodyless messages the endpoint generates itself without a
//! slot (empty ACK or RST, 4.02, 5.03 + Max-Age), sent ahead of slot messages.

use crate::code::Code;
use crate::exchange::Token;
use crate::message::MessageType;

/// A response the endpoint generates itself, without a slot.
#[derive(Clone, Copy, Debug)]
pub(super) enum ControlKind {
    /// Empty ACK or RST.
    Empty { ty: MessageType, mid: u16 },
    /// A bodyless response (4.02, 5.03, ...).
    Response {
        ty: MessageType,
        mid: u16,
        code: Code,
        token: Token,
        max_age: Option<u32>,
    },
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Control<A> {
    pub(super) peer: A,
    pub(super) kind: ControlKind,
}
