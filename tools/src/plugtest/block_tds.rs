//! TD_COAP_BLOCK resources (RFC 7959).

use crate::uploads::{Step, Uploads};
use coap_core::router::Resource;
use coap_core::server::{IncomingRequest, Outcome, ResponseWriter};
use coap_core::{Block, Code, OptionNumber};
use coap_tokio::Peer;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use super::common::*;

/// Size of `/large`.
pub const LARGE_LEN: usize = 1280;

/// `/large`'s representation: 1280 bytes of numbered text lines.
pub fn large_body() -> Vec<u8> {
    let mut out = Vec::with_capacity(LARGE_LEN);
    let mut n = 0;
    while out.len() < LARGE_LEN {
        n += 1;
        let line = format!("/large line {n:02}: the quick brown fox jumps over it\n");
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(LARGE_LEN);
    out
}

/// `/large` (TD_COAP_BLOCK_01, 02, 06).
#[derive(Debug)]
pub(super) struct Large;

impl Resource<Peer> for Large {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        respond_blockwise(resp, Code::CONTENT, Some(0), &large_body())
    }

    fn link_attributes(&self) -> &str {
        r#"ct=0;sz=1280;title="Large resource""#
    }
}

/// Largest body the Block1 resources take.
pub(super) const MAX_UPLOAD: usize = 16 * 1024;
/// Uploads in progress at once, per resource.
pub(super) const MAX_UPLOADS: usize = 16;

/// Feeds `req` to `uploads`; `Some(body, final Block1)` once complete, else the
/// response (2.31 or an error) is written.
pub(super) fn upload(
    uploads: &mut Uploads<SocketAddr>,
    req: &IncomingRequest<'_, Peer>,
    resp: &mut ResponseWriter<'_>,
) -> Option<(Vec<u8>, Option<Block>)> {
    match uploads.accept(req.peer().addr, req.message(), Instant::now()) {
        Step::Complete(body, block) => Some((body, block)),
        step => {
            step.respond(resp, MAX_UPLOAD);
            None
        }
    }
}

/// Echoes the final Block1 (RFC 7959 §2.3: the response to the last block carries it).
pub(super) fn echo_block1(resp: &mut ResponseWriter<'_>, block: Option<Block>) -> bool {
    block.is_none_or(|b| resp.option_uint(OptionNumber::BLOCK1, b.encode()).is_ok())
}

/// `/large-update` (TD_COAP_BLOCK_03): Block1 PUT, GET returns what was put.
#[derive(Debug)]
pub(super) struct LargeUpdate {
    uploads: Uploads<SocketAddr>,
    body: Vec<u8>,
    format: u16,
}

impl LargeUpdate {
    pub(super) fn new() -> Self {
        LargeUpdate {
            uploads: Uploads::new(MAX_UPLOAD, MAX_UPLOADS),
            body: large_body(),
            format: 0,
        }
    }
}

impl Resource<Peer> for LargeUpdate {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        respond_blockwise(resp, Code::CONTENT, Some(self.format), &self.body)
    }

    fn put(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let format = req.message().content_format();
        if let Some((body, block)) = upload(&mut self.uploads, req, resp) {
            self.body = body;
            self.format = format.unwrap_or(0);
            resp.set_code(Code::CHANGED);
            if !echo_block1(resp, block) {
                resp.set_code(Code::INTERNAL_SERVER_ERROR);
            }
        }
        Outcome::Respond
    }

    fn accepts_block1(&self) -> bool {
        true
    }

    fn link_attributes(&self) -> &str {
        r#"ct=0;sz=1280;title="Large resource that can be updated using PUT method""#
    }
}

/// Created resources `/large-create` keeps (the oldest go first).
pub(super) const MAX_CREATED: usize = 8;

/// `/large-create` (TD_COAP_BLOCK_04): Block1 POST creates `/large-create/N` (2.01 with
/// Location-Path), which GET then returns.
#[derive(Debug)]
pub(super) struct LargeCreate {
    uploads: Uploads<SocketAddr>,
    created: VecDeque<(u32, Vec<u8>, u16)>,
    next: u32,
}

