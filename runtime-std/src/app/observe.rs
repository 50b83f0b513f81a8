//! Observation as one concept for async routes (RFC 7641): a route made observable with
//! [`crate::app::Router::observe`] registers the clients that GET it with Observe=0, and
//! [`Observed::notify`] re-runs the route's own GET handler to render each notification —
//! one render path for responses and notifications, and a typed key the router hands out
//! instead of a `u32` the application picks.
//!
//! The endpoint keys observers as §4.1 does, by client endpoint and token, so ten
//! observations from one client are ten observers. Notifications are rendered once per
//! *variant*: the observing peer with the request's query and Accept option (what a
//! representation may depend on, §3.2), each under a key of its own in the endpoint, so
//! that a handler using [`crate::app::Remote`] or [`crate::app::Query`] renders every
//! observer's representation as its GET would.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use coap_core::OptionNumber;

use super::blockwise::{keep_if_large, KeptReplies, TransferKey};
use super::request::Request;
use crate::command::CommandSender;
use crate::oscore::Peer;
use crate::reply::Reply;
use crate::responder::{Notifier, NotifyError};

/// A route's handler with the state applied (the router's own erased form).
type Erased = Arc<dyn Fn(Request, ()) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// Endpoint observe keys handed out for variants. Keys below 2^31 stay the application's
/// (synchronous resources call `ResponseWriter::observable` with keys of their choice).
static NEXT_KEY: AtomicU32 = AtomicU32::new(0);

/// The first key of the router's range.
const ROUTER_KEYS: u32 = 1 << 31;

/// Variants of one observed route at once; a registration beyond is answered without
/// Observe (the client learns that it is not registered, RFC 7641 §4.1). The endpoint
/// holds at most `OBSERVERS` observers anyway.
const MAX_VARIANTS: usize = crate::driver::OBSERVERS;

fn next_key() -> u32 {
    ROUTER_KEYS | (NEXT_KEY.fetch_add(1, Ordering::Relaxed) & !ROUTER_KEYS)
}

/// What a representation may depend on: who asks, the query and the Accept option.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct VariantKey {
    peer: Peer,
    query: Vec<String>,
    accept: Option<Vec<u8>>,
}

impl VariantKey {
    fn of(req: &Request) -> VariantKey {
        VariantKey {
            peer: req.peer(),
            query: req.query().to_vec(),
            accept: req.option(OptionNumber::ACCEPT).map(<[u8]>::to_vec),
        }
    }
}

struct Variant {
    /// The endpoint's observe key of this variant.
    key: u32,
    /// The latest registration's request, re-run to render notifications.
    request: Request,
    /// Its block-wise transfer key: a notification larger than a block is kept under it
    /// for the follow-up Block2 requests (RFC 7959 §3.4).
    transfer: TransferKey,
    /// Registrations whose answer has not reached the endpoint yet.
    pending: usize,
    /// Counts registrations, so that a notification that found no observer removes the
    /// variant only if nobody registered meanwhile.
    registrations: u64,
}

#[derive(Default)]
struct Variants {
    by_key: HashMap<VariantKey, Variant>,
}

/// What the route needs once served: its GET handler with the state applied, and the
/// endpoint to notify through.
struct Served {
    get: Option<Erased>,
    commands: CommandSender,
    kept: Arc<Mutex<KeptReplies>>,
}

struct Shared {
    path: String,
    served: OnceLock<Served>,
    variants: Mutex<Variants>,
}

/// The key of an observable route, handed out by [`crate::app::Router::observe`]: notify
/// its observers with [`Observed::notify`] when the resource changed. Cheap to clone, `Send + Sync`: put it into the router's state so that a PUT
/// handler can notify.
#[derive(Clone)]
pub struct Observed {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let variants = self.shared.variants.lock().map_or(0, |v| v.by_key.len());
        f.debug_struct("Observed")
            .field("path", &self.shared.path)
            .field("served", &self.shared.served.get().is_some())
            .field("variants", &variants)
            .finish()
    }
}

/// A registration in progress: the variant's key to declare in the answer, and its
/// bookkeeping to finish once the endpoint has taken the answer.
pub(crate) struct Registration {
    observed: Observed,
    variant: VariantKey,
    /// The endpoint key for `Reply::observable`; `None` when there is no room.
    pub(crate) key: Option<u32>,
}

