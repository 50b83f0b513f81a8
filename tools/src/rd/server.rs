//! The resource directory's CoAP interfaces (RFC 9176) on the core router, served by
//! `coap_tokio::Server`: registration (with Block1 for large link sets), the registration
//! resources, observable lookups, simple registration, and a maintenance task that expires
//! registrations and notifies the observers of lookups.

use coap_tokio::Peer;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use coap_core::option::encode_uint;
use coap_core::router::{method_not_allowed, Resource};
use coap_core::server::{IncomingRequest, Outcome, ResponseWriter};
use coap_core::{
    Code, ContentFormat, Idempotence, Message, OptionNumber, ResponseHandle, Route, Router,
};
use coap_tokio::{Client, Method, Notifier, Reply, Responder};

use super::store::{memory::MemoryStore, Change, Store, StoreError};
use super::{Directory, Limits, LookupKind, RdError, Registration};
use crate::demo::BoxedResource;
use crate::uploads::{Step, Uploads};

/// How long the RD waits for an endpoint's `/.well-known/core` in a simple registration.
const SIMPLE_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The Max-Age of a 5.03 for an unreachable store: when to try again (RFC 7252 §5.9.3.4).
const STORE_RETRY_AFTER: u32 = 5;

/// How often a reload after a lost subscription is tried.
const RELOAD_TRIES: u32 = 5;

/// The state the interfaces share.
struct Shared {
    /// This instance's view of the registrations (lookups are answered from it).
    dir: Mutex<Directory>,
    /// Where registrations are kept (the truth, possibly shared with other instances).
    store: Arc<dyn Store>,
    /// The changes other instances make, for a shared store (taken by `maintain`).
    changes: Mutex<Option<tokio::sync::mpsc::Receiver<Change>>>,
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

/// What a deferred handler needs: the shared state and the endpoint's responder.
#[derive(Clone)]
struct Ctx {
    shared: Arc<Shared>,
    responder: Responder,
}

impl Ctx {
    /// Answers `handle` with what `work` comes to, on a task of its own: store I/O never
    /// holds up the endpoint's loop (the handler returns `Outcome::Defer`).
    fn defer<F>(&self, handle: ResponseHandle, work: F) -> Outcome
    where
        F: std::future::Future<Output = Reply> + Send + 'static,
    {
        let responder = self.responder.clone();
        tokio::spawn(async move {
            let reply = work.await;
            if let Err(e) = responder.respond(handle, reply).await {
                tracing::debug!("rd: deferred response not sent: {e}");
            }
        });
        Outcome::Defer
    }
}

impl ResourceDirectory {
    /// An empty directory with `limits`, in memory.
    pub fn new(limits: Limits) -> Self {
        Self::with_store(limits, Arc::new(MemoryStore::new()), Vec::new())
    }

    /// A directory on `store`, with what it holds already.
    pub async fn open(limits: Limits, store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let regs = store.load().await?;
        Ok(Self::with_store(limits, store, regs))
    }

