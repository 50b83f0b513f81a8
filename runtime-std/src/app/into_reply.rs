//! What an async handler may return ([`IntoReply`]): a [`Reply`], a code, text, bytes, a
//! `(Code, body)` pair, or a `Result` of two of them, so that a typed application error
//! becomes its 4.xx/5.xx reply.

use coap_core::{Code, ContentFormat};

use crate::reply::Reply;

/// Turns a handler's output into the response sent.
///
/// ```
/// use coap_std::app::IntoReply;
/// use coap_std::{Code, Reply};
///
/// /// An application error with its CoAP code (RFC 7252 §5.9).
/// enum AppError {
///     NoSensor,
/// }
///
/// impl IntoReply for AppError {
///     fn into_reply(self) -> Reply {
///         match self {
///             AppError::NoSensor => Reply::new(Code::SERVICE_UNAVAILABLE).payload("no sensor"),
///         }
///     }
/// }
///
/// let failed: Result<String, AppError> = Err(AppError::NoSensor);
/// assert_eq!(failed.into_reply().code, Code::SERVICE_UNAVAILABLE);
/// ```
pub trait IntoReply {
    /// The reply.
    fn into_reply(self) -> Reply;
}

impl IntoReply for Reply {
    fn into_reply(self) -> Reply {
        self
    }
}

/// A code without a payload.
impl IntoReply for Code {
    fn into_reply(self) -> Reply {
        Reply::new(self)
    }
}

/// 2.04 Changed, the answer to a POST or PUT with nothing to say.
impl IntoReply for () {
    fn into_reply(self) -> Reply {
        Reply::new(Code::CHANGED)
    }
}

/// 2.05 Content, text/plain.
impl IntoReply for String {
    fn into_reply(self) -> Reply {
        Reply::new(Code::CONTENT)
            .content_format(ContentFormat::TEXT_PLAIN)
            .payload(self)
    }
}

/// 2.05 Content, text/plain.
impl IntoReply for &'static str {
    fn into_reply(self) -> Reply {
        self.to_owned().into_reply()
    }
}

/// 2.05 Content, application/octet-stream.
impl IntoReply for Vec<u8> {
    fn into_reply(self) -> Reply {
        Reply::new(Code::CONTENT)
            .content_format(ContentFormat::OCTET_STREAM)
            .payload(self)
    }
}

/// The body's reply with another code.
impl<T: IntoReply> IntoReply for (Code, T) {
    fn into_reply(self) -> Reply {
        let mut reply = self.1.into_reply();
        reply.code = self.0;
        reply
    }
}

impl<T: IntoReply, E: IntoReply> IntoReply for Result<T, E> {
    fn into_reply(self) -> Reply {
        match self {
            Ok(t) => t.into_reply(),
            Err(e) => e.into_reply(),
        }
    }
}
