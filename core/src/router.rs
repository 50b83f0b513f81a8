//! A router: maps request paths to resources, dispatches by method, and answers
//! `/.well-known/core` (RFC 6690 §4) from the routes it holds.

use core::marker::PhantomData;
use core::ops::DerefMut;

use crate::code::{Code, Method};
use crate::content_format::ContentFormat;
use crate::link_format::{LinkWriter, SliceWriter};
use crate::server::{Handler, IncomingRequest, Outcome, ResponseWriter};

/// A resource: one method per request method. Unimplemented methods answer 4.05 Method Not
/// Allowed (RFC 7252 §5.8).
#[allow(unused_variables)]
pub trait Resource<A> {
    /// GET.
    fn get(&mut self, req: &IncomingRequest<'_, A>, resp: &mut ResponseWriter<'_>) -> Outcome {
        method_not_allowed(resp)
    }
    /// POST.
    fn post(&mut self, req: &IncomingRequest<'_, A>, resp: &mut ResponseWriter<'_>) -> Outcome {
        method_not_allowed(resp)
    }
    /// PUT.
    fn put(&mut self, req: &IncomingRequest<'_, A>, resp: &mut ResponseWriter<'_>) -> Outcome {
        method_not_allowed(resp)
    }
    /// DELETE.
    fn delete(&mut self, req: &IncomingRequest<'_, A>, resp: &mut ResponseWriter<'_>) -> Outcome {
        method_not_allowed(resp)
    }
    /// FETCH (RFC 8132).
    fn fetch(&mut self, req: &IncomingRequest<'_, A>, resp: &mut ResponseWriter<'_>) -> Outcome {
        method_not_allowed(resp)
    }
    /// PATCH (RFC 8132).
    fn patch(&mut self, req: &IncomingRequest<'_, A>, resp: &mut ResponseWriter<'_>) -> Outcome {
        method_not_allowed(resp)
    }
    /// iPATCH (RFC 8132).
    fn ipatch(&mut self, req: &IncomingRequest<'_, A>, resp: &mut ResponseWriter<'_>) -> Outcome {
        method_not_allowed(resp)
    }
    /// Whether this resource takes Block1 uploads (RFC 7959 §2.3), e.g. with
    /// [`crate::block::Reassembly`]. Resources that do not get 4.02 Bad Option for a
    /// request with Block1 instead of a silently truncated body.
    fn accepts_block1(&self) -> bool {
        false
    }
    /// Link attributes advertised in `/.well-known/core`, without the leading `;`
    /// (e.g. `rt="temperature";ct=0`).
    fn link_attributes(&self) -> &str {
        ""
    }
}

/// Writes 4.05 Method Not Allowed.
pub fn method_not_allowed(resp: &mut ResponseWriter<'_>) -> Outcome {
    resp.set_code(Code::METHOD_NOT_ALLOWED);
    Outcome::Respond
}

/// How a route's path matches a request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PathMatch {
    /// The request path equals the route path.
    Exact,
    /// The request path starts with the route path's segments.
    Prefix,
}

/// One entry of a router: a path and the resource behind it. `R` is how the router
/// reaches the resource: `&mut dyn Resource<A>` for borrowed, static storage (embedded),
/// `Box<dyn Resource<A> + Send>` on std, or a concrete resource type.
pub struct Route<'p, R> {
    path: &'p str,
    matching: PathMatch,
    resource: R,
}

impl<'p, R> Route<'p, R> {
    /// A route for exactly `path` (e.g. `/sensors/temp`; `/` is the root).
    pub fn new(path: &'p str, resource: R) -> Self {
        Route {
            path,
            matching: PathMatch::Exact,
            resource,
        }
    }

    /// A route for `path` and everything below it.
    pub fn prefix(path: &'p str, resource: R) -> Self {
        Route {
            path,
            matching: PathMatch::Prefix,
            resource,
        }
    }

    /// The route's path.
    pub fn path(&self) -> &'p str {
        self.path
    }

    /// Number of request segments this route consumes if it matches, else `None`.
    fn matches<'m>(&self, mut req: impl Iterator<Item = &'m [u8]>) -> Option<usize> {
        let mut n = 0;
        for seg in self.path.split('/').filter(|s| !s.is_empty()) {
            if req.next()? != seg.as_bytes() {
                return None;
            }
            n += 1;
        }
        match (self.matching, req.next()) {
            (PathMatch::Exact, Some(_)) => None,
            _ => Some(n),
        }
    }
}

/// Routes requests to resources. The routes live in storage `S` of the caller's choice:
/// an array, a `&mut [Route]`, or a `Vec<Route>` on std.
pub struct Router<R, S> {
    routes: S,
    _resource: PhantomData<fn() -> R>,
}

