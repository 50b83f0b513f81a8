//! An owned server response ([`Reply`]) for deferred answers and notifications, and why
//! one was not sent ([`RespondError`]).

use coap_core::option::encode_uint;
use coap_core::{BuildError, Code, OptionNumber, ResponseWriter};

/// An owned response, for answering a deferred request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The response code.
    pub code: Code,
    /// Options (any order; repeated options keep their order).
    pub options: Vec<(OptionNumber, Vec<u8>)>,
    /// The payload.
    pub payload: Vec<u8>,
    /// For a notification: CON (`Some(true)`) or NON (`Some(false)`); `None` leaves the
    /// choice to the endpoint (NON, CON at least every `Config::observe_con_interval`,
    /// RFC 7641 §4.5). Ignored for other responses.
    pub confirmable: Option<bool>,
    /// Declares the resource observable under this key (`ResponseWriter::observable`): a
    /// deferred answer to an Observe=0 request registers its client (RFC 7641 §4.1), so
    /// that later notifications of the key reach it.
    pub observable: Option<u32>,
}

impl Reply {
    /// A response with `code`, no options and no payload.
    pub fn new(code: Code) -> Reply {
        Reply {
            code,
            options: Vec::new(),
            payload: Vec::new(),
            confirmable: None,
            observable: None,
        }
    }

    /// Adds the Content-Format option.
    pub fn content_format(self, format: impl Into<coap_core::ContentFormat>) -> Reply {
        let mut b = [0; 4];
        let v = encode_uint(u32::from(format.into().0), &mut b).to_vec();
        self.option(OptionNumber::CONTENT_FORMAT, v)
    }

    /// Adds an option.
    pub fn option(mut self, number: impl Into<OptionNumber>, value: impl Into<Vec<u8>>) -> Reply {
        self.options.push((number.into(), value.into()));
        self
    }

    /// Sends a notification as CON (`true`) or NON (`false`), RFC 7641 §4.5.
    pub fn confirmable(mut self, con: bool) -> Reply {
        self.confirmable = Some(con);
        self
    }

    /// Declares the resource observable under `key` (see [`Reply::observable`]).
    pub fn observable(mut self, key: u32) -> Reply {
        self.observable = Some(key);
        self
    }

    /// Sets the payload.
    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> Reply {
        self.payload = payload.into();
        self
    }

    /// Writes the response into the endpoint's buffer.
    pub fn write(&self, w: &mut ResponseWriter<'_>) -> Result<(), BuildError> {
        w.set_code(self.code);
        if let Some(con) = self.confirmable {
            w.confirmable(con);
        }
        if let Some(key) = self.observable {
            w.observable(key);
        }
        for (n, v) in &self.options {
            w.option(*n, v)?;
        }
        // Larger than a message: served block-wise (RFC 7959), also for notifications.
        w.payload_blockwise(&self.payload)?;
        Ok(())
    }
}

/// Why a deferred response was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RespondError {
    /// The handle is not a deferred request of this endpoint (already answered, or from
    /// another endpoint).
    #[error("unknown or already answered response handle")]
    UnknownHandle,
    /// The response does not fit into a message; the client got 5.00 instead.
    #[error("cannot build the response: {0}")]
    Build(BuildError),
    /// The endpoint's loop has stopped.
    #[error("the endpoint is closed")]
    Closed,
}

impl From<coap_core::Error> for RespondError {
    fn from(e: coap_core::Error) -> Self {
        match e {
            coap_core::Error::Build(e) => RespondError::Build(e),
            _ => RespondError::UnknownHandle,
        }
    }
}

/// The server role's calls all fail with `io::Error` (bind, serve), so that a deferred
/// answer's failure converts with `?` in the same function.
impl From<RespondError> for std::io::Error {
    fn from(e: RespondError) -> std::io::Error {
        std::io::Error::other(e)
    }
}
