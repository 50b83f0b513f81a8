//! The resource directory's CoAP interfaces (RFC 9176) on the core router, served by
//! `coap_tokio::Server`: registration (with Block1 for large link sets), the registration
//! resources, observable lookups, simple registration, and a maintenance task that expires
//! registrations and notifies the observers of lookups.

use coap_tokio::Peer;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use coap_core::router::{method_not_allowed, Resource};
use coap_core::server::{IncomingRequest, Outcome, ResponseWriter};
use coap_core::{Code, ContentFormat, Message, OptionNumber, Route, Router};
use coap_tokio::{Client, Method, Notifier, Reply, Responder};

use super::{Directory, Limits, LookupKind, RdError};
use crate::demo::BoxedResource;
use crate::uploads::{Step, Uploads};

/// How long the RD waits for an endpoint's `/.well-known/core` in a simple registration.
const SIMPLE_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The state the interfaces share.
struct Shared {
    dir: Mutex<Directory>,
    uploads: Mutex<Uploads<coap_tokio::Peer>>,
    /// Wakes the maintenance task after a change.
    changed: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A resource directory: its routes and its maintenance task.
#[derive(Clone)]
pub struct ResourceDirectory {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ResourceDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceDirectory").finish_non_exhaustive()
    }
}

/// The routes of the RD as `coap_tokio::Server::serve` takes them.
pub type RdRouter = Router<BoxedResource, Vec<Route<'static, BoxedResource>>>;

impl ResourceDirectory {
    /// An empty directory with `limits`.
    pub fn new(limits: Limits) -> Self {
        ResourceDirectory {
            shared: Arc::new(Shared {
                dir: Mutex::new(Directory::new(limits)),
                uploads: Mutex::new(Uploads::new(limits.max_links_bytes, 16)),
                changed: tokio::sync::Notify::new(),
            }),
        }
    }

    /// Runs `f` on the directory (for inspection and tests).
    pub fn with<T>(&self, f: impl FnOnce(&Directory) -> T) -> T {
        f(&lock(&self.shared.dir))
    }

    /// The router: `/rd`, `/reg/N`, `/rd-lookup/ep`, `/rd-lookup/res`, `/.well-known/rd`
    /// and the generated `/.well-known/core`. `client` and `responder` are the serving
    /// endpoint's (`Server::client`, `Server::responder`), for simple registration.
    pub fn router(&self, client: Client, responder: Responder) -> RdRouter {
        let s = &self.shared;
        Router::new(vec![
            Route::new("/rd", Box::new(Registrations(s.clone())) as BoxedResource),
            Route::prefix("/reg", Box::new(RegistrationResource(s.clone()))),
            Route::new(
                "/rd-lookup/ep",
                Box::new(Lookup(s.clone(), LookupKind::Endpoint)),
            ),
            Route::new(
                "/rd-lookup/res",
                Box::new(Lookup(s.clone(), LookupKind::Resource)),
            ),
            Route::new(
                "/.well-known/rd",
                Box::new(SimpleRegistration {
                    shared: s.clone(),
                    client,
                    responder,
                }),
            ),
        ])
    }

    /// Expires registrations when their lifetime runs out and notifies the observers of
    /// lookups after every change (RFC 7641 §4.2), each with its own query. Runs until
    /// the endpoint behind `notifier` closes.
    pub async fn maintain(self, notifier: Notifier) {
        loop {
            let next = lock(&self.shared.dir).next_expiry();
            let sleep = async {
                match next {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.shared.changed.notified() => {}
                () = sleep => {}
            }
            let expired = lock(&self.shared.dir).expire(Instant::now());
            if expired > 0 {
                tracing::debug!("rd: {expired} registration(s) expired");
            }
            let observed = lock(&self.shared.dir).observed_lookups();
            for (key, kind, queries) in observed {
                let qs: Vec<&[u8]> = queries.iter().map(Vec::as_slice).collect();
                let reply = match lock(&self.shared.dir).lookup(kind, &qs) {
                    Ok(body) => Reply::new(Code::CONTENT)
                        .content_format(ContentFormat::LINK_FORMAT.0)
                        .payload(body),
                    Err(e) => Reply::new(e.code()),
                };
                match notifier.notify(key, reply).await {
                    None => return,
                    Some(0) => lock(&self.shared.dir).forget_lookup(key),
                    Some(_) => {}
                }
            }
        }
    }
}

fn queries<'a>(msg: &Message<'a>) -> Vec<&'a [u8]> {
    msg.options_of(OptionNumber::URI_QUERY).collect()
}

