//! A router: maps request paths to resources, dispatches by method, and answers
//! `/.well-known/core` (RFC 6690 §4) from the routes it holds.

use core::marker::PhantomData;
use core::ops::DerefMut;

use crate::code::{Code, Method};
use crate::content_format::ContentFormat;
use crate::link_format::{ByteCounter, HashWriter, LinkWriter, WindowWriter};
#[cfg(feature = "link-filter")]
use crate::link_format::{Filter, Link};
use crate::message::Message;
use crate::multicast::Delivery;
use crate::option::OptionNumber;
use crate::server::{Handler, Idempotence, IncomingRequest, Outcome, ResponseWriter};

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
    /// Whether `request` (to this resource) may be executed twice; see
    /// [`crate::Handler::idempotence`]. By method unless the resource says otherwise.
    fn idempotence(&self, request: &Message<'_>) -> Idempotence {
        Idempotence::of(request)
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

    /// How the route matches request paths.
    pub fn matching(&self) -> PathMatch {
        self.matching
    }

    /// The route's resource, given up (to rebuild the route around another handle).
    pub fn into_resource(self) -> R {
        self.resource
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
    /// the longest wins. A GET of `/.well-known/core` lists the routes (RFC 6690 §4),
    /// filtered by its query (§4.1) and block-wise when large, unless an exact route
    /// claims that path.
    pub fn new(routes: S) -> Self {
        Router {
            routes,
            _resource: PhantomData,
        }
    }

    /// The route a request goes to, and whether it matched exactly: an exact match beats
    /// a prefix, then the longer path wins. Kept out of line: both dispatch and
    /// [`Handler::idempotence`] call it, and one copy is smaller on a microcontroller.
    #[inline(never)]
    fn best_route(&self, msg: &Message<'_>) -> Option<(usize, bool)> {
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
        best
    }

    /// The routes.
    pub fn routes(&self) -> &[Route<'p, R>] {
        self.routes.as_ref()
    }

    /// Writes one link per route (RFC 6690 §2) that passes every query filter of the
    /// request (§4.1, with the feature `link-filter`); routes whose attributes do not parse
    /// are listed only unfiltered.
    fn write_links<A>(&self, query: &Message<'_>, out: impl core::fmt::Write) -> core::fmt::Result
    where
        R::Target: Resource<A>,
    {
        let mut links = LinkWriter::new(out);
        let filtering = query.options_of(OptionNumber::URI_QUERY).next().is_some();
        for r in self.routes.as_ref() {
            let path = if r.path.is_empty() { "/" } else { r.path };
            let attributes = r.resource.deref().link_attributes();
            if filtering && !passes_query(query, path, attributes) {
                continue;
            }
            links.link(path, attributes)?;
        }
        Ok(())
    }

    /// `GET /.well-known/core` (RFC 6690 §4): the routes as links, filtered by the query
    /// (§4.1; no match is a 2.05 with an empty payload for a unicast request, silence for
    /// a multicast one), served
    /// block-wise by offset when larger than a message (RFC 7959 §2.4) without ever being
    /// held whole: each block is rendered again and only its window kept.
    fn well_known_core<A>(
        &self,
        req: &IncomingRequest<'_, A>,
        resp: &mut ResponseWriter<'_>,
    ) -> Outcome
    where
        R::Target: Resource<A>,
    {
        let msg = req.message();
        let mut count = ByteCounter(0);
        let mut hash = HashWriter::default();
        // Neither sink fails; an error would only come from a resource's own formatter.
        let _ = self.write_links::<A>(msg, &mut count);
        // RFC 6690 §4.1: a multicast query whose filter matches nothing gets no answer
        // (RFC 7252 §8.2: nothing useful to say); a unicast one gets an empty 2.05.
        if count.0 == 0 && req.delivery() == Delivery::Multicast {
            return Outcome::Ignore;
        }
        let _ = self.write_links::<A>(msg, &mut hash);
        resp.set_code(Code::CONTENT);
        let written = resp
            .option(OptionNumber::ETAG, &hash.0.to_be_bytes())
            .and_then(|resp| resp.content_format(ContentFormat::LINK_FORMAT))
            .and_then(|resp| {
                resp.payload_by_offset(count.0, |offset, dst| {
                    let _ = self.write_links::<A>(msg, WindowWriter::new(dst, offset));
                })
            });
        if written.is_err() {
            resp.set_code(Code::INTERNAL_SERVER_ERROR);
        }
        Outcome::Respond
    }
}

/// RFC 6690 §4.1: does the link at `path` with `attributes` pass every filter of the
/// request's query? An unparseable query, or link, matches nothing rather than everything.
#[cfg(feature = "link-filter")]
fn passes_query(query: &Message<'_>, path: &str, attributes: &str) -> bool {
    let Ok(link) = Link::from_parts(path, attributes) else {
        return false;
    };
    query
        .options_of(OptionNumber::URI_QUERY)
        .all(|q| Filter::parse(q).is_some_and(|f| f.matches(&link)))
}

/// Without the feature `link-filter` the query is not recognised as a filter (RFC 6690
/// §4.1 leaves filtering to the server): every link passes.
#[cfg(not(feature = "link-filter"))]
fn passes_query(_query: &Message<'_>, _path: &str, _attributes: &str) -> bool {
    true
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

    /// As the resource the request goes to says ([`Resource::idempotence`]).
    fn idempotence(&self, request: &Message<'_>) -> Idempotence {
        match self.best_route(request) {
            Some((i, _)) => match self.routes.as_ref().get(i) {
                Some(route) => (*route.resource).idempotence(request),
                None => Idempotence::of(request),
            },
            None => Idempotence::of(request),
        }
    }

    fn handle(&mut self, req: &IncomingRequest<'_, A>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let msg = *req.message();
        let best = self.best_route(&msg);
        // `/.well-known/core` is generated unless a route claims exactly that path; a
        // prefix route (e.g. a file server on `/`) does not hide it (RFC 6690 §4).
        let claimed = matches!(best, Some((_, true)));
        if !claimed {
            let mut wk = [".well-known".as_bytes(), b"core"].into_iter();
            let mut p = msg.uri_path();
            let is_wk = p.by_ref().zip(wk.by_ref()).all(|(a, b)| a == b)
                && p.next().is_none()
                && wk.next().is_none();
            if is_wk {
                return match req.method() {
                    Some(Method::Get) => self.well_known_core::<A>(req, resp),
                    _ => method_not_allowed(resp),
                };
            }
        }
        let Some((i, _)) = best else {
            resp.set_code(Code::NOT_FOUND);
            return Outcome::Respond;
        };
        let Some(route) = self.routes.as_mut().get_mut(i) else {
            resp.set_code(Code::NOT_FOUND);
            return Outcome::Respond;
        };
        dispatch(route.resource.deref_mut(), req, resp)
    }
}

/// Hands a request to the resource's method: 4.02 for Block1 to a resource that does not
/// take it (RFC 7959 §2.3), 4.05 for a method it lacks or one not recognized (RFC 7252
/// §5.8). What a [`Router`] does once it has found the resource; other routers (the std
/// crates' async one) use it for their synchronous resources.
pub fn dispatch<A, R: Resource<A> + ?Sized>(
    r: &mut R,
    req: &IncomingRequest<'_, A>,
    resp: &mut ResponseWriter<'_>,
) -> Outcome {
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
        None => method_not_allowed(resp),
    }
}
