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
//! - `Content-Type` ↔ Content-Format by the registered formats ([`REGISTRY`]);
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
use coap_core::content_format::REGISTRY;
use coap_core::{Code, ContentFormat, Host, Method, OptionNumber, Scheme, Uri};
use coap_tokio::{Client, ClientError, Response as CoapResponse};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The HC Proxy URI's path of the default mapping (RFC 8075 §5.3).
pub const HC_PREFIX: &str = "/hc/";
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

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// Upstream to this CoAP URI; `via_hc` when it came through [`HC_PREFIX`] (so that a
    /// Location is given back in the same form).
    Coap {
        /// The Target CoAP URI.
        uri: String,
        /// Whether the default mapping (or absolute form) named it.
        via_hc: bool,
    },
    /// The discovery resource (RFC 8075 §5.5).
    Discovery,
    /// Refused with this status and reason.
    Refused(StatusCode, String),
}

/// Percent-decodes `s` (invalid escapes stay as they are); `None` when not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Replaces the percent-encoded square brackets of an IP-literal (RFC 8075 §5.3.2).
fn unbracket(s: &str) -> String {
    // Only within the authority: later occurrences are the path's own encoding.
    let (head, rest) = match s.find("://") {
        Some(i) => s.split_at(i + 3),
        None => return s.to_owned(),
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (auth, tail) = rest.split_at(end);
    let auth = auth
        .replace("%5B", "[")
        .replace("%5b", "[")
        .replace("%5D", "]")
        .replace("%5d", "]");
    format!("{head}{auth}{tail}")
}

/// Checks a Target CoAP URI: 400 when it is none, 501 for a scheme not served, 403 for
/// multicast.
fn check_target(uri: String, via_hc: bool) -> Target {
    let scheme = uri.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("coap") | Some("coaps") => {}
        Some(s) if s.starts_with("coap+") => {
            return Target::Refused(
                StatusCode::NOT_IMPLEMENTED,
                format!("{s}:// targets are not supported (only coap:// and coaps://)"),
            )
        }
        // RFC 8075 §5.3.1: no scheme without prior agreement is a client error.
        _ => {
            return Target::Refused(
                StatusCode::BAD_REQUEST,
                format!("not a CoAP URI (RFC 8075 §5.3 wants /hc/coap://host/path): {uri}"),
            )
        }
    }
    match Uri::parse(&uri) {
        Ok(u) => {
            let multicast = match u.host() {
                Host::Ip(IpAddr::V4(a)) => a.is_multicast() || a.is_broadcast(),
                Host::Ip(IpAddr::V6(a)) => a.is_multicast(),
                Host::Name(_) => false,
            };
            if multicast {
                // RFC 8075 §8.4: without multicast support, 403.
                return Target::Refused(
                    StatusCode::FORBIDDEN,
                    "multicast targets are not supported".to_owned(),
                );
            }
        }
        Err(e) => {
            return Target::Refused(
                StatusCode::BAD_REQUEST,
                format!("invalid CoAP URI {uri}: {e}"),
            )
        }
    }
    Target::Coap { uri, via_hc }
}

