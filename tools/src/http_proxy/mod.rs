//! `coap proxy --http-bind`: an HTTP-to-CoAP cross-proxy ("HC proxy", RFC 8075) on
//! `hyper` 1.x, forwarding with a [`coap_tokio::Client`].
//!
//! # URI mapping (RFC 8075 §5)
//! - Default mapping (§5.3): `http://PROXY/hc/coap://host:port/path?query` — the Target CoAP
//!   URI appended as is to the HC Proxy URI `/hc/`. An IPv6 literal's brackets arrive
//!   percent-encoded (`/hc/coap://%5B::1%5D:5683/x`, §5.3.2) and are decoded; so is a wholly
//!   percent-encoded target (`/hc/coap%3A%2F%2Fhost%2Fpath`), which some HTTP clients emit.
//! - The query form of §5.4.1 example 1: `/hc/?target_uri=coap://host/path` (the value
//!   percent-decoded).
//! - An absolute-form request line carrying a CoAP URI (`GET coap://host/path HTTP/1.1`,
//!   RFC 7252 §10.2).
//! - Null mapping with a configured base (§5.2): with [`HttpProxyConfig::base`] set to
//!   `coap://host:port/base`, every path not under `/hc/` is appended to it, so
//!   `/a/b?c` goes to `coap://host:port/base/a/b?c`. Without a base such paths get 404.
//! - Discovery (§5.5): without a base, `GET /.well-known/core` answers
//!   `</hc/>;rt="core.hc"` in link format (the default template, so no `hct`).
//! - A target without a scheme is syntactically wrong without prior agreement (§5.3.1): 400,
//!   as is anything that does not parse as a CoAP URI (RFC 7252 §6). A CoAP scheme this
//!   proxy cannot serve (`coap+tcp`, or `coaps` without credentials) gets 501 (RFC 7252
//!   §10.2: "unable or unwilling to service a request with a CoAP URI"); a multicast target
//!   gets 403 (RFC 8075 §8.4, multicast not supported).
//!
//! # Methods (RFC 7252 §10.2, RFC 8132)
//! GET, PUT, POST and DELETE map to the CoAP methods of the same name, HEAD to GET without
//! the body (§10.2.3), PATCH to PATCH, and the extension methods `FETCH` and `iPATCH` to
//! theirs. OPTIONS, TRACE, CONNECT and any other method: 501 (§10.2.1, §10.2.7).
//!
//! # Headers (RFC 8075 §6, RFC 7252 §10.2.2)
//! - `Content-Type` ↔ Content-Format by the registered formats ([`coap_core::content_format::REGISTRY`]);
//!   `text/plain` with no charset or `utf-8`/`us-ascii` is format 0. A request media type
//!   without a Content-Format, a non-identity `Content-Encoding`, or
//!   `application/coap-payload` (not forwarded unless configured, §6.2) gets 415 (§6.1).
//!   An unknown response Content-Format is `application/coap-payload;cf=N` (§6.2).
//! - `Accept`: the most preferred mappable media type becomes the Accept option; `*/*` and
//!   unmappable types are left out (§6.1).
//! - Entity tags: a CoAP ETag (1–8 opaque bytes, RFC 7252 §5.10.6) is the HTTP entity-tag
//!   `"hex"` — its bytes in lowercase hexadecimal between double quotes (always strong,
//!   RFC 7252 §10.1.1). `If-None-Match: "…"` on GET/HEAD becomes ETag options (a validation
//!   request, RFC 7252 §5.10.6.2), and 2.03 Valid becomes 304 Not Modified (RFC 8075 §7
//!   note 3). `If-Match` maps to If-Match (`*` to the empty value), `If-None-Match: *` to
//!   If-None-Match (RFC 7252 §5.10.8). An `If-Match` tag that is no hex of 1–8 bytes can
//!   match no CoAP representation: 412 at once.
//! - Max-Age → `Cache-Control: max-age=N` on cacheable responses (2.03, 2.05 and errors,
//!   RFC 7252 §5.9), 60 when absent (§5.10.5); on 5.03 it also gives `Retry-After` (RFC 8075
//!   §7 note 8). Location-Path/Location-Query → `Location`, as a Hosting HTTP URI of this
//!   proxy (RFC 7252 §10.2.4).
//!
//! # Status codes (RFC 8075 §7, Table 2)
//! See [`status_for`]. Upstream silent until the timeout: 504; unreachable or reset: 502
//! (RFC 7252 §10.2).
//!
//! # Bodies and bounds
//! The client does block-wise on the CoAP leg (RFC 7959, RFC 8075 §8.3): Block1 for request
//! bodies larger than a message, Block2 reassembly of large responses, so the HTTP side
//! sees whole bodies. Bounded:
//! - request bodies: [`HttpProxyConfig::max_body`] bytes (413 beyond);
//! - response bodies: [`HttpProxyConfig::max_response`] bytes (502 beyond; the exchange is
//!   cancelled);
//! - upstream exchanges in flight: [`HttpProxyConfig::max_upstream`] in all, and
//!   [`HttpProxyConfig::max_per_upstream`] to one CoAP endpoint, with at most
//!   [`HttpProxyConfig::upstream_queue`] requests waiting up to
//!   [`HttpProxyConfig::upstream_wait`] for one of its permits ([`crate::proxy_permits`]):
//!   a silent upstream fails its own requests with 504 (after the wait, or after
//!   [`HttpProxyConfig::upstream_timeout`] for those sent) and 503 with `Retry-After` for
//!   the excess (§8.1), while other upstreams are served;
//! - bodies held at once, all connections together:
//!   [`HttpProxyConfig::max_body_memory`] bytes, 64 MiB by default (each request reserves
//!   its Content-Length, nothing without a body, or [`HttpProxyConfig::max_body`] when
//!   chunked, before reading; a Block2 response is charged as it grows, beyond what its
//!   request reserved). When the budget is spent: 503 with `Retry-After: 1` — the body is
//!   acceptable, the proxy is momentarily out of room (RFC 9110 §15.6.4); 413 stays for a
//!   body larger than `max_body` itself, which no retry can fix;
//! - connections open at once: [`HttpProxyConfig::max_connections`] (beyond, the connection
//!   waiting longest for a request head makes room; 503 when all are mid-request), and per
//!   client address [`HttpProxyConfig::max_connections_per_client`] (further ones get 503
//!   and are closed);
//! - destinations: [`HttpProxyConfig::destinations`], checked after name resolution (403
//!   Forbidden with the reason in the body: the HC proxy understood the request and refuses
//!   it, RFC 9110 §15.5.4; see [`crate::destination`]), the request then sent to the
//!   checked addresses only;
//! - request heads: hyper's limits, 431 beyond (at most [`MAX_HEADERS`] header fields and
//!   [`MAX_HEAD_BYTES`] bytes), sent within [`HttpProxyConfig::header_read_timeout`]
//!   (default [`HEADER_READ_TIMEOUT`]; a connection whose head is not complete by then is
//!   closed without an answer, as hyper does, against slow-header clients), and
//!   [`BODY_READ_TIMEOUT`] for the body (408 beyond).
//!
//! Errors the proxy makes itself carry a one-line `text/plain` body saying what failed; a
//! CoAP diagnostic payload is copied into the body (§6.5.3).
//!
//! Not done: the cache (every request goes upstream), loose media type mapping (§6.3, an
//! OPTIONAL feature), content transcoding (§6.5), Observe, and TLS on the HTTP side.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coap_core::{Code, Method, OptionNumber, Scheme, Uri};
use coap_tokio::{Client, ClientError};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