impl LargeCreate {
    pub(super) fn new() -> Self {
        LargeCreate {
            uploads: Uploads::new(MAX_UPLOAD, MAX_UPLOADS),
            created: VecDeque::new(),
            next: 1,
        }
    }
}

impl Resource<Peer> for LargeCreate {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let path: Vec<&[u8]> = req.message().uri_path().collect();
        let id = match path.as_slice() {
            [_, id] => std::str::from_utf8(id).ok().and_then(|s| s.parse().ok()),
            _ => None,
        };
        match self.created.iter().find(|(n, ..)| Some(*n) == id) {
            Some((_, body, format)) => {
                let (body, format) = (body.clone(), *format);
                respond_blockwise(resp, Code::CONTENT, Some(format), &body)
            }
            None => {
                resp.set_code(Code::NOT_FOUND);
                Outcome::Respond
            }
        }
    }

    fn post(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        if req.message().uri_path().count() != 1 {
            resp.set_code(Code::METHOD_NOT_ALLOWED);
            return Outcome::Respond;
        }
        let format = req.message().content_format().unwrap_or(0);
        if let Some((body, block)) = upload(&mut self.uploads, req, resp) {
            let id = self.next;
            self.next = self.next.wrapping_add(1);
            if self.created.len() >= MAX_CREATED {
                self.created.pop_front();
            }
            self.created.push_back((id, body, format));
            resp.set_code(Code::CREATED);
            let ok = resp
                .option_str(OptionNumber::LOCATION_PATH, "large-create")
                .and_then(|r| r.option_str(OptionNumber::LOCATION_PATH, &id.to_string()))
                .is_ok();
            if !ok || !echo_block1(resp, block) {
                resp.set_code(Code::INTERNAL_SERVER_ERROR);
            }
        }
        Outcome::Respond
    }

    fn accepts_block1(&self) -> bool {
        true
    }

    fn link_attributes(&self) -> &str {
        r#"title="Large resource that can be created using POST method""#
    }
}

/// `/large-post` (TD_COAP_BLOCK_05): Block1 POST; the response, the body upper-cased,
/// goes block-wise (RFC 7959 §3.3): its first block answers the last Block1, the rest
/// answer POSTs with Block2 and no body.
#[derive(Debug)]
pub(super) struct LargePost {
    uploads: Uploads<SocketAddr>,
    /// The last response per client, for its Block2 follow-ups.
    results: HashMap<SocketAddr, (Vec<u8>, u16)>,
}

impl LargePost {
    pub(super) fn new() -> Self {
        LargePost {
            uploads: Uploads::new(MAX_UPLOAD, MAX_UPLOADS),
            results: HashMap::new(),
        }
    }
}

impl Resource<Peer> for LargePost {
    fn post(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let m = req.message();
        let addr = req.peer().addr;
        let follow_up = m.option(OptionNumber::BLOCK1).is_none()
            && Block::of(m, OptionNumber::BLOCK2).is_some_and(|b| b.num > 0);
        if follow_up {
            return match self.results.get(&addr) {
                Some((body, format)) => {
                    let (body, format) = (body.clone(), *format);
                    respond_blockwise(resp, Code::CHANGED, Some(format), &body)
                }
                None => {
                    // A later block of a response this server does not hold.
                    resp.set_code(Code::REQUEST_ENTITY_INCOMPLETE);
                    Outcome::Respond
                }
            };
        }
        let format = m.content_format().unwrap_or(0);
        if let Some((body, block)) = upload(&mut self.uploads, req, resp) {
            let upper = body.to_ascii_uppercase();
            if self.results.len() >= MAX_UPLOADS && !self.results.contains_key(&addr) {
                // Bounded: forget some other client's response.
                if let Some(k) = self.results.keys().next().copied() {
                    self.results.remove(&k);
                }
            }
            self.results.insert(addr, (upper.clone(), format));
            if !echo_block1(resp, block) {
                resp.set_code(Code::INTERNAL_SERVER_ERROR);
                return Outcome::Respond;
            }
            return respond_blockwise(resp, Code::CHANGED, Some(format), &upper);
        }
        Outcome::Respond
    }

    fn accepts_block1(&self) -> bool {
        true
    }

    fn link_attributes(&self) -> &str {
        r#"title="Handle POST with two-way blockwise transfer""#
    }
}
