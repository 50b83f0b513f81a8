//! Async handlers in the style of axum, for the std runtimes: a [`Router`] of paths, each
//! with a [`MethodRouter`] (`get(read).put(write)`) of async functions whose arguments are
//! extractors ([`FromRequest`]: [`Payload`], [`Query`], [`Format`], [`Remote`], [`State`],
//! the whole [`Request`]) and whose output is anything [`IntoReply`] — a `Result` of a
//! body and a typed error included.
//!
//! Served by [`crate::Server::serve_router`]: the endpoint's loop never waits for a
//! handler. Each request is handed to a task on the runtime (the core answers
//! `Outcome::Defer`), which answers through the endpoint's [`crate::Responder`];
//! piggybacked if it is done within `Config::separate_ack_delay`, else the core sends an
//! empty ACK first and then a separate response (RFC 7252 §5.2.2). Block-wise transfers
//! are the router's (RFC 7959): handlers see whole uploads (up to
//! [`Router::max_body`], 4.13 with Size1 beyond) and return whole replies, sent in blocks
//! with an ETag when larger than one message.
//!
//! Observation is one concept (RFC 7641): [`Router::observe`] routes a path and hands out
//! its key, [`Observed`], whose [`Observed::notify`] re-runs the route's GET handler to
//! render each notification.
//!
//! Synchronous resources (`coap_core::Resource`, writing into the endpoint's buffer
//! without a copy) live in the same router through [`Router::resource`].
//!
//! `docs/tour.md` walks through it all with the programs of `examples/`.
//!
//! ```
//! use coap_std::app::{get, IntoReply, Payload, Router, State};
//! use coap_std::{Code, Reply};
//! use std::sync::{Arc, Mutex};
//!
//! #[derive(Clone, Default)]
//! struct App {
//!     temperature: Arc<Mutex<String>>,
//! }
//!
//! async fn read(State(app): State<App>) -> String {
//!     app.temperature.lock().unwrap().clone()
//! }
//!
//! /// A typed error becomes its reply.
//! struct NotANumber;
//! impl IntoReply for NotANumber {
//!     fn into_reply(self) -> Reply {
//!         Reply::new(Code::BAD_REQUEST).payload("not a number")
//!     }
//! }
//!
//! async fn write(State(app): State<App>, Payload(body): Payload) -> Result<Code, NotANumber> {
//!     let text = String::from_utf8(body).map_err(|_| NotANumber)?;
//!     text.trim().parse::<f32>().map_err(|_| NotANumber)?;
//!     *app.temperature.lock().unwrap() = text;
//!     Ok(Code::CHANGED)
//! }
//!
//! let router: Router = Router::new()
//!     .route("/temp", get(read).put(write))
//!     .with_state(App::default());
//! // server.serve_router(router).await
//! # let _ = router;
//! ```

mod blockwise;
mod into_reply;
mod observe;
mod request;
mod service;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use coap_core::{Method, Resource};

#[cfg(feature = "serde")]
pub use crate::body::{Cbor, Json};
pub use into_reply::IntoReply;
pub use observe::Observed;
pub use request::{Format, FromRequest, Payload, Query, Remote, Request, State, Text};
pub use service::AppHandler;

use crate::oscore::Peer;
use crate::reply::Reply;

/// The future an erased handler returns.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;

type Erased<S> = Arc<dyn Fn(Request, S) -> ReplyFuture + Send + Sync>;

/// An async function usable as a handler: `async fn(E1, E2, ..) -> impl IntoReply` with up
/// to four extractor arguments. `T` is the tuple of the argument types (it only tells the
/// impls apart).
pub trait AsyncHandler<T, S>: Clone + Send + Sync + 'static {
    /// Runs the handler on `req`.
    fn call(self, req: Request, state: S) -> ReplyFuture;
}

impl<F, Fut, O, S> AsyncHandler<(), S> for F
where
    F: FnOnce() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = O> + Send + 'static,
    O: IntoReply,
{
    fn call(self, _: Request, _: S) -> ReplyFuture {
        Box::pin(async move { self().await.into_reply() })
    }
}