mod connections;
mod headers;
mod status;
mod target;

pub use headers::{
    accept_for, content_format_for, entity_tag, etag_of, media_type_for, method_for,
};
use headers::{location_of, tag_list};
use status::cacheable;
pub use status::status_for;
pub use target::{target_of, Target, HC_PREFIX};

/// Most header fields in one request head (hyper's limit, raised from nothing).
pub const MAX_HEADERS: usize = 64;
/// Largest request head (request line and header fields) in bytes. Set as hyper's
/// `max_header_size`: bounding only its read buffer (`max_buf_size`) instead leaves a
/// client that sends a larger head without an answer (seen with hyper 1.12).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long a client may take to send a request head, by default: ample for an HTTP
/// client (which writes its head at once), short enough that slow-header clients at 100
/// connections per second hold at most ~500 of the 1024 connection places (and a full
/// table closes theirs first).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to send a request body (408 beyond).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Max-Age when the CoAP response has none (RFC 7252 §5.10.5).
pub const DEFAULT_MAX_AGE: u32 = 60;
/// How much of a too-large body is read and dropped before the 413, so that the client
/// is not reset while still sending (its unread data would make the close an RST).
const DRAIN_LIMIT: usize = 1 << 20;
/// How long that draining may take.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// How the HTTP side is set up.
#[derive(Clone, Debug)]
pub struct HttpProxyConfig {
    /// A configured base `coap://host:port/base`: paths not under [`HC_PREFIX`] are
    /// appended to it (RFC 8075 §5.2). `None`: such paths get 404.
    pub base: Option<String>,
    /// Upstream exchanges in flight at most; 503 beyond (RFC 8075 §8.1).
    pub max_upstream: usize,
    /// Upstream exchanges in flight to one CoAP endpoint (host and port) at most.
    pub max_per_upstream: usize,
    /// Requests waiting for a permit of one CoAP endpoint at most; 503 beyond.
    pub upstream_queue: usize,
    /// How long a request waits for a permit of its CoAP endpoint; 504 beyond.
    pub upstream_wait: Duration,
    /// How long a client may take to send a request head; the connection is closed beyond.
    pub header_read_timeout: Duration,
    /// Largest request body in bytes; 413 beyond.
    pub max_body: usize,
    /// Largest response body taken from upstream (Block2 reassembled); 502 beyond.
    pub max_response: usize,
    /// How long one upstream exchange (all its blocks) may take; 504 beyond.
    pub upstream_timeout: Duration,
    /// HTTP connections open at once; beyond, the one waiting longest for a request head
    /// is closed for the newcomer (503 when every one is serving a request).
    pub max_connections: usize,
    /// HTTP connections served at once from one client IP address; more get 503.
    pub max_connections_per_client: usize,
    /// Request bodies held at once, all requests together, in bytes; 503 beyond.
    pub max_body_memory: usize,
    /// Where requests may be forwarded to.
    pub destinations: crate::destination::DestinationPolicy,
}

