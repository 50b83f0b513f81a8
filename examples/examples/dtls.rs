//! CoAP over DTLS (RFC 7252 §9, PSK mode): `coaps://` requests and a server for them.
//!
//! - `dtls serve [--bind ADDR]`: serves `GET /hello` on `coaps://` at ADDR (the plain
//!   socket every server has goes on an ephemeral port), accepting the identity `example`
//!   with the key `secretkey`. The handler sees which session a request came over.
//! - `dtls client URI`: GETs a `coaps://` URI with that identity and key.
//!
//! libcoap's client works against the server too:
//! `coap-client-openssl -u example -k secretkey coaps://127.0.0.1:5684/hello`.
//!
//! `cargo run -p coap-examples --example dtls -- serve --bind 127.0.0.1:5684`
use std::collections::HashMap;
use std::error::Error;

use coap_tokio::app::{get, Remote, Router};
use coap_tokio::{Client, Config, DtlsConfig, Security, Server};

const IDENTITY: &[u8] = b"example";
const KEY: &[u8] = b"secretkey";

async fn hello(Remote(peer): Remote) -> String {
    match peer.security {
        Security::Dtls(session) => format!("Hello over DTLS session {session}!"),
        _ => "Hello in the clear!".to_owned(),
    }
}

async fn serve(coaps: std::net::SocketAddr) -> Result<(), Box<dyn Error>> {
    // The plain socket goes on an ephemeral port; the DTLS one where asked.
    let plain = std::net::SocketAddr::new(coaps.ip(), 0);
    let keys: HashMap<Vec<u8>, Vec<u8>> = [(IDENTITY.to_vec(), KEY.to_vec())].into();
    let server = Server::bind(plain)
        .await?
        .with_dtls(coaps, keys, DtlsConfig::default())
        .await?;
    let at = server.dtls_local_addr().ok_or("no DTLS socket")?;
    println!("serving coaps://{at}/hello (Ctrl-C to stop)");
    let router = Router::new().route("/hello", get(hello));
    let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or(()) };
    server.serve_router_with_shutdown(router, ctrl_c).await?;
    Ok(())
}

async fn client(uri: &str) -> Result<(), Box<dyn Error>> {
    let addr = coap_examples::client_addr();
    let client = Client::bind_with_psk(addr, Config::default(), IDENTITY, KEY).await?;
    let r = client.get(uri).await?.error_for_status()?;
    println!("{}: {}", r.code, r.payload_str().unwrap_or(""));
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("serve") => serve(coap_examples::bind_addr_from(&args[1..], "[::]:5684")).await,
        Some("client") if args.len() == 2 => client(&args[1]).await,
        _ => Err("usage: dtls serve [--bind ADDR] | dtls client URI".into()),
    };
    coap_examples::exit_with(outcome)
}
