//! An async server on tokio with the axum-style router (`coap_tokio::app`), until Ctrl-C:
//!
//! - `GET /slow`: an async handler that works for 2 s. The endpoint sends the empty ACK
//!   after `separate_ack_delay` and the response separately (RFC 7252 §5.2.2), while other
//!   requests are answered meanwhile.
//! - `GET /items`, `POST /items`: a JSON list in shared state (`with_state`); a body that is
//!   not a JSON string gets 4.00, another Content-Format 4.15.
//! - `POST /readings`: a CBOR map of sensor names to readings (RFC 8949); answers their
//!   mean as CBOR. A JSON body gets 4.15, bytes that are not such a map 4.00.
//! - `POST /upload`: takes a JSON document of any size up to 1 MiB; the router reassembles
//!   Block1 uploads (RFC 7959), so the handler has no block-wise code.
//! - `GET /hello`: the synchronous `ResponseWriter` resource of the other examples, in the
//!   same router.
//!
//! `cargo run -p coap-examples --example app_server -- --bind [::]:5683`
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coap_examples::{bind_addr, Hello};
use std::collections::BTreeMap;

use coap_tokio::app::{get, post, Cbor, Json, Payload, Router, State};
use coap_tokio::{Code, Config, Reply, Server};

#[derive(Clone, Default)]
struct Items(Arc<Mutex<Vec<String>>>);

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(2)).await;
    "done after 2 s"
}

async fn list(State(items): State<Items>) -> Json<Vec<String>> {
    Json(items.0.lock().map(|v| v.clone()).unwrap_or_default())
}

async fn add(State(items): State<Items>, Json(item): Json<String>) -> (Code, Json<usize>) {
    let mut v = items.0.lock().unwrap_or_else(|e| e.into_inner());
    v.push(item);
    (Code::CREATED, Json(v.len()))
}

async fn mean(Cbor(readings): Cbor<BTreeMap<String, f64>>) -> Cbor<f64> {
    let n = readings.len().max(1) as f64;
    Cbor(readings.values().sum::<f64>() / n)
}

/// The whole upload, however many blocks it came in.
async fn upload(Payload(body): Payload) -> Reply {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(_) => Reply::new(Code::CHANGED).payload(format!("{} bytes of JSON", body.len())),
        Err(e) => Reply::new(Code::BAD_REQUEST).payload(e.to_string()),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let config = Config {
        // Answers within 300 ms are piggybacked on the ACK; slower ones go separately.
        separate_ack_delay: Duration::from_millis(300),
        ..Config::default()
    };
    let server = Server::bind_with(bind_addr("[::]:5683"), config).await?;
    println!("serving coap://{}/ (Ctrl-C to stop)", server.local_addr());
    let router = Router::new()
        .route("/slow", get(slow))
        .route("/items", get(list).post(add))
        .route("/readings", post(mean))
        .route("/upload", post(upload))
        .resource("/hello", Hello)
        .max_body(1024 * 1024)
        .with_state(Items::default());
    let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or(()) };
    server.serve_router_with_shutdown(router, ctrl_c).await
}