macro_rules! async_handler {
    ($($t:ident),+) => {
        impl<F, Fut, O, S, $($t),+> AsyncHandler<($($t,)+), S> for F
        where
            F: FnOnce($($t),+) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = O> + Send + 'static,
            O: IntoReply,
            $($t: FromRequest<S> + Send + 'static,)+
        {
            #[allow(non_snake_case)]
            fn call(self, req: Request, state: S) -> ReplyFuture {
                // Extraction is synchronous (the body is whole by now); a rejection is
                // the reply, and the handler does not run.
                $(
                    let $t = match $t::from_request(&req, &state) {
                        Ok(v) => v,
                        Err(e) => return Box::pin(std::future::ready(e.into_reply())),
                    };
                )+
                drop(req);
                Box::pin(async move { self($($t),+).await.into_reply() })
            }
        }
    };
}

async_handler!(A);
async_handler!(A, B);
async_handler!(A, B, C);
async_handler!(A, B, C, D);

/// The handlers of one path, by method; other methods get 4.05 (RFC 7252 §5.8).
pub struct MethodRouter<S> {
    by_method: Vec<(Method, Erased<S>)>,
}

impl<S> Clone for MethodRouter<S> {
    fn clone(&self) -> Self {
        MethodRouter {
            by_method: self.by_method.clone(),
        }
    }
}

impl<S> std::fmt::Debug for MethodRouter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let methods: Vec<Method> = self.by_method.iter().map(|(m, _)| *m).collect();
        f.debug_struct("MethodRouter")
            .field("methods", &methods)
            .finish()
    }
}

impl<S: Clone + Send + Sync + 'static> MethodRouter<S> {
    fn new() -> Self {
        MethodRouter {
            by_method: Vec::new(),
        }
    }

    /// Adds (or replaces) the handler of `method`.
    pub fn on<H, T>(mut self, method: Method, handler: H) -> Self
    where
        H: AsyncHandler<T, S>,
        T: 'static,
    {
        let erased: Erased<S> = Arc::new(move |req, state| handler.clone().call(req, state));
        self.by_method.retain(|(m, _)| *m != method);
        self.by_method.push((method, erased));
        self
    }

    fn handler(&self, method: Method) -> Option<&Erased<S>> {
        self.by_method
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, h)| h)
    }

    fn with_state<S2>(self, state: S) -> MethodRouter<S2> {
        MethodRouter {
            by_method: self
                .by_method
                .into_iter()
                .map(|(m, h)| {
                    let state = state.clone();
                    let h: Erased<S2> = Arc::new(move |req, _| h(req, state.clone()));
                    (m, h)
                })
                .collect(),
        }
    }
}

