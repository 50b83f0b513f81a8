//! Resources shared by several endpoint loops: the shards of `coap serve --threads N`
//! (`coap_std::Sharded`) each run their own router, but a PUT through one shard must be
//! seen by a GET through another (clients are spread over the shards by address), so each
//! resource lives once behind a lock and every shard's router holds a handle to it.

use std::sync::{Arc, Mutex, PoisonError};

use coap_core::router::{PathMatch, Resource};
use coap_core::server::{IncomingRequest, Outcome, ResponseWriter};
use coap_core::{Idempotence, Message, Route, Router};
use coap_tokio::Peer;

use crate::demo::{BoxedResource, DemoRouter};

/// One resource behind a lock, with what the router asks of it without a request (its
/// link attributes and whether it takes Block1) taken once.
#[derive(Clone)]
pub struct SharedResource {
    inner: Arc<Mutex<BoxedResource>>,
    attributes: Arc<str>,
    block1: bool,
}

impl SharedResource {
    fn new(resource: BoxedResource) -> Self {
        SharedResource {
            attributes: resource.link_attributes().into(),
            block1: resource.accepts_block1(),
            inner: Arc::new(Mutex::new(resource)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut BoxedResource) -> T) -> T {
        // A handler that panicked left the resource as it was at the panic; serving on is
        // better than failing every later request.
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Resource<Peer> for SharedResource {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        self.with(|r| r.get(req, resp))
    }
    fn post(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        self.with(|r| r.post(req, resp))
    }
    fn put(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        self.with(|r| r.put(req, resp))
    }
    fn delete(
        &mut self,
        req: &IncomingRequest<'_, Peer>,
        resp: &mut ResponseWriter<'_>,
    ) -> Outcome {
        self.with(|r| r.delete(req, resp))
    }
    fn fetch(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        self.with(|r| r.fetch(req, resp))
    }
    fn patch(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        self.with(|r| r.patch(req, resp))
    }
    fn ipatch(
        &mut self,
        req: &IncomingRequest<'_, Peer>,
        resp: &mut ResponseWriter<'_>,
    ) -> Outcome {
        self.with(|r| r.ipatch(req, resp))
    }
    fn accepts_block1(&self) -> bool {
        self.block1
    }
    fn idempotence(&self, request: &Message<'_>) -> Idempotence {
        self.with(|r| r.idempotence(request))
    }
    fn link_attributes(&self) -> &str {
        &self.attributes
    }
}

/// Routes whose resources are shared: [`SharedRoutes::router`] builds one router per
/// shard over the same resources.
#[derive(Clone)]
pub struct SharedRoutes {
    routes: Vec<(&'static str, PathMatch, SharedResource)>,
}

impl SharedRoutes {
    /// Puts each route's resource behind a lock.
    pub fn new(routes: Vec<Route<'static, BoxedResource>>) -> Self {
        let routes = routes
            .into_iter()
            .map(|r| (r.path(), r.matching(), r))
            .map(|(path, m, r)| (path, m, SharedResource::new(r.into_resource())))
            .collect();
        SharedRoutes { routes }
    }

    /// A router over handles to the shared resources.
    pub fn router(&self) -> DemoRouter {
        let routes = self
            .routes
            .iter()
            .map(|(path, m, r)| {
                let handle = Box::new(r.clone()) as BoxedResource;
                match m {
                    PathMatch::Exact => Route::new(path, handle),
                    PathMatch::Prefix => Route::prefix(path, handle),
                }
            })
            .collect();
        Router::new(routes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coap_core::{Code, Endpoint, Instant, MessageBuilder, MessageType, OptionNumber};
    use std::net::SocketAddr;

    /// A PUT through one shard's router is what a GET through another's returns.
    #[test]
    fn routers_of_one_set_share_their_resources() {
        let shared = SharedRoutes::new(crate::demo::routes());
        let (mut a, mut b) = (shared.router(), shared.router());
        let mut server: Endpoint<Peer> = Endpoint::new(coap_core::Config::default(), 1);
        let peer = coap_tokio::glue::oscore::plain(SocketAddr::from(([127, 0, 0, 1], 9)));
        let mut ask = |router: &mut DemoRouter, code: Code, mid: u16, body: &[u8]| {
            let mut buf = [0u8; 256];
            let mut m = MessageBuilder::new(&mut buf, MessageType::Con, code, mid, &[1]).unwrap();
            m.option(OptionNumber::URI_PATH, b"upload").unwrap();
            m.payload(body).unwrap();
            let n = m.finish();
            server.handle_datagram(Instant::ZERO, peer, &buf[..n], router);
            let mut out = [0u8; 1280];
            let t = server.poll_transmit(Instant::ZERO, &mut out).unwrap();
            let msg = Message::parse(&out[..t.len]).unwrap();
            (msg.code(), msg.payload().to_vec())
        };
        assert_eq!(ask(&mut a, Code::PUT, 1, b"through a").0, Code::CHANGED);
        assert_eq!(
            ask(&mut b, Code::GET, 2, b""),
            (Code::CONTENT, b"through a".to_vec())
        );
        assert_eq!(
            b.routes().iter().map(|r| r.path()).collect::<Vec<_>>(),
            a.routes().iter().map(|r| r.path()).collect::<Vec<_>>()
        );
    }
}
