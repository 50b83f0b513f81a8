//! TD_COAP_CORE and TD_COAP_LINK resources.

use crate::demo::etag_of;
use coap_core::router::Resource;
use coap_core::server::{IncomingRequest, Outcome, ResponseWriter};
use coap_core::{Block, Code, OptionNumber};
use coap_tokio::{Peer, Reply};
use tokio::sync::mpsc;

use super::common::*;

/// `/test` (TD_COAP_CORE_01–08, 10, 12, 18).
#[derive(Debug)]
pub(super) struct Test {
    /// After DELETE, the next PUT creates it again (2.01, RFC 7252 §5.8.3).
    pub(super) deleted: bool,
}

impl Resource<Peer> for Test {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        // Max-Age 30 (TD_COAP_CORE_01 "resource content is not empty"; Californium's
        // plugtest server does the same).
        if resp.option_uint(OptionNumber::MAX_AGE, 30).is_err() {
            resp.set_code(Code::INTERNAL_SERVER_ERROR);
            return Outcome::Respond;
        }
        respond(resp, Code::CONTENT, Some(0), describe(req).as_bytes())
    }

    fn post(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        // TD_COAP_CORE_18: several Location-Path options (RFC 7252 §5.10.7).
        resp.set_code(Code::CREATED);
        for seg in ["location1", "location2", "location3"] {
            if resp.option_str(OptionNumber::LOCATION_PATH, seg).is_err() {
                resp.set_code(Code::INTERNAL_SERVER_ERROR);
                break;
            }
        }
        Outcome::Respond
    }

    fn put(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let code = if self.deleted {
            Code::CREATED
        } else {
            Code::CHANGED
        };
        self.deleted = false;
        resp.set_code(code);
        Outcome::Respond
    }

    fn delete(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        self.deleted = true;
        resp.set_code(Code::DELETED);
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        r#"title="Default test resource""#
    }
}

/// `/separate` and `/large-separate` (TD_COAP_CORE_09, 11, 17): the first request is
/// answered later, as a separate response (RFC 7252 §5.2.2); the rest of a block-wise
/// `/large-separate` at once.
#[derive(Debug)]
pub(super) struct Separate {
    jobs: mpsc::Sender<Job>,
    large: bool,
}

impl Separate {
    pub(super) fn new(jobs: mpsc::Sender<Job>, large: bool) -> Self {
        Separate { jobs, large }
    }
}

impl Resource<Peer> for Separate {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let later_block = Block::of(req.message(), OptionNumber::BLOCK2).is_some_and(|b| b.num > 0);
        // `/large-separate` stays the same across blocks (RFC 7959 §2.4); `/separate`
        // describes the request it answers.
        let body = if self.large {
            large_separate_body()
        } else {
            describe(req).into_bytes()
        };
        if later_block {
            return respond_blockwise(resp, Code::CONTENT, Some(0), &body);
        }
        let reply = Reply::new(Code::CONTENT)
            .content_format(0)
            .option(OptionNumber::ETAG, etag_of(&body).to_vec())
            .payload(body);
        match self.jobs.try_send(Job::Separate(req.handle(), reply)) {
            Ok(()) => Outcome::Defer,
            Err(_) => busy(resp),
        }
    }

    fn link_attributes(&self) -> &str {
        if self.large {
            r#"title="Large resource, separate response""#
        } else {
            r#"title="Resource which cannot be served immediately""#
        }
    }
}

/// `/large-separate`'s representation: the same for every request, larger than a block.
pub(super) fn large_separate_body() -> Vec<u8> {
    let mut text = String::from("large-separate\n");
    let mut n = 0;
    while text.len() < 1700 {
        n += 1;
        text.push_str(&format!("large-separate line {n}\n"));
    }
    text.into_bytes()
}

/// A text resource with fixed link attributes (`/seg1/seg2/seg3`, `/linkN`,
/// `/path/subN`): GET answers its path.
#[derive(Debug)]
pub(super) struct Text(pub(super) &'static str, pub(super) &'static str);

impl Resource<Peer> for Text {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        respond(resp, Code::CONTENT, Some(0), self.0.as_bytes())
    }

    fn link_attributes(&self) -> &str {
        self.1
    }
}

/// `/query` (TD_COAP_CORE_14): echoes its Uri-Query options, `&`-separated.
#[derive(Debug)]
pub(super) struct Query;

impl Resource<Peer> for Query {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let parts: Vec<String> = req
            .message()
            .uri_query()
            .map(|q| String::from_utf8_lossy(q).into_owned())
            .collect();
        let text = format!("query: {}", parts.join("&"));
        respond(resp, Code::CONTENT, Some(0), text.as_bytes())
    }

    fn link_attributes(&self) -> &str {
        r#"title="Resource accepting query parameters""#
    }
}