/// The target of a request (RFC 8075 §5): `uri` is the request-target as received.
pub fn target_of(uri: &hyper::Uri, base: Option<&str>) -> Target {
    // Absolute form with a CoAP scheme (RFC 7252 §10.2).
    if let Some(s) = uri.scheme_str() {
        if s.eq_ignore_ascii_case("coap") || s.eq_ignore_ascii_case("coaps") {
            return check_target(uri.to_string(), true);
        }
    }
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if let Some(rest) = pq.strip_prefix(HC_PREFIX) {
        // §5.4.1 example 1: /hc/?target_uri=...
        if let Some(query) = rest.strip_prefix('?') {
            let value = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("target_uri="));
            return match value.and_then(percent_decode) {
                Some(t) => check_target(unbracket(&t), true),
                None => Target::Refused(
                    StatusCode::BAD_REQUEST,
                    "expected /hc/coap://host/path or /hc/?target_uri=coap://host/path".to_owned(),
                ),
            };
        }
        // A wholly percent-encoded target: its scheme delimiter is encoded.
        let lower = rest.get(..8).unwrap_or(rest).to_ascii_lowercase();
        let target = if lower.starts_with("coap%3a") || lower.starts_with("coaps%3a") {
            match percent_decode(rest) {
                Some(t) => t,
                None => {
                    return Target::Refused(
                        StatusCode::BAD_REQUEST,
                        "target URI is not UTF-8".to_owned(),
                    )
                }
            }
        } else {
            unbracket(rest)
        };
        return check_target(target, true);
    }
    if let Some(base) = base {
        // Null mapping onto the configured base (§5.2).
        return check_target(format!("{}{pq}", base.trim_end_matches('/')), false);
    }
    if pq == "/.well-known/core" || pq.starts_with("/.well-known/core?") {
        return Target::Discovery;
    }
    Target::Refused(
        StatusCode::NOT_FOUND,
        format!("no such resource: this proxy serves {HC_PREFIX}coap://host[:port]/path"),
    )
}

/// The CoAP method of an HTTP method (RFC 7252 §10.2, RFC 8132), with whether it is HEAD.
pub fn method_for(m: &hyper::Method) -> Option<(Method, bool)> {
    Some(match m.as_str() {
        "GET" => (Method::Get, false),
        "HEAD" => (Method::Get, true),
        "PUT" => (Method::Put, false),
        "POST" => (Method::Post, false),
        "DELETE" => (Method::Delete, false),
        "PATCH" => (Method::Patch, false),
        "FETCH" => (Method::Fetch, false),
        "iPATCH" | "IPATCH" => (Method::IPatch, false),
        _ => return None,
    })
}

/// Splits a media type into its lowercased `type/subtype` and its parameters (names
/// lowercased, values unquoted).
fn split_media_type(s: &str) -> (String, Vec<(String, String)>) {
    let mut parts = s.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect();
    (essence, params)
}

/// The Content-Format of an HTTP media type (RFC 8075 §6.4, without the loose mapping).
pub fn content_format_for(media_type: &str) -> Option<ContentFormat> {
    let (essence, mut params) = split_media_type(media_type);
    if essence == "text/plain" {
        // Format 0 is UTF-8 text; US-ASCII is a subset of it.
        return match params.iter().find(|(k, _)| k == "charset") {
            None => Some(ContentFormat::TEXT_PLAIN),
            Some((_, v))
                if v.eq_ignore_ascii_case("utf-8") || v.eq_ignore_ascii_case("us-ascii") =>
            {
                Some(ContentFormat::TEXT_PLAIN)
            }
            Some(_) => None,
        };
    }
    // A charset on a JSON/XML type does not change the format (they are UTF-8).
    params.retain(|(k, v)| !(k == "charset" && v.eq_ignore_ascii_case("utf-8")));
    params.sort();
    REGISTRY.iter().find_map(|(cf, registered)| {
        let (e, mut p) = split_media_type(registered);
        p.sort();
        (e == essence
            && p.len() == params.len()
            && p.iter()
                .zip(&params)
                .all(|(a, b)| a.0 == b.0 && a.1.eq_ignore_ascii_case(&b.1)))
        .then_some(*cf)
    })
}

/// The HTTP media type of a Content-Format (RFC 8075 §6.2 for unknown ones).
pub fn media_type_for(cf: u16) -> String {
    match ContentFormat(cf).media_type() {
        Some(m) => m.to_owned(),
        None => format!("application/coap-payload;cf={cf}"),
    }
}

