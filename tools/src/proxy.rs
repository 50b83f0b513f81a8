//! `coap proxy`: a CoAP-to-CoAP forward proxy (RFC 7252 §5.7) with a response cache
//! (§5.6, rules in [`coap_core::cache`]) and an optional reverse-proxy map.
//!
//! - Forward: a request with Proxy-Uri, or with Proxy-Scheme and the Uri-* options (§5.7.2,
//!   §6.5), is sent upstream by the proxy's client and answered as a separate response once
//!   upstream answers; 5.05 for schemes other than `coap`, 5.04 when upstream is silent, 5.02
//!   when it cannot be reached, 5.08 when Hop-Limit runs out (RFC 8768, which the proxy
//!   decrements, inserting 16 when absent, against loops).
//! - Cache: GET and FETCH answers are kept by their cache key; a fresh entry is served
//!   without upstream traffic with Max-Age reduced by its age, a stale one with an ETag is
//!   validated upstream (2.03 refreshes it), a client's matching ETag gets 2.03, and unsafe
//!   methods' successes invalidate. Bounded: entries and bytes, least recently used evicted.
//! - Block-wise on both legs independently: the upstream leg reassembles (the client's
//!   Block2/Block1), the downstream leg serves blocks of the whole representation by offset.
//! - Observe (RFC 7641 §5): registrations (GET/FETCH with Observe=0) for the same request
//!   share one upstream observation; each upstream notification is relayed to every
//!   downstream observer, a later registration is answered at once from the newest
//!   representation, and the upstream observation is cancelled once no downstream observer
//!   is left (checked at each upstream notification) or it ends upstream.
//! - Reverse: `--reverse /local=coap://host:port/base` forwards requests under `/local`
//!   without any proxy option.
//! - Bounded ([`crate::proxy_permits`]): at most `max_upstream` exchanges in flight, at
//!   most `max_per_upstream` to any one upstream endpoint, and for each upstream at most
//!   `upstream_queue` requests waiting up to `upstream_wait` for one of its permits. So a
//!   silent upstream holds only its own permits: its exchanges end with 5.04 after
//!   `upstream_timeout`, its queued requests with 5.04 after `upstream_wait`, the rest at
//!   once with 5.03 and Max-Age; other upstreams are served meanwhile.
//! - Destinations: checked after name resolution by a
//!   [`DestinationPolicy`] (the request then goes
//!   to the checked addresses only). A refused Proxy-Uri or Proxy-Scheme request gets 5.05
//!   Proxying Not Supported with the reason as diagnostic payload: RFC 7252 §5.10.2 says an
//!   endpoint "unwilling to act as a forward-proxy for the request MUST return" 5.05, and
//!   §5.9.3.6 defines it as unable or unwilling for the URI given. Reverse-map targets are
//!   the operator's and not checked.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::destination::DestinationPolicy;
use crate::proxy_permits::{authority, NoPermit, Permit, PermitLimits, Permits};
use coap_core::cache::{key_hash, same_key, Cache, Lookup, Meta, Storage, Stored};
use coap_core::code::CodeClass;
use coap_core::{Code, Message, MessageBuilder, MessageType, Method, OptionNumber, ResponseHandle};
use coap_tokio::{
    Client, ClientError, Handler, IncomingRequest, Notifier, Outcome, Peer, Reply, Responder,
    Response, ResponseWriter,
};

/// RFC 8768 §3: the initial Hop-Limit a proxy inserts.
pub const DEFAULT_HOP_LIMIT: u32 = 16;

/// Proxy limits.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Cache entries.
    pub cache_entries: usize,
    /// Largest cached response (whole representation), in bytes.
    pub cache_entry_bytes: usize,
    /// Upstream exchanges in flight at most.
    pub max_upstream: usize,
    /// How long upstream may take.
    pub upstream_timeout: Duration,
    /// Upstream exchanges in flight to one upstream endpoint (host and port) at most.
    pub max_per_upstream: usize,
    /// Requests waiting for a permit of one upstream endpoint at most (5.03 beyond).
    pub upstream_queue: usize,
    /// How long a request waits for a permit of its upstream (5.04 beyond).
    pub upstream_wait: Duration,
    /// Reverse-proxy map: local path prefix → upstream base URI.
    pub reverse: Vec<(String, String)>,
    /// Where requests may be forwarded to.
    pub destinations: DestinationPolicy,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            cache_entries: 1024,
            cache_entry_bytes: 1 << 20,
            max_upstream: 256,
            upstream_timeout: Duration::from_secs(30),
            max_per_upstream: 32,
            upstream_queue: 32,
            upstream_wait: Duration::from_secs(2),
            reverse: Vec::new(),
            destinations: DestinationPolicy::default(),
        }
    }
}

