//! The README's quick start: an async router serving `GET /hello`, and a client asking it.
//!
//! `cargo run -p coap-examples --example quick_start`
use coap_tokio::app::{get, Router};
use coap_tokio::{Client, Server};

async fn hello() -> &'static str {
    "Hello, world!"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A server on an ephemeral port (a real one binds "[::]:5683").
    let server = Server::bind("127.0.0.1:0".parse()?).await?;
    let uri = format!("coap://{}/hello", server.local_addr());
    let router = Router::new().route("/hello", get(hello));
    tokio::spawn(server.serve_router(router));

    // A client on a dual-stack socket: it reaches IPv4 and IPv6 servers alike.
    let client = Client::new().await?;
    let response = client.get(&uri).await?.error_for_status()?;
    let text = response.payload_str().unwrap_or("");
    println!("{}: {text}", response.code);
    Ok(())
}