/// An error response with a diagnostic payload (RFC 7252 §5.5.2).
fn refuse(resp: &mut ResponseWriter<'_>, e: &RdError) -> Outcome {
    resp.set_code(e.code());
    match e {
        RdError::TooLarge { limit } => {
            let _ = resp.option_uint(
                OptionNumber::SIZE1,
                u32::try_from(*limit).unwrap_or(u32::MAX),
            );
        }
        // RFC 7252 §5.9.3.4: when to try again.
        RdError::Full { .. } => {
            let _ = resp.option_uint(OptionNumber::MAX_AGE, 60);
        }
        _ => {}
    }
    let _ = resp.payload(e.to_string().as_bytes());
    Outcome::Respond
}

fn is_link_format(msg: &Message<'_>) -> bool {
    // RFC 9176 §5.3: the links are application/link-format; an absent Content-Format is
    // taken as such (libcoap's and others' clients often omit it for an empty payload).
    matches!(msg.content_format(), None | Some(40))
}

/// `/rd`: the registration interface (§5.3).
struct Registrations(Arc<Shared>);

impl Resource<Peer> for Registrations {
    fn post(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let msg = req.message();
        if !is_link_format(msg) {
            return refuse(resp, &RdError::UnsupportedFormat);
        }
        let max = lock(&self.0.dir).limits().max_links_bytes;
        let step = lock(&self.0.uploads).accept(req.peer(), msg, Instant::now());
        let (links, block) = match step {
            Step::Complete(body, block) => (body, block),
            other => {
                other.respond(resp, max);
                return Outcome::Respond;
            }
        };
        let result =
            lock(&self.0.dir).register(Instant::now(), req.peer().addr, queries(msg), &links);
        match result {
            Ok((id, _)) => {
                self.0.changed.notify_one();
                resp.set_code(Code::CREATED);
                let id = id.to_string();
                let _ = resp.option_str(OptionNumber::LOCATION_PATH, "reg");
                let _ = resp.option_str(OptionNumber::LOCATION_PATH, &id);
                if let Some(b) = block {
                    let _ = resp.option_uint(OptionNumber::BLOCK1, b.encode());
                }
                Outcome::Respond
            }
            Err(e) => refuse(resp, &e),
        }
    }

    fn accepts_block1(&self) -> bool {
        true
    }

    fn link_attributes(&self) -> &str {
        r#"rt="core.rd";ct=40"#
    }
}

/// `/reg/N`: a registration resource (§5.3.1 update, §5.3.2 removal; GET reads the links).
struct RegistrationResource(Arc<Shared>);

impl RegistrationResource {
    fn id(msg: &Message<'_>) -> Option<u32> {
        let mut p = msg.uri_path();
        if p.next()? != b"reg" {
            return None;
        }
        let id = std::str::from_utf8(p.next()?).ok()?.parse().ok()?;
        // A trailing empty segment (`/reg/1/`) is the same resource.
        match p.next() {
            None => Some(id),
            Some(b"") if p.next().is_none() => Some(id),
            Some(_) => None,
        }
    }
}

impl Resource<Peer> for RegistrationResource {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let dir = lock(&self.0.dir);
        let Some(reg) = Self::id(req.message()).and_then(|id| dir.get(id)) else {
            return refuse(resp, &RdError::NotFound);
        };
        resp.set_code(Code::CONTENT);
        let written = resp
            .content_format(ContentFormat::LINK_FORMAT)
            .and_then(|r| r.payload_blockwise(reg.links.as_bytes()));
        if written.is_err() {
            resp.set_code(Code::INTERNAL_SERVER_ERROR);
        }
        Outcome::Respond
    }

    fn post(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let msg = req.message();
        let Some(id) = Self::id(msg) else {
            return refuse(resp, &RdError::NotFound);
        };
        if !msg.payload().is_empty() {
            // RFC 9176 §5.3.1: an update carries no links.
            return refuse(
                resp,
                &RdError::BadRequest("a registration update has no payload".into()),
            );
        }
        let result = lock(&self.0.dir).update(Instant::now(), id, req.peer().addr, queries(msg));
        match result {
            Ok(()) => {
                self.0.changed.notify_one();
                resp.set_code(Code::CHANGED);
                Outcome::Respond
            }
            Err(e) => refuse(resp, &e),
        }
    }

    fn delete(
        &mut self,
        req: &IncomingRequest<'_, Peer>,
        resp: &mut ResponseWriter<'_>,
    ) -> Outcome {
        let removed = Self::id(req.message()).is_some_and(|id| lock(&self.0.dir).remove(id));
        if !removed {
            return refuse(resp, &RdError::NotFound);
        }
        self.0.changed.notify_one();
        resp.set_code(Code::DELETED);
        Outcome::Respond
    }
}