impl<'p, R, S> Router<R, S>
where
    S: AsRef<[Route<'p, R>]> + AsMut<[Route<'p, R>]>,
    R: DerefMut,
{
    /// A router over `routes`. Exact routes win over prefix routes; among prefix routes,
    /// the longest wins. A GET of `/.well-known/core` lists the routes (RFC 6690 §4)
    /// unless a route claims that path.
    pub fn new(routes: S) -> Self {
        Router {
            routes,
            _resource: PhantomData,
        }
    }

    /// The routes.
    pub fn routes(&self) -> &[Route<'p, R>] {
        self.routes.as_ref()
    }

    /// Writes one link per route (RFC 6690 §2).
    fn write_links<A>(&self, out: impl core::fmt::Write) -> core::fmt::Result
    where
        R::Target: Resource<A>,
    {
        let mut links = LinkWriter::new(out);
        for r in self.routes.as_ref() {
            let path = if r.path.is_empty() { "/" } else { r.path };
            links.link(path, r.resource.deref().link_attributes())?;
        }
        Ok(())
    }

    fn well_known_core<A>(&self, resp: &mut ResponseWriter<'_>) -> Outcome
    where
        R::Target: Resource<A>,
    {
        let mut count = ByteCounter(0);
        let _ = self.write_links::<A>(&mut count);
        resp.set_code(Code::CONTENT);
        let written = resp
            .content_format(ContentFormat::LINK_FORMAT)
            .ok()
            .and_then(|resp| {
                let buf = resp.payload_buf().ok()?;
                self.write_links::<A>(SliceWriter::new(buf)).ok()?;
                resp.set_payload_len(count.0).ok()
            });
        if written.is_none() {
            // Larger than one message: blockwise serving comes with RFC 7959 support.
            resp.set_code(Code::INTERNAL_SERVER_ERROR);
        }
        Outcome::Respond
    }
}

/// Counts the bytes a formatter would write.
struct ByteCounter(usize);

impl core::fmt::Write for ByteCounter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

impl<'p, A, R, S> Handler<A> for Router<R, S>
where
    S: AsRef<[Route<'p, R>]> + AsMut<[Route<'p, R>]>,
    R: DerefMut,
    R::Target: Resource<A>,
{
    /// Block1 is checked per resource ([`Resource::accepts_block1`]); the rest as by
    /// default.
    fn understands(&self, option: crate::OptionNumber) -> bool {
        option == crate::OptionNumber::BLOCK1 || crate::server::default_understands(option)
    }

    fn handle(&mut self, req: &IncomingRequest<'_, A>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let msg = *req.message();
        let mut best: Option<(usize, bool)> = None; // (index, exact)
        let mut best_len = 0;
        for (i, r) in self.routes.as_ref().iter().enumerate() {
            if let Some(n) = r.matches(msg.uri_path()) {
                let exact = r.matching == PathMatch::Exact;
                let better = match best {
                    None => true,
                    Some((_, best_exact)) => {
                        (exact && !best_exact) || (exact == best_exact && n > best_len)
                    }
                };
                if better {
                    best = Some((i, exact));
                    best_len = n;
                }
            }
        }
        let Some((i, _)) = best else {
            let mut wk = [".well-known".as_bytes(), b"core"].into_iter();
            let mut p = msg.uri_path();
            let is_wk = p.by_ref().zip(wk.by_ref()).all(|(a, b)| a == b)
                && p.next().is_none()
                && wk.next().is_none();
            if is_wk {
                return match req.method() {
                    Some(Method::Get) => self.well_known_core::<A>(resp),
                    _ => method_not_allowed(resp),
                };
            }
            resp.set_code(Code::NOT_FOUND);
            return Outcome::Respond;
        };
        let Some(route) = self.routes.as_mut().get_mut(i) else {
            resp.set_code(Code::NOT_FOUND);
            return Outcome::Respond;
        };
        let r = route.resource.deref_mut();
        if req.message().option(crate::OptionNumber::BLOCK1).is_some() && !r.accepts_block1() {
            resp.set_code(Code::BAD_OPTION);
            return Outcome::Respond;
        }
        match req.method() {
            Some(Method::Get) => r.get(req, resp),
            Some(Method::Post) => r.post(req, resp),
            Some(Method::Put) => r.put(req, resp),
            Some(Method::Delete) => r.delete(req, resp),
            Some(Method::Fetch) => r.fetch(req, resp),
            Some(Method::Patch) => r.patch(req, resp),
            Some(Method::IPatch) => r.ipatch(req, resp),
            // RFC 7252 §5.8: unrecognized method codes get 4.05.
            None => method_not_allowed(resp),
        }
    }
}