impl Default for HttpProxyConfig {
    fn default() -> Self {
        HttpProxyConfig {
            base: None,
            max_upstream: 256,
            max_per_upstream: 32,
            upstream_queue: 32,
            upstream_wait: Duration::from_secs(2),
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_body: 16 << 20,
            max_response: 64 << 20,
            // RFC 8075 §8.5: at least MAX_RTT (202 s) + MAX_SERVER_RESPONSE_DELAY is what
            // the RFC suggests for CON; a bounded 93 s (MAX_TRANSMIT_WAIT) is what an HTTP
            // client is likely to wait for at most.
            upstream_timeout: Duration::from_secs(93),
            max_connections: 1024,
            max_connections_per_client: 32,
            max_body_memory: 64 << 20,
            destinations: crate::destination::DestinationPolicy::default(),
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum HttpProxyConfigError {
    /// The base is no `coap://` URI without a query.
    #[error("--http-base {0}: expected coap://host[:port][/base] without a query")]
    InvalidBase(String),
}

/// Counters, for tests and monitoring.
#[derive(Debug, Default)]
pub struct HttpProxyStats {
    /// HTTP requests answered (any status).
    pub requests: AtomicU64,
    /// CoAP requests sent upstream.
    pub upstream: AtomicU64,
    /// Upstream exchanges in flight now.
    pub inflight: AtomicU64,
    /// Requests refused with 503 because `max_upstream` exchanges were in flight, or the
    /// body-memory budget was spent.
    pub busy: AtomicU64,
    /// Connections refused (503) because their client had `max_connections_per_client`
    /// open, or every connection was serving a request.
    pub refused_connections: AtomicU64,
    /// Connections closed while waiting for a request head, to make room for a newer one.
    pub evicted_connections: AtomicU64,
    /// Requests refused by the destination policy.
    pub forbidden: AtomicU64,
    /// Requests answered 504 because no permit of their upstream came free in time.
    pub gave_up_waiting: AtomicU64,
}

struct State {
    client: Client,
    config: HttpProxyConfig,
    upstream: crate::proxy_permits::Permits,
    /// The body-memory budget, in KiB (`acquire_many` counts in `u32`).
    body_memory: Semaphore,
    stats: Arc<HttpProxyStats>,
}

/// Budget units of [`State::body_memory`] for `bytes`, rounded up.
fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// The HC proxy: forwards HTTP requests to CoAP servers with its client.
pub struct HttpProxy {
    state: Arc<State>,
}

impl HttpProxy {
    /// A proxy forwarding with `client`; fails on a base that is no `coap://` URI.
    pub fn new(client: Client, config: HttpProxyConfig) -> Result<HttpProxy, HttpProxyConfigError> {
        if let Some(base) = &config.base {
            let ok = Uri::parse(base)
                .map(|u| u.scheme() == Scheme::Coap && u.query().is_none())
                .unwrap_or(false);
            if !ok {
                return Err(HttpProxyConfigError::InvalidBase(base.clone()));
            }
        }
        let permits = crate::proxy_permits::Permits::new(crate::proxy_permits::PermitLimits {
            global: config.max_upstream,
            per_upstream: config.max_per_upstream,
            queue: config.upstream_queue,
            wait: config.upstream_wait,
        });
        Ok(HttpProxy {
            state: Arc::new(State {
                client,
                upstream: permits,
                body_memory: Semaphore::new(
                    (kib(config.max_body_memory as u64) as usize).clamp(1, Semaphore::MAX_PERMITS),
                ),
                config,
                stats: Arc::new(HttpProxyStats::default()),
            }),
        })
    }

    /// The counters.
    pub fn stats(&self) -> Arc<HttpProxyStats> {
        self.state.stats.clone()
    }

    /// Accepts HTTP/1.1 connections on `listener` until `shutdown` completes; then stops
    /// accepting and drops the connections still open.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let connections = connections::Connections::new(
            self.state.config.max_connections,
            self.state.config.max_connections_per_client,
        );
        let mut tasks = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let (mut stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                a = listener.accept() => match a {
                    Ok(a) => a,
                    // Out of descriptors and the like: pause instead of spinning.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Reap finished connection tasks so the set does not grow.
            while tasks.try_join_next().is_some() {}
            let stats = &self.state.stats;
            let slot = match connections.admit(peer.ip()) {
                connections::Admission::Admitted(slot) => slot,
                connections::Admission::ClientFull | connections::Admission::Full => {
                    stats.refused_connections.fetch_add(1, Ordering::Relaxed);
                    tasks.spawn(async move {
                        use tokio::io::AsyncWriteExt;
                        let refusal = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
                            Content-Length: 0\r\nConnection: close\r\n\r\n";
                        let _ =
                            tokio::time::timeout(Duration::from_secs(1), stream.write_all(refusal))
                                .await;
                    });
                    continue;
                }
            };
            let slot = Arc::new(slot);
            let state = self.state.clone();
            let stats = self.state.stats.clone();
            let header_read_timeout = self.state.config.header_read_timeout;
            tasks.spawn(async move {
                let evict = slot.evict.clone();
                let serving = slot.clone();
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    let slot = serving.clone();
                    async move {
                        slot.set_active(true);
                        let r = handle(&state, req).await;
                        slot.set_active(false);
                        Ok::<_, Infallible>(r)
                    }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_read_timeout)
                    .max_headers(MAX_HEADERS)
                    .max_header_size(MAX_HEAD_BYTES)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = conn => {}
                    // Its place went to a newer connection while it waited for a head.
                    () = evict.notified() => {
                        stats.evicted_connections.fetch_add(1, Ordering::Relaxed);
                    }
                }
                drop(slot);
            });
        }
        tasks.shutdown().await;
        Ok(())
    }
}