/// Counters, for tests and monitoring.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Requests sent upstream.
    pub upstream: AtomicU64,
    /// Requests answered from the cache (fresh hits and 2.03 to a client's ETag).
    pub cache_hits: AtomicU64,
    /// Requests refused because `max_upstream` exchanges (or `max_per_upstream` to their
    /// upstream) were in flight.
    pub busy: AtomicU64,
    /// Requests refused by the destination policy.
    pub forbidden: AtomicU64,
    /// Requests answered 5.04 because no permit of their upstream came free in time.
    pub gave_up_waiting: AtomicU64,
    /// Upstream observations started (one per distinct observed request at a time).
    pub observations: AtomicU64,
    /// Upstream observations ended (no downstream observer left, or ended upstream).
    pub observations_ended: AtomicU64,
    /// Downstream registrations answered at once from a running upstream observation.
    pub observers_joined: AtomicU64,
}

/// Registrations waiting for the first upstream answer, per shared observation, at most.
const MAX_WAITING: usize = 256;

/// One cached entry: metadata, the keying request, the response.
type Entry = (Meta, Vec<u8>, Vec<u8>);

/// [`Storage`] on the heap: a bounded number of slots, each holding up to a byte limit.
pub struct VecStorage {
    slots: Vec<Option<Entry>>,
    max_bytes: usize,
}

impl VecStorage {
    /// `slots` entries of at most `max_bytes` (request and response together) each.
    pub fn new(slots: usize, max_bytes: usize) -> Self {
        VecStorage {
            slots: (0..slots).map(|_| None).collect(),
            max_bytes,
        }
    }
}

impl Storage for VecStorage {
    fn slots(&self) -> usize {
        self.slots.len()
    }
    fn meta(&self, i: usize) -> Option<Meta> {
        self.slots.get(i)?.as_ref().map(|s| s.0)
    }
    fn set_meta(&mut self, i: usize, meta: Meta) {
        if let Some(Some(s)) = self.slots.get_mut(i) {
            s.0 = meta;
        }
    }
    fn entry(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.slots
            .get(i)?
            .as_ref()
            .map(|s| (s.1.as_slice(), s.2.as_slice()))
    }
    fn put(&mut self, i: usize, meta: Meta, request: &[u8], response: &[u8]) -> bool {
        let Some(slot) = self.slots.get_mut(i) else {
            return false;
        };
        *slot = None;
        if request.len() + response.len() > self.max_bytes {
            return false;
        }
        *slot = Some((meta, request.to_vec(), response.to_vec()));
        true
    }
    fn clear(&mut self, i: usize) {
        if let Some(s) = self.slots.get_mut(i) {
            *s = None;
        }
    }
}

/// One upstream observation on behalf of every downstream observer of the same request
/// (RFC 7641 §5).
struct Shared {
    /// The keying request (a message), to confirm that a hash match is the same request.
    request: Vec<u8>,
    /// The newest successful representation and when it arrived.
    latest: Option<(Reply, std::time::Instant)>,
    /// Registrations deferred until the first upstream answer.
    waiting: Vec<ResponseHandle>,
    /// Registrations answered from `latest` so far (so that the relay does not cancel
    /// upstream while one of them is being registered).
    joined: u64,
}

type SharedMap = Arc<Mutex<HashMap<u32, Shared>>>;

/// The proxy's handler: answers from the cache or defers and forwards.
pub struct Proxy {
    client: Client,
    responder: Responder,
    notifier: Notifier,
    observed: SharedMap,
    cache: Arc<Mutex<Cache<VecStorage>>>,
    config: ProxyConfig,
    permits: Permits,
    stats: Arc<ProxyStats>,
    start: std::time::Instant,
    runtime: tokio::runtime::Handle,
}