/// The Accept option for an HTTP Accept header: the most preferred mappable media type;
/// `None` for `*/*`, no mappable type, or q=0 only (RFC 8075 §6.1).
pub fn accept_for(accept: &str) -> Option<ContentFormat> {
    let mut best: Option<(u32, usize, ContentFormat)> = None;
    for (i, item) in accept.split(',').enumerate() {
        let (essence, params) = split_media_type(item);
        let q = params
            .iter()
            .find(|(k, _)| k == "q")
            .and_then(|(_, v)| v.parse::<f32>().ok())
            .unwrap_or(1.0);
        let q = (q.clamp(0.0, 1.0) * 1000.0) as u32;
        if essence == "*/*" && q > 0 {
            // Anything is acceptable: whatever is more preferred still counts, but the
            // wildcard at the top means no Accept at all.
            if best.map(|b| q > b.0).unwrap_or(true) {
                best = None;
                if q == 1000 {
                    return None;
                }
            }
            continue;
        }
        let without_q: String = item
            .split(';')
            .filter(|p| !p.trim().to_ascii_lowercase().starts_with("q="))
            .collect::<Vec<_>>()
            .join(";");
        let Some(cf) = content_format_for(&without_q) else {
            continue;
        };
        if q == 0 {
            continue;
        }
        // Highest q wins; on a tie the earlier one.
        if best.map(|b| q > b.0).unwrap_or(true) {
            best = Some((q, i, cf));
        }
    }
    best.map(|b| b.2)
}

/// An entity-tag of a CoAP ETag: its bytes as lowercase hex in double quotes.
pub fn entity_tag(etag: &[u8]) -> String {
    let mut s = String::with_capacity(etag.len() * 2 + 2);
    s.push('"');
    for b in etag {
        s.push_str(&format!("{b:02x}"));
    }
    s.push('"');
    s
}

/// The CoAP ETag of an entity-tag this proxy made (`"hex"`, 1–8 bytes, strong); `None`
/// for any other (weak ones included: CoAP has none, RFC 7252 §10.1.1).
pub fn etag_of(tag: &str) -> Option<Vec<u8>> {
    let hex = tag.trim().strip_prefix('"')?.strip_suffix('"')?;
    if hex.is_empty() || hex.len() > 16 || hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The entity-tags of an If-Match / If-None-Match header: `None` for `*`.
fn tag_list(headers: &HeaderMap, name: header::HeaderName) -> Option<Vec<String>> {
    let mut tags = Vec::new();
    for v in headers.get_all(name) {
        let v = v.to_str().unwrap_or("");
        if v.trim() == "*" {
            return None;
        }
        tags.extend(
            v.split(',')
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty()),
        );
    }
    Some(tags)
}

/// The HTTP status of a CoAP response code (RFC 8075 §7, Table 2): `has_payload` decides
/// 200/204 (note 2), `validating` 304/200 for 2.03 (notes 3, 4). `None`: no mapping (2.31,
/// 4.08: block-wise stays on the CoAP leg, note 10).
pub fn status_for(code: Code, has_payload: bool, validating: bool) -> Option<StatusCode> {
    let ok_or_empty = if has_payload {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    };
    Some(match (code.class(), code.detail()) {
        (2, 1) => StatusCode::CREATED,
        (2, 2) | (2, 4) => ok_or_empty,
        (2, 3) if validating => StatusCode::NOT_MODIFIED,
        // Note 4: 200 only comes from a proxy's own cache; without one an unsolicited 2.03
        // is not understood.
        (2, 3) => return None,
        (2, 5) => StatusCode::OK,
        (2, 31) => return None,
        (4, 0) => StatusCode::BAD_REQUEST,
        // Note 5: 401 needs WWW-Authenticate, which CoAP lacks.
        (4, 1) => StatusCode::FORBIDDEN,
        // Note 6: the proxy cannot tell a Bad Option caused by its header mapping.
        (4, 2) => StatusCode::INTERNAL_SERVER_ERROR,
        (4, 3) => StatusCode::FORBIDDEN,
        (4, 4) => StatusCode::NOT_FOUND,
        // Note 7: 405 would need an Allow header listing methods the proxy does not know.
        (4, 5) => StatusCode::BAD_REQUEST,
        (4, 6) => StatusCode::NOT_ACCEPTABLE,
        (4, 8) => return None,
        // RFC 8132 §3.4 / RFC 8516: the codes named after their HTTP twins.
        (4, 9) => StatusCode::CONFLICT,
        (4, 12) => StatusCode::PRECONDITION_FAILED,
        (4, 13) => StatusCode::PAYLOAD_TOO_LARGE,
        (4, 15) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        (4, 22) => StatusCode::UNPROCESSABLE_ENTITY,
        (4, 29) => StatusCode::TOO_MANY_REQUESTS,
        (5, 0) => StatusCode::INTERNAL_SERVER_ERROR,
        (5, 1) => StatusCode::NOT_IMPLEMENTED,
        (5, 2) => StatusCode::BAD_GATEWAY,
        (5, 3) => StatusCode::SERVICE_UNAVAILABLE,
        (5, 4) => StatusCode::GATEWAY_TIMEOUT,
        // Note 9.
        (5, 5) => StatusCode::BAD_GATEWAY,
        // Unregistered details: the class's generic code (RFC 9110 §15: an unknown status
        // is treated as x00).
        (2, _) => StatusCode::OK,
        (4, _) => StatusCode::BAD_REQUEST,
        (5, _) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => return None,
    })
}

