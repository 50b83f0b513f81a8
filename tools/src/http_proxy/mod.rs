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
//! - upstream exchanges in flight: [`HttpProxyConfig::max_upstream`] (503 with
//!   `Retry-After` beyond, §8.1);
//! - request bodies held at once, all connections together:
//!   [`HttpProxyConfig::max_body_memory`] bytes (each request reserves its Content-Length,
//!   or [`HttpProxyConfig::max_body`] when it has none, before reading; 503 with
//!   `Retry-After` when the budget is spent);
//! - connections served at once: [`HttpProxyConfig::max_connections`] (further ones wait in
//!   the listen backlog), and per client address
//!   [`HttpProxyConfig::max_connections_per_client`] (further ones get 503 and are closed);
//! - destinations: [`HttpProxyConfig::destinations`], checked after name resolution (403,
//!   see [`crate::destination`]);
//! - request heads: hyper's limits, 431 beyond (at most [`MAX_HEADERS`] header fields and
//!   [`MAX_HEAD_BYTES`] bytes, sent within [`HEADER_READ_TIMEOUT`]), and
//!   [`BODY_READ_TIMEOUT`] for the body (408 beyond).
//!
//! Errors the proxy makes itself carry a one-line `text/plain` body saying what failed; a
//! CoAP diagnostic payload is copied into the body (§6.5.3).
//!
//! Not done: the cache (every request goes upstream), loose media type mapping (§6.3, an
//! OPTIONAL feature), content transcoding (§6.5), Observe, and TLS on the HTTP side.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
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
/// How long a client may take to send a request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
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
    /// Largest request body in bytes; 413 beyond.
    pub max_body: usize,
    /// Largest response body taken from upstream (Block2 reassembled); 502 beyond.
    pub max_response: usize,
    /// How long one upstream exchange (all its blocks) may take; 504 beyond.
    pub upstream_timeout: Duration,
    /// HTTP connections served at once; more wait to be accepted.
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
    /// Connections refused because their client had `max_connections_per_client` open.
    pub refused_connections: AtomicU64,
    /// Requests refused by the destination policy.
    pub forbidden: AtomicU64,
}

