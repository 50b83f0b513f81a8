//! Follow-up requests: a request of ours written again for the next step of its exchange
//! (the next Block2 or Block1 block, RFC 7959 §2.4/§2.5; a deregistration, RFC 7641 §3.6;
//! the rest of a group member's answer, RFC 7959 §2.8). The same code and options, less
//! those the step replaces, plus the step's own option.

use crate::message::{BuildError, Message, MessageBuilder, MessageType};
use crate::option::OptionNumber;
use crate::token::Token;

/// Writes `req` again into `buf` as `ty` with `token`: its options except those `drop`
/// names, then `add` (an option with a uint value), then `payload`. Returns the length.
pub(super) fn rewrite_request(
    buf: &mut [u8],
    req: &Message<'_>,
    ty: MessageType,
    token: &Token,
    drop: impl Fn(OptionNumber) -> bool,
    add: (OptionNumber, u32),
    payload: &[u8],
) -> Result<usize, BuildError> {
    let mut b = MessageBuilder::new(buf, ty, req.code(), 0, token.as_slice())?;
    for o in req.options().filter(|o| !drop(o.number)) {
        b.option(o.number, o.value)?;
    }
    b.option_uint(add.0, add.1)?;
    b.payload(payload)?;
    Ok(b.finish())
}
