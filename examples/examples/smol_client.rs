//! A CoAP client on smol: GET the URI given as the argument and print the response.
//!
//! `cargo run -p coap-examples --example smol_client -- coap://127.0.0.1/hello`
use std::process::ExitCode;

use coap_examples::{client_addr, fail, report, uri_arg};
use coap_smol::Client;

fn main() -> ExitCode {
    let uri = uri_arg();
    smol::block_on(async {
        let client = Client::bind(client_addr())
            .await
            .unwrap_or_else(|e| fail(&format!("cannot bind: {e}")));
        report(&uri, client.get(&uri).await)
    })
}