/// Serves `client` as an HC proxy on `listener` until `shutdown` completes (see
/// [`HttpProxy`]).
pub async fn serve_http(
    listener: TcpListener,
    client: Client,
    config: HttpProxyConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let proxy = HttpProxy::new(client, config)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    proxy.serve(listener, shutdown).await
}

type HttpResponse = Response<Full<Bytes>>;

/// A response the proxy makes itself: `status` with a one-line text body.
fn error(status: StatusCode, why: impl std::fmt::Display) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(format!("{why}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Reads the body up to `max` bytes; `Err(())` when larger (the rest drained, bounded).
async fn read_body(body: Incoming, max: usize) -> Result<Bytes, ()> {
    match Limited::new(body, max).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) => Err(()),
    }
}

/// Reads and drops up to [`DRAIN_LIMIT`] bytes within [`DRAIN_TIME`].
async fn drain(body: Incoming) {
    let _ = tokio::time::timeout(DRAIN_TIME, Limited::new(body, DRAIN_LIMIT).collect()).await;
}

async fn handle(state: &State, req: Request<Incoming>) -> HttpResponse {
    state.stats.requests.fetch_add(1, Ordering::Relaxed);
    let mut resp = handle_inner(state, req).await;
    resp.headers_mut().insert(
        header::SERVER,
        HeaderValue::from_static("coap-tools-hc-proxy"),
    );
    resp
}

