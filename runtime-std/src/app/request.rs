//! The owned request an async handler gets, and the extractors that take parts of it
//! ([`FromRequest`]), in the style of axum: a handler names what it needs as arguments.

use coap_core::{Code, ContentFormat, IncomingRequest, Method, OptionNumber};

use crate::app::into_reply::IntoReply;
use crate::oscore::Peer;
use crate::reply::Reply;

/// A request as an async handler sees it: owned, with its body already reassembled when
/// it came block-wise (RFC 7959 §2.3).
#[derive(Clone, Debug)]
pub struct Request {
    method: Method,
    peer: Peer,
    path: Vec<String>,
    query: Vec<String>,
    options: Vec<(OptionNumber, Vec<u8>)>,
    payload: Vec<u8>,
}

impl Request {
    /// Copies what a handler may need out of the endpoint's buffer; `payload` is the whole
    /// (possibly reassembled) body.
    pub(crate) fn from_incoming(
        req: &IncomingRequest<'_, Peer>,
        method: Method,
        payload: Vec<u8>,
    ) -> Request {
        let msg = req.message();
        let text = |s: &[u8]| String::from_utf8_lossy(s).into_owned();
        Request {
            method,
            peer: req.peer(),
            path: msg.uri_path().map(text).collect(),
            query: msg.uri_query().map(text).collect(),
            options: msg
                .options()
                .map(|o| (o.number, o.value.to_vec()))
                .collect(),
            payload,
        }
    }

    /// The request method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The peer: its address and how the request was protected (plain, OSCORE, DTLS).
    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// The Uri-Path segments.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// The Uri-Query options, one string each (`"unit=C"`).
    pub fn query(&self) -> &[String] {
        &self.query
    }

    /// The value of the query parameter `name` (`name=value`), or `""` for a bare `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.iter().find_map(|q| match q.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if q == name => Some(""),
            _ => None,
        })
    }

    /// The Content-Format option, if any.
    pub fn content_format(&self) -> Option<ContentFormat> {
        self.uint(OptionNumber::CONTENT_FORMAT)
            .map(|v| ContentFormat(v as u16))
    }

    /// The first value of option `number`.
    pub fn option(&self, number: OptionNumber) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, v)| v.as_slice())
    }

    fn uint(&self, number: OptionNumber) -> Option<u32> {
        let v = self.option(number)?;
        (v.len() <= 4).then(|| v.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
    }

    /// The (reassembled) body.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Takes the body out of the request.
    pub fn into_payload(self) -> Vec<u8> {
        self.payload
    }
}

/// Takes something out of a request for a handler argument, or rejects the request with a
/// reply (e.g. 4.15 for a body in the wrong format). `S` is the router's state.
pub trait FromRequest<S>: Sized {
    /// The reply when extraction fails.
    type Rejection: IntoReply;

    /// Extracts the value.
    fn from_request(req: &Request, state: &S) -> Result<Self, Self::Rejection>;
}

impl<S> FromRequest<S> for Request {
    type Rejection = Reply;
    fn from_request(req: &Request, _: &S) -> Result<Self, Reply> {
        Ok(req.clone())
    }
}

/// The router's state ([`crate::app::Router::with_state`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct State<S>(pub S);

impl<S: Clone> FromRequest<S> for State<S> {
    type Rejection = Reply;
    fn from_request(_: &Request, state: &S) -> Result<Self, Reply> {
        Ok(State(state.clone()))
    }
}

/// The request body as bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload(pub Vec<u8>);

impl<S> FromRequest<S> for Payload {
    type Rejection = Reply;
    fn from_request(req: &Request, _: &S) -> Result<Self, Reply> {
        Ok(Payload(req.payload.clone()))
    }
}

/// The Uri-Query options, one string each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query(pub Vec<String>);

impl<S> FromRequest<S> for Query {
    type Rejection = Reply;
    fn from_request(req: &Request, _: &S) -> Result<Self, Reply> {
        Ok(Query(req.query.clone()))
    }
}

/// The request's Content-Format, if it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format(pub Option<ContentFormat>);

impl<S> FromRequest<S> for Format {
    type Rejection = Reply;
    fn from_request(req: &Request, _: &S) -> Result<Self, Reply> {
        Ok(Format(req.content_format()))
    }
}

/// The peer that sent the request: its address and its security (plain, OSCORE, DTLS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remote(pub Peer);

impl<S> FromRequest<S> for Remote {
    type Rejection = Reply;
    fn from_request(req: &Request, _: &S) -> Result<Self, Reply> {
        Ok(Remote(req.peer))
    }
}

/// The body as UTF-8 text; 4.00 Bad Request if it is not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text(pub String);

impl<S> FromRequest<S> for Text {
    type Rejection = Reply;
    fn from_request(req: &Request, _: &S) -> Result<Self, Reply> {
        String::from_utf8(req.payload.clone())
            .map(Text)
            .map_err(|_| Reply::new(Code::BAD_REQUEST).payload("body is not UTF-8"))
    }
}