/// Whether a response with this code may be cached by the HTTP client: the ones CoAP
/// caches (RFC 7252 §5.9: 2.03, 2.05 and the error classes).
fn cacheable(code: Code) -> bool {
    matches!((code.class(), code.detail()), (2, 3) | (2, 5)) || code.class() >= 4
}

/// The scheme and authority of a CoAP URI (`coap://host:port`).
fn origin_of(uri: &str) -> &str {
    let after = uri.find("://").map(|i| i + 3).unwrap_or(0);
    let end = uri[after..]
        .find(['/', '?'])
        .map(|i| after + i)
        .unwrap_or(uri.len());
    &uri[..end]
}

/// Percent-encodes what cannot stand literally in a path segment or query argument.
fn encode_component(v: &[u8], query: bool) -> String {
    let mut out = String::new();
    for &b in v {
        let keep = b.is_ascii_alphanumeric()
            || b"-._~!$'()*+,;=:@".contains(&b)
            || (query && (b == b'/' || b == b'?'));
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The Location header of Location-Path/Location-Query options (RFC 7252 §10.2.4), as a
/// URI of this proxy: under the base when the request used it and the location lies
/// within it, else in the default mapping.
fn location_of(r: &CoapResponse, target: &str, via_hc: bool, base: Option<&str>) -> Option<String> {
    let mut rel = String::new();
    for seg in r.options_of(OptionNumber::LOCATION_PATH) {
        rel.push('/');
        rel.push_str(&encode_component(seg, false));
    }
    let mut first = true;
    for q in r.options_of(OptionNumber::LOCATION_QUERY) {
        rel.push(if first { '?' } else { '&' });
        first = false;
        rel.push_str(&encode_component(q, true));
    }
    if rel.is_empty() {
        return None;
    }
    if rel.starts_with('?') {
        rel.insert(0, '/');
    }
    if !via_hc {
        if let Some(base) = base {
            let base_path = &base[origin_of(base).len()..];
            let base_path = base_path.trim_end_matches('/');
            if let Some(local) = rel.strip_prefix(base_path) {
                if local.is_empty() || local.starts_with('/') || local.starts_with('?') {
                    return Some(if local.starts_with('/') {
                        local.to_owned()
                    } else {
                        format!("/{local}")
                    });
                }
            }
        }
    }
    // §5.3.2: the brackets of an IP-literal are percent-encoded in the Hosting HTTP URI.
    let origin = origin_of(target).replace('[', "%5B").replace(']', "%5D");
    Some(format!("{HC_PREFIX}{origin}{rel}"))
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
        if let Ok(v) = HeaderValue::from_str(&media_type_for(cf)) {
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
        | ClientError::Edhoc(_)
        | ClientError::EdhocPeer { .. }
        | ClientError::EdhocStatus(_)
        | ClientError::EdhocSessionLost(_)
        | ClientError::Resolve(_)
        | ClientError::Reset
        | ClientError::Io(_)
        | ClientError::RepresentationChanged
        | ClientError::Unreachable { .. }
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
    use super::*;

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