macro_rules! method_fns {
    ($($(#[$doc:meta])* $name:ident => $method:ident;)+) => {
        $(
            $(#[$doc])*
            pub fn $name<H, T, S>(handler: H) -> MethodRouter<S>
            where
                H: AsyncHandler<T, S>,
                T: 'static,
                S: Clone + Send + Sync + 'static,
            {
                MethodRouter::new().on(Method::$method, handler)
            }
        )+
        impl<S: Clone + Send + Sync + 'static> MethodRouter<S> {
            $(
                $(#[$doc])*
                pub fn $name<H, T>(self, handler: H) -> Self
                where
                    H: AsyncHandler<T, S>,
                    T: 'static,
                {
                    self.on(Method::$method, handler)
                }
            )+
        }
    };
}

method_fns! {
    /// A GET handler.
    get => Get;
    /// A POST handler.
    post => Post;
    /// A PUT handler.
    put => Put;
    /// A DELETE handler.
    delete => Delete;
    /// A FETCH handler (RFC 8132).
    fetch => Fetch;
    /// A PATCH handler (RFC 8132).
    patch => Patch;
    /// An iPATCH handler (RFC 8132).
    ipatch => IPatch;
}

/// A synchronous resource in an async router.
pub(crate) type SyncResource = Box<dyn Resource<Peer> + Send>;

/// What a path leads to: async handlers (observable when the router handed out a key
/// for them), or a synchronous resource.
pub(crate) enum Endpoint<S> {
    Async(MethodRouter<S>, Option<Observed>),
    Sync(SyncResource),
}

/// Largest upload body by default (256 KiB).
pub const DEFAULT_MAX_BODY: usize = 256 * 1024;

/// Routes paths to async handlers ([`MethodRouter`]) and synchronous resources. `S` is the
/// state the handlers extract with [`State`]; [`Router::with_state`] supplies it.
pub struct Router<S = ()> {
    routes: HashMap<String, Endpoint<S>>,
    max_body: usize,
}

impl<S> std::fmt::Debug for Router<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut paths: Vec<&String> = self.routes.keys().collect();
        paths.sort();
        f.debug_struct("Router")
            .field("paths", &paths)
            .field("max_body", &self.max_body)
            .finish()
    }
}

impl<S: Clone + Send + Sync + 'static> Default for Router<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// `/a/b/` and `a/b` are the same path: its non-empty segments.
fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

impl<S: Clone + Send + Sync + 'static> Router<S> {
    /// An empty router: every request gets 4.04.
    pub fn new() -> Self {
        Router {
            routes: HashMap::new(),
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// Routes `path` (e.g. `"/sensors/temp"`) to async handlers. A second call for the
    /// same path adds its methods to the first one's.
    pub fn route(mut self, path: &str, methods: MethodRouter<S>) -> Self {
        let key = normalize(path);
        match self.routes.get_mut(&key) {
            Some(Endpoint::Async(existing, _)) => {
                for (m, h) in methods.by_method {
                    existing.by_method.retain(|(e, _)| *e != m);
                    existing.by_method.push((m, h));
                }
            }
            _ => {
                self.routes.insert(key, Endpoint::Async(methods, None));
            }
        }
        self
    }

    /// Routes `path` to async handlers and makes it observable (RFC 7641): a GET with
    /// Observe=0 registers its client when the GET handler answers with a success, and the
    /// returned key's [`Observed::notify`] re-runs that same GET handler to render each
    /// notification. Responses and notifications have one render path; the key is the
    /// router's to hand out, not a number to pick.
    ///
    /// ```
    /// use coap_std::app::{get, put, Observed, Router, State, Text};
    /// use coap_std::Code;
    /// use std::sync::{Arc, Mutex};
    ///
    /// #[derive(Clone)]
    /// struct App {
    ///     temp: Arc<Mutex<String>>,
    ///     observed: Observed,
    /// }
    ///
    /// async fn read(State(app): State<App>) -> String {
    ///     app.temp.lock().unwrap().clone()
    /// }
    ///
    /// async fn write(State(app): State<App>, Text(t): Text) -> Code {
    ///     *app.temp.lock().unwrap() = t;
    ///     // Every observer gets what `read` now renders.
    ///     match app.observed.notify().await {
    ///         Ok(_) => Code::CHANGED,
    ///         Err(_) => Code::SERVICE_UNAVAILABLE,
    ///     }
    /// }
    ///
    /// let mut router = Router::new();
    /// let observed = router.observe("/temp", get(read).put(write));
    /// let app = App { temp: Arc::default(), observed };
    /// let router: Router = router.with_state(app);
    /// # let _ = router;
    /// ```
    pub fn observe(&mut self, path: &str, methods: MethodRouter<S>) -> Observed {
        let key = normalize(path);
        let observed = match self.routes.get(&key) {
            Some(Endpoint::Async(_, Some(o))) => o.clone(),
            _ => Observed::new(&format!("/{key}")),
        };
        let routes = std::mem::take(&mut self.routes);
        let mut router = Router {
            routes,
            max_body: self.max_body,
        }
        .route(path, methods);
        if let Some(Endpoint::Async(_, o)) = router.routes.get_mut(&key) {
            *o = Some(observed.clone());
        }
        self.routes = router.routes;
        observed
    }

    /// Routes `path` to a synchronous resource, which writes its responses straight into
    /// the endpoint's buffer (and does its own block-wise transfers, if any).
    pub fn resource(mut self, path: &str, resource: impl Resource<Peer> + Send + 'static) -> Self {
        self.routes
            .insert(normalize(path), Endpoint::Sync(Box::new(resource)));
        self
    }

    /// The largest request body reassembled from Block1 uploads (RFC 7959 §2.3); a larger
    /// one gets 4.13 Request Entity Too Large with Size1 (§2.9.3).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Supplies the state the handlers extract with [`State`].
    pub fn with_state<S2>(self, state: S) -> Router<S2> {
        Router {
            routes: self
                .routes
                .into_iter()
                .map(|(path, e)| {
                    let e = match e {
                        Endpoint::Async(m, o) => Endpoint::Async(m.with_state(state.clone()), o),
                        Endpoint::Sync(r) => Endpoint::Sync(r),
                    };
                    (path, e)
                })
                .collect(),
            max_body: self.max_body,
        }
    }
}
