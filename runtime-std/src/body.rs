//! Typed bodies with serde (feature `serde`): JSON (RFC 8259, Content-Format 50) through
//! serde_json and CBOR (RFC 8949, Content-Format 60) through ciborium, on both sides —
//! [`RequestBuilder::json`], [`Response::json`], [`Reply::json`] — and the [`Json`] and
//! [`Cbor`] extractors of async routes.

use std::io;

use coap_core::content_format::Family;
use coap_core::{Code, ContentFormat};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::app::{FromRequest, IntoReply, Request};
use crate::client::RequestBuilder;
use crate::reply::Reply;
use crate::response::{ClientError, Response};

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Not valid JSON for the type.
    #[error("invalid JSON body: {0}")]
    Json(#[from] serde_json::Error),
    /// Not valid CBOR for the type.
    #[error("invalid CBOR body: {0}")]
    Cbor(String),
}

fn to_cbor<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn from_cbor<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    ciborium::from_reader(bytes).map_err(|e| BodyError::Cbor(e.to_string()))
}

impl RequestBuilder {
    /// `value` as a JSON payload with Content-Format 50 (application/json). Fails (as
    /// [`ClientError::Io`] of kind `InvalidInput`) if serde_json cannot encode it.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Result<RequestBuilder, ClientError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| ClientError::Io(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        Ok(self.content_format(ContentFormat::JSON).payload(body))
    }

    /// `value` as a CBOR payload with Content-Format 60 (application/cbor).
    pub fn cbor<T: Serialize + ?Sized>(self, value: &T) -> Result<RequestBuilder, ClientError> {
        let body = to_cbor(value)
            .map_err(|e| ClientError::Io(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        Ok(self.content_format(ContentFormat::CBOR).payload(body))
    }
}

impl Response {
    /// Decodes the payload as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, BodyError> {
        Ok(serde_json::from_slice(&self.payload)?)
    }

    /// Decodes the payload as CBOR.
    pub fn cbor<T: DeserializeOwned>(&self) -> Result<T, BodyError> {
        from_cbor(&self.payload)
    }
}

impl Reply {
    /// 2.05 Content with `value` as JSON (Content-Format 50); 5.00 if it cannot be
    /// encoded (a map with non-string keys, say).
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply::new(Code::CONTENT)
                .content_format(ContentFormat::JSON)
                .payload(body),
            Err(e) => Reply::new(Code::INTERNAL_SERVER_ERROR).payload(e.to_string()),
        }
    }

    /// 2.05 Content with `value` as CBOR (Content-Format 60); 5.00 if it cannot be
    /// encoded.
    pub fn cbor<T: Serialize + ?Sized>(value: &T) -> Reply {
        match to_cbor(value) {
            Ok(body) => Reply::new(Code::CONTENT)
                .content_format(ContentFormat::CBOR)
                .payload(body),
            Err(e) => Reply::new(Code::INTERNAL_SERVER_ERROR).payload(e),
        }
    }
}

/// RFC 7252 §5.10.3: a body in a format the resource does not take is 4.15; none given
/// is taken as the one expected.
fn check_format(req: &Request, family: Family) -> Result<(), Reply> {
    match req.content_format() {
        Some(f) if f.family() != family => Err(Reply::new(Code::UNSUPPORTED_CONTENT_FORMAT)),
        _ => Ok(()),
    }
}

/// A JSON body (extracted: 4.15 for another Content-Format, 4.00 with the parse error for
/// a body that does not decode) or a JSON reply (2.05, Content-Format 50).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<S, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Reply;
    fn from_request(req: &Request, _: &S) -> Result<Self, Reply> {
        check_format(req, Family::Json)?;
        serde_json::from_slice(req.payload())
            .map(Json)
            .map_err(|e| Reply::new(Code::BAD_REQUEST).payload(format!("invalid JSON: {e}")))
    }
}

impl<T: Serialize> IntoReply for Json<T> {
    fn into_reply(self) -> Reply {
        Reply::json(&self.0)
    }
}

/// A CBOR body (extracted: 4.15 for another Content-Format, 4.00 for a body that does
/// not decode) or a CBOR reply (2.05, Content-Format 60).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cbor<T>(pub T);

impl<S, T: DeserializeOwned> FromRequest<S> for Cbor<T> {
    type Rejection = Reply;
    fn from_request(req: &Request, _: &S) -> Result<Self, Reply> {
        check_format(req, Family::Cbor)?;
        from_cbor(req.payload())
            .map(Cbor)
            .map_err(|e| Reply::new(Code::BAD_REQUEST).payload(e.to_string()))
    }
}

impl<T: Serialize> IntoReply for Cbor<T> {
    fn into_reply(self) -> Reply {
        Reply::cbor(&self.0)
    }
}
