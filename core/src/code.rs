//! Message codes: request methods and response codes (RFC 7252 §3, §5.8, §5.9, §12.1;
//! RFC 8132 for FETCH/PATCH/iPATCH).

use core::fmt;

/// A message code as carried in the header: a 3-bit class and a 5-bit detail ("c.dd").
///
/// Kept as the raw byte so that codes this crate does not know (future registrations)
/// still round-trip unchanged; the constants name the registered ones.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Code(pub u8);

/// The class of a code (RFC 7252 §12.1): the top three bits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CodeClass {
    /// 0.00 Empty message (RFC 7252 §4.1).
    Empty,
    /// 0.01–0.31: a request.
    Request,
    /// 2.xx: success.
    Success,
    /// 4.xx: client error.
    ClientError,
    /// 5.xx: server error.
    ServerError,
    /// 7.xx: signaling (RFC 8323, reliable transports only).
    Signaling,
    /// Classes 1, 3 and 6: reserved.
    Reserved,
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $name:ident = ($class:literal, $detail:literal, $text:literal); )*) => {
        impl Code {
            $( $(#[$doc])* pub const $name: Code = Code::new($class, $detail); )*

            /// The registered name of this code, e.g. "Content" for 2.05.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( x if x == Code::new($class, $detail).0 => Some($text), )*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    /// 0.00 Empty.
    EMPTY = (0, 0, "Empty");
    /// 0.01 GET.
    GET = (0, 1, "GET");
    /// 0.02 POST.
    POST = (0, 2, "POST");
    /// 0.03 PUT.
    PUT = (0, 3, "PUT");
    /// 0.04 DELETE.
    DELETE = (0, 4, "DELETE");
    /// 0.05 FETCH (RFC 8132).
    FETCH = (0, 5, "FETCH");
    /// 0.06 PATCH (RFC 8132).
    PATCH = (0, 6, "PATCH");
    /// 0.07 iPATCH (RFC 8132).
    IPATCH = (0, 7, "iPATCH");
    /// 2.01 Created.
    CREATED = (2, 1, "Created");
    /// 2.02 Deleted.
    DELETED = (2, 2, "Deleted");
    /// 2.03 Valid.
    VALID = (2, 3, "Valid");
    /// 2.04 Changed.
    CHANGED = (2, 4, "Changed");
    /// 2.05 Content.
    CONTENT = (2, 5, "Content");
    /// 2.31 Continue (RFC 7959).
    CONTINUE = (2, 31, "Continue");
    /// 4.00 Bad Request.
    BAD_REQUEST = (4, 0, "Bad Request");
    /// 4.01 Unauthorized.
    UNAUTHORIZED = (4, 1, "Unauthorized");
    /// 4.02 Bad Option.
    BAD_OPTION = (4, 2, "Bad Option");
    /// 4.03 Forbidden.
    FORBIDDEN = (4, 3, "Forbidden");
    /// 4.04 Not Found.
    NOT_FOUND = (4, 4, "Not Found");
    /// 4.05 Method Not Allowed.
    METHOD_NOT_ALLOWED = (4, 5, "Method Not Allowed");
    /// 4.06 Not Acceptable.
    NOT_ACCEPTABLE = (4, 6, "Not Acceptable");
    /// 4.08 Request Entity Incomplete (RFC 7959).
    REQUEST_ENTITY_INCOMPLETE = (4, 8, "Request Entity Incomplete");
    /// 4.09 Conflict (RFC 8132).
    CONFLICT = (4, 9, "Conflict");
    /// 4.12 Precondition Failed.
    PRECONDITION_FAILED = (4, 12, "Precondition Failed");
    /// 4.13 Request Entity Too Large.
    REQUEST_ENTITY_TOO_LARGE = (4, 13, "Request Entity Too Large");
    /// 4.15 Unsupported Content-Format.
    UNSUPPORTED_CONTENT_FORMAT = (4, 15, "Unsupported Content-Format");
    /// 4.22 Unprocessable Entity (RFC 8132).
    UNPROCESSABLE_ENTITY = (4, 22, "Unprocessable Entity");
    /// 4.29 Too Many Requests (RFC 8516).
    TOO_MANY_REQUESTS = (4, 29, "Too Many Requests");
    /// 5.00 Internal Server Error.
    INTERNAL_SERVER_ERROR = (5, 0, "Internal Server Error");
    /// 5.01 Not Implemented.
    NOT_IMPLEMENTED = (5, 1, "Not Implemented");
    /// 5.02 Bad Gateway.
    BAD_GATEWAY = (5, 2, "Bad Gateway");
    /// 5.03 Service Unavailable.
    SERVICE_UNAVAILABLE = (5, 3, "Service Unavailable");
    /// 5.04 Gateway Timeout.
    GATEWAY_TIMEOUT = (5, 4, "Gateway Timeout");
    /// 5.05 Proxying Not Supported.
    PROXYING_NOT_SUPPORTED = (5, 5, "Proxying Not Supported");
    /// 5.08 Hop Limit Reached (RFC 8768).
    HOP_LIMIT_REACHED = (5, 8, "Hop Limit Reached");
    /// 7.01 CSM (RFC 8323).
    CSM = (7, 1, "CSM");
    /// 7.02 Ping (RFC 8323).
    PING = (7, 2, "Ping");
    /// 7.03 Pong (RFC 8323).
    PONG = (7, 3, "Pong");
    /// 7.04 Release (RFC 8323).
    RELEASE = (7, 4, "Release");
    /// 7.05 Abort (RFC 8323).
    ABORT = (7, 5, "Abort");
}

impl Code {
    /// Builds a code from class and detail; bits that do not fit are masked off.
    pub const fn new(class: u8, detail: u8) -> Code {
        Code(((class & 0x07) << 5) | (detail & 0x1f))
    }

    /// The class digit (0–7).
    pub const fn class(self) -> u8 {
        self.0 >> 5
    }

    /// The detail (0–31).
    pub const fn detail(self) -> u8 {
        self.0 & 0x1f
    }

    /// Which kind of code this is.
    pub const fn kind(self) -> CodeClass {
        match self.class() {
            0 if self.0 == 0 => CodeClass::Empty,
            0 => CodeClass::Request,
            2 => CodeClass::Success,
            4 => CodeClass::ClientError,
            5 => CodeClass::ServerError,
            7 => CodeClass::Signaling,
            _ => CodeClass::Reserved,
        }
    }

    /// True for 0.01–0.31.
    pub const fn is_request(self) -> bool {
        matches!(self.kind(), CodeClass::Request)
    }

    /// True for 2.xx, 4.xx and 5.xx.
    pub const fn is_response(self) -> bool {
        matches!(
            self.kind(),
            CodeClass::Success | CodeClass::ClientError | CodeClass::ServerError
        )
    }

    /// True for 4.xx and 5.xx.
    pub const fn is_error(self) -> bool {
        matches!(self.kind(), CodeClass::ClientError | CodeClass::ServerError)
    }

    /// The request method, if this is a known one.
    pub const fn method(self) -> Option<Method> {
        Method::from_code(self)
    }
}

impl From<Method> for Code {
    fn from(m: Method) -> Code {
        m.code()
    }
}

/// "2.05 Content", "0.01 GET", or "3.17" for an unregistered code.
impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.class(), self.detail())?;
        match self.name() {
            Some(n) => write!(f, " {n}"),
            None => Ok(()),
        }
    }
}

