//! The core handler behind an async [`Router`]: routes on the endpoint's loop, answers
//! what needs no handler (4.04, 4.05, Block1 steps, kept Block2 follow-ups) at once, and
//! defers the rest to a task on the runtime (RFC 7252 §5.2.2).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use coap_core::block::Block;
use coap_core::router::method_not_allowed;
use coap_core::{
    Code, ContentFormat, Handler, IncomingRequest, Method, OptionNumber, Outcome, ResponseWriter,
};

use super::blockwise::{ack_upload, keep_if_large, KeptReplies, TransferKey, UploadStep, Uploads};
use super::{Endpoint, Request, Router};
use crate::oscore::Peer;
use crate::reply::Reply;
use crate::responder::Responder;
use crate::runtime::Runtime;

/// A [`Router`] as the endpoint's core handler on runtime `R`
/// (see [`crate::Server::serve_router`]).
pub struct AppHandler<R> {
    routes: HashMap<String, Endpoint<()>>,
    max_body: usize,
    uploads: Uploads,
    kept: Arc<Mutex<KeptReplies>>,
    responder: Responder,
    runtime: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for AppHandler<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppHandler")
            .field("routes", &self.routes.len())
            .field("max_body", &self.max_body)
            .finish()
    }
}

impl<R: Runtime> AppHandler<R> {
    /// Serves `router`, answering deferred requests through `responder`.
    pub fn new(router: Router<()>, responder: Responder) -> Self {
        let kept: Arc<Mutex<KeptReplies>> = Arc::default();
        // Observed routes re-run their GET handler for notifications, on this endpoint,
        // and keep large notifications for their follow-up blocks as responses are kept.
        for endpoint in router.routes.values() {
            if let Endpoint::Async(methods, Some(observed)) = endpoint {
                let get = methods.handler(Method::Get).cloned();
                observed.serve(get, responder.commands().clone(), Arc::clone(&kept));
            }
        }
        AppHandler {
            routes: router.routes,
            max_body: router.max_body,
            uploads: Uploads::default(),
            kept,
            responder,
            runtime: PhantomData,
        }
    }

    /// `/.well-known/core` (RFC 6690 §4): the routes as links.
    fn well_known_core(&self, resp: &mut ResponseWriter<'_>) -> Outcome {
        let mut paths: Vec<&String> = self.routes.keys().collect();
        paths.sort();
        let links: Vec<String> = paths.iter().map(|p| format!("</{p}>")).collect();
        let reply = Reply::new(Code::CONTENT)
            .content_format(ContentFormat::LINK_FORMAT)
            .payload(links.join(","));
        write(&reply, resp)
    }
}

fn write(reply: &Reply, resp: &mut ResponseWriter<'_>) -> Outcome {
    if reply.write(resp).is_err() {
        resp.set_code(Code::INTERNAL_SERVER_ERROR);
    }
    Outcome::Respond
}

fn dispatch_sync(
    r: &mut (dyn coap_core::Resource<Peer> + Send),
    req: &IncomingRequest<'_, Peer>,
    resp: &mut ResponseWriter<'_>,
) -> Outcome {
    coap_core::router::dispatch(r, req, resp)
}

impl<R: Runtime> Handler<Peer> for AppHandler<R> {
    /// Block1 is the router's (async routes) or the resource's (sync routes).
    fn understands(&self, option: OptionNumber) -> bool {
        option == OptionNumber::BLOCK1 || coap_core::server::default_understands(option)
    }

    fn handle(
        &mut self,
        req: &IncomingRequest<'_, Peer>,
        resp: &mut ResponseWriter<'_>,
    ) -> Outcome {
        let msg = *req.message();
        let segments: Vec<String> = msg
            .uri_path()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        let path = segments.join("/");
        let (methods, observed) = match self.routes.get_mut(&path) {
            Some(Endpoint::Sync(r)) => return dispatch_sync(r.as_mut(), req, resp),
            Some(Endpoint::Async(m, o)) => (m, o.clone()),
            None if path == ".well-known/core" => {
                return match req.method() {
                    Some(Method::Get) => self.well_known_core(resp),
                    _ => method_not_allowed(resp),
                }
            }
            None => {
                resp.set_code(Code::NOT_FOUND);
                return Outcome::Respond;
            }
        };
        let Some((method, handler)) = req
            .method()
            .and_then(|m| methods.handler(m).map(|h| (m, h.clone())))
        else {
            return method_not_allowed(resp);
        };
        let now = Instant::now();
        let reply_key = TransferKey::of(req.peer(), &msg, false);
        // RFC 7959 §2.4: a later block of a reply that went block-wise comes from the kept
        // representation, not from running the handler again.
        if Block::of(&msg, OptionNumber::BLOCK2).is_some_and(|b| b.num > 0) {
            let kept = self
                .kept
                .lock()
                .ok()
                .and_then(|mut k| k.get(&reply_key, now));
            if let Some(reply) = kept {
                return write(&reply, resp);
            }
        }
        let mut upload = None;
        let mut body = msg.payload().to_vec();
        if let Some(block1) = Block::of(&msg, OptionNumber::BLOCK1) {
            let key = TransferKey::of(req.peer(), &msg, true);
            match self.uploads.accept(key, &msg, block1, self.max_body, now) {
                UploadStep::Continue(reply) | UploadStep::Refused(reply) => {
                    return write(&reply, resp)
                }
                UploadStep::Done(whole, block) => {
                    body = whole;
                    upload = Some(block);
                }
            }
        }
        let request = Request::from_incoming(req, method, body);
        // RFC 7641 §3.1: a GET with Observe=0 of an observable route registers its client
        // under the variant's key when the answer is a success (the core checks that).
        let registration = observed
            .filter(|_| method == Method::Get && msg.observe() == Some(0))
            .map(|o| o.register(&request, reply_key.clone()));
        let handle = req.handle();
        let responder = self.responder.clone();
        let kept = Arc::clone(&self.kept);
        let task = async move {
            let mut reply = handler(request, ()).await;
            if let Some(key) = registration.as_ref().and_then(|r| r.key) {
                reply = reply.observable(key);
            }
            if let Some(block) = upload {
                reply = ack_upload(reply, block);
            }
            let reply = keep_if_large(reply, reply_key, &kept);
            // An error means the exchange is gone (the endpoint answered 5.03 after
            // `Config::deferred_timeout`, or closed): nobody is left to tell.
            let _ = responder.respond(handle, reply).await;
            drop(registration);
        };
        if R::spawn(task).is_err() {
            resp.set_code(Code::INTERNAL_SERVER_ERROR);
            return Outcome::Respond;
        }
        Outcome::Defer
    }
}
