//! Interop against real peers, loopback only: libcoap 4.3 (C), aiocoap 0.4.17 (Python) and
//! node-coap 1.5.0 (JavaScript), installed by `bash tests/peers/install.sh`.
//!
//! - our client (`coap_tokio::Client`) against each peer's server ([`libcoap`],
//!   [`aiocoap`], [`node_coap`]);
//! - each peer's client against our server: the `coap serve` demo resources plus test
//!   resources on `coap_tokio::Server` ([`our_server`]);
//! - robustness of our server against hand-made datagrams ([`robustness`]).
//!
//! A missing peer fails its tests with a pointer to the install script, unless
//! `COAP_SKIP_INTEROP=1` (then they pass after a printed note). Peers run as child
//! processes on free ports, killed on drop; every wait is bounded.

#[path = "interop/aiocoap.rs"]
mod aiocoap;
#[path = "interop/files.rs"]
mod files;
#[path = "interop/libcoap.rs"]
mod libcoap;
#[path = "interop/node_coap.rs"]
mod node_coap;
#[path = "interop/observe.rs"]
mod observe;
#[path = "interop/our_server.rs"]
mod our_server;
#[path = "interop/peer_clients.rs"]
mod peer_clients;
#[path = "interop/rd.rs"]
mod rd;
#[path = "interop/robustness.rs"]
mod robustness;
#[path = "interop/support.rs"]
mod support;
#[path = "interop/wire.rs"]
mod wire;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use coap_tokio::{Client, ClientError, Method, RequestBuilder, Response};

/// Runs `f` on a fresh tokio runtime; fails the test if it takes longer than 30 s.
fn block_on<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), f)
            .await
            .expect("the test did not finish within 30 s")
    })
}

/// Our client on 127.0.0.1, ephemeral port.
async fn our_client() -> Client {
    Client::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap()
}

/// A request of our client with a 5 s deadline.
fn request(c: &Client, method: Method, uri: &str) -> RequestBuilder {
    c.request(method, uri).timeout(Duration::from_secs(5))
}

/// The response, or a failure naming the exchange.
fn answered(what: &str, r: Result<Response, ClientError>) -> Response {
    r.unwrap_or_else(|e| panic!("{what}: no response: {e}"))
}

/// The payload as text (lossy), for comparisons and messages.
fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.payload).into_owned()
}

/// The checks of our client against a peer server running the suite's test script
/// (`/hello`, `/store`, `/echo`, `/.well-known/core`; see node_server.js and
/// aiocoap_server.py). `hello` is the peer's greeting.
async fn our_client_against_test_script(peer: &str, base: &str, hello: &str) {
    use coap_tokio::Code;
    let c = our_client().await;
    let uri = |path: &str| format!("{base}{path}");
    let send = |what: String, b: RequestBuilder| async move { answered(&what, b.send().await) };

    let r = send(
        format!("{peer}: GET /hello"),
        request(&c, Method::Get, &uri("/hello")),
    )
    .await;
    assert_eq!(
        (r.code, text(&r).as_str(), r.content_format().map(u16::from)),
        (Code::CONTENT, hello, Some(0)),
        "{peer}: GET /hello: {r:?}"
    );

    // /store: GET, PUT, GET, POST, DELETE, GET.
    let r = send(
        format!("{peer}: GET /store"),
        request(&c, Method::Get, &uri("/store")),
    )
    .await;
    assert_eq!(
        (r.code, text(&r).as_str()),
        (Code::CONTENT, "initial"),
        "{peer}: {r:?}"
    );
    let r = send(
        format!("{peer}: PUT /store"),
        request(&c, Method::Put, &uri("/store"))
            .payload("abc")
            .content_format(0),
    )
    .await;
    assert_eq!(r.code, Code::CHANGED, "{peer}: PUT /store: {r:?}");
    let r = send(
        format!("{peer}: GET /store"),
        request(&c, Method::Get, &uri("/store")),
    )
    .await;
    assert_eq!(
        (r.code, text(&r).as_str()),
        (Code::CONTENT, "abc"),
        "{peer}: after PUT: {r:?}"
    );
    let r = send(
        format!("{peer}: POST /store"),
        request(&c, Method::Post, &uri("/store")).payload("def"),
    )
    .await;
    assert_eq!(
        (r.code, text(&r).as_str()),
        (Code::CREATED, "abcdef"),
        "{peer}: POST: {r:?}"
    );
    let r = send(
        format!("{peer}: DELETE /store"),
        request(&c, Method::Delete, &uri("/store")),
    )
    .await;
    assert_eq!(
        (r.code, r.payload.len()),
        (Code::DELETED, 0),
        "{peer}: DELETE: {r:?}"
    );
    let r = send(
        format!("{peer}: GET /store"),
        request(&c, Method::Get, &uri("/store")),
    )
    .await;
    assert_eq!(
        (r.code, text(&r).as_str()),
        (Code::CONTENT, ""),
        "{peer}: after DELETE: {r:?}"
    );

    // POST /echo: payload and Content-Format (application/json) come back.
    let json = r#"{"interop":true}"#;
    let r = send(
        format!("{peer}: POST /echo"),
        request(&c, Method::Post, &uri("/echo"))
            .payload(json)
            .content_format(50),
    )
    .await;
    assert_eq!(
        (r.code, text(&r).as_str(), r.content_format().map(u16::from)),
        (Code::CHANGED, json, Some(50)),
        "{peer}: POST /echo: {r:?}"
    );

    // /.well-known/core lists the resources, as application/link-format.
    let r = send(
        format!("{peer}: GET /.well-known/core"),
        request(&c, Method::Get, &uri("/.well-known/core")),
    )
    .await;
    let links = text(&r);
    assert_eq!(
        (r.code, r.content_format().map(u16::from)),
        (Code::CONTENT, Some(40)),
        "{peer}: {r:?}"
    );
    for link in ["</hello>", "</store>", "</echo>", "rt=\"test.hello\""] {
        assert!(links.contains(link), "{peer}: {link} missing in {links:?}");
    }

    // NON requests get their (NON) responses.
    let r = send(
        format!("{peer}: NON GET /hello"),
        request(&c, Method::Get, &uri("/hello")).non(),
    )
    .await;
    assert_eq!(
        (r.code, text(&r).as_str()),
        (Code::CONTENT, hello),
        "{peer}: NON: {r:?}"
    );
    let r = send(
        format!("{peer}: NON POST /echo"),
        request(&c, Method::Post, &uri("/echo"))
            .non()
            .payload("non")
            .content_format(0),
    )
    .await;
    assert_eq!(
        (r.code, text(&r).as_str()),
        (Code::CHANGED, "non"),
        "{peer}: NON POST: {r:?}"
    );

    // Errors: a missing path, a method the resource lacks.
    let r = send(
        format!("{peer}: GET /missing"),
        request(&c, Method::Get, &uri("/missing")),
    )
    .await;
    assert_eq!(r.code, Code::NOT_FOUND, "{peer}: GET /missing: {r:?}");
    let r = send(
        format!("{peer}: PUT /hello"),
        request(&c, Method::Put, &uri("/hello")).payload("x"),
    )
    .await;
    assert_eq!(
        r.code,
        Code::METHOD_NOT_ALLOWED,
        "{peer}: PUT /hello: {r:?}"
    );
}
