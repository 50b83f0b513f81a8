//! A CoAP client on tokio: GET the URI given as the argument and print the response.
//!
//! `cargo run -p coap-examples --example tokio_client -- coap://[::1]/hello`
use std::process::ExitCode;

use coap_examples::{client_addr, fail, report, uri_arg};
use coap_tokio::Client;

#[tokio::main]
async fn main() -> ExitCode {
    let uri = uri_arg();
    let client = Client::bind(client_addr())
        .await
        .unwrap_or_else(|e| fail(&format!("cannot bind: {e}")));
    report(&uri, client.get(&uri).await)
}