async fn handle_inner(state: &State, req: Request<Incoming>) -> HttpResponse {
    let config = &state.config;
    let Some((method, head)) = method_for(req.method()) else {
        // RFC 7252 §10.2.1, §10.2.7: OPTIONS, TRACE, CONNECT (and unknown methods): 501.
        return error(
            StatusCode::NOT_IMPLEMENTED,
            format_args!("method {} has no CoAP equivalent", req.method()),
        );
    };
    let (uri, via_hc) = match target_of(req.uri(), config.base.as_deref()) {
        Target::Coap { uri, via_hc } => (uri, via_hc),
        Target::Discovery => {
            if method != Method::Get {
                return error(StatusCode::NOT_IMPLEMENTED, "discovery supports GET only");
            }
            let mut r = Response::new(Full::new(Bytes::from(format!(
                "<{HC_PREFIX}>;rt=\"core.hc\""
            ))));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/link-format"),
            );
            if head {
                *r.body_mut() = Full::new(Bytes::new());
            }
            return r;
        }
        Target::Refused(status, why) => return error(status, why),
    };
    let headers = req.headers().clone();

    // Request headers → options, before reading the body, so that a refusal does not
    // wait for it.
    let mut options: Vec<(OptionNumber, Vec<u8>)> = Vec::new();
    let content_format = match headers.get(header::CONTENT_TYPE) {
        None => None,
        Some(v) => {
            let v = v.to_str().unwrap_or("");
            match content_format_for(v) {
                Some(cf) => Some(cf),
                // curl's default for --data and --data-binary: almost never meant as form
                // data here, so the body goes upstream as opaque bytes, without a
                // Content-Format (which is what CoAP has for "unknown").
                None if is_form_urlencoded(v) => None,
                // RFC 8075 §6.1: SHALL elicit 415.
                None => {
                    return error(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        format_args!(
                            "media type {v} has no CoAP Content-Format (set one with \
                             -H 'Content-Type: application/octet-stream' or another \
                             registered type)"
                        ),
                    )
                }
            }
        }
    };
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        if !enc
            .to_str()
            .map(|e| e.trim().eq_ignore_ascii_case("identity"))
            .unwrap_or(false)
        {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content codings have no CoAP Content-Format (send identity)",
            );
        }
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(accept_for);
    let mut validating = false;
    if let Some(tags) = tag_list(&headers, header::IF_NONE_MATCH) {
        if !tags.is_empty() {
            if method != Method::Get {
                return error(
                    StatusCode::BAD_REQUEST,
                    "If-None-Match with entity-tags maps to CoAP only on GET and HEAD",
                );
            }
            // RFC 7252 §5.10.6.2: a GET with ETags asks to validate them; foreign tags
            // can match nothing upstream and are left out.
            for t in tags.iter().filter_map(|t| etag_of(t)) {
                options.push((OptionNumber::ETAG, t));
                validating = true;
            }
        }
    } else {
        // `If-None-Match: *` (RFC 7252 §5.10.8.2).
        options.push((OptionNumber::IF_NONE_MATCH, Vec::new()));
    }
    match tag_list(&headers, header::IF_MATCH) {
        // `If-Match: *` (RFC 7252 §5.10.8.1): the empty value.
        None => options.push((OptionNumber::IF_MATCH, Vec::new())),
        Some(tags) if !tags.is_empty() => {
            let ours: Vec<Vec<u8>> = tags.iter().filter_map(|t| etag_of(t)).collect();
            if ours.is_empty() {
                // RFC 9110 §13.1.1: no listed tag can match a CoAP representation.
                return error(
                    StatusCode::PRECONDITION_FAILED,
                    "If-Match lists no entity-tag a CoAP resource can have",
                );
            }
            options.extend(ours.into_iter().map(|t| (OptionNumber::IF_MATCH, t)));
        }
        Some(_) => {}
    }

    // The body, bounded.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        let mut r = error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format_args!("request body larger than {} bytes", config.max_body),
        );
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    };
    let expects_continue = headers
        .get(header::EXPECT)
        .map(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
        .unwrap_or(false);
    let body = req.into_body();
    if declared.is_some_and(|n| n > config.max_body as u64) {
        if !expects_continue {
            drain(body).await;
        }
        return too_large();
    }
    // Destination policy after name resolution, before the body is read (403).
    let client = match config.destinations.check_uri(&uri).await {
        Ok(checked) => checked.pin(&state.client),
        Err(why) => {
            state.stats.forbidden.fetch_add(1, Ordering::Relaxed);
            return error(StatusCode::FORBIDDEN, why);
        }
    };
    // The body's memory comes out of the global budget before a byte is read: its
    // Content-Length, nothing for a request without a body (neither Content-Length nor
    // Transfer-Encoding, RFC 9112 §6.3), `max_body` for a chunked one.
    let reserve = hyper::body::Body::size_hint(&body)
        .exact()
        .or(declared)
        .unwrap_or(config.max_body as u64);
    let _body_budget = if reserve == 0 {
        None
    } else {
        match state.body_memory.try_acquire_many(kib(reserve)) {
            Ok(p) => Some(p),
            Err(_) => {
                state.stats.busy.fetch_add(1, Ordering::Relaxed);
                let mut r = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format_args!(
                        "proxy busy: request bodies in progress use the {} bytes allowed",
                        config.max_body_memory
                    ),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return r;
            }
        }
    };
    let payload =
        match tokio::time::timeout(BODY_READ_TIMEOUT, read_body(body, config.max_body)).await {
            Ok(Ok(b)) => b,
            Ok(Err(())) => return too_large(),
            // A body trickling in would hold the connection's slot forever.
            Err(_) => {
                let mut r = error(
                    StatusCode::REQUEST_TIMEOUT,
                    format_args!("request body not received within {BODY_READ_TIMEOUT:?}"),
                );
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return r;
            }
        };

    // RFC 8075 §8.1: a bound on concurrent upstream exchanges; 503 beyond.
    let upstream = crate::proxy_permits::authority(&uri);
    let _permit = match state.upstream.acquire(&upstream).await {
        Ok(p) => p,
        Err(crate::proxy_permits::NoPermit::Timeout) => {
            state.stats.gave_up_waiting.fetch_add(1, Ordering::Relaxed);
            return error(
                StatusCode::GATEWAY_TIMEOUT,
                format_args!(
                    "upstream {upstream} is not answering: its {} exchanges in flight \
                     did not end within {:?}",
                    config.max_per_upstream, config.upstream_wait
                ),
            );
        }
        Err(crate::proxy_permits::NoPermit::Busy) => {
            state.stats.busy.fetch_add(1, Ordering::Relaxed);
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                format_args!(
                    "proxy busy: upstream exchanges in flight to {upstream} or in all \
                     at their limits ({} per upstream, {} in all)",
                    config.max_per_upstream, config.max_upstream
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
    };
    let mut request = client
        .request(method, &uri)
        .timeout(config.upstream_timeout)
        .payload(payload.to_vec());
    if let Some(cf) = content_format {
        request = request.content_format(cf.0);
    }
    if let Some(cf) = accept {
        request = request.accept(cf.0);
    }
    for (n, v) in options {
        request = request.option(n, v);
    }
    // The client reassembles Block2 without a size limit of its own: its progress
    // reports bound the response here (dropping the send cancels the exchange). An
    // upload's own progress counts up to the request body, which is allowed. A response
    // body comes out of the body-memory budget too, as it grows, beyond what the request
    // reserved (so an exchange is charged the larger of its two bodies): 503 with
    // Retry-After when the budget is spent.
    let (progress, reports) = async_channel::bounded(8);
    request = request.progress(progress);
    let limit = config.max_response.max(payload.len());
    let reserved = kib(reserve);
    let response_budget = std::sync::Mutex::new(Vec::new());
    let watch = async {
        let mut held = 0u32;
        while let Ok(p) = reports.recv().await {
            if p.done > limit {
                return Cut::TooLarge;
            }
            let want = kib(p.done as u64).saturating_sub(reserved);
            if want > held {
                match state.body_memory.try_acquire_many(want - held) {
                    Ok(more) => {
                        held = want;
                        if let Ok(mut v) = response_budget.lock() {
                            v.push(more);
                        }
                    }
                    Err(_) => return Cut::Budget,
                }
            }
        }
        std::future::pending::<Cut>().await
    };
    state.stats.upstream.fetch_add(1, Ordering::Relaxed);
    state.stats.inflight.fetch_add(1, Ordering::AcqRel);
    let result = tokio::select! {
        r = request.send() => Ok(r),
        cut = watch => Err(cut),
    };
    state.stats.inflight.fetch_sub(1, Ordering::AcqRel);

    let r = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return upstream_error(&uri, e),
        Err(Cut::TooLarge) => {
            return error(
                StatusCode::BAD_GATEWAY,
                format_args!(
                    "upstream {uri}: response larger than {} bytes",
                    config.max_response
                ),
            )
        }
        Err(Cut::Budget) => {
            state.stats.busy.fetch_add(1, Ordering::Relaxed);
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                format_args!(
                    "proxy busy: bodies in progress use the {} bytes allowed",
                    config.max_body_memory
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
    };
    let has_payload = !r.payload.is_empty();
    let Some(status) = status_for(r.code, has_payload, validating) else {
        // RFC 7252 §10.2: a result that is not understood is 502.
        return error(
            StatusCode::BAD_GATEWAY,
            format_args!("upstream answered {} which has no HTTP mapping", r.code),
        );
    };
    let mut out = Response::new(Full::new(if head || status == StatusCode::NOT_MODIFIED {
        Bytes::new()
    } else {
        Bytes::from(r.payload.clone())
    }));
    *out.status_mut() = status;
    if r.code == Code::METHOD_NOT_ALLOWED {
        // RFC 8075 §7 note 7: the reason phrase says what happened.
        if let Ok(reason) = hyper::ext::ReasonPhrase::try_from(&b"CoAP server returned 4.05"[..]) {
            out.extensions_mut().insert(reason);
        }
    }
    let h = out.headers_mut();
    if let Some(cf) = r.content_format() {
        if let Ok(v) = HeaderValue::from_str(&media_type_for(cf.0)) {
            h.insert(header::CONTENT_TYPE, v);
        }
    }
    if let Some(etag) = r.option(OptionNumber::ETAG) {
        if let Ok(v) = HeaderValue::from_str(&entity_tag(etag)) {
            h.insert(header::ETAG, v);
        }
    }
    let max_age = r
        .option(OptionNumber::MAX_AGE)
        .and_then(coap_core::option::decode_uint)
        .unwrap_or(DEFAULT_MAX_AGE);
    if cacheable(r.code) {
        // RFC 7252 §10.2.2: max-age no greater than the freshness left.
        if let Ok(v) = HeaderValue::from_str(&format!("max-age={max_age}")) {
            h.insert(header::CACHE_CONTROL, v);
        }
    }
    if r.code == Code::SERVICE_UNAVAILABLE && r.option(OptionNumber::MAX_AGE).is_some() {
        // RFC 8075 §7 note 8.
        h.insert(header::RETRY_AFTER, HeaderValue::from(max_age));
    }
    if let Some(loc) = location_of(&r, &uri, via_hc, config.base.as_deref()) {
        if let Ok(v) = HeaderValue::from_str(&loc) {
            h.insert(header::LOCATION, v);
        }
    }
    if head && has_payload {
        // HEAD: the headers a GET would have (RFC 9110 §9.3.2), Content-Length included.
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(r.payload.len()));
    }
    out
}

/// Why an upstream exchange was cut short by the proxy.
enum Cut {
    /// The response grew beyond `max_response`.
    TooLarge,
    /// The response's memory did not fit the body-memory budget.
    Budget,
}

/// The HTTP answer to a failed upstream exchange (RFC 7252 §10.2).
fn upstream_error(uri: &str, e: ClientError) -> HttpResponse {
    let status = match &e {
        ClientError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ClientError::InvalidUri(_) | ClientError::Build(_) => StatusCode::BAD_REQUEST,
        ClientError::UnsupportedScheme | ClientError::NoCredentials => StatusCode::NOT_IMPLEMENTED,
        ClientError::Busy | ClientError::Closed => StatusCode::SERVICE_UNAVAILABLE,
        ClientError::Handshake(_)
        | ClientError::SessionClosed(_)
        | ClientError::Edhoc(_)
        | ClientError::EdhocPeer { .. }
        | ClientError::EdhocStatus(_)
        | ClientError::EdhocSessionLost(_)
        | ClientError::Resolve(_)
        | ClientError::Reset
        | ClientError::Io(_)
        | ClientError::RepresentationChanged
        | ClientError::Unreachable { .. }
        | ClientError::OscoreRejected { .. }
        | ClientError::Status(_)
        | ClientError::NoResponse => StatusCode::BAD_GATEWAY,
    };
    error(status, format_args!("upstream {uri}: {e}"))
}

/// `application/x-www-form-urlencoded`, with or without parameters.
fn is_form_urlencoded(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|t| {
        t.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

#[cfg(test)]
mod tests;
