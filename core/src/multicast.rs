//! Group communication (RFC 7252 §8): how a request reached the server, and the rules that
//! follow from a multicast arrival.
//!
//! The core never looks at addresses to decide whether one is a group: the runtime knows on
//! which socket or destination address a datagram arrived and says so by calling
//! [`crate::Endpoint::handle_group_datagram`] instead of `handle_datagram`; a client asks
//! for a group exchange with [`crate::Endpoint::request_group`].

use crate::code::{Code, CodeClass};
use crate::message::Message;
use crate::no_response::NoResponse;
use crate::option::OptionNumber;

/// How a request reached this server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Delivery {
    /// Sent to this endpoint's own address.
    Unicast,
    /// Sent to a group (multicast) address this endpoint listens on (RFC 7252 §8.1).
    Multicast,
}

/// RFC 7252 §8.2: a server may ignore a multicast request when it has nothing useful to
/// say, and error responses (4.xx, 5.xx) are that case unless the client asked for them
/// with a No-Response option that leaves their class unsuppressed (RFC 7967 §2.1; e.g.
/// No-Response 0, "interested in everything"). Success responses go out unless No-Response
/// suppresses them (checked by the endpoint for every request).
pub(crate) fn error_wanted(request: &Message<'_>, code: Code) -> bool {
    match code.kind() {
        CodeClass::ClientError | CodeClass::ServerError => {
            request.option(OptionNumber::NO_RESPONSE).is_some()
                && !NoResponse::of(request).suppresses(code)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{MessageBuilder, MessageType};

    fn request(no_response: Option<u32>, buf: &mut [u8]) -> Message<'_> {
        let mut b = MessageBuilder::new(buf, MessageType::Non, Code::GET, 1, &[1]).unwrap();
        if let Some(v) = no_response {
            b.option_uint(OptionNumber::NO_RESPONSE, v).unwrap();
        }
        let n = b.finish();
        Message::parse(&buf[..n]).unwrap()
    }

    #[test]
    fn errors_only_when_asked_for() {
        let mut buf = [0u8; 32];
        let plain = request(None, &mut buf);
        assert!(error_wanted(&plain, Code::CONTENT));
        assert!(!error_wanted(&plain, Code::NOT_FOUND));
        assert!(!error_wanted(&plain, Code::INTERNAL_SERVER_ERROR));
        let mut buf = [0u8; 32];
        let all = request(Some(0), &mut buf);
        assert!(error_wanted(&all, Code::NOT_FOUND));
        let mut buf = [0u8; 32];
        // Suppress 5.xx only: 4.xx asked for, 5.xx not.
        let some = request(Some(u32::from(NoResponse::SERVER_ERROR)), &mut buf);
        assert!(error_wanted(&some, Code::NOT_FOUND));
        assert!(!error_wanted(&some, Code::INTERNAL_SERVER_ERROR));
    }
}