/// Dropped once the answer has reached the endpoint (and registered the client if it was
/// a success), or when it never will (the task could not be spawned).
impl Drop for Registration {
    fn drop(&mut self) {
        if self.key.is_none() {
            return;
        }
        if let Ok(mut v) = self.observed.shared.variants.lock() {
            if let Some(variant) = v.by_key.get_mut(&self.variant) {
                variant.pending = variant.pending.saturating_sub(1);
            }
        }
    }
}

impl Observed {
    pub(crate) fn new(path: &str) -> Observed {
        Observed {
            shared: Arc::new(Shared {
                path: path.to_owned(),
                served: OnceLock::new(),
                variants: Mutex::default(),
            }),
        }
    }

    /// The route is being served: notifications re-run `get` and go through `commands`.
    /// A key is served by one router; serving it again keeps the first.
    pub(crate) fn serve(
        &self,
        get: Option<Erased>,
        commands: CommandSender,
        kept: Arc<Mutex<KeptReplies>>,
    ) {
        let _ = self.shared.served.set(Served {
            get,
            commands,
            kept,
        });
    }

    /// A GET with Observe=0 (RFC 7641 §3.1) of this route: the variant it observes.
    pub(crate) fn register(&self, req: &Request, transfer: TransferKey) -> Registration {
        let variant = VariantKey::of(req);
        let mut key = None;
        if let Ok(mut v) = self.shared.variants.lock() {
            let room = v.by_key.len() < MAX_VARIANTS;
            match v.by_key.get_mut(&variant) {
                Some(existing) => {
                    existing.request = req.clone();
                    existing.transfer = transfer;
                    existing.pending += 1;
                    existing.registrations += 1;
                    key = Some(existing.key);
                }
                None if room => {
                    let k = next_key();
                    v.by_key.insert(
                        variant.clone(),
                        Variant {
                            key: k,
                            request: req.clone(),
                            transfer,
                            pending: 1,
                            registrations: 1,
                        },
                    );
                    key = Some(k);
                }
                None => {}
            }
        }
        Registration {
            observed: self.clone(),
            variant,
            key,
        }
    }

    /// The path of the route.
    pub fn path(&self) -> &str {
        &self.shared.path
    }

    /// The resource changed: renders a notification for every variant by running the
    /// route's GET handler on that variant's registration request, and sends it to its
    /// observers (RFC 7641 §4.2; larger than a message: block-wise, an error code ends
    /// the observations). Returns how many notifications were sent.
    ///
    /// Fails with [`NotifyError::NotServed`] before the router is served and with
    /// [`NotifyError::Closed`] once the endpoint has stopped.
    pub async fn notify(&self) -> Result<usize, NotifyError> {
        let served = self.shared.served.get().ok_or(NotifyError::NotServed)?;
        if served.commands.is_closed() {
            return Err(NotifyError::Closed);
        }
        let Some(get) = &served.get else {
            return Ok(0); // no GET handler: nobody can have registered
        };
        // With each variant: whether a registration was in flight when it was taken.
        type Snapshot = (VariantKey, u32, u64, bool, Request, TransferKey);
        let variants: Vec<Snapshot> = match self.shared.variants.lock() {
            Ok(v) => v
                .by_key
                .iter()
                .map(|(k, v)| {
                    let idle = v.pending == 0;
                    let (r, t) = (v.request.clone(), v.transfer.clone());
                    (k.clone(), v.key, v.registrations, idle, r, t)
                })
                .collect(),
            Err(_) => return Err(NotifyError::Closed),
        };
        let notifier = Notifier::new(served.commands.clone());
        let mut sent = 0;
        for (variant, key, registrations, idle, request, transfer) in variants {
            let reply = keep_if_large(get(request, ()).await, transfer, &served.kept);
            let n = notifier.notify(key, reply).await?;
            sent += n;
            // No observer, and no registration in flight before or since: every observer
            // of the variant has gone (deregistered, RST, failed CON).
            if n == 0 && idle {
                if let Ok(mut v) = self.shared.variants.lock() {
                    if v.by_key.get(&variant).is_some_and(|v| {
                        v.key == key && v.pending == 0 && v.registrations == registrations
                    }) {
                        v.by_key.remove(&variant);
                    }
                }
            }
        }
        Ok(sent)
    }
}
