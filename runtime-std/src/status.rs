//! Turning a response's error code into an error ([`Response::error_for_status`],
//! [`StatusError`]), and asking a [`ClientError`] what kind of failure it is.

use coap_core::Code;

use crate::response::{ClientError, Response};

/// A response with an error code (4.xx client error or 5.xx server error, RFC 7252
/// §5.9.2, §5.9.3), as an error: what [`Response::error_for_status`] returns.
///
/// Every fallible call of a client or server converts with `?`: binding (an
/// [`std::io::Error`], which [`ClientError`] also takes), requests ([`ClientError`]),
/// error codes ([`StatusError`]) and deferred answers ([`crate::RespondError`]), into
/// `Box<dyn Error>` or into an application's own error type:
///
/// ```no_run
/// use std::net::SocketAddr;
///
/// use coap_std::{Client, ClientError, Code, RespondError, Runtime, Server, StatusError};
///
/// async fn boxed<R: Runtime>() -> Result<Vec<u8>, Box<dyn std::error::Error>> {
///     let client = Client::<R>::bind("[::]:0".parse()?).await?;
///     let created = client.post("coap://[::1]/items").payload("x").send().await?;
///     Ok(created.error_for_status()?.payload)
/// }
///
/// /// An application's error, with one `From` per source.
/// #[derive(Debug)]
/// enum AppError {
///     Io(std::io::Error),
///     Coap(ClientError),
///     Status(Code),
///     Respond(RespondError),
///     Addr(std::net::AddrParseError),
/// }
/// impl From<std::io::Error> for AppError {
///     fn from(e: std::io::Error) -> Self { AppError::Io(e) }
/// }
/// impl From<ClientError> for AppError {
///     fn from(e: ClientError) -> Self { AppError::Coap(e) }
/// }
/// impl From<StatusError> for AppError {
///     fn from(e: StatusError) -> Self { AppError::Status(e.code()) }
/// }
/// impl From<RespondError> for AppError {
///     fn from(e: RespondError) -> Self { AppError::Respond(e) }
/// }
/// impl From<std::net::AddrParseError> for AppError {
///     fn from(e: std::net::AddrParseError) -> Self { AppError::Addr(e) }
/// }
///
/// async fn typed<R: Runtime>(deferred: coap_std::ResponseHandle) -> Result<(), AppError> {
///     let addr: SocketAddr = "127.0.0.1:0".parse()?;
///     let server = Server::<R>::bind(addr).await?;
///     let client = Client::<R>::bind(addr).await?;
///     let _observation = client.observe("coap://127.0.0.1/temp").await?;
///     client.delete("coap://127.0.0.1/temp").send().await?.error_for_status()?;
///     server.responder().respond(deferred, coap_std::Reply::new(Code::CONTENT)).await?;
///     server.serve_router(coap_std::app::Router::new()).await?;
///     Ok(())
/// }
///
/// /// Or everything as one `ClientError`: it takes I/O errors too.
/// async fn one<R: Runtime>() -> Result<coap_std::Response, ClientError> {
///     let client = Client::<R>::bind("127.0.0.1:0".parse().expect("an address")).await?;
///     client.get("coap://127.0.0.1/").await
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the server answered {}", .response.code)]
pub struct StatusError {
    /// The response, kept whole (its diagnostic payload may say why, §5.5.2).
    pub response: Response,
}

impl StatusError {
    /// The error code.
    pub fn code(&self) -> Code {
        self.response.code
    }
}

impl Response {
    /// The response itself for a success (2.xx), a [`StatusError`] for a 4.xx or 5.xx,
    /// in the style of reqwest:
    ///
    /// ```no_run
    /// # async fn f(client: coap_std::Client<impl coap_std::Runtime>) -> Result<(), Box<dyn std::error::Error>> {
    /// let body = client.get("coap://[::1]/temp").await?.error_for_status()?.payload;
    /// # let _ = body; Ok(()) }
    /// ```
    pub fn error_for_status(self) -> Result<Response, StatusError> {
        match self.code.class() {
            4 | 5 => Err(StatusError { response: self }),
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
            assert_eq!(e.code(), code);
            assert_eq!(e.response.payload, b"why");
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