/// `/rd-lookup/ep` and `/rd-lookup/res` (§6), observable: each distinct query is its own
/// observable resource, notified when registrations change.
struct Lookup(Arc<Shared>, LookupKind);

impl Resource<Peer> for Lookup {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let msg = req.message();
        let qs = queries(msg);
        let mut dir = lock(&self.0.dir);
        let body = match dir.lookup(self.1, &qs) {
            Ok(b) => b,
            Err(e) => return refuse(resp, &e),
        };
        if req.observe() == Some(0) {
            let owned = qs.iter().map(|q| q.to_vec()).collect();
            if let Some(key) = dir.observe_lookup(self.1, owned) {
                resp.observable(key);
            }
        }
        drop(dir);
        resp.set_code(Code::CONTENT);
        let written = resp
            .content_format(ContentFormat::LINK_FORMAT)
            .and_then(|r| r.payload_blockwise(body.as_bytes()));
        if written.is_err() {
            resp.set_code(Code::INTERNAL_SERVER_ERROR);
        }
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        match self.1 {
            LookupKind::Endpoint => r#"rt="core.rd-lookup-ep";ct=40;obs"#,
            LookupKind::Resource => r#"rt="core.rd-lookup-res";ct=40;obs"#,
        }
    }
}

/// `/.well-known/rd`: simple registration (§5.1). The RD answers later (a separate
/// response) once it has fetched the endpoint's `/.well-known/core`: 2.04 Changed, or
/// 5.04 when the endpoint did not answer, 5.02 when its answer is unusable.
struct SimpleRegistration {
    shared: Arc<Shared>,
    client: Client,
    responder: Responder,
}

impl Resource<Peer> for SimpleRegistration {
    fn post(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let msg = req.message();
        if !msg.payload().is_empty() {
            return refuse(
                resp,
                &RdError::BadRequest("simple registration has an empty payload".into()),
            );
        }
        let qs: Vec<Vec<u8>> = queries(msg).iter().map(|q| q.to_vec()).collect();
        // Check the parameters now: a request that cannot register gets 4.00 at once. The
        // links are fetched from the sender's address, so `base` has no place here.
        let checked = super::parse_params(qs.iter().map(Vec::as_slice)).and_then(|p| match p {
            super::Params { ep: None, .. } => {
                Err(RdError::BadRequest("ep (endpoint name) is required".into()))
            }
            super::Params { base: Some(_), .. } => Err(RdError::BadRequest(
                "base is not allowed in a simple registration".into(),
            )),
            _ => Ok(()),
        });
        if let Err(e) = checked {
            return refuse(resp, &e);
        }
        let peer = req.peer();
        let handle = req.handle();
        let shared = self.shared.clone();
        let client = self.client.clone();
        let responder = self.responder.clone();
        tokio::spawn(async move {
            let uri = format!("coap://{}/.well-known/core", super::canonical(peer.addr));
            let fetched = client
                .request(Method::Get, &uri)
                .accept(ContentFormat::LINK_FORMAT.0)
                .timeout(SIMPLE_FETCH_TIMEOUT)
                .send()
                .await;
            let reply = match fetched {
                Ok(r) if r.code == Code::CONTENT => {
                    let result = lock(&shared.dir).register(
                        Instant::now(),
                        peer.addr,
                        qs.iter().map(Vec::as_slice),
                        &r.payload,
                    );
                    match result {
                        Ok(_) => {
                            shared.changed.notify_one();
                            Reply::new(Code::CHANGED)
                        }
                        Err(e) => {
                            let code = match e {
                                RdError::BadLinks(_) => Code::BAD_GATEWAY,
                                ref e => e.code(),
                            };
                            Reply::new(code).payload(e.to_string())
                        }
                    }
                }
                Ok(r) => {
                    Reply::new(Code::BAD_GATEWAY).payload(format!("{uri} answered {}", r.code))
                }
                Err(e) => Reply::new(Code::GATEWAY_TIMEOUT).payload(format!("{uri}: {e}")),
            };
            if let Err(e) = responder.respond(handle, reply).await {
                tracing::debug!("rd: simple registration response not sent: {e}");
            }
        });
        Outcome::Defer
    }

    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        method_not_allowed(resp)
    }
}