/// A request method (RFC 7252 §5.8, RFC 8132).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Method {
    /// GET: safe, idempotent.
    Get,
    /// POST: neither safe nor idempotent.
    Post,
    /// PUT: idempotent.
    Put,
    /// DELETE: idempotent.
    Delete,
    /// FETCH: safe, idempotent; the payload is part of the request (RFC 8132 §2).
    Fetch,
    /// PATCH: neither safe nor idempotent (RFC 8132 §3).
    Patch,
    /// iPATCH: idempotent (RFC 8132 §3).
    IPatch,
}

impl Method {
    /// Every method, in code order.
    pub const ALL: [Method; 7] = [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Fetch,
        Method::Patch,
        Method::IPatch,
    ];

    /// The code of this method.
    pub const fn code(self) -> Code {
        match self {
            Method::Get => Code::GET,
            Method::Post => Code::POST,
            Method::Put => Code::PUT,
            Method::Delete => Code::DELETE,
            Method::Fetch => Code::FETCH,
            Method::Patch => Code::PATCH,
            Method::IPatch => Code::IPATCH,
        }
    }

    /// The method of a code, if registered.
    pub const fn from_code(c: Code) -> Option<Method> {
        Some(match c.0 {
            1 => Method::Get,
            2 => Method::Post,
            3 => Method::Put,
            4 => Method::Delete,
            5 => Method::Fetch,
            6 => Method::Patch,
            7 => Method::IPatch,
            _ => return None,
        })
    }

    /// The method's name as registered, e.g. "iPATCH".
    pub const fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Fetch => "FETCH",
            Method::Patch => "PATCH",
            Method::IPatch => "iPATCH",
        }
    }

    /// Parses a method name, case-insensitively.
    pub fn from_name(s: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
    }

    /// Safe methods do not change the resource (RFC 7252 §5.1, RFC 8132 §2).
    pub const fn is_safe(self) -> bool {
        matches!(self, Method::Get | Method::Fetch)
    }

    /// Idempotent methods can be repeated with the same effect (RFC 7252 §5.1).
    pub const fn is_idempotent(self) -> bool {
        !matches!(self, Method::Post | Method::Patch)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn display() {
        assert_eq!(Code::CONTENT.to_string(), "2.05 Content");
        assert_eq!(Code::GET.to_string(), "0.01 GET");
        assert_eq!(Code::IPATCH.to_string(), "0.07 iPATCH");
        assert_eq!(Code::CONTINUE.to_string(), "2.31 Continue");
        assert_eq!(Code::new(3, 17).to_string(), "3.17");
        assert_eq!(Code::new(4, 4).0, 0x84);
    }

    #[test]
    fn classes() {
        assert_eq!(Code::EMPTY.kind(), CodeClass::Empty);
        assert!(Code::FETCH.is_request());
        assert!(Code::NOT_FOUND.is_error() && Code::NOT_FOUND.is_response());
        assert_eq!(Code::new(1, 0).kind(), CodeClass::Reserved);
        assert_eq!(Code::new(6, 0).kind(), CodeClass::Reserved);
        assert_eq!(Code::PING.kind(), CodeClass::Signaling);
    }

    #[test]
    fn methods() {
        for m in Method::ALL {
            assert_eq!(Method::from_code(m.code()), Some(m));
            assert_eq!(Method::from_name(m.name()), Some(m));
        }
        assert_eq!(Method::from_name("ipatch"), Some(Method::IPatch));
        assert!(Method::Fetch.is_safe() && Method::IPatch.is_idempotent());
        assert!(!Method::Patch.is_idempotent());
        assert_eq!(Method::from_code(Code::new(0, 8)), None);
    }
}
