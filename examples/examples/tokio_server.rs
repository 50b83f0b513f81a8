//! A CoAP server on tokio: `GET /hello` (and `/.well-known/core`) until Ctrl-C. The
//! resource is [`coap_examples::Hello`], shared with the smol server.
//!
//! `cargo run -p coap-examples --example tokio_server -- --bind [::]:5683`
use coap_examples::{bind_addr, hello_router};
use coap_tokio::Server;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let server = Server::bind(bind_addr("[::]:5683")).await?;
    println!(
        "serving coap://{}/hello (Ctrl-C to stop)",
        server.local_addr()
    );
    let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or(()) };
    server.serve_with_shutdown(hello_router(), ctrl_c).await
}