    fn with_store(limits: Limits, store: Arc<dyn Store>, regs: Vec<Registration>) -> Self {
        let mut dir = Directory::new(limits);
        dir.replace_all(regs);
        ResourceDirectory {
            shared: Arc::new(Shared {
                dir: Mutex::new(dir),
                changes: Mutex::new(store.changes()),
                store,
                uploads: Mutex::new(Uploads::new(limits.max_links_bytes, 16)),
                changed: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The store in use.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// Runs `f` on the directory (for inspection and tests).
    pub fn with<T>(&self, f: impl FnOnce(&Directory) -> T) -> T {
        f(&lock(&self.shared.dir))
    }

    /// The router: `/rd`, `/reg/N`, `/rd-lookup/ep`, `/rd-lookup/res`, `/.well-known/rd`
    /// and the generated `/.well-known/core`. `client` and `responder` are the serving
    /// endpoint's (`Server::client`, `Server::responder`): the responder answers the
    /// requests that wait on the store, the client fetches links in simple registration.
    pub fn router(&self, client: Client, responder: Responder) -> RdRouter {
        let s = &self.shared;
        let ctx = Ctx {
            shared: s.clone(),
            responder,
        };
        Router::new(vec![
            Route::new("/rd", Box::new(Registrations(ctx.clone())) as BoxedResource),
            Route::prefix("/reg", Box::new(RegistrationResource(ctx.clone()))),
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
                Box::new(SimpleRegistration { ctx, client }),
            ),
        ])
    }

    /// Brings this instance's view up to date with a change another instance made.
    async fn apply(&self, change: Change) {
        let shared = &self.shared;
        match change {
            Change::Put(reg) => lock(&shared.dir).insert(reg),
            Change::Removed(id) => {
                lock(&shared.dir).remove(id);
            }
            Change::Resync => {
                // Right after a reconnection the first command may still meet the old,
                // broken connection: a few tries, a moment apart.
                for attempt in 1..=RELOAD_TRIES {
                    match shared.store.load().await {
                        Ok(regs) => {
                            lock(&shared.dir).replace_all(regs);
                            break;
                        }
                        Err(e) if attempt == RELOAD_TRIES => {
                            tracing::warn!("rd: cannot reload the registrations: {e}");
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            }
        }
    }

    /// Removes what ran out: from the store (where it does not expire them itself), then
    /// from the view, each after asking the store (another instance may have updated it).
    async fn expire(&self) {
        let shared = &self.shared;
        let due = lock(&shared.dir).expired(Instant::now());
        if due.is_empty() {
            return;
        }
        if let Err(e) = shared.store.expire().await {
            tracing::warn!("rd: expiry in the store failed: {e}");
        }
        let mut gone = 0;
        for id in due {
            match shared.store.get(id).await {
                Ok(Some(reg)) if reg.expires > Instant::now() => lock(&shared.dir).insert(reg),
                _ => {
                    lock(&shared.dir).remove(id);
                    gone += 1;
                }
            }
        }
        if gone > 0 {
            tracing::debug!("rd: {gone} registration(s) expired");
        }
    }

    /// Expires registrations when their lifetime runs out, follows the changes other
    /// instances make (a shared store), and notifies the observers of lookups after every
    /// change (RFC 7641 §4.2), each with its own query. Runs until the endpoint behind
    /// `notifier` closes.
    pub async fn maintain(self, notifier: Notifier) {
        let mut changes = lock(&self.shared.changes).take();
        loop {
            let next = lock(&self.shared.dir).next_expiry();
            let sleep = async {
                match next {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            let from_others = async {
                match changes.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.shared.changed.notified() => {}
                () = sleep => {}
                change = from_others => match change {
                    Some(c) => {
                        self.apply(c).await;
                        // Apply what else is queued before notifying once.
                        while let Some(c) = changes.as_mut().and_then(|rx| rx.try_recv().ok()) {
                            self.apply(c).await;
                        }
                    }
                    None => changes = None,
                },
            }
            self.expire().await;
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
                    Err(_) => return,
                    Ok(0) => lock(&self.shared.dir).forget_lookup(key),
                    Ok(_) => {}
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
    if refusal(e).write(resp).is_err() {
        resp.set_code(e.code());
    }
    Outcome::Respond
}

fn is_link_format(msg: &Message<'_>) -> bool {
    // RFC 9176 §5.3: the links are application/link-format; an absent Content-Format is
    // taken as such (libcoap's and others' clients often omit it for an empty payload).
    matches!(msg.content_format(), None | Some(40))
}

/// The bytes of a uint option value.
fn uint(n: u32) -> Vec<u8> {
    let mut b = [0; 4];
    encode_uint(n, &mut b).to_vec()
}

/// 5.03 for a store that could not be reached or refused the write: nothing was stored,
/// nothing is acknowledged (RFC 7252 §5.9.3.4: Max-Age says when to try again).
fn unavailable(e: &StoreError) -> Reply {
    tracing::warn!("rd: store unavailable: {e}");
    Reply::new(Code::SERVICE_UNAVAILABLE)
        .option(OptionNumber::MAX_AGE, uint(STORE_RETRY_AFTER))
        .payload(format!("registration store unavailable: {e}"))
}

/// The [`refuse`] response as an owned reply.
fn refusal(e: &RdError) -> Reply {
    let reply = Reply::new(e.code());
    let reply = match e {
        RdError::TooLarge { limit } => reply.option(
            OptionNumber::SIZE1,
            uint(u32::try_from(*limit).unwrap_or(u32::MAX)),
        ),
        RdError::Full { .. } => reply.option(OptionNumber::MAX_AGE, uint(60)),
        _ => reply,
    };
    reply.payload(e.to_string())
}

/// Stores a prepared registration and puts it into the view: its id, once it is durable.
async fn store_registration(shared: &Shared, mut reg: Registration) -> Result<u64, StoreError> {
    let (id, _) = shared.store.register(reg.clone()).await?;
    reg.id = id;
    lock(&shared.dir).insert(reg);
    shared.changed.notify_one();
    Ok(id)
}

/// How the RD's registration requests may be repeated: a whole request replaces state (a
/// second run leaves what the first left, RFC 7252 §4.5 lets such requests run again),
/// while one block of a Block1 upload advances a reassembly and stays at most once.
fn replaces_in_place(request: &Message<'_>) -> Idempotence {
    if request.option(OptionNumber::BLOCK1).is_some() {
        Idempotence::AtMostOnce
    } else {
        Idempotence::Idempotent
    }
}

/// `/rd`: the registration interface (§5.3).
struct Registrations(Ctx);

impl Resource<Peer> for Registrations {
    fn post(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let msg = req.message();
        if !is_link_format(msg) {
            return refuse(resp, &RdError::UnsupportedFormat);
        }
        let shared = &self.0.shared;
        let max = lock(&shared.dir).limits().max_links_bytes;
        let step = lock(&shared.uploads).accept(req.peer(), msg, Instant::now());
        let (links, block) = match step {
            Step::Complete(body, block) => (body, block),
            other => {
                other.respond(resp, max);
                return Outcome::Respond;
            }
        };
        let prepared =
            lock(&shared.dir).prepare(Instant::now(), req.peer().addr, queries(msg), &links);
        let reg = match prepared {
            Ok(reg) => reg,
            Err(e) => return refuse(resp, &e),
        };
        let shared = shared.clone();
        self.0.defer(req.handle(), async move {
            match store_registration(&shared, reg).await {
                Ok(id) => {
                    let reply = Reply::new(Code::CREATED)
                        .option(OptionNumber::LOCATION_PATH, "reg")
                        .option(OptionNumber::LOCATION_PATH, id.to_string());
                    match block {
                        Some(b) => reply.option(OptionNumber::BLOCK1, uint(b.encode())),
                        None => reply,
                    }
                }
                Err(e) => unavailable(&e),
            }
        })
    }

    /// RFC 9176 §5.3: a registration with the same endpoint name and sector replaces the
    /// earlier one at the same location, so a repeated POST has the effect of one, and the
    /// RD need not hold every registration of the last EXCHANGE_LIFETIME to serve new
    /// ones (RFC 7252 §4.5 allows re-executing idempotent requests). A block-wise upload
    /// stays at most once: a repeated block would step the reassembly.
    fn idempotence(&self, request: &Message<'_>) -> Idempotence {
        replaces_in_place(request)
    }

    fn accepts_block1(&self) -> bool {
        true
    }

    fn link_attributes(&self) -> &str {
        r#"rt="core.rd";ct=40"#
    }
}

/// `/reg/N`: a registration resource (§5.3.1 update, §5.3.2 removal; GET reads the links).
struct RegistrationResource(Ctx);

impl RegistrationResource {
    fn id(msg: &Message<'_>) -> Option<u64> {
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
    /// RFC 9176 §5.3.1: an update sets the lifetime (and base, links) to what the request
    /// says, so a repeated one changes nothing more (see [`replaces_in_place`]).
    fn idempotence(&self, request: &Message<'_>) -> Idempotence {
        replaces_in_place(request)
    }

    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let dir = lock(&self.0.shared.dir);
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
        let qs: Vec<Vec<u8>> = queries(msg).iter().map(|q| q.to_vec()).collect();
        // Bad parameters are refused at once, before any store I/O.
        if let Err(e) = super::update_params(qs.iter().map(Vec::as_slice)) {
            return refuse(resp, &e);
        }
        let peer = req.peer().addr;
        let shared = self.0.shared.clone();
        self.0.defer(req.handle(), async move {
            // The store's copy: another instance may have updated it since.
            let mut reg = match shared.store.get(id).await {
                Ok(Some(reg)) => reg,
                Ok(None) => return refusal(&RdError::NotFound),
                Err(e) => return unavailable(&e),
            };
            if let Err(e) = reg.apply_update(Instant::now(), peer, qs.iter().map(Vec::as_slice)) {
                return refusal(&e);
            }
            match shared.store.update(reg.clone()).await {
                Ok(true) => {
                    lock(&shared.dir).insert(reg);
                    shared.changed.notify_one();
                    Reply::new(Code::CHANGED)
                }
                Ok(false) => refusal(&RdError::NotFound),
                Err(e) => unavailable(&e),
            }
        })
    }

    fn delete(
        &mut self,
        req: &IncomingRequest<'_, Peer>,
        resp: &mut ResponseWriter<'_>,
    ) -> Outcome {
        let Some(id) = Self::id(req.message()) else {
            return refuse(resp, &RdError::NotFound);
        };
        let shared = self.0.shared.clone();
        self.0.defer(req.handle(), async move {
            match shared.store.remove(id).await {
                Ok(removed) => {
                    let was_here = lock(&shared.dir).remove(id);
                    if was_here {
                        shared.changed.notify_one();
                    }
                    if removed {
                        Reply::new(Code::DELETED)
                    } else {
                        refusal(&RdError::NotFound)
                    }
                }
                Err(e) => unavailable(&e),
            }
        })
    }
}

/// `/rd-lookup/ep` and `/rd-lookup/res` (§6), observable: each distinct query is its own
/// observable resource, notified when registrations change. Answered from the view, at
/// once (no store I/O).
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
/// response) once it has fetched the endpoint's `/.well-known/core` and stored the
/// registration: 2.04 Changed, or 5.04 when the endpoint did not answer, 5.02 when its
/// answer is unusable, 5.03 when the store is unavailable.
struct SimpleRegistration {
    ctx: Ctx,
    client: Client,
}

impl Resource<Peer> for SimpleRegistration {
    /// RFC 9176 §5.1: like a full registration, it replaces the endpoint's earlier one.
    fn idempotence(&self, request: &Message<'_>) -> Idempotence {
        replaces_in_place(request)
    }

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
        let shared = self.ctx.shared.clone();
        let client = self.client.clone();
        self.ctx.defer(req.handle(), async move {
            let uri = format!("coap://{}/.well-known/core", super::canonical(peer.addr));
            let fetched = client
                .request(Method::Get, &uri)
                .accept(ContentFormat::LINK_FORMAT.0)
                .timeout(SIMPLE_FETCH_TIMEOUT)
                .send()
                .await;
            match fetched {
                Ok(r) if r.code == Code::CONTENT => {
                    let prepared = lock(&shared.dir).prepare(
                        Instant::now(),
                        peer.addr,
                        qs.iter().map(Vec::as_slice),
                        &r.payload,
                    );
                    match prepared {
                        Ok(reg) => match store_registration(&shared, reg).await {
                            Ok(_) => Reply::new(Code::CHANGED),
                            Err(e) => unavailable(&e),
                        },
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
            }
        })
    }

    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        method_not_allowed(resp)
    }
}

/// The RD's endpoint configuration: the empty ACK of a request that waits on the store is
/// held back for up to half a second (RFC 7252 §5.2.2 leaves it to the server), so that a
/// store that answers quickly gets its response piggybacked: no separate CON response for
/// the client to acknowledge.
pub fn server_config() -> coap_tokio::Config {
    coap_tokio::Config {
        separate_ack_delay: Duration::from_millis(500),
        ..coap_tokio::Config::default()
    }
}
