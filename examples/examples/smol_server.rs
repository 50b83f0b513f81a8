//! A CoAP server on smol: `GET /hello` (and `/.well-known/core`). The resource is
//! [`coap_examples::Hello`], shared with the tokio server.
//!
//! `cargo run -p coap-examples --example smol_server -- --bind [::]:5683`
use coap_examples::{bind_addr, hello_router};
use coap_smol::Server;

fn main() -> std::io::Result<()> {
    smol::block_on(async {
        let server = Server::bind(bind_addr("[::]:5683")).await?;
        println!("serving coap://{}/hello", server.local_addr());
        server.serve(hello_router()).await
    })
}