/// `/location-query` (TD_COAP_CORE_19): POST answers 2.01 with Location-Query options.
#[derive(Debug)]
pub(super) struct LocationQuery;

impl Resource<Peer> for LocationQuery {
    fn post(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        resp.set_code(Code::CREATED);
        for q in ["first=1", "second=2"] {
            if resp.option_str(OptionNumber::LOCATION_QUERY, q).is_err() {
                resp.set_code(Code::INTERNAL_SERVER_ERROR);
                break;
            }
        }
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        r#"title="Perform POST transaction with responses containing several Location-Query options""#
    }
}

/// `/multi-format` (TD_COAP_CORE_20): one value in four formats, chosen by Accept
/// (RFC 7252 §5.10.4); another Accept gets 4.06 Not Acceptable.
#[derive(Debug)]
pub(super) struct MultiFormat;

impl Resource<Peer> for MultiFormat {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let mid = req.message().message_id();
        let (format, body): (u16, Vec<u8>) = match req.message().accept().unwrap_or(0) {
            0 => (0, format!("mid: {mid}").into_bytes()),
            41 => (41, format!("<msg mid=\"{mid}\"/>").into_bytes()),
            50 => (50, format!("{{\"mid\":{mid}}}").into_bytes()),
            60 => {
                // A one-entry CBOR map {"mid": mid} (RFC 8949 §3.1): map(1), text(3),
                // unsigned 16-bit.
                let mut b = vec![0xa1, 0x63, b'm', b'i', b'd', 0x19];
                b.extend_from_slice(&mid.to_be_bytes());
                (60, b)
            }
            _ => {
                resp.set_code(Code::NOT_ACCEPTABLE);
                return Outcome::Respond;
            }
        };
        respond(resp, Code::CONTENT, Some(format), &body)
    }

    fn link_attributes(&self) -> &str {
        r#"ct="0 41 50 60";title="Resource that exists in different content formats""#
    }
}

/// `/validate` (TD_COAP_CORE_21, 22): ETag validation (RFC 7252 §5.10.6) and If-Match
/// (§5.10.8.1).
#[derive(Debug)]
pub(super) struct Validate {
    body: Vec<u8>,
    format: u16,
}

impl Validate {
    pub(super) fn new() -> Self {
        Validate {
            body: b"validate: initial".to_vec(),
            format: 0,
        }
    }
}

impl Resource<Peer> for Validate {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let etag = etag_of(&self.body);
        if resp.option(OptionNumber::ETAG, &etag).is_err() {
            resp.set_code(Code::INTERNAL_SERVER_ERROR);
            return Outcome::Respond;
        }
        // §5.10.6.2: an ETag of the request that is still current gets 2.03 Valid,
        // without payload.
        if req
            .message()
            .options_of(OptionNumber::ETAG)
            .any(|e| e == etag)
        {
            resp.set_code(Code::VALID);
            return Outcome::Respond;
        }
        respond(resp, Code::CONTENT, Some(self.format), &self.body)
    }

    fn put(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let m = req.message();
        let etag = etag_of(&self.body);
        // §5.10.8.1: with If-Match, update only if one of its values is the current ETag
        // (an empty value matches any current representation).
        let mut if_match = m.options_of(OptionNumber::IF_MATCH).peekable();
        if if_match.peek().is_some() && !if_match.any(|v| v.is_empty() || v == etag) {
            resp.set_code(Code::PRECONDITION_FAILED);
            return Outcome::Respond;
        }
        self.body = req.payload().to_vec();
        self.format = m.content_format().unwrap_or(0);
        resp.set_code(Code::CHANGED);
        let _ = resp.option(OptionNumber::ETAG, &etag_of(&self.body));
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        r#"ct=0;title="Resource which varies""#
    }
}

/// `/create1` (TD_COAP_CORE_23): PUT with If-None-Match creates it once (§5.10.8.2).
#[derive(Debug)]
pub(super) struct Create1 {
    pub(super) body: Option<(Vec<u8>, u16)>,
}

impl Resource<Peer> for Create1 {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        match &self.body {
            Some((body, format)) => respond(resp, Code::CONTENT, Some(*format), body),
            None => {
                resp.set_code(Code::NOT_FOUND);
                Outcome::Respond
            }
        }
    }

    fn put(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let m = req.message();
        let exists = self.body.is_some();
        if exists && m.option(OptionNumber::IF_NONE_MATCH).is_some() {
            resp.set_code(Code::PRECONDITION_FAILED);
            return Outcome::Respond;
        }
        self.body = Some((req.payload().to_vec(), m.content_format().unwrap_or(0)));
        resp.set_code(if exists { Code::CHANGED } else { Code::CREATED });
        Outcome::Respond
    }

    fn delete(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        self.body = None;
        resp.set_code(Code::DELETED);
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        r#"title="Resource which does not exist yet (to perform atomic PUT)""#
    }
}