struct State {
    client: Client,
    config: HttpProxyConfig,
    upstream: Semaphore,
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
        let permits = config.max_upstream.clamp(1, Semaphore::MAX_PERMITS);
        Ok(HttpProxy {
            state: Arc::new(State {
                client,
                upstream: Semaphore::new(permits),
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
        let connections = Arc::new(Semaphore::new(
            self.state
                .config
                .max_connections
                .clamp(1, Semaphore::MAX_PERMITS),
        ));
        let mut tasks = tokio::task::JoinSet::new();
        let per_client: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>> = Arc::default();
        let per_client_limit = self.state.config.max_connections_per_client.max(1);
        tokio::pin!(shutdown);
        loop {
            // A permit first: beyond the limit, connections wait in the backlog.
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                p = connections.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
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
            // One client (address) may hold only its share of the connections: slow
            // senders from one host cannot keep everyone else waiting in the backlog.
            let admitted = {
                let mut map = per_client.lock().unwrap_or_else(|e| e.into_inner());
                let n = map.entry(peer.ip()).or_insert(0);
                if *n >= per_client_limit {
                    false
                } else {
                    *n += 1;
                    true
                }
            };
            if !admitted {
                self.state
                    .stats
                    .refused_connections
                    .fetch_add(1, Ordering::Relaxed);
                drop(permit);
                tasks.spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let refusal = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
                        Content-Length: 0\r\nConnection: close\r\n\r\n";
                    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(refusal))
                        .await;
                });
                continue;
            }
            let client_slot = ClientSlot {
                map: per_client.clone(),
                ip: peer.ip(),
            };
            let state = self.state.clone();
            tasks.spawn(async move {
                let _client_slot = client_slot;
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(&state, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .max_headers(MAX_HEADERS)
                    .max_header_size(MAX_HEAD_BYTES)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                drop(permit);
            });
        }
        tasks.shutdown().await;
        Ok(())
    }
}

/// One connection's place in the per-client count, given back when dropped.
struct ClientSlot {
    map: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
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
    if let Err(why) = config.destinations.check_uri(&uri).await {
        state.stats.forbidden.fetch_add(1, Ordering::Relaxed);
        return error(StatusCode::FORBIDDEN, why);
    }
    // The body's memory comes out of the global budget before a byte is read.
    let reserve = declared.unwrap_or(config.max_body as u64);
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
    let Ok(_permit) = state.upstream.try_acquire() else {
        state.stats.busy.fetch_add(1, Ordering::Relaxed);
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            format_args!(
                "proxy busy: {} upstream exchanges in flight",
                config.max_upstream
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let mut request = state
        .client
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
    // upload's own progress counts up to the request body, which is allowed.
    let (progress, reports) = async_channel::bounded(8);
    request = request.progress(progress);
    let limit = config.max_response.max(payload.len());
    let watch = async {
        while let Ok(p) = reports.recv().await {
            if p.done > limit {
                return;
            }
        }
        std::future::pending::<()>().await
    };
    state.stats.upstream.fetch_add(1, Ordering::Relaxed);
    state.stats.inflight.fetch_add(1, Ordering::AcqRel);
    let result = tokio::select! {
        r = request.send() => Some(r),
        () = watch => None,
    };
    state.stats.inflight.fetch_sub(1, Ordering::AcqRel);

    let r = match result {
        Some(Ok(r)) => r,
        Some(Err(e)) => return upstream_error(&uri, e),
        None => {
            return error(
                StatusCode::BAD_GATEWAY,
                format_args!(
                    "upstream {uri}: response larger than {} bytes",
                    config.max_response
                ),
            )
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
mod tests {
    use super::target::percent_decode;
    use super::*;
    use coap_core::ContentFormat;
    use coap_tokio::Response as CoapResponse;

    fn target(s: &str, base: Option<&str>) -> Target {
        target_of(&s.parse::<hyper::Uri>().unwrap(), base)
    }

    fn coap(uri: &str, via_hc: bool) -> Target {
        Target::Coap {
            uri: uri.to_owned(),
            via_hc,
        }
    }

    #[test]
    fn default_mapping_of_rfc8075_section_5_3() {
        assert_eq!(
            target("/hc/coap://s.example.com/light", None),
            coap("coap://s.example.com/light", true)
        );
        // §5.3.2's example: bracket percent-encoded, decoded by the proxy.
        assert_eq!(
            target("/hc/coap://%5B2001:db8::1%5D/light?on", None),
            coap("coap://[2001:db8::1]/light?on", true)
        );
        // The path's own encodings stay.
        assert_eq!(
            target("/hc/coap://h:5684/a%5Bb?x=%26", None),
            coap("coap://h:5684/a%5Bb?x=%26", true)
        );
        assert_eq!(
            target("/hc/coap%3A%2F%2Fh%3A1234%2Fa%2Fb", None),
            coap("coap://h:1234/a/b", true)
        );
        assert_eq!(
            target("/hc/?target_uri=coap://s.example.com/light", None),
            coap("coap://s.example.com/light", true)
        );
        assert_eq!(
            target("coap://s.example.com/light", None),
            coap("coap://s.example.com/light", true)
        );
    }

    #[test]
    fn bad_targets_are_refused_with_the_rfc_status() {
        let status = |s: &str| match target(s, None) {
            Target::Refused(st, _) => st,
            t => panic!("{s} gave {t:?}"),
        };
        // §5.3.1: no scheme is a client error.
        assert_eq!(status("/hc/s.example.com/light"), StatusCode::BAD_REQUEST);
        assert_eq!(status("/hc/http://example.com/"), StatusCode::BAD_REQUEST);
        assert_eq!(status("/hc/coap://"), StatusCode::BAD_REQUEST);
        assert_eq!(status("/hc/coap://h:99999/"), StatusCode::BAD_REQUEST);
        assert_eq!(status("/hc/coap+tcp://h/x"), StatusCode::NOT_IMPLEMENTED);
        assert_eq!(status("/hc/coap://224.0.1.187/x"), StatusCode::FORBIDDEN);
        assert_eq!(status("/other"), StatusCode::NOT_FOUND);
        assert_eq!(
            target("/.well-known/core?rt=core.hc", None),
            Target::Discovery
        );
    }

    #[test]
    fn null_mapping_onto_the_base() {
        assert_eq!(
            target("/a/b?c=d", Some("coap://h:5683/base/")),
            coap("coap://h:5683/base/a/b?c=d", false)
        );
        // /hc/ still takes precedence.
        assert_eq!(
            target("/hc/coap://x/y", Some("coap://h/base")),
            coap("coap://x/y", true)
        );
    }

    #[test]
    fn methods_of_rfc7252_section_10_2() {
        let m = |s: &str| method_for(&hyper::Method::from_bytes(s.as_bytes()).unwrap());
        assert_eq!(m("GET"), Some((Method::Get, false)));
        assert_eq!(m("HEAD"), Some((Method::Get, true)));
        assert_eq!(m("PUT"), Some((Method::Put, false)));
        assert_eq!(m("POST"), Some((Method::Post, false)));
        assert_eq!(m("DELETE"), Some((Method::Delete, false)));
        assert_eq!(m("PATCH"), Some((Method::Patch, false)));
        assert_eq!(m("FETCH"), Some((Method::Fetch, false)));
        assert_eq!(m("iPATCH"), Some((Method::IPatch, false)));
        for other in ["OPTIONS", "TRACE", "CONNECT", "BREW"] {
            assert_eq!(m(other), None, "{other}");
        }
    }

    #[test]
    fn status_table_of_rfc8075_section_7() {
        let s = |c: Code| status_for(c, false, false).map(|s| s.as_u16());
        assert_eq!(s(Code::CREATED), Some(201));
        assert_eq!(s(Code::DELETED), Some(204));
        assert_eq!(status_for(Code::DELETED, true, false), Some(StatusCode::OK));
        assert_eq!(s(Code::CHANGED), Some(204));
        assert_eq!(status_for(Code::CHANGED, true, false), Some(StatusCode::OK));
        assert_eq!(
            status_for(Code::VALID, false, true),
            Some(StatusCode::NOT_MODIFIED)
        );
        assert_eq!(s(Code::VALID), None);
        assert_eq!(s(Code::CONTENT), Some(200));
        assert_eq!(s(Code::CONTINUE), None);
        assert_eq!(s(Code::BAD_REQUEST), Some(400));
        assert_eq!(s(Code::UNAUTHORIZED), Some(403));
        assert_eq!(s(Code::BAD_OPTION), Some(500));
        assert_eq!(s(Code::FORBIDDEN), Some(403));
        assert_eq!(s(Code::NOT_FOUND), Some(404));
        assert_eq!(s(Code::METHOD_NOT_ALLOWED), Some(400));
        assert_eq!(s(Code::NOT_ACCEPTABLE), Some(406));
        assert_eq!(s(Code::REQUEST_ENTITY_INCOMPLETE), None);
        assert_eq!(s(Code::PRECONDITION_FAILED), Some(412));
        assert_eq!(s(Code::REQUEST_ENTITY_TOO_LARGE), Some(413));
        assert_eq!(s(Code::UNSUPPORTED_CONTENT_FORMAT), Some(415));
        assert_eq!(s(Code::INTERNAL_SERVER_ERROR), Some(500));
        assert_eq!(s(Code::NOT_IMPLEMENTED), Some(501));
        assert_eq!(s(Code::BAD_GATEWAY), Some(502));
        assert_eq!(s(Code::SERVICE_UNAVAILABLE), Some(503));
        assert_eq!(s(Code::GATEWAY_TIMEOUT), Some(504));
        assert_eq!(s(Code::PROXYING_NOT_SUPPORTED), Some(502));
    }

    #[test]
    fn media_types_and_content_formats() {
        assert_eq!(content_format_for("text/plain"), Some(ContentFormat(0)));
        assert_eq!(
            content_format_for("text/plain; charset=UTF-8"),
            Some(ContentFormat(0))
        );
        assert_eq!(content_format_for("text/plain; charset=latin1"), None);
        assert_eq!(
            content_format_for("application/json"),
            Some(ContentFormat(50))
        );
        assert_eq!(
            content_format_for("Application/JSON; charset=utf-8"),
            Some(ContentFormat(50))
        );
        assert_eq!(
            content_format_for("application/cbor"),
            Some(ContentFormat(60))
        );
        assert_eq!(
            content_format_for("application/cose; cose-type=\"cose-sign1\""),
            Some(ContentFormat(18))
        );
        assert_eq!(content_format_for("application/cose"), None);
        assert_eq!(content_format_for("image/png"), None);
        assert_eq!(content_format_for("application/coap-payload;cf=60"), None);
        assert_eq!(media_type_for(50), "application/json");
        assert_eq!(media_type_for(0), "text/plain;charset=utf-8");
        assert_eq!(media_type_for(65000), "application/coap-payload;cf=65000");
    }

    #[test]
    fn accept_picks_the_most_preferred_mappable_type() {
        assert_eq!(accept_for("*/*"), None);
        assert_eq!(accept_for("application/json"), Some(ContentFormat(50)));
        assert_eq!(
            accept_for("text/html, application/cbor;q=0.5, application/json;q=0.9"),
            Some(ContentFormat(50))
        );
        assert_eq!(accept_for("image/png"), None);
        assert_eq!(accept_for("application/json;q=0"), None);
        assert_eq!(
            accept_for("application/cbor;q=0.8, */*;q=0.1"),
            Some(ContentFormat(60))
        );
    }

    #[test]
    fn entity_tags_round_trip() {
        assert_eq!(entity_tag(&[0xab, 0x01]), "\"ab01\"");
        assert_eq!(etag_of("\"ab01\""), Some(vec![0xab, 0x01]));
        assert_eq!(etag_of(" \"00\" "), Some(vec![0]));
        assert_eq!(etag_of("W/\"ab01\""), None);
        assert_eq!(etag_of("\"abc\""), None);
        assert_eq!(etag_of("\"\""), None);
        assert_eq!(etag_of("\"zz\""), None);
        assert_eq!(etag_of("\"000102030405060708\""), None);
    }

    fn created(location: &[(OptionNumber, &str)]) -> CoapResponse {
        CoapResponse {
            code: Code::CREATED,
            options: location
                .iter()
                .map(|(n, v)| (*n, v.as_bytes().to_vec()))
                .collect(),
            payload: Vec::new(),
            peer: "127.0.0.1:5683".parse().unwrap(),
            security: coap_tokio::Security::Plain,
        }
    }

    #[test]
    fn location_options_become_a_hosting_http_uri() {
        let r = created(&[
            (OptionNumber::LOCATION_PATH, "rd"),
            (OptionNumber::LOCATION_PATH, "a b"),
            (OptionNumber::LOCATION_QUERY, "x=1"),
            (OptionNumber::LOCATION_QUERY, "y=&"),
        ]);
        // RFC 7252 §10.2.4 with the default mapping of RFC 8075 §5.3 (brackets encoded,
        // §5.3.2).
        assert_eq!(
            location_of(&r, "coap://[::1]:5683/rd?ep=n", true, None).as_deref(),
            Some("/hc/coap://%5B::1%5D:5683/rd/a%20b?x=1&y=%26")
        );
        // Under the base: a local path.
        let r = created(&[
            (OptionNumber::LOCATION_PATH, "base"),
            (OptionNumber::LOCATION_PATH, "7"),
        ]);
        assert_eq!(
            location_of(&r, "coap://h/base/new", false, Some("coap://h/base")).as_deref(),
            Some("/7")
        );
        // Outside the base: the default mapping.
        let r = created(&[(OptionNumber::LOCATION_PATH, "other")]);
        assert_eq!(
            location_of(&r, "coap://h/base/new", false, Some("coap://h/base")).as_deref(),
            Some("/hc/coap://h/other")
        );
        assert_eq!(location_of(&created(&[]), "coap://h/x", true, None), None);
    }

    #[test]
    fn percent_decoding_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(percent_decode("a%zz%2").as_deref(), Some("a%zz%2"));
        assert_eq!(percent_decode("%ff"), None);
    }
}