impl Proxy {
    /// A proxy that forwards with `client` and answers deferred requests with `responder`
    /// (the server's), spawning upstream exchanges on the current tokio runtime.
    pub fn new(client: Client, responder: Responder, config: ProxyConfig) -> Proxy {
        let storage = VecStorage::new(config.cache_entries, config.cache_entry_bytes);
        let limits = PermitLimits {
            global: config.max_upstream,
            per_upstream: config.max_per_upstream,
            queue: config.upstream_queue,
            wait: config.upstream_wait,
        };
        Proxy {
            client,
            notifier: responder.notifier(),
            responder,
            observed: Arc::new(Mutex::new(HashMap::new())),
            cache: Arc::new(Mutex::new(Cache::new(storage))),
            config,
            permits: Permits::new(limits),
            stats: Arc::new(ProxyStats::default()),
            start: std::time::Instant::now(),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> Arc<ProxyStats> {
        self.stats.clone()
    }

    fn now(&self) -> coap_core::Instant {
        coap_core::Instant::from_millis(self.start.elapsed().as_millis() as u64)
    }

    /// A place in the queue of `uri`'s upstream, or a counted refusal.
    fn reserve(&self, uri: &str) -> Option<crate::proxy_permits::Reserved> {
        let r = self.permits.reserve(&authority(uri)).ok();
        if r.is_none() {
            self.stats.busy.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// What a spawned exchange needs before it may go upstream.
    fn gate(&self, uri: &str, checked: bool) -> Option<Gate> {
        let reserved = self.reserve(uri)?;
        Some(Gate {
            reserved,
            policy: checked.then(|| self.config.destinations.clone()),
            uri: uri.to_owned(),
            client: self.client.clone(),
            stats: self.stats.clone(),
        })
    }

    /// A registration (Observe=0): joins the upstream observation of the same request, or
    /// starts one. `None`: not shareable (a hash collision with a different request), to
    /// be forwarded as a plain request.
    fn observe(
        &mut self,
        req: &IncomingRequest<'_, Peer>,
        uri: &str,
        checked: bool,
        hops: u32,
        w: &mut ResponseWriter<'_>,
    ) -> Option<Outcome> {
        let msg = req.message();
        let hash = key_hash(msg);
        let key = (hash ^ (hash >> 32)) as u32;
        let mut observed = self.observed.lock().ok()?;
        if let Some(shared) = observed.get_mut(&key) {
            let same = Message::parse(&shared.request).is_ok_and(|m| same_key(&m, msg));
            if !same {
                return None;
            }
            if let Some((reply, at)) = &shared.latest {
                // The newest representation, its Max-Age reduced by its age (§5.6.1);
                // the endpoint registers the client.
                let left = max_age(reply).saturating_sub(at.elapsed().as_secs() as u32);
                let reply = with_max_age(reply.clone(), left).observable(key);
                shared.joined += 1;
                self.stats.observers_joined.fetch_add(1, Ordering::Relaxed);
                return Some(write(&reply, w));
            }
            if shared.waiting.len() >= MAX_WAITING {
                self.stats.busy.fetch_add(1, Ordering::Relaxed);
                return Some(busy(w));
            }
            shared.waiting.push(req.handle());
            return Some(Outcome::Defer);
        }
        let request = copy_request(msg)?;
        let Some(gate) = self.gate(uri, checked) else {
            return Some(busy(w));
        };
        observed.insert(
            key,
            Shared {
                request,
                latest: None,
                waiting: vec![req.handle()],
                joined: 0,
            },
        );
        drop(observed);
        self.stats.observations.fetch_add(1, Ordering::Relaxed);
        let method = if msg.code() == Code::FETCH {
            Method::Fetch
        } else {
            Method::Get
        };
        let options: Vec<(OptionNumber, Vec<u8>)> = msg
            .options()
            .filter(|o| forwarded(o.number) && o.number != OptionNumber::ETAG)
            .map(|o| (o.number, o.value.to_vec()))
            .collect();
        let payload = msg.payload().to_vec();
        let timeout = self.config.upstream_timeout;
        let relay = Relay {
            key,
            observed: self.observed.clone(),
            responder: self.responder.clone(),
            notifier: self.notifier.clone(),
            permit: Mutex::new(None),
            stats: self.stats.clone(),
        };
        let uri = uri.to_owned();
        self.runtime.spawn(async move {
            let (client, permit) = match gate.pass().await {
                Ok(passed) => passed,
                Err(refusal) => return relay.end(refusal).await,
            };
            *relay.permit.lock().unwrap_or_else(|e| e.into_inner()) = Some(permit);
            let mut upstream = client
                .request(method, &uri)
                .timeout(timeout)
                .option(OptionNumber::HOP_LIMIT, vec![(hops - 1) as u8])
                .payload(payload);
            for (n, v) in options {
                upstream = upstream.option(n, v);
            }
            match upstream.observe().await {
                Ok(observation) => relay.run(observation).await,
                Err(e) => relay.end(error_reply(&e)).await,
            }
        });
        Some(Outcome::Defer)
    }
}

/// Relays one upstream observation to its downstream observers.
struct Relay {
    key: u32,
    observed: SharedMap,
    responder: Responder,
    notifier: Notifier,
    /// The upstream permit, released when the observation ends.
    permit: Mutex<Option<Permit>>,
    stats: Arc<ProxyStats>,
}

impl Relay {
    async fn run(self, mut observation: coap_tokio::Observation) {
        loop {
            let (reply, goes_on) = match observation.next().await {
                Some(Ok(r)) => {
                    // RFC 7641 §3.2/§4.2: a success with Observe keeps the observation; an
                    // error, or an answer without Observe (not observable, or the server's
                    // table is full), ends it.
                    let goes_on = r.code.kind() == CodeClass::Success
                        && r.option(OptionNumber::OBSERVE).is_some();
                    (relayed(&r), goes_on)
                }
                Some(Err(e)) => (error_reply(&e), false),
                // Ended without a final answer (cannot happen after a success): 5.02.
                None => (Reply::new(Code::BAD_GATEWAY), false),
            };
            if !goes_on {
                return self.end(reply).await;
            }
            let Some(joined_before) = self.with(|s| s.joined) else {
                return;
            };
            // Observers registered so far get the notification; registrations waiting for
            // this first answer get it as their response (and are registered by it), after
            // the notification so that nobody gets it twice.
            let notified = self
                .notifier
                .notify(self.key, reply.clone())
                .await
                .unwrap_or(0);
            let Some(waiting) = self.with(|s| {
                s.latest = Some((reply.clone(), std::time::Instant::now()));
                std::mem::take(&mut s.waiting)
            }) else {
                return;
            };
            for handle in &waiting {
                let _ = self
                    .responder
                    .respond(*handle, reply.clone().observable(self.key))
                    .await;
            }
            // Nobody left downstream (they deregistered or went away; §3.6): cancel
            // upstream, unless someone joined meanwhile.
            let abandoned = notified == 0 && waiting.is_empty() && {
                let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
                let idle = observed
                    .get(&self.key)
                    .is_some_and(|s| s.joined == joined_before && s.waiting.is_empty());
                if idle {
                    observed.remove(&self.key);
                }
                idle
            };
            if abandoned {
                self.finish();
                let _ = observation.cancel().await;
                return;
            }
        }
    }

    /// Runs `f` on this observation's entry (`None` once it is gone).
    fn with<T>(&self, f: impl FnOnce(&mut Shared) -> T) -> Option<T> {
        let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        observed.get_mut(&self.key).map(f)
    }

    /// The observation ended upstream: `last` goes to the waiting registrations (without
    /// registering them) and to every observer (an error code ends their observations,
    /// §4.2; a final success still tells them the newest state).
    async fn end(self, last: Reply) {
        let waiting = {
            let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
            observed
                .remove(&self.key)
                .map(|s| s.waiting)
                .unwrap_or_default()
        };
        self.finish();
        let _ = self.notifier.notify(self.key, last.clone()).await;
        for handle in waiting {
            let _ = self.responder.respond(handle, last.clone()).await;
        }
    }

    fn finish(&self) {
        self.permit.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.stats
            .observations_ended
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// 5.03 with Max-Age 1: the proxy's limits are reached (RFC 7252 §5.9.3.4).
fn busy(w: &mut ResponseWriter<'_>) -> Outcome {
    w.set_code(Code::SERVICE_UNAVAILABLE);
    let _ = w.option_uint(OptionNumber::MAX_AGE, 1);
    Outcome::Respond
}

/// What stands between a deferred request and its upstream: the destination policy (for
/// Proxy-Uri / Proxy-Scheme targets) and a permit of its upstream.
struct Gate {
    reserved: crate::proxy_permits::Reserved,
    /// `None` for a reverse-map target (the operator's own).
    policy: Option<DestinationPolicy>,
    uri: String,
    client: Client,
    stats: Arc<ProxyStats>,
}

impl Gate {
    /// The client to send with (pinned to the checked addresses) and the permit, or the
    /// reply that refuses the request.
    async fn pass(self) -> Result<(Client, Permit), Reply> {
        let client = match &self.policy {
            None => self.client.clone(),
            Some(policy) => match policy.check_uri(&self.uri).await {
                Ok(checked) => checked.pin(&self.client),
                Err(why) => {
                    // RFC 7252 §5.10.2, §5.9.3.6: unwilling to forward to this URI: 5.05,
                    // the reason as diagnostic payload (§5.5.2).
                    self.stats.forbidden.fetch_add(1, Ordering::Relaxed);
                    return Err(Reply::new(Code::PROXYING_NOT_SUPPORTED)
                        .payload(why.to_string().into_bytes()));
                }
            },
        };
        match self.reserved.acquire().await {
            Ok(permit) => Ok((client, permit)),
            Err(NoPermit::Timeout) => {
                // §5.9.3.5: the upstream has not answered the earlier requests in time.
                self.stats.gave_up_waiting.fetch_add(1, Ordering::Relaxed);
                Err(Reply::new(Code::GATEWAY_TIMEOUT).payload(
                    format!("upstream {} is not answering", authority(&self.uri)).into_bytes(),
                ))
            }
            Err(NoPermit::Busy) => {
                self.stats.busy.fetch_add(1, Ordering::Relaxed);
                Err(with_max_age(Reply::new(Code::SERVICE_UNAVAILABLE), 1))
            }
        }
    }
}

/// §5.7.2: no answer in time → 5.04 Gateway Timeout; anything else that kept the upstream
/// exchange from completing → 5.02 Bad Gateway.
fn error_reply(e: &ClientError) -> Reply {
    match e {
        ClientError::Timeout => Reply::new(Code::GATEWAY_TIMEOUT),
        _ => Reply::new(Code::BAD_GATEWAY),
    }
}

/// Options of a response that belong to one leg (block-wise, RFC 7959 §2.10; Observe,
/// RFC 7641 §5): the proxy makes its own on each leg, so they are neither relayed nor cached.
fn per_leg(n: OptionNumber) -> bool {
    matches!(
        n,
        OptionNumber::BLOCK2 | OptionNumber::SIZE2 | OptionNumber::BLOCK1 | OptionNumber::OBSERVE
    )
}

/// An upstream response as the downstream one: block-wise and Observe options are each
/// leg's own.
fn relayed(r: &Response) -> Reply {
    let mut rep = Reply::new(r.code).payload(r.payload.clone());
    for (n, v) in r.options.iter().filter(|(n, _)| !per_leg(*n)) {
        rep = rep.option(*n, v.clone());
    }
    rep
}

/// A reply's Max-Age (RFC 7252 §5.10.5, default 60 s).
fn max_age(reply: &Reply) -> u32 {
    reply
        .options
        .iter()
        .find(|(n, _)| *n == OptionNumber::MAX_AGE)
        .and_then(|(_, v)| coap_core::option::decode_uint(v))
        .unwrap_or(coap_core::cache::DEFAULT_MAX_AGE)
}

/// `reply` with its Max-Age replaced by `seconds`.
fn with_max_age(mut reply: Reply, seconds: u32) -> Reply {
    reply.options.retain(|(n, _)| *n != OptionNumber::MAX_AGE);
    let mut b = [0u8; 4];
    let v = coap_core::option::encode_uint(seconds, &mut b).to_vec();
    reply.option(OptionNumber::MAX_AGE, v)
}

/// A copy of a request as a message (no token, Message ID 0), as the cache keys it.
fn copy_request(msg: &Message<'_>) -> Option<Vec<u8>> {
    let mut copy = vec![0u8; msg.payload().len() + msg.options_bytes().len() + 16];
    let n = MessageBuilder::new(&mut copy, MessageType::Con, msg.code(), 0, &[])
        .and_then(|mut b| {
            for o in msg.options() {
                b.option(o.number, o.value)?;
            }
            b.payload(msg.payload())?;
            Ok(b.finish())
        })
        .ok()?;
    copy.truncate(n);
    Some(copy)
}

/// Where a request goes upstream, or why it cannot.
enum Target {
    /// Forwarded: the URI, and whether the destination policy applies (not for the
    /// reverse map's targets).
    Upstream(String, bool),
    Unsupported,
    /// A Proxy-Uri that is no absolute URI (RFC 7252 §5.10.2): the client's error, 4.00.
    Malformed,
    NotProxied,
}

/// The upstream URI of a request (RFC 7252 §5.7.2, §6.5), or a reverse-map target.
fn target(msg: &Message<'_>, reverse: &[(String, String)]) -> Target {
    if let Some(o) = msg.option(OptionNumber::PROXY_URI) {
        // RFC 7252 §5.10.2: the value is an absolute-URI. One of a scheme we do not reach
        // is refused with 5.05 (§5.7.2); text that is no URI at all (`foo`, a fragment, a
        // bad authority) is a malformed request: 4.00 (§5.9.2.1).
        let uri = String::from_utf8_lossy(o.value).into_owned();
        return match coap_core::Uri::parse(&uri) {
            Ok(u) if u.scheme() == coap_core::Scheme::Coap => Target::Upstream(uri, true),
            Ok(_) | Err(coap_core::UriError::UnsupportedScheme) => Target::Unsupported,
            Err(_) => Target::Malformed,
        };
    }
    if let Some(o) = msg.option(OptionNumber::PROXY_SCHEME) {
        if o.value != b"coap" {
            return Target::Unsupported;
        }
        let host = msg
            .option(OptionNumber::URI_HOST)
            .map(|h| String::from_utf8_lossy(h.value).into_owned());
        let Some(host) = host else {
            return Target::Unsupported;
        };
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        };
        let port = msg.uint_option(OptionNumber::URI_PORT).unwrap_or(5683);
        return Target::Upstream(format!("coap://{host}:{port}{}", path_and_query(msg)), true);
    }
    let path = path_and_query(msg);
    for (prefix, base) in reverse {
        if let Some(rest) = path.strip_prefix(prefix.as_str()) {
            if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') {
                return Target::Upstream(format!("{}{rest}", base.trim_end_matches('/')), false);
            }
        }
    }
    Target::NotProxied
}

/// `/a/b?x=1`, percent-encoding what a URI cannot hold literally.
fn path_and_query(msg: &Message<'_>) -> String {
    let enc = |s: &[u8], extra: &[u8]| {
        let mut out = String::new();
        for &b in s {
            if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) || extra.contains(&b)
            {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    };
    let mut s = String::new();
    for seg in msg.uri_path() {
        s.push('/');
        s.push_str(&enc(seg, b""));
    }
    let mut first = true;
    for q in msg.options_of(OptionNumber::URI_QUERY) {
        s.push(if first { '?' } else { '&' });
        first = false;
        // `&` separates query parameters: a literal one in a value is encoded.
        s.push_str(&enc(q, b"/?").replace('&', "%26"));
    }
    s
}

/// Options that stay with the upstream request: end-to-end ones, not the proxy's, the
/// URI's, block-wise (each leg does its own) or Hop-Limit (rewritten); and of the options
/// we do not know only the safe-to-forward ones (RFC 7252 §5.4.2, §5.7.1: an unknown
/// unsafe elective option is ignored, never passed on; an unknown unsafe critical one
/// never gets here, the endpoint answers 4.02).
fn forwarded(n: OptionNumber) -> bool {
    (n.info().is_some() || !n.is_unsafe())
        && !matches!(
            n,
            OptionNumber::PROXY_URI
                | OptionNumber::PROXY_SCHEME
                | OptionNumber::URI_HOST
                | OptionNumber::URI_PORT
                | OptionNumber::URI_PATH
                | OptionNumber::URI_QUERY
                | OptionNumber::BLOCK1
                | OptionNumber::BLOCK2
                | OptionNumber::SIZE1
                | OptionNumber::SIZE2
                | OptionNumber::HOP_LIMIT
                | OptionNumber::OBSERVE
        )
}

/// A whole response as a message (no token, Message ID 0) for the cache.
fn as_message(r: &Response) -> Option<Vec<u8>> {
    let mut buf =
        vec![0u8; r.payload.len() + 64 + r.options.iter().map(|o| o.1.len() + 5).sum::<usize>()];
    let mut b = MessageBuilder::new(&mut buf, MessageType::Ack, r.code, 0, &[]).ok()?;
    for (n, v) in r.options.iter().filter(|(n, _)| !per_leg(*n)) {
        b.option(*n, v).ok()?;
    }
    b.payload(&r.payload).ok()?;
    let n = b.finish();
    buf.truncate(n);
    Some(buf)
}

/// A cached message as a reply, with Max-Age set to the freshness left (§5.6.1).
fn reply_from(cached: &Message<'_>, max_age: u32, code: Option<Code>) -> Reply {
    let mut reply = Reply::new(code.unwrap_or(cached.code())).payload(cached.payload());
    for o in cached.options() {
        if o.number != OptionNumber::MAX_AGE {
            reply = reply.option(o.number, o.value);
        }
    }
    let mut age = [0u8; 4];
    let v = coap_core::option::encode_uint(max_age, &mut age).to_vec();
    reply.option(OptionNumber::MAX_AGE, v)
}

fn write(reply: &Reply, w: &mut ResponseWriter<'_>) -> Outcome {
    if reply.write(w).is_err() {
        w.set_code(Code::INTERNAL_SERVER_ERROR);
    }
    Outcome::Respond
}

impl Handler<Peer> for Proxy {
    fn handle(&mut self, req: &IncomingRequest<'_, Peer>, w: &mut ResponseWriter<'_>) -> Outcome {
        let msg = req.message();
        let (uri, checked) = match target(msg, &self.config.reverse) {
            Target::Upstream(u, checked) => (u, checked),
            Target::Unsupported => {
                w.set_code(Code::PROXYING_NOT_SUPPORTED);
                return Outcome::Respond;
            }
            Target::Malformed => {
                w.set_code(Code::BAD_REQUEST);
                return Outcome::Respond;
            }
            Target::NotProxied => {
                w.set_code(Code::NOT_FOUND);
                return Outcome::Respond;
            }
        };
        // RFC 8768 §3: a Hop-Limit of 1 cannot be decremented: 5.08 (with our address as
        // diagnostic payload would reveal topology; left empty).
        let hops = msg
            .uint_option(OptionNumber::HOP_LIMIT)
            .unwrap_or(DEFAULT_HOP_LIMIT + 1);
        if hops <= 1 {
            w.set_code(Code::HOP_LIMIT_REACHED);
            return Outcome::Respond;
        }
        let Some(method) = Method::from_code(msg.code()) else {
            w.set_code(Code::METHOD_NOT_ALLOWED);
            return Outcome::Respond;
        };
        if msg.observe() == Some(0) && matches!(method, Method::Get | Method::Fetch) {
            if let Some(outcome) = self.observe(req, &uri, checked, hops, w) {
                return outcome;
            }
        }
        let now = self.now();
        let mut validate: Option<Vec<u8>> = None;
        if let Ok(mut cache) = self.cache.lock() {
            match cache.lookup(now, msg) {
                Lookup::Fresh { response, max_age } => {
                    self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                    return write(&reply_from(&response, max_age, None), w);
                }
                Lookup::Valid { etag, max_age } => {
                    self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                    let mut age = [0u8; 4];
                    let age = coap_core::option::encode_uint(max_age, &mut age).to_vec();
                    let reply = Reply::new(Code::VALID)
                        .option(OptionNumber::ETAG, etag)
                        .option(OptionNumber::MAX_AGE, age);
                    return write(&reply, w);
                }
                Lookup::Stale { etag } => validate = Some(etag.to_vec()),
                Lookup::Miss => {}
            }
        }
        // The request as the cache keys it, kept for when the answer arrives.
        let Some(request_copy) = copy_request(msg) else {
            w.set_code(Code::INTERNAL_SERVER_ERROR);
            return Outcome::Respond;
        };
        let Some(gate) = self.gate(&uri, checked) else {
            return busy(w);
        };
        let mut options: Vec<(OptionNumber, Vec<u8>)> = msg
            .options()
            .filter(|o| forwarded(o.number))
            .filter(|o| o.number != OptionNumber::ETAG || validate.is_none())
            .map(|o| (o.number, o.value.to_vec()))
            .collect();
        if let Some(etag) = validate {
            options.push((OptionNumber::ETAG, etag));
        }
        let payload = msg.payload().to_vec();
        let timeout = self.config.upstream_timeout;
        let handle = req.handle();
        let responder = self.responder.clone();
        let cache = self.cache.clone();
        let start = self.start;
        let stats = self.stats.clone();
        self.runtime.spawn(async move {
            let (client, permit) = match gate.pass().await {
                Ok(passed) => passed,
                Err(refusal) => {
                    let _ = responder.respond(handle, refusal).await;
                    return;
                }
            };
            stats.upstream.fetch_add(1, Ordering::Relaxed);
            let mut upstream = client
                .request(method, &uri)
                .timeout(timeout)
                .option(OptionNumber::HOP_LIMIT, vec![(hops - 1) as u8])
                .payload(payload);
            for (n, v) in options {
                upstream = upstream.option(n, v);
            }
            let result = upstream.send().await;
            drop(permit);
            let now = coap_core::Instant::from_millis(start.elapsed().as_millis() as u64);
            let reply = match result {
                Ok(r) => {
                    let stored = as_message(&r);
                    let request = Message::parse(&request_copy);
                    let mut reply = None;
                    if let (Some(stored), Ok(request), Ok(mut cache)) =
                        (stored, request, cache.lock())
                    {
                        let outcome = cache.store(now, &request, &stored);
                        if outcome == Stored::Refreshed {
                            // §5.6.2: upstream confirmed our copy: serve it, fresh again.
                            if let Lookup::Fresh { response, max_age } = cache.lookup(now, &request)
                            {
                                // The client asked without our validator: it gets 2.05.
                                reply = Some(reply_from(&response, max_age, None));
                            }
                        }
                    }
                    reply.unwrap_or_else(|| relayed(&r))
                }
                Err(e) => error_reply(&e),
            };
            let _ = responder.respond(handle, reply).await;
        });
        Outcome::Defer
    }

    fn understands(&self, option: OptionNumber) -> bool {
        // The proxy handles the proxy options itself, and forwards the safe-to-forward ones
        // it does not know end to end (RFC 7252 §5.7.1); an unknown unsafe critical option
        // is refused by the endpoint.
        matches!(option, OptionNumber::PROXY_URI | OptionNumber::PROXY_SCHEME)
            || coap_core::server::default_understands(option)
            || !option.is_unsafe()
    }
}

/// The proxy's endpoint configuration: the empty ACK of a forwarded CON request waits up to
/// a second (RFC 7252 §5.2.2 leaves the choice to the server), so that an upstream answer
/// that comes quickly is piggybacked — fewer messages, and some clients (libcoap 4.3 with
/// Block2) handle a piggybacked block better than a separate one.
pub fn server_config() -> coap_tokio::Config {
    coap_tokio::Config {
        separate_ack_delay: Duration::from_secs(1),
        ..coap_tokio::Config::default()
    }
}

/// The client of the upstream leg (both proxies'): it reaches both address families
/// whatever the downstream bind — a dual-stack socket (`[::]`, IPv4 upstreams as
/// IPv4-mapped addresses), or IPv4 alone on a machine without IPv6.
pub async fn upstream_client() -> Result<Client, coap_tokio::ClientError> {
    Client::new().await
}

/// Runs a proxy on `bind` until `shutdown` completes.
pub async fn serve(
    bind: SocketAddr,
    config: ProxyConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let server = coap_tokio::Server::bind_with(bind, server_config()).await?;
    let client = upstream_client().await?;
    let proxy = Proxy::new(client, server.responder(), config);
    server.serve_with_shutdown(proxy, shutdown).await
}
