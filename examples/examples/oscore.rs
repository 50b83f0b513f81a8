//! OSCORE (RFC 8613): end-to-end protected requests, with security contexts in aiocoap's
//! credentials format, so that aiocoap-client can talk to the server too.
//!
//! - `oscore setup DIR`: writes a fresh context pair (random master secret) and the
//!   credentials files `DIR/server.json` and `DIR/client.json` that name them.
//! - `oscore serve DIR [--bind ADDR]`: serves `/secret`, which answers only requests
//!   protected with the context (4.01 Unauthorized otherwise, RFC 8613 §8.2), and `/open`.
//! - `oscore client DIR URI`: GETs URI protected with the client's context.
//!
//! `aiocoap-client --credentials DIR/client.json coap://127.0.0.1:5683/secret` works
//! against the server as well. A context directory is used by one process at a time (its
//! sequence numbers must never repeat, Appendix B.1.1).
//!
//! `cargo run -p coap-examples --example oscore -- setup /tmp/ctx`
use std::error::Error;
use std::path::Path;

use coap_tokio::app::{get, Remote, Router};
use coap_tokio::{Client, Code, Config, Credentials, Reply, Security, Server};

/// Protected content: only for requests that came under an OSCORE context.
async fn secret(Remote(peer): Remote) -> Reply {
    match peer.security {
        Security::Oscore(_) => Reply::new(Code::CONTENT).payload("the protected answer"),
        _ => Reply::new(Code::UNAUTHORIZED).payload("OSCORE required"),
    }
}

async fn open() -> &'static str {
    "anyone may read this"
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A context directory in aiocoap's layout: the shared secret and the two ids.
fn context(dir: &Path, secret: &str, sender: &str, recipient: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("secret.json"),
        format!(r#"{{"secret_hex": "{secret}"}}"#),
    )?;
    std::fs::write(
        dir.join("settings.json"),
        format!(
            r#"{{"sender-id_hex": "{sender}", "recipient-id_hex": "{recipient}", "algorithm": "AES-CCM-16-64-128", "kdf-hashfun": "sha256"}}"#
        ),
    )
}

fn setup(dir: &Path) -> Result<(), Box<dyn Error>> {
    let mut master = [0u8; 16];
    getrandom::fill(&mut master).map_err(|e| format!("no randomness: {e}"))?;
    let master = hex(&master);
    // The server sends as 01 and receives from 00; the client the other way round.
    context(&dir.join("server-ctx"), &master, "01", "00")?;
    context(&dir.join("client-ctx"), &master, "00", "01")?;
    let server = format!(
        r#"{{":client": {{"oscore": {{"basedir": "{}"}}}}}}"#,
        dir.join("server-ctx").display()
    );
    std::fs::write(dir.join("server.json"), server)?;
    let client = format!(
        r#"{{"coap://*": {{"oscore": {{"basedir": "{}"}}}}}}"#,
        dir.join("client-ctx").display()
    );
    std::fs::write(dir.join("client.json"), client)?;
    println!("wrote {}/server.json and client.json", dir.display());
    Ok(())
}

async fn serve(dir: &Path, bind: std::net::SocketAddr) -> Result<(), Box<dyn Error>> {
    let credentials = Credentials::load(&dir.join("server.json"))?;
    let server = Server::bind(bind).await?.with_credentials(&credentials)?;
    println!(
        "serving coap://{}/secret (Ctrl-C to stop)",
        server.local_addr()
    );
    let router = Router::new()
        .route("/secret", get(secret))
        .route("/open", get(open));
    let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or(()) };
    server.serve_router_with_shutdown(router, ctrl_c).await?;
    Ok(())
}

async fn client(dir: &Path, uri: &str) -> Result<(), Box<dyn Error>> {
    let credentials = Credentials::load(&dir.join("client.json"))?;
    let addr = coap_examples::client_addr();
    let client = Client::bind_with_credentials(addr, Config::default(), &credentials).await?;
    let r = client.get(uri).await?;
    // `security` says how the response was protected.
    println!(
        "{} ({:?}): {}",
        r.code,
        r.security,
        r.payload_str().unwrap_or("")
    );
    r.error_for_status()?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["setup", dir] => setup(Path::new(dir)),
        ["serve", dir, rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            serve(
                Path::new(dir),
                coap_examples::bind_addr_from(&rest, "[::]:5683"),
            )
            .await
        }
        ["client", dir, uri] => client(Path::new(dir), uri).await,
        _ => Err("usage: oscore setup DIR | serve DIR [--bind ADDR] | client DIR URI".into()),
    };
    coap_examples::exit_with(outcome)
}
