//! No-Response (RFC 7967): a client tells the server which response classes it does not
//! want; the server suppresses them, and the client stops waiting for them.

use crate::code::{Code, CodeClass};
use crate::message::Message;
use crate::option::OptionNumber;

/// The classes a request is not interested in (RFC 7967 §2.1): bit 1 (2) for 2.xx, bit 3
/// (8) for 4.xx, bit 4 (16) for 5.xx. Absent or 0: interested in everything.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NoResponse(pub u8);

impl NoResponse {
    /// Not interested in 2.xx.
    pub const SUCCESS: u8 = 0x02;
    /// Not interested in 4.xx.
    pub const CLIENT_ERROR: u8 = 0x08;
    /// Not interested in 5.xx.
    pub const SERVER_ERROR: u8 = 0x10;
    /// Not interested in any response.
    pub const ALL: NoResponse = NoResponse(Self::SUCCESS | Self::CLIENT_ERROR | Self::SERVER_ERROR);

    /// The No-Response option of a request (values that do not fit a byte are ignored).
    pub fn of(request: &Message<'_>) -> NoResponse {
        let v = request.uint_option(OptionNumber::NO_RESPONSE).unwrap_or(0);
        NoResponse(u8::try_from(v).unwrap_or(0))
    }

    /// Whether a response with `code` is to be suppressed.
    pub fn suppresses(self, code: Code) -> bool {
        let bit = match code.kind() {
            CodeClass::Success => Self::SUCCESS,
            CodeClass::ClientError => Self::CLIENT_ERROR,
            CodeClass::ServerError => Self::SERVER_ERROR,
            _ => 0,
        };
        self.0 & bit != 0
    }

    /// No response of any class will come.
    pub fn suppresses_all(self) -> bool {
        self.0 & Self::ALL.0 == Self::ALL.0
    }

    /// Some class is suppressed: silence may be an answer.
    pub fn suppresses_any(self) -> bool {
        self.0 & Self::ALL.0 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let n = NoResponse(NoResponse::SUCCESS);
        assert!(n.suppresses(Code::CHANGED) && !n.suppresses(Code::NOT_FOUND));
        assert!(NoResponse(26).suppresses_all());
        assert!(
            NoResponse(24).suppresses(Code::INTERNAL_SERVER_ERROR)
                && !NoResponse(24).suppresses_all()
        );
        assert!(!NoResponse(0).suppresses_any());
    }
}
