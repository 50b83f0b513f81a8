//! Turning a response's error code into an error ([`Response::error_for_status`],
//! [`StatusError`]), and asking a [`ClientError`] what kind of failure it is.

use coap_core::Code;

use crate::response::{ClientError, Response, StatusError};

impl Response {
    /// The response itself for a success (2.xx), [`ClientError::Status`] (the response
    /// kept whole in a [`StatusError`]) for a 4.xx or 5.xx, in the style of reqwest:
    ///
    /// ```no_run
    /// # async fn f(client: coap_std::Client<impl coap_std::Runtime>) -> Result<(), Box<dyn std::error::Error>> {
    /// let body = client.get("coap://[::1]/temp").await?.error_for_status()?.payload;
    /// # let _ = body; Ok(()) }
    /// ```
    pub fn error_for_status(self) -> Result<Response, ClientError> {
        match self.code.class() {
            4 | 5 => Err(ClientError::Status(StatusError { response: self })),
            _ => Ok(self),
        }
    }

    /// Whether the code is a success (2.xx, RFC 7252 §5.9.1).
    pub fn is_success(&self) -> bool {
        self.code.class() == 2
    }
}

impl ClientError {
    /// No response within the deadline, or the CON retransmissions ran out (RFC 7252
    /// §4.2).
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Timeout)
    }

    /// The peer rejected the request with RST (RFC 7252 §4.2, §4.3).
    pub fn is_reset(&self) -> bool {
        matches!(self, ClientError::Reset)
    }

    /// The error code, when the server answered with one ([`ClientError::Status`], from
    /// [`Response::error_for_status`]), as reqwest's `Error::status`.
    pub fn status(&self) -> Option<Code> {
        match self {
            ClientError::Status(e) => Some(e.code()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oscore::Security;

    fn response(code: Code) -> Response {
        Response {
            code,
            options: Vec::new(),
            payload: b"why".to_vec(),
            peer: "127.0.0.1:5683".parse().unwrap(),
            security: Security::Plain,
        }
    }

    #[test]
    fn error_codes_are_errors_and_others_are_not() {
        for code in [Code::CONTENT, Code::CHANGED, Code::CONTINUE] {
            assert_eq!(response(code).error_for_status().unwrap().code, code);
        }
        for code in [
            Code::NOT_FOUND,
            Code::REQUEST_ENTITY_TOO_LARGE,
            Code::INTERNAL_SERVER_ERROR,
        ] {
            let e = response(code).error_for_status().unwrap_err();
            assert_eq!(e.status(), Some(code));
            let ClientError::Status(ref status) = e else {
                panic!("{e:?}");
            };
            assert_eq!(status.response.payload, b"why");
            assert!(e.to_string().contains(&code.to_string()), "{e}");
        }
    }

    #[test]
    fn error_kinds() {
        assert!(ClientError::Timeout.is_timeout() && !ClientError::Timeout.is_reset());
        assert!(ClientError::Reset.is_reset() && !ClientError::Reset.is_timeout());
        assert!(!ClientError::Closed.is_timeout() && !ClientError::Closed.is_reset());
    }
}
